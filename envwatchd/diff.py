"""Two inventories in, the events between them out. Pure: no I/O, no clock.

Raw filesystem events are triggers, never facts (style habit 5): the daemon
rescans a dirty site dir and diffs the copies, so `diff_copies(a, a) == []`
is what keeps a noisy watcher from writing noise into the event log.

The unit of an event is a *distribution*: all copies of one project in one
site dir, grouped by (site, name). One site dir can hold a dist-info and a
stale egg-info of the same project; that pair is one distribution whose
version is that of its representative (highest version, then the preferred
format, then the path). Changes among the other copies of a group (a stale
egg-info appearing or going away) come out as `replace`, so the log notices
them without inventing a second install.

Trap: version strings are compared with `packaging.version`, never by hand,
but a metadata file can carry anything ("2.0-beta_final", ""), so invalid
versions fall back to a tuple order that never raises and sorts before every
valid version (what packaging's old LegacyVersion did). packaging is imported
lazily: it is only needed when an existing distribution changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache, total_ordering
from typing import TYPE_CHECKING

from envwatchd.model import Copy, Event, EventKind, Format, NormalizedName, Origin

if TYPE_CHECKING:
    from packaging.version import Version

__all__ = ["VersionKey", "diff_copies", "group_copies", "representative", "version_key"]

GroupKey = tuple[str, NormalizedName]

_FORMAT_RANK = {
    Format.DIST_INFO: 0,
    Format.EGG_INFO: 1,
    Format.EGG: 2,
    Format.EDITABLE: 3,
    Format.EGG_LINK: 4,
    Format.CONDA_META: 5,
}
_LEGACY_PART = re.compile(r"\d+|[a-z]+")


@total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class VersionKey:
    """A total order over version strings: PEP 440 ones first by value, then the rest.

    `parsed` is None for an invalid version; those sort before every valid one
    by `legacy` (runs of digits as numbers, runs of letters as text).
    """

    parsed: Version | None
    legacy: tuple[tuple[int, int, str], ...]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VersionKey):
            return NotImplemented
        if self.parsed is not None and other.parsed is not None:
            return self.parsed == other.parsed
        return self.parsed is None and other.parsed is None and self.legacy == other.legacy

    def __lt__(self, other: VersionKey) -> bool:
        if self.parsed is not None and other.parsed is not None:
            return self.parsed < other.parsed
        if (self.parsed is None) != (other.parsed is None):
            return self.parsed is None
        return self.legacy < other.legacy

    def __hash__(self) -> int:
        return hash(self.parsed if self.parsed is not None else self.legacy)


@lru_cache(maxsize=8192)
def version_key(text: str) -> VersionKey:
    """The sort key of a version string; never raises."""
    from packaging.version import InvalidVersion, Version

    try:
        return VersionKey(Version(text), ())
    except InvalidVersion:
        parts = _LEGACY_PART.findall(text.lower())
        return VersionKey(None, tuple((1, int(p), "") if p.isdigit() else (0, 0, p) for p in parts))


def group_copies(copies: Iterable[Copy]) -> dict[GroupKey, tuple[Copy, ...]]:
    """Copies by (site, name), each group ordered by path; a repeated copy key counts once."""
    groups: dict[GroupKey, dict[str, Copy]] = {}
    for c in copies:
        groups.setdefault((c.site, c.name), {})[c.path] = c
    return {k: tuple(v[p] for p in sorted(v)) for k, v in groups.items()}


def representative(group: Iterable[Copy]) -> Copy:
    """The copy that speaks for a group: highest version, then dist-info before egg-info..."""
    ordered = sorted(group, key=lambda c: (_FORMAT_RANK.get(c.format, 99), c.path))
    return max(ordered, key=lambda c: version_key(c.version))


def diff_copies(
    before: Iterable[Copy],
    after: Iterable[Copy],
    *,
    origin: Origin = Origin.LIVE,
    time: str = "",
) -> list[Event]:
    """Events turning `before` into `after`, ordered by (site, name)."""
    old, new = group_copies(before), group_copies(after)
    events = []
    for key in sorted(old.keys() | new.keys()):
        event = _diff_group(old.get(key), new.get(key), origin, time)
        if event is not None:
            events.append(event)
    return events


def _diff_group(
    old: tuple[Copy, ...] | None, new: tuple[Copy, ...] | None, origin: Origin, time: str
) -> Event | None:
    if old is None and new is not None:
        return _event(EventKind.INSTALL, None, representative(new), origin, time)
    if new is None and old is not None:
        return _event(EventKind.UNINSTALL, representative(old), None, origin, time)
    assert old is not None and new is not None
    was, now = representative(old), representative(new)
    was_key, now_key = version_key(was.version), version_key(now.version)
    if was_key < now_key:
        return _event(EventKind.UPGRADE, was, now, origin, time)
    if now_key < was_key:
        return _event(EventKind.DOWNGRADE, was, now, origin, time)
    if _changed(old, new):
        return _event(EventKind.REPLACE, was, now, origin, time)
    return None


def _changed(old: tuple[Copy, ...], new: tuple[Copy, ...]) -> bool:
    """Same version order, but is anything a human would call a reinstall different?

    Fingerprints (metadata dir inode) are compared only when both sides know
    theirs: an inventory stored before fingerprints existed must not turn into
    a replace of every package.
    """
    if len(old) != len(new):
        return True
    for a, b in zip(old, new, strict=True):
        if _signature(a) != _signature(b):
            return True
        known = a.fingerprint is not None and b.fingerprint is not None
        if known and a.fingerprint != b.fingerprint:
            return True
    return False


def _signature(c: Copy) -> tuple[str | None, ...]:
    return (c.version, c.path, c.format.value, c.manager.value, c.installer, c.owner)


def _event(kind: EventKind, was: Copy | None, now: Copy | None, origin: Origin, time: str) -> Event:
    subject = now if now is not None else was
    assert subject is not None
    return Event(
        kind=kind,
        name=subject.name,
        version=now.version if now else None,
        previous_version=was.version if was else None,
        manager=now.manager if now else None,
        previous_manager=was.manager if was else None,
        env=subject.env,
        site=subject.site,
        path=subject.path,
        origin=origin,
        time=time,
    )
