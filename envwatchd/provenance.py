"""Who did it: the command line a manager's own transaction log names.

conda appends `==> 2017-10-12 00:00:51 <==` / `# cmd: conda install numpy`
blocks to `<prefix>/conda-meta/history` (local time); apt appends
`Start-Date:` / `Commandline:` / `Install:` blocks to
`/var/log/apt/history.log`. A live event takes the newest block that is
recent enough (and, for apt, names the package); otherwise the command is
unknown (null), never guessed.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

from envwatchd.formats._io import read_text
from envwatchd.formats.conda_meta import parse_history

__all__ = ["apt_command", "conda_command"]

WINDOW_S = 600.0


def _local_ts(stamp: str) -> float | None:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d  %H:%M:%S"):
        try:
            return time.mktime(datetime.strptime(stamp.strip(), fmt).timetuple())
        except ValueError:
            continue
    return None


def conda_command(prefix: str, now: float | None = None) -> str | None:
    blocks = parse_history(os.path.join(prefix, "conda-meta", "history"))
    if not blocks:
        return None
    stamp, command = blocks[-1]
    ts = _local_ts(stamp)
    now = time.time() if now is None else now
    if ts is None or now - ts > WINDOW_S or ts - now > WINDOW_S:
        return None
    return command


def apt_command(root: str, package: str, now: float | None = None) -> str | None:
    """The Commandline of the newest apt transaction naming `package`."""
    path = os.path.join(root or "/", "var/log/apt/history.log")
    try:
        text = read_text(path, 32 * 1024 * 1024)
    except OSError:
        return None
    now = time.time() if now is None else now
    for block in reversed(text.split("\n\n")):
        fields = _fields(block)
        names = " ".join(
            fields.get(k, "")
            for k in ("Install", "Upgrade", "Remove", "Purge", "Reinstall", "Downgrade")
        )
        if f"{package}:" not in names and f"{package} " not in names:
            continue
        ts = _local_ts(fields.get("End-Date") or fields.get("Start-Date", ""))
        if ts is None or abs(now - ts) > WINDOW_S:
            return None
        return fields.get("Commandline")
    return None


def _fields(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.strip().splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out
