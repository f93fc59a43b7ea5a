"""The rpm database, through ONE batched `rpm -qa` query (never one process per file).

Used only where an `rpm` binary and an rpmdb exist under the root. The output
is reduced to the same (site dir, top-level entry) -> package index as dpkg's.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from envwatchd.formats.dpkg import DpkgDb, DpkgPackage
from envwatchd.model import Problem

__all__ = ["read_rpm"]

# `=` repeats a scalar tag on every line of the FILENAMES iteration (without it rpm
# refuses: "array iterator used with different sized arrays")
_QUERY = "[%{=NAME}\t%{=VERSION}-%{=RELEASE}\t%{FILENAMES}\n]"
_DB_DIRS = ("var/lib/rpm", "usr/lib/sysimage/rpm")


def read_rpm(root: str, timeout: float = 60.0) -> tuple[DpkgDb | None, list[Problem]]:
    rpm = shutil.which("rpm")
    dbdir = next((d for d in _DB_DIRS if os.path.isdir(os.path.join(root, d))), None)
    if rpm is None or dbdir is None:
        return None, []
    try:
        out = subprocess.run(
            [rpm, "--root", root or "/", "--dbpath", "/" + dbdir, "-qa", "--qf", _QUERY],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            errors="surrogateescape",
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, [Problem(os.path.join(root, dbdir), f"rpm query failed: {exc}")]
    if out.returncode != 0:
        return None, [
            Problem(os.path.join(root, dbdir), f"rpm query failed: {out.stderr.strip()[:200]}")
        ]
    return _index(root, os.path.join(root, dbdir), out.stdout), []


def _index(root: str, dbdir: str, text: str) -> DpkgDb:
    db = DpkgDb(dbdir)
    prefix = root.rstrip("/") if root not in ("", "/") else ""
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        name, version, path = parts
        idx = path.find("-packages/")
        if idx < 0:
            continue
        pkg = db.packages.setdefault(name, DpkgPackage(name, version, True, dbdir))
        site = prefix + path[: idx + 9]
        top = path[idx + 10 :].split("/", 1)[0]
        if top:
            pkg.entries.setdefault(site, set()).add(top)
            db.owners.setdefault((site, top), name)
    return db
