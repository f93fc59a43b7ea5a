"""Prometheus metrics: the exposition's shape, and a real daemon's numbers after real changes.

The exposition is always read back with prometheus_client's own parser, checked by
promtool (Debian `prometheus`) and scraped through a real node_exporter's textfile
collector (Debian `prometheus-node-exporter`) when those binaries are installed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from envwatchd.metrics import Source, exposition, write_textfile
from envwatchd.model import ConflictKind, Inventory, Severity
from tests.daemon_harness import BIN, wait_for
from tests.fake_service import NUMPY_SYS, NUMPY_USER, REQUESTS, SYSTEM, USER, VENV, make_conflict
from tests.story_box import Story, story

__all__ = ["story"]  # the fixture, re-exported for pytest

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

STATUS = {"trees_watched": 3, "watches": 12, "last_scan_ms": 250.0, "version": "0.1.0"}


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def value(found: Samples, metric: str, /, **labels: str) -> float | None:
    return found.get((metric, frozenset(labels.items())))


def small_exposition() -> str:
    inv = Inventory((SYSTEM, USER, VENV), (NUMPY_SYS, NUMPY_USER, REQUESTS))
    conflicts = [make_conflict(Severity.WARNING, 1), make_conflict(Severity.WARNING, 2)]
    counts = {("install", "pip"): 3, ("uninstall", ""): 1, ("uninstall", "unknown"): 1}
    return exposition(Source(STATUS, inv, conflicts, counts, 1_700_000_000.5))


def test_names_follow_prometheus_conventions() -> None:
    """snake_case with the envwatchd_ prefix; counters (and only they) end in _total."""
    for fam in text_string_to_metric_families(small_exposition()):
        assert re.fullmatch(r"envwatchd_[a-z][a-z0-9_]*", fam.name), fam.name
        for s in fam.samples:
            assert s.name.endswith("_total") == (fam.type == "counter"), s.name


def test_small_machine_values() -> None:
    found = samples(small_exposition())
    assert value(found, "envwatchd_packages", env_kind="system", manager="apt") == 1
    assert value(found, "envwatchd_packages", env_kind="venv", manager="pip") == 1
    assert value(found, "envwatchd_environments", kind="user") == 1
    assert value(found, "envwatchd_conflicts_open", kind="duplicate", severity="warning") == 2
    two = value(
        found, "envwatchd_conflict_open", kind="duplicate", name="numpy", severity="warning"
    )
    assert two == 2  # one label set once, counting both conflicts behind it
    assert value(found, "envwatchd_events_total", kind="install", manager="pip") == 3
    assert value(found, "envwatchd_events_total", kind="uninstall", manager="unknown") == 2
    assert value(found, "envwatchd_watched_trees") == 3
    assert value(found, "envwatchd_inotify_watches") == 12
    assert value(found, "envwatchd_last_scan_duration_seconds") == 0.25
    assert value(found, "envwatchd_start_time_seconds") == 1_700_000_000.5
    (info,) = [k for k in found if k[0] == "envwatchd_build_info"]
    assert dict(info[1])["version"] == "0.1.0"


@pytest.mark.parametrize("kind", list(ConflictKind))
@pytest.mark.parametrize("severity", list(Severity))
def test_every_conflict_series_exists_even_at_zero(kind: ConflictKind, severity: Severity) -> None:
    """A resolved conflict drops its series to 0 instead of making it vanish."""
    found = samples(exposition(Source({}, Inventory((), ()), [], {}, 0.0)))
    assert value(found, "envwatchd_conflicts_open", kind=kind.value, severity=severity.value) == 0


def test_textfile_is_replaced_atomically_and_readable(tmp_path: Path) -> None:
    target = tmp_path / "envwatchd.prom"
    target.write_text("old\n")
    write_textfile(str(target), "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # node_exporter runs as another user
    assert sorted(os.listdir(tmp_path)) == ["envwatchd.prom"]  # no temporary left behind


def test_textfile_failure_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "envwatchd.prom"
    target.write_text("old\n")
    with pytest.raises(TypeError):
        write_textfile(str(target), None)  # type: ignore[arg-type]
    assert target.read_text() == "old\n" and sorted(os.listdir(tmp_path)) == ["envwatchd.prom"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian package prometheus")
def test_promtool_accepts_the_exposition() -> None:
    done = subprocess.run(
        ["promtool", "check", "metrics"],
        input=small_exposition(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


# -- a real daemon on the story's machine -----------------------------------------------


def daemon_samples(s: Story) -> Samples:
    answer = s.daemon.call("metrics")
    assert answer["content_type"].startswith("text/plain; version=0.0.4")
    return samples(answer["text"])


def textfile(s: Story) -> Path:
    return s.box.tmp / "textfile" / "envwatchd.prom"


def test_story_machine_at_start(story: Story) -> None:
    found = daemon_samples(story)
    assert value(found, "envwatchd_packages", env_kind="conda", manager="conda") == 2
    assert value(found, "envwatchd_packages", env_kind="system", manager="apt") == 2
    assert value(found, "envwatchd_packages", env_kind="user", manager="pip") == 1
    assert value(found, "envwatchd_conflicts_open", kind="duplicate", severity="warning") == 2
    assert value(found, "envwatchd_watched_trees") == story.daemon.status()["trees_watched"]
    assert not [k for k in found if k[0] == "envwatchd_events_total"]  # a baseline: no events
    assert samples(textfile(story).read_text()).keys() == found.keys()  # written at start-up


def test_pip_install_and_a_planted_conflict_move_the_numbers(story: Story) -> None:
    d = story.daemon
    before = daemon_samples(story)
    assert value(before, "envwatchd_start_time_seconds") == pytest.approx(
        _epoch(d.status()["started"]), abs=1
    )
    story.box.install(story.venv_python, story.box.wheel("tinypkg", "1.0"))
    d.wait_events(1)
    found = daemon_samples(story)
    assert value(found, "envwatchd_events_total", kind="install", manager="pip") == 1
    assert value(found, "envwatchd_packages", env_kind="venv", manager="pip") == 1
    assert value(found, "envwatchd_inotify_watches") == d.status()["watches"]

    story.plant_orphaned_yaml()
    kind = "orphaned-record"
    (planted,) = wait_for(lambda: [c for c in d.conflicts() if c["kind"] == kind], what=kind)
    found = daemon_samples(story)
    assert value(found, "envwatchd_conflicts_open", kind=kind, severity="error") == 1
    # the conflict's own name ("yaml", guessed from python3-yaml), whatever it is
    name = planted["name"]
    assert value(found, "envwatchd_conflict_open", kind=kind, name=name, severity="error") == 1
    assert value(found, "envwatchd_events_total", kind="uninstall", manager="apt") == 1

    def textfile_caught_up() -> bool:
        got = samples(textfile(story).read_text())
        return value(got, "envwatchd_conflicts_open", kind=kind, severity="error") == 1

    wait_for(textfile_caught_up, what="the textfile rewritten after the change")
    assert [p.name for p in textfile(story).parent.iterdir()] == ["envwatchd.prom"]


def test_envwatch_metrics_prints_the_exposition(story: Story) -> None:
    done = subprocess.run(
        [str(BIN / "envwatch"), "metrics", "--socket", str(story.box.sock)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    found = samples(done.stdout)
    assert value(found, "envwatchd_packages", env_kind="system", manager="apt") == 2
    if shutil.which("promtool"):
        check = subprocess.run(
            ["promtool", "check", "metrics"], input=done.stdout, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_the_cli_does_not_import_prometheus_client() -> None:
    """`envwatch metrics` only prints text the daemon rendered: the client stays lean."""
    code = "import envwatchd.client_cli, sys; print('prometheus_client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "False", done.stderr


# -- node_exporter's textfile collector, scraped over HTTP -------------------------------

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def node_exporter(story: Story) -> Iterator[str]:
    assert NODE_EXPORTER is not None
    port = _free_port()
    proc = subprocess.Popen(
        [
            NODE_EXPORTER,
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={textfile(story).parent}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        proc.terminate()
        proc.wait(10)


def _scrape(url: str) -> str | None:
    with urllib.request.urlopen(url, timeout=5) as reply:
        text: str = reply.read().decode()
    return text if "envwatchd_packages" in text else None


@pytest.mark.skipif(NODE_EXPORTER is None, reason="Debian package prometheus-node-exporter")
def test_node_exporter_serves_the_textfile(story: Story, node_exporter: str) -> None:
    text = wait_for(lambda: _scrape(node_exporter), timeout=20, what="node_exporter")
    found = samples(text)
    assert value(found, "envwatchd_packages", env_kind="conda", manager="conda") == 2
    errors = value(found, "node_textfile_scrape_error")
    assert errors == 0, text
    story.box.install(story.venv_python, story.box.wheel("tinypkg", "1.0"))
    story.daemon.wait_events(1)

    def scraped_install() -> bool:
        got = samples(_scrape(node_exporter) or "")
        return value(got, "envwatchd_events_total", kind="install", manager="pip") == 1

    wait_for(scraped_install, what="node_exporter to serve the rewritten textfile")


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
