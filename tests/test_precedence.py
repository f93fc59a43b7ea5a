"""precedence: which copy each interpreter imports, on the story's real layouts."""

from __future__ import annotations

import dataclasses
import time

import pytest

from envwatchd.model import (
    Copy,
    Env,
    EnvKind,
    EnvRef,
    Format,
    Interpreter,
    Inventory,
    Manager,
    canonicalize,
)
from envwatchd.precedence import (
    imported_by,
    interpreters,
    shadowing,
    version_key,
    visible,
    with_imported_by,
)

# --- builders shared with test_conflicts -------------------------------------

HOME = "/home/u"
USER311 = f"{HOME}/.local/lib/python3.11/site-packages"
LOCAL311 = "/usr/local/lib/python3.11/dist-packages"
DEB3 = "/usr/lib/python3/dist-packages"
DEB311 = "/usr/lib/python3.11/dist-packages"
VENV = f"{HOME}/proj/.venv"
VENV_SITE = f"{VENV}/lib/python3.11/site-packages"
CONDA3 = f"{HOME}/miniconda3"
CONDA3_SITE = f"{CONDA3}/lib/python3.11/site-packages"
ML = f"{CONDA3}/envs/ml"
ML_SITE = f"{ML}/lib/python3.11/site-packages"
PKGS = f"{CONDA3}/pkgs"
PYENV = f"{HOME}/.pyenv/versions/3.11.9"
PYENV_SITE = f"{PYENV}/lib/python3.11/site-packages"

# Python 2.7-era layout from the story.
USER27 = "/home/c/.local/lib/python2.7/site-packages"
LOCAL27 = "/usr/local/lib/python2.7/dist-packages"
DEB27 = "/usr/lib/python2.7/dist-packages"
CONDA2 = "/home/c/miniconda2"
CONDA2_SITE = f"{CONDA2}/lib/python2.7/site-packages"
CAFFE = "/home/c/technologies/caffe/python"
EGG27 = f"{LOCAL27}/numpy-1.13.3-py2.7-linux-x86_64.egg"

REFS = {
    "system": EnvRef(EnvKind.SYSTEM, "/usr", "system"),
    "local": EnvRef(EnvKind.LOCAL, "/usr/local", "local"),
    "user": EnvRef(EnvKind.USER, f"{HOME}/.local", "user"),
    "venv": EnvRef(EnvKind.VENV, VENV, ".venv"),
    "conda": EnvRef(EnvKind.CONDA, CONDA3, "base"),
    "ml": EnvRef(EnvKind.CONDA, ML, "ml"),
    "pkgs": EnvRef(EnvKind.CONDA_PKGS, PKGS, "pkgs"),
    "pyenv": EnvRef(EnvKind.PYENV, PYENV, "3.11.9"),
    "system27": EnvRef(EnvKind.SYSTEM, "/usr", "system"),
    "local27": EnvRef(EnvKind.LOCAL, "/usr/local", "local"),
    "user27": EnvRef(EnvKind.USER, "/home/c/.local", "user"),
    "conda2": EnvRef(EnvKind.CONDA, CONDA2, "base"),
}


def mkcopy(
    name: str,
    version: str,
    site: str,
    env: str,
    *,
    fmt: Format = Format.DIST_INFO,
    manager: Manager = Manager.PIP,
    path: str | None = None,
    owner: str | None = None,
    owner_version: str | None = None,
    import_path: str | None = None,
    top_level: tuple[str, ...] | None = None,
) -> Copy:
    suffix = {Format.DIST_INFO: "dist-info", Format.EGG_INFO: "egg-info"}.get(fmt, "egg")
    return Copy(
        name=canonicalize(name),
        display_name=name,
        version=version,
        format=fmt,
        path=path or f"{import_path or site}/{name}-{version}.{suffix}",
        site=site,
        env=REFS[env],
        manager=manager,
        evidence=(),
        owner=owner,
        owner_version=owner_version,
        import_path=import_path,
        top_level=(name.lower(),) if top_level is None else top_level,
    )


def interp(
    exe: str, prefix: str, *path: str, version: str = "3.11.2", user: str | None = None
) -> Interpreter:
    return Interpreter(exe, version, prefix, tuple(path), user_site=user)


SYS_PY = interp("/usr/bin/python3.11", "/usr", USER311, LOCAL311, DEB3, DEB311, user=USER311)
VENV_PY = interp(f"{VENV}/bin/python", VENV, VENV_SITE)
VENV_SSP_PY = interp(
    f"{VENV}/bin/python", VENV, USER311, VENV_SITE, LOCAL311, DEB3, DEB311, user=USER311
)
CONDA_PY = interp(f"{CONDA3}/bin/python3.11", CONDA3, USER311, CONDA3_SITE, user=USER311)
ML_PY = interp(f"{ML}/bin/python3.11", ML, USER311, ML_SITE, user=USER311)
PYENV_PY = interp(f"{PYENV}/bin/python3.11", PYENV, USER311, PYENV_SITE, user=USER311)

