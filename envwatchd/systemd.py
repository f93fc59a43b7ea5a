"""systemd integration: sd_notify, the watchdog, socket activation, unit install.

Why each piece looks the way it does:

- `SystemdNotifier` wraps `sdnotify` but is a no-op outside systemd (no
  NOTIFY_SOCKET) and never raises: a broken notify socket must not take the
  daemon down, it is logged once and then ignored.
- `WatchdogPinger` runs *on the event loop* (`loop.call_later`), never in a
  thread of its own: a free-running thread would keep pinging while the loop is
  wedged, which is exactly the failure the watchdog exists to catch. Each tick
  also asks `healthy()` (the daemon passes "the watcher thread is alive").
- `listen_fds` follows sd_listen_fds(3): the variables are only meant for the
  process whose pid is LISTEN_PID, fds start at 3, and the variables are unset
  so children do not believe the sockets are theirs.
- `install_service` renders the canonical unit texts below. The files in the
  repository's `systemd/` directory are identical copies (a test checks that),
  so a wheel install carries the units without package-data plumbing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from envwatchd.paths import xdg

__all__ = [
    "SD_LISTEN_FDS_START",
    "SERVICE_NAME",
    "SERVICE_UNIT",
    "SOCKET_NAME",
    "SOCKET_UNIT",
    "SystemdNotifier",
    "WatchdogPinger",
    "install_service",
    "listen_fds",
    "render_units",
    "watchdog_interval",
]

log = structlog.get_logger(__name__)

SD_LISTEN_FDS_START = 3
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


class SystemdNotifier:
    """sd_notify(3) for the daemon; silent outside systemd, never raises."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = env.get("NOTIFY_SOCKET") or None
        self._inner: Any = None
        self._failed = False
        if self._address is not None:
            self._connect()

    @property
    def enabled(self) -> bool:
        """True when started by systemd with a notify socket."""
        return self._address is not None

    def _connect(self) -> None:
        import sdnotify  # only under systemd

        try:
            # On a failed connect sdnotify drops its socket unclosed; the
            # ResourceWarning fires right here, and the failure is logged below.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                self._inner = sdnotify.SystemdNotifier(debug=True)
        except Exception as exc:  # sdnotify re-raises anything (even a TypeError)
            self._fail(exc)

    def close(self) -> None:
        """Release the notify socket; later calls become no-ops."""
        inner, self._inner = self._inner, None
        sock = getattr(inner, "socket", None)
        if sock is not None:
            sock.close()

    def _fail(self, exc: BaseException) -> None:
        if not self._failed:
            log.warning("systemd.notify_failed", socket=self._address, error=repr(exc))
        self._failed = True

    def notify(self, state: str) -> None:
        """Send raw `KEY=value` lines; errors are logged once and swallowed."""
        if self._inner is None:
            return
        try:
            self._inner.notify(state)
        except Exception as exc:  # debug=True re-raises OSError and friends
            self._fail(exc)

    def status(self, text: str) -> None:
        # STATUS= is one line: a newline would start a new (bogus) assignment.
        self.notify("STATUS=" + " ".join(text.splitlines()))

    def ready(self, status: str | None = None) -> None:
        self.notify("READY=1" if status is None else f"READY=1\nSTATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def reloading(self) -> None:
        # systemd >= 253 wants MONOTONIC_USEC with RELOADING=1; older ones ignore it.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")


def watchdog_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """The watchdog timeout in seconds from WATCHDOG_USEC, as sd_watchdog_enabled(3).

    None when unset, malformed, zero, or meant for another pid (WATCHDOG_PID).
    """
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


class WatchdogPinger:
    """WATCHDOG=1 every interval/2, scheduled on the asyncio loop itself."""

    def __init__(self, notifier: SystemdNotifier) -> None:
        self._notifier = notifier
        self._handle: asyncio.TimerHandle | None = None
        self._withheld = False

    @property
    def running(self) -> bool:
        return self._handle is not None

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        healthy: Callable[[], bool],
    ) -> None:
        """Begin pinging; call from the loop's own thread (call_later is not thread-safe)."""
        if interval <= 0:
            raise ValueError(f"watchdog interval must be positive, got {interval}")
        self.stop()
        period = interval / 2
        log.info("systemd.watchdog_started", interval_s=interval, period_s=period)
        self._schedule(loop, period, healthy)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(
        self, loop: asyncio.AbstractEventLoop, period: float, healthy: Callable[[], bool]
    ) -> None:
        self._handle = loop.call_later(period, self._tick, loop, period, healthy)

    def _tick(
        self, loop: asyncio.AbstractEventLoop, period: float, healthy: Callable[[], bool]
    ) -> None:
        if _is_healthy(healthy):
            if self._withheld:
                log.info("systemd.watchdog_resumed")
            self._withheld = False
            self._notifier.watchdog()
        elif not self._withheld:
            log.warning("systemd.watchdog_withheld", reason="health check failed")
            self._withheld = True
        self._schedule(loop, period, healthy)


def _is_healthy(healthy: Callable[[], bool]) -> bool:
    try:
        return bool(healthy())
    except Exception:  # a crashing health check is an unhealthy daemon
        return False


_LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def listen_fds(
    environ: MutableMapping[str, str] = os.environ, unset: bool = True
) -> list[socket.socket]:
    """Sockets passed by systemd (sd_listen_fds(3)), close-on-exec, fds 3..3+n-1.

    Returns [] when the variables are absent, malformed or for another pid.
    """
    try:
        count = _listen_count(environ)
    finally:
        if unset:
            for name in _LISTEN_VARS:
                environ.pop(name, None)
    sockets = [s for fd in range(count) if (s := _adopt(SD_LISTEN_FDS_START + fd)) is not None]
    if count:
        log.info("systemd.listen_fds", count=count, adopted=len(sockets))
    return sockets


def _listen_count(environ: Mapping[str, str]) -> int:
    pid, fds = environ.get("LISTEN_PID", ""), environ.get("LISTEN_FDS", "")
    if not pid or not fds:
        return 0
    try:
        if int(pid) != os.getpid():
            return 0
        count = int(fds)
    except ValueError:
        log.warning("systemd.listen_fds_invalid", listen_pid=pid, listen_fds=fds)
        return 0
    return max(count, 0)


def _adopt(fd: int) -> socket.socket | None:
    try:
        os.set_inheritable(fd, False)
        return socket.socket(fileno=fd)  # family and type are read from the fd
    except OSError as exc:
        log.warning("systemd.listen_fd_unusable", fd=fd, error=repr(exc))
        return None


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
