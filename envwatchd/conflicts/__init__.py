"""Conflict rules: one pure function per kind, registered once in ``RULES``.

Why a table: the daemon, the one-shot ``scan`` and the tests all iterate the
same rules, and the incremental path needs to know which rules speak about one
project (re-run for the changed names only) and which about a whole env or
cache (re-run in full, they are O(copies)).

Rules read only the Inventory and the RuleContext; file lists come through the
injected ``ctx.read_files``, so no rule does I/O of its own.

Incremental use by the daemon::

    new = evaluate(inv, ctx, names=changed)
    stale = [c for c in open_conflicts if affected(c, changed)]
    # resolve stale keys not in new, open new keys not already open
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from envwatchd.conflicts import (
    advisories,
    duplicate,
    file_collision,
    foreign_overwrite,
    mixed_metadata,
    orphaned_record,
)
from envwatchd.conflicts._common import FileReader, RuleContext, no_files
from envwatchd.model import Conflict, ConflictKind, Inventory, NormalizedName

__all__ = [
    "RULES",
    "FileReader",
    "Rule",
    "RuleContext",
    "affected",
    "evaluate",
    "involved_names",
    "no_files",
]

RuleFn = Callable[[Inventory, RuleContext], list[Conflict]]


@dataclass(frozen=True, slots=True)
class Rule:
    """``per_name``: the rule's conflicts are about projects and can be re-run per name."""

    kind: ConflictKind
    check: RuleFn
    per_name: bool = True


RULES: tuple[Rule, ...] = (
    Rule(ConflictKind.DUPLICATE, duplicate.check),
    Rule(ConflictKind.MIXED_METADATA, mixed_metadata.check),
    Rule(ConflictKind.ORPHANED_RECORD, orphaned_record.check),
    Rule(ConflictKind.FOREIGN_OVERWRITE, foreign_overwrite.check),
    Rule(ConflictKind.FILE_COLLISION, file_collision.check),
    Rule(ConflictKind.USER_SITE_IN_CONDA, advisories.user_site_in_conda, per_name=False),
    Rule(ConflictKind.EXTERNALLY_MANAGED, advisories.externally_managed, per_name=False),
    Rule(ConflictKind.UNUSED_PKGS_CACHE, advisories.unused_pkgs_cache, per_name=False),
)

_GLOBAL_KINDS = frozenset(r.kind for r in RULES if not r.per_name)


def involved_names(conflict: Conflict) -> frozenset[str]:
    """The projects a conflict speaks about: its name and its copies' names."""
    return frozenset({conflict.name, *(c.name for c in conflict.copies)})


def affected(conflict: Conflict, names: Collection[NormalizedName]) -> bool:
    """Would ``evaluate(..., names)`` recompute this conflict? (Whole-env kinds: always.)"""
    if conflict.kind in _GLOBAL_KINDS:
        return True
    return not involved_names(conflict).isdisjoint(names)


def evaluate(
    inv: Inventory,
    ctx: RuleContext | None = None,
    names: Collection[NormalizedName] | None = None,
) -> list[Conflict]:
    """Every open conflict, or with ``names`` those ``affected`` by the changed names.

    Output order is stable: by kind in ``RULES`` order, then key.
    """
    ctx = ctx or RuleContext()
    scoped = inv if names is None else _restrict(inv, names)
    out: list[Conflict] = []
    for rule in RULES:
        found = rule.check(scoped if rule.per_name else inv, ctx)
        if names is not None and rule.per_name:
            found = [c for c in found if affected(c, names)]
        out.extend(sorted(found, key=lambda c: c.key))
    return out


def _restrict(inv: Inventory, names: Collection[NormalizedName]) -> Inventory:
    """The changed projects' copies and claims, plus their file-collision partners."""
    wanted = set(names)
    tops = {(c.site, t) for c in inv.copies if c.name in wanted for t in c.top_level}
    copies = tuple(
        c for c in inv.copies if c.name in wanted or any((c.site, t) in tops for t in c.top_level)
    )
    claims = tuple(c for c in inv.claims if c.name in wanted)
    return replace(inv, copies=copies, claims=claims)
