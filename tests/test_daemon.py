"""The daemon end to end: a real `envwatchd run`, real inotify, real pip into real venvs.

Each test gives the daemon a whole fake machine (tests.daemon_harness.Box) and
drives it with the real tools; events are read back over the real socket. The
rule under test everywhere: every change on disk becomes exactly one event,
live or (for changes made while the daemon was down) at the next start.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests import realtools
from tests.builders import dist_info, pyvenv
from tests.daemon_harness import (
    BIN,
    Box,
    DaemonProc,
    as_user,
    by_kind,
    inotify_watches_of_uid,
    system_user,
    wait_for,
    wait_quiet,
    world_tmp_dir,
)

EVENT_KEYS = {"id", "time", "kind", "name", "version", "previous_version", "manager",
              "previous_manager", "env", "site", "path", "origin"}  # fmt: skip
COPY_KEYS = {"name", "display_name", "version", "format", "path", "site", "env", "manager",
             "evidence", "imported_by"}  # fmt: skip
METRICS: dict[str, list[float]] = {}


def metric(name: str, value: float) -> None:
    """Numbers worth reporting (event latency, watch counts); printed with `-s`."""
    METRICS.setdefault(name, []).append(value)
    print(f"[metric] {name} = {value:.3f}")


Start = Callable[..., DaemonProc]


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


@pytest.fixture
def start(box: Box) -> Iterator[Start]:
    """Start daemons on `box`; every one still running at teardown must exit 0 on SIGTERM."""
    started: list[DaemonProc] = []

    def _start(b: Box | None = None, **kw: Any) -> DaemonProc:
        d = DaemonProc(b or box, **kw).start()
        started.append(d)
        return d

    yield _start
    codes = [(d.stop(), d) for d in started if d.alive()]
    for code, d in codes:
        assert code == 0, d.tail()


def disk_state(*sites: Path) -> dict[tuple[str, str], str]:
    """(site, normalized name) -> version, straight from the dist-info dir names."""
    out: dict[tuple[str, str], str] = {}
    for site in sites:
        if not site.is_dir():
            continue
        for entry in site.iterdir():
            if entry.name.endswith(".dist-info") and not entry.name.startswith("~"):
                name, _, version = entry.name[: -len(".dist-info")].rpartition("-")
                out[(str(site), name.replace("_", "-").lower())] = version
    return out


def inventory_state(d: DaemonProc) -> dict[tuple[str, str], str]:
    return {(c["site"], c["name"]): c["version"] for c in d.packages()}


def replay(
    base: dict[tuple[str, str], str], events: list[dict[str, Any]]
) -> dict[tuple[str, str], str]:
    """Apply events to a state strictly: a lost or duplicated event breaks the chain."""
    state = dict(base)
    for e in events:
        key = (e["site"], e["name"])
        have = state.get(key)
        if e["kind"] == "install":
            assert have is None, f"install of an installed package: {e}"
        else:
            assert have == e["previous_version"], f"event does not follow {have!r}: {e}"
        if e["kind"] == "uninstall":
            del state[key]
        else:
            state[key] = e["version"]
    return state


def wait_latency(d: DaemonProc, after: int, since: float, label: str) -> None:
    """Time from the tool's exit until the first event after `after` is queryable."""
    wait_for(lambda: [e for e in d.events() if e["id"] > after], 10, 0.01, label)
    metric(f"latency_s.{label}", time.monotonic() - since)


# --------------------------------------------------------------------------- 1


def test_first_start_is_a_baseline(box: Box, start: Start) -> None:
    """The very first start records what is there and emits no events for it."""
    py = box.venv(box.home / ".virtualenvs" / "base")
    box.install(py, box.wheel("alpha", "1.0"), box.wheel("beta", "2.0"))
    d = start()
    site = str(box.site(box.home / ".virtualenvs" / "base"))
    assert d.events() == []
    assert d.status()["last_event"] is None
    pkgs = {(c["name"], c["version"], c["manager"]) for c in d.packages() if c["site"] == site}
    assert pkgs == {("alpha", "1.0", "pip"), ("beta", "2.0", "pip")}
    assert d.stop() == 0
    assert d.logs("daemon.stopped"), d.tail()


