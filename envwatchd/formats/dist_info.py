"""`*.dist-info` directories (PEP 376/627, wheel installs).

Name and version come from the directory name; METADATA is opened only when
the name cannot tell (historical names with extra dashes, or a missing version).
One listing of the directory tells which of INSTALLER, RECORD, REQUESTED,
direct_url.json exist, so no file is stat-ed twice. RECORD is never read on
the scan path: file lists are needed only to confirm collision candidates.
"""

from __future__ import annotations

import json
import os

from envwatchd.formats import RawDist, SiteEntry
from envwatchd.formats._io import first_line, header, read_text, top_level
from envwatchd.model import Format, Problem

__all__ = ["parse", "read_record_paths", "split_name"]

_SUFFIX = ".dist-info"


def split_name(stem: str) -> tuple[str, str] | None:
    """`numpy-1.24.2` -> (numpy, 1.24.2); None when the name cannot tell."""
    name, sep, version = stem.partition("-")
    if not sep or not name or not version or "-" in version or not version[0].isdigit():
        return None
    return name, version


def parse(entry: SiteEntry) -> tuple[RawDist | None, list[Problem]]:
    problems: list[Problem] = []
    if not entry.is_dir:
        return None, [Problem(entry.path, "dist-info is not a directory")]
    try:
        names = set(os.listdir(entry.path))
    except OSError as exc:
        return None, [Problem(entry.path, f"cannot list dist-info: {exc.strerror or exc}")]
    parsed = split_name(entry.name[: -len(_SUFFIX)])
    if parsed is None:
        parsed = _from_metadata(entry.path, names, problems)
        if parsed is None:
            return None, problems
    display, version = parsed
    direct_url = _direct_url(entry.path, names, problems)
    editable = direct_url is not None and _is_editable(direct_url)
    return RawDist(
        display_name=display,
        version=version,
        format=Format.EDITABLE if editable else Format.DIST_INFO,
        path=entry.path,
        installer=_installer(entry.path, names, problems),
        has_record="RECORD" in names,
        requested="REQUESTED" in names,
        editable=editable,
        direct_url=direct_url,
        top_level=top_level(entry.path, names, display),
        fingerprint=_fingerprint(entry),
        extra_evidence=("uv_cache.json present (uv)",) if "uv_cache.json" in names else (),
    ), problems


def _fingerprint(entry: SiteEntry) -> str:
    """inode + mtime of the dist-info dir: a reinstall of the same version recreates
    the dir, and a filesystem may hand the freed inode number straight back (uv on
    ext4 does), so the inode alone would miss it."""
    try:
        return f"{entry.inode}:{os.stat(entry.path).st_mtime_ns}"
    except OSError:
        return str(entry.inode)


def _from_metadata(path: str, names: set[str], problems: list[Problem]) -> tuple[str, str] | None:
    if "METADATA" not in names:
        problems.append(Problem(path, "no version in the name and no METADATA"))
        return None
    try:
        text = read_text(f"{path}/METADATA", 64 * 1024)
    except OSError as exc:
        problems.append(Problem(path, f"cannot read METADATA: {exc}"))
        return None
    name, version = header(text, "Name"), header(text, "Version")
    if not name or not version:
        problems.append(Problem(path, "METADATA lacks Name or Version"))
        return None
    return name, version


def _installer(path: str, names: set[str], problems: list[Problem]) -> str | None:
    if "INSTALLER" not in names:
        return None
    try:
        return first_line(read_text(f"{path}/INSTALLER", 4096))
    except OSError as exc:
        problems.append(Problem(path, f"cannot read INSTALLER: {exc}"))
        return None


def _direct_url(path: str, names: set[str], problems: list[Problem]) -> str | None:
    if "direct_url.json" not in names:
        return None
    try:
        return read_text(f"{path}/direct_url.json", 64 * 1024)
    except OSError as exc:
        problems.append(Problem(path, f"cannot read direct_url.json: {exc}"))
        return None


def _is_editable(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    dir_info = data.get("dir_info") if isinstance(data, dict) else None
    return isinstance(dir_info, dict) and dir_info.get("editable") is True


def read_record_paths(path: str) -> frozenset[str] | None:
    """Relative paths listed in RECORD (for collision confirmation), None if absent."""
    try:
        text = read_text(os.path.join(path, "RECORD"), 64 * 1024 * 1024)
    except OSError:
        return None
    out = set()
    for line in text.splitlines():
        rel = line.split(",", 1)[0].strip().strip('"')
        if rel:
            out.add(rel)
    return frozenset(out)
