"""diff_copies: one event per changed distribution, none for an unchanged one."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envwatchd.diff import diff_copies, group_copies, representative, version_key
from envwatchd.model import (
    Copy,
    EnvKind,
    EnvRef,
    Event,
    EventKind,
    Format,
    Manager,
    NormalizedName,
    Origin,
)

ENV = EnvRef(EnvKind.VENV, "/venv", "venv")
SITE = "/venv/lib/python3.11/site-packages"


def make_copy(
    name: str = "foo",
    version: str = "1.0",
    *,
    site: str = SITE,
    fmt: Format = Format.DIST_INFO,
    path: str | None = None,
    **kw: object,
) -> Copy:
    suffix = fmt.value.replace("-", ".") if fmt in (Format.DIST_INFO, Format.EGG_INFO) else "x"
    base = Copy(
        name=NormalizedName(name),
        display_name=name,
        version=version,
        format=fmt,
        path=path or f"{site}/{name}-{version}.{suffix}",
        site=site,
        env=ENV,
        manager=Manager.PIP,
        evidence=("INSTALLER: pip",),
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def only(events: list[Event]) -> Event:
    assert len(events) == 1, events
    return events[0]


# -- examples, one per kind ---------------------------------------------------


def test_install() -> None:
    """A distribution absent before and present after is an install."""
    after = make_copy(version="2.0", manager=Manager.CONDA)
    e = only(diff_copies([], [after], origin=Origin.RECONCILE, time="2024-01-01T00:00:00Z"))
    assert (e.kind, e.name, e.version, e.previous_version) == (
        EventKind.INSTALL,
        "foo",
        "2.0",
        None,
    )
    assert (e.manager, e.previous_manager) == (Manager.CONDA, None)
    assert (e.env, e.site, e.path) == (ENV, SITE, after.path)
    assert (e.origin, e.time, e.id) == (Origin.RECONCILE, "2024-01-01T00:00:00Z", None)


def test_uninstall_names_the_removed_copy() -> None:
    """An uninstall has no version after; its path is the metadata that went away."""
    before = make_copy(version="1.5", manager=Manager.APT)
    e = only(diff_copies([before], []))
    assert (e.kind, e.version, e.previous_version) == (EventKind.UNINSTALL, None, "1.5")
    assert (e.manager, e.previous_manager, e.path) == (None, Manager.APT, before.path)


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("1.0", "2.0", EventKind.UPGRADE),
        ("1.10", "1.9", EventKind.DOWNGRADE),
        ("2.0rc1", "2.0", EventKind.UPGRADE),
        ("1.0.post1", "1.0", EventKind.DOWNGRADE),
        ("not a version", "0.0.1", EventKind.UPGRADE),
        ("0.0.1", "garbage-9", EventKind.DOWNGRADE),
        ("weird-1", "weird-2", EventKind.UPGRADE),
    ],
)
def test_version_order(old: str, new: str, kind: EventKind) -> None:
    """PEP 440 order, with invalid versions sorting before every valid one."""
    e = only(diff_copies([make_copy(version=old)], [make_copy(version=new)]))
    assert (e.kind, e.previous_version, e.version) == (kind, old, new)


def test_equal_versions_spelled_differently_are_a_replace() -> None:
    """1.0 == 1.0.0 in PEP 440: neither upgrade nor downgrade, but the metadata changed."""
    e = only(diff_copies([make_copy(version="1.0")], [make_copy(version="1.0.0")]))
    assert e.kind is EventKind.REPLACE


@pytest.mark.parametrize(
    "change",
    [
        {"path": SITE + "/Foo-1.0.dist-info"},
        {"format": Format.EGG_INFO},
        {"manager": Manager.CONDA},
        {"installer": "uv"},
        {"owner": "dpkg:python3-foo"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_replace_on_same_version(change: dict[str, object]) -> None:
    """Same version, different metadata, manager, installer or owner: a reinstall."""
    before = make_copy(installer="pip", manager=Manager.PIP)
    after = dataclasses.replace(before, **change)  # type: ignore[arg-type]
    e = only(diff_copies([before], [after]))
    assert (e.kind, e.version, e.previous_version) == (EventKind.REPLACE, "1.0", "1.0")
    assert (e.manager, e.previous_manager) == (after.manager, Manager.PIP)


def test_replace_on_new_inode() -> None:
    """fingerprint is compare=False in Copy, yet a new metadata inode is a reinstall."""
    before, after = make_copy(fingerprint="101"), make_copy(fingerprint="202")
    assert before == after
    assert only(diff_copies([before], [after])).kind is EventKind.REPLACE


def test_unknown_fingerprint_is_not_a_change() -> None:
    """An inventory stored without fingerprints must not turn into a replace of everything."""
    assert diff_copies([make_copy(fingerprint=None)], [make_copy(fingerprint="7")]) == []


def test_cosmetic_fields_are_not_events() -> None:
    """Evidence, imported_by, top_level and display name changes are no install event."""
    before = make_copy()
    after = dataclasses.replace(
        before,
        evidence=("other",),
        imported_by=("/usr/bin/python3",),
        top_level=("foo",),
        display_name="Foo",
        requested=True,
    )
    assert diff_copies([before], [after]) == []


# -- groups ---------------------------------------------------------------------


def test_representative_prefers_highest_version_then_dist_info() -> None:
    """Highest version speaks for the group; on a tie dist-info beats egg-info."""
    di, ei = make_copy(version="1.0"), make_copy(version="1.0", fmt=Format.EGG_INFO)
    assert representative([ei, di]) is di
    newer_egg = make_copy(version="1.1", fmt=Format.EGG_INFO)
    assert representative([di, newer_egg]) is newer_egg


def test_two_copies_in_one_site_are_one_distribution() -> None:
    """A dist-info plus a stale egg-info: one install event, for the representative."""
    di, ei = make_copy(version="2.0"), make_copy(version="1.0", fmt=Format.EGG_INFO)
    e = only(diff_copies([], [ei, di]))
    assert (e.kind, e.version, e.path) == (EventKind.INSTALL, "2.0", di.path)


def test_stale_second_copy_appearing_is_a_replace() -> None:
    """A second metadata dir for the same project changes the distribution."""
    di, ei = make_copy(version="2.0"), make_copy(version="1.0", fmt=Format.EGG_INFO)
    e = only(diff_copies([di], [di, ei]))
    assert (e.kind, e.version, e.path) == (EventKind.REPLACE, "2.0", di.path)


def test_same_name_in_two_sites_is_two_distributions() -> None:
    """Grouping is by (site, name): the user site and the venv are separate."""
    a, b = make_copy(site="/a"), make_copy(site="/b")
    events = diff_copies([a], [b])
    assert [(e.kind, e.site) for e in events] == [
        (EventKind.UNINSTALL, "/a"),
        (EventKind.INSTALL, "/b"),
    ]


def test_output_is_ordered_by_site_then_name() -> None:
    """Deterministic output whatever the input order."""
    copies = [make_copy(n, site=s) for s in ("/z", "/a") for n in ("zeta", "alpha")]
    keys = [(e.site, e.name) for e in diff_copies([], copies)]
    assert keys == [("/a", "alpha"), ("/a", "zeta"), ("/z", "alpha"), ("/z", "zeta")]


def test_packaging_is_imported_lazily() -> None:
    """Importing diff must not pull in packaging (the scan path stays cheap)."""
    code = "import sys, envwatchd.diff; sys.exit('packaging' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@given(st.text(max_size=30), st.text(max_size=30))
def test_version_key_is_a_total_order_that_never_raises(a: str, b: str) -> None:
    """Any two strings compare, and exactly one of <, ==, > holds."""
    ka, kb = version_key(a), version_key(b)
    assert [ka < kb, ka == kb, kb < ka].count(True) == 1


# -- properties -------------------------------------------------------------------

VERSIONS = ["1.0", "1.0.0", "2.0", "0.9", "1.0rc1", "2!0.1", "not-a-version", "weird_2", ""]


@st.composite
def copies(draw: st.DrawFn) -> Copy:
    site = draw(st.sampled_from(["/a", "/b"]))
    name = draw(st.sampled_from(["foo", "bar", "baz"]))
    fmt = draw(st.sampled_from([Format.DIST_INFO, Format.EGG_INFO, Format.EGG]))
    return make_copy(
        name,
        draw(st.sampled_from(VERSIONS)),
        site=site,
        fmt=fmt,
        path=f"{site}/{name}-{draw(st.integers(0, 2))}.{fmt.value}",
        manager=draw(st.sampled_from([Manager.PIP, Manager.CONDA, Manager.APT])),
        installer=draw(st.sampled_from([None, "pip", "conda"])),
        owner=draw(st.sampled_from([None, "dpkg:python3-foo"])),
        fingerprint=draw(st.sampled_from([None, "1", "2"])),
    )


inventories = st.lists(copies(), max_size=12)
State = dict[tuple[str, str], str]


def state_of(inventory: list[Copy]) -> State:
    return {k: representative(g).version for k, g in group_copies(inventory).items()}


def apply(state: State, events: list[Event]) -> State:
    out = dict(state)
    for e in events:
        key = (e.site, e.name)
        if e.kind is EventKind.INSTALL:
            assert key not in out and e.version is not None
            out[key] = e.version
        elif e.kind is EventKind.UNINSTALL:
            assert out.pop(key) == e.previous_version
        else:
            assert out[key] == e.previous_version and e.version is not None
            out[key] = e.version
    return out


@given(inventories)
def test_diff_of_a_thing_with_itself_is_empty(a: list[Copy]) -> None:
    """diff(a, a) == [], and input order does not matter."""
    assert diff_copies(a, a) == []
    unique = list({c.key: c for c in a}.values())
    assert diff_copies(unique, list(reversed(unique))) == []


@given(inventories, inventories)
def test_applying_the_events_yields_the_after_state(a: list[Copy], b: list[Copy]) -> None:
    """Replaying diff(a, b) on a's (site, name) -> version map gives b's map."""
    events = diff_copies(a, b)
    assert apply(state_of(a), events) == state_of(b)
    for e in events:
        if e.kind in (EventKind.UPGRADE, EventKind.DOWNGRADE):
            assert e.version is not None and e.previous_version is not None
            old, new = version_key(e.previous_version), version_key(e.version)
            assert (old < new) == (e.kind is EventKind.UPGRADE)


SWAPPED = {
    EventKind.INSTALL: EventKind.UNINSTALL,
    EventKind.UNINSTALL: EventKind.INSTALL,
    EventKind.UPGRADE: EventKind.DOWNGRADE,
    EventKind.DOWNGRADE: EventKind.UPGRADE,
    EventKind.REPLACE: EventKind.REPLACE,
}


@given(inventories, inventories)
def test_diff_is_antisymmetric(a: list[Copy], b: list[Copy]) -> None:
    """diff(b, a) touches the same groups with every kind and version pair swapped."""
    forward = {(e.site, e.name): e for e in diff_copies(a, b)}
    backward = {(e.site, e.name): e for e in diff_copies(b, a)}
    assert forward.keys() == backward.keys()
    for key, e in forward.items():
        r = backward[key]
        assert r.kind is SWAPPED[e.kind]
        assert (r.version, r.previous_version) == (e.previous_version, e.version)
        assert (r.manager, r.previous_manager) == (e.previous_manager, e.manager)