# --------------------------------------------------------------------------- 2


def test_every_event_kind_with_real_pip(box: Box, start: Start) -> None:
    """install, upgrade, downgrade, replace, uninstall: one event per pip command."""
    prefix = box.home / ".virtualenvs" / "kinds"
    py = box.venv(prefix)
    d = start()
    w1, w2 = box.wheel("alpha", "1.0"), box.wheel("alpha", "2.0")
    steps: list[tuple[Callable[[], float], tuple[str, str | None, str | None]]] = [
        (lambda: box.install(py, w1), ("install", "1.0", None)),
        (lambda: box.install(py, w2), ("upgrade", "2.0", "1.0")),
        (lambda: box.install(py, "--find-links", w1.parent, "alpha==1.0"),
         ("downgrade", "1.0", "2.0")),
        (lambda: box.install(py, "--force-reinstall", w1), ("replace", "1.0", "1.0")),
        (lambda: box.uninstall(py, "alpha"), ("uninstall", None, "1.0")),
    ]  # fmt: skip
    seen: list[dict[str, Any]] = []
    for act, (kind, version, previous) in steps:
        after = seen[-1]["id"] if seen else 0
        exited = act()
        wait_latency(d, after, exited, kind)
        (event,) = d.wait_events(1, after=after)
        assert (event["kind"], event["name"]) == (kind, "alpha")
        assert (event["version"], event["previous_version"]) == (version, previous)
        assert (event["manager"] if kind != "uninstall" else event["previous_manager"]) == "pip"
        if kind == "uninstall":
            assert event["manager"] is None
        elif kind != "install":
            assert event["previous_manager"] == "pip"
        assert event["env"] == {"kind": "venv", "prefix": str(prefix), "name": "kinds"}
        assert event["origin"] == "live"
        assert event["site"] == str(box.site(prefix))
        assert event.keys() >= EVENT_KEYS
        if kind != "uninstall":  # pip's last write (RECORD) -> the event's commit time
            written = (Path(event["path"]) / "RECORD").stat().st_mtime
            committed = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
            metric(f"record_to_event_s.{kind}", committed.timestamp() - written)
        seen.append(event)
    ids = [e["id"] for e in seen]
    assert ids == sorted(set(ids))
    assert d.events() == seen


# --------------------------------------------------------------------------- 3


def test_user_site_created_live(box: Box, start: Start) -> None:
    """`pip install --user` into a user site that did not exist at start is seen live."""
    assert not box.user_base.exists()
    d = start()
    site = realtools.pip_user_install(
        realtools.base_python(), box.user_base, box.wheel("usrpkg", "1.0"), env=box.tools
    )
    assert site == box.user_site
    (event,) = d.wait_events(1)
    assert by_kind([event]) == [("install", "usrpkg", "1.0")]
    assert event["env"]["kind"] == "user"
    assert event["manager"] == "pip"
    assert event["site"] == str(site)
    user = [e for e in d.envs() if e["kind"] == "user"]
    assert [e["site_dirs"] for e in user] == [[str(site)]]
    assert d.status()["trees_watched"] >= 1
    assert str(site) in {c["site"] for c in d.packages()}


def test_stale_pip_stash_delays_but_never_blocks(tmp_path: Path, start: Start) -> None:
    """A `~` stash left by a killed pip defers a site at most max_settle, not forever."""
    box = Box(tmp_path / "stash", max_settle_ms=1000)
    prefix = box.home / ".virtualenvs" / "stash"
    py = box.venv(prefix)
    (box.site(prefix) / "~ld-1.0.dist-info").mkdir(parents=True)
    d = start(box)
    exited = box.install(py, box.wheel("after", "1.0"))
    (event,) = d.wait_events(1, timeout=10)
    assert (event["kind"], event["name"]) == ("install", "after")
    metric("latency_s.stale-stash", time.monotonic() - exited)
    passes = len(d.logs("settle.completed"))
    wait_quiet(d, 1.0)
    assert len(d.logs("settle.completed")) - passes <= 1, "the daemon keeps re-deferring"
    assert d.call("rescan")["packages"] == 1
    # once known to be stale, the stash no longer delays the next change at all
    assert d.logs("settle.stale_stash")
    exited = box.install(py, box.wheel("later", "1.0"))
    (later,) = d.wait_events(1, after=event["id"], timeout=10, quiet=0.0)
    assert later["name"] == "later" and time.monotonic() - exited < 0.9


