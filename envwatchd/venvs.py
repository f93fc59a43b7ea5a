"""Virtual environments: pyvenv.cfg, and the bounded walk that finds them.

pyvenv.cfg is the one file every venv tool writes (venv, virtualenv, uv,
pipx, poetry, hatch, pdm); its `home` names the base interpreter's bin dir
and `include-system-site-packages` decides whether the base's site dirs (and
the user site) are on the venv's path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from envwatchd.formats._io import read_text
from envwatchd.layout import python_versions
from envwatchd.model import Problem

__all__ = ["VenvInfo", "legacy_marker", "read_legacy_virtualenv", "read_pyvenv", "walk_for_envs"]

_VERSION = re.compile(r"^(\d+)\.(\d+)")
_SKIP = {"node_modules", "__pycache__", "site-packages", "dist-packages", "proc", "sys"}
_HIDDEN_OK = {".venv", ".virtualenvs", ".conda", ".pyenv"}


@dataclass(frozen=True, slots=True)
class VenvInfo:
    prefix: str
    version: str
    home: str
    base_prefix: str
    system_site: bool
    tool: str


def read_pyvenv(prefix: str, problems: list[Problem]) -> VenvInfo | None:
    path = os.path.join(prefix, "pyvenv.cfg")
    try:
        text = read_text(path, 64 * 1024)
    except OSError as exc:
        if os.path.lexists(path):
            problems.append(Problem(path, f"cannot read pyvenv.cfg: {exc}"))
            return None
        return read_legacy_virtualenv(prefix)
    cfg: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip().lower()] = value.strip()
    version = _version(cfg, prefix)
    if version is None:
        problems.append(Problem(path, "pyvenv.cfg names no Python version"))
        return None
    home = cfg.get("home", "")
    base = cfg.get("base-prefix") or (os.path.dirname(home.rstrip("/")) if home else "")
    tool = "uv" if "uv" in cfg else "virtualenv" if "virtualenv" in cfg else "venv"
    system = cfg.get("include-system-site-packages", "false").lower() == "true"
    return VenvInfo(prefix, version, home, base, system, tool)


def legacy_marker(prefix: str) -> str | None:
    """virtualenv < 20 wrote no pyvenv.cfg, but `lib/pythonX.Y/orig-prefix.txt`."""
    for version in python_versions(os.path.join(prefix, "lib")):
        marker = os.path.join(prefix, "lib", f"python{version}", "orig-prefix.txt")
        if os.path.isfile(marker):
            return marker
    return None


def read_legacy_virtualenv(prefix: str) -> VenvInfo | None:
    marker = legacy_marker(prefix)
    if marker is None:
        return None
    libdir = os.path.dirname(marker)
    version = os.path.basename(libdir)[len("python") :]
    try:
        base = read_text(marker, 4096).strip()
    except OSError:
        base = ""
    system = not os.path.exists(os.path.join(libdir, "no-global-site-packages.txt"))
    return VenvInfo(prefix, version, os.path.join(base, "bin"), base, system, "virtualenv")


def _version(cfg: dict[str, str], prefix: str) -> str | None:
    for key in ("version_info", "version", "python-version"):
        match = _VERSION.match(cfg.get(key, ""))
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    vers = python_versions(os.path.join(prefix, "lib"))
    return vers[-1] if vers else None


def walk_for_envs(
    top: str, depth: int, excluded: Callable[[str], bool], problems: list[Problem]
) -> Iterator[tuple[str, bool]]:
    """Yield (prefix, is_conda) for dirs holding pyvenv.cfg or conda-meta/.

    Hidden dirs are skipped except `.venv` and the known homes; an env's own
    tree is not descended into; symlinked dirs are not followed (loops).
    """
    stack = [(top, 0)]
    while stack:
        path, level = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as exc:
            if os.path.lexists(path):  # an env below an unreadable dir is invisible: say so
                problems.append(Problem(path, f"cannot search for environments: {exc.strerror}"))
            continue
        names = {e.name for e in entries}
        if "pyvenv.cfg" in names or "conda-meta" in names:
            yield path, "conda-meta" in names and "pyvenv.cfg" not in names
            continue
        if "lib" in names and "bin" in names and legacy_marker(path):
            yield path, False
            continue
        if level >= depth:
            continue
        for entry in sorted(entries, key=lambda e: e.name, reverse=True):
            if _descend(entry, excluded):
                stack.append((entry.path, level + 1))


def _descend(entry: os.DirEntry[str], excluded: Callable[[str], bool]) -> bool:
    name = entry.name
    if name in _SKIP or (name.startswith(".") and name not in _HIDDEN_OK):
        return False
    try:
        return entry.is_dir(follow_symlinks=False) and not excluded(entry.path)
    except OSError:
        return False
