"""foreign-overwrite: files a package database owns were rewritten by another manager.

Why: ``pip install --force-reinstall`` inside a conda env, or ``sudo pip`` over
an rpm, leaves the database believing it owns files that another tool wrote.
The next ``conda update``/``apt upgrade`` or ``pip uninstall`` deletes the other
manager's files (conda-pack refuses to pack such envs, conda#7972).

Evidence, strongest first:
1. the owned metadata says another manager wrote it last (INSTALLER=pip inside
   a conda-meta-claimed dist-info); ``unknown``/``distutils`` are not evidence:
   Debian's flat egg-info files carry no INSTALLER;
2. the owned metadata's version differs from the record's (tolerant compare);
3. an unclaimed copy provides a top-level module that a record of the same
   project claims in that site. Reported here only when no more specific rule
   covers it: an owned metadata entry still there is mixed-metadata, a record
   with missing entries is orphaned-record.
"""

from __future__ import annotations

from collections import defaultdict

from envwatchd import remedy
from envwatchd.conflicts._common import Facts, RuleContext, describe, make_key
from envwatchd.conflicts._versions import versions_match
from envwatchd.conflicts.mixed_metadata import metadata_groups
from envwatchd.model import (
    Claim,
    Conflict,
    ConflictKind,
    Copy,
    Inventory,
    Manager,
    NormalizedName,
    Severity,
    canonicalize,
)

__all__ = ["check"]

_NO_EVIDENCE = frozenset({Manager.UNKNOWN, Manager.DISTUTILS})


def check(inv: Inventory, ctx: RuleContext) -> list[Conflict]:
    facts = ctx.facts(inv)
    out = [c for copy in inv.copies if copy.owner for c in _owned(copy, facts)]
    out.extend(_unclaimed(inv, facts))
    return out


def _owned(copy: Copy, facts: Facts) -> list[Conflict]:
    db_manager = remedy.owner_manager(copy.owner)
    if db_manager is None:
        return []
    reasons = []
    if copy.manager is not db_manager and copy.manager not in _NO_EVIDENCE:
        reasons.append(f"its metadata says {copy.manager.value} wrote it last")
    if (
        copy.owner_version
        and _versioned_alike(copy)
        and not versions_match(copy.version, copy.owner_version)
    ):
        reasons.append(f"the record says {copy.owner_version} but the metadata says {copy.version}")
    if not reasons:
        return []
    message = f"{copy.owner} owns {copy.path}, but " + " and ".join(reasons) + "."
    return [_conflict(copy, message, str(copy.owner), facts)]


def _versioned_alike(copy: Copy) -> bool:
    """Does the record's version speak for the project? conda's always does; a
    distro package only when it is named after the project (python3-numpy), not
    when it merely ships a module (linux-perf ships perf-0.1.egg-info at 6.1)."""
    db, _, package = (copy.owner or "").partition(":")
    if db == "conda":
        return True
    stem = canonicalize(package)
    for prefix in ("python3-", "python-", "python2-", "pypy3-", "pypy-", "py3-"):
        if stem.startswith(prefix):
            stem = canonicalize(stem[len(prefix) :])
            break
    return stem == copy.name or stem.replace("-", "") == copy.name.replace("-", "")


def _conflict(
    copy: Copy, message: str, owner: str, facts: Facts, *, intruder: bool = False
) -> Conflict:
    """``intruder``: the copy is not the record's at all, so it goes before the reinstall."""
    db = owner.partition(":")[0]
    by_other = copy.manager not in _NO_EVIDENCE and copy.manager is not remedy.owner_manager(owner)
    foreign = intruder or by_other
    cmds = facts.uninstall(copy) if foreign else []
    reinstall = remedy.reinstall_owner(owner, copy.env.prefix, copy.env.name)
    return Conflict(
        key=make_key(ConflictKind.FOREIGN_OVERWRITE, copy.name, [f"{copy.site}@{db}"]),
        kind=ConflictKind.FOREIGN_OVERWRITE,
        name=copy.name,
        severity=Severity.ERROR,
        copies=(copy,),
        message=message,
        remedy=tuple([*cmds, *([reinstall] if reinstall else [])]),
    )


def _unclaimed(inv: Inventory, facts: Facts) -> list[Conflict]:
    claimed: dict[str, list[Claim]] = defaultdict(list)
    for claim in inv.claims:
        if claim.installed and not claim.missing:
            for path in claim.claimed:
                claimed[path].append(claim)
    if not claimed:
        return []
    covered = _covered(inv)
    out = []
    for copy in inv.copies:
        if copy.owner is None and (copy.site, copy.name) not in covered:
            over = _claim_over(copy, claimed)
            conflict = _unclaimed_conflict(copy, over, facts) if over else None
            if conflict is not None:
                out.append(conflict)
    return out


def _covered(inv: Inventory) -> set[tuple[str, NormalizedName]]:
    """(site, name) pairs where an owned metadata entry remains: mixed-metadata's case."""
    return {key for key, copies in metadata_groups(inv).items() if any(c.owner for c in copies)}


def _claim_over(copy: Copy, claimed: dict[str, list[Claim]]) -> Claim | None:
    for top in copy.top_level:
        for path in (f"{copy.site}/{top}", f"{copy.site}/{top}.py"):
            for claim in claimed.get(path, ()):
                if claim.name == copy.name and claim.site == copy.site:
                    return claim
    return None


def _unclaimed_conflict(copy: Copy, claim: Claim, facts: Facts) -> Conflict | None:
    owner = remedy.claim_owner(claim)
    if owner is None:
        return None
    message = (
        f"{describe(copy)} was written over files that {claim.manager.value} package "
        f"{claim.package} {claim.version} owns ({claim.record_path})."
    )
    return _conflict(copy, message, owner, facts, intruder=True)
