"""Store: real SQLite files; crash, corruption and disk trouble done for real."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from envwatchd.codec import (
    claim_from_json,
    claim_to_json,
    conflict_from_json,
    conflict_to_json,
    copy_from_json,
    copy_to_json,
)
from envwatchd.diff import diff_copies, group_copies, representative
from envwatchd.model import (
    Claim,
    Conflict,
    ConflictKind,
    Copy,
    EnvKind,
    EnvRef,
    Event,
    EventKind,
    Format,
    Manager,
    NormalizedName,
    Origin,
    Severity,
)
from envwatchd.schema import MIGRATIONS, SCHEMA_VERSION
from envwatchd.store import Store, StoreError

ROOT = Path(__file__).resolve().parent.parent
ENV = EnvRef(EnvKind.CONDA, "/opt/conda", "base")
SITE = "/opt/conda/lib/python3.11/site-packages"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def make_copy(name: str = "numpy", version: str = "1.26.4", site: str = SITE, **kw: object) -> Copy:
    base = Copy(
        name=NormalizedName(name),
        display_name=name,
        version=version,
        format=Format.DIST_INFO,
        path=f"{site}/{name}.dist-info",
        site=site,
        env=ENV,
        manager=Manager.PIP,
        evidence=("INSTALLER: pip",),
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def install(store: Store, *copies: Copy, **kw: object) -> list[Event]:
    """Commit copies as new installs, the way the daemon does: diff, then commit."""
    events = [dataclasses.replace(e, **kw) for e in diff_copies([], copies)]  # type: ignore[arg-type]
    return store.commit(events, [], copies)


def make_conflict(key: str, name: str = "numpy", **kw: object) -> Conflict:
    base = Conflict(
        key=key,
        kind=ConflictKind.DUPLICATE,
        name=name,
        severity=Severity.WARNING,
        copies=(make_copy(name),),
        message=f"two copies of {name}",
        remedy=("pip uninstall it",),
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "envwatchd.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    s = Store.open(db)
    yield s
    s.close()


# -- open, schema, WAL ------------------------------------------------------------


def test_open_creates_private_dir_and_wal_database(db: Path) -> None:
    """The state dir is 0700, the journal is WAL and the schema is current."""
    Store.open(db).close()
    assert db.parent.stat().st_mode & 0o777 == 0o700
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_close_checkpoints_the_wal(db: Path) -> None:
    """After close the main file holds everything: the WAL is empty or gone."""
    s = Store.open(db)
    install(s, *(make_copy(f"p{i}") for i in range(50)))
    s.close()
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def build_old_schema(db: Path, version: int) -> None:
    """A database as envwatchd at schema `version` left it, with one event in it."""
    db.parent.mkdir(parents=True, exist_ok=True)
    raw = sqlite3.connect(db, isolation_level=None)
    for migration in MIGRATIONS[:version]:
        migration(raw)
    raw.execute(f"PRAGMA user_version = {version}")
    if version >= 1:
        raw.execute(
            "INSERT INTO events (time, kind, name, version, env_kind, env_prefix, env_name,"
            " site, path, origin) VALUES ('2020-01-01T00:00:00.000000Z', 'install', 'old',"
            " '1', 'conda', '/opt/conda', 'base', 's', 'p', 'live')"
        )
    raw.close()


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_migrates_every_older_schema(db: Path, version: int) -> None:
    """Each older schema upgrades in place and keeps its events."""
    build_old_schema(db, version)
    with capture_logs() as logs:
        s = Store.open(db)
    migrated = [e["version"] for e in logs if e["event"] == "store.migrated"]
    assert migrated == list(range(version + 1, SCHEMA_VERSION + 1))
    written = install(s, make_copy(), command="conda install numpy")
    assert [e.name for e in s.events()] == (["old"] if version else []) + ["numpy"]
    assert s.events()[-1].command == "conda install numpy" and written[0].id is not None
    s.close()
    indexes = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert {"events_name", "events_time", "inventory_name"} <= indexes


def test_newer_schema_is_refused_not_moved(db: Path) -> None:
    """A database from a newer envwatchd is not ours to throw away."""
    build_old_schema(db, SCHEMA_VERSION)
    sqlite3.connect(db).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer"):
        Store.open(db)
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


# -- corruption ----------------------------------------------------------------------


def aside_files(db: Path) -> list[Path]:
    """The moved-aside main files (their -wal/-shm siblings left out)."""
    return sorted(
        p for p in db.parent.glob(db.name + ".corrupt-*") if p.name[-4:] not in ("-wal", "-shm")
    )


def test_garbage_file_is_moved_aside_not_overwritten(db: Path) -> None:
    """A file that is not a database is renamed with its -wal/-shm, logged, and replaced."""
    db.parent.mkdir(parents=True)
    garbage = os.urandom(8192)
    db.write_bytes(garbage)
    db.with_name(db.name + "-wal").write_bytes(b"wal junk")
    with capture_logs() as logs:
        s = Store.open(db)
    install(s, make_copy())
    assert len(s.events()) == 1
    s.close()
    main = aside_files(db)
    assert len(main) == 1 and main[0].read_bytes() == garbage
    assert re.search(r"\.corrupt-\d{8}T\d{6}\.\d{6}Z$", main[0].name)
    assert Path(str(main[0]) + "-wal").read_bytes() == b"wal junk"
    [entry] = [e for e in logs if e["event"] == "store.corrupt_moved_aside"]
    assert (entry["path"], entry["moved_to"], entry["log_level"]) == (
        str(db),
        str(main[0]),
        "error",
    )


def filled_db(db: Path, n: int = 400) -> None:
    s = Store.open(db)
    install(s, *(make_copy(f"pkg{i}", evidence=("x" * 200,)) for i in range(n)))
    s.close()


@pytest.mark.parametrize("keep", [0.5, 0.1, 50 / 1e9])
def test_truncated_database_is_moved_aside(db: Path, keep: float) -> None:
    """A real database cut short (half, a tenth, 50 bytes) is detected at open."""
    filled_db(db)
    size = db.stat().st_size
    os.truncate(db, max(50, int(size * keep)))
    s = Store.open(db)
    assert s.events() == [] and s.load_inventory() == []
    s.close()
    assert len(aside_files(db)) == 1


def test_damaged_pages_fail_quick_check_and_are_moved_aside(db: Path) -> None:
    """Bytes scribbled over b-tree pages: caught by PRAGMA quick_check or by SQLite."""
    filled_db(db)
    data = bytearray(db.read_bytes())
    for page in range(3, len(data) // 4096, 7):
        data[page * 4096 + 8 : page * 4096 + 72] = b"\xff" * 64
    db.write_bytes(bytes(data))
    with capture_logs() as logs:
        Store.open(db).close()
    assert len(aside_files(db)) == 1
    assert any(e["event"] == "store.corrupt_moved_aside" for e in logs)


def test_unopenable_path_is_an_error_not_corruption(db: Path) -> None:
    """A directory where the file should be is not 'corrupt': nothing is moved."""
    db.mkdir(parents=True)
    with pytest.raises(sqlite3.OperationalError):
        Store.open(db)
    assert db.is_dir() and aside_files(db) == []


# -- codec round trips -------------------------------------------------------------

texts = st.text(max_size=12)
opt_texts = st.none() | texts
env_refs = st.builds(EnvRef, st.sampled_from(EnvKind), texts, texts)
copies_st = st.builds(
    Copy,
    name=texts.map(NormalizedName),
    display_name=texts,
    version=texts,
    format=st.sampled_from(Format),
    path=texts,
    site=texts,
    env=env_refs,
    manager=st.sampled_from(Manager),
    evidence=st.lists(texts, max_size=3).map(tuple),
    imported_by=st.lists(texts, max_size=3).map(tuple),
    installer=opt_texts,
    owner=opt_texts,
    owner_version=opt_texts,
    editable=st.booleans(),
    requested=st.booleans(),
    top_level=st.lists(texts, max_size=3).map(tuple),
    import_path=opt_texts,
    fingerprint=opt_texts,
)


@given(copies_st)
def test_copy_json_round_trips_every_field(c: Copy) -> None:
    """Every Copy field survives JSON, fingerprint (compare=False) included."""
    data = json.loads(json.dumps(copy_to_json(c)))
    assert set(data) == {f.name for f in dataclasses.fields(Copy)}
    back = copy_from_json(data)
    assert back == c and back.fingerprint == c.fingerprint


@given(
    st.builds(
        Conflict,
        key=texts,
        kind=st.sampled_from(ConflictKind),
        name=texts,
        severity=st.sampled_from(Severity),
        copies=st.lists(copies_st, max_size=2).map(tuple),
        message=texts,
        remedy=st.lists(texts, max_size=2).map(tuple),
    )
)
def test_conflict_json_round_trips(c: Conflict) -> None:
    """Conflict JSON carries all but the store-owned id/opened/resolved columns."""
    back = conflict_from_json(
        json.loads(json.dumps(conflict_to_json(c))), id=None, opened=None, resolved=None
    )
    assert back == c


@given(
    st.builds(
        Claim,
        manager=st.sampled_from(Manager),
        package=texts,
        name=texts.map(NormalizedName),
        version=texts,
        env=env_refs,
        site=texts,
        record_path=texts,
        claimed=st.lists(texts, max_size=2).map(tuple),
        missing=st.lists(texts, max_size=2).map(tuple),
        installed=st.booleans(),
    )
)
def test_claim_json_round_trips(c: Claim) -> None:
    """A Claim survives JSON unchanged."""
    assert claim_from_json(json.loads(json.dumps(claim_to_json(c)))) == c


# -- events and inventory ------------------------------------------------------------


def test_commit_returns_ids_and_stamps_time(store: Store) -> None:
    """Ids come back from the database; an empty time becomes now in stored format."""
    written = install(store, make_copy("a"), make_copy("b"))
    assert [e.id for e in written] == [1, 2]
    assert all(TIME_RE.match(e.time) for e in written)
    assert store.events() == written


def test_given_times_are_normalised_to_utc(store: Store) -> None:
    """A caller's +02:00 time is stored as the same instant in Z form."""
    [e] = install(store, make_copy(), time="2024-05-01T12:00:00+02:00")
    assert e.time == "2024-05-01T10:00:00.000000Z"


