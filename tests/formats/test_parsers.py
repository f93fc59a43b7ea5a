"""One parser per on-disk format, on real files written by tests/builders (which are
checked byte for byte against the real tools in tests/test_builders.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from envwatchd.formats import SiteEntry, classify, is_metadata_name
from envwatchd.formats.conda_meta import parse_history, parse_record, split_record_name
from envwatchd.formats.dist_info import split_name
from envwatchd.formats.dpkg import read_dpkg
from envwatchd.formats.egg_info import split_egg_name
from envwatchd.formats.files import read_files
from envwatchd.formats.pth import parse_pth
from envwatchd.inference import manager_from_installer
from envwatchd.model import Format, Manager
from tests import builders as b


def _parse(path: Path):  # type: ignore[no-untyped-def]
    st = os.lstat(path)
    entry = SiteEntry(str(path.parent), path.name, str(path), path.is_dir(), st.st_ino)
    parser = classify(path.name)
    assert parser is not None
    return parser(entry)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("numpy-1.24.2.dist-info", True),
        ("numpy-1.13.3-py2.7.egg-info", True),
        ("cryptography.egg-info", True),
        ("x-1.0-py3.11.egg", True),
        ("Proj.egg-link", True),
        ("~umpy-1.0.dist-info", False),
        ("numpy", False),
        ("easy-install.pth", False),
        ("README.txt", False),
        ("x.egg-info.bak", False),
    ],
)
def test_the_routing_table(name: str, expected: bool) -> None:
    """Names alone route to parsers; pip's `~` stash is never a distribution."""
    assert is_metadata_name(name) is expected


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("numpy-1.24.2", ("numpy", "1.24.2")),
        ("zope.interface-6.0", ("zope.interface", "6.0")),
        ("foo-bar-1.0", None),
        ("foo", None),
        ("foo-dev", None),
    ],
)
def test_dist_info_name_split(stem: str, expected: tuple[str, str] | None) -> None:
    assert split_name(stem) == expected


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("numpy-1.13.3-py2.7", ("numpy", "1.13.3")),
        ("cryptography", ("cryptography", None)),
        ("lazr.uri-1.0.6", ("lazr.uri", "1.0.6")),
        ("zope.interface-5.5-py3.11-linux", ("zope.interface", "5.5")),
    ],
)
def test_egg_name_split(stem: str, expected: tuple[str, str | None]) -> None:
    assert split_egg_name(stem) == expected


@pytest.mark.parametrize(
    ("installer", "manager"),
    [
        ("pip", Manager.PIP),
        ("uv", Manager.UV),
        ("Poetry 1.8.3", Manager.POETRY),
        ("conda", Manager.CONDA),
        ("rpm", Manager.RPM),
        ("debian", Manager.APT),
        ("PDM", Manager.PDM),
        ("pon-pm", None),
        ("", None),
    ],
)
def test_installer_values_in_the_wild(installer: str, manager: Manager | None) -> None:
    """INSTALLER's first line, case-insensitive prefix (formats-and-tools.md table)."""
    assert manager_from_installer(installer) is manager


@pytest.mark.parametrize(
    ("kw", "installer", "has_record"),
    [
        ({}, "pip", True),
        ({"installer": "uv", "uv_cache": True}, "uv", True),
        ({"installer": "Poetry 1.8.3"}, "Poetry 1.8.3", True),
        ({"installer": "conda"}, "conda", True),
        ({"installer": "rpm\n", "record": False}, "rpm", False),
        (
            {"installer": None, "requested": False, "record": "hex", "top_level_txt": True},
            None,
            True,
        ),
    ],
)
def test_dist_info_styles(
    tmp_path: Path, kw: dict[str, object], installer: str | None, has_record: bool
) -> None:
    path = b.dist_info(tmp_path, "Demo-Pkg", "1.0", **kw)  # type: ignore[arg-type]
    raw, problems = _parse(path)
    assert problems == [] and raw is not None
    assert (raw.display_name, raw.version, raw.format) == ("demo_pkg", "1.0", Format.DIST_INFO)
    assert (raw.installer, raw.has_record) == (installer, has_record)
    st = os.lstat(path)
    assert raw.fingerprint == f"{st.st_ino}:{st.st_mtime_ns}"
    assert ("uv_cache.json present (uv)" in raw.extra_evidence) is bool(kw.get("uv_cache"))


def test_dist_info_historical_name_reads_metadata(tmp_path: Path) -> None:
    path = b.dist_info(tmp_path, "foo-bar", "2.0", dirname="foo-bar-2.0.dist-info")
    raw, problems = _parse(path)
    assert (
        problems == [] and raw is not None and (raw.display_name, raw.version) == ("foo-bar", "2.0")
    )


def test_dist_info_without_version_anywhere_is_a_problem(tmp_path: Path) -> None:
    path = b.dist_info(tmp_path, "x", "1.0", dirname="x.dist-info")
    (path / "METADATA").write_text("Metadata-Version: 2.1\nName: x\n")
    raw, problems = _parse(path)
    assert raw is None and problems and "Version" in problems[0].message
    assert problems[0].path == str(path)


