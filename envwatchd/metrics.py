"""Prometheus metrics: the `metrics` socket method and the node_exporter textfile.

Why a custom Collector over a fresh CollectorRegistry, not module-level Gauges:
every value here is a view of state the daemon already holds (the index, the
store's counts, `status`), so each exposition is computed from one `Source`
snapshot and nothing can drift or leak between renders (or between tests).
The default registry would also drag in process/platform collectors whose
names clash when node_exporter merges several textfiles.

Conventions (https://prometheus.io/docs/practices/naming/): snake_case, base
units (`_seconds`), `_total` on the one counter, `_info`-style series valued 1.
Series for every (conflict kind, severity) pair are always present, zero when
nothing is open: an alert on `envwatchd_conflicts_open > 0` must see the drop
to 0, not a series that vanished (which a textfile scrape cannot tell apart
from a dead daemon).

The textfile is written to a temporary file in the same directory, made
world-readable (node_exporter usually runs as another user) and moved into
place with os.replace: a scrape never reads half a file. The temporary name
does not end in `.prom`, so the textfile collector never picks it up.

prometheus_client is imported at module level: daemon.py imports this module
lazily, so a daemon nobody asks for metrics never loads it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from envwatchd import __version__
from envwatchd.model import Conflict, ConflictKind, Inventory, Severity

__all__ = ["CONTENT_TYPE", "EnvwatchdCollector", "Source", "exposition", "write_textfile"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text exposition format generate_latest() produces."""


@dataclass(frozen=True, slots=True)
class Source:
    """One consistent snapshot of what the daemon knows, taken on its event loop.

    `status` is the daemon's own `status` answer (trees watched, watches, last
    scan), so `envwatch status` and the metrics can never disagree.
    """

    status: Mapping[str, Any]
    inventory: Inventory
    open_conflicts: Sequence[Conflict]
    event_counts: Mapping[tuple[str, str], int]
    started: float


class EnvwatchdCollector(Collector):
    """Yields every envwatchd metric family from one Source."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from (
            self._packages(),
            self._environments(),
            self._conflicts_open(),
            self._conflict_open(),
            self._events(),
            *self._daemon(),
        )

    def _packages(self) -> Metric:
        fam = GaugeMetricFamily(
            "envwatchd_packages",
            "Installed distribution copies by environment kind and installing manager.",
            labels=["env_kind", "manager"],
        )
        counts = Counter((c.env.kind.value, c.manager.value) for c in self.source.inventory.copies)
        for (kind, manager), n in sorted(counts.items()):
            fam.add_metric([kind, manager], n)
        return fam

    def _environments(self) -> Metric:
        fam = GaugeMetricFamily(
            "envwatchd_environments", "Discovered environments by kind.", labels=["kind"]
        )
        counts = Counter(e.kind.value for e in self.source.inventory.envs)
        for kind, n in sorted(counts.items()):
            fam.add_metric([kind], n)
        return fam

    def _conflicts_open(self) -> Metric:
        fam = GaugeMetricFamily(
            "envwatchd_conflicts_open",
            "Open conflicts by kind and severity (0 when none).",
            labels=["kind", "severity"],
        )
        counts = Counter((c.kind.value, c.severity.value) for c in self.source.open_conflicts)
        for kind in ConflictKind:
            for sev in Severity:
                fam.add_metric([kind.value, sev.value], counts.get((kind.value, sev.value), 0))
        return fam

    def _conflict_open(self) -> Metric:
        """One series per open (kind, name, severity): names only, never paths or versions.

        The value counts the open conflicts behind the labels (two interpreters can
        each see a duplicate of one project): one label set may appear only once.
        """
        fam = GaugeMetricFamily(
            "envwatchd_conflict_open",
            "Open conflicts by kind, project name and severity.",
            labels=["kind", "name", "severity"],
        )
        counts = Counter(
            (c.kind.value, c.name, c.severity.value) for c in self.source.open_conflicts
        )
        for labels, n in sorted(counts.items()):
            fam.add_metric(list(labels), n)
        return fam

    def _events(self) -> Metric:
        fam = CounterMetricFamily(
            "envwatchd_events",
            "Recorded install/uninstall/upgrade/downgrade/replace events by manager.",
            labels=["kind", "manager"],
        )
        merged: Counter[tuple[str, str]] = Counter()
        for (kind, manager), n in self.source.event_counts.items():
            merged[(kind, manager or "unknown")] += n
        for labels, n in sorted(merged.items()):
            fam.add_metric(list(labels), n)
        return fam

    def _daemon(self) -> Iterator[Metric]:
        st = self.source.status
        gauges = (
            ("envwatchd_watched_trees", "Site dirs watched live.", st.get("trees_watched", 0)),
            ("envwatchd_inotify_watches", "Inotify watches held.", st.get("watches", 0)),
            (
                "envwatchd_last_scan_duration_seconds",
                "Duration of the last full scan.",
                float(st.get("last_scan_ms") or 0.0) / 1000,
            ),
            (
                "envwatchd_start_time_seconds",
                "Start time of the daemon since the Unix epoch.",
                self.source.started,
            ),
            (
                "envwatchd_unwatched_trees",
                "Trees that could not be watched (rescanned periodically instead).",
                len(st.get("unwatched") or ()),
            ),
        )
        for name, doc, value in gauges:
            yield GaugeMetricFamily(name, doc, value=value)
        info = GaugeMetricFamily(
            "envwatchd_build_info",
            "envwatchd version and the Python running it (always 1).",
            labels=["version", "python"],
        )
        info.add_metric([str(st.get("version") or __version__), platform.python_version()], 1)
        yield info


def exposition(source: Source) -> str:
    """The Prometheus text exposition of `source` (text format 0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EnvwatchdCollector(source))
    return generate_latest(registry).decode("utf-8")


def write_textfile(path: str, text: str) -> None:
    """Replace `path` atomically with `text`, readable by node_exporter's user."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".envwatchd-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
