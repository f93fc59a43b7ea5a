"""The rpm database, read with the real `rpm` binary from a package built by rpmbuild
and installed with `rpm --root` (Fedora's layout: /usr/lib/pythonX.Y/site-packages,
INSTALLER `rpm`, no RECORD)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from envwatchd.formats.rpm import read_rpm
from envwatchd.model import EnvKind, Manager
from tests.conftest import FakeMachine

pytestmark = pytest.mark.skipif(
    shutil.which("rpmbuild") is None, reason="needs Debian's rpm package (installed by .ci/run)"
)

SPEC = """Name: python3-tinyrpm
Version: 1.2
Release: 3.fc40
Summary: tiny
License: MIT
BuildArch: noarch
%description
tiny
%install
sp=%{buildroot}/usr/lib/python3.12/site-packages
di=$sp/tinyrpm-1.2.dist-info
mkdir -p $sp/tinyrpm $di
echo "" > $sp/tinyrpm/__init__.py
printf 'Metadata-Version: 2.1\\nName: tinyrpm\\nVersion: 1.2\\n' > $di/METADATA
printf 'rpm\\n' > $di/INSTALLER
%files
/usr/lib/python3.12/site-packages/tinyrpm
/usr/lib/python3.12/site-packages/tinyrpm-1.2.dist-info
"""


def _install_rpm(tmp: Path, root: Path) -> None:
    top = tmp / "rpmtop"
    (top / "SPECS").mkdir(parents=True)
    (top / "SPECS/t.spec").write_text(SPEC)
    subprocess.run(
        ["rpmbuild", "--define", f"_topdir {top}", "-bb", str(top / "SPECS/t.spec")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (rpm,) = (top / "RPMS/noarch").glob("*.rpm")
    base = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm"]
    subprocess.run([*base, "--initdb"], check=True, capture_output=True, timeout=60)
    subprocess.run(
        [*base, "-i", "--nodeps", "--noscripts", str(rpm)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_one_batched_query_indexes_owners(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _install_rpm(tmp_path, root)
    db, problems = read_rpm(str(root))
    assert problems == [] and db is not None
    site = str(root / "usr/lib/python3.12/site-packages")
    owner = db.owner(site, "tinyrpm-1.2.dist-info")
    assert owner is not None and (owner.name, owner.version) == ("python3-tinyrpm", "1.2-3.fc40")
    assert db.owner(site, "tinyrpm") is owner


def test_fedora_system_copy_is_rpm(fake: FakeMachine, tmp_path: Path) -> None:
    _install_rpm(tmp_path, fake.root)
    (copy,) = fake.copies(fake.scan(), "tinyrpm")
    assert (copy.manager, copy.env.kind, copy.owner) == (
        Manager.RPM,
        EnvKind.SYSTEM,
        "rpm:python3-tinyrpm",
    )
    assert any("var/lib/rpm" in e for e in copy.evidence)
    assert "INSTALLER says rpm" in copy.evidence
