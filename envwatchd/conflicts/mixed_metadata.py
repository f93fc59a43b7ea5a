"""mixed-metadata: 2+ metadata entries for one project in one site dir.

Why: the modules on disk are one version, but pip, conda and importlib.metadata
each pick one of the metadata entries, so they disagree on what is installed (the
story's conda egg-info written next to pip's dist-info; pip#3089, uv#1062).

Not a conflict: every entry claimed by the same database record. Debian's
python3-cryptography ships ``cryptography-38.0.4.dist-info`` and
``cryptography.egg-info`` together; dpkg agrees with itself, nothing is stale.

Which entry is current cannot be read from metadata alone. We keep the highest
version (upgrades leave the old entry behind), then the database-owned one (a
conda/apt reinstall rewrites the modules), then dist-info. When the stale entry
belongs to a database, deleting it by hand would orphan that record, so the
remedy removes the intruder and reinstalls the owner instead.
"""

from __future__ import annotations

import os

from envwatchd import remedy
from envwatchd.conflicts._common import Facts, RuleContext, describe, make_key
from envwatchd.model import (
    Conflict,
    ConflictKind,
    Copy,
    EnvKind,
    Format,
    Inventory,
    NormalizedName,
    Severity,
)
from envwatchd.precedence import version_key

__all__ = ["check", "metadata_groups"]

_FORMAT_RANK = {Format.DIST_INFO: 0, Format.EGG_INFO: 1}


def metadata_groups(inv: Inventory) -> dict[tuple[str, NormalizedName], list[Copy]]:
    """(site, name) -> the dist-info/egg-info entries sitting directly in that site."""
    out: dict[tuple[str, NormalizedName], list[Copy]] = {}
    dist, egg, cache = Format.DIST_INFO, Format.EGG_INFO, EnvKind.CONDA_PKGS
    for copy in inv.copies:  # identity tests: an Enum in a set hashes in Python code
        fmt = copy.format
        if (fmt is dist or fmt is egg) and copy.import_path is None and copy.env.kind is not cache:
            key = (copy.site, copy.name)
            group = out.get(key)
            if group is None:
                out[key] = [copy]
            else:
                group.append(copy)
    return out


def check(inv: Inventory, ctx: RuleContext) -> list[Conflict]:
    facts = ctx.facts(inv)
    out = []
    for (site, name), copies in metadata_groups(inv).items():
        if len(copies) < 2 or _one_owner(copies):
            continue
        out.append(_conflict(site, name, _ranked(copies), facts))
    return out


def _one_owner(copies: list[Copy]) -> bool:
    owners = {c.owner for c in copies}
    return len(owners) == 1 and None not in owners


def _ranked(copies: list[Copy]) -> list[Copy]:
    """Most likely current first: highest version, owned, dist-info, path."""
    ranked = sorted(copies, key=lambda c: (c.owner is None, _FORMAT_RANK[c.format], c.path))
    ranked.sort(key=lambda c: version_key(c.version), reverse=True)
    return ranked


def _conflict(site: str, name: NormalizedName, ranked: list[Copy], facts: Facts) -> Conflict:
    keeper, stale = ranked[0], ranked[1:]
    entries = "; ".join(f"{os.path.basename(c.path)} ({c.version}, {_who(c)})" for c in ranked)
    message = (
        f"{keeper.display_name} has {len(ranked)} metadata entries in {site}: {entries}. "
        f"Tools disagree about the installed version; the modules most likely "
        f"belong to {describe(keeper)}."
    )
    return Conflict(
        key=make_key(ConflictKind.MIXED_METADATA, name, [site]),
        kind=ConflictKind.MIXED_METADATA,
        name=name,
        severity=Severity.WARNING,
        copies=tuple(ranked),
        message=message,
        remedy=tuple(_remedy(keeper, stale, facts)),
    )


def _who(copy: Copy) -> str:
    return f"{copy.manager.value}, owned by {copy.owner}" if copy.owner else copy.manager.value


def _remedy(keeper: Copy, stale: list[Copy], facts: Facts) -> list[str]:
    owned_stale = [c for c in stale if c.owner and c.owner != keeper.owner]
    if owned_stale and keeper.owner is None:
        restore = owned_stale[0]
        assert restore.owner is not None
        cmd = remedy.reinstall_owner(restore.owner, restore.env.prefix, restore.env.name)
        # not `pip uninstall NAME`: with two metadata dirs of NAME in one dir, pip takes
        # whichever the directory listing yields first, possibly the database's own
        rm = remedy.remove_paths([keeper.path], sudo=remedy.needs_root(keeper.env))
        return [rm, *([cmd] if cmd else [])]
    paths = [c.path for c in stale]
    return [
        remedy.remove_paths(paths, sudo=remedy.needs_root(keeper.env)),
        facts.reinstall(keeper),
    ]