def test_editable_pep660(tmp_path: Path) -> None:
    site = tmp_path / "site"
    path = b.editable_pep660(site, "proj", "0.1", tmp_path / "src")
    raw, _ = _parse(path)
    assert raw is not None and raw.format is Format.EDITABLE and raw.editable
    pth, problems = parse_pth(str(site), "__editable__.proj-0.1.pth")
    assert problems == [] and pth is not None
    assert pth.editable_for == "proj" and pth.entries == (str(tmp_path / "src"),)


@pytest.mark.parametrize("with_version", [True, False])
def test_egg_info_dirs(tmp_path: Path, with_version: bool) -> None:
    dirname = None if with_version else "cryptography.egg-info"
    path = b.egg_info_dir(tmp_path, "cryptography", "38.0.4", dirname=dirname, installed_files=True)
    raw, problems = _parse(path)
    assert problems == [] and raw is not None
    assert (raw.version, raw.format, raw.has_record) == ("38.0.4", Format.EGG_INFO, True)
    files = read_files_of(raw.path, Format.EGG_INFO)
    assert files is not None and "cryptography/__init__.py" in files


def read_files_of(path: str, fmt: Format) -> frozenset[str] | None:
    from envwatchd.model import Copy, EnvKind, EnvRef, canonicalize

    ref = EnvRef(EnvKind.OTHER, "/", "x")
    copy = Copy(
        canonicalize("x"), "x", "1", fmt, path, os.path.dirname(path), ref, Manager.UNKNOWN, ()
    )
    return read_files(copy)


def test_flat_egg_info_file_is_distutils(tmp_path: Path) -> None:
    path = b.egg_info_file(tmp_path, "PyGObject", "3.42.2")
    raw, _ = _parse(path)
    assert raw is not None and raw.format is Format.EGG_INFO and not raw.has_record
    assert any("distutils" in e for e in raw.extra_evidence)


@pytest.mark.parametrize("zipped", [True, False])
def test_eggs_and_easy_install_pth(tmp_path: Path, zipped: bool) -> None:
    path = b.egg(
        tmp_path,
        "numpy",
        "1.13.3",
        pyver="2.7",
        zipped=zipped,
        platform="linux-x86_64",
        old_setuptools=True,
    )
    raw, _ = _parse(path)
    assert raw is not None and (raw.display_name, raw.version) == ("numpy", "1.13.3")
    assert raw.import_path == str(path)
    pth, _ = parse_pth(str(tmp_path), "easy-install.pth")
    assert pth is not None and pth.egg_insert and str(path) in pth.entries


def test_egg_link(tmp_path: Path) -> None:
    path = b.egg_link(tmp_path / "site", "My.Proj", tmp_path / "proj", version="0.3")
    raw, problems = _parse(path)
    assert problems == [] and raw is not None
    assert (raw.format, raw.version, raw.import_path) == (
        Format.EGG_LINK,
        "0.3",
        str(tmp_path / "proj"),
    )


def test_conda_meta_records(tmp_path: Path) -> None:
    env = b.conda_env(
        tmp_path / "env",
        [("numpy", "1.26.4", "py311h64a7726_0")],
        history=[("2026-11-26 10:00:00", "conda install numpy")],
    )
    rec, problems = parse_record(str(env / "conda-meta/numpy-1.26.4-py311h64a7726_0.json"))
    assert problems == [] and rec is not None and rec.valid
    assert rec.stem == "numpy-1.26.4-py311h64a7726_0"
    assert any(f.endswith("site-packages/numpy/__init__.py") for f in rec.files)
    assert parse_history(str(env / "conda-meta/history")) == [
        ("2026-11-26 10:00:00", "conda install numpy")
    ]
    assert split_record_name("python-3.11.7-h0_0_cpython") == ("python", "3.11.7", "h0_0_cpython")


@pytest.mark.parametrize("text", ['{"name": "x", "files": [', "[" * 10000 + "]" * 10000, "[]"])
def test_bad_conda_meta_still_names_its_package(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x-1.0-py_0.json"
    path.write_text(text)
    rec, problems = parse_record(str(path))
    assert rec is not None and not rec.valid and (rec.name, rec.version) == ("x", "1.0")
    assert problems and problems[0].path == str(path)


def test_dpkg_admin_dir(tmp_path: Path) -> None:
    """status gives version/state; .list (Multi-Arch `pkg:arch.list` too) gives owners."""
    pkgs = [
        b.DebPkg(
            "python3-numpy",
            "1:1.24.2-1",
            b.deb_python_files("numpy", "1.24.2"),
            architecture="amd64",
            multi_arch="same",
        ),
        b.DebPkg("python3-six", "1.16.0-4", b.deb_python_files("six", "1.16.0", fmt="dist-info")),
    ]
    b.dpkg_admin(tmp_path, pkgs)
    db, problems = read_dpkg(str(tmp_path))
    assert problems == [] and db is not None
    site = str(tmp_path / "usr/lib/python3/dist-packages")
    numpy = db.owner(site, "numpy")
    assert numpy is not None and (numpy.name, numpy.version, numpy.installed) == (
        "python3-numpy",
        "1:1.24.2-1",
        True,
    )
    owner = db.owner(site, "six-1.16.0.dist-info")
    assert owner is not None and owner.name == "python3-six"
    assert json.dumps(sorted(db.packages)) == '["python3-numpy", "python3-six"]'


def test_no_dpkg_database_is_not_an_error(tmp_path: Path) -> None:
    assert read_dpkg(str(tmp_path)) == (None, [])
