"""systemd integration: sd_notify, the watchdog, socket activation.

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
- The unit files and `install_service` are envwatchd.units: installing is a
  one-off command, this module is what the running daemon needs.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import structlog

__all__ = [
    "SD_LISTEN_FDS_START",
    "SystemdNotifier",
    "WatchdogPinger",
    "listen_fds",
    "watchdog_interval",
]

log = structlog.get_logger(__name__)

SD_LISTEN_FDS_START = 3


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
