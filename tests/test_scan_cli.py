"""`envwatchd scan`: the real command, on this machine's real trees and on hostile ones."""

from __future__ import annotations

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

PYENV_ROOT = Path("/root/.pyenv")
DEBIAN_DIST = Path("/usr/lib/python3/dist-packages")


def scan(
    *args: str, env: dict[str, str], user: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "envwatchd.cli", "scan", *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    # setpriv takes numeric ids for groups: pass "65534" (nobody/nogroup) as `user`
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def scan_json(*args: str, env: dict[str, str]) -> tuple[dict[str, Any], str, int]:
    out = scan("--json", *args, env=env)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout), out.stderr, out.returncode


def test_this_machine(tmp_path: Path) -> None:
    """Debian's dist-packages are apt's, pyenv's site-packages pip's, a real --user install
    is the user env's; untouched trees raise no warning or error."""
    env = rt.isolated_env(tmp_path)
    home = Path(env["HOME"])
    if PYENV_ROOT.is_dir():
        env["PYENV_ROOT"] = str(PYENV_ROOT)
    wheel = b.make_wheel(tmp_path / "w", "envwatch-probe", "1.0")
    rt.pip_user_install(rt.base_python(), home / ".local", wheel, env=env)
    doc, _err, code = scan_json(env=env)
    assert set(doc) == {"envs", "copies", "conflicts"}
    by_site: dict[str, list[dict[str, Any]]] = {}
    for copy in doc["copies"]:
        by_site.setdefault(copy["site"], []).append(copy)
    if DEBIAN_DIST.is_dir():
        debian = by_site[str(DEBIAN_DIST)]
        assert debian and all(c["manager"] == "apt" for c in debian)
        assert all(any("var/lib/dpkg/info/" in e for e in c["evidence"]) for c in debian)
    pyenv_site = Path(rt.base_python()).parent.parent / "lib/python3.11/site-packages"
    if PYENV_ROOT.is_dir():
        assert {c["manager"] for c in by_site[str(pyenv_site)]} == {"pip"}
    (probe,) = [c for c in doc["copies"] if c["name"] == "envwatch-probe"]
    assert probe["env"]["kind"] == "user" and probe["manager"] == "pip"
    assert probe["env"]["prefix"] == str(home / ".local")
    assert str(Path(rt.base_python()).parent / "python3.11") in probe["imported_by"] or any(
        "python3.11" in i for i in probe["imported_by"]
    )
    serious = [c for c in doc["conflicts"] if c["severity"] != "info"]
    assert serious == [] and code == 0


def _hostile_site(root: Path) -> Path:
    site = root / "usr/local/lib/python3.11/dist-packages"
    b.dist_info(site, "good", "1.0")
    b.dist_info(site, "noversion", "1.0", dirname="noversion.dist-info", metadata_name="noversion")
    meta = site / "noversion.dist-info/METADATA"
    meta.write_text("Metadata-Version: 2.1\nName: noversion\n")
    (site / "loop.dist-info").symlink_to(site / "loop.dist-info")
    (site / "broken-1.0.dist-info").symlink_to(root / "nowhere")
    bad = os.fsencode(site) + b"/bad\xff-1.0.dist-info"
    os.mkdir(bad)
    (site / "fifo-1.0.dist-info").mkdir()
    os.mkfifo(site / "fifo-1.0.dist-info/INSTALLER")
    (site / "trunc.egg-info").mkdir()
    (site / "trunc.egg-info/PKG-INFO").write_bytes(b"Metadata-Version: 1.1\nName: trunc\n")
    return site