def test_events_round_trip_every_field(store: Store) -> None:
    """What goes into the log comes out equal, manager None and command included."""
    before = make_copy(version="1.0", manager=Manager.CONDA)
    after = make_copy(version="2.0", manager=Manager.PIP)
    [up] = diff_copies([before], [after], origin=Origin.RECONCILE)
    [gone] = diff_copies([after], [])
    written = store.commit([dataclasses.replace(up, command="pip install -U numpy"), gone], [], [])
    assert store.events() == written
    assert written[1].manager is None and written[0].origin is Origin.RECONCILE


def test_ids_strictly_increase_across_reopen_and_are_never_reused(db: Path) -> None:
    """AUTOINCREMENT: a deleted last row's id is not handed out again."""
    s = Store.open(db)
    first = install(s, make_copy("a"), make_copy("b"))
    s.close()
    with sqlite3.connect(db) as raw:
        raw.execute("DELETE FROM events WHERE id = 2")
    s = Store.open(db)
    [third] = install(s, make_copy("c"))
    s.close()
    assert [e.id for e in first] == [1, 2] and third.id == 3


def test_inventory_follows_commits_and_reopen(db: Path) -> None:
    """Upserts replace by (site, path), removals delete; the result survives reopen."""
    s = Store.open(db)
    a, b = make_copy("a", fingerprint="11"), make_copy("b")
    install(s, a, b)
    a2 = dataclasses.replace(a, version="2.0", installer="uv", top_level=("a",))
    s.commit(diff_copies([a, b], [a2]), [b.key], [a2])
    s.close()
    s = Store.open(db)
    [only] = s.load_inventory()
    assert only == a2 and only.fingerprint == "11" and only.installer == "uv"
    assert [e.kind for e in s.events()][-2:] == [EventKind.UPGRADE, EventKind.UNINSTALL]
    s.close()


