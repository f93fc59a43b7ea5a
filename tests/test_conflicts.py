"""conflicts and remedy: every rule on the story's layouts, positive and negative."""

from __future__ import annotations

import dataclasses

import pytest

from envwatchd import remedy
from envwatchd.conflicts import RULES, RuleContext, affected, evaluate
from envwatchd.conflicts._versions import distro_upstream, versions_match
from envwatchd.model import (
    CacheEntry,
    Claim,
    Conflict,
    ConflictKind,
    Copy,
    Format,
    Inventory,
    Manager,
    Severity,
    canonicalize,
)
from tests.test_precedence import (
    CAFFE,
    CONDA2,
    CONDA2_SITE,
    CONDA3,
    CONDA3_SITE,
    DEB3,
    DEB27,
    EGG27,
    LOCAL27,
    LOCAL311,
    ML,
    ML_SITE,
    PKGS,
    PYENV_SITE,
    REFS,
    USER27,
    USER311,
    VENV,
    VENV_SITE,
    VENV_SSP_PY,
    inventory,
    mkcopy,
    modern_envs,
    story_envs,
)

NUMPY = canonicalize("numpy")


def run(kind: ConflictKind, inv: Inventory, ctx: RuleContext | None = None) -> list[Conflict]:
    rule = next(r for r in RULES if r.kind is kind)
    return rule.check(inv, ctx or RuleContext())


def apt_copy(name: str, version: str, site: str = DEB3, **kw: object) -> Copy:
    """An untouched Debian package: dpkg-owned, no INSTALLER (manager inferred apt)."""
    return mkcopy(
        name,
        version,
        site,
        "system",
        manager=Manager.APT,
        owner=f"dpkg:python3-{name}",
        owner_version=f"{version}-1",
        **kw,  # type: ignore[arg-type]
    )


def dpkg_claim(copy: Copy, *, missing: tuple[str, ...] = (), installed: bool = True) -> Claim:
    return Claim(
        Manager.APT,
        f"python3-{copy.name}",
        copy.name,
        f"{copy.version}-1",
        copy.env,
        copy.site,
        f"/var/lib/dpkg/info/python3-{copy.name}.list",
        (copy.path, f"{copy.site}/{copy.name}"),
        missing,
        installed,
    )


# --- the story's 2.7 layout ----------------------------------------------------

RECORD27 = f"{CONDA2}/conda-meta/numpy-1.13.3-py27hbcc08e0_0.json"
CONDA_EGG_INFO = mkcopy(
    "numpy",
    "1.13.3",
    CONDA2_SITE,
    "conda2",
    fmt=Format.EGG_INFO,
    manager=Manager.CONDA,
    path=f"{CONDA2_SITE}/numpy-1.13.3-py2.7.egg-info",
    owner="conda:numpy-1.13.3-py27hbcc08e0_0",
    owner_version="1.13.3",
)
PIP_DIST_INFO = mkcopy("numpy", "1.13.3", CONDA2_SITE, "conda2")
CONDA_CLAIM27 = Claim(
    Manager.CONDA,
    "numpy",
    NUMPY,
    "1.13.3",
    REFS["conda2"],
    CONDA2_SITE,
    RECORD27,
    (CONDA_EGG_INFO.path, f"{CONDA2_SITE}/numpy"),
)


def story_inventory(*extra: Copy) -> Inventory:
    return Inventory(
        envs=story_envs(),
        copies=(CONDA_EGG_INFO, PIP_DIST_INFO, *extra),
        claims=(CONDA_CLAIM27,),
        extra_roots=(CAFFE,),
    )


# --- no false alarms -------------------------------------------------------------


