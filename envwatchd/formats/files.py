"""The file list a copy claims, relative to its site dir: RECORD, installed-files.txt,
or the conda record's `files`. Read only to confirm file-collision candidates.
"""

from __future__ import annotations

import os

from envwatchd.formats.conda_meta import parse_record
from envwatchd.formats.dist_info import read_record_paths
from envwatchd.formats.egg_info import read_installed_files
from envwatchd.model import Copy, Format

__all__ = ["read_files"]


def read_files(copy: Copy) -> frozenset[str] | None:
    if copy.format in (Format.DIST_INFO, Format.EDITABLE):
        return read_record_paths(copy.path)
    if copy.format is Format.EGG_INFO and os.path.isdir(copy.path):
        return read_installed_files(copy.path)
    if copy.format is Format.CONDA_META:
        record, _ = parse_record(copy.path)
        if record is None or not record.valid:
            return None
        marker = "site-packages/"
        return frozenset(f.split(marker, 1)[1] for f in record.files if marker in f)
    return None