def test_baseline_is_recorded_with_its_inventory(store: Store) -> None:
    """baseline=True marks the first inventory done, in the same transaction."""
    assert not store.has_baseline()
    store.commit([], [], [make_copy()], baseline=True)
    assert store.has_baseline() and store.events() == [] and len(store.load_inventory()) == 1


def seed_log(store: Store) -> None:
    for i, name in enumerate(["numpy", "scipy", "numpy", "pandas", "numpy"]):
        c = make_copy(name, version=f"{i}.0", site=f"/s{i}")
        install(store, c, time=f"2024-01-0{i + 1}T00:00:00Z")


@pytest.mark.parametrize(
    ("since", "package", "limit", "expected"),
    [
        (None, None, None, ["1", "2", "3", "4", "5"]),
        (None, None, 2, ["4", "5"]),
        (None, "numpy", None, ["1", "3", "5"]),
        (None, "numpy", 2, ["3", "5"]),
        ("2024-01-03T00:00:00Z", None, None, ["3", "4", "5"]),
        ("2024-01-02T12:00:00+00:00", "numpy", None, ["3", "5"]),
        ("2024-01-02T00:00:00", "scipy", 1, ["2"]),
        (None, None, 0, []),
    ],
)
def test_event_filters(
    store: Store, since: str | None, package: str | None, limit: int | None, expected: list[str]
) -> None:
    """since is inclusive, package is exact, limit keeps the LAST n; oldest first."""
    seed_log(store)
    name = NormalizedName(package) if package else None
    got = store.events(since=since, package=name, limit=limit)
    assert [str(e.id) for e in got] == expected


