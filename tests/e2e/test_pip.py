"""pip for real (venv, --user, --target, --prefix, editable) against a running daemon.

Each test replays one part of the story with the outer interpreter's pip 23.2.1
driving the target (``pip --python``), offline (``--no-index``, local wheels).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import realtools
from tests.builders import make_wheel
from tests.daemon_harness import PYVER
from tests.e2e.harness import (
    E2EBox,
    Story,
    envwatch,
    pip_outer,
    pip_uninstall_on_path,
    run_shell,
    setuptools_wheels,
)

NAME = "tinypkg"

pytestmark = pytest.mark.slow  # real package managers and a real daemon


def links(box: E2EBox, *versions: str) -> Path:
    """One --find-links dir holding a wheel per version."""
    out = box.wheels / "links"
    for ver in versions:
        make_wheel(out, NAME, ver)
    return out


def test_pip_in_a_venv_install_upgrade_downgrade_reinstall_uninstall(start_story) -> None:
    """Every event kind, from pip's own transactions in a venv (checked with the real CLI)."""
    venv = None

    def prepare(box: E2EBox) -> None:
        nonlocal venv
        venv = box.home / "proj" / ".venv"
        box.venv(venv)

    s: Story = start_story(prepare)
    box, py = s.box, venv / "bin" / "python"
    found = links(box, "1.0", "2.0")
    s.one(
        lambda: box.install(py, found / f"{NAME}-1.0-py3-none-any.whl"),
        kind="install",
        name=NAME,
        version="1.0",
        manager="pip",
        env="venv",
    )
    s.one(
        lambda: box.install(py, "--find-links", found, f"{NAME}==2.0"),
        kind="upgrade",
        version="2.0",
        previous_version="1.0",
        manager="pip",
        previous_manager="pip",
    )
    s.one(
        lambda: box.install(py, "--find-links", found, f"{NAME}==1.0"),
        kind="downgrade",
        version="1.0",
        previous_version="2.0",
    )
    s.one(
        lambda: box.install(py, "--find-links", found, "--force-reinstall", f"{NAME}==1.0"),
        kind="replace",
        version="1.0",
        previous_version="1.0",
        manager="pip",
    )
    s.one(
        lambda: box.uninstall(py, NAME),
        kind="uninstall",
        version=None,
        previous_version="1.0",
        previous_manager="pip",
    )

    events = envwatch(box, "events", "--package", NAME)
    assert [e["kind"] for e in events] == [
        "install",
        "upgrade",
        "downgrade",
        "replace",
        "uninstall",
    ]
    assert {e["env"]["prefix"] for e in events} == {str(venv)}
    assert {e["origin"] for e in events} == {"live"}
    assert envwatch(box, "where", NAME)["copies"] == []


def test_pip_user_lands_in_the_user_env_and_every_interpreter_sees_it(start_story) -> None:
    """`pip install --user` (PYTHONUSERBASE = the box's ~/.local): env kind user, manager
    pip; the site dir (lib/python3.11) did not exist when the daemon started."""
    s: Story = start_story()
    box = s.box
    base = realtools.base_python()
    wheel = box.wheel(NAME, "1.0")
    event = s.one(
        lambda: realtools.pip_user_install(base, box.user_base, wheel, env=box.tools),
        kind="install",
        manager="pip",
        env="user",
    )
    assert event["site"] == str(box.user_site)

    where = envwatch(box, "where", NAME)
    (copy,) = where["copies"]
    system_python = str(box.root / "usr" / "bin" / f"python{PYVER}")
    assert system_python in copy["imported_by"]
    by_exe = {i["executable"]: i for i in where["interpreters"]}
    assert by_exe[system_python]["imported"] == copy["path"]

    env = box.env_with(PYTHONUSERBASE=str(box.user_base))
    s.one(
        lambda: realtools.run([base, "-m", "pip", "uninstall", "-y", NAME], env=env),
        kind="uninstall",
        previous_manager="pip",
        env="user",
    )


