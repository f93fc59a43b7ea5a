"""Fixtures for the torture tests: step budgets (CI vs ENVWATCHD_TORTURE_LONG=1) and seeds."""

from __future__ import annotations

import os
import random

import pytest

LONG = os.environ.get("ENVWATCHD_TORTURE_LONG") == "1"


def budget(ci: int, long: int) -> int:
    """A step count: small in CI (the whole dir stays under ~3 min on 2 cores), big when LONG."""
    return long if LONG else ci


@pytest.fixture
def seed() -> int:
    """TORTURE_SEED=<n> replays a failing run; otherwise a fresh seed, printed on failure."""
    value = int(os.environ.get("TORTURE_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"TORTURE_SEED={value}")
    return value
