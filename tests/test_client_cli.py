"""`envwatch` against a real server: tables, --json shapes, exit codes, colour, watch."""

from __future__ import annotations

import json
import os
import pty
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from envwatchd.client_cli import COMMANDS, main
from envwatchd.model import Severity
from tests.fake_service import FakeService, LiveServer, make_conflict, make_event

ROOT = Path(__file__).resolve().parent.parent
COPY_KEYS = {
    "name",
    "display_name",
    "version",
    "format",
    "path",
    "site",
    "env",
    "manager",
    "evidence",
    "imported_by",
}
EVENT_KEYS = {
    "id",
    "time",
    "kind",
    "name",
    "version",
    "previous_version",
    "manager",
    "previous_manager",
    "env",
    "site",
    "path",
    "origin",
    "command",
}
CONFLICT_KEYS = {
    "id",
    "kind",
    "name",
    "severity",
    "copies",
    "message",
    "remedy",
    "opened",
    "resolved",
}


@pytest.fixture(autouse=True)
def quiet_server() -> Iterator[None]:
    """The in-process server logs through structlog: keep it out of captured stdout."""
    with capture_logs():
        yield


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "envwatchd" / "envwatchd.sock"


@pytest.fixture
def live(sock_path: Path) -> Iterator[LiveServer]:
    with LiveServer(sock_path) as server:
        yield server