def clean_machine() -> Inventory:
    """Untouched Debian, a fresh venv, a fresh conda base + env, pyenv: nothing to report."""
    crypto_dist = apt_copy("cryptography", "38.0.4")
    crypto_egg = dataclasses.replace(
        crypto_dist,
        format=Format.EGG_INFO,
        path=f"{DEB3}/cryptography.egg-info",
        manager=Manager.DISTUTILS,
    )
    six = apt_copy("six", "1.16.0")
    gi = dataclasses.replace(
        apt_copy("PyGObject", "3.42.2", top_level=("gi",)), owner_version="3.42.2-3+b1"
    )
    nspkg = [
        apt_copy("zope.interface", "5.5.2", top_level=("zope",)),
        apt_copy("zope.event", "4.4", top_level=("zope",)),
    ]
    venv = [
        mkcopy("pip", "23.2.1", VENV_SITE, "venv"),
        mkcopy("setuptools", "65.5.0", VENV_SITE, "venv"),
    ]
    conda = [
        mkcopy(
            "numpy",
            "1.26.4",
            CONDA3_SITE,
            "conda",
            manager=Manager.CONDA,
            owner="conda:numpy-1.26.4-py311h0_0",
            owner_version="1.26.4",
        ),
        mkcopy(
            "numpy",
            "2.0.0",
            ML_SITE,
            "ml",
            manager=Manager.CONDA,
            owner="conda:numpy-2.0.0-py311h0_0",
            owner_version="2.0.0",
        ),
    ]
    pyenv = [mkcopy("numpy", "1.25.0", PYENV_SITE, "pyenv")]
    copies = [crypto_dist, crypto_egg, six, gi, *nspkg, *venv, *conda, *pyenv]
    claims = [
        dataclasses.replace(dpkg_claim(crypto_dist), claimed=(crypto_dist.path, crypto_egg.path)),
        dpkg_claim(six),
        Claim(
            Manager.APT,
            "python3-zope.interface",
            canonicalize("zope.interface"),
            "5.5.2-1",
            REFS["system"],
            DEB3,
            "/var/lib/dpkg/info/python3-zope.interface.list",
            (f"{DEB3}/zope",),
        ),
        Claim(
            Manager.APT,
            "python3-foo",
            canonicalize("foo"),
            "1",
            REFS["system"],
            DEB3,
            "/var/lib/dpkg/info/python3-foo.list",
            (f"{DEB3}/foo",),
            (f"{DEB3}/foo",),
            False,
        ),
    ]
    return inventory(copies, claims=tuple(claims))


def namespace_reader(copy: Copy) -> frozenset[str]:
    return frozenset({"zope/", f"zope/{copy.name.split('-')[1]}/__init__.py", "zope/__init__.py"})


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind.value)
def test_clean_machine_raises_nothing(rule: object) -> None:
    """No rule warns on untouched Debian, a fresh venv, conda, pyenv, or namespace packages."""
    ctx = RuleContext(read_files=namespace_reader)
    found = rule.check(clean_machine(), ctx)  # type: ignore[attr-defined]
    assert [c for c in found if c.severity is not Severity.INFO] == []


def test_clean_machine_raises_nothing_at_all() -> None:
    assert evaluate(clean_machine(), RuleContext(read_files=namespace_reader)) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind.value)
def test_rules_on_empty_inventory(rule: object) -> None:
    assert rule.check(Inventory(envs=(), copies=()), RuleContext()) == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind.value)
def test_rules_are_deterministic_and_typed(rule: object) -> None:
    """Same input, same conflicts; each rule only emits its own kind."""
    inv = messy_machine()
    first = rule.check(inv, RuleContext(read_files=messy_reader))  # type: ignore[attr-defined]
    second = rule.check(inv, RuleContext(read_files=messy_reader))  # type: ignore[attr-defined]
    assert first == second and first, f"{rule} found nothing on the messy machine"
    assert {c.kind for c in first} == {rule.kind}  # type: ignore[attr-defined]
    assert all(c.message and c.key.startswith(f"{c.kind}:") for c in first)


def test_same_project_in_two_interpreters_trees_is_not_a_conflict() -> None:
    sys_numpy = apt_copy("numpy", "1.24.2")
    venv_numpy = mkcopy("numpy", "2.0.0", VENV_SITE, "venv")
    assert evaluate(inventory([sys_numpy, venv_numpy], claims=(dpkg_claim(sys_numpy),))) == []


# --- a messy machine: one of everything --------------------------------------------


