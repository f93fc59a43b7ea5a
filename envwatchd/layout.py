"""Interpreter layouts: which site dirs a prefix has and in what order its
python searches them. Pure path arithmetic plus `isdir`, no imports of Python.

Debian patches site.py: `/usr/local/lib/pythonX.Y/dist-packages` comes before
`/usr/lib/python3/dist-packages`, and site-packages dirs are not searched.
Everyone else searches `<prefix>/lib{,64}/pythonX.Y/site-packages`.
"""

from __future__ import annotations

import os
import re

__all__ = ["Roots", "debian_style", "prefix_site_dirs", "python_versions", "system_search_path"]

_PYDIR = re.compile(r"^python(\d+\.\d+)$")


class Roots:
    """Re-roots system paths under `--root DIR` (like `dpkg --root`)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root) if root and root != "/" else ""

    def __call__(self, path: str) -> str:
        return self.root + path if self.root else path


def python_versions(*libdirs: str) -> list[str]:
    """Versions named by `pythonX.Y` entries of the given lib dirs, sorted."""
    found: set[str] = set()
    for libdir in libdirs:
        try:
            names = os.listdir(libdir)
        except OSError:
            continue
        for name in names:
            match = _PYDIR.match(name)
            if match:
                found.add(match.group(1))
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def prefix_site_dirs(prefix: str, version: str) -> list[str]:
    """`<prefix>/lib/pythonX.Y/site-packages` and a distinct lib64 twin."""
    lib = os.path.join(prefix, "lib", f"python{version}", "site-packages")
    out = [lib]
    lib64 = os.path.join(prefix, "lib64", f"python{version}", "site-packages")
    if os.path.isdir(lib64) and os.path.realpath(lib64) != os.path.realpath(lib):
        out.append(lib64)
    return out


def debian_style(r: Roots, version: str) -> bool:
    return any(
        os.path.isdir(r(p))
        for p in (
            "/usr/lib/python3/dist-packages",
            f"/usr/lib/python{version}/dist-packages",
            f"/usr/local/lib/python{version}/dist-packages",
        )
    )


def system_search_path(r: Roots, version: str) -> list[str]:
    """The site dirs /usr/bin/pythonX.Y searches, in order (user site excluded)."""
    if debian_style(r, version):
        out = [r(f"/usr/local/lib/python{version}/dist-packages")]
        if version.startswith("3"):
            out.append(r("/usr/lib/python3/dist-packages"))
        out.append(r(f"/usr/lib/python{version}/dist-packages"))
        return out
    return [
        r(f"/usr/local/lib/python{version}/site-packages"),
        r(f"/usr/local/lib64/python{version}/site-packages"),
        r(f"/usr/lib64/python{version}/site-packages"),
        r(f"/usr/lib/python{version}/site-packages"),
    ]