def test_last_event_and_counts(store: Store) -> None:
    """last_event is the newest; counts are by kind and manager (removed one for uninstalls)."""
    assert store.last_event() is None
    a = make_copy("a", manager=Manager.CONDA)
    install(store, a, make_copy("b"))
    store.commit(diff_copies([a], []), [a.key], [])
    last = store.last_event()
    assert last is not None and last.kind is EventKind.UNINSTALL and last.id == 3
    assert store.event_counts() == {
        ("install", "conda"): 1,
        ("install", "pip"): 1,
        ("uninstall", "conda"): 1,
    }


# -- conflicts and claims ------------------------------------------------------------


def test_conflict_identity_is_stable(store: Store) -> None:
    """Open, still open (same id, new data), resolved, reopened with the SAME id."""
    t = [f"2024-01-0{i}T00:00:00.000000Z" for i in range(1, 6)]
    opened, resolved = store.sync_conflicts([make_conflict("k1"), make_conflict("k2")], t[0])
    assert [(c.id, c.opened, c.resolved) for c in opened] == [(1, t[0], None), (2, t[0], None)]
    assert resolved == []
    changed = make_conflict("k1", message="now three copies")
    assert store.sync_conflicts([changed, make_conflict("k2")], t[1]) == ([], [])
    [k1, _] = store.conflicts()
    assert (k1.id, k1.message, k1.opened) == (1, "now three copies", t[0])
    opened, resolved = store.sync_conflicts([make_conflict("k2")], t[2])
    assert opened == [] and [(c.id, c.resolved) for c in resolved] == [(1, t[2])]
    assert [c.id for c in store.conflicts()] == [2]
    assert [c.id for c in store.conflicts(include_resolved=True)] == [1, 2]
    opened, _ = store.sync_conflicts([make_conflict("k1"), make_conflict("k2")], t[3])
    assert [(c.id, c.opened, c.resolved) for c in opened] == [(1, t[3], None)]
    assert [(c.id, c.resolved) for c in store.conflicts()] == [(1, None), (2, None)]


def test_conflict_scope_limits_what_is_resolved(store: Store) -> None:
    """Re-evaluating only numpy must not resolve the scipy conflict."""
    store.sync_conflicts([make_conflict("n", "numpy"), make_conflict("s", "scipy")])
    _, resolved = store.sync_conflicts([], scope=lambda c: c.name == "numpy")
    assert [c.key for c in resolved] == ["n"]
    assert [c.key for c in store.conflicts()] == ["s"]


def test_conflicts_survive_reopen(db: Path) -> None:
    """Ids live in the database: a restart keeps them."""
    s = Store.open(db)
    s.sync_conflicts([make_conflict("k1"), make_conflict("k2")])
    s.close()
    s = Store.open(db)
    opened, _ = s.sync_conflicts([make_conflict("k2"), make_conflict("k3")])
    assert [(c.key, c.id) for c in opened] == [("k3", 3)]
    assert [(c.key, c.id) for c in s.conflicts(include_resolved=True)] == [
        ("k1", 1),
        ("k2", 2),
        ("k3", 3),
    ]
    s.close()