def test_pip_target_and_prefix_dirs_listed_in_extra_site_dirs(tmp_path: Path, start_story) -> None:
    """`pip --target DIR` and `pip --prefix P`: seen once the config lists them
    (kind "other"); --upgrade replaces, PYTHONPATH=site pip uninstall removes."""
    target = tmp_path / "home" / "vendor"
    prefix = tmp_path / "home" / "pfx"
    psite = prefix / "lib" / f"python{PYVER}" / "site-packages"

    def prepare(box: E2EBox) -> None:
        target.mkdir(parents=True)
        psite.mkdir(parents=True)

    s: Story = start_story(prepare, extra_site_dirs=[str(target), str(psite)])
    box = s.box
    w1, w2 = box.wheel(NAME, "1.0"), box.wheel(NAME, "2.0")
    t = s.one(
        lambda: pip_outer("install", "--no-index", "--target", target, w1, env=box.tools),
        kind="install",
        manager="pip",
        env="other",
    )
    assert t["site"] == str(target)
    s.one(
        lambda: pip_outer(
            "install", "--no-index", "--target", target, "--upgrade", w2, env=box.tools
        ),
        kind="upgrade",
        version="2.0",
        previous_version="1.0",
        env="other",
    )
    # pip --target --upgrade moves the new dist-info in but leaves tinypkg-1.0.dist-info
    # behind: two metadata dirs for one project in one dir, which the daemon must say.
    mixed = s.wait_conflict("mixed-metadata", NAME)
    assert sorted(c["version"] for c in mixed["copies"]) == ["1.0", "2.0"]
    (rm_stale,) = [r for r in mixed["remedy"] if r.startswith("rm ")]
    assert rm_stale.endswith(f"{NAME}-1.0.dist-info"), mixed["remedy"]
    # diff.py's documented rule: a stale metadata entry going away is a `replace`
    s.one(
        lambda: run_shell(rm_stale, box.tools),
        kind="replace",
        version="2.0",
        previous_version="2.0",
    )
    assert s.wait_conflict("mixed-metadata", NAME, resolved=True)["id"] == mixed["id"]
    p = s.one(
        lambda: pip_outer("install", "--no-index", "--prefix", prefix, w1, env=box.tools),
        kind="install",
        manager="pip",
        env="other",
    )
    assert p["site"] == str(psite)
    s.one(
        lambda: pip_uninstall_on_path(psite, NAME, box.tools),
        kind="uninstall",
        previous_version="1.0",
        env="other",
    )
    assert [c["site"] for c in s.copies(NAME)] == [str(target)]


PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "tinyed"
version = "0.1"

[tool.setuptools]
packages = ["tinyed"]
"""


def test_pip_editable_install_is_format_editable(start_story) -> None:
    """`pip install -e proj` (PEP 660, setuptools from virtualenv's embedded wheels
    through pip's build isolation, offline)."""
    venv = None

    def prepare(box: E2EBox) -> None:
        nonlocal venv
        venv = box.home / "work" / "venv"
        box.venv(venv)

    s: Story = start_story(prepare)
    box = s.box
    proj = box.tmp / "src" / "tinyed"
    (proj / "tinyed").mkdir(parents=True)
    (proj / "tinyed" / "__init__.py").write_text("X = 1\n")
    (proj / "pyproject.toml").write_text(PYPROJECT)
    event = s.one(
        lambda: box.install(
            venv / "bin" / "python", "--find-links", setuptools_wheels(), "-e", proj
        ),
        kind="install",
        name="tinyed",
        version="0.1",
        manager="pip",
        env="venv",
    )
    (copy,) = envwatch(box, "where", "tinyed")["copies"]
    assert copy["format"] == "editable", copy
    assert copy["path"] == event["path"]
    assert copy["imported_by"] == [str(venv / "bin" / "python")]


def test_remedy_for_a_target_dir_reinstalls_into_that_dir(tmp_path: Path, start_story) -> None:
    """The mixed-metadata remedy after `pip --target --upgrade` must act on DIR."""
    target = tmp_path / "home" / "vendor"
    s: Story = start_story(lambda box: target.mkdir(parents=True), extra_site_dirs=[str(target)])
    box = s.box
    for ver in ("1.0", "2.0"):
        pip_outer(
            "install",
            "--no-index",
            "--target",
            target,
            "--upgrade",
            box.wheel(NAME, ver),
            env=box.tools,
        )
    mixed = s.wait_conflict("mixed-metadata", NAME)
    pip_lines = [r for r in mixed["remedy"] if " pip " in r]
    assert pip_lines, mixed["remedy"]
    assert all(f"--target {target}" in r for r in pip_lines), pip_lines
