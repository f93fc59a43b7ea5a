"""Bugs the random driver found with real uv, kept as deterministic regression tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import realtools
from tests.builders import dist_info
from tests.daemon_harness import BIN, Box, DaemonProc, wait_for


def test_uv_reinstall_same_version_is_a_replace(tmp_path: Path) -> None:
    """Each same-version reinstall by uv is one `replace` event (the inode is often reused)."""
    uv = realtools.find_uv() or shutil.which("uv", path=str(BIN))
    if uv is None:
        pytest.skip("no uv")
    box = Box(tmp_path)
    python = box.venv(box.home / ".virtualenvs" / "uvre")
    site = box.site(box.home / ".virtualenvs" / "uvre")
    wheel = box.wheel("again", "1.0")
    realtools.uv_pip_install(uv, python, wheel, env=box.tools)
    d = DaemonProc(box).start()
    try:
        reused = 0
        for n in range(1, 6):
            before = os.stat(site / "again-1.0.dist-info").st_ino
            realtools.uv_pip_install(uv, python, "--reinstall", wheel, env=box.tools)
            reused += os.stat(site / "again-1.0.dist-info").st_ino == before
            wait_for(lambda n=n: len(d.events()) >= n, 5, what=f"replace #{n}")
        if not reused:
            pytest.skip("this filesystem never reused the inode: the bug cannot show")
    finally:
        d.stop()


def test_installer_written_last_is_picked_up(tmp_path: Path) -> None:
    """uv's order (RECORD ... INSTALLER), with a pass in between: manager ends up `uv`."""
    box = Box(tmp_path)
    prefix = box.home / ".virtualenvs" / "order"
    box.venv(prefix)
    site = box.site(prefix)
    d = DaemonProc(box).start()
    try:
        di = dist_info(site, "late", "1.0", installer=None, requested=False)  # RECORD, no INSTALLER
        wait_for(lambda: [c for c in d.packages() if c["name"] == "late"], 10, what="late")
        tmp = di / ".tmpXYZ"
        tmp.write_text("uv")
        tmp.rename(di / "INSTALLER")  # exactly how uv puts it there
        wait_for(lambda: [c for c in d.packages() if c["manager"] == "uv"], 5,
                 what="the manager to become uv")  # fmt: skip
    finally:
        d.stop()