# --------------------------------------------------------------------------- 4


def test_one_pip_command_installing_30_wheels(box: Box, start: Start) -> None:
    """A burst of 30 distributions in one command is exactly 30 install events."""
    py = box.venv(box.home / ".virtualenvs" / "burst")
    wheels = [box.wheel(f"burst{i:02d}", "1.0") for i in range(30)]
    d = start()
    box.install(py, *wheels)
    events = d.wait_events(30, timeout=30)
    assert sorted(by_kind(events)) == [("install", f"burst{i:02d}", "1.0") for i in range(30)]


@pytest.mark.slow
def test_a_package_of_2000_files_is_one_event(box: Box, start: Start) -> None:
    """Thousands of file events inside one distribution coalesce into one install."""
    py = box.venv(box.home / ".virtualenvs" / "big")
    files = {f"bigpkg/m{i:04d}.py": b"X = 1\n" for i in range(2000)}
    wheel = box.wheel("bigpkg", "1.0", files=files)
    d = start()
    exited = box.install(py, wheel)
    wait_latency(d, 0, exited, "install-2000-files")
    assert by_kind(d.wait_events(1)) == [("install", "bigpkg", "1.0")]
    exited = box.uninstall(py, "bigpkg")
    assert by_kind(d.wait_events(1, after=1)) == [("uninstall", "bigpkg", None)]


# --------------------------------------------------------------------------- 5


@pytest.mark.parametrize("home_exists", [True, False], ids=["home-exists", "home-created"])
def test_env_appears_and_disappears(box: Box, start: Start, home_exists: bool) -> None:
    """A venv created under a watched home is picked up live; removing it uninstalls."""
    homes = box.home / ".virtualenvs"
    if home_exists:
        homes.mkdir()
    d = start()
    prefix = homes / "new"
    py = box.venv(prefix)
    wait_for(lambda: [e for e in d.envs() if e["prefix"] == str(prefix)], 10, what="the new venv")
    box.install(py, box.wheel("fresh", "1.0"), box.wheel("other", "3.0"))
    events = d.wait_events(2)
    assert sorted(by_kind(events)) == [("install", "fresh", "1.0"), ("install", "other", "3.0")]
    assert {e["env"]["prefix"] for e in events} == {str(prefix)}
    shutil.rmtree(prefix)
    gone = d.wait_events(2, after=events[-1]["id"])
    assert sorted(by_kind(gone)) == [("uninstall", "fresh", None), ("uninstall", "other", None)]
    assert not [e for e in d.envs() if e["prefix"] == str(prefix)]
    assert not [c for c in d.packages() if c["env"]["prefix"] == str(prefix)]


def test_venv_created_with_a_package_in_one_go(box: Box, start: Start) -> None:
    """A venv whose site dir fills right after it appears loses nothing (watch-add race)."""
    homes = box.home / ".virtualenvs"
    homes.mkdir()
    d = start()
    for i in range(4):
        prefix = homes / f"quick{i}"
        py = box.venv(prefix)
        box.install(py, box.wheel("quickpkg", "1.0"))
    events = d.wait_events(4, timeout=20)
    assert sorted(e["env"]["name"] for e in events) == [f"quick{i}" for i in range(4)]


