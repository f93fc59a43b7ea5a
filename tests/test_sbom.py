"""`envwatch sbom`: a CycloneDX 1.6 document the library's own schema validator accepts,
holding every copy of the inventory exactly once with the purl of whoever shipped it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from envwatchd.sbom import purl_of, sbom_json
from tests.daemon_harness import BIN
from tests.story_box import Story, story

__all__ = ["story"]  # the fixture, re-exported for pytest

ENV = {"kind": "system", "prefix": "/usr", "name": "system"}


def copy(name: str, manager: str, owner: str | None = None, **kw: Any) -> dict[str, Any]:
    out = {
        "name": name,
        "display_name": name,
        "version": "1.0",
        "format": "dist-info",
        "path": f"/site/{name}-1.0.dist-info",
        "site": "/site",
        "env": ENV,
        "manager": manager,
        "evidence": ["INSTALLER says pip"],
        "imported_by": [],
        "owner": owner,
        "owner_version": None,
    }
    return out | kw


@pytest.mark.parametrize(
    ("item", "purl"),
    [
        (copy("numpy", "pip"), "pkg:pypi/numpy@1.0"),
        (copy("numpy", "uv"), "pkg:pypi/numpy@1.0"),
        (
            copy("numpy", "apt", "dpkg:python3-numpy", owner_version="1:1.24.2-1"),
            "pkg:deb/debian/python3-numpy@1:1.24.2-1",
        ),
        (copy("numpy", "apt"), "pkg:pypi/numpy@1.0"),  # no dpkg record: only the PyPI identity
        (copy("numpy", "pip", "dpkg:python3-numpy"), "pkg:pypi/numpy@1.0"),  # pip overwrote it
        (
            copy("torch", "conda", "conda:pytorch-2.1.0-py3.11_cpu_0"),
            "pkg:conda/pytorch@2.1.0?build=py3.11_cpu_0",
        ),
        (copy("numpy", "conda"), "pkg:conda/numpy@1.0"),
        (
            copy("numpy", "rpm", "rpm:python3-numpy", owner_version="1.24.4-1.fc39"),
            "pkg:rpm/python3-numpy@1.24.4-1.fc39",
        ),
        (copy("weird-name", "pip", version=""), "pkg:pypi/weird-name"),
    ],
)
def test_purl_names_who_shipped_the_bits(item: dict[str, Any], purl: str) -> None:
    assert purl_of(item).to_string() == purl


def validate(document: str) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(document)
    assert error is None, error


def test_hostile_strings_stay_data() -> None:
    """Names and paths with quotes, markup and newlines still make a valid document."""
    evil = '<script>"\n\u202e'
    item = copy("evil", "pip", path=f"/site/{evil}.dist-info", evidence=[evil], display_name=evil)
    document = sbom_json([item])
    validate(document)
    (component,) = json.loads(document)["components"]
    assert component["bom-ref"] == f"/site/{evil}.dist-info" and component["name"] == evil


def props(component: dict[str, Any]) -> dict[str, list[str]]:
    out: defaultdict[str, list[str]] = defaultdict(list)
    for p in component.get("properties", []):
        out[p["name"]].append(p["value"])
    return dict(out)


def envwatch_sbom(s: Story, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "envwatch"), "sbom", "--socket", str(s.box.sock), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_story_machine_round_trips(story: Story) -> None:
    story.box.install(story.venv_python, story.box.wheel("tinypkg", "1.0"))
    story.daemon.wait_events(1)
    document = envwatch_sbom(story)
    validate(document)
    bom = json.loads(document)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    copies = story.daemon.packages()
    by_ref = {c["bom-ref"]: c for c in bom["components"]}
    assert len(bom["components"]) == len(by_ref) == len(copies) == 6
    for c in copies:
        component = by_ref[c["path"]]
        assert component["purl"] == purl_of(c).to_string()
        assert (component["name"], component["version"]) == (c["display_name"], c["version"])
        p = props(component)
        assert p["envwatchd:manager"] == [c["manager"]]
        assert p["envwatchd:env.kind"] == [c["env"]["kind"]]
        assert p["envwatchd:env.prefix"] == [c["env"]["prefix"]]
        assert p["envwatchd:path"] == [c["path"]]
        assert sorted(p["envwatchd:evidence"]) == sorted(c["evidence"])
    purls = sorted(c["purl"] for c in bom["components"])
    assert purls == [
        "pkg:conda/conda@23.11.0?build=py311h06a4308_0",
        "pkg:conda/numpy@1.26.4?build=py311h64a7726_0",
        "pkg:deb/debian/python3-numpy@1:1.24.2-1",
        "pkg:deb/debian/python3-yaml@6.0-3%2Bb2",
        "pkg:pypi/numpy@1.24.0",
        "pkg:pypi/tinypkg@1.0",
    ]


def test_env_filter(story: Story) -> None:
    prefix = str(story.conda)
    bom = json.loads(envwatch_sbom(story, "--env", prefix))
    assert {props(c)["envwatchd:env.prefix"][0] for c in bom["components"]} == {prefix}
    assert len(bom["components"]) == 2


def test_only_the_sbom_command_imports_cyclonedx() -> None:
    code = "import envwatchd.client_cli, sys; print('cyclonedx' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "False", done.stderr
