"""Every row of the reference story's "Reverse the paths", in its Python 2.7-era
layout and in a modern 3.11 layout, built with the real on-disk formats and
scanned: the manager, the env kind and the importing interpreters must match
what the story concludes by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from envwatchd.model import EnvKind, Format, Manager
from tests import builders as b
from tests.conftest import FakeMachine


def _dpkg_numpy(root: Path, pyver: str | None, version: str, pkg: str) -> None:
    """python-numpy (2.7: /usr/lib/python2.7/dist-packages) or python3-numpy."""
    if pyver == "2.7":
        sp = "usr/lib/python2.7/dist-packages"
        files = {
            f"{sp}/numpy/__init__.py": b"",
            f"{sp}/numpy-{version}.egg-info/PKG-INFO": (
                f"Metadata-Version: 1.1\nName: numpy\nVersion: {version}\n".encode()
            ),
        }
    else:
        files = b.deb_python_files("numpy", version, package=pkg)
    b.dpkg_admin(root, [b.DebPkg(pkg, f"1:{version}-1", files)])


@pytest.mark.parametrize("era", ["2.7", "3.11"])
def test_easy_install_into_usr_local(fake: FakeMachine, era: str) -> None:
    """/usr/local/lib/pythonX.Y/dist-packages/numpy-...egg: installed with easy_install."""
    site = fake.root / f"usr/local/lib/python{era}/dist-packages"
    b.egg(site, "numpy", "1.13.3", pyver=era, zipped=False, platform="linux-x86_64")
    (copy,) = fake.copies(fake.scan(), "numpy")
    assert (copy.manager, copy.env.kind, copy.format) == (
        Manager.EASY_INSTALL,
        EnvKind.LOCAL,
        Format.EGG,
    )
    assert "listed in easy-install.pth" in copy.evidence
    assert copy.imported_by == (str(fake.root / f"usr/bin/python{era}"),)


@pytest.mark.parametrize(("era", "pkg"), [("2.7", "python-numpy"), ("3.11", "python3-numpy")])
def test_apt_in_dist_packages(fake: FakeMachine, era: str, pkg: str) -> None:
    """/usr/lib/python{2.7,3}/dist-packages/numpy: apt's python(3)-numpy."""
    (fake.root / f"usr/lib/python{era}").mkdir(parents=True)
    _dpkg_numpy(fake.root, era, "1.11.0", pkg)
    (copy,) = fake.copies(fake.scan(), "numpy")
    assert copy.manager is Manager.APT and copy.env.kind is EnvKind.SYSTEM
    assert copy.owner == f"dpkg:{pkg}"
    assert f"listed in var/lib/dpkg/info/{pkg}.list" in copy.evidence
    assert copy.imported_by == (str(fake.root / f"usr/bin/python{era}"),)


@pytest.mark.parametrize("era", ["2.7", "3.11"])
def test_sudo_pip_into_system_dist_packages(fake: FakeMachine, era: str) -> None:
    """The story's other reading of /usr/lib/python2.7/dist-packages: `sudo pip` put it there."""
    site = fake.root / f"usr/lib/python{era}/dist-packages"
    b.dist_info(site, "numpy", "1.13.3")
    (copy,) = fake.copies(fake.scan(), "numpy")
    assert copy.manager is Manager.PIP and copy.env.kind is EnvKind.SYSTEM
    assert copy.owner is None


@pytest.mark.parametrize("era", ["3.5", "3.11"])
def test_sudo_pip3_into_usr_local(fake: FakeMachine, era: str) -> None:
    """/usr/local/lib/python3.X/dist-packages/numpy: `sudo pip3 install`."""
    b.dist_info(fake.root / f"usr/local/lib/python{era}/dist-packages", "numpy", "1.13.3")
    (copy,) = fake.copies(fake.scan(), "numpy")
    assert (copy.manager, copy.env.kind) == (Manager.PIP, EnvKind.LOCAL)
    assert "INSTALLER says pip" in copy.evidence


@pytest.mark.parametrize("era", ["2.7", "3.5", "3.11"])
def test_pip_user(fake: FakeMachine, era: str) -> None:
    """~/.local/lib/pythonX.Y/site-packages/numpy: `pip install --user`."""
    b.dist_info(fake.home / f".local/lib/python{era}/site-packages", "numpy", "1.13.3")
    inv = fake.scan()
    (copy,) = fake.copies(inv, "numpy")
    assert (copy.manager, copy.env.kind, copy.env.prefix) == (
        Manager.PIP,
        EnvKind.USER,
        str(fake.home / ".local"),
    )


