"""Find every environment on the machine and its site dirs (contract §3).

Discovery only looks at directory names and small marker files (pyvenv.cfg,
conda-meta/, environments.txt): it never runs an interpreter. System paths are
re-rooted under `--root`; $HOME-based ones follow the given HOME.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from envwatchd.config import Discovery, expand
from envwatchd.formats._io import read_text
from envwatchd.layout import Roots, prefix_site_dirs, python_versions, system_search_path
from envwatchd.model import Env, EnvKind, Interpreter, Problem
from envwatchd.venvs import VenvInfo, read_pyvenv, walk_for_envs

__all__ = ["Machine", "discover"]

_CONDA_BASES = ("miniconda*", "anaconda*", "miniforge*", "mambaforge*", "micromamba")


@dataclass(slots=True)
class Machine:
    """The inputs of discovery: where root and home are, and the environment."""

    root: str = ""
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    settings: Discovery = field(default_factory=Discovery)

    @property
    def roots(self) -> Roots:
        return Roots(self.root)

    @property
    def user_base(self) -> str:
        return self.environ.get("PYTHONUSERBASE") or os.path.join(self.home, ".local")

    def user_site(self, version: str) -> str:
        return os.path.join(self.user_base, "lib", f"python{version}", "site-packages")


class _Found:
    """Accumulates envs, skipping prefixes seen before (first finder wins)."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.envs: list[Env] = []
        self.problems: list[Problem] = []
        self._seen: set[str] = set()
        self.excludes = [expand(p, machine.home) for p in machine.settings.exclude]

    def excluded(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, pat) for pat in self.excludes)

    def add(self, env: Env) -> None:
        key = os.path.realpath(env.prefix)
        if key in self._seen or self.excluded(env.prefix):
            return
        self._seen.add(key)
        self.envs.append(env)

    def seen(self, prefix: str) -> bool:
        return os.path.realpath(prefix) in self._seen


def discover(machine: Machine) -> tuple[list[Env], list[Problem]]:
    found = _Found(machine)
    _system(found)
    _user(found)
    _conda(found)
    _pyenv(found)
    _uv_pythons(found)
    _venv_homes(found)
    _extra(found)
    return found.envs, found.problems


def _interp(m: Machine, exe: str, version: str, prefix: str, sites: list[str]) -> Interpreter:
    user = m.user_site(version)
    return Interpreter(exe, version, prefix, tuple([user, *sites]), user)


def _system(found: _Found) -> None:
    m, r = found.machine, found.machine.roots
    vers = python_versions(r("/usr/lib"), r("/usr/lib64"), r("/usr/local/lib"))
    externally = any(os.path.exists(r(f"/usr/lib/python{v}/EXTERNALLY-MANAGED")) for v in vers)
    interps = tuple(
        _interp(m, r(f"/usr/bin/python{v}"), v, r("/usr"), system_search_path(r, v)) for v in vers
    )
    system_sites = [r("/usr/lib/python3/dist-packages")] + [
        s for v in vers for s in system_search_path(r, v) if not s.startswith(r("/usr/local/"))
    ]
    local_sites = [
        s for v in vers for s in system_search_path(r, v) if s.startswith(r("/usr/local/"))
    ]
    top = vers[-1] if vers else None
    found.add(
        Env(EnvKind.SYSTEM, r("/usr"), "system", top, _existing(system_sites), interps, externally)
    )
    local_interps = tuple(
        _interp(
            m,
            r(f"/usr/local/bin/python{v}"),
            v,
            r("/usr/local"),
            [r(f"/usr/local/lib/python{v}/site-packages")],
        )
        for v in vers
        if os.path.exists(r(f"/usr/local/lib/python{v}/os.py"))
    )
    if local_interps:
        local_sites += [i.search_path[1] for i in local_interps]
    found.add(
        Env(
            EnvKind.LOCAL,
            r("/usr/local"),
            "local",
            top,
            _existing(local_sites),
            local_interps,
            externally,
        )
    )


def _user(found: _Found) -> None:
    m = found.machine
    base = m.user_base
    vers = python_versions(os.path.join(base, "lib"))
    sites = [m.user_site(v) for v in vers]
    found.add(Env(EnvKind.USER, base, "user", vers[-1] if vers else None, _existing(sites)))


def _conda_bases(found: _Found) -> Iterator[str]:
    m, r = found.machine, found.machine.roots
    for pattern in _CONDA_BASES:
        yield from sorted(glob.glob(os.path.join(glob.escape(m.home), pattern)))
    yield r("/opt/conda")
    yield from sorted(glob.glob(os.path.join(glob.escape(r("/opt")), "*conda*")))