def messy_machine() -> Inventory:
    apt_numpy = apt_copy("numpy", "1.24.2")
    local_numpy = mkcopy("numpy", "1.26.4", LOCAL311, "local")
    user_requests = mkcopy("requests", "2.31.0", USER311, "user")
    conda_requests = mkcopy(
        "requests",
        "2.32.0",
        CONDA3_SITE,
        "conda",
        manager=Manager.CONDA,
        owner="conda:requests-2.32.0-py311_0",
        owner_version="2.32.0",
    )
    old_six = mkcopy("six", "1.15.0", VENV_SITE, "venv")
    new_six = mkcopy("six", "1.16.0", VENV_SITE, "venv")
    jwt = mkcopy("jwt", "1.3.1", VENV_SITE, "venv")
    pyjwt = mkcopy("PyJWT", "2.8.0", VENV_SITE, "venv", top_level=("jwt",))
    clobbered = mkcopy(
        "scipy",
        "1.11.0",
        CONDA3_SITE,
        "conda",
        owner="conda:scipy-1.11.0-py311_0",
        owner_version="1.11.0",
    )
    gone = Claim(
        Manager.APT,
        "python3-yaml",
        canonicalize("pyyaml"),
        "6.0-3",
        REFS["system"],
        DEB3,
        "/var/lib/dpkg/info/python3-yaml.list",
        (f"{DEB3}/yaml",),
        (f"{DEB3}/yaml",),
    )
    cache = (
        CacheEntry(f"{PKGS}/numpy-1.25.0-py311_0", NUMPY, "1.25.0", "py311_0", 30_000_000),
        CacheEntry(
            f"{PKGS}/numpy-1.26.4-py311_0", NUMPY, "1.26.4", "py311_0", 30_000_000, (CONDA3,)
        ),
    )
    copies = [
        apt_numpy,
        local_numpy,
        user_requests,
        conda_requests,
        old_six,
        new_six,
        jwt,
        pyjwt,
        clobbered,
    ]
    return inventory(copies, claims=(dpkg_claim(apt_numpy), gone), cache_entries=cache)


def messy_reader(copy: Copy) -> frozenset[str] | None:
    if copy.name in ("jwt", "pyjwt"):
        return frozenset(
            {"jwt/__init__.py", "jwt/api_jwt.py", f"{copy.display_name}.dist-info/RECORD"}
        )
    return None


# --- duplicate ---------------------------------------------------------------------


def test_duplicate_local_over_apt() -> None:
    """sudo pip's /usr/local numpy shadows apt's: WARNING, remedy is sudo pip with PEP 668 flag."""
    apt = apt_copy("numpy", "1.24.2")
    local = mkcopy("numpy", "1.26.4", LOCAL311, "local")
    (c,) = run(ConflictKind.DUPLICATE, inventory([apt, local]))
    assert c.severity is Severity.WARNING and c.copies == (local, apt)
    assert "/usr/bin/python3.11 imports numpy 1.26.4 in /usr/local" in c.message
    assert "shadows numpy 1.24.2 in /usr/lib/python3/dist-packages (apt" in c.message
    pip = "sudo /usr/bin/python3.11 -m pip uninstall --break-system-packages numpy"
    assert c.remedy == (f"{pip}  # removes {local.path}",)


def test_duplicate_user_site_shadows_conda_base_27() -> None:
    """Story: ~/.local numpy shadows conda's for conda's python: WARNING, PYTHONNOUSERSITE."""
    user = mkcopy("numpy", "1.11.0", USER27, "user27")
    (c,) = run(ConflictKind.DUPLICATE, story_inventory(user))
    assert c.severity is Severity.WARNING and c.copies[0] == user
    assert f"{CONDA2}/bin/python imports numpy 1.11.0 in {USER27} (pip) [user site]" in c.message
    assert "conda env config vars set PYTHONNOUSERSITE=1 -n base" in c.remedy
    assert c.remedy[-1].startswith(
        f"{CONDA2}/bin/python -m pip uninstall numpy  # removes {user.path}"
    )


def test_duplicate_user_site_for_system_python_uses_plain_export() -> None:
    user = mkcopy("numpy", "1.26.0", USER311, "user")
    apt = apt_copy("numpy", "1.24.2")
    (c,) = run(ConflictKind.DUPLICATE, inventory([user, apt]))
    assert "export PYTHONNOUSERSITE=1" in c.remedy
    assert any(
        "/usr/bin/python3.11 -m pip uninstall --break-system-packages numpy" in r for r in c.remedy
    )
    assert not any(r.startswith("sudo") for r in c.remedy)