def test_hostile_trees_warn_and_carry_on(fake_root_env: tuple[Path, dict[str, str]]) -> None:
    """Loops, broken links, invalid UTF-8, FIFOs, missing versions, bad conda JSON: one
    warning naming each path, the rest of the inventory complete, exit 0."""
    root, env = fake_root_env
    _hostile_site(root)
    conda = Path(env["HOME"]) / "miniconda3"
    b.conda_base(conda, [("okpkg", "1.0", "py_0")], python=None)
    (conda / "conda-meta/trunc-1.0-py_0.json").write_text('{"name": "trunc", "files": [')
    (conda / "conda-meta/deep-1.0-py_0.json").write_text("[" * 10000 + "]" * 10000)
    out = scan("--json", "--root", str(root), env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    names = {c["name"] for c in doc["copies"]}
    assert {"good", "okpkg", "bad-1-0"} - names == {"bad-1-0"}
    assert "good" in names and "okpkg" in names and "bad\udcff" in names
    for path in (
        "noversion.dist-info",
        "trunc.egg-info",
        "trunc-1.0-py_0.json",
        "deep-1.0-py_0.json",
        "fifo-1.0.dist-info",
    ):
        assert path in out.stderr, path
    assert "Traceback" not in out.stderr


def test_unreadable_site_dir_is_a_warning(tmp_path: Path) -> None:
    """A site dir the scanning user cannot read: warned about by name, scan goes on."""
    base = Path("/tmp") / f"ewscan-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    try:
        root, home = base / "root", base / "home"
        site = root / "usr/local/lib/python3.11/dist-packages"
        b.dist_info(site, "hidden", "1.0")
        b.dist_info(home / ".local/lib/python3.11/site-packages", "visible", "1.0")
        subprocess.run(["chown", "-R", "nobody:nogroup", str(base)], check=True)
        base.chmod(0o755)
        site.chmod(0o000)
        env = {"HOME": str(home), "PATH": os.environ["PATH"]}
        out = scan("--json", "--root", str(root), env=env, user="65534")
        assert out.returncode == 0, out.stderr
        names = {c["name"] for c in json.loads(out.stdout)["copies"]}
        assert "visible" in names and "hidden" not in names
        assert str(site) in out.stderr and "Permission denied" in out.stderr
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_dpkg_list_naming_missing_paths(fake_root_env: tuple[Path, dict[str, str]]) -> None:
    """A dpkg record whose files are gone is an orphaned-record error, not a crash."""
    root, env = fake_root_env
    pkg = b.DebPkg("python3-gone", "1.0-1", b.deb_python_files("gone", "1.0"))
    b.dpkg_admin(root, [pkg], payload=False)
    out = scan("--json", "--root", str(root), env=env)
    assert out.returncode == 1
    kinds = {(c["kind"], c["name"]) for c in json.loads(out.stdout)["conflicts"]}
    assert ("orphaned-record", "gone") in kinds


def test_human_output_groups_by_environment(fake_root_env: tuple[Path, dict[str, str]]) -> None:
    root, env = fake_root_env
    b.dist_info(root / "usr/local/lib/python3.11/dist-packages", "numpy", "1.26.4")
    out = scan("--root", str(root), env=env)
    assert out.returncode == 0
    assert f"local local  {root}/usr/local" in out.stdout
    assert "numpy" in out.stdout and "INSTALLER says pip" in out.stdout


@pytest.fixture
def fake_root_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    return root, {"HOME": str(home), "PATH": os.environ["PATH"]}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[notify]\nmin_severity = 'loud'\n", "notify.min_severity"),
        ("[watch]\nsettle_ms = -5\n", "watch.settle_ms"),
        ("[discovery]\nsurch_dirs = []\n", "discovery.surch_dirs"),
        ("not toml [", "config.toml"),
    ],
)
def test_bad_config_is_one_message_and_exit_2(tmp_path: Path, text: str, key: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    for sub in ("scan", "run"):
        out = subprocess.run(
            [sys.executable, "-m", "envwatchd.cli", sub, "--config", str(cfg)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 2, out.stderr
        assert key in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_config_from_environment_variable(tmp_path: Path) -> None:
    """ENVWATCHD_CONFIG names the file when --config is not given."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[watch]\nsettle_ms = 'x'\n")
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "ENVWATCHD_CONFIG": str(cfg)}
    out = subprocess.run(
        [sys.executable, "-m", "envwatchd.cli", "scan"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2 and "watch.settle_ms" in out.stderr
