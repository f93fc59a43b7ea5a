"""`envwatch report`: gather one machine's picture over the socket.

The data comes only from the daemon's public methods (status, envs, packages,
conflicts, events --since, and `where` for every project with more than one
copy), so the report shows exactly what `envwatch` shows, and anything that
can talk to the socket could build the same page. Rendering is in
report_html.py; both are stdlib only and imported only by this command.

`where` is asked once per duplicated project: on a desktop that is tens of
calls, each answered from the daemon's in-memory index.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

__all__ = ["DEFAULT_SINCE", "ReportData", "gather"]

DEFAULT_SINCE = "7d"

Call = Callable[[str, Mapping[str, Any] | None], Any]
"""Client.call without the timeout: (method, params) -> result."""


class ReportData(TypedDict):
    """Everything the page shows, as the daemon answered it (JSON-serialisable)."""

    generated: str
    host: str
    since: str
    status: dict[str, Any]
    envs: list[dict[str, Any]]
    package_count: int
    managers: dict[str, int]
    projects: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    events: list[dict[str, Any]]


def gather(call: Call, since_iso: str, since_label: str = DEFAULT_SINCE) -> ReportData:
    """Ask the daemon for everything the report shows."""
    packages: list[dict[str, Any]] = call("packages", None)
    names = Counter(str(c["name"]) for c in packages)
    duplicated = sorted(n for n, k in names.items() if k > 1)
    return ReportData(
        generated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        host=socket.gethostname(),
        since=since_label,
        status=call("status", None),
        envs=call("envs", None),
        package_count=len(packages),
        managers=dict(Counter(str(c.get("manager")) for c in packages).most_common()),
        projects=[call("where", {"name": n}) for n in duplicated],
        conflicts=call("conflicts", {"all": False}),
        events=call("events", {"since": since_iso}),
    )
