"""`.egg-link` files: legacy editable installs (`setup.py develop`, old `pip install -e`).

The first line is the project directory, which holds `<name>.egg-info`; that
directory is what lands on sys.path (through easy-install.pth).
"""

from __future__ import annotations

import os

from envwatchd.formats import RawDist, SiteEntry
from envwatchd.formats._io import first_line, header, read_text
from envwatchd.model import Format, Problem

__all__ = ["parse"]


def parse(entry: SiteEntry) -> tuple[RawDist | None, list[Problem]]:
    problems: list[Problem] = []
    try:
        target = first_line(read_text(entry.path, 64 * 1024))
    except OSError as exc:
        return None, [Problem(entry.path, f"cannot read egg-link: {exc}")]
    name = entry.name[: -len(".egg-link")]
    if not target:
        return None, [Problem(entry.path, "empty egg-link")]
    version = _project_version(target, problems) or "0"
    return RawDist(
        display_name=name,
        version=version,
        format=Format.EGG_LINK,
        path=entry.path,
        editable=True,
        top_level=(name.replace("-", "_").lower(),),
        import_path=os.path.normpath(target),
        fingerprint=str(entry.inode),
        extra_evidence=(f"legacy editable (.egg-link) pointing to {target}",),
    ), problems


def _project_version(project: str, problems: list[Problem]) -> str | None:
    try:
        infos = [n for n in os.listdir(project) if n.endswith(".egg-info")]
    except OSError as exc:
        problems.append(Problem(project, f"egg-link target unreadable: {exc.strerror or exc}"))
        return None
    for info in sorted(infos):
        pkg_info = os.path.join(project, info, "PKG-INFO")
        try:
            version = header(read_text(pkg_info, 64 * 1024), "Version")
        except OSError:
            continue
        if version:
            return version
    problems.append(Problem(project, "egg-link target has no readable egg-info"))
    return None
