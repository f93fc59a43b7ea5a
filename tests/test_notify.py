"""Desktop notifications against a real private dbus-daemon and a recording server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from envwatchd import notify
from envwatchd.model import (
    Conflict,
    ConflictKind,
    Copy,
    EnvKind,
    EnvRef,
    Format,
    Manager,
    Severity,
    canonicalize,
)
from envwatchd.notify import DBusNotifier, NullNotifier, render
from tests.dbus_helpers import DBUS_DAEMON, PrivateBus, Recorder, wait_until

needs_dbus = pytest.mark.skipif(DBUS_DAEMON is None, reason="dbus-daemon not installed")

WINDOW = 0.2
SETTLE = WINDOW * 4  # long enough that a second, unwanted Notify would have arrived


def make_copy(name: str, site: str, interpreters: tuple[str, ...]) -> Copy:
    env = EnvRef(EnvKind.SYSTEM, "/usr", "system")
    return Copy(
        name=canonicalize(name),
        display_name=name,
        version="1.0",
        format=Format.DIST_INFO,
        path=f"{site}/{name}-1.0.dist-info",
        site=site,
        env=env,
        manager=Manager.PIP,
        evidence=("INSTALLER: pip",),
        imported_by=interpreters,
    )


def make_conflict(name: str = "numpy", severity: Severity = Severity.WARNING) -> Conflict:
    py = ("/usr/bin/python3",)
    copies = (
        make_copy(name, "/usr/local/lib/python3.11/dist-packages", py),
        make_copy(name, "/usr/lib/python3/dist-packages", py),
    )
    return Conflict(
        key=f"duplicate:{name}",
        kind=ConflictKind.DUPLICATE,
        name=name,
        severity=severity,
        copies=copies,
        message=f"{name} <1.0> in /usr/local shadows the apt copy",
        remedy=(f"sudo pip uninstall {name}", f"apt reinstall python3-{name}"),
    )


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer."""
    with tempfile.TemporaryDirectory(prefix="ewn", dir="/tmp") as d:
        yield Path(d)


@pytest.fixture
def bus(short_dir: Path) -> Iterator[PrivateBus]:
    if DBUS_DAEMON is None:
        pytest.skip("dbus-daemon not installed")
    private = PrivateBus(short_dir)
    private.start()
    yield private
    private.kill()


@pytest.fixture
def recorder(bus: PrivateBus) -> Iterator[Recorder]:
    rec = Recorder(bus.address)
    yield rec
    rec.stop()


@pytest.fixture
def make_notifier(bus: PrivateBus) -> Iterator[Callable[..., DBusNotifier]]:
    made: list[DBusNotifier] = []

    def factory(**kwargs: Any) -> DBusNotifier:
        kwargs.setdefault("window", WINDOW)
        kwargs.setdefault("min_interval", 30.0)
        kwargs.setdefault("bus_address", bus.address)
        made.append(DBusNotifier(**kwargs))
        return made[-1]

    yield factory
    for n in made:
        n.close()


def unavailable(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "notify.unavailable"]


@needs_dbus
@pytest.mark.parametrize("severity", list(Severity))
def test_one_conflict_one_notify(
    severity: Severity, recorder: Recorder, make_notifier: Callable[..., DBusNotifier]
) -> None:
    """A single conflict raises one Notify naming the project, with its remedy and urgency."""
    notifier = make_notifier(min_severity=Severity.INFO, app_name="envwatchd")
    notifier.submit([make_conflict("numpy", severity)])
    [call] = recorder.wait_for(1)
    assert call.app_name == "envwatchd"
    assert call.replaces_id == 0
    assert call.summary == "numpy: duplicate \u2014 2 copies visible to /usr/bin/python3"
    assert "sudo pip uninstall numpy" in call.body
    assert "&lt;1.0&gt;" in call.body  # markup-escaped for servers with body-markup
    assert call.hints["urgency"] == notify._URGENCY[severity]
    assert call.expire_timeout == (0 if severity is Severity.ERROR else 30_000)
    time.sleep(SETTLE)
    assert len(recorder.calls) == 1


@needs_dbus
def test_burst_of_100_is_one_notify(
    recorder: Recorder, make_notifier: Callable[..., DBusNotifier]
) -> None:
    """100 conflicts within the window become exactly one notification."""
    notifier = make_notifier()
    for i in range(100):
        notifier.submit([make_conflict(f"pkg{i}")])
    [call] = recorder.wait_for(1)
    time.sleep(SETTLE)
    assert len(recorder.calls) == 1
    assert call.summary == "envwatchd: 100 new conflicts"
    assert call.body.splitlines()[0].startswith("pkg0 (duplicate")
    assert "sudo pip uninstall pkg0" in call.body
    assert "95 more" in call.body


@needs_dbus
def test_second_burst_within_interval_replaces(
    recorder: Recorder, make_notifier: Callable[..., DBusNotifier]
) -> None:
    """A batch inside min_interval updates the shown popup via replaces_id."""
    notifier = make_notifier(min_interval=30.0)
    notifier.submit([make_conflict("numpy")])
    [first] = recorder.wait_for(1)
    notifier.submit([make_conflict("scipy"), make_conflict("pandas")])
    calls = recorder.wait_for(2)
    assert len(calls) == 2
    assert calls[1].replaces_id == 101  # the id the recorder returned for the first
    assert calls[1].summary == "envwatchd: 3 new conflicts"
    assert first.replaces_id == 0


