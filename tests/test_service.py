"""The daemon as systemd and the desktop see it: a real `envwatchd run` with a real
NOTIFY_SOCKET listener, under a real `systemd-socket-activate`, and talking to a
real private dbus-daemon with a recording notification server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envwatchd.client import Client
from tests import builders as b
from tests.daemon_harness import BIN, Box, DaemonProc, wait_for
from tests.dbus_helpers import PrivateBus, Recorder


class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            for line in data.decode().splitlines():
                self.messages.append((time.monotonic(), line))

    def lines(self) -> list[str]:
        return [m for _t, m in self.messages]

    def pings_between(self, start: float, end: float) -> int:
        return sum(1 for t, m in self.messages if m == "WATCHDOG=1" and start <= t < end)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be too long."""
    path = Path(tempfile.mkdtemp(prefix="ews-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _populated_box(tmp: Path) -> Box:
    box = Box(tmp)
    for i in range(5):
        b.dist_info(box.user_site, f"pkg{i}", "1.0")
    return box


def test_ready_status_watchdog_and_stopping(short_tmp: Path) -> None:
    """STATUS while scanning, READY=1 only once the inventory is served, WATCHDOG=1 every
    interval/2 from the loop (none while the process is stopped), STOPPING=1 on SIGTERM."""
    listener = NotifyListener(short_tmp / "notify.sock")
    box = _populated_box(short_tmp / "m")
    box.extra_env.update(NOTIFY_SOCKET=str(listener.path), WATCHDOG_USEC="1000000")
    daemon = DaemonProc(box).start()
    try:
        wait_for(lambda: "READY=1" in listener.lines(), 10, what="READY=1")
        lines = listener.lines()
        ready = lines.index("READY=1")
        assert any(m.startswith("STATUS=scanning") for m in lines[:ready])
        assert daemon.status()["packages"] == 5  # READY came after the first inventory
        start = time.monotonic()
        time.sleep(2.2)
        pings = listener.pings_between(start, time.monotonic())
        assert 3 <= pings <= 6, pings  # every 0.5 s
        os.kill(daemon.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        time.sleep(1.5)
        resumed = time.monotonic()
        os.kill(daemon.pid, signal.SIGCONT)
        assert listener.pings_between(stopped + 0.1, resumed) == 0
        wait_for(
            lambda: listener.pings_between(resumed, time.monotonic() + 1) > 0,
            3,
            what="pings after SIGCONT",
        )
        assert daemon.stop() == 0
        assert "STOPPING=1" in listener.lines()
    finally:
        if daemon.alive():
            daemon.kill9()
        listener.close()


@pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate not installed"
)
def test_socket_activation_serves_the_inherited_socket(short_tmp: Path) -> None:
    box = _populated_box(short_tmp / "m")
    sock = short_tmp / "activated.sock"
    cmd = [
        "systemd-socket-activate",
        "-l",
        str(sock),
        str(BIN / "envwatchd"),
        "run",
        "--root",
        str(box.root),
        "--config",
        str(box.config),
    ]
    proc = subprocess.Popen(
        cmd, env=box.daemon_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(sock.exists, 10, what="the activation socket")
        status = Client(sock).call("status", timeout=30)
        assert status["packages"] == 5
        assert not box.sock.exists()  # it served the inherited socket, bound nothing itself
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_conflict_burst_raises_one_desktop_notification(short_tmp: Path) -> None:
    """30 mixed-metadata conflicts appearing in one go -> ONE Notify naming them; no bus
    for a second daemon -> it logs and carries on."""
    bus = PrivateBus(short_tmp)
    bus.start()
    recorder = Recorder(bus.address)
    box = _populated_box(short_tmp / "m")
    box.extra_env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    box.config.write_text(
        box.config.read_text().replace(
            "[notify]\nenabled = false\n",
            "[notify]\nenabled = true\nwindow_s = 0.5\nmin_interval_s = 30\n",
        )
    )
    daemon = DaemonProc(box).start()
    try:
        for i in range(30):
            b.egg_info_dir(box.user_site, f"pkg{i % 5}x{i}", "0.9", module_files=False)
            b.dist_info(box.user_site, f"pkg{i % 5}x{i}", "1.0", module_files=False)
        calls = recorder.wait_for(1, timeout=15)
        time.sleep(1.5)
        assert len(recorder.calls) == 1, [c.summary for c in recorder.calls]
        call = calls[0]
        assert call.app_name == "envwatchd"
        assert "30" in call.summary or "conflict" in call.summary
        assert call.hints.get("urgency") in (1, 2)
        open_ = daemon.conflicts()
        assert sum(1 for c in open_ if c["kind"] == "mixed-metadata") == 30
    finally:
        assert daemon.stop() == 0
        recorder.stop()
        bus.kill()


def test_install_service_writes_units_and_says_what_to_run(short_tmp: Path) -> None:
    env = {
        "HOME": str(short_tmp),
        "PATH": os.environ["PATH"],
        "XDG_CONFIG_HOME": str(short_tmp / "cfg"),
    }
    out = subprocess.run(
        [str(BIN / "envwatchd"), "install-service"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    unit = short_tmp / "cfg/systemd/user/envwatchd.service"
    assert f"ExecStart={BIN / 'envwatchd'} run" in unit.read_text()
    assert (short_tmp / "cfg/systemd/user/envwatchd.socket").exists()
    assert "systemctl --user enable --now envwatchd" in out.stdout