def test_duplicate_egg_jumps_ahead_27() -> None:
    """Story: easy_install's egg precedes even PYTHONPATH and apt's copy."""
    egg = mkcopy(
        "numpy",
        "1.13.3",
        LOCAL27,
        "local27",
        fmt=Format.EGG,
        import_path=EGG27,
        manager=Manager.EASY_INSTALL,
    )
    apt = mkcopy(
        "numpy", "1.11.0", DEB27, "system27", manager=Manager.APT, owner="dpkg:python-numpy"
    )
    inv = dataclasses.replace(story_inventory(egg, apt), copies=(egg, apt))
    (c,) = run(ConflictKind.DUPLICATE, inv)
    assert c.copies == (egg, apt) and c.severity is Severity.WARNING
    assert c.remedy == (f"sudo /usr/bin/python2.7 -m pip uninstall numpy  # removes {egg.path}",)


def test_duplicate_pythonpath_root() -> None:
    """An extra root (PYTHONPATH) shadowing conda's copy: WARNING naming PYTHONPATH."""
    caffe = mkcopy("numpy", "1.10.0", CAFFE, "user27", path=f"{CAFFE}/numpy-1.10.0.dist-info")
    inv = dataclasses.replace(story_inventory(caffe), copies=(caffe, CONDA_EGG_INFO))
    (c,) = run(ConflictKind.DUPLICATE, inv)
    assert c.severity is Severity.WARNING and c.copies[0] == caffe
    assert "PYTHONPATH" in c.message and c.remedy[0].startswith("unset PYTHONPATH")


def test_duplicate_dpkg_winner_removed_with_apt() -> None:
    apt = apt_copy("numpy", "1.24.2")
    late = mkcopy("numpy", "1.20.0", "/usr/lib/python3.11/dist-packages", "system")
    (c,) = run(ConflictKind.DUPLICATE, inventory([apt, late]))
    assert c.remedy == (f"sudo apt-get remove python3-numpy  # removes {apt.path}",)


def venv_ssp_envs() -> tuple:  # type: ignore[type-arg]
    return modern_envs(venv_py=VENV_SSP_PY)


def test_duplicate_venv_override_of_base_is_info() -> None:
    """--system-site-packages venv overriding apt's copy on purpose: INFO."""
    apt = apt_copy("numpy", "1.24.2")
    venv = mkcopy("numpy", "2.0.0", VENV_SITE, "venv")
    conflicts = run(ConflictKind.DUPLICATE, inventory([apt, venv], envs=venv_ssp_envs()))
    (c,) = [c for c in conflicts if c.copies[0] == venv]
    assert c.severity is Severity.INFO
    assert f"{VENV}/bin/python -m pip uninstall numpy" in c.remedy[0]


def test_duplicate_user_site_over_venv_is_warning() -> None:
    """The user site shadowing a venv's own copy is the trap, not an override."""
    user = mkcopy("numpy", "1.21.0", USER311, "user")
    venv = mkcopy("numpy", "2.0.0", VENV_SITE, "venv")
    conflicts = run(ConflictKind.DUPLICATE, inventory([user, venv], envs=venv_ssp_envs()))
    (c,) = [c for c in conflicts if venv in c.copies]
    assert c.severity is Severity.WARNING and c.copies[0] == user


def test_duplicate_aggregates_interpreters_seeing_the_same_set() -> None:
    """conda base and env ml both see ~/.local numpy and their own: one conflict each set."""
    user = mkcopy("numpy", "1.21.0", USER311, "user")
    base = mkcopy("numpy", "1.26.4", CONDA3_SITE, "conda", manager=Manager.CONDA)
    ml = mkcopy("numpy", "2.0.0", ML_SITE, "ml", manager=Manager.CONDA)
    conflicts = run(ConflictKind.DUPLICATE, inventory([user, base, ml]))
    assert len(conflicts) == 2
    assert len({c.key for c in conflicts}) == 2
    both = run(ConflictKind.DUPLICATE, inventory([user, base]))
    assert len(both) == 1 and f"{CONDA3}/bin/python3.11" in both[0].message


