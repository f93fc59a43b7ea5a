"""The vocabulary of one settle pass, and its pure helpers.

`Pending` is what the watcher marked dirty between two passes, `Outcome` what a pass
hands back to the loop. The helpers decide whether a dist-info is still being
written, what changed between two snapshots of some site dirs, and how an unwatched
tree is reported. No I/O beyond a stat or two; no scanner, no store.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from envwatchd.config import Config
from envwatchd.model import (
    Conflict,
    ConflictKind,
    Copy,
    EnvKind,
    Event,
    Format,
    Inventory,
    Manager,
    Severity,
)
from envwatchd.watcher import WATCH_LIMIT, Role

__all__ = [
    "Outcome",
    "Pending",
    "by_site",
    "changes",
    "fresh_incomplete",
    "unwatched_conflict",
]

_FRESH_S = 2.0


@dataclass(slots=True)
class Pending:
    """Dirty marks accumulated on the loop between two passes."""

    sites: set[str] = field(default_factory=set)
    conda: set[str] = field(default_factory=set)
    pkgs: set[str] = field(default_factory=set)
    dbs: bool = False
    rediscover: bool = False
    full: bool = False
    walk: bool = False
    unwatched: dict[str, str] = field(default_factory=dict)

    def add(self, path: str, role: Role, pkgs_prefixes: frozenset[str]) -> None:
        if role is Role.SITE:
            self.sites.add(path)
        elif role is Role.CONDA_META:
            self.conda.add(os.path.dirname(path))
            self.rediscover = True  # `conda install python=3.12` brings a new site dir
        elif role is Role.DPKG:
            self.dbs = True
        elif path in pkgs_prefixes:
            self.pkgs.add(path)
        else:
            self.rediscover = True

    def merge(self, other: Pending) -> None:
        """Fold marks back in (a pass that failed must be retried, not forgotten)."""
        self.sites |= other.sites
        self.conda |= other.conda
        self.pkgs |= other.pkgs
        self.dbs |= other.dbs
        self.rediscover |= other.rediscover
        self.full |= other.full
        self.walk |= other.walk

    def summary(self) -> str:
        """What triggered a pass, for the settle log line."""
        flags = [n for n in ("dbs", "rediscover", "full", "walk") if getattr(self, n)]
        return f"sites={len(self.sites)} conda={len(self.conda)} pkgs={len(self.pkgs)} " + (
            " ".join(flags)
        )

    def __bool__(self) -> bool:
        return bool(
            self.sites or self.conda or self.pkgs or self.dbs or self.rediscover or self.full
        )


@dataclass(slots=True)
class Outcome:
    events: list[Event] = field(default_factory=list)
    opened: list[Conflict] = field(default_factory=list)
    resolved: list[Conflict] = field(default_factory=list)
    inventory: Inventory | None = None
    deferred: set[str] = field(default_factory=set)


def fresh_incomplete(copy: Copy, now: float) -> bool:
    """A dist-info pip/uv is still writing: created moments ago and still missing RECORD
    or INSTALLER (pip writes INSTALLER after RECORD's first copy, uv writes it last)."""
    if copy.format not in (Format.DIST_INFO, Format.EDITABLE) or copy.owner:
        return False
    if copy.manager is Manager.CONDA or copy.env.kind is EnvKind.CONDA_PKGS:
        return False  # conda never writes RECORD: its dist-infos are complete as linked
    try:
        st = os.stat(copy.path)
    except OSError:
        return False
    if now - st.st_mtime > _FRESH_S:
        return False
    return not (os.path.exists(f"{copy.path}/RECORD") and os.path.exists(f"{copy.path}/INSTALLER"))


def by_site(copies: Iterable[Copy]) -> dict[str, tuple[Copy, ...]]:
    grouped: defaultdict[str, list[Copy]] = defaultdict(list)
    for c in copies:
        grouped[c.site].append(c)
    return {s: tuple(cs) for s, cs in grouped.items()}


def changes(old: Iterable[Copy], new: Iterable[Copy]) -> tuple[list[tuple[str, str]], list[Copy]]:
    before = {c.key: c for c in old}
    after = {c.key: c for c in new}
    removed = [k for k in before if k not in after]
    upserted = [
        c
        for k, c in after.items()
        if k not in before or before[k] != c or before[k].fingerprint != c.fingerprint
    ]
    return removed, upserted


def unwatched_conflict(path: str, reason: str, config: Config) -> Conflict:
    every = int(config.watch.rescan_unwatched_s)
    remedy = (
        (
            "sudo sysctl fs.inotify.max_user_watches=524288",
            "echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-envwatchd.conf",
        )
        if reason == WATCH_LIMIT
        else (f"make {path} readable by the user envwatchd runs as",)
    )
    return Conflict(
        key=f"unwatched-tree:{path}",
        kind=ConflictKind.UNWATCHED_TREE,
        name=path,
        severity=Severity.WARNING,
        copies=(),
        message=f"{path} cannot be watched ({reason}); changes there are found by a rescan "
        f"every {every} s instead of live.",
        remedy=remedy,
    )
