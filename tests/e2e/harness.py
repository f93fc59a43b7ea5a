"""Shared pieces of the end-to-end suite: a Box with extra discovery settings, the
real `envwatch` CLI, bounded waits on conflicts, and one "step" idiom.

A step is: note the last event id, run a real tool, wait until exactly N new
events exist (and stay N through a quiet period), return them. Every check of a
story goes through what the daemon answers over its socket, never its internals.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import realtools
from tests.daemon_harness import PYVER, Box, DaemonProc, wait_for, wait_quiet

__all__ = [
    "BIN",
    "E2EBox",
    "Story",
    "envwatch",
    "pip_outer",
    "pip_uninstall_on_path",
    "setuptools_wheels",
]

BIN = Path(sys.executable).parent


def setuptools_wheels() -> Path:
    """virtualenv's embedded wheels: a setuptools >= 70 (bdist_wheel built in, no `wheel`
    dependency) that pip's build isolation can install offline with --find-links."""
    import virtualenv.seed.wheels.embed as embed

    return Path(embed.__file__).parent


@dataclass
class E2EBox(Box):
    """A Box whose config can also list extra site dirs, and whose fake root has a
    system python 3.11 (usr/lib/python3.11), so the system interpreter is known."""

    extra_site_dirs: list[str] = field(default_factory=list)
    system_python: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.system_python:
            (self.root / "usr" / "lib" / f"python{PYVER}").mkdir(parents=True, exist_ok=True)

    def write_config(self) -> None:
        super().write_config()
        if self.extra_site_dirs:
            text = self.config.read_text()
            dirs = json.dumps([str(d) for d in self.extra_site_dirs])
            text = text.replace("[discovery]\n", f"[discovery]\nextra_site_dirs = {dirs}\n", 1)
            self.config.write_text(text)

    @property
    def dist_packages(self) -> Path:
        return self.root / "usr" / "lib" / "python3" / "dist-packages"

    def env_with(self, **extra: str) -> dict[str, str]:
        return {**self.tools, **extra}


def pip_outer(*args: str | Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The outer interpreter's own pip, for `--target`/`--prefix` installs."""
    assert args[0] != "install" or {"--target", "--prefix"} & set(map(str, args)), args
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *map(str, args)]
    return realtools.run(cmd, env=env)


def pip_uninstall_on_path(site: Path, name: str, env: Mapping[str, str]) -> None:
    """`PYTHONPATH=SITE pip uninstall -y NAME` with the base (non-venv) python: what
    `sudo pip uninstall` does to whatever copy comes first on its path. (A venv's pip
    refuses copies outside its environment.)"""
    cmd = [realtools.base_python(), "-m", "pip", "uninstall", "-y", name]
    out = realtools.run(cmd, env={**env, "PYTHONPATH": str(site)})
    assert "Successfully uninstalled" in out.stdout, out.stdout + out.stderr


def envwatch(box: Box, *args: str, ok: Sequence[int] = (0,)) -> Any:
    """The real client: `envwatch CMD ... --json --socket SOCK`; returns the parsed JSON."""
    cmd = [str(BIN / "envwatch"), *args, "--json", "--socket", str(box.sock)]
    proc = subprocess.run(
        cmd, env=box.daemon_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode in ok, f"{cmd} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


class Story:
    """A running daemon on a box, driven one real command at a time."""

    def __init__(self, box: E2EBox, daemon: DaemonProc) -> None:
        self.box = box
        self.d = daemon
        self.mark = daemon.last_id()

    def step(
        self, action: Callable[[], object], count: int, *, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """Run `action` (a real tool); return exactly `count` new events."""
        action()
        events = self.d.wait_events(count, after=self.mark, timeout=timeout)
        if events:
            self.mark = max(e["id"] for e in events)
        return events

    def step_dpkg(self, action: Callable[[], object], **expect: Any) -> dict[str, Any]:
        """`one` for a dpkg transaction, tolerating the known extra same-version
        `replace` apt->apt that follows when a pass ran before dpkg wrote its status
        (test_dpkg.py::test_one_dpkg_install_is_one_event pins that bug)."""
        action()
        wait_for(
            lambda: [e for e in self.d.events() if e["id"] > self.mark], 20.0, what="a dpkg event"
        )
        wait_quiet(self.d, max(0.6, 6 * self.box.settle_ms / 1000))
        events = [e for e in self.d.events() if e["id"] > self.mark]
        first, rest = events[0], events[1:]
        assert all(_db_caught_up(first, e) for e in rest), events
        self.mark = max(e["id"] for e in events)
        got = {k: (first["env"]["kind"] if k == "env" else first[k]) for k in expect}
        assert got == expect, json.dumps(first, indent=1)
        return first

    def one(self, action: Callable[[], object], **expect: Any) -> dict[str, Any]:
        """A step that makes exactly one event, checked field by field (env: its kind)."""
        (event,) = self.step(action, 1)
        got = {k: (event["env"]["kind"] if k == "env" else event[k]) for k in expect}
        assert got == expect, json.dumps(event, indent=1)
        return event

    # -- conflicts ------------------------------------------------------------------

    def conflicts(self, include_all: bool = False) -> list[dict[str, Any]]:
        return self.d.conflicts(include_all)

    def wait_conflict(
        self, kind: str, name: str, *, resolved: bool = False, timeout: float = 15.0
    ) -> dict[str, Any]:
        """The conflict (kind, name), open or (resolved=True) resolved, within `timeout` s."""

        def probe() -> dict[str, Any] | None:
            for c in self.d.conflicts(True):
                if c["kind"] == kind and c["name"] == name and bool(c["resolved"]) == resolved:
                    return c
            return None

        state = "resolved" if resolved else "open"
        return wait_for(probe, timeout, what=f"{state} {kind} conflict for {name}")

    def open_kinds(self, name: str) -> set[str]:
        return {c["kind"] for c in self.conflicts() if c["name"] == name}

    def copies(self, name: str) -> list[dict[str, Any]]:
        result: dict[str, Any] = self.d.call("where", {"name": name})
        return list(result["copies"])

    def copy_at(self, name: str, site: Path | str) -> dict[str, Any]:
        (copy,) = [c for c in self.copies(name) if c["site"] == str(site)]
        return copy


def _db_caught_up(first: Mapping[str, Any], later: Mapping[str, Any]) -> bool:
    return (
        later["kind"] == "replace"
        and later["name"] == first["name"]
        and later["version"] == later["previous_version"] == first["version"]
        and later["manager"] == later["previous_manager"] == "apt"
    )


def run_shell(command: str, env: Mapping[str, str]) -> None:
    """Run a remedy line as a user would type it (sudo dropped: the box is ours)."""
    if command.startswith("sudo "):
        command = command[len("sudo ") :]
    realtools.run(["sh", "-c", command], env=dict(env))


def warnings_or_worse(conflicts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind, name) of the conflicts that count (info advisories such as an
    unused-pkgs-cache do not, as for `envwatch conflicts`' exit code)."""
    return [(c["kind"], c["name"]) for c in conflicts if c["severity"] != "info"]


__all__ += ["run_shell", "warnings_or_worse"]
