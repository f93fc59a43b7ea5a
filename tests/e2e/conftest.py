"""Fixtures of the end-to-end suite: one fake machine and one real daemon per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import DaemonProc
from tests.e2e.harness import E2EBox, Story


@pytest.fixture
def start_story(tmp_path: Path) -> Iterator[Callable[..., Story]]:
    """`start_story(prepare=None, **box_settings)`: a Box, `prepare(box)` before the
    daemon's first inventory (the baseline), then a running daemon. Stopped cleanly
    (SIGTERM, exit 0) at teardown."""
    procs: list[DaemonProc] = []

    def start(prepare: Callable[[E2EBox], object] | None = None, **settings: object) -> Story:
        box = E2EBox(tmp_path, **settings)  # type: ignore[arg-type]
        if prepare is not None:
            prepare(box)
        proc = DaemonProc(box)
        procs.append(proc)
        proc.start()
        starved = [e["path"] for e in proc.logs("watch.failed") if "limit" in e.get("reason", "")]
        # fs.inotify.max_user_watches is host-wide: a concurrent run of
        # tests/test_daemon.py lowers it for a while; no live event could arrive
        assert not starved, f"inotify watch limit reached on the host, unwatched: {starved}"
        return Story(box, proc)

    yield start
    for proc in procs:
        if proc.alive():
            assert proc.stop() == 0, proc.tail()
