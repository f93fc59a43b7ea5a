"""Parse the `--since` / `since` time spec: "90s", "30m", "2h", "7d", "2w" or ISO-8601.

Why a module of its own: both ends use it. The `envwatch` client turns the
user's text into a UTC instant before it leaves the terminal (so "2h" means two
hours before the user pressed enter, and a typo is a usage error with exit 2,
no daemon needed); the RPC layer validates the same field again because other
clients may send anything. Stdlib only: the client imports it on every run.

Trap: an ISO time without an offset is read as *local* time, like
`journalctl --since`, because that is what a person typing it means. Output is
always an aware UTC time in `datetime.isoformat()` form ("...+00:00"), seconds
precision, so the daemon can parse it back with `datetime.fromisoformat`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["TimespecError", "parse_since", "to_utc_iso"]

_RELATIVE = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TimespecError(ValueError):
    """The text is neither a relative span nor an ISO-8601 time; carries the text."""

    def __init__(self, text: str) -> None:
        super().__init__(f"invalid time {text!r}: use a span like 30m, 2h, 7d or an ISO-8601 time")
        self.text = text


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The aware UTC instant `text` names; relative spans count back from `now`."""
    match = _RELATIVE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        base = now if now is not None else datetime.now(UTC)
        try:
            return (base - timedelta(**{_UNITS[unit]: amount})).astimezone(UTC)
        except OverflowError as exc:
            raise TimespecError(text) from exc
    return _parse_iso(text)


def _parse_iso(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()  # naive: local time, see module docstring
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # year 1 or 9999 can overflow the shift
        raise TimespecError(text) from exc


def to_utc_iso(text: str, now: datetime | None = None) -> str:
    """`parse_since` rendered as the contract's ISO-8601 UTC string."""
    return parse_since(text, now).isoformat(timespec="seconds")
