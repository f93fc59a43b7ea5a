"""virtualenv, uv and pipx for real: each makes its own environment, and pip or uv
installs into it; the daemon names the env kind and the manager from what lands on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import realtools
from tests.builders import make_wheel
from tests.e2e.harness import BIN, E2EBox, Story, envwatch

NAME = "tinypkg"

pytestmark = pytest.mark.slow  # real package managers and a real daemon


def uv_bin() -> str:
    """The uv that the `uv` test dependency installs next to this interpreter."""
    from uv import find_uv_bin

    return find_uv_bin()


def test_virtualenv_beside_venv_both_are_venvs_and_pip_is_the_manager(start_story) -> None:
    """`virtualenv V` (seeded offline from its embedded wheels) created live in
    ~/.virtualenvs, beside a `python -m venv`: both kind venv, pip the manager."""
    s: Story = start_story(lambda box: box.venv(box.home / "proj" / ".venv"))
    box = s.box
    venv_py = box.home / "proj" / ".venv" / "bin" / "python"
    venv_v = box.home / ".virtualenvs" / "tools"
    cmd = [BIN / "virtualenv", "--no-periodic-update", "--python", realtools.base_python()]
    seeded = s.step(lambda: realtools.run([*cmd, venv_v], env=box.tools), 2)
    assert {(e["kind"], e["name"], e["manager"], e["env"]["kind"]) for e in seeded} == {
        ("install", "pip", "pip", "venv"),
        ("install", "setuptools", "pip", "venv"),
    }
    assert {e["env"]["prefix"] for e in seeded} == {str(venv_v)}

    wheel = box.wheel(NAME, "1.0")
    for py in (venv_v / "bin" / "python", venv_py):
        s.one(lambda py=py: box.install(py, wheel), kind="install", manager="pip", env="venv")
    envs = {e["prefix"]: e for e in envwatch(box, "envs")}
    assert envs[str(venv_v)]["kind"] == envs[str(venv_py.parent.parent)]["kind"] == "venv"
    where = envwatch(box, "where", NAME)
    assert len(where["copies"]) == 2
    # two interpreters, one copy each: not a duplicate
    assert all(len(c["imported_by"]) == 1 for c in where["copies"])
    assert s.open_kinds(NAME) == set()


def test_uv_venv_and_uv_pip_install_are_manager_uv(start_story) -> None:
    """`uv venv` + `uv pip install --offline --no-index` (uv's default hard links into
    its cache): INSTALLER=uv -> manager uv; upgrade and uninstall by uv too."""
    uv = uv_bin()
    venv = None

    def prepare(box: E2EBox) -> None:
        nonlocal venv
        venv = box.home / "svc" / ".venv"
        realtools.run([uv, "venv", "--python", realtools.base_python(), venv], env=box.tools)

    s: Story = start_story(prepare)
    box, py = s.box, venv / "bin" / "python"
    links = box.wheels / "links"
    for ver in ("1.0", "2.0"):
        make_wheel(links, NAME, ver)
    uvpip = [uv, "pip", "install", "--offline", "--no-index", "--python", py, "--find-links", links]
    s.one(
        lambda: realtools.run([*uvpip, f"{NAME}==1.0"], env=box.tools),
        kind="install",
        manager="uv",
        env="venv",
    )
    s.one(
        lambda: realtools.run([*uvpip, f"{NAME}==2.0"], env=box.tools),
        kind="upgrade",
        version="2.0",
        previous_version="1.0",
        manager="uv",
        previous_manager="uv",
    )
    (copy,) = envwatch(box, "where", NAME)["copies"]
    assert copy["manager"] == "uv" and copy["env"]["kind"] == "venv"
    assert any("uv" in line for line in copy["evidence"]), copy["evidence"]
    s.one(
        lambda: realtools.run([uv, "pip", "uninstall", "--python", py, NAME], env=box.tools),
        kind="uninstall",
        previous_manager="uv",
    )


def pipx_env(box: E2EBox) -> dict[str, str]:
    """pipx's dirs in the box's HOME: the default ~/.local/share/pipx is what discovery
    watches (the daemon is not told PIPX_HOME)."""
    share = box.home / ".local" / "share"
    return box.env_with(
        PIPX_HOME=str(share / "pipx"),
        PIPX_BIN_DIR=str(box.home / ".local" / "bin"),
        PIPX_MAN_DIR=str(share / "man"),
        USE_EMOJI="0",
    )


def test_pipx_install_upgrade_uninstall_is_a_pipx_env(start_story) -> None:
    """`pipx install --pip-args=--no-index X.whl` (uv backend: uv sits next to pipx):
    a new env of kind pipx appears live, manager uv; `pipx uninstall` removes it."""
    s: Story = start_story()
    box = s.box
    env = pipx_env(box)
    pipx = [str(BIN / "pipx")]
    w1 = box.wheel("tinytool", "1.0", script=True)
    w2 = box.wheel("tinytool", "2.0", script=True)
    event = s.one(
        lambda: realtools.run([*pipx, "install", "--pip-args=--no-index", w1], env=env),
        kind="install",
        name="tinytool",
        version="1.0",
        env="pipx",
    )
    venv = Path(env["PIPX_HOME"]) / "venvs" / "tinytool"
    assert event["env"]["prefix"] == str(venv)
    backend = realtools.run([*pipx, "environment", "--value", "PIPX_RESOLVED_BACKEND"], env=env)
    assert event["manager"] == backend.stdout.strip()  # "uv": uv is installed next to pipx
    s.one(
        lambda: realtools.run([*pipx, "install", "--force", "--pip-args=--no-index", w2], env=env),
        kind="upgrade",
        name="tinytool",
        version="2.0",
        previous_version="1.0",
        env="pipx",
    )
    envs = {e["prefix"]: e for e in envwatch(box, "envs")}
    assert envs[str(venv)]["kind"] == "pipx"
    s.one(
        lambda: realtools.run([*pipx, "uninstall", "tinytool"], env=env),
        kind="uninstall",
        name="tinytool",
        previous_version="2.0",
        env="pipx",
    )
    assert envwatch(box, "where", "tinytool")["copies"] == []
