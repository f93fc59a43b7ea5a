"""Model-based torture: random installs, upgrades, replaces, envs, bursts, kill -9 and
restarts against a live daemon; after every step the inventory equals the model and the
new events are exactly the net changes; at the end the log replays to the model."""

from __future__ import annotations

import time
from pathlib import Path

from tests.daemon_harness import Box
from tests.torture.conftest import LONG, budget
from tests.torture.driver import Torture


def test_random_steps_lose_nothing(tmp_path: Path, seed: int) -> None:
    """Every change becomes exactly one event, live or reconciled, across kills and restarts."""
    box = Box(tmp_path, max_settle_ms=2000)
    deadline = time.monotonic() + (1800 if LONG else 70)
    stats = Torture(box, seed).run(budget(ci=120, long=2000), deadline)
    print(f"[torture] {stats}")
    assert stats.mismatches == 0
    assert stats.steps >= (60 if not LONG else 200)
    assert stats.events_checked > 0