def _conda(found: _Found) -> None:
    m = found.machine
    caches: list[str] = []
    for base in _conda_bases(found):
        if not os.path.isdir(base):
            continue
        if os.path.isdir(os.path.join(base, "conda-meta")):
            _add_conda_env(found, base, "base")
        for env in _subdirs(os.path.join(base, "envs")):
            _add_conda_env(found, env, os.path.basename(env))
        caches.append(os.path.join(base, "pkgs"))
    dot = os.path.join(m.home, ".conda")
    for env in _subdirs(os.path.join(dot, "envs")):
        _add_conda_env(found, env, os.path.basename(env))
    for env in _environments_txt(os.path.join(dot, "environments.txt"), found):
        _add_conda_env(found, env, os.path.basename(env))
    caches.append(os.path.join(dot, "pkgs"))
    for cache in caches:
        if os.path.isdir(cache) and not found.seen(cache):
            found.add(Env(EnvKind.CONDA_PKGS, cache, "pkgs", None, ()))


def _add_conda_env(found: _Found, prefix: str, name: str) -> None:
    meta = os.path.join(prefix, "conda-meta")
    if not os.path.isdir(meta):
        return
    m = found.machine
    vers = python_versions(os.path.join(prefix, "lib")) or _conda_python(meta)
    sites = [s for v in vers for s in prefix_site_dirs(prefix, v)]
    interps = tuple(
        _interp(m, _python_exe(prefix, v), v, prefix, prefix_site_dirs(prefix, v)) for v in vers
    )
    found.add(
        Env(
            EnvKind.CONDA,
            prefix,
            name,
            vers[-1] if vers else None,
            _existing(sites),
            interps,
            conda_meta=meta,
        )
    )


def _conda_python(meta: str) -> list[str]:
    """The python version of a conda env with no site dir yet, from its python record."""
    try:
        names = os.listdir(meta)
    except OSError:
        return []
    for name in names:
        if name.startswith("python-") and name[7:8].isdigit():
            parts = name[7:].split(".")
            if len(parts) >= 2 and parts[1].isdigit():
                return [f"{parts[0]}.{parts[1]}"]
    return []


def _environments_txt(path: str, found: _Found) -> list[str]:
    """conda's registry of env prefixes. Read like every scanned file: bounded, and a
    FIFO in its place is refused instead of blocking discovery forever."""
    try:
        lines = read_text(path, 4 << 20).splitlines()
        return [ln.strip() for ln in lines if ln.strip() and os.path.isabs(ln.strip())]
    except FileNotFoundError:
        return []
    except OSError as exc:
        found.problems.append(Problem(path, f"cannot read environments.txt: {exc}"))
        return []


def _pyenv(found: _Found) -> None:
    m = found.machine
    root = m.environ.get("PYENV_ROOT") or os.path.join(m.home, ".pyenv")
    for prefix in _subdirs(os.path.join(root, "versions")):
        if os.path.isdir(os.path.join(prefix, "conda-meta")):
            _add_conda_env(found, prefix, os.path.basename(prefix))
        elif os.path.isfile(os.path.join(prefix, "pyvenv.cfg")):
            _add_venv(found, prefix, EnvKind.VENV)
        else:
            _add_interpreter_prefix(found, prefix, EnvKind.PYENV, os.path.basename(prefix))


def _uv_pythons(found: _Found) -> None:
    m = found.machine
    data = m.environ.get("XDG_DATA_HOME") or os.path.join(m.home, ".local", "share")
    root = m.environ.get("UV_PYTHON_INSTALL_DIR") or os.path.join(data, "uv", "python")
    for prefix in _subdirs(root):
        _add_interpreter_prefix(found, prefix, EnvKind.OTHER, os.path.basename(prefix))


def _add_interpreter_prefix(found: _Found, prefix: str, kind: EnvKind, name: str) -> None:
    m = found.machine
    vers = python_versions(os.path.join(prefix, "lib"))
    sites = [s for v in vers for s in prefix_site_dirs(prefix, v)]
    interps = tuple(
        _interp(m, _python_exe(prefix, v), v, prefix, prefix_site_dirs(prefix, v)) for v in vers
    )
    found.add(Env(kind, prefix, name, vers[-1] if vers else None, _existing(sites), interps))


