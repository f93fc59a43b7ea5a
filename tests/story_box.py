"""The reference story's machine, small, for the export tests (metrics, sbom, report).

Christopher's laptop in miniature: a conda base whose numpy a `pip install --user`
numpy in ~/.local shadows, Debian's python3-numpy and python3-yaml under /usr
(so /usr/bin/python3.11 sees two numpys too), and a real project venv that the
tests pip-install into while the daemon watches.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import builders as b
from tests.daemon_harness import Box, DaemonProc


@dataclass
class Story:
    box: Box
    daemon: DaemonProc
    conda: Path
    venv_python: Path

    @property
    def venv_site(self) -> Path:
        return self.box.site(self.venv_python.parent.parent)

    @property
    def dist_packages(self) -> Path:
        return self.box.root / "usr/lib/python3/dist-packages"

    def plant_orphaned_yaml(self) -> None:
        """`sudo pip uninstall pyyaml` on Debian: files gone, dpkg still says installed."""
        shutil.rmtree(self.dist_packages / "pyyaml")
        shutil.rmtree(self.dist_packages / "PyYAML-6.0.egg-info")


def build_story(box: Box) -> tuple[Path, Path]:
    """Write the machine; returns (conda base, venv python)."""
    (box.root / "usr/lib/python3.11").mkdir(parents=True)
    b.dpkg_admin(
        box.root,
        [
            b.DebPkg(
                "python3-numpy",
                "1:1.24.2-1",
                b.deb_python_files("numpy", "1.24.2"),
                architecture="amd64",
            ),
            b.DebPkg("python3-yaml", "6.0-3+b2", b.deb_python_files("PyYAML", "6.0")),
        ],
    )
    conda = b.conda_base(box.home / "miniconda3", [("numpy", "1.26.4", "py311h64a7726_0")])
    b.dist_info(box.user_site, "numpy", "1.24.0")
    venv_python = box.venv(box.home / "proj" / ".venv")
    return conda, venv_python


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    box = Box(tmp_path, extra_env={})
    conda, venv_python = build_story(box)
    box.config.write_text(
        box.config.read_text()
        + f'[export]\nprometheus_textfile = "{tmp_path / "textfile" / "envwatchd.prom"}"\n'
    )
    (tmp_path / "textfile").mkdir()
    daemon = DaemonProc(box).start()
    try:
        yield Story(box, daemon, conda, venv_python)
    finally:
        assert daemon.stop() == 0, daemon.tail()