def test_duplicate_key_survives_version_bump() -> None:
    """Upgrading the winner in place keeps the same inconsistency, so the same key."""
    apt = apt_copy("numpy", "1.24.2")
    old = mkcopy("numpy", "1.26.4", LOCAL311, "local")
    new = mkcopy("numpy", "2.0.0", LOCAL311, "local")
    (a,) = run(ConflictKind.DUPLICATE, inventory([apt, old]))
    (b,) = run(ConflictKind.DUPLICATE, inventory([apt, new]))
    assert a.key == b.key == f"duplicate:numpy:{DEB3}|{LOCAL311}"
    assert a.message != b.message


def test_mixed_metadata_is_not_duplicate() -> None:
    assert run(ConflictKind.DUPLICATE, story_inventory()) == []


# --- mixed-metadata ----------------------------------------------------------------


def test_mixed_metadata_story_conda_over_pip() -> None:
    """Story: conda's egg-info next to pip's dist-info: keep conda's, rm pip's, reinstall."""
    (c,) = run(ConflictKind.MIXED_METADATA, story_inventory())
    assert c.severity is Severity.WARNING and c.copies == (CONDA_EGG_INFO, PIP_DIST_INFO)
    assert c.key == f"mixed-metadata:numpy:{CONDA2_SITE}"
    assert c.remedy == (
        f"rm -r {PIP_DIST_INFO.path}",
        "conda install --force-reinstall -n base numpy",
    )


def test_mixed_metadata_same_dpkg_owner_is_fine() -> None:
    """Debian's python3-cryptography ships dist-info and egg-info: not a conflict."""
    assert run(ConflictKind.MIXED_METADATA, clean_machine()) == []


def test_mixed_metadata_stale_rpm_egg_info() -> None:
    """pip#1917: pip upgraded rpm's setuptools; restore rpm rather than orphan it."""
    site = "/usr/lib/python3.11/site-packages"
    rpm = mkcopy(
        "setuptools",
        "39.2.0",
        site,
        "system",
        fmt=Format.EGG_INFO,
        manager=Manager.RPM,
        owner="rpm:python3-setuptools",
        owner_version="39.2.0-8.fc29",
    )
    pip = mkcopy("setuptools", "40.0.0", site, "system")
    (c,) = run(ConflictKind.MIXED_METADATA, inventory([rpm, pip]))
    assert c.copies == (pip, rpm)
    assert c.remedy[-1] == "sudo dnf reinstall python3-setuptools"
    # the exact path, not `pip uninstall`: pip would take either of the two setuptools
    assert c.remedy[0] == f"sudo rm -r {pip.path}"


def test_mixed_metadata_two_pip_versions_in_venv() -> None:
    """pip#3089: stale dist-info left behind: rm it, force-reinstall the current one."""
    old = mkcopy("six", "1.15.0", VENV_SITE, "venv")
    new = mkcopy("six", "1.16.0", VENV_SITE, "venv")
    (c,) = run(ConflictKind.MIXED_METADATA, inventory([old, new]))
    assert c.remedy == (
        f"rm -r {old.path}",
        f"{VENV}/bin/python -m pip install --force-reinstall --no-deps six==1.16.0",
    )


def test_mixed_metadata_key_survives_upgrade() -> None:
    a = run(
        ConflictKind.MIXED_METADATA,
        inventory(
            [mkcopy("six", "1.15.0", VENV_SITE, "venv"), mkcopy("six", "1.16.0", VENV_SITE, "venv")]
        ),
    )
    b = run(
        ConflictKind.MIXED_METADATA,
        inventory(
            [mkcopy("six", "1.15.0", VENV_SITE, "venv"), mkcopy("six", "1.17.0", VENV_SITE, "venv")]
        ),
    )
    assert a[0].key == b[0].key


# --- orphaned-record ---------------------------------------------------------------


def test_orphaned_dpkg_record_replaced_by_pip() -> None:
    """pip removed apt's numpy and wrote its own: ERROR, uninstall pip's, reinstall apt's."""
    apt = apt_copy("numpy", "1.24.2")
    claim = dpkg_claim(apt, missing=(apt.path, f"{DEB3}/numpy"))
    pip = mkcopy("numpy", "1.26.4", DEB3, "system")
    (c,) = run(ConflictKind.ORPHANED_RECORD, inventory([pip], claims=(claim,)))
    assert c.severity is Severity.ERROR and c.copies == (pip,)
    assert (
        "apt package python3-numpy 1.24.2-1" in c.message
        and "now comes from numpy 1.26.4" in c.message
    )
    assert c.remedy[-1] == "sudo apt-get install --reinstall python3-numpy"
    assert "pip uninstall --break-system-packages numpy" in c.remedy[0]


