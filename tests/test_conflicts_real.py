"""Each conflict rule on real files, scanned end to end (builders write the real
formats; the rules see what the scanner makes of them)."""

from __future__ import annotations

import shutil

from envwatchd.conflicts import RuleContext, evaluate
from envwatchd.formats.files import read_files
from envwatchd.model import Conflict, ConflictKind, Severity
from tests import builders as b
from tests.conftest import FakeMachine

K = ConflictKind


def conflicts(fake: FakeMachine, **settings: object) -> list[Conflict]:
    return evaluate(fake.scan(**settings), RuleContext(read_files=read_files))


def kinds(found: list[Conflict]) -> set[tuple[ConflictKind, str, Severity]]:
    return {(c.kind, c.name, c.severity) for c in found}


def test_pip_uninstall_of_dpkg_numpy_is_an_orphaned_record(fake: FakeMachine) -> None:
    """The story: `sudo pip uninstall numpy` removes apt's files; dpkg still says installed."""
    (fake.root / "usr/lib/python3.11").mkdir(parents=True)
    pkg = b.DebPkg("python3-numpy", "1:1.24.2-1", b.deb_python_files("numpy", "1.24.2"))
    b.dpkg_admin(fake.root, [pkg])
    assert kinds(conflicts(fake)) == set()
    site = fake.root / "usr/lib/python3/dist-packages"
    shutil.rmtree(site / "numpy")
    shutil.rmtree(site / "numpy-1.24.2.egg-info")
    (found,) = conflicts(fake)
    assert (found.kind, found.name, found.severity) == (K.ORPHANED_RECORD, "numpy", Severity.ERROR)
    assert "sudo apt-get install --reinstall python3-numpy" in found.remedy


def test_conda_record_whose_files_pip_removed(fake: FakeMachine) -> None:
    base = fake.home / "miniconda3"
    b.conda_base(base, envs={"ml": [("numpy", "1.26.4", "py311_0")]}, python=None)
    sp = base / "envs/ml/lib/python3.11/site-packages"
    shutil.rmtree(sp / "numpy")
    shutil.rmtree(sp / "numpy-1.26.4.dist-info")
    (found,) = [c for c in conflicts(fake) if c.kind is K.ORPHANED_RECORD]
    assert any("conda install --force-reinstall -n ml numpy" in r for r in found.remedy)


def test_conda_over_pip_numpy_is_mixed_metadata(fake: FakeMachine) -> None:
    """The story's conda-over-pip numpy: egg-info (conda) + dist-info (pip), one site dir."""
    base = fake.home / "miniconda2"
    b.conda_base(
        base,
        [("numpy", "1.13.3", "py27hbcc08e0_0")],
        pyver="2.7",
        python_metadata="egg-info",
        python=None,
    )
    b.dist_info(base / "lib/python2.7/site-packages", "numpy", "1.13.3", module_files=False)
    found = [c for c in conflicts(fake) if c.name == "numpy"]
    assert [c.kind for c in found] == [K.MIXED_METADATA]
    assert found[0].severity is Severity.WARNING and len(found[0].copies) == 2


def test_debian_cryptography_pair_is_not_a_warning(fake: FakeMachine) -> None:
    """python3-cryptography ships a dist-info AND an egg-info, both in its .list."""
    files = b.deb_python_files("cryptography", "38.0.4", fmt="dist-info")
    sp = "usr/lib/python3/dist-packages"
    files[f"{sp}/cryptography.egg-info/PKG-INFO"] = (
        b"Metadata-Version: 2.1\nName: cryptography\nVersion: 38.0.4\n"
    )
    b.dpkg_admin(fake.root, [b.DebPkg("python3-cryptography", "38.0.4-3", files)])
    assert [c for c in conflicts(fake) if c.severity is not Severity.INFO] == []


def test_pip_force_reinstall_inside_conda_is_a_foreign_overwrite(fake: FakeMachine) -> None:
    base = fake.home / "miniconda3"
    b.conda_base(base, [("requests", "2.31.0", "py311_0")], python=None)
    di = base / "lib/python3.11/site-packages/requests-2.31.0.dist-info"
    (di / "INSTALLER").write_text("pip\n")
    (found,) = [c for c in conflicts(fake) if c.name == "requests"]
    assert (found.kind, found.severity) == (K.FOREIGN_OVERWRITE, Severity.ERROR)
    assert "pip" in found.message


def test_two_distributions_one_module_is_a_file_collision(fake: FakeMachine) -> None:
    """uv#10564: jose and python-jose both install jose/jwt.py; the last one won."""
    site = fake.home / ".local/lib/python3.11/site-packages"
    for name in ("jose", "python-jose"):
        b.dist_info(
            site,
            name,
            "1.0",
            top_level=["jose"],
            top_level_txt=True,
            extra_files={"jose/jwt.py": name.encode()},
        )
    (found,) = [c for c in conflicts(fake) if c.kind is K.FILE_COLLISION]
    assert {c.name for c in found.copies} == {"jose", "python-jose"}


