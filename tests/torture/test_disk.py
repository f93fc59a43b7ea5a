"""Disk trouble: the state dir on a tiny tmpfs that fills up while the daemon runs, and a
corrupt or truncated event log at start-up.

Full disk: the daemon says so (`status.degraded`, `store.write_failed`), keeps serving the
in-memory inventory, and writes the backlog once space returns: every event then has an
id, none lost, none doubled, and a restart reconciles nothing new. Corruption: the bad
file is renamed aside (same bytes, `store.corrupt_moved_aside` names both paths), never
overwritten, and the daemon starts a fresh log."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import dist_info, pyvenv, site_packages
from tests.daemon_harness import Box, DaemonProc, wait_for
from tests.torture.driver import replay

FILLER = "filler.bin"


@pytest.fixture
def tiny_state(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted at the Box's XDG_STATE_HOME (unmounted afterwards)."""
    state = tmp_path / "state"
    state.mkdir()
    if os.getuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(state)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def _fill(state: Path) -> None:
    """Fill the tmpfs to the last byte (ENOSPC ends the write)."""
    with contextlib.suppress(OSError), open(state / FILLER, "wb") as fh:
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
    with contextlib.suppress(OSError), open(state / (FILLER + ".tail"), "wb") as fh:
        while True:
            fh.write(b"\0" * 512)
            fh.flush()


def _free(state: Path) -> None:
    for name in (FILLER, FILLER + ".tail"):
        (state / name).unlink(missing_ok=True)


def _machine(box: Box) -> Path:
    prefix = box.home / ".virtualenvs" / "disk"
    pyvenv(prefix, "/usr/bin", "3.11.2")
    site = site_packages(prefix)
    for i in range(3):
        dist_info(site, f"base{i}", "1.0")
    return site


def _view(d: DaemonProc) -> dict[tuple[str, str], tuple[str, str]]:
    return {(c["site"], c["name"]): (c["version"], c["manager"]) for c in d.packages()}


def _fill_and_change(box: Box, d: DaemonProc, site: Path) -> None:
    _fill(box.state)
    for i in range(5):
        dist_info(site, f"full{i}", "1.0")
    wait_for(lambda: d.status()["degraded"], 20, what="status.degraded")
    wait_for(lambda: len([k for k in _view(d) if k[1].startswith("full")]) == 5, 10,
             what="the in-memory inventory to show the new packages")  # fmt: skip
    assert d.logs("store.write_failed"), d.tail()
    assert [e for e in d.events() if e["name"].startswith("full")] == []


def test_full_disk_degrades_then_flushes_the_backlog(tmp_path: Path, tiny_state: Path) -> None:
    """A full state fs: degraded + still serving; space back + next change: backlog written once."""
    box = Box(tmp_path)
    site = _machine(box)
    d = DaemonProc(box).start()
    try:
        base = _view(d)
        _fill_and_change(box, d, site)
        assert d.status()["pid"] == d.pid
        _free(box.state)
        dist_info(site, "after", "1.0")  # the next commit retries the backlog first
        wait_for(lambda: not d.status()["degraded"], 20, what="degraded to clear")
        events = wait_for(lambda: (lambda e: e if len(e) == 6 else None)(d.events()), 20,
                          what="6 events")  # fmt: skip
        ids = [e["id"] for e in events]
        assert ids == sorted(set(ids)) and all(isinstance(i, int) for i in ids)
        assert sorted(e["name"] for e in events) == ["after", *(f"full{i}" for i in range(5))]
        # the log commits inside the pass; the served index is swapped a moment later
        wait_for(lambda: replay(base, events) == _view(d), 10, what="the index to match")
        assert d.logs("store.recovered"), d.tail()
        assert d.stop() == 0
        d = DaemonProc(box).start()
        assert [e["id"] for e in d.events()] == ids, "the restart reconciled something again"
    finally:
        _free(box.state)
        if d.alive():
            d.stop()


def test_backlog_is_written_once_space_returns_without_another_change(
    tmp_path: Path, tiny_state: Path
) -> None:
    """Space returns and nothing else changes: the backlog is still written (bounded wait)."""
    box = Box(tmp_path)
    site = _machine(box)
    d = DaemonProc(box).start()
    try:
        _fill_and_change(box, d, site)
        _free(box.state)
        wait_for(lambda: len(d.events()) == 5, 15, what="the backlog written without a new change")
        assert not d.status()["degraded"]
    finally:
        _free(box.state)
        d.stop()


def test_killed_while_degraded_reconciles_once(tmp_path: Path, tiny_state: Path) -> None:
    """kill -9 with an unwritten backlog: the next start finds those changes, once, reconcile."""
    box = Box(tmp_path)
    site = _machine(box)
    d = DaemonProc(box).start()
    try:
        base = _view(d)
        _fill_and_change(box, d, site)
        d.kill9()
        _free(box.state)
        d = DaemonProc(box).start()
        events = d.events()
        assert sorted(e["name"] for e in events) == [f"full{i}" for i in range(5)]
        assert {e["origin"] for e in events} == {"reconcile"}
        assert replay(base, events) == _view(d)
    finally:
        _free(box.state)
        if d.alive():
            d.stop()


def _garbage(db: Path) -> bytes:
    return b"this is not an SQLite database\n" * 200


def _truncated(db: Path) -> bytes:
    data = db.read_bytes()
    return data[: len(data) // 2]


def _bad_header(db: Path) -> bytes:
    data = bytearray(db.read_bytes())
    data[16:18] = b"\x00\x03"  # page size 3: not a power of two
    data[100:4096] = os.urandom(3996)
    return bytes(data)


@pytest.mark.parametrize("damage", [_garbage, _truncated, _bad_header], ids=lambda f: f.__name__)
def test_corrupt_log_is_moved_aside_not_overwritten(tmp_path: Path, damage: object) -> None:
    """A damaged envwatchd.db at start-up: renamed aside byte for byte, logged, fresh start."""
    box = Box(tmp_path)
    site = _machine(box)
    d = DaemonProc(box).start()
    for i in range(30):  # enough rows for a multi-page file
        dist_info(site, f"pad{i:02d}", "1.0")
    wait_for(lambda: len(d.events()) == 30, 20, what="30 events")
    assert d.stop() == 0
    db = box.state / "envwatchd" / "envwatchd.db"
    assert callable(damage)
    bad = damage(db)
    db.write_bytes(bad)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    d = DaemonProc(box).start()
    try:
        moved = d.logs("store.corrupt_moved_aside")
        assert moved, f"not moved aside; the daemon opened a damaged log:\n{d.tail()}"
        aside = Path(moved[0]["moved_to"])
        assert aside.read_bytes() == bad, "the damaged file was modified"
        assert moved[0]["path"] == str(db) and moved[0]["error"]
        assert d.events() == [], "a fresh log starts with a baseline"
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        d.stop()