def test_orphaned_dpkg_record_nothing_left() -> None:
    apt = apt_copy("numpy", "1.24.2")
    (c,) = run(
        ConflictKind.ORPHANED_RECORD, inventory([], claims=(dpkg_claim(apt, missing=(apt.path,)),))
    )
    assert "Nothing provides numpy" in c.message
    assert c.remedy == ("sudo apt-get install --reinstall python3-numpy",)


@pytest.mark.parametrize(
    ("prefix", "ref", "target"),
    [(CONDA3, "conda", "-n base"), (ML, "ml", "-n ml")],
)
def test_orphaned_conda_record(prefix: str, ref: str, target: str) -> None:
    claim = Claim(
        Manager.CONDA,
        "numpy",
        NUMPY,
        "1.26.4",
        REFS[ref],
        f"{prefix}/lib/python3.11/site-packages",
        f"{prefix}/conda-meta/numpy-1.26.4-py311h64a7726_0.json",
        ("x",),
        ("x",),
    )
    (c,) = run(ConflictKind.ORPHANED_RECORD, inventory([], claims=(claim,)))
    assert c.remedy == (f"conda install --force-reinstall {target} numpy",)
    assert c.key == f"orphaned-record:numpy:{claim.record_path}"


def test_orphaned_rpm_record() -> None:
    claim = Claim(
        Manager.RPM,
        "python3-numpy",
        NUMPY,
        "1.24.2-3.fc39",
        REFS["system"],
        DEB3,
        "/var/lib/rpm",
        ("x",),
        ("x",),
    )
    (c,) = run(ConflictKind.ORPHANED_RECORD, inventory([], claims=(claim,)))
    assert c.remedy == ("sudo dnf reinstall python3-numpy",)


def test_orphaned_ignores_removed_stanzas() -> None:
    apt = apt_copy("numpy", "1.24.2")
    claim = dpkg_claim(apt, missing=(apt.path,), installed=False)
    assert run(ConflictKind.ORPHANED_RECORD, inventory([], claims=(claim,))) == []


# --- foreign-overwrite -------------------------------------------------------------


def test_foreign_pip_inside_conda_record() -> None:
    """INSTALLER=pip in a conda-meta-claimed dist-info: ERROR, pip out, conda back in."""
    copy = mkcopy(
        "scipy",
        "1.11.0",
        CONDA3_SITE,
        "conda",
        owner="conda:scipy-1.11.0-py311_0",
        owner_version="1.11.0",
    )
    (c,) = run(ConflictKind.FOREIGN_OVERWRITE, inventory([copy]))
    assert c.severity is Severity.ERROR and "pip wrote it last" in c.message
    assert c.remedy == (
        f"{CONDA3}/bin/python3.11 -m pip uninstall scipy  # removes {copy.path}",
        "conda install --force-reinstall -n base scipy",
    )


def test_foreign_version_mismatch() -> None:
    copy = mkcopy(
        "numpy",
        "1.14.0",
        CONDA2_SITE,
        "conda2",
        fmt=Format.EGG_INFO,
        manager=Manager.CONDA,
        owner="conda:numpy-1.13.3-py27hbcc08e0_0",
        owner_version="1.13.3",
    )
    (c,) = run(ConflictKind.FOREIGN_OVERWRITE, Inventory(envs=story_envs(), copies=(copy,)))
    assert "record says 1.13.3 but the metadata says 1.14.0" in c.message
    assert c.remedy == ("conda install --force-reinstall -n base numpy",)


def test_foreign_unclaimed_dist_info_over_dpkg_files() -> None:
    """pip's dist-info over files dpkg owns, dpkg's metadata not a copy: ERROR."""
    pip = mkcopy("numpy", "1.26.4", DEB3, "system")
    claim = Claim(
        Manager.APT,
        "python3-numpy",
        NUMPY,
        "1:1.24.2-1",
        REFS["system"],
        DEB3,
        "/var/lib/dpkg/info/python3-numpy.list",
        (f"{DEB3}/numpy",),
    )
    (c,) = run(ConflictKind.FOREIGN_OVERWRITE, inventory([pip], claims=(claim,)))
    assert c.copies == (pip,) and "python3-numpy" in c.message
    assert c.remedy[-1] == "sudo apt-get install --reinstall python3-numpy"
    assert "pip uninstall --break-system-packages numpy" in c.remedy[0]


