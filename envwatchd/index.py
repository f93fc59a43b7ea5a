"""The in-memory query index over one inventory: `where`, `explain`, `packages`, `envs`.

Built once per settled change and swapped atomically, so socket queries never
rescan and never read files: `explain` answers from paths already known.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from envwatchd.model import Copy, Env, Inventory, NormalizedName, canonicalize, owner_label
from envwatchd.precedence import shadowing

__all__ = ["Index"]


@dataclass(slots=True)
class Index:
    inventory: Inventory
    by_name: dict[NormalizedName, list[Copy]] = field(default_factory=dict)
    by_path: dict[str, Copy] = field(default_factory=dict)
    by_site: dict[str, list[Copy]] = field(default_factory=dict)
    site_env: dict[str, Env] = field(default_factory=dict)

    @classmethod
    def build(cls, inv: Inventory) -> Index:
        idx = cls(inv)
        by_name: defaultdict[NormalizedName, list[Copy]] = defaultdict(list)
        by_site: defaultdict[str, list[Copy]] = defaultdict(list)
        for copy in inv.copies:
            by_name[copy.name].append(copy)
            by_site[copy.site].append(copy)
            idx.by_path[copy.path] = copy
        idx.by_name, idx.by_site = dict(by_name), dict(by_site)
        for env in inv.envs:
            for site in env.site_dirs:
                idx.site_env[site] = env
        return idx

    def _copy_at(self, site: str, entry: str) -> Copy | None:
        """The copy an entry of a site dir belongs to: its metadata dir or a module.
        A scan of that one site's copies, not a standing index: `explain` is rare."""
        module = entry[:-3] if entry.endswith(".py") else entry.split(".", 1)[0]
        for copy in self.by_site.get(site, ()):
            if os.path.basename(copy.path) == entry or module in copy.top_level:
                return copy
        return None

    def _claimed_by(self, site: str, entry: str) -> str | None:
        wanted = os.path.join(site, entry)
        for claim in self.inventory.claims:
            if claim.site == site and wanted in claim.claimed:
                return owner_label(claim.manager, claim.package)
        return None

    def where(self, name: str) -> dict[str, Any]:
        norm = canonicalize(name)
        copies = self.by_name.get(norm, [])
        sub = Inventory(self.inventory.envs, tuple(copies), extra_roots=self.inventory.extra_roots)
        interps = []
        for res in shadowing(sub).get(norm, []):
            interps.append(
                {
                    "executable": res.interpreter.executable,
                    "imported": res.winner.path,
                    "shadowed": [c.path for c in res.shadowed],
                }
            )
        return {"name": norm, "copies": [c.to_json() for c in copies], "interpreters": interps}

    def explain(self, path: str) -> dict[str, Any]:
        target = os.path.normpath(os.path.abspath(path))
        out: dict[str, Any] = {
            "path": target,
            "env": None,
            "site": None,
            "copy": None,
            "owner": None,
            "manager": None,
            "evidence": [],
            "found": False,
        }
        copy = self.by_path.get(target)
        site = copy.site if copy else self._site_of(target)
        if site is None:
            return out
        env = self.site_env.get(site)
        out.update(site=site, env=env.ref.to_json() if env else None, found=True)
        if target == site:
            out["evidence"] = (
                [f"{site} is a site dir of {env.kind.value} {env.prefix}"] if env else []
            )
            return out
        entry = target[len(site) + 1 :].split(os.sep, 1)[0]
        if copy is None:
            copy = self._copy_at(site, entry)
        owner = self._claimed_by(site, entry)
        if copy is not None:
            out.update(
                copy=copy.to_json(),
                manager=copy.manager.value,
                evidence=list(copy.evidence),
                owner=copy.owner or owner,
            )
        elif owner is not None:
            out.update(
                owner=owner, manager=_manager_of(owner), evidence=[f"{entry} is claimed by {owner}"]
            )
        else:
            out["evidence"] = [f"{entry} in {site} belongs to no known distribution"]
        return out

    def _site_of(self, path: str) -> str | None:
        probe = path
        while True:
            if probe in self.site_env:
                return probe
            parent = os.path.dirname(probe)
            if parent == probe:
                return None
            probe = parent

    def packages(self, env: str | None = None, manager: str | None = None) -> list[dict[str, Any]]:
        """Copies in contract shape plus `owner`/`owner_version`: the database record
        claiming each one (`dpkg:python3-numpy`, `1:1.24.2-1`), which `envwatch sbom`
        turns into deb/conda purls. Extra keys only here: `where` and `conflicts`
        keep the plain copy shape."""
        prefix = os.path.normpath(os.path.abspath(env)) if env else None
        return [
            {**c.to_json(), "owner": c.owner, "owner_version": c.owner_version}
            for c in sorted(self.inventory.copies, key=lambda c: (c.env.prefix, c.name, c.path))
            if (prefix is None or c.env.prefix == prefix)
            and (manager is None or c.manager == manager)
        ]

    def envs(self) -> list[dict[str, Any]]:
        counts: defaultdict[str, int] = defaultdict(int)
        for c in self.inventory.copies:
            counts[c.env.prefix] += 1
        return [e.to_json(counts[e.prefix]) for e in self.inventory.envs]


def _manager_of(owner: str) -> str:
    db = owner.split(":", 1)[0]
    return {"dpkg": "apt"}.get(db, db)
