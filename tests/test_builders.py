"""The builders write what the real tools write (checked against real pip, uv, dpkg, venv).

A second, independent reader (importlib.metadata) must also read every builder's output.
"""

from __future__ import annotations

import importlib.metadata as im
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import builders as b
from tests import realtools as rt

needs_dpkg = pytest.mark.skipif(
    not (shutil.which("dpkg") and shutil.which("dpkg-deb")), reason="dpkg not installed"
)


def _tree(root: Path) -> dict[str, bytes]:
    """Files under root (relative path -> bytes), __pycache__ left out."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _record_without_pyc(path: Path) -> str:
    return "".join(ln for ln in path.read_text().splitlines(True) if ".pyc," not in ln)


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return b.make_wheel(tmp_path / "wheels", "tinypkg", "1.0")


# --------------------------------------------------------------------------- real pip / uv


@pytest.mark.slow
def test_dist_info_matches_real_pip_install(tmp_path: Path, wheel: Path) -> None:
    """pip's install of make_wheel output == dist_info(), byte for byte, bar __pycache__."""
    env = rt.isolated_env(tmp_path)
    py = rt.make_venv(tmp_path / "v", env=env)
    rt.pip_install(py, wheel, env=env)
    real = b.site_packages(tmp_path / "v")
    built = tmp_path / "built"
    b.dist_info(built, "tinypkg", "1.0", direct_url=b.pip_archive_direct_url(wheel), pyc=True)
    real_files, built_files = _tree(real), _tree(built)
    assert real_files.keys() == built_files.keys()
    record = "tinypkg-1.0.dist-info/RECORD"
    assert real_files.pop(record) == built_files.pop(record)  # pyc row included: same shape
    assert real_files == built_files


@pytest.mark.slow
def test_pip_user_install_lands_like_dist_info(tmp_path: Path, wheel: Path) -> None:
    """pip --user writes the same dist-info into PYTHONUSERBASE's site-packages."""
    env = rt.isolated_env(tmp_path)
    site = rt.pip_user_install(rt.base_python(), tmp_path / "userbase", wheel, env=env)
    built = tmp_path / "built"
    b.dist_info(built, "tinypkg", "1.0", direct_url=b.pip_archive_direct_url(wheel))
    di = "tinypkg-1.0.dist-info"
    assert _record_without_pyc(site / di / "RECORD") == (built / di / "RECORD").read_text()


@pytest.mark.slow
@pytest.mark.skipif(rt.find_uv() is None, reason="uv not installed (set ENVWATCHD_TEST_UV)")
def test_dist_info_uv_style_matches_real_uv(tmp_path: Path, wheel: Path) -> None:
    """uv's dist-info == dist_info(installer='uv', uv_cache=True) except the cache timestamp."""
    uv = rt.find_uv()
    assert uv is not None
    env = rt.isolated_env(tmp_path)
    py = rt.make_venv(tmp_path / "v", env=env)
    rt.uv_pip_install(uv, py, wheel, env=env)
    real = _tree(b.site_packages(tmp_path / "v"))
    direct = {"url": wheel.resolve().as_uri(), "archive_info": {}}
    built = _tree(
        b.dist_info(
            tmp_path / "b", "tinypkg", "1.0", installer="uv", uv_cache=True, direct_url=direct
        ).parent
    )
    assert real.keys() == built.keys()
    skip = {"tinypkg-1.0.dist-info/uv_cache.json", "tinypkg-1.0.dist-info/RECORD"}
    assert {k: v for k, v in real.items() if k not in skip} == {
        k: v for k, v in built.items() if k not in skip
    }
    real_keys = json.loads(real["tinypkg-1.0.dist-info/uv_cache.json"]).keys()
    assert list(real_keys) == list(json.loads(built["tinypkg-1.0.dist-info/uv_cache.json"]))


