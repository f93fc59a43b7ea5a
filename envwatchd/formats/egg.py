"""`.egg` distributions left by easy_install (a zip file or a directory).

`X-1.0-py3.11(-linux-x86_64).egg` names project and version, so the archive
is never opened. An egg is importable only through a path line in a .pth
file (easy-install.pth): the scanner matches that, not this parser.
"""

from __future__ import annotations

from envwatchd.formats import RawDist, SiteEntry
from envwatchd.formats.egg_info import split_egg_name
from envwatchd.model import Format, Problem

__all__ = ["parse"]


def parse(entry: SiteEntry) -> tuple[RawDist | None, list[Problem]]:
    name, version = split_egg_name(entry.name[: -len(".egg")])
    if version is None:
        return None, [Problem(entry.path, "egg name carries no version")]
    kind = "directory" if entry.is_dir else "zip file"
    return RawDist(
        display_name=name.replace("_", "-"),
        version=version,
        format=Format.EGG,
        path=entry.path,
        top_level=(name.replace("-", "_").lower(),),
        import_path=entry.path,
        fingerprint=str(entry.inode),
        extra_evidence=(f".egg {kind} (easy_install)",),
    ), []
