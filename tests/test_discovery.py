"""Discovery finds every environment of contract §3 under a fake HOME and --root,
with the right kind, prefix, name, python version and site dirs."""

from __future__ import annotations

import os
from pathlib import Path

from envwatchd.config import Discovery
from envwatchd.discovery import Machine, discover
from envwatchd.model import Env, EnvKind
from tests import builders as b
from tests.conftest import FakeMachine


def _envs(fake: FakeMachine, **settings: object) -> dict[str, Env]:
    envs, problems = discover(fake.machine(**settings))
    assert problems == []
    return {e.prefix: e for e in envs}


def test_system_local_and_user(fake: FakeMachine) -> None:
    """Debian layout under --root: system (/usr), local (/usr/local), user (~/.local)."""
    b.dist_info(fake.root / "usr/lib/python3/dist-packages", "a", "1")
    (fake.root / "usr/lib/python3.11").mkdir(parents=True)
    (fake.root / "usr/lib/python3.11/EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    b.dist_info(fake.root / "usr/local/lib/python3.11/dist-packages", "b", "1")
    b.dist_info(fake.home / ".local/lib/python3.11/site-packages", "c", "1")
    envs = _envs(fake)
    system = envs[str(fake.root / "usr")]
    assert system.kind is EnvKind.SYSTEM and system.python_version == "3.11"
    assert system.site_dirs == (str(fake.root / "usr/lib/python3/dist-packages"),)
    assert system.externally_managed
    assert [i.executable for i in system.interpreters] == [str(fake.root / "usr/bin/python3.11")]
    local = envs[str(fake.root / "usr/local")]
    assert local.kind is EnvKind.LOCAL and local.externally_managed
    assert local.site_dirs == (str(fake.root / "usr/local/lib/python3.11/dist-packages"),)
    user = envs[str(fake.home / ".local")]
    assert (user.kind, user.name, user.python_version) == (EnvKind.USER, "user", "3.11")


def test_pythonuserbase_moves_the_user_site(fake: FakeMachine) -> None:
    base = fake.home / "elsewhere"
    b.dist_info(base / "lib/python3.11/site-packages", "c", "1")
    fake.environ["PYTHONUSERBASE"] = str(base)
    assert _envs(fake)[str(base)].kind is EnvKind.USER


def test_conda_everywhere(fake: FakeMachine) -> None:
    """Bases by name pattern, envs/*, ~/.conda/envs, environments.txt, /opt/conda, pkgs."""
    b.conda_base(fake.home / "miniforge3", envs={"ml": []}, python="3.11.7")
    b.conda_env(fake.home / ".conda/envs/side", [], python=None)
    far = fake.home / "projects/deep/nested/env"
    b.conda_env(far, [], python=None)
    b.conda_environments_txt(fake.home, [far])
    b.conda_base(fake.root / "opt/conda", python=None)
    envs = _envs(fake, search_dirs=[])
    kinds = {p: (e.kind, e.name) for p, e in envs.items()}
    assert kinds[str(fake.home / "miniforge3")] == (EnvKind.CONDA, "base")
    assert kinds[str(fake.home / "miniforge3/envs/ml")] == (EnvKind.CONDA, "ml")
    assert kinds[str(fake.home / ".conda/envs/side")] == (EnvKind.CONDA, "side")
    assert kinds[str(far)] == (EnvKind.CONDA, "env")
    assert kinds[str(fake.root / "opt/conda")] == (EnvKind.CONDA, "base")
    assert kinds[str(fake.home / "miniforge3/pkgs")] == (EnvKind.CONDA_PKGS, "pkgs")
    ml = envs[str(fake.home / "miniforge3/envs/ml")]
    assert ml.python_version == "3.11" and ml.conda_meta == str(
        fake.home / "miniforge3/envs/ml/conda-meta"
    )


def test_venv_homes(fake: FakeMachine) -> None:
    """pipx (kind pipx), uv tools, ~/.virtualenvs, $WORKON_HOME, poetry, pdm, hatch."""
    h = fake.home
    homes = {
        h / ".local/share/pipx/venvs/black": EnvKind.PIPX,
        h / ".local/share/uv/tools/ruff": EnvKind.VENV,
        h / ".virtualenvs/proj": EnvKind.VENV,
        h / "workon/w1": EnvKind.VENV,
        h / ".cache/pypoetry/virtualenvs/app-abc123-py3.11": EnvKind.VENV,
        h / ".local/share/pdm/venvs/app-x": EnvKind.VENV,
        h / ".local/share/hatch/env/virtual/app/abc": EnvKind.VENV,
    }
    for prefix in homes:
        b.pyvenv(prefix, "/usr/bin", "3.11.2")
    fake.environ["WORKON_HOME"] = str(h / "workon")
    envs = _envs(fake, search_dirs=[])
    for prefix, kind in homes.items():
        assert envs[str(prefix)].kind is kind, prefix
        assert envs[str(prefix)].site_dirs == (str(prefix / "lib/python3.11/site-packages"),)


def test_pyenv_versions(fake: FakeMachine) -> None:
    """~/.pyenv/versions/*: builds are pyenv, pyenv-virtualenvs venvs, conda installs conda."""
    versions = fake.home / ".pyenv/versions"
    b.dist_info(versions / "3.12.1/lib/python3.12/site-packages", "pip", "23.2.1")
    b.pyvenv(versions / "myvenv", str(versions / "3.12.1/bin"), "3.12.1")
    b.conda_env(versions / "miniconda3-latest", [], python=None)
    envs = _envs(fake, search_dirs=[])
    assert envs[str(versions / "3.12.1")].kind is EnvKind.PYENV
    assert envs[str(versions / "myvenv")].kind is EnvKind.VENV
    assert envs[str(versions / "miniconda3-latest")].kind is EnvKind.CONDA
    (interp,) = envs[str(versions / "3.12.1")].interpreters
    assert interp.executable == str(versions / "3.12.1/bin/python3.12")


def test_search_dirs_walk_depth_hidden_and_excludes(fake: FakeMachine) -> None:
    h = fake.home
    b.pyvenv(h / "code/app/.venv", "/usr/bin", "3.11.2")  # depth 3, .venv allowed
    b.pyvenv(h / "code/a/b/c/too-deep", "/usr/bin", "3.11.2")  # depth 5
    b.pyvenv(h / ".hidden/venv", "/usr/bin", "3.11.2")  # hidden: skipped
    b.pyvenv(h / "code/skipme", "/usr/bin", "3.11.2")
    envs = _envs(fake, exclude=[str(h / "code/skipme")])
    assert envs[str(h / "code/app/.venv")].name == "app"
    assert str(h / "code/a/b/c/too-deep") not in envs
    assert str(h / ".hidden/venv") not in envs
    assert str(h / "code/skipme") not in envs
    deeper = _envs(fake, search_depth=5)
    assert str(h / "code/a/b/c/too-deep") in deeper


def test_venv_with_system_site_pulls_in_its_base(fake: FakeMachine) -> None:
    """A venv admitting system site packages puts its base's site dirs on its path
    and makes sure the base prefix itself is inventoried."""
    base = fake.home / "opt/python3.12"
    (base / "lib/python3.12/site-packages").mkdir(parents=True)
    venv = fake.home / "v"
    b.pyvenv(venv, str(base / "bin"), "3.12.1", system_site=True)
    envs = _envs(fake, search_dirs=[str(fake.home)], search_depth=1)
    (interp,) = envs[str(venv)].interpreters
    assert interp.search_path == (
        str(venv / "lib/python3.12/site-packages"),
        str(fake.home / ".local/lib/python3.12/site-packages"),
        str(base / "lib/python3.12/site-packages"),
    )
    assert envs[str(base)].kind is EnvKind.OTHER


def test_missing_home_and_unreadable_environments_txt(tmp_path: Path) -> None:
    """A HOME that does not exist is not an error: discovery just finds less."""
    machine = Machine(str(tmp_path / "root"), str(tmp_path / "nohome"), {}, Discovery())
    envs, problems = discover(machine)
    assert problems == []
    assert {e.kind for e in envs} <= {EnvKind.SYSTEM, EnvKind.LOCAL, EnvKind.USER}


def test_fifo_in_place_of_environments_txt_does_not_hang(fake: FakeMachine) -> None:
    """A FIFO where conda's environments.txt should be: a warning, never a hang."""
    (fake.home / ".conda").mkdir()
    os.mkfifo(fake.home / ".conda/environments.txt")
    envs, problems = discover(fake.machine())
    assert [p.path for p in problems] == [str(fake.home / ".conda/environments.txt")]
    assert any(e.kind is EnvKind.SYSTEM for e in envs)
