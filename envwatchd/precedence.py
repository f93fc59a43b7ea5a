"""Which copy each interpreter imports: the one ordering rule behind shadowing.

Why a module of its own: a copy's ``imported_by``, the duplicate rule and the
``where`` query must agree on the winner, so they share this implementation.

The rule mirrors site.py: a copy lives at one sys.path entry (its egg, egg-link
project dir or editable src dir when ``import_path`` is set, else its site dir);
the earliest entry in ``Interpreter.search_path`` wins. Copies in a conda pkgs
cache are imported by nobody. Ties at one entry (a dist-info next to a stale
egg-info) are broken the way importlib.metadata users experience it:
dist-info before egg-info before the rest, then the higher version, then the path,
so the answer never depends on scan order.

Cost: copies are indexed by location once, then each interpreter walks its own
search path: O(copies + interpreters x search_path), never copies x interpreters.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from envwatchd.model import (
    Copy,
    EnvKind,
    Format,
    Interpreter,
    Inventory,
    NormalizedName,
)

__all__ = [
    "Resolution",
    "imported_by",
    "interpreters",
    "location",
    "multi_copy_names",
    "shadowing",
    "version_key",
    "visible",
    "with_imported_by",
]

_FORMAT_RANK = {Format.DIST_INFO: 0, Format.EGG_INFO: 1}
_NO_VERSION = Version("0")


@dataclass(frozen=True, slots=True)
class Resolution:
    """What one interpreter sees of one project: every visible copy, winner first.

    ``positions[i]`` is the index in ``interpreter.search_path`` of ``copies[i]``;
    two copies at the same position share a sys.path entry (mixed metadata),
    different positions mean one copy shadows the other.
    """

    interpreter: Interpreter
    copies: tuple[Copy, ...]
    positions: tuple[int, ...]

    @property
    def winner(self) -> Copy:
        return self.copies[0]

    @property
    def shadowed(self) -> tuple[Copy, ...]:
        return self.copies[1:]

    @property
    def shadows(self) -> bool:
        """True when copies sit at 2+ different sys.path entries."""
        return len(set(self.positions)) > 1


def location(copy: Copy) -> str:
    """The sys.path entry a copy is imported from."""
    return copy.import_path or copy.site


def version_key(version: str) -> tuple[int, Version]:
    """Sort key: parseable versions by PEP 440 above unparseable ones."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, _NO_VERSION)


def interpreters(inv: Inventory) -> tuple[Interpreter, ...]:
    """Every interpreter once, ordered by executable (stable output order)."""
    seen: dict[str, Interpreter] = {}
    for env in inv.envs:
        for interp in env.interpreters:
            seen.setdefault(interp.executable, interp)
    return tuple(seen[k] for k in sorted(seen))


def _positions(interp: Interpreter) -> dict[str, int]:
    """First index of each entry: a repeated entry adds nothing to site.py's path."""
    out: dict[str, int] = {}
    for i, entry in enumerate(interp.search_path):
        out.setdefault(entry, i)
    return out


def _importable(copy: Copy) -> bool:
    return copy.env.kind is not EnvKind.CONDA_PKGS


def _rank(copies: Iterable[Copy], pos: dict[str, int]) -> list[Copy]:
    """Winner first; stable multi-pass sort gives position, format, -version, path."""
    ranked = sorted(copies, key=lambda c: c.path)
    if len(ranked) < 2:
        return ranked  # the common case: nothing to order, no version to parse
    ranked.sort(key=lambda c: version_key(c.version), reverse=True)
    ranked.sort(key=lambda c: (pos[location(c)], _FORMAT_RANK.get(c.format, 2)))
    return ranked


def visible(interp: Interpreter, copies: Iterable[Copy]) -> list[Copy]:
    """The copies ``interp`` can import, winner first."""
    pos = _positions(interp)
    return _rank((c for c in copies if _importable(c) and location(c) in pos), pos)