def make_claim(package: str, manager: Manager = Manager.CONDA, version: str = "1.0") -> Claim:
    return Claim(
        manager=manager,
        package=package,
        name=NormalizedName(package),
        version=version,
        env=ENV,
        site=SITE,
        record_path=f"/opt/conda/conda-meta/{package}.json",
        claimed=(f"{SITE}/{package}",),
    )


def test_last_known_claims_outlive_the_record(db: Path) -> None:
    """Upsert by (manager, record_path); still there after the manager deleted it."""
    s = Store.open(db)
    s.remember_claims([make_claim("numpy"), make_claim("six", Manager.APT)])
    s.remember_claims([make_claim("numpy", version="2.0")])
    s.close()
    s = Store.open(db)
    assert [(c.package, c.version) for c in s.last_claims(Manager.CONDA)] == [("numpy", "2.0")]
    assert [c.manager for c in s.last_claims()] == [Manager.APT, Manager.CONDA]
    s.close()


# -- disk trouble: a real full filesystem, a real read-only one ------------------------


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)).returncode
    ):
        pytest.skip("needs root and a mountable tmpfs")
    yield mnt
    run("umount", "-l", str(mnt))


def fill(directory: Path) -> Path:
    """Write until ENOSPC, ending with single bytes so not one block is left."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == 28
    finally:
        os.close(fd)
    return filler


def big_batch(tag: str, n: int) -> tuple[list[Event], list[Copy]]:
    copies = [make_copy(f"{tag}{i}", evidence=("e" * 2000,)) for i in range(n)]
    return diff_copies([], copies), copies


def count_rows(db: Path) -> int:
    with sqlite3.connect(db) as raw:
        return int(raw.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def test_full_disk_backlogs_in_order_and_writes_once_space_returns(tiny_tmpfs: Path) -> None:
    """SQLITE_FULL: events kept in memory, nothing half-written, flushed once, in order."""
    db = tiny_tmpfs / "state" / "envwatchd.sqlite3"
    s = Store.open(db)
    first = install(s, make_copy("first"))
    filler = fill(tiny_tmpfs)
    events, copies = big_batch("big", 150)
    with capture_logs() as logs:
        pending = s.commit(events, [], copies)
        later = install(s, make_copy("later"))
    assert all(e.id is None for e in pending + later) and s.backlog_size == 151
    assert s.degraded is not None and "SQLITE_FULL" in s.degraded
    assert any(e["event"] == "store.write_failed" for e in logs)
    assert count_rows(db) == 1 and not s.flush_backlog()
    filler.unlink()
    assert s.flush_backlog() and s.degraded is None and s.backlog_size == 0
    logged = s.events()
    assert [e.name for e in logged] == ["first"] + [e.name for e in pending] + ["later"]
    assert [e.id for e in logged] == list(range(1, 153)) and logged[0] == first[0]
    assert len(s.load_inventory()) == 152
    s.close()


@pytest.fixture
def ext4_fs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A loop-mounted ext4 with errors=remount-ro and its error trigger in /sys."""
    img, mnt = tmp_path / "ext4.img", tmp_path / "ext4"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    if os.geteuid() != 0 or run("mkfs.ext4", "-q", str(img)).returncode:
        pytest.skip("needs root and mkfs.ext4")
    if run("mount", "-o", "loop,errors=remount-ro", str(img), str(mnt)).returncode:
        pytest.skip("cannot loop-mount")
    dev = run("findmnt", "-no", "SOURCE", str(mnt)).stdout.strip()
    trigger = Path("/sys/fs/ext4") / Path(dev).name / "trigger_fs_error"
    if not trigger.exists():
        run("umount", str(mnt))
        pytest.skip("no ext4 trigger_fs_error in /sys")
    yield mnt, trigger
    run("umount", "-l", str(mnt))


