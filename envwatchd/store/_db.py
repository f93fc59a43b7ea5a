"""The SQLite connection under the store: open it soundly, migrate it, set it aside.

Why apart from the Store class: this is everything that must hold before a
single row is read (the file is a database, `PRAGMA quick_check` passes, WAL
is on, the schema is current) plus the two primitives every write uses
(`transaction`, `insert`). The crash-consistency argument is the Store's; the
"never overwrite a corrupt file" argument is this module's.

Trap: a corrupt database is moved aside with its -wal and -shm files while the
connection is still open (see `Corrupt`): closing first would let SQLite
delete the -wal file, the one piece that may still hold recent data.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from envwatchd.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Corrupt", "StoreError", "connect", "insert", "move_aside", "transaction"]

log = structlog.get_logger()

_CORRUPT_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


class StoreError(Exception):
    """The database cannot be used and moving it aside would lose data (e.g. too new)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class Corrupt(Exception):
    """Carries the still-open connection: closing it before the rename would let
    SQLite delete the -wal file, the one piece that may still hold recent data."""

    def __init__(self, reason: str, conn: sqlite3.Connection) -> None:
        super().__init__(reason)
        self.conn = conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
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


def insert(conn: sqlite3.Connection, table: str, row: dict[str, Any], verb: str = "INSERT") -> int:
    cur = conn.execute(
        f"{verb} INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        tuple(row.values()),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def db_text(value: str) -> str:
    """A str SQLite can bind. File names that are not UTF-8 reach us as lone
    surrogates (surrogateescape), which sqlite3 refuses with UnicodeEncodeError;
    they are stored with the bad bytes backslash-escaped (`bad\\xff`). The JSON
    columns keep the exact name (json escapes surrogates losslessly)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def _clean(params: Any) -> Any:
    if isinstance(params, dict):
        return {k: db_text(v) if isinstance(v, str) else v for k, v in params.items()}
    if isinstance(params, (tuple, list)):
        return tuple(db_text(v) if isinstance(v, str) else v for v in params)
    return params


class SafeConnection(sqlite3.Connection):
    """Every bound str goes through db_text: one hostile file name must not poison
    a write (and with it every later write queued behind it)."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, _clean(parameters))

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return super().executemany(sql, (_clean(p) for p in parameters))


def connect(path: Path) -> sqlite3.Connection:
    """Open, prove the file is a sound database, and bring its schema up to date."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=10.0, factory=SafeConnection
    )
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise Corrupt(f"quick_check: {str(check[0])[:300] if check else 'no rows'}", conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        _migrate(conn, path)
    except Corrupt:
        raise
    except sqlite3.DatabaseError as exc:
        if type(exc) is sqlite3.DatabaseError or exc.sqlite_errorname in _CORRUPT_CODES:
            raise Corrupt(str(exc), conn) from exc
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
        with transaction(conn):
            migration(conn)
            conn.execute(f"PRAGMA user_version = {target}")
        log.info("store.migrated", path=str(path), version=target)


def move_aside(path: Path, reason: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            os.rename(src, target.with_name(target.name + suffix))
    log.error("store.corrupt_moved_aside", path=str(path), moved_to=str(target), error=reason)
    return target
