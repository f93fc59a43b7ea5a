"""Shared fixtures: a fake machine (a --root tree and a HOME) and a scanner over it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from envwatchd.config import Discovery
from envwatchd.discovery import Machine
from envwatchd.inventory import Scanner
from envwatchd.model import Copy, Inventory


@dataclass
class FakeMachine:
    root: Path
    home: Path
    environ: dict[str, str]

    def machine(self, **settings: object) -> Machine:
        disc = Discovery(**settings)  # type: ignore[arg-type]
        return Machine(str(self.root), str(self.home), self.environ, disc)

    def scan(self, **settings: object) -> Inventory:
        return Scanner(self.machine(**settings)).full_scan()

    def copies(self, inv: Inventory, name: str) -> list[Copy]:
        return sorted((c for c in inv.copies if c.name == name), key=lambda c: c.path)


@pytest.fixture
def fake(tmp_path: Path) -> FakeMachine:
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    environ = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return FakeMachine(root, home, environ)


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    """Each test starts from structlog's defaults (the CLI reconfigures it)."""
    structlog.reset_defaults()