@pytest.mark.parametrize("gap_s", [0.0, 0.3])
def test_env_whose_marker_comes_late(box: Box, start: Start, gap_s: float) -> None:
    """A prefix that becomes an env only after a pause (conda, uv, virtualenv) is found live."""
    homes = box.home / ".virtualenvs"
    homes.mkdir()
    d = start()
    for i in range(3):
        prefix = homes / f"late{i}"
        prefix.mkdir()
        time.sleep(gap_s)
        pyvenv(prefix, "/usr/bin", "3.11.2")
        dist_info(box.site(prefix), "latepkg", "1.0")
    events = d.wait_events(3, timeout=20)
    assert sorted(e["env"]["name"] for e in events) == ["late0", "late1", "late2"]
    assert {(e["kind"], e["name"]) for e in events} == {("install", "latepkg")}


# --------------------------------------------------------------------------- 6


def test_restart_reconciles_changes_made_while_down(box: Box, start: Start) -> None:
    """Changes while the daemon was down are recorded once, origin reconcile; twice is none."""
    prefix = box.home / ".virtualenvs" / "rec"
    py = box.venv(prefix)
    box.install(py, box.wheel("alpha", "1.0"), box.wheel("beta", "1.0"))
    d = start()
    assert d.events() == []
    d.kill9()
    box.install(py, box.wheel("alpha", "2.0"), box.wheel("gamma", "1.0"))
    box.uninstall(py, "beta")
    d2 = start()
    events = d2.events()
    assert sorted(by_kind(events)) == [
        ("install", "gamma", "1.0"),
        ("uninstall", "beta", None),
        ("upgrade", "alpha", "2.0"),
    ]
    assert {e["origin"] for e in events} == {"reconcile"}
    assert {e["env"]["kind"] for e in events} == {"venv"}
    assert d2.stop() == 0
    d3 = start()
    wait_quiet(d3, 0.5)
    assert d3.events() == events


@pytest.mark.slow
def test_kill9_right_after_live_changes_loses_nothing(box: Box, start: Start) -> None:
    """SIGKILL at random moments after a change: the replayed log always equals the disk."""
    prefix = box.home / ".virtualenvs" / "crash"
    py = box.venv(prefix)
    site = box.site(prefix)
    box.install(py, box.wheel("keep", "1.0"))
    base = disk_state(site)
    rng = random.Random(20261126)
    actions: list[Callable[[], float]] = [
        lambda: box.install(py, box.wheel("c1", "1.0")),
        lambda: box.install(py, box.wheel("keep", "2.0")),
        lambda: box.install(py, box.wheel("c2", "1.0"), box.wheel("c3", "1.0")),
        lambda: box.uninstall(py, "c1"),
        lambda: box.install(py, "--find-links", box.wheel("keep", "1.0").parent, "keep==1.0"),
        lambda: box.uninstall(py, "c2", "c3"),
    ]
    for act in actions:
        d = start()
        act()
        time.sleep(rng.uniform(0.0, 0.25))
        d.kill9()
    d = start()
    wait_quiet(d, 0.5)
    events = d.events()
    assert (
        replay(base, events)
        == disk_state(site)
        == {k: v for k, v in inventory_state(d).items() if k[0] == str(site)}
    )
    assert [e["id"] for e in events] == sorted({e["id"] for e in events})
    assert len(events) == 8  # +c1, keep 1->2, +c2, +c3, -c1, keep 2->1, -c2, -c3


# --------------------------------------------------------------------------- 7


@pytest.fixture
def small_inotify_queue() -> Iterator[Callable[[], None]]:
    """max_queued_events=16 for inotify instances created until `restore()` is called."""
    knob = Path("/proc/sys/fs/inotify/max_queued_events")
    old = knob.read_text().strip()
    try:
        knob.write_text("16")
    except OSError as exc:
        pytest.skip(f"cannot lower {knob}: {exc}")

    def restore() -> None:
        knob.write_text(old)

    try:
        yield restore
    finally:
        restore()