def test_foreign_defers_to_mixed_metadata() -> None:
    """The story's conda-over-pip pair is reported once, as mixed-metadata."""
    assert run(ConflictKind.FOREIGN_OVERWRITE, story_inventory()) == []


@pytest.mark.parametrize(
    ("metadata", "record"),
    [
        ("1.24.2", "1:1.24.2-1+b1"),
        ("1.24.2", "1.24.2+dfsg-1"),
        ("2.0rc1", "2.0~rc1-1"),
        ("2.0", "2.0.0-3.fc39"),
        ("0.5.1", "0.5.1+git20200920-1"),
        ("1.13.3", "1.13.3"),
        ("1.0", "2.0+really1.0-1"),
        ("1.18.0-unknown", "1.18.0-3"),
    ],
)
def test_versions_match_tolerantly(metadata: str, record: str) -> None:
    assert versions_match(metadata, record)


@pytest.mark.parametrize(("metadata", "record"), [("1.14.0", "1.13.3"), ("2.0", "1:1.24.2-1")])
def test_versions_differ(metadata: str, record: str) -> None:
    assert not versions_match(metadata, record)


def test_distro_upstream() -> None:
    assert distro_upstream("1:1.24.2+dfsg-1+b1") == "1.24.2"


# --- file-collision -----------------------------------------------------------------


def test_file_collision_confirmed_by_records() -> None:
    jwt = mkcopy("jwt", "1.3.1", VENV_SITE, "venv")
    pyjwt = mkcopy("PyJWT", "2.8.0", VENV_SITE, "venv", top_level=("jwt",))
    (c,) = run(
        ConflictKind.FILE_COLLISION, inventory([jwt, pyjwt]), RuleContext(read_files=messy_reader)
    )
    assert c.severity is Severity.WARNING and "jwt/api_jwt.py" in c.message
    assert "jwt/__init__.py" not in c.message
    assert c.key == f"file-collision:jwt+pyjwt:{VENV_SITE}"


def test_file_collision_namespace_is_not() -> None:
    """Two members of one namespace share dirs and __init__.py only."""
    a = mkcopy("zope.interface", "5.5", VENV_SITE, "venv", top_level=("zope",))
    b = mkcopy("zope.event", "4.4", VENV_SITE, "venv", top_level=("zope",))
    ctx = RuleContext(read_files=namespace_reader)
    assert run(ConflictKind.FILE_COLLISION, inventory([a, b]), ctx) == []


def test_file_collision_unknown_lists_stay_silent() -> None:
    a = mkcopy("jwt", "1.3.1", VENV_SITE, "venv")
    b = mkcopy("PyJWT", "2.8.0", VENV_SITE, "venv", top_level=("jwt",))
    assert run(ConflictKind.FILE_COLLISION, inventory([a, b])) == []


def test_file_collision_one_known_single_module() -> None:
    """A single-file module cannot be a namespace: one known list is enough."""
    a = mkcopy("enum34", "1.1.10", VENV_SITE, "venv", top_level=("enum",))
    b = mkcopy("enum-compat", "0.0.3", VENV_SITE, "venv", top_level=("enum",))

    def reader(copy: Copy) -> frozenset[str] | None:
        return frozenset({"enum.py"}) if copy.name == "enum34" else None

    (c,) = run(ConflictKind.FILE_COLLISION, inventory([a, b]), RuleContext(read_files=reader))
    assert "enum.py" in c.message


def test_file_collision_reads_only_candidates() -> None:
    """read_files is called for candidate pairs only, once per copy."""
    calls: list[str] = []

    def reader(copy: Copy) -> frozenset[str] | None:
        calls.append(copy.name)
        return messy_reader(copy)

    inv = messy_machine()
    run(ConflictKind.FILE_COLLISION, inv, RuleContext(read_files=reader))
    assert sorted(calls) == ["jwt", "pyjwt"]