def _by_location(inv: Inventory, names: Collection[NormalizedName] | None) -> dict[str, list[Copy]]:
    out: dict[str, list[Copy]] = defaultdict(list)
    for copy in inv.copies:
        if _importable(copy) and (names is None or copy.name in names):
            out[location(copy)].append(copy)
    return out


def _visible_by_name(
    pos: dict[str, int], by_loc: dict[str, list[Copy]]
) -> dict[NormalizedName, list[Copy]]:
    found: dict[NormalizedName, list[Copy]] = defaultdict(list)
    for entry in pos:
        for copy in by_loc.get(entry, ()):
            found[copy.name].append(copy)
    return found


def _resolve(
    interp: Interpreter, by_loc: dict[str, list[Copy]], shadowed_only: bool = False
) -> list[Resolution]:
    pos = _positions(interp)
    out = []
    for cs in _visible_by_name(pos, by_loc).values():
        if shadowed_only and len(cs) < 2:
            continue
        ranked = _rank(cs, pos)
        out.append(Resolution(interp, tuple(ranked), tuple(pos[location(c)] for c in ranked)))
    return out


def shadowing(
    inv: Inventory,
    names: Collection[NormalizedName] | None = None,
    *,
    shadowed_only: bool = False,
) -> dict[NormalizedName, list[Resolution]]:
    """Per project, one Resolution per interpreter that sees it (by executable).

    ``names`` limits the work to those projects (the daemon's incremental path).
    """
    by_loc = _by_location(inv, names)
    out: dict[NormalizedName, list[Resolution]] = defaultdict(list)
    for interp in interpreters(inv):
        for res in _resolve(interp, by_loc, shadowed_only):
            out[res.winner.name].append(res)
    return dict(out)


def multi_copy_names(inv: Inventory) -> set[NormalizedName]:
    """Projects with 2+ importable copies: the only ones where order can matter."""
    seen: set[NormalizedName] = set()
    multi: set[NormalizedName] = set()
    for copy in inv.copies:
        if _importable(copy):
            (multi if copy.name in seen else seen).add(copy.name)
    return multi


def imported_by(inv: Inventory) -> dict[tuple[str, str], tuple[str, ...]]:
    """copy.key -> executables that import THAT copy; shadowed copies map to ().

    Per interpreter, a project it sees once needs no ranking: only the few
    projects it sees twice or more are sorted (20,000 copies, ~100 interpreters).
    """
    by_loc = _by_location(inv, None)
    winners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for interp in interpreters(inv):
        pos = _positions(interp)
        for cs in _visible_by_name(pos, by_loc).values():
            winner = cs[0] if len(cs) == 1 else _rank(cs, pos)[0]
            winners[winner.key].append(interp.executable)
    return {c.key: tuple(sorted(winners.get(c.key, ()))) for c in inv.copies}


def with_imported_by(
    inv: Inventory, names: Collection[NormalizedName] | None = None
) -> Inventory:
    """The inventory with every copy's ``imported_by`` filled in (for JSON output).

    With ``names``, only those projects are re-ranked; every other copy keeps the
    ``imported_by`` it carries (the daemon's live pass: a change in one site dir
    cannot change who wins for a project that has no copy there, as long as the
    interpreters' paths are unchanged).
    """
    if names is None:
        table = imported_by(inv)
    else:
        wanted = set(names)
        sub = dataclasses.replace(inv, copies=tuple(c for c in inv.copies if c.name in wanted))
        table = imported_by(sub)
    copies = tuple(_evolve(c, table[c.key]) if c.key in table else c for c in inv.copies)
    return dataclasses.replace(inv, copies=copies)


_COPY_FIELDS = tuple(f.name for f in dataclasses.fields(Copy))


def _evolve(copy: Copy, imported: tuple[str, ...]) -> Copy:
    """`replace(copy, imported_by=...)` without __init__: 20,000 copies per scan make
    dataclasses.replace's keyword round trip a measurable share of the scan."""
    if copy.imported_by == imported:
        return copy
    new = object.__new__(Copy)
    for name in _COPY_FIELDS:
        object.__setattr__(new, name, getattr(copy, name))
    object.__setattr__(new, "imported_by", imported)
    return new