def _venv_homes(found: _Found) -> None:
    m = found.machine
    env, home = m.environ, m.home
    data = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    cache = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    pipx_home = env.get("PIPX_HOME") or os.path.join(data, "pipx")
    homes: list[tuple[str, EnvKind]] = [
        (os.path.join(pipx_home, "venvs"), EnvKind.PIPX),
        (os.path.join(home, ".local", "pipx", "venvs"), EnvKind.PIPX),
        (env.get("UV_TOOL_DIR") or os.path.join(data, "uv", "tools"), EnvKind.VENV),
        (os.path.join(home, ".virtualenvs"), EnvKind.VENV),
        (
            os.path.join(
                env.get("POETRY_CACHE_DIR") or os.path.join(cache, "pypoetry"), "virtualenvs"
            ),
            EnvKind.VENV,
        ),
        (os.path.join(data, "pdm", "venvs"), EnvKind.VENV),
    ]
    if env.get("WORKON_HOME"):
        homes.insert(3, (expand(env["WORKON_HOME"], home), EnvKind.VENV))
    for parent, kind in homes:
        for prefix in _subdirs(parent):
            _add_venv(found, prefix, kind)
    for prefix in glob.glob(os.path.join(glob.escape(data), "hatch", "env", "virtual", "*", "*")):
        _add_venv(found, prefix, EnvKind.VENV)
    for search in m.settings.search_dirs:
        for prefix, is_conda in walk_for_envs(
            expand(search, home), m.settings.search_depth, found.excluded, found.problems
        ):
            if is_conda:
                _add_conda_env(found, prefix, os.path.basename(prefix))
            else:
                _add_venv(found, prefix, EnvKind.VENV)


def _add_venv(found: _Found, prefix: str, kind: EnvKind) -> None:
    info = read_pyvenv(prefix, found.problems)
    if info is None and not os.access(prefix, os.R_OK | os.X_OK):
        # pyvenv.cfg cannot even be stat-ed: say so rather than skip the tree silently
        found.problems.append(Problem(prefix, "cannot read environment: permission denied"))
    if info is None or found.seen(prefix):
        return
    m = found.machine
    sites = prefix_site_dirs(prefix, info.version)
    path = [*sites]
    if info.system_site:
        # site.py adds the venv's own dir first, then the user site, then the base's
        # (verified against real venvs: tests/test_interpreters_real.py)
        path = [*sites, m.user_site(info.version), *_base_sites(found, info)]
    interp = Interpreter(
        os.path.join(prefix, "bin", "python"),
        info.version,
        prefix,
        tuple(path),
        m.user_site(info.version) if info.system_site else None,
    )
    name = os.path.basename(prefix)
    if name in (".venv", "venv", ".env", "env"):
        name = os.path.basename(os.path.dirname(prefix)) or name
    found.add(Env(kind, prefix, name, info.version, _existing(sites), (interp,)))


def _base_sites(found: _Found, info: VenvInfo) -> list[str]:
    """The base interpreter's site dirs, and make sure that base is inventoried."""
    r = found.machine.roots
    base = info.base_prefix
    if base == r("/usr"):
        return system_search_path(r, info.version)
    if base == "/usr":
        return system_search_path(Roots(""), info.version)
    if not found.seen(base) and os.path.isdir(base):
        if os.path.isdir(os.path.join(base, "conda-meta")):
            _add_conda_env(found, base, os.path.basename(base))
        else:
            kind = EnvKind.PYENV if "/.pyenv/versions/" in base else EnvKind.OTHER
            _add_interpreter_prefix(found, base, kind, os.path.basename(base))
    return prefix_site_dirs(base, info.version)


def _extra(found: _Found) -> None:
    m = found.machine
    for raw in [*m.settings.extra_roots, *m.settings.extra_site_dirs]:
        path = os.path.abspath(expand(raw, m.home))
        found.add(Env(EnvKind.OTHER, path, os.path.basename(path) or path, None, (path,)))


def _python_exe(prefix: str, version: str) -> str:
    exe = os.path.join(prefix, "bin", f"python{version}")
    if os.path.exists(exe) or not os.path.exists(os.path.join(prefix, "bin", "python")):
        return exe
    return os.path.join(prefix, "bin", "python")


def _subdirs(parent: str) -> list[str]:
    try:
        with os.scandir(parent) as it:
            return sorted(e.path for e in it if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def _existing(paths: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    seen: set[str] = set()
    for p in paths:
        key = os.path.realpath(p)
        if key not in seen and os.path.isdir(p):
            seen.add(key)
            out.append(p)
    return tuple(out)