# --- advisories ----------------------------------------------------------------------


def test_user_site_in_conda() -> None:
    user = [mkcopy("requests", "2.31.0", USER311, "user"), mkcopy("rich", "13.0", USER311, "user")]
    found = run(ConflictKind.USER_SITE_IN_CONDA, inventory(user))
    assert {c.name for c in found} == {"base", "ml"}
    base = next(c for c in found if c.name == "base")
    assert base.severity is Severity.INFO and "2 package(s)" in base.message
    assert base.remedy[0] == "conda env config vars set PYTHONNOUSERSITE=1 -n base"


def test_user_site_in_conda_empty_user_site() -> None:
    assert run(ConflictKind.USER_SITE_IN_CONDA, inventory([])) == []


def test_externally_managed() -> None:
    pip = mkcopy("httpie", "3.2.2", LOCAL311, "local")
    (c,) = run(ConflictKind.EXTERNALLY_MANAGED, inventory([pip, apt_copy("six", "1.16.0")]))
    assert c.severity is Severity.INFO and c.copies == (pip,)
    assert c.remedy[0] == "sudo python3.11 -m pip uninstall --break-system-packages httpie"


def test_unused_pkgs_cache() -> None:
    (c,) = run(ConflictKind.UNUSED_PKGS_CACHE, messy_machine())
    assert "1 of 2 packages" in c.message and "30.0 MB" in c.message
    assert c.remedy == (f"{CONDA3}/bin/conda clean --packages",)


# --- evaluate ------------------------------------------------------------------------


def test_evaluate_names_matches_full_run_filtered() -> None:
    """Incremental evaluation equals the full run restricted to the affected conflicts."""
    inv = messy_machine()
    ctx = RuleContext(read_files=messy_reader)
    full = evaluate(inv, ctx)
    for name in ("numpy", "pyjwt", "six", "pyyaml", "nothing"):
        names = {canonicalize(name)}
        assert evaluate(inv, ctx, names) == [c for c in full if affected(c, names)]


def test_evaluate_covers_every_kind_once_ordered() -> None:
    full = evaluate(messy_machine(), RuleContext(read_files=messy_reader))
    kinds = [c.kind for c in full]
    assert set(kinds) == {r.kind for r in RULES}
    assert kinds == sorted(kinds, key=[r.kind for r in RULES].index)
    assert len({c.key for c in full}) == len(full)


# --- remedy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "name", "target"),
    [
        (f"{CONDA3}/envs/ml", "ml", "-n ml"),
        (CONDA3, "base", "-n base"),
        ("/opt/conda", "", "-n base"),
        (f"{VENV}/conda-env", "x", f"-p {VENV}/conda-env"),
    ],
)
def test_conda_target(prefix: str, name: str, target: str) -> None:
    assert remedy.conda_target(prefix, name) == target


def test_conda_package_from_record_stem() -> None:
    assert remedy.conda_package("numpy-1.13.3-py27hbcc08e0_0") == "numpy"
    assert remedy.conda_package("ca-certificates-2024.2.2-h06a4308_0") == "ca-certificates"


@pytest.mark.parametrize(
    ("manager", "expected"),
    [
        (Manager.PIP, "/py -m pip uninstall x"),
        (Manager.UV, "uv pip uninstall --python /py x"),
        (Manager.CONDA, "conda remove -n base x"),
        (Manager.POETRY, "poetry remove x"),
        (Manager.DISTUTILS, "rm -r "),
    ],
)
def test_uninstall_by_manager(manager: Manager, expected: str) -> None:
    copy = mkcopy("x", "1.0", CONDA3_SITE, "conda", manager=manager)
    assert remedy.uninstall(copy, "/py")[0].startswith(expected)


def test_uninstall_owned_uses_database() -> None:
    apt = apt_copy("numpy", "1.24.2")
    assert remedy.uninstall(apt, "/usr/bin/python3") == ["sudo apt-get remove python3-numpy"]
    overwritten = dataclasses.replace(apt, manager=Manager.PIP)
    assert remedy.uninstall(overwritten, "/usr/bin/python3", break_system=True) == [
        "sudo /usr/bin/python3 -m pip uninstall --break-system-packages numpy"
    ]
