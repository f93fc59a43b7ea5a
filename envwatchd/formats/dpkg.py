"""dpkg's admin dir: `status` (version and state) and `info/*.list` (file owners).

Only lines inside a `*-packages/` dir matter, and of those only the first
component below it: that is what a site-dir entry (metadata dir, module dir)
maps to. A .list is skipped without splitting when it names no such path, so
reading the ~500 lists of a desktop costs a few milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from envwatchd.formats._io import read_text
from envwatchd.model import Problem

__all__ = ["DpkgDb", "DpkgPackage", "read_dpkg"]


@dataclass(slots=True)
class DpkgPackage:
    name: str
    version: str
    installed: bool
    list_path: str
    entries: dict[str, set[str]] = field(default_factory=dict)


@dataclass(slots=True)
class DpkgDb:
    """Ownership index: (site dir, top-level entry name) -> package name."""

    admin_dir: str
    packages: dict[str, DpkgPackage] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    def owner(self, site: str, entry: str) -> DpkgPackage | None:
        pkg = self.owners.get((site, entry))
        return self.packages.get(pkg) if pkg else None


def read_dpkg(root: str, admin_dir: str = "var/lib/dpkg") -> tuple[DpkgDb | None, list[Problem]]:
    """Read `<root>/<admin_dir>`; None when there is no dpkg database there."""
    base = os.path.join(root, admin_dir)
    status_path = os.path.join(base, "status")
    if not os.path.isfile(status_path):
        return None, []
    problems: list[Problem] = []
    db = DpkgDb(base)
    try:
        states = _parse_status(read_text(status_path, 512 * 1024 * 1024))
    except OSError as exc:
        return None, [Problem(status_path, f"cannot read dpkg status: {exc}")]
    info = os.path.join(base, "info")
    try:
        lists = [n for n in os.listdir(info) if n.endswith(".list")]
    except OSError as exc:
        return db, [Problem(info, f"cannot list dpkg info dir: {exc.strerror or exc}")]
    for name in lists:
        pkg_name = name[: -len(".list")].split(":", 1)[0]
        version, installed = states.get(pkg_name, ("", False))
        pkg = DpkgPackage(pkg_name, version, installed, os.path.join(info, name))
        if _read_list(root, pkg, problems):
            db.packages[pkg_name] = pkg
            for site, tops in pkg.entries.items():
                for top in tops:
                    db.owners.setdefault((site, top), pkg_name)
    return db, problems


def _parse_status(text: str) -> dict[str, tuple[str, bool]]:
    out: dict[str, tuple[str, bool]] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" in fields:
            installed = fields.get("Status", "").endswith(" installed")
            out[fields["Package"]] = (fields.get("Version", ""), installed)
    return out


def _read_list(root: str, pkg: DpkgPackage, problems: list[Problem]) -> bool:
    try:
        data = read_text(pkg.list_path, 256 * 1024 * 1024)
    except OSError as exc:
        problems.append(Problem(pkg.list_path, f"cannot read dpkg list: {exc}"))
        return False
    if "-packages/" not in data:
        return False
    for line in data.splitlines():
        idx = line.find("-packages/")
        if idx < 0:
            continue
        site = root.rstrip("/") + line[: idx + 9] if root not in ("", "/") else line[: idx + 9]
        top = line[idx + 10 :].split("/", 1)[0]
        if top:
            pkg.entries.setdefault(site, set()).add(top)
    return True