SYS27_PY = interp(
    "/usr/bin/python2.7",
    "/usr",
    EGG27,
    CAFFE,
    USER27,
    LOCAL27,
    DEB27,
    version="2.7.12",
    user=USER27,
)
CONDA2_PY = interp(
    f"{CONDA2}/bin/python", CONDA2, CAFFE, USER27, CONDA2_SITE, version="2.7.14", user=USER27
)


def env(
    ref: str, sites: tuple[str, ...], *interps: Interpreter, em: bool = False, py: str = "3.11"
) -> Env:
    r = REFS[ref]
    return Env(r.kind, r.prefix, r.name, py, sites, tuple(interps), externally_managed=em)


def modern_envs(venv_py: Interpreter = VENV_PY) -> tuple[Env, ...]:
    return (
        env("system", (DEB3, DEB311), SYS_PY, em=True),
        env("local", (LOCAL311,), em=True),
        env("user", (USER311,)),
        env("venv", (VENV_SITE,), venv_py),
        env("conda", (CONDA3_SITE,), CONDA_PY),
        env("ml", (ML_SITE,), ML_PY),
        env("pkgs", ()),
        env("pyenv", (PYENV_SITE,), PYENV_PY),
    )


def story_envs() -> tuple[Env, ...]:
    return (
        env("system27", (DEB27,), SYS27_PY, py="2.7"),
        env("local27", (LOCAL27,), py="2.7"),
        env("user27", (USER27,), py="2.7"),
        env("conda2", (CONDA2_SITE,), CONDA2_PY, py="2.7"),
    )


def inventory(copies: list[Copy], envs: tuple[Env, ...] | None = None, **kw: object) -> Inventory:
    return Inventory(envs=modern_envs() if envs is None else envs, copies=tuple(copies), **kw)  # type: ignore[arg-type]


# --- visible -----------------------------------------------------------------


def test_local_pip_copy_wins_over_apt_copy() -> None:
    """sudo pip's /usr/local copy precedes apt's /usr/lib/python3 copy."""
    apt = mkcopy("numpy", "1.24.2", DEB3, "system", manager=Manager.APT)
    pip = mkcopy("numpy", "1.26.4", LOCAL311, "local")
    assert visible(SYS_PY, [apt, pip]) == [pip, apt]


def test_user_site_wins_in_conda_env() -> None:
    """The user site comes before a conda env's own site-packages."""
    conda = mkcopy("numpy", "1.26.4", CONDA3_SITE, "conda", manager=Manager.CONDA)
    user = mkcopy("numpy", "1.21.0", USER311, "user")
    assert visible(CONDA_PY, [conda, user]) == [user, conda]


def test_copy_outside_search_path_is_invisible() -> None:
    """A venv without system site packages does not see /usr/lib copies."""
    apt = mkcopy("numpy", "1.24.2", DEB3, "system", manager=Manager.APT)
    assert visible(VENV_PY, [apt]) == []


def test_conda_pkgs_cache_is_imported_by_nobody() -> None:
    """Even an interpreter listing the cache dir does not import from it."""
    cached = mkcopy("numpy", "1.13.3", f"{PKGS}/numpy-1.13.3/lib", "pkgs")
    weird = interp("/x/python", "/x", f"{PKGS}/numpy-1.13.3/lib")
    assert visible(weird, [cached]) == []