def test_namespace_packages_are_not_collisions(fake: FakeMachine) -> None:
    site = fake.home / ".local/lib/python3.11/site-packages"
    for name in ("google-auth", "google-api-core"):
        mod = name.split("-", 1)[1].replace("-", "_")
        b.dist_info(
            site,
            name,
            "1.0",
            top_level=["google"],
            top_level_txt=True,
            module_files=False,
            extra_files={f"google/{mod}/__init__.py": b""},
        )
    (site / "zope.interface-6.0-py3.11-nspkg.pth").write_text("import sys, types, os\n")
    (site / "distutils-precedence.pth").write_text("import os; var = 'SETUPTOOLS'\n")
    assert conflicts(fake) == []


def test_usr_local_shadows_dist_packages(fake: FakeMachine) -> None:
    (fake.root / "usr/lib/python3.11").mkdir(parents=True)
    b.dpkg_admin(
        fake.root,
        [
            b.DebPkg(
                "python3-pip", "23.0.1+dfsg-1", b.deb_python_files("pip", "23.0.1", fmt="dist-info")
            )
        ],
    )
    b.dist_info(fake.root / "usr/local/lib/python3.11/dist-packages", "pip", "24.0")
    (dup,) = [c for c in conflicts(fake) if c.kind is K.DUPLICATE]
    assert dup.name == "pip" and dup.severity is Severity.WARNING
    (winner,) = [c for c in dup.copies if c.imported_by]
    assert winner.version == "24.0" and "/usr/local/" in winner.path


def test_user_site_shadows_conda_base(fake: FakeMachine) -> None:
    base = fake.home / "miniconda3"
    b.conda_base(base, [("numpy", "1.26.4", "py311_0")], python=None)
    b.dist_info(fake.home / ".local/lib/python3.11/site-packages", "numpy", "1.24.0")
    found = conflicts(fake)
    (dup,) = [c for c in found if c.kind is K.DUPLICATE]
    (winner,) = [c for c in dup.copies if c.imported_by]
    assert winner.env.kind.value == "user"
    assert any(c.kind is K.USER_SITE_IN_CONDA for c in found)


def test_extra_root_shadows_everything(fake: FakeMachine) -> None:
    """The PYTHONPATH case: ~/technologies/caffe/python first on every path."""
    caffe = fake.home / "technologies/caffe/python"
    b.dist_info(caffe, "protobuf", "3.0.0")
    b.dist_info(fake.home / ".local/lib/python3.11/site-packages", "protobuf", "4.25.0")
    (fake.root / "usr/lib/python3.11").mkdir(parents=True)
    found = conflicts(fake, extra_roots=[str(caffe)])
    (dup,) = [c for c in found if c.kind is K.DUPLICATE]
    (winner,) = [c for c in dup.copies if c.imported_by]
    assert winner.site == str(caffe)


def test_old_easy_install_eggs_jump_ahead(fake: FakeMachine) -> None:
    """`sys.__egginsert` in easy-install.pth puts /usr/local eggs before the user site."""
    (fake.root / "usr/lib/python2.7").mkdir(parents=True)
    b.egg(
        fake.root / "usr/local/lib/python2.7/dist-packages",
        "subprocess32",
        "3.2.7",
        pyver="2.7",
        platform="linux-x86_64",
        old_setuptools=True,
    )
    b.dist_info(fake.home / ".local/lib/python2.7/site-packages", "subprocess32", "3.5.4")
    (dup,) = [c for c in conflicts(fake) if c.kind is K.DUPLICATE]
    (winner,) = [c for c in dup.copies if c.imported_by]
    assert winner.format.value == "egg"


def test_externally_managed_and_unused_pkgs_advisories(fake: FakeMachine) -> None:
    (fake.root / "usr/lib/python3.11").mkdir(parents=True)
    (fake.root / "usr/lib/python3.11/EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    b.dist_info(fake.root / "usr/local/lib/python3.11/dist-packages", "httpie", "3.2.2")
    base = fake.home / "miniconda3"
    b.conda_base(base, python=None)
    b.conda_env(
        fake.home / "tmpenv",
        [("scipy", "1.11.0", "py311_0")],
        python=None,
        pkgs_dir=base / "pkgs",
        write_pkgs_cache=True,
    )
    shutil.rmtree(fake.home / "tmpenv")
    found = kinds(conflicts(fake))
    assert (K.EXTERNALLY_MANAGED, "local", Severity.INFO) in found
    assert any(k is K.UNUSED_PKGS_CACHE and s is Severity.INFO for k, _n, s in found)


def test_same_project_in_two_interpreters_is_fine(fake: FakeMachine) -> None:
    b.pyvenv(fake.home / ".virtualenvs/a", "/usr/bin", "3.11.2")
    b.pyvenv(fake.home / ".virtualenvs/b", "/usr/bin", "3.11.2")
    for v, ver in (("a", "1.0"), ("b", "2.0")):
        b.dist_info(fake.home / f".virtualenvs/{v}/lib/python3.11/site-packages", "attrs", ver)
    assert conflicts(fake) == []


def test_orphaned_record_is_named_after_its_metadata(fake: FakeMachine) -> None:
    """python3-yaml ships PyYAML-6.0.egg-info: the orphan is `pyyaml`, not `yaml`."""
    files = b.deb_python_files("PyYAML", "6.0", package="python3-yaml")
    b.dpkg_admin(fake.root, [b.DebPkg("python3-yaml", "6.0-3", files)], payload=False)
    (found,) = conflicts(fake)
    assert (found.kind, found.name) == (K.ORPHANED_RECORD, "pyyaml")
