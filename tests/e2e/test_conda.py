"""conda for real through py-rattler (no conda binary exists offline): a local file
channel of tiny noarch packages, linked into ~/miniconda3 (base) and its envs/.
Then the story's cross-manager moves: pip over a conda package, the user site
shadowing conda's base, conda's egg-info written beside pip's dist-info.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import realtools
from tests.builders import dist_stem, make_wheel, module_name, record_hash
from tests.daemon_harness import PYVER
from tests.e2e.harness import E2EBox, Story, envwatch, pip_outer, run_shell, warnings_or_worse
from tests.e2e.rattler_tool import conda_package

SP = "site-packages"

pytestmark = pytest.mark.slow  # real package managers and a real daemon


class Conda:
    """`conda install/remove` for one box: a channel, the base prefix, its pkgs cache.

    Each prefix remembers its requested specs, so `install`/`remove` solve the whole
    set as conda does, and rattler links or unlinks the difference."""

    def __init__(self, box: E2EBox) -> None:
        self.box = box
        self.channel = box.tmp / "channel"
        self.base = box.home / "miniconda3"
        self.pkgs = self.base / "pkgs"
        self.specs: dict[Path, dict[str, str]] = {}
        conda_package(
            self.channel, "python", "3.11.7", {}, build="fake_0", noarch="generic", depends=()
        )
        self.indexed = False

    def publish(self, name: str, version: str, meta: str = "dist-info") -> None:
        mod = module_name(name)
        files = {f"{SP}/{mod}/__init__.py": f"__version__ = {version!r}\n".encode()}
        if meta == "dist-info":
            di = f"{SP}/{dist_stem(name)}-{version}.dist-info"
            files[f"{di}/METADATA"] = (
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
            )
            files[f"{di}/INSTALLER"] = b"conda\n"
            # conda-forge's python packages keep the RECORD their pip build wrote: it is
            # what lets the real pip uninstall them (without it pip refuses)
            rows = [f"{p[len(SP) + 1 :]},{record_hash(b)},{len(b)}\n" for p, b in files.items()]
            files[f"{di}/RECORD"] = "".join([*rows, f"{di[len(SP) + 1 :]}/RECORD,,\n"]).encode()
        else:  # conda's old python packages: a flat egg-info file (PKG-INFO)
            files[f"{SP}/{name}-{version}-py{PYVER}.egg-info"] = (
                f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\n".encode()
            )
        conda_package(self.channel, name, version, files)
        self.indexed = False

    def _tool(self, *args: str | Path) -> None:
        cmd = [sys.executable, "-m", "tests.e2e.rattler_tool", *map(str, args)]
        realtools.run(cmd, env={**self.box.tools, "PYTHONPATH": str(Path(__file__).parents[2])})

    def _sync(self, prefix: Path) -> None:
        if not self.indexed:
            self._tool("index", self.channel)
            self.indexed = True
        specs = self.specs.setdefault(prefix, {"python": "python"})
        self._tool("install", prefix, self.pkgs, self.channel, *specs.values())

    def prefetch(self, *specs: str) -> None:
        """Fill base/pkgs before the daemon starts (`conda install --download-only`):
        rattler extracts every package there on first use, and a cache entry's RECORD-less
        dist-info is deferred ~2 s as "fresh" by the daemon, which would make its install
        event land in a later step of a story."""
        scratch = self.box.tmp / "prefetch"
        for spec in specs:
            self.specs[scratch] = {"python": "python", "x": spec}
            self._sync(scratch)

    def install(self, *specs: str, prefix: Path | None = None) -> None:
        prefix = prefix or self.base
        wanted = self.specs.setdefault(prefix, {"python": "python"})
        for spec in specs:
            wanted[spec.split("=")[0].split(" ")[0]] = spec
        self._sync(prefix)

    def remove(self, name: str, prefix: Path | None = None) -> None:
        prefix = prefix or self.base
        del self.specs[prefix][name]
        self._sync(prefix)

    @property
    def site(self) -> Path:
        return self.base / "lib" / f"python{PYVER}" / SP


def base_with(conda: Conda, *packages: tuple[str, str, str]) -> None:
    for name, version, meta in packages:
        conda.publish(name, version, meta)
    conda.install(*(f"{n}=={v}" for n, v, _ in packages))


def test_conda_install_upgrade_uninstall_and_a_new_env(start_story) -> None:
    """rattler links into base and into a new envs/ml: manager conda, env kind conda."""
    holder: dict[str, Conda] = {}

    def prepare(box: E2EBox) -> None:
        holder["c"] = conda = Conda(box)
        base_with(conda, ("tinyconda", "1.0", "dist-info"))
        conda.publish("tinyconda", "2.0")
        conda.publish("tinyextra", "0.1")
        conda.prefetch("tinyconda==2.0", "tinyextra==0.1")

    s: Story = start_story(prepare)
    conda, box = holder["c"], s.box
    envs = {e["prefix"]: e for e in envwatch(box, "envs")}
    assert envs[str(conda.base)]["kind"] == "conda"
    assert envs[str(conda.base)]["python_version"] == PYVER
    copies = envwatch(box, "where", "tinyconda")["copies"]
    (live,) = [c for c in copies if c["env"]["kind"] == "conda"]
    assert (live["manager"], live["version"], live["imported_by"]) == (
        "conda",
        "1.0",
        [str(conda.base / "bin" / f"python{PYVER}")],
    )
    # rattler extracted every package into base/pkgs too: cache copies, imported by nobody
    cached = sorted((c["version"], c["manager"]) for c in copies if c is not live)
    assert cached == [("1.0", "conda"), ("2.0", "conda")]
    assert all(
        c["env"]["kind"] == "conda-pkgs" and not c["imported_by"] for c in copies if c is not live
    )

    s.one(
        lambda: conda.install("tinyextra==0.1"),
        kind="install",
        name="tinyextra",
        manager="conda",
        env="conda",
    )
    s.one(
        lambda: conda.install("tinyconda==2.0"),
        kind="upgrade",
        name="tinyconda",
        version="2.0",
        previous_version="1.0",
        manager="conda",
        previous_manager="conda",
    )
    s.one(
        lambda: conda.remove("tinyextra"),
        kind="uninstall",
        name="tinyextra",
        previous_manager="conda",
    )
    ml = conda.base / "envs" / "ml"
    ev = s.one(
        lambda: conda.install("tinyconda==1.0", prefix=ml),
        kind="install",
        name="tinyconda",
        version="1.0",
        manager="conda",
        env="conda",
    )
    assert ev["env"] == {"kind": "conda", "prefix": str(ml), "name": "ml"}
    by_env = {
        p["env"]["prefix"]: p["version"]
        for p in envwatch(box, "packages", "--manager", "conda")
        if p["name"] == "tinyconda" and p["env"]["kind"] == "conda"
    }
    assert by_env == {str(conda.base): "2.0", str(ml): "1.0"}
    assert warnings_or_worse(envwatch(box, "conflicts")) == []


def test_pip_force_reinstall_over_a_conda_package_is_a_foreign_overwrite(start_story) -> None:
    """`pip install --force-reinstall` run by conda's base python: pip finds conda's
    copy on its path, uninstalls it by its RECORD, installs its own (INSTALLER=pip) while
    conda-meta still claims those paths. (The base here has no real interpreter: the
    base python with PYTHONPATH=<conda site> and --prefix <base> does what it would.)"""
    holder: dict[str, Conda] = {}

    def prepare(box: E2EBox) -> None:
        holder["c"] = conda = Conda(box)
        base_with(conda, ("tinyconda", "1.0", "dist-info"))

    s: Story = start_story(prepare)
    conda, box = holder["c"], s.box
    wheel = make_wheel(box.wheels / "w", "tinyconda", "1.0")
    pip = [
        realtools.base_python(),
        "-m",
        "pip",
        "install",
        "--no-index",
        "--force-reinstall",
        "--prefix",
        conda.base,
        wheel,
    ]
    env = box.env_with(PYTHONPATH=str(conda.site))

    def force_reinstall() -> None:
        out = realtools.run(pip, env=env)
        assert "Successfully uninstalled tinyconda-1.0" in out.stdout, out.stdout

    s.one(
        force_reinstall,
        kind="replace",
        version="1.0",
        manager="pip",
        previous_manager="conda",
        env="conda",
    )
    found = s.wait_conflict("foreign-overwrite", "tinyconda")
    assert found["severity"] == "error"
    assert "pip wrote it last" in found["message"]
    assert "conda install --force-reinstall -n base tinyconda" in found["remedy"][-1]
    (copy,) = found["copies"]
    assert copy["manager"] == "pip" and copy["env"]["prefix"] == str(conda.base)


@pytest.mark.xfail(
    strict=True,
    reason="LIMITATION: watchplan watches site dirs only (O(site dirs)); a rewrite INSIDE "
    "an existing dist-info (INSTALLER conda->pip, no top-level create/delete/rename) "
    "triggers no pass, so foreign-overwrite waits for the next restart or `envwatch rescan`",
)
def test_pip_rewriting_conda_metadata_in_place_is_noticed_live(start_story) -> None:
    """`pip install --prefix <base> --force-reinstall` when pip does not see conda's copy
    (not on its path): it writes the same dist-info dir in place, no uninstall first."""
    holder: dict[str, Conda] = {}

    def prepare(box: E2EBox) -> None:
        holder["c"] = conda = Conda(box)
        base_with(conda, ("tinyconda", "1.0", "dist-info"))

    s: Story = start_story(prepare)
    conda, box = holder["c"], s.box
    wheel = make_wheel(box.wheels / "w", "tinyconda", "1.0")
    pip_outer(
        "install", "--no-index", "--force-reinstall", "--prefix", conda.base, wheel, env=box.tools
    )
    assert (conda.site / "tinyconda-1.0.dist-info" / "INSTALLER").read_text() == "pip\n"
    s.wait_conflict("foreign-overwrite", "tinyconda", timeout=5)


def test_user_site_shadows_conda_base_then_pip_uninstall_user(start_story) -> None:
    """`pip install --user` of a newer copy: conda base's python imports ~/.local's copy
    first: a duplicate warning naming the winner; `pip uninstall` of it resolves it."""
    holder: dict[str, Conda] = {}

    def prepare(box: E2EBox) -> None:
        holder["c"] = conda = Conda(box)
        base_with(conda, ("tinyconda", "1.0", "dist-info"))

    s: Story = start_story(prepare)
    conda, box = holder["c"], s.box
    base_python = realtools.base_python()
    wheel = make_wheel(box.wheels / "w", "tinyconda", "2.0")
    s.one(
        lambda: realtools.pip_user_install(base_python, box.user_base, wheel, env=box.tools),
        kind="install",
        version="2.0",
        manager="pip",
        env="user",
    )
    dup = s.wait_conflict("duplicate", "tinyconda")
    assert dup["severity"] == "warning"
    user_copy = next(c for c in dup["copies"] if c["env"]["kind"] == "user")
    conda_copy = next(c for c in dup["copies"] if c["env"]["kind"] == "conda")
    assert f"imports tinyconda 2.0 in {box.user_site} (pip) [user site]" in dup["message"]
    conda_python = str(conda.base / "bin" / f"python{PYVER}")
    assert conda_python in user_copy["imported_by"]
    assert conda_python not in conda_copy["imported_by"]
    where = envwatch(box, "where", "tinyconda")
    (seen,) = [i for i in where["interpreters"] if i["executable"] == conda_python]
    assert seen["imported"] == user_copy["path"]
    assert seen["shadowed"] == [conda_copy["path"]]

    env = box.env_with(PYTHONUSERBASE=str(box.user_base))
    s.one(
        lambda: realtools.run([base_python, "-m", "pip", "uninstall", "-y", "tinyconda"], env=env),
        kind="uninstall",
        previous_manager="pip",
        env="user",
    )
    resolved = s.wait_conflict("duplicate", "tinyconda", resolved=True)
    assert resolved["id"] == dup["id"]
    every = envwatch(box, "conflicts", "--all")
    assert [c["resolved"] for c in every if c["id"] == dup["id"]] == [resolved["resolved"]]


def test_conda_egg_info_beside_pip_dist_info_is_mixed_metadata(start_story) -> None:
    """The story's numpy: pip's dist-info first, then `conda install` writes its
    egg-info (and module) beside it; following the remedy's `rm` resolves it."""
    holder: dict[str, Conda] = {}

    def prepare(box: E2EBox) -> None:
        holder["c"] = conda = Conda(box)
        base_with(conda)  # python only
        conda.publish("tinyegg", "1.0", meta="egg-info")
        conda.prefetch("tinyegg==1.0")

    s: Story = start_story(prepare)
    conda, box = holder["c"], s.box
    wheel = make_wheel(box.wheels / "w", "tinyegg", "1.0")
    s.one(
        lambda: pip_outer("install", "--no-index", "--prefix", conda.base, wheel, env=box.tools),
        kind="install",
        manager="pip",
        env="conda",
    )
    # one distribution (site, name) gains a metadata entry: `replace`, told by its
    # representative (diff.py: dist-info before egg-info at equal versions), pip's
    s.one(lambda: conda.install("tinyegg==1.0"), kind="replace", version="1.0")
    mixed = s.wait_conflict("mixed-metadata", "tinyegg")
    assert mixed["severity"] == "warning"
    assert sorted(c["format"] for c in mixed["copies"]) == ["dist-info", "egg-info"]
    (rm,) = [r for r in mixed["remedy"] if r.startswith("rm ")]
    assert rm.endswith("tinyegg-1.0.dist-info"), mixed["remedy"]
    s.one(lambda: run_shell(rm, box.tools), kind="replace", manager="conda")
    s.wait_conflict("mixed-metadata", "tinyegg", resolved=True)
    assert warnings_or_worse(envwatch(box, "conflicts")) == []
