"""conda's package records: `<prefix>/conda-meta/<name>-<version>-<build>.json`
and the pkgs cache's `<pkgs>/<name>-<version>-<build>/info/index.json`.

Name, version and build come from the file name (`PrefixRecord._get_json_fn`)
so a truncated or invalid JSON still names its package; the JSON is read for
`files` (which site-dir entries the record claims) and `requested_spec(s)`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from envwatchd.formats._io import read_text
from envwatchd.model import Problem

__all__ = ["CondaRecord", "parse_history", "parse_record", "split_record_name"]

_MAX_RECORD = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CondaRecord:
    path: str
    name: str
    version: str
    build: str
    files: tuple[str, ...]
    channel: str | None = None
    valid: bool = True

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"


def split_record_name(stem: str) -> tuple[str, str, str] | None:
    """`numpy-1.13.3-py27hbcc08e0_0` -> (numpy, 1.13.3, py27hbcc08e0_0)."""
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def parse_record(path: str) -> tuple[CondaRecord | None, list[Problem]]:
    base = os.path.basename(path)
    split = split_record_name(base[: -len(".json")] if base.endswith(".json") else base)
    if split is None:
        return None, [Problem(path, "conda-meta file name is not <name>-<version>-<build>.json")]
    name, version, build = split
    try:
        data = json.loads(read_text(path, _MAX_RECORD))
    except (OSError, ValueError, RecursionError) as exc:
        problem = Problem(path, f"invalid conda-meta record ({type(exc).__name__}: {exc})"[:300])
        return CondaRecord(path, name, version, build, (), valid=False), [problem]
    if not isinstance(data, dict):
        return CondaRecord(path, name, version, build, (), valid=False), [
            Problem(path, "conda-meta record is not a JSON object")
        ]
    files = data.get("files")
    files_t = tuple(f for f in files if isinstance(f, str)) if isinstance(files, list) else ()
    channel = data.get("channel") if isinstance(data.get("channel"), str) else None
    return CondaRecord(
        path,
        str(data.get("name") or name),
        str(data.get("version") or version),
        str(data.get("build") or build),
        files_t,
        channel,
    ), []


def parse_history(path: str) -> list[tuple[str, str]]:
    """`conda-meta/history` -> [(timestamp 'YYYY-MM-DD HH:MM:SS', command)] from `# cmd:` lines."""
    try:
        text = read_text(path, 16 * 1024 * 1024)
    except OSError:
        return []
    out: list[tuple[str, str]] = []
    stamp = ""
    for line in text.splitlines():
        if line.startswith("==>") and line.endswith("<=="):
            stamp = line.strip("=<> ")
        elif line.startswith("# cmd:"):
            out.append((stamp, line[len("# cmd:") :].strip()))
    return out
