"""orphaned-record: a package database still claims entries that are gone.

Why: this is the cross-manager uninstall. ``pip uninstall numpy`` follows
RECORD (or top_level.txt) and deletes files that dpkg, rpm or conda still list
as installed; ``apt``/``conda`` then believe numpy is there and will not
reinstall it. dpkg stanzas not in state "installed" (config-files, removed) are
not claims on anything and are skipped.

If another copy of the project now sits in that site dir (pip's numpy-1.24
replaced dpkg's), the message names it and the remedy removes it first, so the
owner's reinstall is not shadowed or clobbered again.
"""

from __future__ import annotations

from collections import defaultdict

from envwatchd import remedy
from envwatchd.conflicts._common import Facts, RuleContext, describe, make_key
from envwatchd.model import Claim, Conflict, ConflictKind, Copy, Inventory, NormalizedName, Severity

__all__ = ["check"]

_SHOWN = 3


def check(inv: Inventory, ctx: RuleContext) -> list[Conflict]:
    orphans = [c for c in inv.claims if c.installed and c.missing]
    if not orphans:
        return []
    facts = ctx.facts(inv)
    by_site: dict[tuple[str, NormalizedName], list[Copy]] = defaultdict(list)
    for copy in inv.copies:
        by_site[(copy.site, copy.name)].append(copy)
    return [_conflict(claim, by_site.get((claim.site, claim.name), []), facts) for claim in orphans]


def _record(claim: Claim) -> str:
    return f"{claim.manager.value} package {claim.package} {claim.version}"


def _conflict(claim: Claim, present: list[Copy], facts: Facts) -> Conflict:
    present = sorted(present, key=lambda c: c.path)
    replacements = [c for c in present if c.path not in claim.claimed]
    return Conflict(
        key=make_key(ConflictKind.ORPHANED_RECORD, claim.name, [claim.record_path]),
        kind=ConflictKind.ORPHANED_RECORD,
        name=claim.name,
        severity=Severity.ERROR,
        copies=tuple(present),
        message=_message(claim, replacements),
        remedy=tuple(_remedy(claim, replacements, facts)),
    )


def _message(claim: Claim, replacements: list[Copy]) -> str:
    gone = ", ".join(claim.missing[:_SHOWN])
    if len(claim.missing) > _SHOWN:
        gone += f" and {len(claim.missing) - _SHOWN} more"
    text = (
        f"{_record(claim)} ({claim.record_path}) still claims {gone}, but "
        f"{'they are' if len(claim.missing) > 1 else 'it is'} gone from disk: "
        f"another manager removed {'them' if len(claim.missing) > 1 else 'it'}."
    )
    if replacements:
        now = "; ".join(describe(c) for c in replacements)
        text += f" {claim.name} in {claim.site} now comes from {now}."
    else:
        text += f" Nothing provides {claim.name} in {claim.site} any more."
    return text


def _remedy(claim: Claim, replacements: list[Copy], facts: Facts) -> list[str]:
    cmds = [cmd for copy in replacements for cmd in facts.uninstall(copy)]
    reinstall = remedy.reinstall_claim(claim)
    if reinstall:
        cmds.append(reinstall)
    return cmds
