"""The durable state: event log, last inventory, conflicts, last-known records.

Why one package owns sqlite3: the crash-consistency argument lives here and
only here. `commit()` writes a batch of events AND the inventory change that
produced them in ONE transaction, so after a kill -9 at any instant the stored
inventory is exactly "initial inventory + every logged event": the next
start-up reconcile diffs the disk against that inventory and neither loses nor
repeats an event.

Disk trouble (full, read-only, I/O error) must not kill a watcher: a failed
batch stays in an in-memory backlog, in order, `degraded` says why, and every
later commit retries the backlog first. If the daemon exits before the disk
recovers nothing is lost either: the inventory was not written with the
events, so the next reconcile finds the same changes again.

Corruption is not disk trouble: a file that is not a database (or fails
`PRAGMA quick_check`) at open is renamed aside, never overwritten, and a fresh
database starts. Schema changes go through `MIGRATIONS`, one function per
`PRAGMA user_version`.

Threading: the daemon calls the store from one thread only. The connection
is opened with `check_same_thread=False` so that thread need not be the one
that opened it; nothing here is safe to call concurrently.

Layout: the Store class is here; `_db` opens, checks, migrates and sets aside
the database file and holds the transaction and insert primitives; `_conflicts`
keeps conflict ids stable across passes. Callers import only Store and
StoreError from `envwatchd.store`.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from envwatchd.codec import (
    claim_from_json,
    claim_to_json,
    copy_from_json,
    copy_to_json,
    event_from_row,
    event_to_row,
    normalize_time,
    utc_now,
)
from envwatchd.model import Claim, Conflict, Copy, Event, Manager, NormalizedName
from envwatchd.store import _conflicts
from envwatchd.store._db import Corrupt, StoreError, connect, insert, move_aside, transaction

__all__ = ["Store", "StoreError"]

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class _Batch:
    events: tuple[Event, ...]
    removed: tuple[tuple[str, str], ...]
    upserted: tuple[Copy, ...]
    baseline: bool


class Store:
    """The SQLite state of one daemon. Single-threaded use; see the module docstring."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.degraded: str | None = None
        self._backlog: deque[_Batch] = deque()

    @classmethod
    def open(cls, path: Path) -> Store:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            conn = connect(path)
        except Corrupt as exc:
            try:
                move_aside(path, str(exc))
            finally:
                exc.conn.close()
            conn = connect(path)
        return cls(conn, path)

    def close(self) -> None:
        """Retry the backlog once, checkpoint the WAL, close. Unwritten batches are
        rediscovered by the next start-up reconcile (their inventory was not written)."""
        if not self.flush_backlog():
            log.warning("store.backlog_dropped", batches=len(self._backlog), error=self.degraded)
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            log.warning("store.checkpoint_failed", error=str(exc))
        self._conn.close()

    @property
    def backlog_size(self) -> int:
        return sum(len(b.events) for b in self._backlog)

    # -- inventory and events ------------------------------------------------

    def has_baseline(self) -> bool:
        row = self._conn.execute("SELECT 1 FROM meta WHERE key = 'baseline_done'").fetchone()
        return row is not None

    def load_inventory(self) -> list[Copy]:
        """The persisted inventory (without backlogged changes), ordered by (site, path)."""
        rows = self._conn.execute("SELECT data FROM inventory ORDER BY site, path")
        return [copy_from_json(json.loads(r["data"])) for r in rows]

    def commit(
        self,
        events: Sequence[Event],
        removed: Iterable[tuple[str, str]],
        upserted: Iterable[Copy],
        *,
        baseline: bool = False,
    ) -> list[Event]:
        """Write events and the inventory change atomically; ids set unless degraded."""
        stamped = tuple(
            replace(e, time=normalize_time(e.time) if e.time else utc_now()) for e in events
        )
        self._backlog.append(_Batch(stamped, tuple(removed), tuple(upserted), baseline))
        written = self._drain()
        return written if written is not None else list(stamped)

    def flush_backlog(self) -> bool:
        """Retry pending batches in order; True once nothing is pending."""
        self._drain()
        return not self._backlog

    def _drain(self) -> list[Event] | None:
        written: list[Event] | None = None
        while self._backlog:
            try:
                written = self._write(self._backlog[0])
            except sqlite3.OperationalError as exc:
                self._failed(exc)
                return None
            except (sqlite3.Error, ValueError) as exc:
                # not the disk: this batch itself cannot be written. Drop it loudly
                # rather than block every later batch behind it forever.
                bad = self._backlog.popleft()
                log.error("store.batch_rejected", error=repr(exc)[:300], events=len(bad.events))
                continue
            self._backlog.popleft()
        if self.degraded is not None:
            log.info("store.recovered", previous_error=self.degraded)
            self.degraded = None
        return written

    def _failed(self, exc: sqlite3.OperationalError) -> None:
        self.degraded = f"{exc.sqlite_errorname}: {exc}"
        log.error(
            "store.write_failed",
            error=self.degraded,
            path=str(self.path),
            pending_batches=len(self._backlog),
            pending_events=self.backlog_size,
        )

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """One transaction; a disk error degrades the store instead of raising."""
        try:
            with transaction(self._conn):
                yield
        except sqlite3.OperationalError as exc:
            self._failed(exc)

    def _write(self, batch: _Batch) -> list[Event]:
        with transaction(self._conn):
            out = [
                replace(e, id=insert(self._conn, "events", event_to_row(e))) for e in batch.events
            ]
            self._conn.executemany(
                "DELETE FROM inventory WHERE site = ? AND path = ?", batch.removed
            )
            self._conn.executemany(
                "INSERT INTO inventory (site, path, name, data) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (site, path) DO UPDATE SET name = excluded.name,"
                " data = excluded.data",
                [(c.site, c.path, c.name, json.dumps(copy_to_json(c))) for c in batch.upserted],
            )
            if batch.baseline:
                self._conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('baseline_done', ?)",
                    (utc_now(),),
                )
        return out

    def events(
        self,
        since: str | None = None,
        package: NormalizedName | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Logged events, oldest first; `limit` keeps the LAST n of the selection.

        `since` is ISO-8601 (naive = UTC), inclusive; ValueError if it is not.
        """
        since_norm = normalize_time(since) if since else None
        rows = self._conn.execute(
            "SELECT * FROM events WHERE (?1 IS NULL OR time >= ?1) AND (?2 IS NULL OR name = ?2)"
            " ORDER BY id DESC LIMIT ?3",
            (since_norm, package, -1 if limit is None else max(limit, 0)),
        ).fetchall()
        return [event_from_row(r) for r in reversed(rows)]

    def last_event(self) -> Event | None:
        row = self._conn.execute("SELECT * FROM events ORDER BY id DESC LIMIT 1").fetchone()
        return event_from_row(row) if row else None

    def event_counts(self) -> dict[tuple[str, str], int]:
        """Counts by (kind, manager); an uninstall counts under the manager it removed."""
        rows = self._conn.execute(
            "SELECT kind, COALESCE(manager, previous_manager, '') AS m, COUNT(*) AS n"
            " FROM events GROUP BY kind, m"
        )
        return {(r["kind"], r["m"]): r["n"] for r in rows}

    # -- conflicts -----------------------------------------------------------

    def sync_conflicts(
        self,
        current: Sequence[Conflict],
        now: str | None = None,
        scope: Callable[[Conflict], bool] | None = None,
        previous: Mapping[str, Conflict] | None = None,
    ) -> tuple[list[Conflict], list[Conflict]]:
        """Open new keys, keep ids of known ones, resolve the absent (within scope).

        `previous`: what the caller synced last time by key; an open conflict equal
        to it is not rewritten (its JSON can hold hundreds of copies).
        On a write failure nothing changes, `degraded` is set and ([], []) comes
        back: the next sync computes the same transitions again.
        """
        stamp = normalize_time(now) if now else utc_now()
        try:
            with transaction(self._conn):
                return _conflicts.sync(self._conn, current, stamp, scope, previous)
        except sqlite3.OperationalError as exc:  # COMMIT's failure too: not `_guard`
            self._failed(exc)
            return [], []

    def conflicts(self, include_resolved: bool = False) -> list[Conflict]:
        return _conflicts.load(self._conn, include_resolved)

    # -- last-known package database records ---------------------------------

    def remember_claims(self, claims: Iterable[Claim]) -> None:
        """Upsert each record; kept after the manager deletes it (conda does, on clobber)."""
        now = utc_now()
        with self._guard():
            for c in claims:
                row = {"manager": c.manager.value, "package": c.package, "name": c.name}
                row |= {"version": c.version, "record_path": c.record_path, "last_seen": now}
                insert(
                    self._conn,
                    "claims",
                    row | {"data": json.dumps(claim_to_json(c))},
                    "INSERT OR REPLACE",
                )

    def last_claims(self, manager: Manager | None = None) -> list[Claim]:
        rows = self._conn.execute(
            "SELECT data FROM claims WHERE ?1 IS NULL OR manager = ?1"
            " ORDER BY manager, record_path",
            (manager.value if manager else None,),
        )
        return [claim_from_json(json.loads(r["data"])) for r in rows]
