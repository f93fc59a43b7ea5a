"""Conflict rows: stable ids across passes, opened and resolved transitions.

Why apart from the Store class: the rule "the same inconsistency keeps its id"
is a small state machine over the `conflicts` table (key seen before and open:
update in place; seen but resolved: reopen with a new `opened`; absent within
scope: resolve) and reads best on its own. The caller owns the transaction and
what a write failure means (the Store degrades and returns ([], [])).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from envwatchd.codec import conflict_from_json, conflict_to_json
from envwatchd.model import Conflict
from envwatchd.store._db import insert

__all__ = ["load", "sync"]


def sync(
    conn: sqlite3.Connection,
    current: Sequence[Conflict],
    now: str,
    scope: Callable[[Conflict], bool] | None,
    previous: Mapping[str, Conflict] | None = None,
) -> tuple[list[Conflict], list[Conflict]]:
    """Open new keys, keep ids of known ones, resolve the absent (within scope)."""
    known = {r["key"]: r for r in conn.execute("SELECT * FROM conflicts")}
    wanted = {c.key: c for c in current}
    opened: list[Conflict] = []
    for key, c in wanted.items():
        row = known.get(key)
        if row is None or row["resolved"] is not None:
            opened.append(_open(conn, c, row, now))
        elif previous is None or previous.get(key) != c:
            _update(conn, c, row["id"])
    resolved = []
    for key, row in known.items():
        if row["resolved"] is None and key not in wanted:
            stale = _from_row(row)
            if scope is None or scope(stale):
                conn.execute("UPDATE conflicts SET resolved = ? WHERE id = ?", (now, row["id"]))
                resolved.append(replace(stale, resolved=now))
    return opened, resolved


def _open(conn: sqlite3.Connection, c: Conflict, row: dict[str, Any] | None, now: str) -> Conflict:
    data = json.dumps(conflict_to_json(c))
    if row is None:
        row = {"key": c.key, "kind": c.kind.value, "name": c.name}
        row |= {"severity": c.severity.value, "data": data, "opened": now}
        return replace(c, id=insert(conn, "conflicts", row), opened=now, resolved=None)
    _update(conn, c, row["id"], opened=now)
    return replace(c, id=row["id"], opened=now, resolved=None)


def _update(conn: sqlite3.Connection, c: Conflict, id_: int, opened: str | None = None) -> None:
    conn.execute(
        "UPDATE conflicts SET kind = ?, name = ?, severity = ?, data = ?,"
        " opened = COALESCE(?, opened), resolved = NULL WHERE id = ?",
        (c.kind.value, c.name, c.severity.value, json.dumps(conflict_to_json(c)), opened, id_),
    )


def load(conn: sqlite3.Connection, include_resolved: bool = False) -> list[Conflict]:
    where = "" if include_resolved else " WHERE resolved IS NULL"
    rows = conn.execute(f"SELECT * FROM conflicts{where} ORDER BY id")
    return [_from_row(r) for r in rows]


def _from_row(row: dict[str, Any]) -> Conflict:
    return conflict_from_json(
        json.loads(row["data"]), id=row["id"], opened=row["opened"], resolved=row["resolved"]
    )
