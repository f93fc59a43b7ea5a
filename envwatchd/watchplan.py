"""Which directories to watch, and as what: O(site dirs), never O(files).

Each site dir and conda-meta dir, dpkg's admin dir, each pkgs cache, and
the PARENTS where new trees appear: the known homes (conda envs/, pipx and
uv venv homes, pyenv versions/, ...), the `lib/` of an env with no site dir
yet (an empty conda env) and, for every site dir an interpreter would search
but which does not exist yet (the user site before the first `pip install
--user`), its deepest existing ancestor. Subdirs of env homes that are not envs yet are watched too:
conda, uv and virtualenv create the prefix before its marker file.
"""

from __future__ import annotations

import os

from envwatchd.inventory import Scanner
from envwatchd.model import EnvKind
from envwatchd.watcher import Role

__all__ = ["plan"]

_SITE_KINDS_WITH_LIB = (EnvKind.VENV, EnvKind.PIPX, EnvKind.CONDA, EnvKind.PYENV, EnvKind.OTHER)


def plan(scanner: Scanner) -> dict[str, Role]:
    m = scanner.machine
    out: dict[str, Role] = {}
    bounds = tuple(b for b in (m.home, m.roots("/usr"), m.roots("/opt")) if b)
    for env in scanner.envs:
        for site in env.site_dirs:
            out[site] = Role.SITE
        if env.conda_meta:
            out[env.conda_meta] = Role.CONDA_META
        if env.kind is EnvKind.CONDA_PKGS:
            out[env.prefix] = Role.PARENT
        elif env.kind in _SITE_KINDS_WITH_LIB and not env.site_dirs:
            # no site dir yet (an empty conda env): watch where one will appear
            _parent(out, os.path.join(env.prefix, "lib"), (*bounds, env.prefix))
        for interp in env.interpreters:
            for path in interp.search_path:
                if path not in out and not os.path.isdir(path):
                    _parent(out, path, bounds)
    dpkg = m.roots("/var/lib/dpkg")
    if os.path.isfile(os.path.join(dpkg, "status")):
        out[dpkg] = Role.DPKG
    for home in _homes(scanner):
        _parent(out, home, bounds)
    prefixes = {e.prefix for e in scanner.envs}
    for home in _env_homes(scanner):
        for sub in _subdirs(home):
            if sub not in prefixes:
                # not an env YET: conda, uv and virtualenv write the marker (conda-meta/,
                # pyvenv.cfg) only after creating the prefix, so watch it until they do
                out.setdefault(sub, Role.PARENT)
    return out


def _parent(out: dict[str, Role], path: str, bounds: tuple[str, ...]) -> None:
    """Watch `path` if it is a dir, else its deepest existing ancestor inside `bounds`."""
    probe = path
    while not os.path.isdir(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return
        probe = parent
    if any(probe == b or probe.startswith(b.rstrip("/") + "/") for b in bounds):
        out.setdefault(probe, Role.PARENT)


def _homes(scanner: Scanner) -> list[str]:
    m = scanner.machine
    return [
        *_env_homes(scanner),
        os.path.join(m.home, ".conda"),
        os.path.join(m.user_base, "lib"),
        m.roots("/usr/lib"),
        m.roots("/usr/local/lib"),
    ]


def _env_homes(scanner: Scanner) -> list[str]:
    """Dirs whose every subdir is meant to be an environment (or a Python prefix)."""
    m = scanner.machine
    env, home = m.environ, m.home
    data = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    cache = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    homes = [
        os.path.join(home, ".conda", "envs"),
        os.path.join(env.get("PIPX_HOME") or os.path.join(data, "pipx"), "venvs"),
        env.get("UV_TOOL_DIR") or os.path.join(data, "uv", "tools"),
        env.get("UV_PYTHON_INSTALL_DIR") or os.path.join(data, "uv", "python"),
        os.path.join(home, ".virtualenvs"),
        os.path.join(env.get("PYENV_ROOT") or os.path.join(home, ".pyenv"), "versions"),
        os.path.join(env.get("POETRY_CACHE_DIR") or os.path.join(cache, "pypoetry"), "virtualenvs"),
        os.path.join(data, "pdm", "venvs"),
    ]
    if env.get("WORKON_HOME"):
        homes.append(env["WORKON_HOME"])
    for e in scanner.envs:
        if e.kind is EnvKind.CONDA and e.name == "base":
            homes.append(os.path.join(e.prefix, "envs"))
    return homes


def _subdirs(parent: str) -> list[str]:
    """Visible subdirs, as discovery lists them (symlinks to dirs included)."""
    try:
        with os.scandir(parent) as it:
            return sorted(e.path for e in it if not e.name.startswith(".") and e.is_dir())
    except OSError:
        return []