def test_queue_overflow_rescans_and_loses_nothing(
    tmp_path: Path, start: Start, small_inotify_queue: Callable[[], None]
) -> None:
    """A real IN_Q_OVERFLOW: logged, full rescan, inventory equals disk, net changes once."""
    box = Box(tmp_path / "ovf")
    site = box.site(box.home / ".virtualenvs" / "ovf")
    box.venv(site.parents[2])
    for i in range(5):
        dist_info(site, f"old{i}", "1.0")
    d = start(box)
    small_inotify_queue()  # the daemon's instance keeps its queue of 16
    base = disk_state(site)
    # On another core the daemon's reader keeps up with a Python loop, so pause it (a
    # loaded machine) while the kernel queue fills: the overflow itself is real.
    os.kill(d.pid, signal.SIGSTOP)
    try:
        for _ in range(200):  # transient churn: net nothing
            tmp = site / "churn-1.0.dist-info"
            tmp.mkdir()
            tmp.rmdir()
        for i in range(20):
            dist_info(site, f"new{i:02d}", "1.0")
        for i in range(3):
            shutil.rmtree(site / f"old{i}-1.0.dist-info")
            shutil.rmtree(site / f"old{i}")
    finally:
        os.kill(d.pid, signal.SIGCONT)
    wait_for(lambda: d.logs("watch.overflow"), 10, what="watch.overflow in the log")
    events = d.wait_events(23, timeout=20)
    assert sorted(by_kind(events)) == sorted(
        [("install", f"new{i:02d}", "1.0") for i in range(20)]
        + [("uninstall", f"old{i}", None) for i in range(3)]
    )
    assert replay(base, events) == disk_state(site)
    assert {k: v for k, v in inventory_state(d).items() if k[0] == str(site)} == disk_state(site)
    assert d.status()["watches"] > 0


# --------------------------------------------------------------------------- 8


@pytest.fixture
def watch_limit() -> Iterator[Callable[[int, int], None]]:
    """Set max_user_watches to a uid's current usage + n (restored afterwards).

    The daemon runs as a uid of its own: root's usage moves under our feet (other
    tests' watchers being collected), a fresh uid's is exactly what we count.
    """
    knob = Path("/proc/sys/fs/inotify/max_user_watches")
    old = knob.read_text().strip()
    try:
        knob.write_text(old)
    except OSError as exc:
        pytest.skip(f"cannot change {knob}: {exc}")

    def limit(uid: int, n: int) -> None:
        knob.write_text(str(inotify_watches_of_uid(uid) + n))

    try:
        yield limit
    finally:
        knob.write_text(old)


@pytest.mark.slow
def test_watch_limit_degrades_to_periodic_rescan(
    world_tmp: Path,
    perm_user: pwd.struct_passwd,
    start: Start,
    watch_limit: Callable[[int, int], None],
) -> None:
    """Past max_user_watches: listed as unwatched, warning conflict, caught by the rescan."""
    box = Box(world_tmp, rescan_unwatched_s=5)
    pythons = {}
    for i in range(6):
        prefix = box.home / ".virtualenvs" / f"lim{i}"
        pythons[str(box.site(prefix))] = box.venv(prefix)
    chown(world_tmp, perm_user)
    watch_limit(perm_user.pw_uid, 3)
    d = start(box, preexec=as_user(perm_user))
    status = d.status()
    assert status["unwatched"], status
    assert status["watches"] <= 3
    unwatched_sites = [s for s in status["unwatched"] if s in pythons]
    assert unwatched_sites, status["unwatched"]
    conflicts = wait_for(
        lambda: [c for c in d.conflicts() if c["kind"] == "unwatched-tree"], 10,
        what="an unwatched-tree conflict",
    )  # fmt: skip
    assert {c["severity"] for c in conflicts} == {"warning"}
    assert set(status["unwatched"]) == {c["name"] for c in conflicts}
    assert any("max_user_watches" in r for c in conflicts for r in c["remedy"])
    assert d.logs("watch.failed")
    target = unwatched_sites[0]
    exited = box.install(pythons[target], box.wheel("late", "1.0"))
    (event,) = d.wait_events(1, timeout=20)
    metric("latency_s.unwatched-rescan", time.monotonic() - exited)
    assert (event["kind"], event["name"], event["site"]) == ("install", "late", target)
    assert d.status()["pid"] == d.pid


# --------------------------------------------------------------------------- 9

PERM_USER = "envwatch-perm"


@pytest.fixture
def perm_user() -> pwd.struct_passwd:
    pw: pwd.struct_passwd = system_user(PERM_USER)
    return pw


