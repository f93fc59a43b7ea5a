"""The durable state: event log, last inventory, conflicts, last-known records.

Why one module owns sqlite3: the crash-consistency argument lives here and
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
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from envwatchd.codec import (
    claim_from_json,
    claim_to_json,
    conflict_from_json,
    conflict_to_json,
    copy_from_json,
    copy_to_json,
    event_from_row,
    event_to_row,
    normalize_time,
    utc_now,
)
from envwatchd.model import Claim, Conflict, Copy, Event, Manager, NormalizedName
from envwatchd.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Store", "StoreError"]

log = structlog.get_logger()

_CORRUPT_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


class StoreError(Exception):
    """The database cannot be used and moving it aside would lose data (e.g. too new)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class _Corrupt(Exception):
    """Carries the still-open connection: closing it before the rename would let
    SQLite delete the -wal file, the one piece that may still hold recent data."""

    def __init__(self, reason: str, conn: sqlite3.Connection) -> None:
        super().__init__(reason)
        self.conn = conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; any error (COMMIT's too) rolls back, so a retry cannot
    duplicate. SQLite may already have rolled back after a disk error: check first."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any], verb: str = "INSERT") -> int:
    cur = conn.execute(
        f"{verb} INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        tuple(row.values()),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _connect(path: Path) -> sqlite3.Connection:
    """Open, prove the file is a sound database, and bring its schema up to date."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise _Corrupt(f"quick_check: {str(check[0])[:300] if check else 'no rows'}", conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        _migrate(conn, path)
    except _Corrupt:
        raise
    except sqlite3.DatabaseError as exc:
        if type(exc) is sqlite3.DatabaseError or exc.sqlite_errorname in _CORRUPT_CODES:
            raise _Corrupt(str(exc), conn) from exc
        conn.close()
        raise
    except BaseException:
        conn.close()
        raise
    conn.row_factory = _dict_row
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(path, f"schema {version} is newer than this envwatchd ({SCHEMA_VERSION})")
    for target, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        with _transaction(conn):
            migration(conn)
            conn.execute(f"PRAGMA user_version = {target}")
        log.info("store.migrated", path=str(path), version=target)


def _move_aside(path: Path, reason: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            os.rename(src, target.with_name(target.name + suffix))
    log.error("store.corrupt_moved_aside", path=str(path), moved_to=str(target), error=reason)
    return target


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
            conn = _connect(path)
        except _Corrupt as exc:
            try:
                _move_aside(path, str(exc))
            finally:
                exc.conn.close()
            conn = _connect(path)
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
            with _transaction(self._conn):
                yield
        except sqlite3.OperationalError as exc:
            self._failed(exc)

    def _write(self, batch: _Batch) -> list[Event]:
        with _transaction(self._conn):
            out = [
                replace(e, id=_insert(self._conn, "events", event_to_row(e))) for e in batch.events
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
    ) -> tuple[list[Conflict], list[Conflict]]:
        """Open new keys, keep ids of known ones, resolve the absent (within scope).

        On a write failure nothing changes, `degraded` is set and ([], []) comes
        back: the next sync computes the same transitions again.
        """
        stamp = normalize_time(now) if now else utc_now()
        try:
            with _transaction(self._conn):
                return self._sync(current, stamp, scope)
        except sqlite3.OperationalError as exc:  # COMMIT's failure too: not `_guard`
            self._failed(exc)
            return [], []

    def _sync(
        self, current: Sequence[Conflict], now: str, scope: Callable[[Conflict], bool] | None
    ) -> tuple[list[Conflict], list[Conflict]]:
        known = {r["key"]: r for r in self._conn.execute("SELECT * FROM conflicts")}
        wanted = {c.key: c for c in current}
        opened: list[Conflict] = []
        for key, c in wanted.items():
            row = known.get(key)
            if row is None or row["resolved"] is not None:
                opened.append(self._open_conflict(c, row, now))
            else:
                self._update_conflict(c, row["id"])
        resolved = []
        for key, row in known.items():
            if row["resolved"] is None and key not in wanted:
                stale = _conflict_from_row(row)
                if scope is None or scope(stale):
                    self._conn.execute(
                        "UPDATE conflicts SET resolved = ? WHERE id = ?", (now, row["id"])
                    )
                    resolved.append(replace(stale, resolved=now))
        return opened, resolved

    def _open_conflict(self, c: Conflict, row: dict[str, Any] | None, now: str) -> Conflict:
        data = json.dumps(conflict_to_json(c))
        if row is None:
            row = {"key": c.key, "kind": c.kind.value, "name": c.name}
            row |= {"severity": c.severity.value, "data": data, "opened": now}
            return replace(c, id=_insert(self._conn, "conflicts", row), opened=now, resolved=None)
        self._update_conflict(c, row["id"], opened=now)
        return replace(c, id=row["id"], opened=now, resolved=None)

    def _update_conflict(self, c: Conflict, id_: int, opened: str | None = None) -> None:
        self._conn.execute(
            "UPDATE conflicts SET kind = ?, name = ?, severity = ?, data = ?,"
            " opened = COALESCE(?, opened), resolved = NULL WHERE id = ?",
            (c.kind.value, c.name, c.severity.value, json.dumps(conflict_to_json(c)), opened, id_),
        )

    def conflicts(self, include_resolved: bool = False) -> list[Conflict]:
        where = "" if include_resolved else " WHERE resolved IS NULL"
        rows = self._conn.execute(f"SELECT * FROM conflicts{where} ORDER BY id")
        return [_conflict_from_row(r) for r in rows]

    # -- last-known package database records ---------------------------------

    def remember_claims(self, claims: Iterable[Claim]) -> None:
        """Upsert each record; kept after the manager deletes it (conda does, on clobber)."""
        now = utc_now()
        with self._guard():
            for c in claims:
                row = {"manager": c.manager.value, "package": c.package, "name": c.name}
                row |= {"version": c.version, "record_path": c.record_path, "last_seen": now}
                _insert(
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


def _conflict_from_row(row: dict[str, Any]) -> Conflict:
    return conflict_from_json(
        json.loads(row["data"]), id=row["id"], opened=row["opened"], resolved=row["resolved"]
    )
