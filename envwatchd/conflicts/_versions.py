"""Tolerant comparison of a package database's version with a metadata version.

Why: dpkg says ``1:1.24.2-1+b1`` and ``1.24.2+dfsg-1``, rpm ``1.24.2-3.fc39``,
conda ``1.13.3``; the dist-info says ``1.24.2``. Those are the same release, and
calling them different would flag every untouched Debian package. We strip the
distro's decorations, then let packaging decide; when a side does not parse we
fall back to comparing the stripped strings, and say "match" on a prefix so
that an unparseable oddity never raises an error-level conflict on its own.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

__all__ = ["distro_upstream", "versions_match"]

_EPOCH = re.compile(r"^\d+:")
_REPACK = re.compile(r"[+~.](dfsg|ds|repack|really)[^+~]*", re.IGNORECASE)


def distro_upstream(raw: str) -> str:
    """``1:1.24.2+dfsg-1+b1`` -> ``1.24.2``: no epoch, revision or repack suffix."""
    text = _EPOCH.sub("", raw.strip())
    if "-" in text:
        text = text.rsplit("-", 1)[0]
    if "+really" in text:
        text = text.split("+really", 1)[1]
    return _REPACK.sub("", text)


def _candidates(raw: str) -> list[str]:
    """Debian's ``~`` sorts before the release: ``2.0~rc1`` is PEP 440 ``2.0rc1``."""
    base = distro_upstream(raw)
    return [base.replace("~", ""), base.split("~", 1)[0]]


def _parse(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def versions_match(metadata: str, record: str) -> bool:
    """True when ``record`` (dpkg/rpm/conda) names the release ``metadata`` does."""
    if metadata == record:
        return True  # conda's records and most others: no parsing needed
    mine = _parse(metadata)
    for candidate in _candidates(record):
        theirs = _parse(candidate)
        if mine is not None and theirs is not None:
            if Version(mine.public) == Version(theirs.public):
                return True
            continue
        a, b = metadata.strip().lower(), candidate.strip().lower()
        if a.startswith(b) or b.startswith(a):
            return True
    return False
