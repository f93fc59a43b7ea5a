"""`.pth` files, read as text and never executed.

site.py appends each existing path line to sys.path after the site dir that
holds the file; `import` lines are code we must not run. Two shapes matter:
easy-install.pth (egg and egg-link project paths; old setuptools wrapped them
in `sys.__egginsert` code that moves them to the FRONT of sys.path) and PEP
660's `__editable__.<name>-<version>.pth` (the project's source dirs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from envwatchd.formats._io import read_text
from envwatchd.model import Problem

__all__ = ["PthFile", "parse_pth"]


@dataclass(frozen=True, slots=True)
class PthFile:
    path: str
    entries: tuple[str, ...]
    egg_insert: bool
    editable_for: str | None


def parse_pth(site: str, name: str) -> tuple[PthFile | None, list[Problem]]:
    path = os.path.join(site, name)
    try:
        text = read_text(path, 1 << 20)
    except OSError as exc:
        return None, [Problem(path, f"cannot read .pth: {exc}")]
    entries: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(("import ", "import\t")):
            continue
        entries.append(os.path.normpath(os.path.join(site, line)))
    return PthFile(path, tuple(entries), "__egginsert" in text, _editable_name(name)), []


def _editable_name(name: str) -> str | None:
    """`__editable__.tinypkg-1.0.pth` -> `tinypkg` (setuptools' PEP 660 naming)."""
    if not name.startswith("__editable__."):
        return None
    stem = name[len("__editable__.") : -len(".pth")]
    return stem.split("-", 1)[0] or None
