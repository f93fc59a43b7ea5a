"""The SQLite schema as an append-only list of migrations (style habit 13).

`MIGRATIONS[i]` takes a database from `PRAGMA user_version` i to i + 1; the
store runs the missing ones, each in its own transaction, at open. Never edit
a released migration: a user's database already ran it. Append a new one and
a test in tests/test_store.py builds every older version and migrates it.

Kept apart from the store so the schema reads in one place; it does not import
sqlite3 (the envwatchd.store package stays the only one that does) and only
needs something with `execute(sql)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Executor", "Migration"]


class Executor(Protocol):
    def execute(self, sql: str, /) -> object: ...


Migration = Callable[[Executor], None]


def _v1_base(db: Executor) -> None:
    """Events, inventory (one row per copy key), conflicts, last-known records, meta."""
    for sql in (
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,"
        " kind TEXT NOT NULL, name TEXT NOT NULL, version TEXT, previous_version TEXT,"
        " manager TEXT, previous_manager TEXT, env_kind TEXT NOT NULL,"
        " env_prefix TEXT NOT NULL, env_name TEXT NOT NULL, site TEXT NOT NULL,"
        " path TEXT NOT NULL, origin TEXT NOT NULL)",
        "CREATE TABLE inventory (site TEXT NOT NULL, path TEXT NOT NULL, name TEXT NOT NULL,"
        " data TEXT NOT NULL, PRIMARY KEY (site, path))",
        "CREATE TABLE conflicts (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,"
        " kind TEXT NOT NULL, name TEXT NOT NULL, severity TEXT NOT NULL, data TEXT NOT NULL,"
        " opened TEXT NOT NULL, resolved TEXT)",
        "CREATE TABLE claims (manager TEXT NOT NULL, package TEXT NOT NULL, name TEXT NOT NULL,"
        " version TEXT NOT NULL, record_path TEXT NOT NULL, data TEXT NOT NULL,"
        " last_seen TEXT NOT NULL, PRIMARY KEY (manager, record_path))",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ):
        db.execute(sql)


def _v2_event_command(db: Executor) -> None:
    """The command line a manager's own log names (conda history, apt history.log)."""
    db.execute("ALTER TABLE events ADD COLUMN command TEXT")


def _v3_indexes(db: Executor) -> None:
    """`envwatch events --package/--since` and `where NAME` without a table scan."""
    db.execute("CREATE INDEX events_name ON events (name, id)")
    db.execute("CREATE INDEX events_time ON events (time)")
    db.execute("CREATE INDEX inventory_name ON inventory (name)")


MIGRATIONS: list[Migration] = [_v1_base, _v2_event_command, _v3_indexes]
SCHEMA_VERSION = len(MIGRATIONS)
