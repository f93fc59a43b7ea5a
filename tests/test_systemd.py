"""sd_notify, the watchdog, socket activation and unit files, against real systemd parts."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from envwatchd.systemd import (
    SystemdNotifier,
    WatchdogPinger,
    listen_fds,
    watchdog_interval,
)
from envwatchd.units import SERVICE_UNIT, SOCKET_UNIT, install_service, render_units

REPO = Path(__file__).resolve().parents[1]
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
ANALYZE = shutil.which("systemd-analyze")


class NotifyListener:
    """A real NOTIFY_SOCKET: an AF_UNIX datagram socket, timestamping every message."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if not path.startswith("@"):
            self.sock.bind(path)
        else:
            self.sock.bind("\0" + path[1:])
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def texts(self) -> list[str]:
        return [m for _, m in self.messages]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.texts()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        if not self.path.startswith("@"):
            Path(self.path).unlink(missing_ok=True)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer."""
    with tempfile.TemporaryDirectory(prefix="ews", dir="/tmp") as d:
        yield Path(d)


@pytest.fixture
def listener(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    lst = NotifyListener(str(short_dir / "notify.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", lst.path)
    yield lst
    lst.close()


@pytest.fixture
def notifier(listener: NotifyListener) -> Iterator[SystemdNotifier]:
    n = SystemdNotifier()
    yield n
    n.close()


# --- SystemdNotifier -------------------------------------------------------------------


def test_notifier_sends_each_state(listener: NotifyListener) -> None:
    """Each call sends the sd_notify assignment systemd expects, in order."""
    n = SystemdNotifier()
    assert n.enabled
    n.status("scanning 3 of 40 site dirs")
    n.ready()
    n.ready(status="watching 40 trees")
    n.watchdog()
    n.reloading()
    n.stopping()
    n.close()
    n.ready()  # closed: a no-op, not an error
    got = listener.wait_for(7, timeout=0.3)
    assert len(got) == 6
    assert got[:4] == [
        "STATUS=scanning 3 of 40 site dirs",
        "READY=1",
        "READY=1\nSTATUS=watching 40 trees",
        "WATCHDOG=1",
    ]
    assert got[4].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert got[5] == "STOPPING=1"


def test_status_is_one_line(listener: NotifyListener) -> None:
    """A multi-line status must not smuggle extra assignments into the datagram."""
    n = SystemdNotifier()
    n.status("a\nREADY=1")
    n.close()
    assert listener.wait_for(1) == ["STATUS=a READY=1"]


def test_abstract_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """NOTIFY_SOCKET=@name is an abstract socket, as systemd may hand out."""
    lst = NotifyListener(f"@envwatchd-test-{os.getpid()}")
    monkeypatch.setenv("NOTIFY_SOCKET", lst.path)
    try:
        n = SystemdNotifier()
        n.ready()
        n.close()
        assert lst.wait_for(1) == ["READY=1"]
    finally:
        lst.close()


def test_notifier_without_systemd_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside systemd every call is a no-op and nothing is logged."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    with structlog.testing.capture_logs() as logs:
        n = SystemdNotifier()
        n.ready()
        n.watchdog()
        n.stopping()
    assert not n.enabled
    assert logs == []


def test_send_error_logged_once(listener: NotifyListener) -> None:
    """A notify socket that goes away is logged once, never raised."""
    n = SystemdNotifier()
    listener.close()
    with structlog.testing.capture_logs() as logs:
        n.ready()
        n.watchdog()
        n.stopping()
    n.close()
    failures = [e for e in logs if e["event"] == "systemd.notify_failed"]
    assert len(failures) == 1
    assert "Error" in failures[0]["error"]


def test_unreachable_socket_at_start_logged_once(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NOTIFY_SOCKET naming nothing: logged at construction, later calls stay quiet."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(short_dir / "missing.sock"))
    with structlog.testing.capture_logs() as logs:
        n = SystemdNotifier()
        n.ready()
        n.watchdog()
    assert [e["event"] for e in logs] == ["systemd.notify_failed"]


# --- watchdog_interval -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    """WATCHDOG_USEC in seconds, only for this pid, only when positive."""
    assert watchdog_interval(environ) == expected


# --- WatchdogPinger ----------------------------------------------------------------------


def run_loop_for(seconds: float, setup: Any) -> None:
    """Run a fresh event loop for `seconds`, calling setup(loop) first."""
    loop = asyncio.new_event_loop()
    try:
        setup(loop)
        loop.run_until_complete(asyncio.sleep(seconds))
    finally:
        loop.close()


def pings(listener: NotifyListener, start: float, end: float) -> int:
    return sum(1 for t, m in listener.messages if m == "WATCHDOG=1" and start <= t < end)


def test_pinger_pings_at_half_interval(listener: NotifyListener, notifier: SystemdNotifier) -> None:
    """With interval 0.2 s the pinger sends about five pings per second."""
    pinger = WatchdogPinger(notifier)
    t0 = time.monotonic()
    run_loop_for(1.05, lambda loop: pinger.start(loop, 0.2, lambda: True))
    pinger.stop()
    time.sleep(0.05)
    assert 7 <= pings(listener, t0, time.monotonic()) <= 11


def between(listener: NotifyListener, first: str, second: str | None = None) -> int:
    """Pings received after marker `first` and before `second` (or the end).

    Markers are STATUS= datagrams sent on the same socket from the loop, so
    datagram order, not receive timestamps, decides: robust on a loaded machine.
    """
    texts = listener.texts()
    lo = texts.index(f"STATUS={first}")
    hi = texts.index(f"STATUS={second}") if second else len(texts)
    return texts[lo:hi].count("WATCHDOG=1")


def test_pinger_withholds_when_unhealthy(
    listener: NotifyListener, notifier: SystemdNotifier
) -> None:
    """Once healthy() is False no ping is sent; it resumes when health returns."""
    healthy = {"ok": True}
    pinger = WatchdogPinger(notifier)

    def flip(ok: bool, mark: str) -> None:
        healthy["ok"] = ok
        notifier.status(mark)

    def setup(loop: asyncio.AbstractEventLoop) -> None:
        notifier.status("start")
        pinger.start(loop, 0.1, lambda: healthy["ok"])
        loop.call_later(0.3, flip, False, "sick")
        loop.call_later(0.8, flip, True, "well")

    with structlog.testing.capture_logs() as logs:
        run_loop_for(1.1, setup)
    pinger.stop()
    listener.wait_for(1_000, timeout=0.1)
    assert between(listener, "start", "sick") >= 2
    assert between(listener, "sick", "well") == 0
    assert between(listener, "well") >= 2
    withheld = [e for e in logs if e["event"] == "systemd.watchdog_withheld"]
    assert len(withheld) == 1
    assert any(e["event"] == "systemd.watchdog_resumed" for e in logs)


def test_pinger_silent_while_loop_blocked(
    listener: NotifyListener, notifier: SystemdNotifier
) -> None:
    """A blocked event loop sends no pings: there is no free-running thread."""
    pinger = WatchdogPinger(notifier)

    def stall() -> None:
        notifier.status("blocked")
        time.sleep(0.6)  # three ping periods
        notifier.status("unblocked")

    def setup(loop: asyncio.AbstractEventLoop) -> None:
        notifier.status("start")
        pinger.start(loop, 0.1, lambda: True)
        loop.call_later(0.3, stall)

    run_loop_for(1.3, setup)
    pinger.stop()
    listener.wait_for(1_000, timeout=0.1)
    assert between(listener, "start", "blocked") >= 2
    assert between(listener, "blocked", "unblocked") == 0
    assert between(listener, "unblocked") >= 2


def test_pinger_crashing_health_check_is_unhealthy(
    listener: NotifyListener, notifier: SystemdNotifier
) -> None:
    """A health check that raises counts as unhealthy, and the pinger survives it."""

    def boom() -> bool:
        raise RuntimeError("watcher gone")

    pinger = WatchdogPinger(notifier)
    run_loop_for(0.4, lambda loop: pinger.start(loop, 0.1, boom))
    assert pinger.running
    pinger.stop()
    assert not pinger.running
    assert listener.messages == []


def test_pinger_stop_cancels(listener: NotifyListener, notifier: SystemdNotifier) -> None:
    """After stop() no further ping is scheduled."""
    pinger = WatchdogPinger(notifier)

    def stop() -> None:
        pinger.stop()
        notifier.status("stopped")

    def setup(loop: asyncio.AbstractEventLoop) -> None:
        notifier.status("start")
        pinger.start(loop, 0.1, lambda: True)
        loop.call_later(0.25, stop)

    run_loop_for(0.6, setup)
    listener.wait_for(1_000, timeout=0.1)
    assert between(listener, "start", "stopped") >= 2
    assert between(listener, "stopped") == 0
    assert not pinger.running


# --- listen_fds ---------------------------------------------------------------------------


ECHO_SCRIPT = """\
import os, socket, sys
from envwatchd.systemd import listen_fds
socks = listen_fds()
leftover = [v for v in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES") if v in os.environ]
[srv] = socks
conn, _ = srv.accept()
line = conn.makefile("rb").readline().decode().strip()
facts = (
    f"fd={srv.fileno()} family={srv.family.name} type={srv.type.name} "
    f"inheritable={os.get_inheritable(srv.fileno())} leftover={leftover}"
)
conn.sendall(f"echo:{line} {facts}\\n".encode())
conn.close()
"""


@pytest.mark.skipif(SOCKET_ACTIVATE is None, reason="systemd-socket-activate not installed")
def test_listen_fds_under_socket_activation(short_dir: Path) -> None:
    """A socket handed over by systemd-socket-activate is adopted, CLOEXEC, env unset."""
    assert SOCKET_ACTIVATE is not None
    script = short_dir / "echo.py"
    script.write_text(ECHO_SCRIPT)
    path = short_dir / "act.sock"
    proc = subprocess.Popen(
        [SOCKET_ACTIVATE, "-l", str(path), "-E", f"PYTHONPATH={REPO}", sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reply = _talk(path, "hello")
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=5)
    assert reply == (
        "echo:hello fd=3 family=AF_UNIX type=SOCK_STREAM inheritable=False leftover=[]"
    ), err


def _talk(path: Path, line: str) -> str:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, "systemd-socket-activate never listened"
        time.sleep(0.01)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(str(path))
        c.sendall(line.encode() + b"\n")
        return c.makefile("rb").readline().decode().strip()


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"LISTEN_PID": "1", "LISTEN_FDS": "2"},
        {"LISTEN_PID": "x", "LISTEN_FDS": "1"},
        {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0"},
    ],
)
def test_listen_fds_refuses_foreign_or_bad_env(environ: dict[str, str]) -> None:
    """Variables for another pid, malformed, or empty give no sockets, and are unset."""
    env = {**environ, "LISTEN_FDNAMES": "x", "OTHER": "kept"}
    assert listen_fds(env) == []
    assert env == {"OTHER": "kept"}


def test_listen_fds_keeps_env_when_asked() -> None:
    """unset=False leaves the variables for a caller that re-execs."""
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    assert listen_fds(env, unset=False) == []
    assert env == {"LISTEN_PID": "1", "LISTEN_FDS": "1"}


# --- units and install_service -----------------------------------------------------------


def test_repo_units_are_the_canonical_text() -> None:
    """systemd/*.service|socket in the repo are exact copies of the module's text."""
    assert (REPO / "systemd" / "envwatchd.service").read_text() == SERVICE_UNIT
    assert (REPO / "systemd" / "envwatchd.socket").read_text() == SOCKET_UNIT


def fake_executable(directory: Path, name: str = "envwatchd") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / name
    exe.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(0)\n")
    exe.chmod(0o755)
    return exe


@pytest.fixture
def no_user_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake home whose runtime dir has no user manager, so systemctl --user cannot
    reach (and change) a real one on a developer's machine."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    return tmp_path


def verify(units: list[Path], env_root: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    env = {
        **os.environ,
        "HOME": str(env_root / "home"),
        "XDG_CONFIG_HOME": str(env_root / "config"),
        "XDG_RUNTIME_DIR": str(env_root / "run"),
    }
    return subprocess.run(
        [ANALYZE, "verify", "--user", *map(str, units)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_install_writes_units_and_says_what_to_run(no_user_manager: Path) -> None:
    """Without --now: units land in $XDG_CONFIG_HOME/systemd/user with our ExecStart."""
    exe = fake_executable(no_user_manager / "bin")
    code, message = install_service(now=False, executable=str(exe))
    unit_dir = no_user_manager / "config" / "systemd" / "user"
    service = (unit_dir / "envwatchd.service").read_text()
    assert code == 0
    assert f"\nExecStart={exe} run\n" in service
    assert "%h/.local/bin" not in service
    assert (unit_dir / "envwatchd.socket").read_text() == SOCKET_UNIT
    assert "systemctl --user enable --now envwatchd" in message


def test_install_now_without_user_manager(no_user_manager: Path) -> None:
    """--now with no reachable user manager (real systemctl) writes units, exits 1, explains."""
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl not installed")
    exe = fake_executable(no_user_manager / "bin")
    code, message = install_service(now=True, executable=str(exe))
    assert code == 1
    assert "No systemd user manager" in message
    assert "systemctl --user enable --now envwatchd.socket envwatchd.service" in message
    assert (no_user_manager / "config" / "systemd" / "user" / "envwatchd.service").exists()


def test_install_now_runs_systemctl_in_order(tmp_path: Path) -> None:
    """With a user manager: show-environment, daemon-reload, enable --now socket+service.

    No user manager can run in CI (no systemd as PID 1), so a recording runner
    stands in for systemctl here; the real one is exercised above.
    """
    calls: list[list[str]] = []

    def runner(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    exe = fake_executable(tmp_path / "bin")
    code, message = install_service(
        now=True, executable=str(exe), unit_dir=tmp_path / "units", run=runner
    )
    assert code == 0, message
    assert calls == [
        ["systemctl", "--user", "show-environment"],
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "envwatchd.socket", "envwatchd.service"],
    ]


def test_install_rejects_missing_executable(tmp_path: Path) -> None:
    """A non-existent executable is refused before anything is written."""
    code, message = install_service(
        now=False, executable=str(tmp_path / "nope"), unit_dir=tmp_path / "units"
    )
    assert code == 2
    assert "not found" in message
    assert not (tmp_path / "units").exists()


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")
def test_rendered_units_pass_systemd_analyze_verify(no_user_manager: Path) -> None:
    """The installed units, awkward path included, verify cleanly (no warnings at all)."""
    exe = fake_executable(no_user_manager / "my tools %n $HOME")
    code, _ = install_service(now=False, executable=str(exe))
    assert code == 0
    unit_dir = no_user_manager / "config" / "systemd" / "user"
    result = verify(
        [unit_dir / "envwatchd.service", unit_dir / "envwatchd.socket"], no_user_manager
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")
def test_repo_units_pass_verify_and_fail_without_binary(no_user_manager: Path) -> None:
    """The shipped files verify with %h/.local/bin/envwatchd present, and fail without it."""
    units = [REPO / "systemd" / "envwatchd.service", REPO / "systemd" / "envwatchd.socket"]
    missing = verify(units, no_user_manager)
    assert missing.returncode != 0
    assert "is not executable" in missing.stderr
    fake_executable(no_user_manager / "home" / ".local" / "bin")
    result = verify(units, no_user_manager)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_render_quotes_awkward_paths() -> None:
    """% and $ are escaped and spaces quoted, so systemd runs exactly that file."""
    line = next(
        ln
        for ln in render_units("/opt/my app/50%$x").values().__iter__().__next__().splitlines()
        if ln.startswith("ExecStart=")
    )
    assert line == 'ExecStart="/opt/my app/50%%$x" run'


def test_install_refuses_paths_systemd_cannot_run(tmp_path: Path) -> None:
    """A backslash in the path is refused up front (systemd rejects it at load time)."""
    exe = fake_executable(tmp_path / "odd\\dir")
    code, message = install_service(now=False, executable=str(exe), unit_dir=tmp_path / "u")
    assert code == 2
    assert "backslashes" in message
    assert not (tmp_path / "u").exists()
