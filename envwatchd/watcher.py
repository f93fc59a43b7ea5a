"""watchdog adapter: one inotify watch per watched DIRECTORY, never per file.

Raw events are triggers, never facts: a relevant name appearing in a watched
dir only marks that dir dirty; the daemon re-reads and diffs after a settle.

We drive watchdog's `InotifyFD` (one inotify fd, one reader thread) with our
own callback instead of scheduling an `Observer` watch per dir, because
watchdog 7 runs one emitter thread per scheduled watch (≈200 threads for 200
dirs); this way the thread count is 1 however many trees are watched.
A kernel queue overflow (IN_Q_OVERFLOW) reaches `on_overflow`, so lost events
become a rescan, never silence. The only module that imports watchdog.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import structlog
from watchdog.observers.inotify_c import (
    CallbackId,
    InotifyConstants,
    InotifyEvent,
    InotifyFD,
    Mask,
    WatchDescriptor,
)

from envwatchd.formats import is_metadata_name, is_pth_name

__all__ = ["WATCH_LIMIT", "Role", "Watcher"]

log = structlog.get_logger()


class Role(Enum):
    """What a watched dir is, which decides which names in it matter."""

    SITE = "site"
    CONDA_META = "conda-meta"
    DPKG = "dpkg"
    PARENT = "parent"


_MASK = Mask(
    InotifyConstants.IN_CREATE
    | InotifyConstants.IN_DELETE
    | InotifyConstants.IN_MOVED_FROM
    | InotifyConstants.IN_MOVED_TO
    | InotifyConstants.IN_CLOSE_WRITE
    | InotifyConstants.IN_DELETE_SELF
    | InotifyConstants.IN_MOVE_SELF
    | InotifyConstants.IN_ONLYDIR
    | InotifyConstants.IN_DONT_FOLLOW
)
_SELF = (
    InotifyConstants.IN_DELETE_SELF | InotifyConstants.IN_MOVE_SELF | InotifyConstants.IN_IGNORED
)

Changed = Callable[[str, Role], None]
WATCH_LIMIT = "inotify watch limit reached"


def relevant(role: Role, name: str, is_dir: bool) -> bool:
    """Does a change of `name` inside a dir of this role matter? (names only, no stat)"""
    if role is Role.SITE:
        return is_metadata_name(name) or is_pth_name(name) or name.startswith("~")
    if role is Role.CONDA_META:
        return name.endswith(".json") or name == "history"
    if role is Role.DPKG:
        return name == "status"
    return is_dir or name == "environments.txt" or name == "pyvenv.cfg"


@dataclass(slots=True)
class _DirCallback:
    """watchdog's WatchCallback protocol for one watched dir."""

    watcher: Watcher
    path: str
    role: Role

    def on_event(self, event: InotifyEvent) -> None:
        if event.mask & _SELF:
            self.watcher.fire(self.path, self.role)
            return
        name = os.fsdecode(event.name)
        if relevant(self.role, name, bool(event.mask & InotifyConstants.IN_ISDIR)):
            self.watcher.fire(self.path, self.role)

    def on_watch_deleted(self, wd: int) -> None:
        self.watcher.lost(self.path, self.role)

    def on_queue_overflow(self) -> None:
        self.watcher.overflowed()


class Watcher:
    """Watches dirs non-recursively and reports (dir, role) changes from its thread."""

    def __init__(self, on_change: Changed, on_overflow: Callable[[], None]) -> None:
        self._on_change = on_change
        self._on_overflow = on_overflow
        self._fd = InotifyFD()
        self._fd.daemon = True
        self._fd.start()
        self._lock = threading.Lock()
        self._watches: dict[str, tuple[int, Role, int]] = {}
        self.failed: dict[str, str] = {}
        self._overflow_pending = False

    def watch(self, path: str, role: Role) -> bool:
        """Add a watch; False (with the reason in `failed`) when it cannot be added."""
        with self._lock:
            if path in self._watches:
                return True
        callback = _DirCallback(self, path, role)
        try:
            wd = self._fd.add_callback(os.fsencode(path), _MASK, callback, CallbackId(id(callback)))
        except OSError as exc:
            return self._failed(path, role, exc)
        with self._lock:
            self._watches[path] = (wd, role, id(callback))
            self.failed.pop(path, None)
        return True

    def _failed(self, path: str, role: Role, exc: OSError) -> bool:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        reason = WATCH_LIMIT if exc.errno == errno.ENOSPC else str(exc)
        with self._lock:
            self.failed[path] = reason
        log.warning("watch.failed", path=path, role=role.value, reason=reason)
        return False

    def unwatch(self, path: str) -> None:
        with self._lock:
            entry = self._watches.pop(path, None)
            self.failed.pop(path, None)
        if entry is not None:
            wd, _role, cb_id = entry
            try:
                self._fd.remove_callbacks([(WatchDescriptor(wd), CallbackId(cb_id))])
            except OSError as exc:
                log.debug("watch.remove_failed", path=path, error=str(exc))

    def fire(self, path: str, role: Role) -> None:
        self._on_change(path, role)

    def lost(self, path: str, role: Role) -> None:
        with self._lock:
            self._watches.pop(path, None)
        self._on_change(path, role)

    def overflowed(self) -> None:
        """Called once per registered callback on overflow: coalesce to one report."""
        with self._lock:
            if self._overflow_pending:
                return
            self._overflow_pending = True
        log.warning("watch.overflow", watches=len(self._watches))
        self._on_overflow()

    def overflow_handled(self) -> None:
        with self._lock:
            self._overflow_pending = False

    @property
    def paths(self) -> dict[str, Role]:
        with self._lock:
            return {p: r for p, (_wd, r, _id) in self._watches.items()}

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._watches)

    def alive(self) -> bool:
        return self._fd.is_alive()

    def stop(self) -> None:
        self._fd.stop()
        self._fd.join(timeout=5)