def test_venv_cfg_keys_match_real_venv(tmp_path: Path) -> None:
    """pyvenv() writes venv's keys in venv's order, and the real interpreter accepts it."""
    base = Path(rt.base_python())
    rt.make_venv(tmp_path / "real", python=base)
    fake = b.pyvenv(tmp_path / "fake", base.parent, "3.11.7", executable=base)

    def keys(p: Path) -> list[str]:
        return [ln.split(" = ")[0] for ln in (p / "pyvenv.cfg").read_text().splitlines()]

    assert keys(fake) == keys(tmp_path / "real")
    out = subprocess.run(
        [fake / "bin" / "python", "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(fake)


# Key order measured here: virtualenv 21.15.11 (--no-seed) and uv 0.13.9 `uv venv`.
MEASURED_CFG_KEYS = {
    "virtualenv": ["home", "implementation", "python-version", "version_info", "version",
                   "executable", "command", "virtualenv", "include-system-site-packages",
                   "base-prefix", "base-exec-prefix", "base-executable"],
    "uv": ["home", "implementation", "uv", "version_info", "include-system-site-packages"],
}  # fmt: skip


@pytest.mark.parametrize("flavour", list(MEASURED_CFG_KEYS))
def test_venv_cfg_keys_match_measured_tools(tmp_path: Path, flavour: str) -> None:
    """pyvenv(virtualenv=/uv=) writes the keys those tools wrote on this machine."""
    prefix = b.pyvenv(tmp_path / "v", "/opt/py/bin", "3.11.7", **{flavour: True})  # type: ignore[arg-type]
    lines = (prefix / "pyvenv.cfg").read_text().splitlines()
    assert [ln.split(" = ")[0] for ln in lines] == MEASURED_CFG_KEYS[flavour]
    assert (prefix / "bin" / "python").resolve().name == "python3"
    assert (b.site_packages(prefix)).is_dir()


# --------------------------------------------------------------------------- dpkg


def _stanza(status: Path, package: str) -> str:
    blocks = [blk for blk in status.read_text().split("\n\n") if f"Package: {package}\n" in blk]
    assert len(blocks) == 1, status.read_text()
    return blocks[0].strip("\n")


@needs_dpkg
@pytest.mark.parametrize(
    ("fmt", "multi_arch"), [("egg-info", None), ("dist-info", "same")], ids=["egg", "dist-ma"]
)
def test_dpkg_admin_matches_real_dpkg(tmp_path: Path, fmt: str, multi_arch: str | None) -> None:
    """dpkg_admin() == a real dpkg -i of the same files: stanza, .list, .md5sums, payload."""
    files = b.deb_python_files("tinydeb", "1.0", fmt=fmt)  # type: ignore[arg-type]
    arch = "amd64" if multi_arch else "all"
    pkg = b.DebPkg(
        "python3-tinydeb",
        "1.0-1",
        files,
        architecture=arch,
        multi_arch=multi_arch,
        source="tinydeb",
    )
    control = b.dpkg_fields(pkg, status=None)
    deb = rt.build_deb(tmp_path, pkg.package, pkg.version, files, control=control)
    rt.dpkg_install(tmp_path / "real", deb, force=("depends",))
    b.dpkg_admin(tmp_path / "fake", [pkg])
    real_admin = tmp_path / "real/var/lib/dpkg"
    fake_admin = tmp_path / "fake/var/lib/dpkg"
    assert _stanza(real_admin / "status", pkg.package) == _stanza(
        fake_admin / "status", pkg.package
    )
    for suffix in (".list", ".md5sums"):
        name = pkg.list_name + suffix
        assert (real_admin / "info" / name).read_text() == (fake_admin / "info" / name).read_text()
    assert _tree(tmp_path / "real/usr") == _tree(tmp_path / "fake/usr")
    if multi_arch:
        assert (fake_admin / "info" / "python3-tinydeb:amd64.list").exists()


@needs_dpkg
def test_real_dpkg_remove_clears_record(tmp_path: Path) -> None:
    """dpkg_remove() drops .list/.md5sums, the stanza and the payload of the fake root."""
    files = b.deb_python_files("tinydeb", "1.0", docs=False)
    deb = rt.build_deb(tmp_path, "python3-tinydeb", "1.0-1", files)
    rt.dpkg_install(tmp_path / "r", deb)
    rt.dpkg_remove(tmp_path / "r", "python3-tinydeb")
    admin = tmp_path / "r/var/lib/dpkg"
    assert not (admin / "info/python3-tinydeb.list").exists()
    assert "Package: python3-tinydeb\n" not in (admin / "status").read_text()
    assert not (tmp_path / "r/usr/lib/python3/dist-packages/tinydeb").exists()
    assert "remove python3-tinydeb:all 1.0-1 <none>" in (tmp_path / "r/dpkg.log").read_text()


def test_dpkg_orphan_record_has_no_payload(tmp_path: Path) -> None:
    """payload=False leaves a dpkg record whose listed files are absent (an orphan)."""
    files = b.deb_python_files("gone", "2.0")
    b.dpkg_admin(tmp_path, [b.DebPkg("python3-gone", "2.0-1", files)], payload=False)
    lst = (tmp_path / "var/lib/dpkg/info/python3-gone.list").read_text().splitlines()
    assert lst[0] == "/." and "/usr/lib/python3/dist-packages/gone" in lst
    assert not (tmp_path / "usr/lib/python3/dist-packages/gone").exists()


# --------------------------------------------------------------------------- other formats


def test_conda_env_record_shape(tmp_path: Path) -> None:
    """conda-meta JSON: rattler's key order, 0600, no final newline, hashes match payload."""
    prefix = b.conda_env(
        tmp_path / "env",
        [("numpy", "1.26.4", "py311h_0")],
        write_pkgs_cache=True,
        history=[("2017-10-12 00:00:51", "conda install numpy")],
    )
    path = prefix / "conda-meta" / "numpy-1.26.4-py311h_0.json"
    text = path.read_text()
    rec = json.loads(text)
    assert not text.endswith("\n") and path.stat().st_mode & 0o777 == 0o600
    assert list(rec) == [k for k in b._CONDA_KEY_ORDER if k != "noarch"]
    assert rec["build_number"] == 0 and rec["link"] == {
        "source": rec["extracted_package_dir"],
        "type": 1,
    }
    for entry in rec["paths_data"]["paths"]:
        assert (prefix / entry["_path"]).stat().st_size == entry["size_in_bytes"]
    assert (prefix / "bin/python3.11").stat().st_mode & 0o111
    assert (prefix / "conda-meta/history").read_text() == (
        "==> 2017-10-12 00:00:51 <==\n# cmd: conda install numpy\n"
    )
    assert (tmp_path / "env/pkgs/numpy-1.26.4-py311h_0/info/index.json").exists()
    assert "numpy-1.26.4-py311h_0.conda" in (tmp_path / "env/pkgs/urls.txt").read_text()


def test_conda_base_registers_envs(tmp_path: Path) -> None:
    """conda_base() makes base, envs/*, pkgs/ and lists every prefix in environments.txt."""
    base = b.conda_base(
        tmp_path / "mc", home=tmp_path / "home", envs={"ml": [("torch", "2.1.0", "py311_0")]}
    )
    listed = (tmp_path / "home/.conda/environments.txt").read_text().splitlines()
    assert listed == [str(base), str(base / "envs" / "ml")]
    assert (base / "conda-meta/conda-23.11.0-py311h06a4308_0.json").exists()


def test_easy_install_pth_classic_wrapper(tmp_path: Path) -> None:
    """old_setuptools eggs share one sys.__plen header/footer, paths in install order."""
    b.egg(tmp_path, "Foo", "1.0", old_setuptools=True)
    b.egg(tmp_path, "bar", "2.0", zipped=False, old_setuptools=True)
    lines = (tmp_path / "easy-install.pth").read_text().splitlines()
    assert lines[0] == "import sys; sys.__plen = len(sys.path)"
    assert lines[1:3] == ["./Foo-1.0-py3.11.egg", "./bar-2.0-py3.11.egg"]
    assert lines[3] == (  # setuptools < 25 PthDistributions.save, byte for byte
        "import sys; new=sys.path[sys.__plen:]; del sys.path[sys.__plen:];"
        " p=getattr(sys,'__egginsert',0); sys.path[p:p]=new; sys.__egginsert = p+len(new)"
    )


def test_egg_link_layout(tmp_path: Path) -> None:
    """setup.py develop: egg-link = '<project>\\n.', project path in easy-install.pth."""
    project = tmp_path / "src" / "proj"
    link = b.egg_link(tmp_path / "site", "My-Pkg", project)
    assert link.name == "My-Pkg.egg-link" and link.read_text() == f"{project}\n."
    assert str(project) in (tmp_path / "site/easy-install.pth").read_text().splitlines()


def test_apt_history_block_format(tmp_path: Path) -> None:
    """history.log blocks start with a blank line and use apt's '(old, new)' grammar."""
    path = b.apt_history(
        tmp_path,
        [
            {
                "start": "2025-06-24  14:36:25",
                "end": "2025-06-24  14:36:26",
                "commandline": "apt-get install python3-yaml",
                "install": [
                    ("python3-yaml:amd64", "6.0-3"),
                    ("libyaml-0-2:amd64", "0.2.5-1", "automatic"),
                ],
                "upgrade": [("python3-six:amd64", "1.15.0-1", "1.16.0-4")],
            }
        ],
    )
    assert path.read_text() == (
        "\nStart-Date: 2025-06-24  14:36:25\nCommandline: apt-get install python3-yaml\n"
        "Install: python3-yaml:amd64 (6.0-3), libyaml-0-2:amd64 (0.2.5-1, automatic)\n"
        "Upgrade: python3-six:amd64 (1.15.0-1, 1.16.0-4)\nEnd-Date: 2025-06-24  14:36:26\n"
    )


# --------------------------------------------------------------------------- second reader

STYLES: dict[str, dict[str, Any]] = {
    "pip": {},
    "uv": {"installer": "uv", "uv_cache": True},
    "poetry": {"installer": "Poetry 1.8.3", "requested": False},
    "conda": {"installer": "conda", "requested": False},
    "rpm": {"installer": "rpm\n", "record": False, "requested": False},
    "debian12": {"installer": None, "requested": False, "record": "hex", "top_level_txt": True},
    "stripped": {"installer": None, "record": False, "requested": False},
}


@pytest.mark.parametrize("style", list(STYLES))
def test_importlib_reads_dist_info_styles(tmp_path: Path, style: str) -> None:
    """importlib.metadata reads each style's dist-info; INSTALLER bytes are the tool's."""
    di = b.dist_info(tmp_path, "Some.Pkg", "2.0", **STYLES[style])
    assert di.name == "some_pkg-2.0.dist-info"
    (dist,) = im.distributions(path=[str(tmp_path)])
    assert (dist.metadata["Name"], dist.version) == ("Some.Pkg", "2.0")
    assert dist.read_text("INSTALLER") == STYLES[style].get("installer", "pip\n")
    if STYLES[style].get("record", True):
        assert dist.files is not None
        for f in dist.files:
            if f.hash is not None and style != "debian12":
                assert f.hash.value == b.record_hash(f.read_binary())[len("sha256=") :]


def _read(path: Path) -> list[tuple[str, str]]:
    return sorted((d.metadata["Name"], d.version) for d in im.distributions(path=[str(path)]))


def test_importlib_reads_legacy_formats(tmp_path: Path) -> None:
    """egg-info dir/file, zipped and unzipped eggs, egg-link projects, editables all read."""
    site = tmp_path / "site"
    b.egg_info_dir(site, "alpha", "1.0", installed_files=True)
    b.egg_info_file(site, "beta", "2.0")
    zipped = b.egg(site, "gamma", "3.0")
    unzipped = b.egg(site, "delta", "4.0", zipped=False, platform="linux-x86_64")
    b.editable_pep660(site, "epsilon", "5.0", tmp_path / "src" / "eps")
    b.egg_link(site, "zeta", tmp_path / "proj")
    assert _read(site) == [("alpha", "1.0"), ("beta", "2.0"), ("epsilon", "5.0")]
    assert _read(zipped) == [("gamma", "3.0")]
    assert _read(unzipped) == [("delta", "4.0")]
    assert _read(tmp_path / "proj") == [("zeta", "0.0.0")]
    (eps,) = im.distributions(path=[str(site)], name="epsilon")
    assert json.loads(eps.read_text("direct_url.json") or "")["dir_info"] == {"editable": True}
    pth = site / "__editable__.epsilon-5.0.pth"
    assert pth.read_text() == f"{tmp_path / 'src' / 'eps'}\n"
    installed = (site / "alpha-1.0-py3.11.egg-info/installed-files.txt").read_text().split()
    assert "../alpha/__init__.py" in installed and "PKG-INFO" in installed


def test_importlib_reads_conda_and_dpkg_payloads(tmp_path: Path) -> None:
    """conda payload (dist-info and old egg-info) and Debian payloads read as distributions."""
    b.conda_env(tmp_path / "c1", [("requests", "2.31.0", "pyhd8ed1ab_0")])
    b.conda_env(tmp_path / "c2", [("six", "1.10.0", "py27_0")], python_metadata="egg-info")
    pkgs = [
        b.DebPkg("python3-yaml", "6.0-3", b.deb_python_files("PyYAML", "6.0", fmt="dist-info")),
        b.DebPkg("python3-six", "1.16.0-4", b.deb_python_files("six", "1.16.0")),
    ]
    b.dpkg_admin(tmp_path / "root", pkgs)
    assert _read(b.site_packages(tmp_path / "c1")) == [("requests", "2.31.0")]
    assert _read(b.site_packages(tmp_path / "c2")) == [("six", "1.10.0")]
    deb_site = tmp_path / "root/usr/lib/python3/dist-packages"
    assert _read(deb_site) == [("PyYAML", "6.0"), ("six", "1.16.0")]


def test_make_machine_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/make_machine.py builds the asked number of copies; importlib reads them all."""
    spec = importlib.util.spec_from_file_location(
        "make_machine", Path(__file__).resolve().parents[1] / "bench" / "make_machine.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    lines: list[str] = []
    assert mod.main([str(tmp_path / "m"), "--dists", "400", "--envs", "12"], echo=lines.append) == 0
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert (manifest["dists"], manifest["envs"]) == (400, 12)
    legacy = {"egg", "egg-link"}
    for env in manifest["environments"]:
        found = list(im.distributions(path=env["site_dirs"]))
        entries = [n for s in env["site_dirs"] for n in os.listdir(s)]
        hidden = sum(1 for n in entries if n.rsplit(".", 1)[-1] in legacy)
        stashed = sum(1 for n in entries if n.startswith("~"))  # pip stash: not a copy
        assert len(found) + hidden - stashed == env["dists"], env["prefix"]
    assert {p["kind"] for p in manifest["planted"]} >= {
        "duplicate",
        "mixed-metadata",
        "orphaned-record",
        "foreign-overwrite",
        "file-collision",
    }
