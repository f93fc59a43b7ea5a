"""The code stays typed and lint-clean: mypy --strict on envwatchd/, ruff on everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ruff_clean() -> None:
    """ruff check reports nothing on the package, the tests and the bench scripts."""
    out = _run("ruff", "check", "envwatchd", "tests", "bench")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict_clean() -> None:
    """mypy in strict mode (pyproject [tool.mypy]) accepts envwatchd/."""
    out = _run("mypy", "envwatchd")
    assert out.returncode == 0, out.stdout + out.stderr


def test_shipped_config_example_validates() -> None:
    """config/envwatchd.toml is accepted by the model the daemon uses."""
    from envwatchd.config import load_config

    cfg = load_config(ROOT / "config" / "envwatchd.toml", required=True)
    assert cfg.watch.settle_ms > 0
