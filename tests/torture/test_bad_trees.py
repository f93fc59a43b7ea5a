"""Hostile trees placed under a live daemon's Box: bad names, 10,000-entry dirs, symlink
loops, a 50 MB METADATA, conda-meta JSON nested 10,000 deep, FIFOs and sockets where
files belong, files changing while read. No crash, `status` always answers within 2 s,
a warning names the bad path, and the daemon still sees an ordinary install afterwards."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import conda_env, dist_info, pyvenv, site_packages
from tests.daemon_harness import Box, DaemonProc, wait_for
from tests.torture.conftest import LONG


class Probe:
    """Calls `status` every 50 ms on fresh connections; records the slowest answer."""

    def __init__(self, d: DaemonProc) -> None:
        self.d, self.worst, self.calls, self.failures = d, 0.0, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self.d.client.call("status", timeout=5)
            except Exception as err:
                self.failures.append(repr(err))
            self.worst = max(self.worst, time.monotonic() - t0)
            self.calls += 1
            self._stop.wait(0.05)


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _sock(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    short = Path(tempfile.mkdtemp(prefix="ews-")) / "s"  # sun_path is 108 bytes: bind, then move
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(short))
    os.rename(short, path)
    short.parent.rmdir()
    return s


def _hostile(box: Box, site: Path, keep: list[socket.socket]) -> dict[str, Path]:
    """Write the bad things; returns the paths a warning must name."""
    must: dict[str, Path] = {}
    # names: a newline, a control char (invalid UTF-8: test_invalid_utf8_name_... below)
    dist_info(site, "nl", "1.0", dirname="bad\nname-1.0.dist-info")
    dist_info(site, "ctl", "1.0", dirname="ctl\x01\x7f-1.0.dist-info")
    # symlink loops
    os.symlink("self-1.0.dist-info", site / "self-1.0.dist-info")
    os.symlink("pong-1.0.dist-info", site / "ping-1.0.dist-info")
    os.symlink("ping-1.0.dist-info", site / "pong-1.0.dist-info")
    must["self-loop dist-info"] = site / "self-1.0.dist-info"
    chain = site / "chain"
    for i in range(60):
        os.symlink(f"chain{i + 1}", site / f"chain{i}")
    os.symlink("chain0", site / "chain60")
    os.symlink("chain0", site / "deep-1.0.dist-info")
    del chain
    loops = box.home / "proj"
    loops.mkdir()
    os.symlink(".", loops / "again")
    os.symlink(str(box.home), loops / "home")
    # a 50 MB METADATA that must be read (no version in the dir name)
    huge = site / "huge.dist-info"
    huge.mkdir()
    with open(huge / "METADATA", "wb") as fh:
        fh.write(b"Metadata-Version: 2.1\nName: huge\nVersion: 1.0\n\n")
        fh.write(b"x" * (50 << 20))
    (huge / "RECORD").write_bytes(b"a,,\n" * (12 << 20))
    # FIFOs and sockets where files belong
    fifo_meta = site / "fifometa.dist-info"
    _fifo(fifo_meta / "METADATA")
    must["FIFO METADATA"] = fifo_meta
    _fifo(site / "fifoinst-1.0.dist-info" / "INSTALLER")
    keep.append(_sock(site / "sockrec-1.0.dist-info" / "RECORD"))
    _fifo(site / "fifo.pth")
    must["FIFO .pth"] = site / "fifo.pth"
    _fifo(site / "fifoegg-1.0-py3.11.egg-info")
    keep.append(_sock(site / "sock.egg-link"))
    _fifo(box.home / ".virtualenvs" / "fifocfg" / "pyvenv.cfg")
    # conda: records nested 10,000 deep, a FIFO record, a FIFO history
    prefix = conda_env(box.home / ".conda" / "envs" / "hostile", [("good", "1.0", "0")])
    (prefix / "conda-meta" / "deep-1.0-0.json").write_text("[" * 10_000 + "]" * 10_000)
    deep_obj = '{"files": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "}"
    (prefix / "conda-meta" / "deepobj-1.0-0.json").write_text(deep_obj)
    must["deep conda-meta JSON"] = prefix / "conda-meta" / "deep-1.0-0.json"
    _fifo(prefix / "conda-meta" / "fifo-1.0-0.json")
    must["FIFO conda-meta record"] = prefix / "conda-meta" / "fifo-1.0-0.json"
    (prefix / "conda-meta" / "history").unlink()
    _fifo(prefix / "conda-meta" / "history")
    # 10,000 entries in one site dir (and a dist-info among them)
    wide = box.home / ".virtualenvs" / "wide"
    pyvenv(wide, "/usr/bin", "3.11.2")
    wsite = site_packages(wide)
    for i in range(10_000):
        (wsite / f"m{i:05d}.py").touch()
    dist_info(wsite, "needle", "1.0")
    return must


def _flapper(site: Path, stop: threading.Event) -> None:
    """Files changing while read: METADATA rewritten, a dist-info swapped dir <-> file."""
    rng = random.Random(1)
    target = site / "flap.dist-info"
    swap = site / "swap-1.0.dist-info"
    while not stop.is_set():
        with contextlib.suppress(OSError):
            target.mkdir(exist_ok=True)
            (target / "METADATA").write_bytes(
                b"Metadata-Version: 2.1\nName: flap\nVersion: %d.0\n" % rng.randint(1, 9)
                + b"y" * rng.randint(0, 200_000)
            )
            if swap.is_dir():
                swap.rmdir()
                swap.write_text("now a file")
            else:
                swap.unlink(missing_ok=True)
                swap.mkdir()
        time.sleep(0.002)


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    keep: list[socket.socket] = []
    yield keep
    for s in keep:
        s.close()


def test_hostile_trees_do_not_crash_or_stall(tmp_path: Path, sockets: list[socket.socket]) -> None:
    """Every hostile tree: no crash, status < 2 s throughout, warnings name the paths."""
    box = Box(tmp_path)
    prefix = box.home / ".virtualenvs" / "hostile"
    pyvenv(prefix, "/usr/bin", "3.11.2")
    site = site_packages(prefix)
    ok = box.home / ".virtualenvs" / "ok"
    pyvenv(ok, "/usr/bin", "3.11.2")
    d = DaemonProc(box).start()
    stop = threading.Event()
    flapper = threading.Thread(target=_flapper, args=(site, stop), daemon=True)
    try:
        with Probe(d) as probe:
            must = _hostile(box, site, sockets)
            flapper.start()
            time.sleep(6 if LONG else 3)
            stop.set()
            flapper.join(5)
            d.call("rescan")
            dist_info(site_packages(ok), "ordinary", "1.0")
            wait_for(lambda: [e for e in d.events() if e["name"] == "ordinary"], 20,
                     what="an ordinary install after the hostile trees")  # fmt: skip
        assert d.alive(), d.tail()
        assert not probe.failures, probe.failures[:5]
        assert probe.worst < 2.0, f"status took {probe.worst:.2f} s"
        print(f"[metric] status worst {probe.worst:.3f} s over {probe.calls} calls")
        named = {r.get("path") for r in d.logs() if r.get("level") in ("warning", "error")}
        missing = {what: str(p) for what, p in must.items() if str(p) not in named}
        assert not missing, f"no warning names: {missing}"
        assert "needle" in {c["name"] for c in d.packages()}
        assert not [r for r in d.logs() if r.get("level") == "error"], d.tail()
    finally:
        stop.set()
        if d.alive():
            assert d.stop() == 0, d.tail()


def test_invalid_utf8_name_does_not_stop_the_event_log(tmp_path: Path) -> None:
    """A non-UTF-8 dist-info name: a warning at most; later changes are still logged."""
    box = Box(tmp_path)
    prefix = box.home / ".virtualenvs" / "bytes"
    pyvenv(prefix, "/usr/bin", "3.11.2")
    site = site_packages(prefix)
    d = DaemonProc(box).start()
    try:
        bad = os.path.join(os.fsencode(site), b"\xff\xfeinv-1.0.dist-info")
        os.mkdir(bad)
        with open(os.path.join(bad, b"METADATA"), "wb") as fh:
            fh.write(b"Metadata-Version: 2.1\nName: inv\nVersion: 1.0\n")
        dist_info(site, "after", "1.0")
        wait_for(lambda: [e for e in d.events() if e["name"] == "after"], 10,
                 what="the next install to be logged")  # fmt: skip
    finally:
        code = d.stop() if d.alive() else 0
    assert code == 0, d.tail()
