"""The user units envwatchd ships, and `envwatchd install-service` that writes them.

Why the unit texts live in code: the files in the repository's `systemd/`
directory are identical copies of SERVICE_UNIT and SOCKET_UNIT (a test checks
that), so a wheel install carries the units without package-data plumbing.
`install_service` renders them with ExecStart pointing at the installed
executable, writes them atomically, and with `now` asks the user manager to
enable them; without a reachable user manager it says what to run instead.

Kept apart from systemd.py, which is what the running daemon needs (sd_notify,
the watchdog, socket activation): installing is a one-off command and pulls in
subprocess and shutil, the daemon never does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import structlog

from envwatchd.paths import xdg

__all__ = [
    "SERVICE_NAME",
    "SERVICE_UNIT",
    "SOCKET_NAME",
    "SOCKET_UNIT",
    "install_service",
    "render_units",
]

log = structlog.get_logger(__name__)

SERVICE_NAME = "envwatchd.service"
SOCKET_NAME = "envwatchd.socket"
_DEFAULT_EXEC = "ExecStart=%h/.local/bin/envwatchd run"

# Canonical text of systemd/envwatchd.service. Sandboxing notes: in a *user*
# manager, systemd < 253 silently skips the mount-namespace options
# (ProtectSystem=, ProtectHome=, ReadWritePaths=); systemd >= 253 implies
# PrivateUsers=yes for them and falls back to skipping them when unprivileged
# user namespaces are unavailable. So they are defence in depth, never a
# reason to fail. Inside that user namespace other uids (root included) show
# as "nobody": file owners and SO_PEERCRED of root peers read as 65534.
SERVICE_UNIT = """\
[Unit]
Description=envwatchd: watch every Python package tree and tell which manager installed what
Documentation=https://pypi.org/project/envwatchd/
# The socket unit holds the listening socket; pulling it in and ordering after
# it means a direct `start envwatchd.service` still receives LISTEN_FDS.
Wants=envwatchd.socket
After=envwatchd.socket

[Service]
# READY=1 is sent after the first inventory and the socket bind (contract 7).
Type=notify
# Only the daemon itself may talk to the notify socket, not helpers it runs.
NotifyAccess=main
ExecStart=%h/.local/bin/envwatchd run
# Pinged from the asyncio loop at half this interval; a wedged loop or a dead
# watcher thread stops the pings and systemd restarts us.
WatchdogSec=30s
Restart=on-failure
RestartSec=2s
# Bounded graceful shutdown: STOPPING=1 first, then close store and socket.
TimeoutStopSec=15s
# Logs go to stdout; journald keeps them. Unbuffered so lines are not lost.
Environment=PYTHONUNBUFFERED=1
# Pin state and socket to the directories systemd makes writable below, so the
# daemon's XDG lookups cannot drift to a path the sandbox left read-only.
Environment=ENVWATCHD_STATE_DIR=%S/envwatchd
Environment=ENVWATCHD_SOCKET=%t/envwatchd/envwatchd.sock
# ProtectSystem=strict leaves /tmp read-only: SQLite spills temp files here.
Environment=SQLITE_TMPDIR=%t/envwatchd
StateDirectory=envwatchd
StateDirectoryMode=0700
RuntimeDirectory=envwatchd
RuntimeDirectoryMode=0700
# The socket unit owns %t/envwatchd/envwatchd.sock: removing the runtime dir
# when the service stops would delete the socket out from under it.
RuntimeDirectoryPreserve=yes
# Read everything, write only our own state and runtime dirs. inotify watches
# inodes, not mounts, so read-only bind mounts still deliver every change.
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths=%S/envwatchd %t/envwatchd
# Deliberately no private /tmp: venvs created under /tmp must stay visible.
PrivateTmp=no
# The following need no namespaces and work in any user manager (prctl and
# seccomp). No MemoryDenyWriteExecute: libffi closures (ctypes/cffi) need W+X.
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native
UMask=0077
# Scanning every tree must not compete with the user's work. Memory limits
# apply where the user manager has the memory controller delegated.
Nice=10
IOSchedulingClass=idle
MemoryHigh=512M
MemoryMax=1G
TasksMax=64

[Install]
WantedBy=default.target
Also=envwatchd.socket
"""

# Canonical text of systemd/envwatchd.socket (contract 2: dir 0700, socket 0600).
SOCKET_UNIT = """\
[Unit]
Description=envwatchd control socket
Documentation=https://pypi.org/project/envwatchd/

