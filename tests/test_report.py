"""`envwatch report --html`: one self-contained page, asserted on its DOM, and looked at.

The DOM is parsed with the stdlib's html.parser into a small tree, so the tests
check what a browser would build (classes, data attributes, text), not strings.
When Debian's chromium is installed the page is also rendered headless and the
screenshot kept: under the test's tmp dir always, and as docs/report.png when
ENVWATCHD_UPDATE_DOCS=1 (that is how the README's picture is made).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from envwatchd.report import ReportData
from envwatchd.report_html import render_html
from tests.daemon_harness import BIN
from tests.story_box import Story, story

__all__ = ["story"]  # the fixture, re-exported for pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VOID = {"meta", "br", "hr", "img", "link", "input", "col", "wbr", "area", "base", "source"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)

    def find(self, tag: str, cls: str | None = None) -> list[Node]:
        out = [self] if self.tag == tag and (cls is None or cls in self.classes) else []
        return out + [n for c in self.children for n in c.find(tag, cls)]


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        while len(self.stack) > 1:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


def dom(page: str) -> Node:
    parser = _Tree()
    parser.feed(page)
    parser.close()
    return parser.root


def assert_self_contained(root: Node) -> None:
    """No script, no external resource: the page is safe and opens offline."""
    assert not root.find("script") and not root.find("link") and not root.find("img")
    for node in [root, *(n for c in root.children for n in _walk(c))]:
        for attr in ("src", "href", "srcset", "action"):
            assert attr not in node.attrs, node
    (style,) = root.find("style")
    assert "url(" not in style.all_text() and "@import" not in style.all_text()


def _walk(node: Node) -> list[Node]:
    return [node, *(n for c in node.children for n in _walk(c))]


# -- unit: hostile strings ----------------------------------------------------------------

EVIL = '<script>alert("x")</script>&"\'<evil-tag>'


def evil_data() -> ReportData:
    env = {"kind": "venv", "prefix": f"/home/{EVIL}", "name": EVIL}
    cp = {"name": EVIL, "version": EVIL, "manager": "pip", "format": "dist-info",
          "path": f"/p/{EVIL}", "env": env}  # fmt: skip
    return ReportData(
        generated="2026-01-01T00:00:00Z",
        host=EVIL,
        since="7d",
        status={"version": EVIL, "started": EVIL},
        envs=[{**env, "python_version": EVIL, "interpreters": [EVIL], "package_count": 1}],
        package_count=2,
        managers={"pip": 2},
        projects=[
            {
                "name": EVIL,
                "copies": [cp, {**cp, "path": "/q"}],
                "interpreters": [{"executable": EVIL, "imported": "/q", "shadowed": [cp["path"]]}],
            }
        ],
        conflicts=[
            {
                "id": 1,
                "kind": EVIL,
                "name": EVIL,
                "severity": EVIL,
                "message": EVIL,
                "remedy": [EVIL],
                "copies": [cp],
            }
        ],
        events=[
            {
                "time": "2026-01-01T10:00:00Z",
                "kind": EVIL,
                "name": EVIL,
                "version": EVIL,
                "previous_version": "0",
                "manager": "pip",
                "previous_manager": EVIL,
                "env": env,
                "command": EVIL,
                "origin": "live",
            }
        ],
    )


def test_hostile_strings_are_escaped_everywhere() -> None:
    page = render_html(evil_data())
    root = dom(page)
    assert_self_contained(root)
    assert "<script" not in page and "<evil-tag>" not in page
    assert EVIL in root.all_text()  # shown as text, intact
    (row,) = root.find("tr", "conflict")
    assert row.attrs["data-name"] == EVIL and row.attrs["data-kind"] == EVIL
    (section,) = root.find("section", "project")
    assert section.attrs["data-name"] == EVIL


# -- the story's machine, through the real CLI ---------------------------------------------


@pytest.fixture
def story_report(story: Story, tmp_path: Path) -> tuple[Story, Path, str]:
    """The story after a pip install, an upgrade and a `sudo pip uninstall` of apt's yaml."""
    box, d = story.box, story.daemon
    box.install(story.venv_python, box.wheel("tinypkg", "1.0"))
    d.wait_events(1)
    last = d.last_id()
    box.install(story.venv_python, box.wheel("tinypkg", "2.0"))
    d.wait_events(1, after=last)
    last = d.last_id()
    story.plant_orphaned_yaml()
    d.wait_events(1, after=last)
    out = tmp_path / "report.html"
    done = subprocess.run(
        [str(BIN / "envwatch"), "report", "--html", str(out), "--socket", str(box.sock)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out} (")
    return story, out, out.read_text()


def test_conflicts_are_highlighted_with_remedies(story_report: tuple[Story, Path, str]) -> None:
    s, _, page = story_report
    rows = dom(page).find("tr", "conflict")
    opened = s.daemon.conflicts()
    assert sorted((r.attrs["data-kind"], r.attrs["data-name"]) for r in rows) == sorted(
        (c["kind"], c["name"]) for c in opened
    )
    (orphan,) = [r for r in rows if r.attrs["data-kind"] == "orphaned-record"]
    assert "sev-error" in orphan.classes
    remedies = [li.all_text() for li in orphan.find("li")]
    assert "sudo apt-get install --reinstall python3-yaml" in remedies
    assert rows[0] is orphan  # errors first
    assert all(r.find("li") for r in rows)


def test_duplicates_drawn_across_envs_with_the_winner_marked(
    story_report: tuple[Story, Path, str],
) -> None:
    s, _, page = story_report
    (numpy,) = [p for p in dom(page).find("section", "project") if p.attrs["data-name"] == "numpy"]
    where = s.daemon.call("where", {"name": "numpy"})
    heads = numpy.find("th", "copy")
    assert len(heads) == len(where["copies"]) == 3
    interp_rows = numpy.find("tr", "interp")
    assert len(interp_rows) == len(where["interpreters"]) == 2
    user_col = next(i for i, h in enumerate(heads) if "user" in h.all_text())
    for row in interp_rows:
        cells = row.find("td")
        assert [i for i, c in enumerate(cells) if "winner" in c.classes] == [user_col]
        assert sum("shadowed" in c.classes for c in cells) == 1
    assert "winner" in heads[user_col].classes
    assert sum("shadowed" in h.classes for h in heads) == 2


def test_envs_and_the_timeline(story_report: tuple[Story, Path, str]) -> None:
    s, _, page = story_report
    root = dom(page)
    assert_self_contained(root)
    envs = root.find("tr", "env")
    assert sorted(e.attrs["data-prefix"] for e in envs) == sorted(
        e["prefix"] for e in s.daemon.envs()
    )
    conda = next(e for e in envs if e.attrs["data-prefix"] == str(s.conda))
    assert str(s.conda / "bin" / "python3.11") in conda.all_text()
    events = root.find("tr", "event")
    kinds = [next(iter(e.classes - {"event"})) for e in events]
    assert kinds == ["ev-uninstall", "ev-upgrade", "ev-install"]  # newest first
    assert "1.0 → 2.0" in events[1].all_text()


def test_report_json_is_the_same_data(story: Story) -> None:
    done = subprocess.run(
        [str(BIN / "envwatch"), "report", "--json", "--socket", str(story.box.sock)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    import json

    data: dict[str, Any] = json.loads(done.stdout)
    assert [p["name"] for p in data["projects"]] == ["numpy"]
    assert data["package_count"] == len(story.daemon.packages())


def test_report_without_a_destination_is_a_usage_error(story: Story) -> None:
    done = subprocess.run(
        [str(BIN / "envwatch"), "report", "--socket", str(story.box.sock)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--html" in done.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium")
def test_screenshot_in_headless_chromium(
    story_report: tuple[Story, Path, str], tmp_path: Path
) -> None:
    _, html_file, _ = story_report
    png = tmp_path / "report.png"
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            f"--screenshot={png}",
            "--window-size=1280,2000",
            html_file.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    print(f"[artefact] {png}")
    if os.environ.get("ENVWATCHD_UPDATE_DOCS") == "1":
        shutil.copyfile(png, ROOT / "docs" / "report.png")
