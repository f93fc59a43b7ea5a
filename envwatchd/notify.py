"""Desktop notifications for new conflicts (contract 7), behind a small Protocol.

Why it is built this way:

- The daemon calls `submit()` from its asyncio loop, so submit only filters by
  severity and puts the batch on a queue. All D-Bus I/O happens in ONE worker
  thread using jeepney's *blocking* API: a D-Bus round trip can hang for
  seconds (a wedged notification server) and must never stall the loop, while
  a thread keeps the grouping timer and reconnect logic plain sequential code.
  jeepney.io.blocking also costs ~9 ms to import against ~34 ms for its asyncio
  module, and it is imported lazily in the worker, so `envwatchd scan` and a
  daemon that never raises a conflict do not pay for it at all.
- Grouping: conflicts arriving within `window` seconds of the first of a batch
  become one notification, so a 100-package install raises one popup.
- Rate limit: a batch that arrives less than `min_interval` after the last
  notification *replaces* it (replaces_id) instead of stacking a new popup;
  the replacement counts everything shown since that popup first appeared.
- No session bus or no notification server is normal (headless machines): one
  `notify.unavailable` log line, then quiet retries with a fresh connection on
  the next batch. Nothing here raises into the daemon.
"""

from __future__ import annotations

import contextlib
import html
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import structlog

from envwatchd.model import Conflict, Severity

__all__ = [
    "DBusNotifier",
    "DesktopNotifier",
    "NullNotifier",
    "render",
    "session_bus_address",
]

log = structlog.get_logger(__name__)

_URGENCY: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}
_ICON: Final = {
    Severity.INFO: "dialog-information",
    Severity.WARNING: "dialog-warning",
    Severity.ERROR: "dialog-error",
}
# What a missing bus or server looks like (see the D-Bus recipe): connection
# errors, EOF, timeouts (OSError), bad addresses and failed auth (ValueError,
# RuntimeError), no address at all (LookupError); DBusErrorResponse is added
# lazily with the jeepney import.
_UNAVAILABLE: Final = (OSError, EOFError, ValueError, RuntimeError, LookupError)
_BODY_LINES: Final = 5
_REPLY_TIMEOUT: Final = 5.0
_STOP: Final = object()


class DesktopNotifier(Protocol):
    """What the daemon needs from a notifier."""

    def submit(self, conflicts: Sequence[Conflict]) -> None:
        """Queue newly opened conflicts; must return at once (called on the loop)."""

    def close(self) -> None:
        """Flush what is pending (bounded) and release threads and connections."""


class NullNotifier:
    """Notifications switched off: accepts everything, does nothing."""

    def submit(self, conflicts: Sequence[Conflict]) -> None:
        return None

    def close(self) -> None:
        return None


def session_bus_address(environ: Mapping[str, str] | None = None) -> str | None:
    """DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus as sd-bus falls back to.

    Under a systemd user manager the variable is often absent while the
    per-user bus socket exists (dbus-user-session).
    """
    env = os.environ if environ is None else environ
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return env["DBUS_SESSION_BUS_ADDRESS"]
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.exists(os.path.join(runtime, "bus")):
        return "unix:path=" + os.path.join(runtime, "bus")
    return None


def _detail(conflict: Conflict) -> str:
    copies = conflict.copies
    if not copies:
        return conflict.kind.value
    seen = [set(c.imported_by) for c in copies if c.imported_by]
    common = sorted(set.intersection(*seen)) if seen else []
    visible = f" visible to {common[0]}" if common else ""
    plural = "copy" if len(copies) == 1 else "copies"
    return f"{conflict.kind.value} \u2014 {len(copies)} {plural}{visible}"


def _line(conflict: Conflict) -> str:
    remedy = f": {conflict.remedy[0]}" if conflict.remedy else ""
    return f"{conflict.name} ({_detail(conflict)}){remedy}"


def render(conflicts: Sequence[Conflict]) -> tuple[str, str]:
    """Summary and body (plain text, markup-escaped) for one notification."""
    if len(conflicts) == 1:
        only = conflicts[0]
        summary = f"{only.name}: {_detail(only)}"
        lines = [only.message] + [f"Fix: {only.remedy[0]}"] * bool(only.remedy)
    else:
        summary = f"envwatchd: {len(conflicts)} new conflicts"
        lines = [_line(c) for c in conflicts[:_BODY_LINES]]
        if len(conflicts) > _BODY_LINES:
            more = len(conflicts) - _BODY_LINES
            lines.append(f"\u2026 and {more} more: run `envwatch conflicts`")
    # Servers that advertise body-markup parse the body as XML-ish markup.
    return summary, html.escape("\n".join(lines), quote=False)