def test_virtualenv_2017_without_pyvenv_cfg(fake: FakeMachine) -> None:
    """~/apps/my_app/lib/python2.7/site-packages/numpy: a (pre-20) virtualenv env."""
    app = fake.home / "apps/my_app"
    (app / "bin").mkdir(parents=True)
    (app / "lib/python2.7").mkdir(parents=True)
    (app / "lib/python2.7/orig-prefix.txt").write_text("/usr")
    (app / "lib/python2.7/no-global-site-packages.txt").write_text("")
    b.dist_info(app / "lib/python2.7/site-packages", "numpy", "1.13.3")
    (copy,) = fake.copies(fake.scan(), "numpy")
    assert (copy.manager, copy.env.kind, copy.env.name) == (Manager.PIP, EnvKind.VENV, "my_app")
    assert copy.imported_by == (str(app / "bin/python"),)


@pytest.mark.parametrize("era", ["3.11"])
def test_modern_venv(fake: FakeMachine, era: str) -> None:
    app = fake.home / "apps/my_app"
    b.pyvenv(app, "/usr/bin", "3.11.2")
    b.dist_info(app / f"lib/python{era}/site-packages", "numpy", "1.26.4")
    (copy,) = fake.copies(fake.scan(), "numpy")
    assert (copy.manager, copy.env.kind, copy.env.name) == (Manager.PIP, EnvKind.VENV, "my_app")


@pytest.mark.parametrize(("era", "build"), [("2.7", "py27hbcc08e0_0"), ("3.11", "py311h64a7726_0")])
def test_conda_base_conda_vs_pip(fake: FakeMachine, era: str, build: str) -> None:
    """~/miniconda2 site-packages: conda's egg-info (or INSTALLER conda) vs pip's dist-info."""
    base = fake.home / "miniconda2"
    meta = "egg-info" if era == "2.7" else "dist-info"
    b.conda_base(
        base,
        [("numpy", "1.13.3", build)],
        pyver=era,
        python_metadata=meta,
        python=None,
        write_pkgs_cache=True,
    )
    inv = fake.scan()
    (conda_copy,) = [c for c in fake.copies(inv, "numpy") if c.env.kind is EnvKind.CONDA]
    assert conda_copy.manager is Manager.CONDA
    assert conda_copy.owner == f"conda:numpy-1.13.3-{build}"
    assert f"claimed by conda-meta/numpy-1.13.3-{build}.json" in conda_copy.evidence
    assert conda_copy.imported_by == (str(base / f"bin/python{era}"),)
    (cached,) = [c for c in fake.copies(inv, "numpy") if c.env.kind is EnvKind.CONDA_PKGS]
    assert cached.manager is Manager.CONDA and cached.imported_by == ()
    if era == "2.7":  # then pip installs beside it in the same site dir: the story's pair
        b.dist_info(base / f"lib/python{era}/site-packages", "numpy", "1.13.3", module_files=False)
        pair = [c for c in fake.copies(fake.scan(), "numpy") if c.env.kind is EnvKind.CONDA]
        assert sorted(c.manager for c in pair) == [Manager.CONDA, Manager.PIP]


@pytest.mark.parametrize("era", ["2.7", "3.11"])
def test_conda_named_envs(fake: FakeMachine, era: str) -> None:
    """~/miniconda2/envs/{my_app,yad2k}: conda in two named envs, two pythons."""
    base = fake.home / "miniconda2"
    other = "3.6" if era == "2.7" else "3.12"
    b.conda_base(base, [], pyver=era, python=None)
    b.conda_env(
        base / "envs/my_app",
        [("numpy", "1.13.3", "py_0")],
        pyver=era,
        python=None,
        pkgs_dir=base / "pkgs",
    )
    b.conda_env(
        base / "envs/yad2k",
        [("numpy", "1.14.0", "py_0")],
        pyver=other,
        python=None,
        pkgs_dir=base / "pkgs",
    )
    copies = fake.copies(fake.scan(), "numpy")
    assert {(c.env.name, c.manager, c.env.kind) for c in copies} == {
        ("my_app", Manager.CONDA, EnvKind.CONDA),
        ("yad2k", Manager.CONDA, EnvKind.CONDA),
    }
    assert all(len(c.imported_by) == 1 for c in copies)
