"""The daemon's answers to queries: rpc.Service's read side, over the live index and
the store's reader connection. A mixin so that daemon.py keeps only lifecycle and the
settle loop; every method here answers from memory or one indexed SQLite read.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import structlog

from envwatchd import __version__
from envwatchd.config import Config
from envwatchd.daemon_work import Worker
from envwatchd.index import Index
from envwatchd.model import canonicalize
from envwatchd.rpc import SUBSCRIBER_QUEUE_SIZE, PushQueue, RpcError
from envwatchd.server import RpcServer
from envwatchd.store import Store
from envwatchd.timespec import TimespecError, to_utc_iso
from envwatchd.watcher import Role, Watcher

__all__ = ["QueryService"]

log = structlog.get_logger()

INVALID_PARAMS = -32602


class QueryService:
    """status, where, explain, packages, envs, events, conflicts, subscribe, metrics."""

    config: Config
    index: Index
    reader: Store | None
    watcher: Watcher | None
    worker: Worker
    server: RpcServer | None
    started: float
    subscribers: set[PushQueue]

    def status(self) -> dict[str, Any]:
        inv = self.index.inventory
        last = self.reader.last_event() if self.reader else None
        watcher = self.watcher
        return {
            "version": __version__,
            "pid": os.getpid(),
            "started": _iso(self.started),
            "uptime_s": round(time.time() - self.started, 1),
            "trees_watched": sum(
                1 for r in (watcher.paths.values() if watcher else ()) if r is Role.SITE
            ),
            "watches": watcher.count if watcher else 0,
            "threads": threading.active_count(),
            "packages": len(inv.copies),
            "envs": len(inv.envs),
            "open_conflicts": len(self.reader.conflicts()) if self.reader else 0,
            "last_event": last.to_json() if last else None,
            "unwatched": sorted(watcher.failed) if watcher else [],
            "degraded": self.worker.degraded,
            "last_scan_ms": round(self.worker.last_scan_ms, 1),
            "clients": self.server.stats() if self.server else {},
        }

    def where(self, name: str) -> dict[str, Any]:
        return self.index.where(name)

    def explain(self, path: str) -> dict[str, Any]:
        return self.index.explain(path)

    def packages(self, env: str | None, manager: str | None) -> list[dict[str, Any]]:
        return self.index.packages(env, manager)

    def envs(self) -> list[dict[str, Any]]:
        return self.index.envs()

    def events(
        self, since: str | None, package: str | None, limit: int | None
    ) -> list[dict[str, Any]]:
        try:
            since_iso = to_utc_iso(since) if since else None
        except TimespecError as exc:
            raise RpcError(INVALID_PARAMS, str(exc), {"field": "since"}) from exc
        assert self.reader is not None
        name = canonicalize(package) if package else None
        return [e.to_json() for e in self.reader.events(since_iso, name, limit)]

    def conflicts(self, include_resolved: bool) -> list[dict[str, Any]]:
        assert self.reader is not None
        return [c.to_json() for c in self.reader.conflicts(include_resolved)]

    def subscribe(self) -> PushQueue:
        queue: PushQueue = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: PushQueue) -> None:
        self.subscribers.discard(queue)

    # -- metrics (prometheus_client is loaded only once somebody asks) -------------

    def metrics(self) -> dict[str, Any]:
        from envwatchd.metrics import CONTENT_TYPE

        return {"content_type": CONTENT_TYPE, "text": self._exposition()}

    def _exposition(self) -> str:
        from envwatchd.metrics import Source, exposition

        assert self.reader is not None
        counts = self.reader.event_counts()
        source = Source(
            self.status(), self.index.inventory, self.reader.conflicts(), counts, self.started
        )
        return exposition(source)

    def _export_metrics(self) -> None:
        """[export] prometheus_textfile: rewritten at start-up and after every settled pass."""
        target = self.config.export.prometheus_textfile
        if not target or self.reader is None:
            return
        from envwatchd.metrics import write_textfile

        path = os.path.expanduser(target)
        try:
            write_textfile(path, self._exposition())
        except OSError as exc:
            log.warning("metrics.textfile_failed", path=path, error=str(exc))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