class DBusNotifier:
    """org.freedesktop.Notifications over the session bus, grouped and rate-limited."""

    def __init__(
        self,
        min_severity: Severity = Severity.WARNING,
        window: float = 2.0,
        min_interval: float = 10.0,
        app_name: str = "envwatchd",
        bus_address: str | None = None,
    ) -> None:
        self.min_severity = min_severity
        self.window = window
        self.min_interval = min_interval
        self.app_name = app_name
        self.bus_address = bus_address
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, conflicts: Sequence[Conflict]) -> None:
        wanted = [c for c in conflicts if c.severity.rank >= self.min_severity.rank]
        if not wanted or self._closed:
            return
        self._ensure_worker()
        self._queue.put(wanted)

    def close(self, timeout: float = _REPLY_TIMEOUT + 1.0) -> None:
        """Send what is pending now, then stop the worker (waits at most `timeout`)."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                worker = _Worker(self, self._queue)
                self._thread = threading.Thread(
                    target=worker.run, name="envwatchd-notify", daemon=True
                )
                self._thread.start()


class _Worker:
    """The single thread that owns the D-Bus connection and the grouping state."""

    def __init__(self, owner: DBusNotifier, inbox: queue.SimpleQueue[object]) -> None:
        self.owner = owner
        self.inbox = inbox
        self.pending: list[Conflict] = []
        self.flush_at = 0.0
        self.shown: list[Conflict] = []  # what the current popup lists
        self.last_id = 0
        self.last_sent = float("-inf")
        self.conn: Any = None
        self.unavailable = False

    def run(self) -> None:
        while True:
            item = self._next()
            if item is _STOP:
                self._flush()
                self._disconnect()
                return
            if isinstance(item, list):
                self._add(item)
            if self.pending and time.monotonic() >= self.flush_at:
                self._flush()

    def _next(self) -> object:
        if not self.pending:
            return self.inbox.get()
        try:
            return self.inbox.get(timeout=max(0.0, self.flush_at - time.monotonic()))
        except queue.Empty:
            return None

    def _add(self, conflicts: list[Conflict]) -> None:
        if not self.pending:
            self.flush_at = time.monotonic() + self.owner.window
        self.pending.extend(conflicts)

    def _flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        replace = time.monotonic() - self.last_sent < self.owner.min_interval
        group = [*self.shown, *batch] if replace and self.last_id else batch
        new_id = self._notify(group, self.last_id if replace else 0)
        if new_id is not None:
            self.shown, self.last_id, self.last_sent = group, new_id, time.monotonic()

    def _notify(self, group: Sequence[Conflict], replaces_id: int) -> int | None:
        try:
            new_id = self._call(group, replaces_id)
        except Exception as exc:  # the worker thread must survive anything
            self._unavailable(exc)
            return None
        if self.unavailable:
            log.info("notify.available", bus=self._address_for_log())
        self.unavailable = False
        log.info("notify.sent", id=new_id, replaces_id=replaces_id, conflicts=len(group))
        return new_id

    def _call(self, group: Sequence[Conflict], replaces_id: int) -> int:
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import unwrap_msg

        conn = self._connection()
        target = DBusAddress(
            "/org/freedesktop/Notifications",
            bus_name="org.freedesktop.Notifications",
            interface="org.freedesktop.Notifications",
        )
        msg = new_method_call(target, "Notify", "susssasa{sv}i", self._args(group, replaces_id))
        reply = conn.send_and_get_reply(msg, timeout=_REPLY_TIMEOUT)
        return int(unwrap_msg(reply)[0])

    def _args(self, group: Sequence[Conflict], replaces_id: int) -> tuple[Any, ...]:
        worst = max((c.severity for c in group), key=lambda s: s.rank)
        summary, body = render(group)
        hints = {
            "urgency": ("y", _URGENCY[worst]),
            "category": ("s", "x-envwatchd.conflict"),
        }
        # Errors stay until dismissed; the rest expire once the rate window is over.
        expire_ms = 0 if worst is Severity.ERROR else int(max(self.owner.min_interval, 10.0) * 1000)
        icon = _ICON[worst]
        return (self.owner.app_name, replaces_id, icon, summary, body, [], hints, expire_ms)

    def _connection(self) -> Any:
        if self.conn is None:
            from jeepney.io.blocking import open_dbus_connection

            address = self.owner.bus_address or session_bus_address()
            if address is None:
                raise LookupError("no session bus: DBUS_SESSION_BUS_ADDRESS is not set")
            self.conn = open_dbus_connection(address)
        return self.conn

    def _unavailable(self, exc: Exception) -> None:
        from jeepney.wrappers import DBusErrorResponse

        if not isinstance(exc, DBusErrorResponse):
            self._disconnect()  # the connection is dead or in an unknown state
        if not isinstance(exc, (*_UNAVAILABLE, DBusErrorResponse)):
            log.error("notify.failed", error=repr(exc), exc_info=exc)  # a bug, not an outage
        elif not self.unavailable:
            log.warning("notify.unavailable", reason=_reason(exc), bus=self._address_for_log())
        self.unavailable = True

    def _disconnect(self) -> None:
        # The popup we would replace belongs to a server we may never see again.
        self.last_id, self.shown = 0, []
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def _address_for_log(self) -> str | None:
        return self.owner.bus_address or session_bus_address()


def _reason(exc: Exception) -> str:
    name = getattr(exc, "name", None)  # DBusErrorResponse carries the D-Bus error name
    if isinstance(name, str):
        return f"{name}: {exc}"
    return f"{type(exc).__name__}: {exc}"
