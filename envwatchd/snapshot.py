"""Scan one site dir into an immutable snapshot: the only module that walks dirs.

One `os.scandir` of the site dir lists every candidate; names route to the
format parsers (formats.classify) before any file is opened. Package
databases arrive pre-indexed in `Owners` so each entry's owner is one dict
lookup. A site dir that vanishes mid-scan yields an empty snapshot with a
problem, never an exception.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from envwatchd.formats import RawDist, SiteEntry, classify, is_pth_name
from envwatchd.formats.conda_meta import CondaRecord
from envwatchd.formats.dist_info import split_name
from envwatchd.formats.dpkg import DpkgDb
from envwatchd.formats.egg_info import split_egg_name
from envwatchd.formats.pth import PthFile, parse_pth
from envwatchd.inference import Claimant, infer
from envwatchd.model import Claim, Copy, Env, Format, Manager, Problem, canonicalize, owner_label

__all__ = ["Owners", "SiteSnapshot", "guess_project", "project_of", "scan_site"]


@dataclass(slots=True)
class Owners:
    """Package-database claims on site-dir entries: (site, entry) -> claim."""

    root: str = ""
    by_entry: dict[tuple[str, str], tuple[Manager, str, str, str]] = field(default_factory=dict)
    by_site: dict[str, list[tuple[Manager, str, str, str, set[str]]]] = field(default_factory=dict)

    def add_db(self, db: DpkgDb, manager: Manager) -> None:
        for pkg in db.packages.values():
            record = self._rel(pkg.list_path)
            for site, tops in pkg.entries.items():
                if pkg.installed:  # only a settled package can be missing its files
                    self.by_site.setdefault(site, []).append(
                        (manager, owner_label(manager, pkg.name), pkg.version, pkg.list_path, tops)
                    )
                # ownership from the .list alone: dpkg writes it while unpacking, before
                # the status says "installed"; owning from then on keeps one install event
                for top in tops:
                    self.by_entry.setdefault((site, top), (manager, pkg.name, pkg.version, record))

    def add_conda(self, prefix: str, records: list[CondaRecord]) -> None:
        base = prefix.rstrip("/") + "/"
        sites: dict[str, str] = {}  # interned site paths: thousands of files share a few
        for rec in records:
            by_site: dict[str, set[str]] = {}
            for rel in rec.files:
                idx = rel.find("site-packages/")
                if idx < 0:
                    continue
                head = rel[: idx + 13]
                site = sites.get(head) or sites.setdefault(head, base + head)
                top = rel[idx + 14 :].split("/", 1)[0]
                if top:
                    by_site.setdefault(site, set()).add(top)
            record = os.path.join("conda-meta", os.path.basename(rec.path))
            for site, tops in by_site.items():
                self.by_site.setdefault(site, []).append(
                    (Manager.CONDA, f"conda:{rec.stem}", rec.version, rec.path, tops)
                )
                for top in tops:
                    self.by_entry[(site, top)] = (Manager.CONDA, rec.stem, rec.version, record)

    def claimant(self, site: str, entry: str) -> Claimant | None:
        hit = self.by_entry.get((site, entry))
        if hit is None:
            return None
        manager, name, version, record = hit
        return Claimant(manager, owner_label(manager, name), version, record)

    def _rel(self, path: str) -> str:
        root = self.root.rstrip("/")
        return path[len(root) + 1 :] if root and path.startswith(root + "/") else path.lstrip("/")


@dataclass(frozen=True, slots=True)
class SiteSnapshot:
    site: str
    env: Env
    copies: tuple[Copy, ...]
    pth: tuple[PthFile, ...]
    claims: tuple[Claim, ...]
    problems: tuple[Problem, ...]
    exists: bool = True
    busy: bool = False
    mtime_ns: int | None = None


def scan_site(site: str, env: Env, owners: Owners) -> SiteSnapshot:
    problems: list[Problem] = []
    try:
        mtime = os.stat(site).st_mtime_ns  # before the listing: a later change moves it
        with os.scandir(site) as it:
            entries = [(e.name, e.path, _is_dir(e), e.inode()) for e in it]
    except FileNotFoundError:
        return SiteSnapshot(site, env, (), (), _claims(site, env, owners, set(), {}), (), False)
    except OSError as exc:
        problem = Problem(site, f"cannot read site dir: {exc.strerror or exc}")
        return SiteSnapshot(site, env, (), (), (), (problem,), False)
    pths: list[PthFile] = []
    raws: list[RawDist] = []
    for name, path, is_dir, inode in entries:
        if is_pth_name(name):
            pth, found = parse_pth(site, name)
            problems.extend(found)
            if pth is not None:
                pths.append(pth)
            continue
        parser = classify(name)
        if parser is None:
            continue
        raw, found = parser(SiteEntry(site, name, path, is_dir, inode))
        problems.extend(found)
        if raw is not None:
            raws.append(raw)
    names = {e[0] for e in entries}
    copies = _copies(site, env, owners, raws, pths)
    copies += _conda_only(site, env, owners, names, copies)
    by_entry = {os.path.basename(c.path): c for c in copies}
    claims = _claims(site, env, owners, names, by_entry)
    busy = any(n.startswith("~") for n in names)
    return SiteSnapshot(
        site, env, tuple(copies), tuple(pths), claims, tuple(problems), True, busy, mtime
    )


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _copies(
    site: str, env: Env, owners: Owners, raws: list[RawDist], pths: list[PthFile]
) -> list[Copy]:
    in_pth = {e for p in pths for e in p.entries}
    editable_src = {p.editable_for: p.entries for p in pths if p.editable_for}
    out: list[Copy] = []
    ref = env.ref
    for raw in raws:
        entry = os.path.basename(raw.path)
        inferred = infer(raw, env.kind, owners.claimant(site, entry), raw.path in in_pth)
        name = canonicalize(raw.display_name)
        import_path = raw.import_path
        if raw.format is Format.EDITABLE:
            src = editable_src.get(raw.display_name) or editable_src.get(name.replace("-", "_"))
            import_path = src[0] if src else None
        out.append(
            Copy(
                name=name,
                display_name=raw.display_name,
                version=raw.version,
                format=raw.format,
                path=raw.path,
                site=site,
                env=ref,
                manager=inferred.manager,
                evidence=inferred.evidence,
                installer=raw.installer,
                owner=inferred.owner,
                owner_version=inferred.owner_version,
                editable=raw.editable,
                requested=raw.requested,
                top_level=raw.top_level,
                import_path=import_path,
                fingerprint=raw.fingerprint,
            )
        )
    return out


def _conda_only(
    site: str, env: Env, owners: Owners, names: set[str], copies: list[Copy]
) -> list[Copy]:
    """conda packages with files in this site but no Python metadata of their own."""
    described = {c.owner for c in copies if c.owner}
    out: list[Copy] = []
    for manager, owner, version, record, tops in owners.by_site.get(site, ()):
        if manager is not Manager.CONDA or owner in described or not (tops & names):
            continue
        stem = owner.split(":", 1)[1]
        pname = stem.rsplit("-", 2)[0]
        out.append(
            Copy(
                name=canonicalize(pname),
                display_name=pname,
                version=version,
                format=Format.CONDA_META,
                path=record,
                site=site,
                env=env.ref,
                manager=Manager.CONDA,
                evidence=(
                    f"claimed by conda-meta/{os.path.basename(record)}",
                    "no Python metadata: the conda record describes it",
                ),
                owner=owner,
                owner_version=version,
                top_level=tuple(sorted(tops & names)),
            )
        )
    return out


def _claims(
    site: str, env: Env, owners: Owners, names: set[str], by_entry: dict[str, Copy]
) -> tuple[Claim, ...]:
    out: list[Claim] = []
    for manager, owner, version, record, tops in owners.by_site.get(site, ()):
        claimed = sorted(tops)
        missing = tuple(os.path.join(site, t) for t in claimed if t not in names)
        project = next((by_entry[t].name for t in claimed if t in by_entry), None)
        out.append(
            Claim(
                manager=manager,
                package=owner.split(":", 1)[1],
                name=project or canonicalize(project_of(owner, claimed)),
                version=version,
                env=env.ref,
                site=site,
                record_path=record,
                claimed=tuple(os.path.join(site, t) for t in claimed),
                missing=missing,
            )
        )
    return tuple(out)


def project_of(owner: str, entries: Iterable[str]) -> str:
    """The project a record is about: its metadata entry names it best
    (python3-yaml ships PyYAML-6.0.egg-info), else a guess from the package name."""
    for entry in sorted(entries):
        base = os.path.basename(entry)
        if base.endswith(".dist-info"):
            split = split_name(base[: -len(".dist-info")])
            if split:
                return split[0]
        elif base.endswith(".egg-info"):
            return split_egg_name(base[: -len(".egg-info")])[0]
    return guess_project(owner)


def guess_project(owner: str) -> str:
    """`dpkg:python3-numpy` -> numpy; `conda:numpy-1.13.3-py27_0` -> numpy."""
    kind, _, name = owner.partition(":")
    if kind == "conda":
        return name.rsplit("-", 2)[0]
    for prefix in ("python3-", "python-", "python2-", "pypy3-"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name