def envwatch(
    *args: str, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """The real console script, in a fresh interpreter."""
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "ENVWATCHD_SOCKET")}
    return subprocess.run(
        [sys.executable, "-m", "envwatchd.client_cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=base | (env or {}),
        **kw,
    )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_commands_are_the_contract_list() -> None:
    assert list(COMMANDS) == [
        "status",
        "where",
        "explain",
        "packages",
        "envs",
        "events",
        "conflicts",
        "watch",
        "rescan",
        "metrics",
        "sbom",
        "report",
    ]


def test_status_table(live: LiveServer, sock_path: Path) -> None:
    done = envwatch("status", "--socket", str(sock_path))
    assert done.returncode == 0, done.stderr
    assert "open conflicts  1" in done.stdout and "up since" in done.stdout
    assert "\x1b[" not in done.stdout  # a pipe is not a TTY: no colour


def test_where_marks_the_imported_copy(
    live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "where", "NumPy", "--socket", str(sock_path))
    assert code == 0
    assert "numpy: 2 copies" in out
    imported = next(line for line in out.splitlines() if line.rstrip().endswith("imported"))
    shadowed = next(line for line in out.splitlines() if line.rstrip().endswith("shadowed"))
    assert imported.split()[:3] == ["*", "2.0.1", "pip"]
    assert "1.24.2" in shadowed and "apt" in shadowed and "*" not in shadowed


def test_where_json_shape(
    live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "where", "numpy", "--json", "--socket", str(sock_path))
    found = json.loads(out)
    assert code == 0 and found["name"] == "numpy"
    assert all(set(c) == COPY_KEYS for c in found["copies"])
    assert set(found["interpreters"][0]) == {"executable", "imported", "shadowed"}


def test_where_nothing_found(
    live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "where", "left-pad", "--socket", str(sock_path))
    assert code == 0 and "left-pad: no copy found" in out


def test_explain_sends_an_absolute_path(
    live: LiveServer,
    sock_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir("/usr/lib/python3")
    code, out, _ = run(
        capsys, "explain", "dist-packages/numpy-1.24.2.dist-info/RECORD", "--socket", str(sock_path)
    )
    assert code == 0
    assert live.service.calls[-1] == (
        "explain",
        ("/usr/lib/python3/dist-packages/numpy-1.24.2.dist-info/RECORD",),
    )
    assert "manager       apt" in out and "INSTALLER: apt" in out


def test_explain_unknown_path(
    live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "explain", "/etc/passwd", "--socket", str(sock_path))
    assert code == 0 and "not inside any package tree" in out


def test_packages_filters_and_json(
    live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "packages",
        "--manager",
        "pip",
        "--env",
        "/home/ada/.local",
        "--json",
        "--socket",
        str(sock_path),
    )
    copies = json.loads(out)
    assert code == 0 and [c["version"] for c in copies] == ["2.0.1"]
    assert all(set(c) == COPY_KEYS for c in copies)
    code, out, _ = run(capsys, "packages", "--socket", str(sock_path))
    assert out.splitlines()[0].split() == ["NAME", "VERSION", "MANAGER", "ENV", "FORMAT", "SITE"]
    assert out.rstrip().endswith("3 packages")


def test_envs_table(live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "envs", "--socket", str(sock_path))
    rows = [line.split() for line in out.splitlines()]
    assert code == 0 and rows[0] == ["KIND", "PREFIX", "NAME", "PYTHON", "PACKAGES"]
    assert ["venv", "/home/ada/proj/.venv", "proj", "3.11", "1"] in rows


def test_events_table_and_json(
    live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "events", "--socket", str(sock_path))
    assert code == 0 and "upgrade  numpy     1.26.4 -> 2.0.1" in out
    assert "install  requests  2.32.3" in out
    code, out, _ = run(capsys, "events", "--json", "--limit", "1", "--socket", str(sock_path))
    events = json.loads(out)
    assert [e["name"] for e in events] == ["requests"] and set(events[0]) == EVENT_KEYS


def test_events_since_is_sent_as_utc(
    live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "events", "--since", "2h", "--package", "NumPy", "--socket", str(sock_path))
    method, (since, package, limit) = live.service.calls[-1]
    assert method == "events" and package == "NumPy" and limit is None
    assert since.endswith("+00:00") and len(since) == 25


@pytest.mark.parametrize(
    ("conflicts", "expected"),
    [
        (None, 1),  # one open warning, one resolved error
        ([make_conflict(Severity.ERROR, 5)], 1),
        ([make_conflict(Severity.INFO, 5)], 0),
        ([make_conflict(Severity.ERROR, 5, resolved="2024-05-03T00:00:00+00:00")], 0),
        ([], 0),
    ],
)
def test_conflicts_exit_code(sock_path: Path, conflicts: Any, expected: int) -> None:
    """1 only for an open warning or error; info advisories and resolved ones do not count."""
    with LiveServer(sock_path, FakeService(conflicts)):
        for extra in ([], ["--json"], ["--all"]):
            done = envwatch("conflicts", *extra, "--socket", str(sock_path))
            assert done.returncode == expected, (extra, done.stdout, done.stderr)


def test_conflicts_human_output(
    live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "conflicts", "--socket", str(sock_path))
    assert code == 1
    assert "#1 warning duplicate numpy  (open" in out
    assert "shadows numpy 1.24.2" in out and "pip uninstall --user numpy" in out
    winner, loser = (line.split() for line in out.splitlines() if "dist-info" in line)
    assert winner[:3] == ["*", "2.0.1", "pip"] and loser[:2] == ["1.24.2", "apt"]
    assert "#2" not in out and out.rstrip().endswith("(* = the copy an interpreter imports)")
    code, out, _ = run(capsys, "conflicts", "--all", "--socket", str(sock_path))
    assert "#2 error duplicate numpy  (resolved 2024-05-03 00:00:00" in out


def test_conflicts_json_shape(
    live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "conflicts", "--all", "--json", "--socket", str(sock_path))
    conflicts = json.loads(out)
    assert code == 1 and len(conflicts) == 2
    assert all(set(c) == CONFLICT_KEYS for c in conflicts)


def test_rescan(live: LiveServer, sock_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rescan", "--socket", str(sock_path))
    assert code == 0 and out.startswith("rescanned 3 environments, 3 packages")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["where"],
        ["--json", "status"],  # options go after the command (contract §1)
        ["events", "--limit", "0"],
        ["events", "--limit", "many"],
        ["events", "--since", "next tuesday"],
        ["conflicts", "--all=yes"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert "usage: envwatch" in capsys.readouterr().err


def test_params_the_daemon_rejects_exit_2(live: LiveServer, sock_path: Path) -> None:
    done = envwatch("packages", "--manager", "brew", "--socket", str(sock_path))
    assert done.returncode == 2 and "manager" in done.stderr


def test_daemon_internal_error_exits_1(live: LiveServer, sock_path: Path) -> None:
    live.service.fail = "status"
    done = envwatch("status", "--socket", str(sock_path))
    assert done.returncode == 1 and "internal error" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["status", "conflicts", "watch", "rescan"])
def test_daemon_down_exits_3_and_says_how_to_start_it(tmp_path: Path, command: str) -> None:
    done = envwatch(command, env={"XDG_RUNTIME_DIR": str(tmp_path)})
    assert done.returncode == 3
    assert str(tmp_path / "envwatchd" / "envwatchd.sock") in done.stderr
    assert "systemctl --user start envwatchd" in done.stderr and "envwatchd run" in done.stderr
    assert "Traceback" not in done.stderr


def test_socket_from_environment(live: LiveServer, sock_path: Path) -> None:
    done = envwatch("envs", "--json", env={"ENVWATCHD_SOCKET": str(sock_path)})
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 3


def _on_a_tty(args: list[str], env: dict[str, str]) -> str:
    """Run envwatch with stdout on a pseudo-terminal and return what it printed."""
    controller, terminal = pty.openpty()
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "envwatchd.client_cli", *args],
        stdout=terminal,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=base | env,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(30)
    assert proc.stderr is not None
    proc.stderr.close()
    os.close(controller)
    return b"".join(chunks).decode()


@pytest.mark.parametrize(
    ("env", "coloured"),
    [
        ({"TERM": "xterm"}, True),
        ({"TERM": "xterm", "NO_COLOR": "1"}, False),
        ({"TERM": "xterm", "NO_COLOR": ""}, True),  # empty NO_COLOR does not count (no-color.org)
        ({"TERM": "dumb"}, False),
    ],
)
def test_colour_only_on_a_tty_without_no_color(
    live: LiveServer, sock_path: Path, env: dict[str, str], coloured: bool
) -> None:
    out = _on_a_tty(["conflicts", "--socket", str(sock_path)], env)
    assert "warning" in out
    assert ("\x1b[" in out) is coloured


def test_help_stays_lean() -> None:
    """--help must not import pydantic, structlog, watchdog or asyncio."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "envwatchd.client_cli", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 0 and "status" in done.stdout and "watch" in done.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    assert not imported & {"pydantic", "structlog", "watchdog", "asyncio", "envwatchd.rpc"}
    assert "stream event and conflict notifications" in envwatch("watch", "--help").stdout


class Watch:
    """`envwatch watch` in a subprocess; a thread collects its stdout lines.

    Trap: select() on a text pipe lies once readline() has buffered two lines,
    hence the thread and queue.
    """

    def __init__(self, sock_path: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "envwatchd.client_cli",
                "watch",
                *extra,
                "--socket",
                str(sock_path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def line(self, timeout: float = 10.0) -> str:
        return self.lines.get(timeout=timeout)

    def finish(self, sig: int | None = None) -> tuple[int, str]:
        if sig is not None:
            self.proc.send_signal(sig)
        code = self.proc.wait(10)
        self._reader.join(5)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_watch_json_lines_then_clean_exit_on_signal(
    live: LiveServer, sock_path: Path, sig: signal.Signals
) -> None:
    watch = Watch(sock_path, "--json")
    live.wait_for(lambda: len(live.service.queues) == 1, timeout=10)
    live.push("event", make_event(ident=7).to_json())
    live.push("conflict", make_conflict().to_json())
    first, second = json.loads(watch.line()), json.loads(watch.line())
    assert first == {"method": "event", "params": make_event(ident=7).to_json()}
    assert second["method"] == "conflict" and set(second["params"]) == CONFLICT_KEYS
    code, err = watch.finish(sig)
    assert code == 0 and "Traceback" not in err
    live.wait_for(lambda: not live.service.queues)


def test_watch_human_lines(live: LiveServer, sock_path: Path) -> None:
    watch = Watch(sock_path)
    live.wait_for(lambda: len(live.service.queues) == 1, timeout=10)
    live.push("event", make_event().to_json())
    live.push("conflict", make_conflict().to_json())
    event, conflict = watch.line().split(), watch.line().split()
    assert event[:2] == ["event", "2024-05-01"] and "upgrade" in event and "numpy" in event
    assert conflict[0] == "conflict" and "opened" in conflict and "warning" in conflict
    assert watch.finish(signal.SIGINT)[0] == 0


def test_watch_exits_3_when_the_daemon_goes_away(sock_path: Path) -> None:
    with LiveServer(sock_path) as live:
        watch = Watch(sock_path)
        live.wait_for(lambda: len(live.service.queues) == 1, timeout=10)
    code, err = watch.finish()
    assert code == 3 and "closed the connection" in err
    assert "systemctl --user start envwatchd" in err and "Traceback" not in err
