"""A seeded random driver: a model of the machine against a live daemon.

The model is the truth: which distributions (name, version, manager, format,
generation) sit in which site dir. Random steps change the disk (through
tests.builders, so the trees are real formats), the model follows, and after
every step with the daemon up the driver waits (bounded) until

* `packages` equals the model, and
* the events logged since the last check are EXACTLY the net changes since the
  last check: one event per changed (site, name), the right kind, versions and
  managers, origin "live" for a change made while the daemon was up and
  "reconcile" for one made while it was down (either, for a change racing a
  `kill -9`).

At the end the whole log is replayed from the first start's baseline and must
reproduce the model: nothing lost, nothing doubled, ids strictly increasing.

Writes imitate pip: a new dist-info is staged outside the site and renamed in;
an upgrade first renames the old one to a `~` stash in the site dir (pip's
AdjacentTempDirectory, which is what the daemon's "site busy" deferral keys
on), so the daemon never diffs a half-done upgrade. Some installs are written
in place file by file instead (the "fresh dist-info without RECORD" path).

Every failure message starts with the seed: `TORTURE_SEED=<seed>` reruns it.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

from tests import realtools
from tests.builders import INSTALLERS, dist_info, egg_info_dir, module_name, pyvenv
from tests.daemon_harness import BIN, Box, DaemonProc, wait_for

__all__ = [
    "QUEUE_KNOB",
    "Dist",
    "Mismatch",
    "Stats",
    "Torture",
    "small_inotify_queue",
]

QUEUE_KNOB = Path("/proc/sys/fs/inotify/max_queued_events")
VERSIONS = ("0.9", "1.0", "1.1", "1.10", "2.0", "2.0.post1", "3.0rc1", "3.0", "10.0")
#: INSTALLER key (tests.builders.INSTALLERS) -> the manager the daemon must infer in a venv.
MANAGERS = {"pip": "pip", "uv": "uv", "poetry": "poetry", "conda": "conda", "rpm": "rpm",
            "debian": "unknown"}  # fmt: skip
Key = tuple[str, str]  # (site, normalized name)
View = dict[Key, tuple[str, str]]  # -> (version, manager)


class Mismatch(AssertionError):
    """The daemon and the model disagree; the message names the seed and the step."""


@dataclass(frozen=True, slots=True)
class Dist:
    version: str
    installer: str  # a key of MANAGERS, or "egg" (setup.py install: distutils)
    gen: int  # bumps whenever the metadata dir is rewritten (a new inode)

    @property
    def manager(self) -> str:
        return "distutils" if self.installer == "egg" else MANAGERS[self.installer]


@dataclass
class Stats:
    steps: int = 0
    kills: int = 0
    restarts: int = 0
    overflows: int = 0
    events_checked: int = 0
    changes_while_down: int = 0
    real_tool_steps: int = 0
    mismatches: int = 0
    seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Stats) -> None:
        for name in ("steps", "kills", "restarts", "overflows", "events_checked",
                     "changes_while_down", "real_tool_steps", "mismatches", "seconds"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.kinds.update(other.kinds)


@contextmanager
def small_inotify_queue(size: int) -> Iterator[bool]:
    """max_queued_events=size while the block runs (yields False if not allowed).

    System-wide: keep the block to one daemon start-up (the queue size is fixed at
    inotify_init, so the daemon keeps it) and always restore.
    """
    try:
        old = QUEUE_KNOB.read_text().strip()
        QUEUE_KNOB.write_text(str(size))
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        QUEUE_KNOB.write_text(old)


class Torture:
    """One random run on one Box; `run()` returns Stats or raises Mismatch."""

    def __init__(
        self,
        box: Box,
        seed: int,
        *,
        small_queue: int | None = None,
        weights: dict[str, float] | None = None,
        burst_max: int = 30,
        real_tools: bool = True,
        sync_timeout: float = 30.0,
    ) -> None:
        self.box = box
        self.seed = seed
        self.rng = random.Random(seed)
        self.small_queue = small_queue
        self.burst_max = burst_max
        self.sync_timeout = sync_timeout
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self.model: dict[str, dict[str, Dist]] = {}
        self.synced: dict[Key, Dist] = {}
        self.phase: dict[Key, set[str]] = {}  # key -> {"up", "down", "race"} since last sync
        self.sites_of_env: dict[str, str] = {}  # venv prefix -> site
        self.stage = box.tmp / "stage"
        self.stage.mkdir(exist_ok=True)
        self.homes = box.home / ".virtualenvs"
        self.gen = itertools.count(1)
        self.names = itertools.count()
        self.stats = Stats()
        self.history: list[str] = []
        self.daemon: DaemonProc | None = None
        self._hold = False  # a change racing a kill: do not wait for the daemon
        self.baseline: View = {}
        self.last_id = 0
        self.queue_size = int(QUEUE_KNOB.read_text()) if QUEUE_KNOB.exists() else 16384
        self.uv = (realtools.find_uv() or shutil.which("uv", path=str(BIN))) if real_tools else None
        self.real: tuple[Path, str] | None = None  # (python, site) of a real venv for uv

    # -- the run -------------------------------------------------------------------

    def run(self, steps: int, deadline: float | None = None) -> Stats:
        started = time.monotonic()
        try:
            self._initial()
            self._start()
            self._check_baseline()
            for _ in range(steps):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.step()
            if self.daemon is None or not self.daemon.alive():
                self._start()
            self._sync("final")
            self._final_replay()
            self._restart_is_quiet()
        except AssertionError as exc:
            self.stats.mismatches += 1
            raise Mismatch(self._context(str(exc))) from exc
        finally:
            self.stats.seconds += time.monotonic() - started
            if self.daemon is not None and self.daemon.alive():
                self.daemon.stop()
        return self.stats

    def step(self) -> None:
        actions = list(self.weights)
        name = self.rng.choices(actions, [self.weights[a] for a in actions])[0]
        self.stats.steps += 1
        getattr(self, f"_do_{name.replace('-', '_')}")()

    def _context(self, message: str) -> str:
        tail = "\n  ".join(self.history[-25:])
        lines = self.daemon.tail(15).splitlines() if self.daemon else []
        log = "\n".join(line[:240] for line in lines)
        return (
            f"TORTURE_SEED={self.seed} step {self.stats.steps}: {message}\n"
            f"last steps:\n  {tail}\ndaemon log tail:\n{log}"
        )

    def _note(self, text: str) -> None:
        self.history.append(f"#{self.stats.steps} {text}")

    # -- set-up ----------------------------------------------------------------------

    def _initial(self) -> None:
        for i in range(3):
            self._new_env(f"v{i}", packages=self.rng.randint(0, 6), up=False)
        self.box.user_site.mkdir(parents=True, exist_ok=True)
        self.model[str(self.box.user_site)] = {}
        self._install(str(self.box.user_site), self._fresh_name(), up=False)
        if self.uv:
            prefix = self.homes / "real"
            python = self.box.venv(prefix)
            site = str(self.box.site(prefix))
            self.real = (python, site)
            self.model[site] = {}
            self.sites_of_env[str(prefix)] = site
        self.baseline = self._view()
        self.synced = self._flat()
        self.phase.clear()
        self.stats.changes_while_down = 0

    def _check_baseline(self) -> None:
        d = self._d()
        assert d.events() == [], "the first start must be a baseline with no events"
        self._wait_inventory("baseline")
        self.baseline = self._daemon_view()

    # -- model helpers -------------------------------------------------------------

    def _flat(self) -> dict[Key, Dist]:
        return {(s, n): d for s, dists in self.model.items() for n, d in dists.items()}

    def _view(self) -> View:
        return {k: (d.version, d.manager) for k, d in self._flat().items()}

    def _fresh_name(self) -> str:
        return f"pkg{next(self.names):04d}"

    def _up(self) -> bool:
        return self.daemon is not None and self.daemon.alive()

    def _touch(self, site: str, name: str, up: bool) -> None:
        self.phase.setdefault((site, name), set()).add("up" if up else "down")
        if not up:
            self.stats.changes_while_down += 1

    def _pick_site(self, *, exclude_real: bool = True) -> str:
        sites = [s for s in self.model if not (exclude_real and self.real and s == self.real[1])]
        return self.rng.choice(sorted(sites))

    def _settled(self, site: str, name: str) -> bool:
        """Keys that raced a kill stay out of later changes until the next check."""
        return "race" not in self.phase.get((site, name), ())

    def _pick_dist(self) -> tuple[str, str] | None:
        keys = [k for k in sorted(self._flat()) if self._settled(*k)]
        keys = [k for k in keys if not (self.real and k[0] == self.real[1])]
        return self.rng.choice(keys) if keys else None

    # -- disk writes (pip-like) ------------------------------------------------------

    def _write_new(self, site: str, name: str, dist: Dist, atomic: bool) -> None:
        """Write a distribution's metadata + module; atomic = staged and renamed in."""
        target = Path(site)
        if atomic:
            target = self.stage / f"s{next(self.gen)}"
        installer = None if dist.installer == "debian" else INSTALLERS.get(dist.installer)
        if dist.installer == "egg":
            egg_info_dir(target, name, dist.version)
        else:
            dist_info(target, name, dist.version, installer=installer)
        if atomic:
            mod = target / module_name(name)
            if mod.exists():
                os.rename(mod, Path(site) / mod.name)
            for entry in target.iterdir():
                os.rename(entry, Path(site) / entry.name)
            target.rmdir()

    def _meta_paths(self, site: str, name: str) -> list[Path]:
        out = []
        for entry in Path(site).iterdir():
            stem = entry.name.split("-", 1)[0].lower().replace("_", "-")
            if stem == name and entry.name.endswith((".dist-info", ".egg-info")):
                out.append(entry)
        mod = Path(site) / module_name(name)
        return [*out, mod] if mod.exists() else out

    def _stash_old(self, site: str, name: str) -> list[Path]:
        """pip's uninstall half: rename to `~xxx` in the site dir (the site is busy)."""
        stashed = []
        for path in self._meta_paths(site, name):
            to = Path(site) / f"~{next(self.gen):x}{path.name[:8]}"
            os.rename(path, to)
            stashed.append(to)
        return stashed

    def _install(self, site: str, name: str, up: bool, installer: str | None = None) -> None:
        dist = Dist(
            self.rng.choice(VERSIONS),
            installer or self.rng.choice([*MANAGERS, "egg"]),
            next(self.gen),
        )
        self._write_new(site, name, dist, atomic=self.rng.random() < 0.6)
        self.model[site][name] = dist
        self._touch(site, name, up)

    def _rewrite(self, site: str, name: str, dist: Dist, up: bool) -> None:
        stashed = self._stash_old(site, name)
        self._write_new(site, name, dist, atomic=True)
        for path in stashed:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        self.model[site][name] = dist
        self._touch(site, name, up)

    def _remove(self, site: str, name: str, up: bool) -> None:
        for path in (
            self._stash_old(site, name)
            if self.rng.random() < 0.5
            else (self._meta_paths(site, name))
        ):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        del self.model[site][name]
        self._touch(site, name, up)

    def _new_env(self, name: str, packages: int, up: bool) -> str:
        prefix = self.homes / name
        pyvenv(prefix, "/usr/bin", "3.11.2", virtualenv=self.rng.random() < 0.3)
        site = str(self.box.site(prefix))
        self.model[site] = {}
        self.sites_of_env[str(prefix)] = site
        for _ in range(packages):  # right after the venv appears: the watch-add race
            self._install(site, self._fresh_name(), up)
        return site

    # -- actions ---------------------------------------------------------------------

    def _do_install(self) -> None:
        site, name = self._pick_site(), self._fresh_name()
        self._install(site, name, self._up())
        self._note(f"install {name} in {site}")
        self._after_change()

    def _do_version_change(self) -> None:
        picked = self._pick_dist()
        if picked is None:
            return self._do_install()
        site, name = picked
        old = self.model[site][name]
        version = self.rng.choice([v for v in VERSIONS if Version(v) != Version(old.version)])
        installer = old.installer if self.rng.random() < 0.8 else self.rng.choice(list(MANAGERS))
        self._rewrite(site, name, Dist(version, installer, next(self.gen)), self._up())
        self._note(f"{old.version}->{version} {name} in {site}")
        self._after_change()

    def _do_replace(self) -> None:
        """Same version, rewritten: another manager, or a reinstall (a new inode)."""
        picked = self._pick_dist()
        if picked is None:
            return self._do_install()
        site, name = picked
        old = self.model[site][name]
        others = [m for m in MANAGERS if m != old.installer]
        installer = self.rng.choice(others) if self.rng.random() < 0.7 else old.installer
        self._rewrite(site, name, Dist(old.version, installer, next(self.gen)), self._up())
        self._note(f"replace {name} {old.installer}->{installer} in {site}")
        self._after_change()

    def _do_uninstall(self) -> None:
        picked = self._pick_dist()
        if picked is None:
            return self._do_install()
        self._remove(*picked, self._up())
        self._note(f"uninstall {picked[1]} from {picked[0]}")
        self._after_change()

    def _do_burst(self) -> None:
        site = self._pick_site()
        n = self.rng.randint(5, self.burst_max)
        for _ in range(n):
            self._install(site, self._fresh_name(), self._up())
        self._note(f"burst of {n} into {site}")
        self._after_change()

    def _do_env_create(self) -> None:
        name = f"e{next(self.gen)}"
        site = self._new_env(name, self.rng.randint(0, 5), self._up())
        self._note(f"create env {name} ({len(self.model[site])} packages)")
        self._after_change()

    def _do_env_delete(self) -> None:
        candidates = [
            p
            for p, s in sorted(self.sites_of_env.items())
            if not (self.real and s == self.real[1])
            and all(self._settled(s, n) for n in self.model.get(s, {}))
        ]
        if len(candidates) <= 1:
            return self._do_env_create()
        prefix = self.rng.choice(candidates)
        site = self.sites_of_env.pop(prefix)
        up = self._up()
        for name in self.model.pop(site):
            self._touch(site, name, up)
        shutil.rmtree(prefix)
        self._note(f"delete env {prefix}")
        self._after_change()

    def _do_real_tool(self) -> None:
        """A real `uv pip install/uninstall` into a real venv (0.1 s; skipped without uv)."""
        if not (self.real and self.uv and self._up()):
            return self._do_install()
        python, site = self.real
        names = sorted(self.model[site])
        up = True
        if names and self.rng.random() < 0.35:
            name = self.rng.choice(names)
            cmd = [self.uv, "pip", "uninstall", "--python", str(python), name]
            realtools.run(cmd, env=self.box.tools)
            del self.model[site][name]
            self._note(f"uv uninstall {name}")
        else:
            name = self.rng.choice([*names, f"real{self.rng.randint(0, 4)}"])
            old = self.model[site].get(name)
            # never a same-version --reinstall: uv rmdir+mkdir reuses the inode on ext4 and
            # the daemon misses it (test_known_bugs.py::test_uv_reinstall_same_version)
            version = self.rng.choice(
                [v for v in ("1.0", "2.0", "3.0") if not old or v != old.version]
            )
            wheel = self.box.wheel(name, version)
            realtools.uv_pip_install(self.uv, python, wheel, env=self.box.tools)
            self.model[site][name] = Dist(version, "uv", next(self.gen))
            self._note(f"uv install {name}=={version}")
        self._touch(site, name, up)
        self.stats.real_tool_steps += 1
        self._after_change()

    def _do_kill(self) -> None:
        """kill -9, sometimes right after a change (it may or may not be committed)."""
        d = self._d()
        raced = self.rng.random() < 0.5
        if raced:
            self._hold = True
            try:
                self.rng.choice([self._do_install, self._do_version_change, self._do_uninstall])()
            finally:
                self._hold = False
            for phases in self.phase.values():
                if "up" in phases:
                    phases.add("race")
            time.sleep(self.rng.uniform(0.0, 0.2))
        d.kill9()
        self.stats.kills += 1
        self._note(f"kill -9 (raced={raced})")
        self._while_down()

    def _do_restart(self) -> None:
        d = self._d()
        assert d.stop() == 0, d.tail()
        self.stats.restarts += 1
        self._note("restart (SIGTERM)")
        self._while_down()

    def _while_down(self) -> None:
        for _ in range(self.rng.randint(0, 5)):
            choice = self.rng.choice(
                ["install", "version_change", "replace", "uninstall", "env_create", "env_delete"]
            )
            getattr(self, f"_do_{choice}")()
        self._start()
        self._sync("restart")

    def _do_overflow(self) -> None:
        """Stop the daemon's reader (a loaded machine), churn past its queue, resume."""
        d = self._d()
        before = len(d.logs("watch.overflow"))
        site = self._pick_site()
        os.kill(d.pid, signal.SIGSTOP)
        try:
            churn = Path(site) / "churn-1.0.dist-info"
            for _ in range(self.queue_size // 2 + 50):  # 2 events each: net nothing
                churn.mkdir()
                churn.rmdir()
            for _ in range(self.rng.randint(1, 10)):
                self._install(site, self._fresh_name(), True)
            picked = self._pick_dist()
            if picked is not None:
                self._remove(*picked, True)
        finally:
            os.kill(d.pid, signal.SIGCONT)
        self._note(f"overflow churn in {site}")
        # the overflow marker sits behind every queued event: wait for the reader to get there
        wait_for(lambda: len(d.logs("watch.overflow")) > before, 30, 0.05, "watch.overflow")
        self._sync("overflow")
        self.stats.overflows += 1

    # -- the daemon ------------------------------------------------------------------

    def _d(self) -> DaemonProc:
        assert self.daemon is not None
        return self.daemon

    def _start(self) -> None:
        self.daemon = d = DaemonProc(self.box, log_name="torture")
        passes = len(d.logs("settle.completed"))
        if self.small_queue:
            with small_inotify_queue(self.small_queue) as lowered:
                d.start()
            if lowered:
                self.queue_size = self.small_queue
        else:
            d.start()
        # Every watch added at start-up marks its dir: let that first pass run before a real
        # tool writes (uv deletes files one by one in place; a pass in the middle of that is
        # test_known_bugs.py::test_uv_uninstall_seen_half_done).
        wait_for(lambda: len(d.logs("settle.completed")) > passes, 10, 0.02, "start-up pass")

    def _after_change(self) -> None:
        if self._up() and not self._hold:
            self._sync("live")

    def _daemon_view(self) -> View:
        return {(c["site"], c["name"]): (c["version"], c["manager"]) for c in self._d().packages()}

    def _wait_inventory(self, what: str) -> None:
        deadline = time.monotonic() + self.sync_timeout
        want = self._view()
        while True:
            got = self._daemon_view()
            if got == want:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: inventory != model\n{_view_diff(want, got)}")
            assert self._d().alive(), "the daemon died"
            time.sleep(0.05)

    def _expected(self) -> list[dict[str, Any]]:
        now = self._flat()
        out = []
        for key in sorted(self.synced.keys() | now.keys()):
            kind = _kind(self.synced.get(key), now.get(key))
            if kind is None:
                continue
            was, new = self.synced.get(key), now.get(key)
            phases = self.phase.get(key, {"up"})
            if "race" in phases or phases >= {"up", "down"}:
                origins = {"live", "reconcile"}
            else:
                origins = {"reconcile"} if phases == {"down"} else {"live"}
            out.append(
                {
                    "kind": kind,
                    "site": key[0],
                    "name": key[1],
                    "version": new.version if new else None,
                    "previous_version": was.version if was else None,
                    "manager": new.manager if new else None,
                    "previous_manager": was.manager if was else None,
                    "origins": origins,
                }
            )
        return out

    def _sync(self, what: str) -> None:
        """Wait until inventory == model and the new events are exactly the net changes."""
        self._wait_inventory(what)
        expected = self._expected()
        deadline = time.monotonic() + self.sync_timeout
        while True:
            got = [e for e in self._d().events() if e["id"] > self.last_id]
            problem = _match(expected, got)
            if problem is None:
                break
            extra = problem.startswith("unexpected")
            if extra or time.monotonic() >= deadline:
                raise AssertionError(f"{what}: {problem}")
            time.sleep(0.05)
        ids = [e["id"] for e in got]
        assert ids == sorted(set(ids)) and (not ids or ids[0] > self.last_id), ids
        self.last_id = ids[-1] if ids else self.last_id
        self.stats.events_checked += len(got)
        self.stats.kinds.update(e["kind"] for e in got)
        self.synced = self._flat()
        self.phase.clear()

    def _final_replay(self) -> None:
        events = self._d().events()
        ids = [e["id"] for e in events]
        assert ids == sorted(set(ids)), "event ids are not strictly increasing"
        assert len(events) == self.stats.events_checked, (
            f"{len(events)} events logged, {self.stats.events_checked} expected"
        )
        state = replay(self.baseline, events)
        assert state == self._view(), f"replay != model\n{_view_diff(self._view(), state)}"

    def _restart_is_quiet(self) -> None:
        d = self._d()
        assert d.stop() == 0, d.tail()
        self._start()
        self._sync("quiet restart")
        assert self._d().last_id() == self.last_id


DEFAULT_WEIGHTS: dict[str, float] = {
    "install": 6,
    "version-change": 6,
    "replace": 3,
    "uninstall": 4,
    "burst": 1,
    "env-create": 1.2,
    "env-delete": 0.8,
    "real-tool": 1,
    "kill": 1,
    "restart": 0.5,
    "overflow": 0.3,
}


def _kind(was: Dist | None, now: Dist | None) -> str | None:
    if was is None:
        return None if now is None else "install"
    if now is None:
        return "uninstall"
    a, b = Version(was.version), Version(now.version)
    if a < b:
        return "upgrade"
    if b < a:
        return "downgrade"
    return "replace" if (was.installer, was.gen) != (now.installer, now.gen) else None


_FIELDS = ("kind", "site", "name", "version", "previous_version", "manager", "previous_manager")


def _match(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> str | None:
    """None when `got` is exactly `expected` (as a set, one event per key); else why not."""
    want = {(e["site"], e["name"]): e for e in expected}
    seen: set[Key] = set()
    for e in got:
        key = (e["site"], e["name"])
        w = want.get(key)
        if w is None or key in seen:
            return f"unexpected event (none or a second for this key): {_show(e)}"
        seen.add(key)
        diffs = {f: (w[f], e[f]) for f in _FIELDS if w[f] != e[f]}
        if e["origin"] not in w["origins"]:
            diffs["origin"] = (w["origins"], e["origin"])
        if diffs:
            return f"unexpected event (wrong {diffs}): {_show(e)}"
    missing = [want[k] for k in sorted(want.keys() - seen)]
    if missing:
        return "missing events:\n  " + "\n  ".join(_show(m) for m in missing)
    return None


def replay(base: View, events: list[dict[str, Any]]) -> View:
    """Apply the log to the baseline strictly: a lost or doubled event breaks the chain."""
    state = dict(base)
    for e in events:
        key = (e["site"], e["name"])
        have = state.get(key)
        if e["kind"] == "install":
            assert have is None, f"install of an installed package: {_show(e)}"
        else:
            assert have == (e["previous_version"], e["previous_manager"]), (
                f"event does not follow {have}: {_show(e)}"
            )
        if e["kind"] == "uninstall":
            del state[key]
        else:
            state[key] = (e["version"], e["manager"])
    return state


def _show(e: dict[str, Any]) -> str:
    origin = e.get("origin") or sorted(e.get("origins", ()))
    return (
        f"{e.get('id', '-')} {e['kind']} {e['name']} {e['previous_version']}->{e['version']}"
        f" {e['previous_manager']}->{e['manager']} {origin} {e['site']}"
    )


def _view_diff(want: View, got: View) -> str:
    lines = []
    for key in sorted(want.keys() | got.keys()):
        if want.get(key) != got.get(key):
            lines.append(f"  {key}: model={want.get(key)} daemon={got.get(key)}")
    return "\n".join(lines[:40]) or "  (equal)"


def stats_json(stats: Stats) -> str:
    data = {k: v for k, v in vars(stats).items() if k != "kinds"}
    return json.dumps({**data, "kinds": dict(stats.kinds)}, sort_keys=True)


__all__ += ["DEFAULT_WEIGHTS", "replay", "stats_json"]
