"""One full scan: discovery, package databases, every site dir, interpreter view.

`Scanner` keeps the per-site snapshots so the daemon can re-read one dirty
site dir and reassemble the inventory without touching the others.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import structlog

from envwatchd.discovery import Machine, discover
from envwatchd.formats.conda_meta import CondaRecord, parse_record
from envwatchd.formats.dpkg import read_dpkg
from envwatchd.formats.pth import PthFile
from envwatchd.formats.rpm import read_rpm
from envwatchd.interpreters import expand
from envwatchd.model import (
    CacheEntry,
    Claim,
    Copy,
    Env,
    EnvKind,
    EnvRef,
    Inventory,
    Manager,
    NormalizedName,
    Problem,
    canonicalize,
)
from envwatchd.precedence import with_imported_by
from envwatchd.snapshot import Owners, SiteSnapshot, project_of, scan_site

__all__ = ["Scanner"]

log = structlog.get_logger()
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Scanner:
    machine: Machine
    envs: list[Env] = field(default_factory=list)
    snapshots: dict[str, SiteSnapshot] = field(default_factory=dict)
    owners: Owners = field(default_factory=Owners)
    db_owners: Owners = field(default_factory=Owners)
    conda_owners: dict[str, Owners] = field(default_factory=dict)
    conda_stems: dict[str, tuple[str, ...]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    cache_entries: list[CacheEntry] = field(default_factory=list)
    read_mtimes: dict[str, int] = field(default_factory=dict)
    duration_ms: float = 0.0

    def full_scan(self, progress: Progress | None = None) -> Inventory:
        start = time.perf_counter()
        envs, problems = discover(self.machine)
        self.envs, self.problems = envs, problems
        self.reload_databases()
        self.snapshots = {}
        for i, env in enumerate(envs):
            if progress:
                progress(i, len(envs))
            self._scan_env(env)
        inv = self.assemble()
        self.duration_ms = (time.perf_counter() - start) * 1000
        log.info(
            "scan.completed",
            envs=len(envs),
            sites=len(self.snapshots),
            copies=len(inv.copies),
            problems=len(inv.problems),
            duration_ms=round(self.duration_ms, 1),
        )
        return inv

    def reload_databases(self) -> None:
        """Re-read dpkg, rpm and every conda-meta dir into a fresh ownership index."""
        owners = Owners(self.machine.root)
        self._note_mtime(self.machine.roots("/var/lib/dpkg"))
        for reader, manager in ((read_dpkg, Manager.APT), (read_rpm, Manager.RPM)):
            db, problems = reader(self.machine.root or "/")
            self.problems.extend(problems)
            if db is not None:
                owners.add_db(db, manager)
        self.db_owners = owners
        self.conda_owners, self.conda_stems = {}, {}
        for env in self.envs:
            if env.conda_meta:
                self._load_conda(env.prefix, env.conda_meta)
        self._combine()

    def _load_conda(self, prefix: str, meta: str) -> None:
        """One env's conda-meta -> its ownership fragment. The records themselves (and
        their file lists: most of a conda env's metadata bytes) are not kept."""
        records = self._read_conda_meta(meta)
        fragment = Owners(self.machine.root)
        fragment.add_conda(prefix, records)
        self.conda_owners[prefix] = fragment
        self.conda_stems[prefix] = tuple(r.stem for r in records)

    def _combine(self) -> None:
        owners = Owners(self.machine.root)
        owners.by_entry = dict(self.db_owners.by_entry)
        owners.by_site = {site: list(c) for site, c in self.db_owners.by_site.items()}
        for fragment in self.conda_owners.values():
            owners.by_entry.update(fragment.by_entry)
            for site, claims in fragment.by_site.items():
                owners.by_site.setdefault(site, []).extend(claims)
        self.owners = owners

    def _note_mtime(self, path: str) -> None:
        """When a tree was read, for `changed_since_read` (taken before reading)."""
        try:
            self.read_mtimes[path] = os.stat(path).st_mtime_ns
        except OSError:
            self.read_mtimes.pop(path, None)

    def changed_since_read(self, path: str, is_site: bool) -> bool:
        """Has `path` (a site dir, conda-meta or dpkg dir) changed since it was read?
        Unknown means yes. Lets the daemon skip re-reading what a new watch covers."""
        if is_site:
            snap = self.snapshots.get(path)
            seen = snap.mtime_ns if snap is not None else None
        else:
            seen = self.read_mtimes.get(path)
        try:
            return seen is None or os.stat(path).st_mtime_ns != seen
        except OSError:
            return True

    def _read_conda_meta(self, meta: str) -> list[CondaRecord]:
        self._note_mtime(meta)
        out: list[CondaRecord] = []
        try:
            names = sorted(n for n in os.listdir(meta) if n.endswith(".json"))
        except OSError as exc:
            self.problems.append(Problem(meta, f"cannot list conda-meta: {exc.strerror or exc}"))
            return out
        for name in names:
            record, problems = parse_record(os.path.join(meta, name))
            self.problems.extend(problems)
            if record is not None:
                out.append(record)
        return out

    def _scan_env(self, env: Env) -> None:
        if env.kind is EnvKind.CONDA_PKGS:
            self._scan_pkgs(env)
            return
        for site in env.site_dirs:
            self.snapshots[site] = scan_site(site, env, self.owners)

    def reload_conda(self, prefix: str) -> None:
        """Re-read one env's conda-meta and rebuild the conda part of the index."""
        env = next((e for e in self.envs if e.prefix == prefix and e.conda_meta), None)
        if env is None or env.conda_meta is None:
            return
        self._load_conda(prefix, env.conda_meta)
        self._combine()

    def rediscover(self, walk: bool) -> set[str]:
        """Re-run discovery; scan new envs, drop vanished ones. Returns affected sites.

        Without `walk`, envs found by the search-dir walk are kept while their
        marker file still exists: only start-up and `rescan` walk the home.
        """
        old = {e.prefix: e for e in self.envs}
        machine = self.machine
        if not walk:
            machine = replace(
                machine, settings=machine.settings.model_copy(update={"search_dirs": []})
            )
        envs, problems = discover(machine)
        self.problems = problems
        found = {e.prefix for e in envs}
        for prefix, env in old.items():
            if prefix not in found and not walk and _still_env(env):
                envs.append(env)
        new = {e.prefix: e for e in envs}
        affected: set[str] = set()
        for prefix in old.keys() | new.keys():
            before, after = old.get(prefix), new.get(prefix)
            if before != after:
                affected |= set(before.site_dirs if before else ()) | set(
                    after.site_dirs if after else ()
                )
        self.envs = envs
        if affected or old.keys() != new.keys():
            self.reload_databases()
        for site in list(self.snapshots):
            if site in affected:
                del self.snapshots[site]
        for env in envs:
            if env.kind is EnvKind.CONDA_PKGS and (env.prefix not in old or walk):
                self._scan_pkgs(env)
            elif any(s in affected for s in env.site_dirs):
                self._scan_env(env)
        return affected

    def rescan_sites(self, sites: Iterable[str]) -> None:
        """Re-read the given site dirs (known ones only) in place."""
        by_site = {s: e for e in self.envs for s in e.site_dirs}
        for site in sites:
            env = by_site.get(site)
            if env is not None:
                self.snapshots[site] = scan_site(site, env, self.owners)

    def rescan_env(self, env: Env) -> None:
        for site in [s for s, snap in self.snapshots.items() if snap.env.prefix == env.prefix]:
            del self.snapshots[site]
        self._scan_env(env)

    def scan_pkgs(self, prefix: str) -> set[str]:
        """Re-read one pkgs cache; returns the site dirs it held before and after."""
        before = {s for s in self.snapshots if s.startswith(prefix + os.sep)}
        for env in self.envs:
            if env.kind is EnvKind.CONDA_PKGS and env.prefix == prefix:
                self._scan_pkgs(env)
        return before | {s for s in self.snapshots if s.startswith(prefix + os.sep)}

    def _scan_pkgs(self, env: Env) -> None:
        """A conda pkgs cache: each extracted package may hold a site dir of its own."""
        used: dict[str, list[str]] = {}
        for prefix, stems in self.conda_stems.items():
            for stem in stems:
                used.setdefault(stem, []).append(prefix)
        self._note_mtime(env.prefix)
        for site in [s for s in self.snapshots if s.startswith(env.prefix + os.sep)]:
            del self.snapshots[site]
        entries: list[CacheEntry] = [
            e for e in self.cache_entries if not e.path.startswith(env.prefix + os.sep)
        ]
        for entry in _pkg_dirs(env.prefix):
            stem = os.path.basename(entry)
            parts = stem.rsplit("-", 2)
            if len(parts) != 3:
                continue
            users = tuple(used.get(stem, ()))
            size = 0 if users else _du(entry)
            entries.append(
                CacheEntry(entry, canonicalize(parts[0]), parts[1], parts[2], size, users)
            )
            for site in _pkg_sites(entry):
                self.snapshots[site] = scan_site(site, env, self.owners)
        self.cache_entries = entries

    def _unscanned_claims(self) -> list[Claim]:
        """Records claiming a site dir that is gone altogether: everything is missing."""
        out: list[Claim] = []
        for site, claims in self.owners.by_site.items():
            if site in self.snapshots and self.snapshots[site].exists:
                continue
            if os.path.isdir(site) or not self._system_site(site):
                continue  # a tree we do not inventory (a vendored interpreter), not a loss
            env = _env_for(self.envs, site)
            ref = env.ref if env else EnvRef(EnvKind.OTHER, os.path.dirname(site), "gone")
            for manager, owner, version, record, tops in claims:
                package = owner.split(":", 1)[1]
                paths = tuple(os.path.join(site, t) for t in sorted(tops))
                out.append(
                    Claim(
                        manager,
                        package,
                        canonicalize(project_of(owner, tops)),
                        version,
                        ref,
                        site,
                        record,
                        paths,
                        paths,
                    )
                )
        return out

    def _system_site(self, site: str) -> bool:
        r = self.machine.roots
        return site.startswith(
            (r("/usr/lib/python"), r("/usr/lib64/python"), r("/usr/local/lib/python"))
        )

    def assemble(self, names: set[NormalizedName] | None = None) -> Inventory:
        copies: list[Copy] = []
        claims: list[Claim] = []
        problems = list(self.problems)
        pth_by_site: dict[str, tuple[PthFile, ...]] = {}
        for site, snap in self.snapshots.items():
            copies.extend(snap.copies)
            claims.extend(snap.claims)
            problems.extend(snap.problems)
            pth_by_site[site] = snap.pth
        claims.extend(self._unscanned_claims())
        extra = tuple(os.path.abspath(r) for r in self.machine.settings.extra_roots)
        envs = tuple(_with_interpreters(env, pth_by_site, extra) for env in self.envs)
        inv = Inventory(
            envs, tuple(copies), tuple(claims), tuple(self.cache_entries), tuple(problems), extra
        )
        inv = with_imported_by(inv, names)
        self._keep(inv.copies)
        return inv

    def _keep(self, copies: tuple[Copy, ...]) -> None:
        """Hold the evolved copies in the snapshots too, so the pre-`imported_by`
        twins are freed: one set of 20,000 copies in memory, not two."""
        by_site: dict[str, list[Copy]] = {}
        for copy in copies:
            by_site.setdefault(copy.site, []).append(copy)
        for site, snap in self.snapshots.items():
            if snap.copies:
                self.snapshots[site] = replace(snap, copies=tuple(by_site.get(site, ())))


