"""One parser per on-disk metadata format, and the table that routes names to them.

The table is the single source of truth for "is this site-dir entry package
metadata?": the scanner dispatches with it and the watcher filters raw
filesystem events with it, so the two cannot drift apart (syft's glob table).
Routing looks only at the entry's name: no stat, no open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from envwatchd.model import Format, Problem

__all__ = ["PARSERS", "RawDist", "SiteEntry", "classify", "is_metadata_name", "is_pth_name"]


@dataclass(frozen=True, slots=True)
class RawDist:
    """What one parser recognised in one site-dir entry, before manager inference.

    `has_record` covers RECORD (dist-info) and installed-files.txt (egg-info):
    the file list a Python installer leaves for its own uninstall.
    """

    display_name: str
    version: str
    format: Format
    path: str
    installer: str | None = None
    has_record: bool = False
    requested: bool = False
    editable: bool = False
    direct_url: str | None = None
    top_level: tuple[str, ...] = ()
    import_path: str | None = None
    fingerprint: str | None = None
    extra_evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SiteEntry:
    """A directory entry as the scanner saw it (from os.scandir, no extra stat)."""

    site: str
    name: str
    path: str
    is_dir: bool
    inode: int


Parser = Callable[[SiteEntry], tuple[RawDist | None, list[Problem]]]


def _suffix_table() -> list[tuple[str, Parser]]:
    from envwatchd.formats import dist_info, egg, egg_info, egg_link

    return [
        (".dist-info", dist_info.parse),
        (".egg-info", egg_info.parse),
        (".egg", egg.parse),
        (".egg-link", egg_link.parse),
    ]


PARSERS: list[tuple[str, Parser]] = []


def classify(name: str) -> Parser | None:
    """The parser for a site-dir entry name, or None when it is not metadata.

    Names starting with '~' are pip's uninstall stash (`~umpy-1.0.dist-info`):
    they still end in .dist-info but describe nothing installed.
    """
    if not PARSERS:
        PARSERS.extend(_suffix_table())
    if name.startswith("~"):
        return None
    for suffix, parser in PARSERS:
        if name.endswith(suffix):
            return parser
    return None


def is_metadata_name(name: str) -> bool:
    """True for names the watcher must treat as a package change."""
    return classify(name) is not None


def is_pth_name(name: str) -> bool:
    return name.endswith(".pth") and not name.startswith("~")
