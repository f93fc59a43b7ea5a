"""The long torture run (`bench/torture`): model rounds against live daemons, then the
rest of tests/torture in long mode. Prints steps run, kills and overflows survived,
events checked and mismatches (which must be 0).

    bench/torture [--minutes 10] [--steps 400] [--seed N] [--no-pytest]

Each round is a fresh fake machine (tests.daemon_harness.Box) and a fresh seed; one
round in three starts its daemons with fs.inotify.max_queued_events=32 (restored as
soon as each daemon is up) and weights overflow steps up. A failing round prints its
TORTURE_SEED and counts as one mismatch; the run goes on with the next seed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.daemon_harness import Box  # noqa: E402  (after the sys.path set-up)
from tests.torture.driver import Mismatch, Stats, Torture  # noqa: E402


def _round(seed: int, steps: int, deadline: float, overflow: bool) -> Stats:
    tmp = Path(tempfile.mkdtemp(prefix="envwatchd-torture-"))
    try:
        box = Box(tmp, max_settle_ms=2000)
        weights = {"overflow": 2.0, "kill": 1.5} if overflow else None
        torture = Torture(
            box, seed, small_queue=32 if overflow else None, weights=weights, burst_max=120
        )
        try:
            return torture.run(steps, deadline)
        except Mismatch as exc:
            print(f"MISMATCH {exc}"[:4000], flush=True)
            return torture.stats
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=400, help="steps per round")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-pytest", action="store_true", help="skip the long pytest part")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    total = Stats()
    started = time.monotonic()
    model_budget = args.minutes * 60 * (1.0 if args.no_pytest else 0.6)
    deadline = started + model_budget
    rounds = 0
    while time.monotonic() < deadline - 5:
        seed = rng.randrange(1 << 32)
        overflow = rounds % 3 == 2
        stats = _round(seed, args.steps, deadline, overflow)
        rounds += 1
        print(
            f"round {rounds} seed={seed} overflow_queue={'32' if overflow else 'default'}: "
            f"{stats.steps} steps, {stats.kills} kills, {stats.overflows} overflows, "
            f"{stats.events_checked} events, {stats.mismatches} mismatches",
            flush=True,
        )
        total.merge(stats)
    pytest_rc = None
    if not args.no_pytest:
        env = {**os.environ, "ENVWATCHD_TORTURE_LONG": "1"}
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "tests/torture",
            "-q",
            "-p",
            "no:cacheprovider",
            "--deselect",
            "tests/torture/test_model.py::test_random_steps_lose_nothing",
        ]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        pytest_rc = proc.returncode
        tail = "\n".join(proc.stdout.splitlines()[-12:])
        print(f"long pytest part ({time.monotonic() - t0:.0f} s, exit {pytest_rc}):\n{tail}")
    print()
    print("envwatchd torture report")
    print(f"  rounds (fresh machine + seed) {rounds}")
    print(f"  steps run                     {total.steps}")
    print(f"  kills survived (kill -9)      {total.kills}")
    print(f"  graceful restarts             {total.restarts}")
    print(f"  overflows survived            {total.overflows}")
    print(f"  changes made while down       {total.changes_while_down}")
    print(f"  real uv steps                 {total.real_tool_steps}")
    print(f"  events checked                {total.events_checked}  {dict(total.kinds)}")
    print(f"  mismatches                    {total.mismatches}")
    print(f"  wall time                     {time.monotonic() - started:.0f} s")
    failed = total.mismatches or (pytest_rc not in (None, 0))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
