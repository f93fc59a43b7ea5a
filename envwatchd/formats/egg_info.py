"""`*.egg-info`: setuptools directories and distutils' flat files.

`X-1.0-py3.11.egg-info` names project and version; `X.egg-info` (Debian's
cryptography, `setup.py develop` trees) names only the project, so PKG-INFO is
read for the version. A flat file is PKG-INFO itself: distutils' `setup.py
install` left it, and pip can't uninstall it (no file list).
"""

from __future__ import annotations

import os

from envwatchd.formats import RawDist, SiteEntry
from envwatchd.formats._io import header, read_text, top_level
from envwatchd.model import Format, Problem

__all__ = ["parse", "read_installed_files", "split_egg_name"]

_FLAT = "flat .egg-info file (distutils setup.py install)"


def split_egg_name(stem: str) -> tuple[str, str | None]:
    """`numpy-1.13.3-py2.7` -> (numpy, 1.13.3); `cryptography` -> (cryptography, None).

    Egg names escape '-' in the project name as '_', so the first dash ends it.
    """
    parts = stem.split("-")
    if len(parts) >= 2 and parts[1][:1].isdigit():
        return parts[0], parts[1]
    return parts[0], None


def parse(entry: SiteEntry) -> tuple[RawDist | None, list[Problem]]:
    problems: list[Problem] = []
    name, version = split_egg_name(entry.name[: -len(".egg-info")])
    names: set[str] = set()
    if entry.is_dir:
        try:
            names = set(os.listdir(entry.path))
        except OSError as exc:
            problems.append(Problem(entry.path, f"cannot list egg-info: {exc.strerror or exc}"))
    if version is None:
        pkg_info = os.path.join(entry.path, "PKG-INFO") if entry.is_dir else entry.path
        version = _version_from(pkg_info, problems)
        if version is None:
            return None, problems
    return RawDist(
        display_name=name.replace("_", "-"),
        version=version,
        format=Format.EGG_INFO,
        path=entry.path,
        installer=None,
        has_record="installed-files.txt" in names,
        top_level=top_level(entry.path, names, name),
        fingerprint=str(entry.inode),
        extra_evidence=()
        if entry.is_dir
        else ("flat .egg-info file (distutils setup.py install)",),
    ), problems


def _version_from(pkg_info: str, problems: list[Problem]) -> str | None:
    try:
        text = read_text(pkg_info, 64 * 1024)
    except OSError as exc:
        problems.append(Problem(pkg_info, f"cannot read PKG-INFO: {exc}"))
        return None
    version = header(text, "Version")
    if not version:
        problems.append(Problem(pkg_info, "PKG-INFO has no Version"))
    return version


def read_installed_files(path: str) -> frozenset[str] | None:
    """installed-files.txt entries relative to the site dir, None when absent."""
    try:
        text = read_text(os.path.join(path, "installed-files.txt"), 64 * 1024 * 1024)
    except OSError:
        return None
    site = os.path.dirname(path)
    out = set()
    for line in text.splitlines():
        line = line.strip()
        if line:
            out.add(os.path.relpath(os.path.normpath(os.path.join(path, line)), site))
    return frozenset(out)
