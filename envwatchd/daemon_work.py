"""The daemon's work, run on its single worker thread: scan, diff, commit, conflicts.

The scanner and the writing store are touched only here, so there are no
locks. Each pass returns an `Outcome` the loop publishes. A site still being
written (pip's `~` stash present, or a fresh dist-info without RECORD) is
deferred to the next pass rather than diffed half-done, up to max_settle:
that is how an upgrade stays one "upgrade" event and not uninstall+install.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import structlog

from envwatchd.config import Config
from envwatchd.conflicts import RuleContext, affected, evaluate
from envwatchd.diff import diff_copies
from envwatchd.discovery import Machine
from envwatchd.formats.files import read_files
from envwatchd.formats.pth import PthFile
from envwatchd.inventory import Scanner
from envwatchd.model import (
    Claim,
    Conflict,
    ConflictKind,
    Copy,
    EnvKind,
    Event,
    Inventory,
    Manager,
    NormalizedName,
    Origin,
)
from envwatchd.provenance import apt_command, conda_command
from envwatchd.settle import (
    Outcome,
    Pending,
    by_site,
    changes,
    fresh_incomplete,
    unwatched_conflict,
)
from envwatchd.store import Store
from envwatchd.watcher import Role

__all__ = ["Outcome", "Pending", "Worker"]  # the pass vocabulary lives in settle.py

log = structlog.get_logger()


class Worker:
    def __init__(self, config: Config, machine: Machine, db_path: Path) -> None:
        self.config = config
        self.db_path = db_path
        self.scanner = Scanner(machine)
        self.store: Store | None = None
        self.committed: dict[str, tuple[Copy, ...]] = {}
        self.plan: dict[str, Role] = {}
        self.pkgs_prefixes: frozenset[str] = frozenset()
        self.last_scan_ms = 0.0
        self.rules = RuleContext(read_files=read_files)
        self.busy_since: dict[str, float] = {}
        self.committed_pth: dict[str, tuple[PthFile, ...]] = {}
        self.remembered: dict[tuple[Manager, str], Claim] = {}
        self.synced: dict[str, Conflict] = {}
        self._problems_logged: set[tuple[str, str]] = set()

    @property
    def degraded(self) -> str | None:
        return self.store.degraded if self.store else None

    def start(self, progress: Callable[[int, int], None]) -> Outcome:
        """First inventory: a baseline on the very first start, else a reconcile."""
        self.store = store = Store.open(self.db_path)
        inv = self.scanner.full_scan(progress)
        self.last_scan_ms = self.scanner.duration_ms
        if not store.has_baseline():
            store.commit([], [], inv.copies, baseline=True)
            events: list[Event] = []
            log.info("store.baseline", packages=len(inv.copies))
        else:
            stored = store.load_inventory()
            diffed = diff_copies(stored, inv.copies, origin=Origin.RECONCILE)
            events = store.commit(diffed, *changes(stored, inv.copies))
        self.committed = by_site(inv.copies)
        self._keep_pth(self.scanner.snapshots)
        self._remember(inv.claims)
        self._log_problems(inv)
        opened, resolved = self._conflicts(inv, {})
        self._replan()
        return Outcome(events, opened, resolved, inv)

    def apply(self, pending: Pending, force: bool) -> Outcome:
        assert self.store is not None
        start = time.perf_counter()
        affected = self._refresh(pending)
        deferred = set() if force else self._in_progress(affected)
        settled = affected - deferred
        local = not (pending.full or pending.dbs or pending.rediscover or pending.pkgs)
        inv = self.scanner.assemble(self._rerank(affected) if local else None)
        self._keep_pth(affected)
        new_by_site = by_site(inv.copies)
        old = [c for s in settled for c in self.committed.get(s, ())]
        new = [c for s in settled for c in new_by_site.get(s, ())]
        events = self._with_commands(diff_copies(old, new, origin=Origin.LIVE))
        written = self.store.commit(events, *changes(old, new))
        for site in settled:
            if site in new_by_site:
                self.committed[site] = new_by_site[site]
            else:
                self.committed.pop(site, None)
        self._remember(c for c in inv.claims if c.site in settled)
        self._log_problems(inv)
        names = {c.name for c in old} | {c.name for c in new} if local else None
        if names is not None:
            names |= {c.name for c in inv.claims if c.site in settled}
        opened, resolved = self._conflicts(inv, pending.unwatched, names)
        self._replan()
        if pending.full or pending.walk:
            self.last_scan_ms = (time.perf_counter() - start) * 1000
        log.info(
            "settle.completed",
            sites=len(settled),
            deferred=len(deferred),
            marked=pending.summary(),
            events=len(written),
            duration_ms=round((time.perf_counter() - start) * 1000, 1),
        )
        return Outcome(written, opened, resolved, inv, deferred)

    def _refresh(self, p: Pending) -> set[str]:
        sc = self.scanner
        affected: set[str] = set()
        if p.full or p.rediscover:
            affected |= sc.rediscover(walk=p.walk)
        if p.full or p.dbs:
            sc.reload_databases()
        for prefix in p.conda:
            sc.reload_conda(prefix)
        rescan = set(p.sites)
        if p.full:
            rescan |= {s for e in sc.envs for s in e.site_dirs}
        if p.dbs:
            rescan |= set(sc.owners.by_site) | {
                s for e in sc.envs if e.kind in (EnvKind.SYSTEM, EnvKind.LOCAL) for s in e.site_dirs
            }
        rescan |= {s for e in sc.envs if e.prefix in p.conda for s in e.site_dirs}
        sc.rescan_sites(rescan)
        if any(not sc.snapshots[s].exists for s in rescan if s in sc.snapshots):
            affected |= sc.rediscover(walk=False)
        for prefix in p.pkgs | (self.pkgs_prefixes if p.full else frozenset()):
            affected |= sc.scan_pkgs(prefix)
        return affected | rescan | (set(self.committed) if p.full else set())

    def _log_problems(self, inv: Inventory) -> None:
        """Warn once per (path, problem) while it lasts: an unreadable tree must not be silent."""
        current = {(p.path, p.message) for p in inv.problems}
        for path, message in sorted(current - self._problems_logged):
            log.warning("scan.problem", path=path, message=message)
        self._problems_logged = current

    def _remember(self, claims: Iterable[Claim]) -> None:
        """Store the last known form of each database record, writing only the ones
        that changed (a pass over conda's site-packages sees ~1,000 unchanged ones)."""
        assert self.store is not None
        fresh = [c for c in claims if self.remembered.get((c.manager, c.record_path)) != c]
        if fresh:
            self.store.remember_claims(fresh)
            self.remembered.update(((c.manager, c.record_path), c) for c in fresh)

    def _rerank(self, sites: set[str]) -> set[NormalizedName] | None:
        """The projects whose winners a pass over `sites` can change: those the dirs
        hold now or held before. None (re-rank all) when interpreters' paths moved."""
        snaps = self.scanner.snapshots
        if self._paths_changed(sites) or not all(s in snaps for s in sites):
            return None
        names = {c.name for s in sites for c in snaps[s].copies}
        return names | {c.name for s in sites for c in self.committed.get(s, ())}

    def _keep_pth(self, sites: Iterable[str]) -> None:
        for site in sites:
            snap = self.scanner.snapshots.get(site)
            if snap is None:
                self.committed_pth.pop(site, None)
            else:
                self.committed_pth[site] = snap.pth

    def _paths_changed(self, sites: Iterable[str]) -> bool:
        """Did a .pth file appear, vanish or change in these dirs since the last pass?
        Then interpreters' paths moved and every winner must be recomputed."""
        for site in sites:
            snap = self.scanner.snapshots.get(site)
            now = snap.pth if snap is not None else ()
            if now != self.committed_pth.get(site, ()):
                return True
        return False

    def _dpkg_busy(self) -> bool:
        """dpkg journals a running transaction in `updates/` and empties it at the end."""
        updates = self.scanner.machine.roots("/var/lib/dpkg/updates")
        try:
            return any(not n.startswith(".") for n in os.listdir(updates))
        except OSError:
            return False

    def _stash_active(self, site: str, busy: bool, now: float) -> bool:
        """pip's `~` stash means a transaction is running, unless it outlived
        max_settle: then it is the leftover of a killed pip and must not delay
        every later change in that site."""
        if not busy:
            self.busy_since.pop(site, None)
            return False
        first = self.busy_since.setdefault(site, now)
        if now - first <= self.config.watch.max_settle_ms / 1000:
            return True
        if first != -1.0:
            log.warning("settle.stale_stash", site=site, since_s=round(now - first, 1))
            self.busy_since[site] = -1.0  # warned once; from now on ignored
        return False

    def _in_progress(self, sites: Iterable[str]) -> set[str]:
        out: set[str] = set()
        now = time.time()
        for site in sites:
            snap = self.scanner.snapshots.get(site)
            if snap is None:
                continue
            known = {c.path for c in self.committed.get(site, ())}
            busy = snap.busy or (snap.env.kind is EnvKind.SYSTEM and self._dpkg_busy())
            if self._stash_active(site, busy, now) or any(
                fresh_incomplete(c, now) for c in snap.copies if c.path not in known
            ):
                out.add(site)
        return out

    def _with_commands(self, events: list[Event]) -> list[Event]:
        out = []
        root = self.scanner.machine.root
        for event in events:
            command = None
            manager = event.manager or event.previous_manager
            if manager is Manager.CONDA:
                command = conda_command(event.env.prefix)
            elif manager is Manager.APT:
                owner = self._owner_of(event)
                command = apt_command(root, owner) if owner else None
            out.append(replace(event, command=command) if command else event)
        return out

    def _owner_of(self, event: Event) -> str | None:
        for copies in (self.committed.get(event.site, ()),):
            for c in copies:
                if c.path == event.path and c.owner:
                    return c.owner.split(":", 1)[1]
        hit = self.scanner.owners.claimant(event.site, os.path.basename(event.path))
        return hit.owner.split(":", 1)[1] if hit else None

    def _conflicts(
        self,
        inv: Inventory,
        unwatched: dict[str, str],
        names: set[NormalizedName] | None = None,
    ) -> tuple[list[Conflict], list[Conflict]]:
        """Re-evaluate the rules: all of them, or (a live pass over a few site dirs)
        only for the projects whose copies or records those dirs hold."""
        assert self.store is not None
        current = evaluate(inv, self.rules, names) + [
            unwatched_conflict(p, r, self.config) for p, r in sorted(unwatched.items())
        ]
        scope = None
        if names is not None:
            scoped = set(names)

            def scope(c: Conflict) -> bool:
                return c.kind is ConflictKind.UNWATCHED_TREE or affected(c, scoped)

        opened, resolved = self.store.sync_conflicts(current, scope=scope, previous=self.synced)
        if self.store.degraded is None:
            self.synced.update((c.key, c) for c in current)
            for c in resolved:
                self.synced.pop(c.key, None)
        return opened, resolved

    def _replan(self) -> None:
        from envwatchd.watchplan import plan

        self.plan = plan(self.scanner)
        self.pkgs_prefixes = frozenset(
            e.prefix for e in self.scanner.envs if e.kind is EnvKind.CONDA_PKGS
        )

    def watch_plan(self) -> dict[str, Role]:
        return self.plan

    def flush(self) -> bool:
        """Retry the store's backlog; True once everything is written."""
        return self.store.flush_backlog() if self.store is not None else True

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
