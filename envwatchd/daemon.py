"""The composition root and lifecycle: the one place that wires the pieces.

startup: open the store, scan (STATUS lines), reconcile against the stored
inventory (origin "reconcile"), evaluate conflicts, watch, serve, READY=1.
main loop: watcher threads mark dirs dirty; after a quiet `settle` the
affected dirs are re-read on ONE worker thread (scanner + store are used only
there), diffed against the committed snapshot, committed atomically, and the
results are published on the loop (subscribers, desktop, logs).
shutdown: STOPPING=1, close the server, stop watching, drain the worker,
flush and close the store.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

from envwatchd.config import Config
from envwatchd.daemon_work import Outcome, Pending, Worker
from envwatchd.discovery import Machine
from envwatchd.index import Index
from envwatchd.model import Inventory
from envwatchd.notify import DBusNotifier, DesktopNotifier, NullNotifier
from envwatchd.rpc import PushQueue
from envwatchd.server import RpcServer
from envwatchd.service import QueryService
from envwatchd.store import Store
from envwatchd.systemd import SystemdNotifier, WatchdogPinger, listen_fds, watchdog_interval
from envwatchd.watcher import Role, Watcher

__all__ = ["Daemon", "run_daemon"]

log = structlog.get_logger()

_RETRY_MS = 2000.0
"""After a failed pass (disk full, database locked) its marks are retried this much later."""


class Daemon(QueryService):
    """Implements rpc.Service over the live index and the store."""

    def __init__(
        self,
        config: Config,
        machine: Machine,
        state_dir: Path,
        socket_path: Path | None,
        *,
        inherited: socket.socket | None = None,
        desktop: DesktopNotifier | None = None,
        sd: SystemdNotifier | None = None,
    ) -> None:
        self.config = config
        self.state_dir = state_dir
        self.socket_path = socket_path
        self.inherited = inherited
        self.sd = sd or SystemdNotifier()
        self.desktop = desktop or NullNotifier()
        self.pinger = WatchdogPinger(self.sd)
        self.worker = Worker(config, machine, state_dir / "envwatchd.db")
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="envwatchd-work")
        self.index = Index.build(Inventory((), ()))
        self.reader: Store | None = None
        self.server: RpcServer | None = None
        self.watcher: Watcher | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event = asyncio.Event()
        self.started = time.time()
        self.subscribers: set[PushQueue] = set()
        self.pending = Pending()
        self._timer: asyncio.TimerHandle | None = None
        self._first_mark: float | None = None
        self._busy = False
        self._again = False
        self._rescan_waiters: list[asyncio.Future[Outcome]] = []
        self._retry: asyncio.TimerHandle | None = None
        self._unwatched_reported: set[str] = set()
        self._task: asyncio.Future[None] | None = None
        self._flush: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Future[None] | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def startup(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.sd.status("opening the event log")
        outcome = await self._in_worker(self.worker.start, self._progress)
        self.reader = Store.open(self.worker.db_path)
        self.watcher = Watcher(self._on_change, self._on_overflow)
        self._sync_watches()
        self._publish(outcome)
        self._schedule_flush()
        self.server = RpcServer(self, self.socket_path, self.inherited)
        await self.server.start()
        inv = self.index.inventory
        self.sd.ready(f"watching {len(inv.envs)} environments, {len(inv.copies)} packages")
        interval = watchdog_interval()
        if interval:
            self.pinger.start(self.loop, interval, self._healthy)
        log.info(
            "daemon.ready",
            envs=len(inv.envs),
            packages=len(inv.copies),
            watches=self.watcher.count,
            socket=str(self.socket_path or "inherited"),
        )

    def _progress(self, done: int, total: int) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.sd.status, f"scanning {done}/{total} environments")

    async def run(self) -> None:
        await self.stop_event.wait()

    async def shutdown(self) -> None:
        self.sd.stopping()
        log.info("daemon.stopping")
        self.pinger.stop()
        for handle in (self._timer, self._retry, self._flush):
            if handle is not None:
                handle.cancel()
        if self.server is not None:
            await self.server.close()
        if self.watcher is not None:
            self.watcher.stop()
        await self._in_worker(self.worker.close)
        self.executor.shutdown(wait=True)
        if self.reader is not None:
            self.reader.close()
        self.desktop.close()
        self.sd.close()
        log.info("daemon.stopped")

    def _healthy(self) -> bool:
        return self.watcher is not None and self.watcher.alive()

    async def _in_worker(self, fn: Any, *args: Any) -> Any:
        assert self.loop is not None
        return await self.loop.run_in_executor(self.executor, fn, *args)

    # -- file events -> settle -> work -------------------------------------------

    def _on_change(self, path: str, role: Role) -> None:
        """From the watcher thread: hop onto the loop."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._mark, path, role)

    def _on_overflow(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._mark_full)

    def _mark_full(self) -> None:
        self.pending.full = True
        self._arm()

    def _mark(self, path: str, role: Role) -> None:
        log.debug("watch.marked", path=path, role=role.value)
        self.pending.add(path, role, self.worker.pkgs_prefixes)
        self._arm()

    def _arm(self, delay_ms: float | None = None) -> None:
        assert self.loop is not None
        now = self.loop.time()
        if self._first_mark is None:
            self._first_mark = now
        settle = (delay_ms if delay_ms is not None else self.config.watch.settle_ms) / 1000
        deadline = min(now + settle, self._first_mark + self.config.watch.max_settle_ms / 1000)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(max(deadline, now), self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._busy:
            self._again = True
            return
        self._busy = True
        self._task = asyncio.ensure_future(self._process())

    async def _process(self) -> None:
        assert self.loop is not None
        pending, self.pending = self.pending, Pending()
        if self.watcher is not None:
            pending.unwatched = dict(self.watcher.failed)
            self._unwatched_reported = set(pending.unwatched)
        if pending.full and self.watcher is not None:
            # re-arm BEFORE the rescan: an overflow while it runs must mark a new one
            self.watcher.overflow_handled()
        first = self._first_mark if self._first_mark is not None else self.loop.time()
        force = (self.loop.time() - first) * 1000 >= self.config.watch.max_settle_ms
        self._first_mark = None
        try:
            outcome: Outcome = await self._in_worker(self.worker.apply, pending, force)
        except Exception:
            log.exception("work.failed")
            self.pending.merge(pending)
            self._busy = False
            self._arm(_RETRY_MS)
            return
        self._publish(outcome)
        self._busy = False
        self._schedule_flush()
        if outcome.deferred:
            self.pending.sites |= outcome.deferred
            # Keep the first mark's clock: a `~` stash that never goes away (a killed
            # pip) must not defer the site forever; max_settle forces it through.
            self._first_mark = first if self._first_mark is None else min(first, self._first_mark)
            self._arm()
        elif self._again or self.pending:
            self._again = False
            self._arm()
        if not self._busy and not self.pending and self._timer is None:
            waiters, self._rescan_waiters = self._rescan_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(outcome)

    def _schedule_flush(self) -> None:
        """While the store cannot write (disk full, read-only), retry its backlog on a
        timer: the events must reach the disk once space returns, change or no change."""
        if self.worker.degraded and self._flush is None and self.loop is not None:
            self._flush = self.loop.call_later(_RETRY_MS / 1000, self._start_flush)

    def _start_flush(self) -> None:
        self._flush = None
        self._flush_task = asyncio.ensure_future(self._flush_backlog())

    async def _flush_backlog(self) -> None:
        if not await self._in_worker(self.worker.flush):
            self._schedule_flush()

    def _publish(self, outcome: Outcome) -> None:
        if outcome.inventory is not None:
            self.index = Index.build(outcome.inventory)
            self._sync_watches()
        for event in outcome.events:
            log.info("event", **_flat(event.to_json()))
            self._push("event", event.to_json())
        changes = [*outcome.opened, *outcome.resolved]
        for conflict in changes:
            state = "resolved" if conflict.resolved else "opened"
            log.info(
                "conflict." + state,
                id=conflict.id,
                kind=conflict.kind.value,
                name=conflict.name,
                severity=conflict.severity.value,
            )
            self._push("conflict", {**conflict.to_json(), "state": state})
        if outcome.opened:
            self.desktop.submit(outcome.opened)
        self._export_metrics()

    def _push(self, method: str, params: dict[str, Any]) -> None:
        for queue in list(self.subscribers):
            try:
                queue.put_nowait((method, params))
            except asyncio.QueueFull:
                continue

    def _sync_watches(self) -> None:
        if self.watcher is None:
            return
        wanted = self.worker.watch_plan()
        current = self.watcher.paths
        for path in current.keys() - wanted.keys():
            self.watcher.unwatch(path)
        for path, role in wanted.items():
            if (
                path not in current
                and self.watcher.watch(path, role)
                and (
                    role is Role.PARENT
                    or self.worker.scanner.changed_since_read(path, role is Role.SITE)
                )
            ):
                # What changed there between the scan that planned this watch and now
                # went unseen: re-read it once (a new venv filled right after it appeared).
                # A dir whose mtime is still the one we read needs nothing.
                self._mark(path, role)
        if self.watcher.failed.keys() != self._unwatched_reported and self.loop is not None:
            self._arm()  # a pass opens (or resolves) the unwatched-tree conflicts
        if self.watcher.failed and self._retry is None and self.loop is not None:
            self._retry = self.loop.call_later(
                self.config.watch.rescan_unwatched_s, self._retry_unwatched
            )

    def _retry_unwatched(self) -> None:
        """Slow periodic catch-up, only while some tree could not be watched."""
        self._retry = None
        if self.watcher is None or not self.watcher.failed:
            return
        for path in list(self.watcher.failed):
            self.pending.sites.add(path)
            self.pending.rediscover = True
        self._arm()

    # -- rpc.Service: the queries live in service.QueryService ---------------------

    async def rescan(self) -> dict[str, Any]:
        assert self.loop is not None
        start = time.perf_counter()
        fut: asyncio.Future[Outcome] = self.loop.create_future()
        self._rescan_waiters.append(fut)
        self.pending.full = True
        self.pending.walk = True
        self._arm(0)
        outcome = await fut
        inv = self.index.inventory
        return {
            "envs": len(inv.envs),
            "packages": len(inv.copies),
            "events": len(outcome.events),
            "duration_ms": round((time.perf_counter() - start) * 1000, 1),
        }


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    env = data.pop("env", None) or {}
    return {**data, "env_kind": env.get("kind"), "env_prefix": env.get("prefix")}


def run_daemon(args: Any, config: Config) -> int:
    """`envwatchd run`: the foreground daemon systemd starts."""
    from envwatchd.paths import socket_path, state_dir

    machine = Machine(
        root=args.root,
        environ=dict(os.environ),
        home=os.environ.get("HOME") or os.path.expanduser("~"),
        settings=config.discovery,
    )
    inherited = listen_fds()
    desktop: DesktopNotifier = NullNotifier()
    if config.notify.enabled:
        desktop = DBusNotifier(
            config.notify.min_severity, config.notify.window_s, config.notify.min_interval_s
        )
    daemon = Daemon(
        config,
        machine,
        args.state_dir or state_dir(),
        None if inherited else (args.socket or socket_path()),
        inherited=inherited[0] if inherited else None,
        desktop=desktop,
    )
    return asyncio.run(_main(daemon))


async def _main(daemon: Daemon) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stop_event.set)
    code = 0
    try:
        await daemon.startup()
        await daemon.run()
    except Exception:
        log.exception("daemon.failed")
        code = 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await daemon.shutdown()
    return code