def _with_interpreters(
    env: Env, pth_by_site: dict[str, tuple[PthFile, ...]], extra: tuple[str, ...]
) -> Env:
    if not env.interpreters:
        return env
    return replace(env, interpreters=tuple(expand(i, pth_by_site, extra) for i in env.interpreters))


def _env_for(envs: Iterable[Env], path: str) -> Env | None:
    best: Env | None = None
    for env in envs:
        if path.startswith(env.prefix.rstrip("/") + "/") and (
            best is None or len(env.prefix) > len(best.prefix)
        ):
            best = env
    return best


def _still_env(env: Env) -> bool:
    marker = "conda-meta" if env.kind is EnvKind.CONDA else "pyvenv.cfg"
    return os.path.exists(os.path.join(env.prefix, marker))


def _pkg_dirs(cache: str) -> list[str]:
    try:
        with os.scandir(cache) as it:
            return sorted(
                e.path
                for e in it
                if e.is_dir(follow_symlinks=False) and os.path.isdir(os.path.join(e.path, "info"))
            )
    except OSError:
        return []


def _pkg_sites(entry: str) -> list[str]:
    sites = glob.glob(os.path.join(glob.escape(entry), "lib", "python*", "site-packages"))
    noarch = os.path.join(entry, "site-packages")
    if os.path.isdir(noarch):
        sites.append(noarch)
    return sorted(sites)


def _du(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total