def test_read_only_filesystem_backlogs_and_loses_nothing_persisted(
    ext4_fs: tuple[Path, Path],
) -> None:
    """The kernel remounts the state fs read-only under us: commits degrade, never crash,
    and what is on disk afterwards is the last good transaction, whole."""
    mnt, trigger = ext4_fs
    db = mnt / "state" / "envwatchd.sqlite3"
    s = Store.open(db)
    good = install(s, make_copy("good"))
    os.sync()
    trigger.write_text("envwatchd test\n")
    with capture_logs() as logs:
        lost = install(s, make_copy("lost1"), make_copy("lost2"))
        also = install(s, make_copy("lost3"))
    assert [e.id for e in lost + also] == [None, None, None] and s.backlog_size == 3
    assert s.degraded is not None and s.degraded.startswith("SQLITE_IOERR")
    assert [e["event"] for e in logs].count("store.write_failed") == 2
    assert not s.flush_backlog()
    s.close()
    img = mnt.parent / "ext4.img"
    run("umount", str(mnt))
    run("e2fsck", "-fy", str(img))
    assert run("mount", "-o", "loop", str(img), str(mnt)).returncode == 0
    s = Store.open(db)
    assert s.events() == good and [c.name for c in s.load_inventory()] == ["good"]
    s.close()


# -- kill -9 at a random moment ------------------------------------------------------------

CHILD = r"""
import dataclasses, random, sys
from pathlib import Path
from envwatchd.diff import diff_copies
from envwatchd.model import Copy, EnvKind, EnvRef, Format, Manager, NormalizedName
from envwatchd.store import Store

store = Store.open(Path(sys.argv[1]))
rng = random.Random(int(sys.argv[2]))
last = store.last_event()
batch = int(last.command.split()[1]) if last and last.command else 0
inv = {c.key: c for c in store.load_inventory()}
env = EnvRef(EnvKind.VENV, "/v", "v")
while True:
    new = dict(inv)
    for _ in range(rng.randint(1, 20)):
        site, name = f"/site{rng.randrange(3)}", f"p{rng.randrange(40)}"
        path = f"{site}/{name}-{rng.randrange(2)}.dist-info"
        if (site, path) in new and rng.random() < 0.3:
            del new[(site, path)]
            continue
        version = f"{rng.randint(1, 9)}.{rng.randint(0, 9)}"
        new[(site, path)] = Copy(NormalizedName(name), name, version, Format.DIST_INFO, path,
                                 site, env, rng.choice([Manager.PIP, Manager.CONDA]), ("x" * 300,))
    events = diff_copies(inv.values(), new.values())
    if not events:
        continue
    batch += 1
    events = [dataclasses.replace(e, command=f"batch {batch}") for e in events]
    store.commit(events, [k for k in inv if k not in new],
                 [c for k, c in new.items() if inv.get(k) != c])
    assert store.degraded is None
    inv = new
    print(batch, flush=True)
"""


def replay(events: list[Event]) -> dict[tuple[str, str], str]:
    state: dict[tuple[str, str], str] = {}
    for e in events:
        if e.kind is EventKind.UNINSTALL:
            del state[(e.site, e.name)]
        else:
            assert e.version is not None
            state[(e.site, e.name)] = e.version
    return state


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_never_splits_events_from_inventory(db: Path, seed: int) -> None:
    """After SIGKILL at a random moment (eight times over) the inventory is exactly the
    replay of the log, every acknowledged batch is there and none is half there."""
    rng = random.Random(seed)
    acknowledged = 0
    for round_ in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), f"{seed}{round_}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        while not (line := child.stdout.readline().strip()).isdigit():  # skip log lines
            assert child.poll() is None, "child died before its first commit"
        acknowledged = int(line)
        time.sleep(rng.uniform(0.02, 0.4))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        assert child.returncode == -signal.SIGKILL
        acknowledged = max([acknowledged, *(int(w) for w in out.split() if w.isdigit())])
        s = Store.open(db)
        events = s.events()
        inventory = s.load_inventory()
        s.close()
        batches = [int(e.command.split()[1]) for e in events if e.command]
        assert len(batches) == len(events) and batches == sorted(batches)
        assert sorted(set(batches)) == list(range(1, max(batches) + 1))
        assert max(batches) in (acknowledged, acknowledged + 1)
        ids = [e.id or 0 for e in events]
        assert 0 not in ids and ids == sorted(set(ids))
        expected = {k: representative(g).version for k, g in group_copies(inventory).items()}
        assert replay(events) == expected