[Socket]
ListenStream=%t/envwatchd/envwatchd.sock
SocketMode=0600
DirectoryMode=0700

[Install]
WantedBy=sockets.target
"""


def render_units(executable: str) -> dict[str, str]:
    """The unit files keyed by name, with ExecStart pointing at `executable`."""
    exec_line = f"ExecStart={_quote_exec(executable)} run"
    return {
        SERVICE_NAME: SERVICE_UNIT.replace(_DEFAULT_EXEC, exec_line),
        SOCKET_NAME: SOCKET_UNIT,
    }


def _quote_exec(path: str) -> str:
    """Escape a path for ExecStart='s command word.

    `%` starts a specifier, so it is doubled. `$` is left alone: systemd expands
    variables in the arguments, not in the command path, and `$$` there would
    name a different file (seen with systemd-analyze verify, systemd 252).
    """
    escaped = path.replace("%", "%%")
    if any(c.isspace() or c in "\"'" for c in escaped):
        return '"' + escaped.replace('"', '\\"') + '"'
    return escaped


def _unsupported_path(path: str) -> bool:
    """systemd refuses command paths with backslashes or control characters."""
    return "\\" in path or not path.isprintable()


Runner = Callable[..., subprocess.CompletedProcess[str]]

_ENABLE_ARGS = ("enable", "--now", SOCKET_NAME, SERVICE_NAME)


def _manual_steps() -> str:
    return f"systemctl --user daemon-reload\n  systemctl --user {' '.join(_ENABLE_ARGS)}"


def install_service(
    *,
    now: bool,
    executable: str,
    unit_dir: Path | None = None,
    run: Runner = subprocess.run,
) -> tuple[int, str]:
    """Write the user units; with `now`, reload and enable them. Returns (exit code, message).

    Exit 2 when `executable` cannot be found, 1 when `now` was asked but the
    user manager is unreachable or systemctl failed, else 0.
    """
    resolved = _resolve_executable(executable)
    if resolved is None:
        return 2, f"envwatchd executable not found: {executable}"
    if _unsupported_path(resolved):
        return 2, f"systemd cannot run a path with backslashes or control characters: {resolved!r}"
    target = unit_dir if unit_dir is not None else xdg("XDG_CONFIG_HOME") / "systemd" / "user"
    written = _write_units(target, render_units(resolved))
    log.info("systemd.units_written", unit_dir=str(target), executable=resolved)
    wrote = "Wrote " + ", ".join(str(p) for p in written) + "."
    if not now:
        return 0, f"{wrote}\nTo start envwatchd now and at every login, run:\n  {_manual_steps()}"
    if not _user_manager_running(run):
        return 1, (
            f"{wrote}\nNo systemd user manager is reachable (systemctl --user failed), "
            f"so nothing was enabled. In a login session, run:\n  {_manual_steps()}"
        )
    return _enable(run, wrote)


def _resolve_executable(executable: str) -> str | None:
    if os.sep in executable:
        path = os.path.abspath(executable)
        return path if os.access(path, os.X_OK) and os.path.isfile(path) else None
    return shutil.which(executable)


def _write_units(target: Path, units: Mapping[str, str]) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = target / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # atomic: systemd never reads half a unit
        written.append(path)
    return written


def _systemctl(run: Runner, *args: str) -> subprocess.CompletedProcess[str] | None:
    argv: Sequence[str] = ("systemctl", "--user", *args)
    try:
        return run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("systemd.systemctl_failed", argv=list(argv), error=repr(exc))
        return None


def _user_manager_running(run: Runner) -> bool:
    result = _systemctl(run, "show-environment")
    return result is not None and result.returncode == 0


def _enable(run: Runner, wrote: str) -> tuple[int, str]:
    for args in (("daemon-reload",), _ENABLE_ARGS):
        result = _systemctl(run, *args)
        if result is None or result.returncode != 0:
            detail = "" if result is None else (result.stderr or result.stdout).strip()
            return 1, (
                f"{wrote}\n`systemctl --user {' '.join(args)}` failed: {detail}\n"
                f"Fix the cause, then run:\n  {_manual_steps()}"
            )
    log.info("systemd.units_enabled", units=[SOCKET_NAME, SERVICE_NAME])
    return 0, f"{wrote}\nEnabled and started {SOCKET_NAME} and {SERVICE_NAME}."