@needs_dbus
def test_after_interval_a_new_notification(
    recorder: Recorder, make_notifier: Callable[..., DBusNotifier]
) -> None:
    """Once min_interval has passed, the next batch is a fresh notification."""
    notifier = make_notifier(min_interval=0.3)
    notifier.submit([make_conflict("numpy")])
    recorder.wait_for(1)
    time.sleep(0.4)
    notifier.submit([make_conflict("scipy")])
    calls = recorder.wait_for(2)
    assert [c.replaces_id for c in calls] == [0, 0]
    assert calls[1].summary.startswith("scipy:")


@needs_dbus
def test_below_min_severity_is_dropped(
    recorder: Recorder, make_notifier: Callable[..., DBusNotifier]
) -> None:
    """Conflicts under min_severity never reach the bus; the ones above still do."""
    notifier = make_notifier(min_severity=Severity.ERROR)
    notifier.submit([make_conflict("numpy", Severity.WARNING), make_conflict("x", Severity.INFO)])
    time.sleep(SETTLE)
    assert recorder.calls == []
    notifier.submit([make_conflict("scipy", Severity.ERROR)])
    calls = recorder.wait_for(1)
    time.sleep(SETTLE)
    assert [c.summary.split(":")[0] for c in recorder.calls] == ["scipy"]
    assert calls[0].hints["urgency"] == 2


@needs_dbus
def test_close_flushes_pending(
    recorder: Recorder, make_notifier: Callable[..., DBusNotifier]
) -> None:
    """close() sends a batch still waiting out its window, then stops the worker."""
    notifier = make_notifier(window=60.0)
    notifier.submit([make_conflict("numpy")])
    notifier.close()
    assert len(recorder.calls) == 1
    assert not [t for t in threading.enumerate() if t.name == "envwatchd-notify"]


def test_no_bus_address_logs_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No session bus: no exception, one notify.unavailable line over several attempts."""
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no bus socket in there
    notifier = DBusNotifier(window=0.05)
    with structlog.testing.capture_logs() as logs:
        for name in ("numpy", "scipy", "pandas"):
            notifier.submit([make_conflict(name)])
            assert wait_until(lambda: len(unavailable(logs)) >= 1, 5)
            time.sleep(0.15)
        notifier.close()
    [line] = unavailable(logs)
    assert "DBUS_SESSION_BUS_ADDRESS" in line["reason"]
    assert line["log_level"] == "warning"


@needs_dbus
def test_server_absent_then_present(
    bus: PrivateBus, make_notifier: Callable[..., DBusNotifier]
) -> None:
    """Bus up but nobody owns the name: ServiceUnknown logged once; later batches retry."""
    notifier = make_notifier(window=0.05)
    with structlog.testing.capture_logs() as logs:
        notifier.submit([make_conflict("numpy")])
        assert wait_until(lambda: bool(unavailable(logs)))
        notifier.submit([make_conflict("scipy")])
        time.sleep(0.3)
        rec = Recorder(bus.address)
        try:
            notifier.submit([make_conflict("pandas")])
            [call] = rec.wait_for(1)
            # the worker logs recovery after the reply reaches it, a moment after the
            # recorder saw the call: wait for it rather than race it
            assert wait_until(lambda: any(e["event"] == "notify.available" for e in logs))
        finally:
            rec.stop()
    [line] = unavailable(logs)
    assert "ServiceUnknown" in line["reason"]
    assert call.summary.startswith("pandas:")


@needs_dbus
def test_bus_killed_and_restarted(
    bus: PrivateBus, make_notifier: Callable[..., DBusNotifier]
) -> None:
    """A dead bus is logged, not raised; a new bus at the same address works again."""
    notifier = make_notifier(window=0.05)
    rec = Recorder(bus.address)
    notifier.submit([make_conflict("numpy")])
    rec.wait_for(1)
    with structlog.testing.capture_logs() as logs:
        bus.kill()
        rec.stop()
        notifier.submit([make_conflict("scipy")])
        assert wait_until(lambda: bool(unavailable(logs)))
        notifier.submit([make_conflict("torch")])  # bus still down: quiet
        time.sleep(0.3)
        bus.start()
        rec2 = Recorder(bus.address)
        try:
            notifier.submit([make_conflict("pandas")])
            [call] = rec2.wait_for(1)
        finally:
            rec2.stop()
    assert len(unavailable(logs)) == 1
    assert call.summary.startswith("pandas:")
    assert call.replaces_id == 0  # the old popup died with the old bus


def test_null_notifier_accepts_everything() -> None:
    """NullNotifier is the switched-off implementation: it takes calls and does nothing."""
    null = NullNotifier()
    null.submit([make_conflict()])
    null.close()


def test_render_group_is_plain_and_bounded() -> None:
    """The group body lists the first five conflicts and counts the rest."""
    summary, body = render([make_conflict(f"p{i}") for i in range(7)])
    assert summary == "envwatchd: 7 new conflicts"
    assert len(body.splitlines()) == 6
    assert body.splitlines()[-1].startswith("\u2026 and 2 more")


def test_session_bus_address_falls_back_to_runtime_dir(tmp_path: Path) -> None:
    """Without DBUS_SESSION_BUS_ADDRESS, $XDG_RUNTIME_DIR/bus is used if it exists."""
    assert notify.session_bus_address({"XDG_RUNTIME_DIR": str(tmp_path)}) is None
    (tmp_path / "bus").touch()
    expected = f"unix:path={tmp_path}/bus"
    assert notify.session_bus_address({"XDG_RUNTIME_DIR": str(tmp_path)}) == expected
    assert notify.session_bus_address({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"}) == (
        "unix:path=/x"
    )


def test_import_does_not_load_jeepney() -> None:
    """The scan path imports notify without paying for jeepney."""
    code = "import sys, envwatchd.notify; print('jeepney' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": "."},
    )
    assert out.stdout.strip() == "False"
