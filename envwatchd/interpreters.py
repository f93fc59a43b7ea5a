"""The ordered package dirs each interpreter searches, .pth files included.

Discovery gives each interpreter its site dirs in site.py's order; this adds
what the .pth files in those dirs append (eggs, egg-link projects, PEP 660
source dirs) right after their site dir, and the config's extra roots
(the PYTHONPATH case) in front. Old setuptools' easy-install.pth carries
`sys.__egginsert` code that moves its eggs before everything, PYTHONPATH
included — the reference story's sys.path shows exactly that.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace

from envwatchd.formats.pth import PthFile
from envwatchd.model import Interpreter

__all__ = ["expand"]


def expand(
    interp: Interpreter,
    pth_by_site: Mapping[str, Sequence[PthFile]],
    extra_roots: Sequence[str] = (),
) -> Interpreter:
    front: list[str] = []
    body: list[str] = list(extra_roots)
    for site in interp.search_path:
        body.append(site)
        for pth in sorted(pth_by_site.get(site, ()), key=lambda p: os.path.basename(p.path)):
            (front if pth.egg_insert else body).extend(pth.entries)
    seen: set[str] = set()
    ordered: list[str] = []
    for path in front + body:
        if path not in seen:
            seen.add(path)
            ordered.append(path)
    return replace(interp, search_path=tuple(ordered))
