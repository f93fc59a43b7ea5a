"""The interpreter view agrees with real interpreters: the ordered package dirs we
compute for an env equal the site dirs in the real `sys.path`, and the copy we say
wins is the one `import` really loads."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from envwatchd.config import Discovery
from envwatchd.discovery import Machine
from envwatchd.inventory import Scanner
from envwatchd.layout import Roots, system_search_path
from envwatchd.model import EnvKind, Inventory
from tests import builders as b
from tests import realtools as rt

DEBIAN_PY = Path("/usr/bin/python3.11")


def _sys_path(python: str | Path, env: dict[str, str]) -> list[str]:
    code = "import json, sys; print(json.dumps(sys.path))"
    out = subprocess.run(
        [str(python), "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return [p for p in json.loads(out.stdout) if p.endswith(("-packages",)) or ".egg" in p]


def _scan(home: Path, env: dict[str, str], search: Path) -> Inventory:
    machine = Machine("", str(home), env, Discovery(search_dirs=[str(search)]))
    return Scanner(machine).full_scan()


def _interp(inv: Inventory, executable: Path) -> list[str]:
    for e in inv.envs:
        for i in e.interpreters:
            if i.executable == str(executable):
                return [p for p in i.search_path if os.path.isdir(p)]
    raise AssertionError(f"{executable} not discovered")


@pytest.mark.parametrize("system_site", [False, True])
def test_venv_search_path_matches_real_sys_path(tmp_path: Path, system_site: bool) -> None:
    """A real venv, with and without --system-site-packages, and an existing user site."""
    env = rt.isolated_env(tmp_path)
    home = Path(env["HOME"])
    user_site = home / ".local/lib/python3.11/site-packages"
    user_site.mkdir(parents=True)
    venv = tmp_path / "work" / "v"
    python = rt.make_venv(venv, system_site=system_site)
    inv = _scan(home, env, tmp_path / "work")
    assert _interp(inv, venv / "bin/python") == _sys_path(python, env)


def test_duplicate_winner_matches_real_import(tmp_path: Path) -> None:
    """`pip install --user` of a wheel also installed in a --system-site-packages venv:
    the winner we report is the copy the real interpreter imports (the venv's own)."""
    env = rt.isolated_env(tmp_path)
    home = Path(env["HOME"])
    wheels = tmp_path / "wheels"
    w1, w2 = b.make_wheel(wheels, "shadowpkg", "1.0"), b.make_wheel(wheels, "shadowpkg", "2.0")
    venv = tmp_path / "work" / "v"
    python = rt.make_venv(venv, system_site=True)
    rt.pip_install(python, w1, env=env)
    rt.pip_user_install(rt.base_python(), home / ".local", w2, env=env)
    real = subprocess.run(
        [str(python), "-c", "import shadowpkg; print(shadowpkg.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    inv = _scan(home, env, tmp_path / "work")
    winners = [c for c in inv.copies if c.name == "shadowpkg" and str(python) in c.imported_by]
    assert len(winners) == 1
    assert real.startswith(winners[0].site + "/")
    assert winners[0].env.kind is EnvKind.VENV and winners[0].version == "1.0"
    from envwatchd.conflicts import evaluate

    dup = [c for c in evaluate(inv) if c.kind.value == "duplicate" and c.name == "shadowpkg"]
    assert dup and dup[0].severity.value == "warning"


@pytest.mark.skipif(not DEBIAN_PY.exists(), reason="needs Debian's /usr/bin/python3.11")
def test_debian_python_search_path(tmp_path: Path) -> None:
    """Debian's patched site.py: /usr/local/lib/python3.11/dist-packages before
    /usr/lib/python3/dist-packages, and no site-packages."""
    env = rt.isolated_env(tmp_path)
    real = [p for p in _sys_path(DEBIAN_PY, env) if os.path.isdir(p)]
    ours = [p for p in system_search_path(Roots(""), "3.11") if os.path.isdir(p)]
    assert ours == real


def test_pyenv_python_search_path(tmp_path: Path) -> None:
    """A pyenv-built interpreter searches its own site-packages (user site when present)."""
    python = Path(rt.base_python())
    env = rt.isolated_env(tmp_path)
    home = Path(env["HOME"])
    (home / ".local/lib/python3.11/site-packages").mkdir(parents=True)
    prefix = python.parent.parent
    venv = tmp_path / "work" / "v"
    rt.make_venv(venv, system_site=True)  # makes the base prefix discovered through pyvenv.cfg
    inv = _scan(home, env, tmp_path / "work")
    exe = next(i.executable for e in inv.envs if e.prefix == str(prefix) for i in e.interpreters)
    assert _interp(inv, Path(exe)) == _sys_path(python, env)