def test_egg_visible_only_through_its_import_path() -> None:
    """An egg counts at its own sys.path entry, not at its site dir."""
    egg = mkcopy("numpy", "1.13.3", LOCAL27, "local27", fmt=Format.EGG, import_path=EGG27)
    apt = mkcopy("numpy", "1.11.0", DEB27, "system27", manager=Manager.APT)
    assert visible(SYS27_PY, [apt, egg]) == [egg, apt]
    no_pth = dataclasses.replace(SYS27_PY, search_path=(USER27, LOCAL27, DEB27))
    assert visible(no_pth, [apt, egg]) == [apt]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("dist-info", "1.0"), ("egg-info", "2.0")),
        (("dist-info", "2.0"), ("dist-info", "1.0")),
        (("egg-info", "1.10"), ("egg-info", "1.9")),
    ],
)
def test_ties_at_one_entry_are_deterministic(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    """Same position: dist-info > egg-info, then higher version, whatever the input order."""
    a = mkcopy("six", first[1], VENV_SITE, "venv", fmt=Format(first[0]))
    b = mkcopy("six", second[1], VENV_SITE, "venv", fmt=Format(second[0]))
    assert visible(VENV_PY, [a, b]) == [a, b]
    assert visible(VENV_PY, [b, a]) == [a, b]


def test_ties_fall_back_to_path() -> None:
    """Equal format and version: the path decides, so scans agree."""
    a = mkcopy("six", "1.0", VENV_SITE, "venv", path=f"{VENV_SITE}/a.dist-info")
    b = mkcopy("six", "1.0", VENV_SITE, "venv", path=f"{VENV_SITE}/b.dist-info")
    assert visible(VENV_PY, [b, a]) == [a, b]


def test_repeated_entry_counts_at_first_position() -> None:
    """A dir listed twice on the path keeps its first index."""
    twice = interp("/x/python", "/x", DEB3, LOCAL311, DEB3)
    apt = mkcopy("numpy", "1.24.2", DEB3, "system", manager=Manager.APT)
    pip = mkcopy("numpy", "1.26.4", LOCAL311, "local")
    assert visible(twice, [pip, apt]) == [apt, pip]


def test_version_key_orders_unparseable_last() -> None:
    assert version_key("1.10") > version_key("1.9") > version_key("not a version")


# --- shadowing / imported_by --------------------------------------------------


def test_shadowing_per_interpreter() -> None:
    """Each interpreter gets its own winner; positions tell shadowing from ties."""
    apt = mkcopy("numpy", "1.24.2", DEB3, "system", manager=Manager.APT)
    pip = mkcopy("numpy", "1.26.4", LOCAL311, "local")
    venv = mkcopy("numpy", "2.0.0", VENV_SITE, "venv")
    inv = inventory([apt, pip, venv])
    (venv_res, sys_res) = shadowing(inv)[canonicalize("numpy")]  # by executable
    assert sys_res.interpreter == SYS_PY and sys_res.winner == pip and sys_res.shadowed == (apt,)
    assert sys_res.shadows and sys_res.positions == (1, 2)
    assert venv_res.winner == venv and not venv_res.shadows


def test_shadowing_names_filter() -> None:
    six = mkcopy("six", "1.16.0", DEB3, "system", manager=Manager.APT)
    numpy = mkcopy("numpy", "1.24.2", DEB3, "system", manager=Manager.APT)
    out = shadowing(inventory([six, numpy]), names={canonicalize("six")})
    assert list(out) == ["six"]


def test_imported_by_winner_only() -> None:
    """The winner lists its interpreters; a shadowed copy lists none."""
    apt = mkcopy("numpy", "1.24.2", DEB3, "system", manager=Manager.APT)
    pip = mkcopy("numpy", "1.26.4", LOCAL311, "local")
    venv_copy = mkcopy("numpy", "2.0.0", VENV_SITE, "venv")
    table = imported_by(inventory([apt, pip, venv_copy]))
    assert table[pip.key] == ("/usr/bin/python3.11",)
    assert table[apt.key] == ()
    assert table[venv_copy.key] == (f"{VENV}/bin/python",)


def test_imported_by_many_interpreters_sorted() -> None:
    """The user-site copy wins for every interpreter that admits ~/.local."""
    user = mkcopy("requests", "2.31.0", USER311, "user")
    table = imported_by(inventory([user]))
    expected = sorted(i.executable for i in (SYS_PY, CONDA_PY, ML_PY, PYENV_PY))
    assert table[user.key] == tuple(expected)


def test_with_imported_by_fills_copies() -> None:
    pip = mkcopy("numpy", "1.26.4", LOCAL311, "local")
    inv = with_imported_by(inventory([pip]))
    assert inv.copies[0].imported_by == ("/usr/bin/python3.11",)
    assert inv.copies[0].to_json()["imported_by"] == ["/usr/bin/python3.11"]


def test_interpreters_deduplicated_and_sorted() -> None:
    envs = (*modern_envs(), env("system", (DEB3,), SYS_PY))
    exes = [i.executable for i in interpreters(Inventory(envs=envs, copies=()))]
    assert exes == sorted(set(exes))


def test_story_layout_27() -> None:
    """Story: /usr/bin/python2.7 imports the easy_install egg; conda python the ~/.local copy."""
    egg = mkcopy(
        "numpy",
        "1.13.3",
        LOCAL27,
        "local27",
        fmt=Format.EGG,
        import_path=EGG27,
        manager=Manager.EASY_INSTALL,
    )
    apt = mkcopy("numpy", "1.11.0", DEB27, "system27", manager=Manager.APT)
    user = mkcopy("numpy", "1.13.3", USER27, "user27")
    conda = mkcopy(
        "numpy",
        "1.13.3",
        CONDA2_SITE,
        "conda2",
        fmt=Format.EGG_INFO,
        manager=Manager.CONDA,
        path=f"{CONDA2_SITE}/numpy-1.13.3-py2.7.egg-info",
    )
    table = imported_by(Inventory(envs=story_envs(), copies=(egg, apt, user, conda)))
    assert table[egg.key] == ("/usr/bin/python2.7",)
    assert table[user.key] == (f"{CONDA2}/bin/python",)
    assert table[apt.key] == table[conda.key] == ()


def test_scales_linearly() -> None:
    """5,000 copies x 200 interpreters resolve well under a second (no copies x interpreters)."""
    sites = [f"/venvs/v{i}/site-packages" for i in range(200)]
    interps = tuple(
        interp(f"/venvs/v{i}/bin/python", f"/venvs/v{i}", USER311, s) for i, s in enumerate(sites)
    )
    envs = (Env(EnvKind.VENV, "/venvs", "v", "3.11", tuple(sites), interps),)
    copies = [mkcopy(f"p{j}", "1.0", sites[j % 200], "venv") for j in range(5000)]
    start = time.perf_counter()
    table = imported_by(Inventory(envs=envs, copies=tuple(copies)))
    assert time.perf_counter() - start < 1.0
    assert all(len(v) == 1 for v in table.values())