@pytest.fixture
def world_tmp() -> Iterator[Path]:
    with world_tmp_dir("envwatchd-perm-") as path:
        yield path


def chown(path: Path, pw: pwd.struct_passwd) -> None:
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(path)], check=True)


def test_permission_denied_tree_is_reported_and_the_rest_served(
    world_tmp: Path, perm_user: pwd.struct_passwd, start: Start
) -> None:
    """A site dir the daemon's uid cannot read: a warning naming it; other trees still live."""
    box = Box(world_tmp)
    closed = box.site(box.home / ".virtualenvs" / "closed")
    box.install(box.venv(closed.parents[2]), box.wheel("hidden", "1.0"))
    py = box.venv(box.home / ".virtualenvs" / "open")
    locked = box.home / ".virtualenvs" / "locked"
    box.venv(locked)
    chown(world_tmp, perm_user)
    closed.chmod(0)
    locked.chmod(0)
    d = start(box, preexec=as_user(perm_user))
    warnings = [r for r in d.logs() if r.get("level") == "warning"]
    for path in (closed, locked):
        assert [r for r in warnings if r.get("path") == str(path)], d.tail()
    box.install(py, box.wheel("visible", "1.0"))
    (event,) = d.wait_events(1)
    assert (event["kind"], event["name"]) == ("install", "visible")
    assert d.status()["pid"] == d.pid
    assert {c["name"] for c in d.packages()} == {"visible"}
    closed.chmod(0o755)
    locked.chmod(0o755)


# --------------------------------------------------------------------------- 10


def test_status_filters_and_the_real_cli(box: Box, start: Start) -> None:
    """status numbers; events --package/--since; `envwatch ... --json` against the daemon."""
    pys = [box.venv(box.home / ".virtualenvs" / f"s{i}") for i in range(3)]
    d = start()
    status = d.status()
    sites = sum(len(e["site_dirs"]) for e in d.envs())
    assert status["trees_watched"] == sites == 3
    assert status["watches"] <= 2 * sites + 8
    assert status["threads"] <= 6
    metric("watches.3-venvs", status["watches"])
    metric("threads", status["threads"])
    box.install(pys[0], box.wheel("alpha", "1.0"))
    first = d.wait_events(1)
    mid = first[-1]["time"]
    box.install(pys[1], box.wheel("beta", "1.0"), box.wheel("alpha", "1.0"))
    more = d.wait_events(2, after=first[-1]["id"])
    assert [e["name"] for e in d.events(package="Alpha")] == ["alpha", "alpha"]
    assert [e["name"] for e in d.events(package="beta")] == ["beta"]
    assert d.events(since=mid) == first + more  # inclusive
    later = d.events(since=more[0]["time"])
    assert {e["id"] for e in later} == {e["id"] for e in more}
    assert d.events(since="1h") == first + more
    assert d.events(since="2099-01-01T00:00:00Z") == []
    assert len(d.events(limit=1)) == 1
    env = {**box.daemon_env, "ENVWATCHD_SOCKET": str(box.sock)}

    def cli(*args: str) -> Any:
        proc = subprocess.run(
            [str(BIN / "envwatch"), *args, "--json"], env=env, capture_output=True, text=True,
            timeout=30, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    events = cli("events", "--package", "alpha")
    assert [e["name"] for e in events] == ["alpha", "alpha"]
    for e in events:
        assert EVENT_KEYS <= e.keys() <= EVENT_KEYS | {"command"}
        assert set(e["env"]) == {"kind", "prefix", "name"}
    assert len(cli("events", "--since", "1h")) == 3
    where = cli("where", "ALPHA")
    assert where["name"] == "alpha"
    copies = where["copies"]
    assert len(copies) == 2
    for c in copies:
        assert c.keys() >= COPY_KEYS
        assert c["manager"] == "pip" and c["format"] == "dist-info"
    assert {c["site"] for c in copies} == {str(box.site(p.parents[1])) for p in pys[:2]}
    st = cli("status")
    assert st["packages"] == 3 and st["last_event"]["id"] == more[-1]["id"]
