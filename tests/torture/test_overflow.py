"""Overflow torture: a daemon whose inotify queue holds 32 events, driven through many
overflows (each a real IN_Q_OVERFLOW), with random changes in between; every overflow
is followed by a rescan after which the inventory equals the model and every net change
is logged once. Builds on test_daemon's single overflow: here it must re-arm every time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.daemon_harness import Box
from tests.torture.conftest import LONG, budget
from tests.torture.driver import QUEUE_KNOB, Torture


def test_repeated_overflows_lose_nothing(tmp_path: Path, seed: int) -> None:
    """max_queued_events=32 (restored once each daemon is up): every overflow recovers."""
    if not QUEUE_KNOB.exists() or not _writable(QUEUE_KNOB):
        pytest.skip(f"cannot change {QUEUE_KNOB}")
    box = Box(tmp_path, max_settle_ms=2000)
    weights = {"overflow": 6.0, "kill": 0.6, "restart": 0.4, "real-tool": 0.3}
    torture = Torture(box, seed, small_queue=32, weights=weights, burst_max=60)
    deadline = time.monotonic() + (900 if LONG else 30)
    stats = torture.run(budget(ci=60, long=400), deadline)
    print(f"[torture] {stats}")
    assert stats.mismatches == 0
    assert stats.overflows >= 3, stats
    assert QUEUE_KNOB.read_text().strip() != "32", "the sysctl was not restored"


def _writable(knob: Path) -> bool:
    try:
        knob.write_text(knob.read_text().strip())
    except OSError:
        return False
    return True
