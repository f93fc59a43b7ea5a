"""Drive REAL package managers offline, isolated from this machine's configuration.

Speed (measured here, 2 CPUs): ``python -m venv`` with ensurepip costs 3-4 s, without
pip 0.08 s. So ``make_venv`` defaults to ``with_pip=False`` and ``pip_install`` runs
the pip of the *outer* interpreter with ``--python V/bin/python`` (pip >= 22.3; pip
23.2.1 here): 0.95-1.25 s per install, and the result is byte-identical to the venv's
own pip (same INSTALLER/RECORD/direct_url.json). uv, when found, installs in ~0.08 s.

Isolation: this host sets ``PIP_FIND_LINKS=/opt/wheels`` and ``/etc/pip.conf`` (with a
constraints file); ``isolated_env`` drops every ``PIP_*``/``UV_*``/``PYTHON*`` variable,
sets ``PIP_CONFIG_FILE=/dev/null`` and points HOME, XDG dirs and every cache into the
test dir. dpkg always gets ``--log``: without it ``dpkg --root`` appends to the HOST's
/var/log/dpkg.log.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "PYENV_PYTHON",
    "RealToolError",
    "base_python",
    "build_deb",
    "dpkg_install",
    "dpkg_remove",
    "find_uv",
    "isolated_env",
    "make_venv",
    "pip_install",
    "pip_user_install",
    "run",
    "uv_pip_install",
]

PYENV_PYTHON = Path("/root/.pyenv/versions/3.11.7/bin/python3")
StrPath = str | os.PathLike[str]


class RealToolError(RuntimeError):
    """A real tool exited non-zero; carries the command and its output."""

    def __init__(self, cmd: Sequence[str], proc: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}".rstrip()
        )
        self.cmd = list(cmd)
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr


def base_python() -> str:
    """A real 3.11 interpreter by full path (pyenv shims need $HOME/.pyenv, so avoid them)."""
    if PYENV_PYTHON.exists():
        return str(PYENV_PYTHON)
    found = shutil.which("python3")
    return found or sys.executable


def isolated_env(tmp: StrPath, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child environment with no host pip/uv config and every cache under ``tmp``."""
    home = Path(tmp) / "home"
    drop = ("PIP_", "UV_", "PYTHON", "VIRTUAL_ENV", "CONDA", "PIPX_", "POETRY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        PIP_CACHE_DIR=str(home / ".cache" / "pip"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        UV_CACHE_DIR=str(home / ".cache" / "uv"),
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_CONFIG="1",
        PYTHONDONTWRITEBYTECODE="1",  # as on this host; pip still writes __pycache__
    )
    env.update(extra or {})
    home.mkdir(parents=True, exist_ok=True)
    return env


def run(
    cmd: Sequence[StrPath], *, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a real tool; raise RealToolError with its output on failure."""
    args = [str(c) for c in cmd]
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RealToolError(args, proc)
    return proc


def make_venv(
    path: StrPath,
    *,
    system_site: bool = False,
    python: StrPath | None = None,
    with_pip: bool = False,
    env: Mapping[str, str] | None = None,
) -> Path:
    """``python -m venv`` (0.08 s; ``with_pip=True`` runs ensurepip: 3-4 s). Returns bin/python."""
    cmd: list[StrPath] = [python or base_python(), "-m", "venv"]
    if system_site:
        cmd.append("--system-site-packages")
    if not with_pip:
        cmd.append("--without-pip")
    run([*cmd, path], env=env)
    return Path(path) / "bin" / "python"


def _pip_cmd(python: StrPath) -> list[str]:
    """The outer interpreter's pip driving ``python`` (so venvs need no ensurepip)."""
    return [sys.executable, "-m", "pip", "--python", str(python)]


def pip_install(
    python: StrPath, *args: StrPath, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``pip install --no-index`` into the interpreter ``python`` (a venv's bin/python)."""
    cmd = [*_pip_cmd(python), "install", "--no-index", "--disable-pip-version-check", *args]
    return run(cmd, env=env, timeout=timeout)


def pip_user_install(
    python: StrPath, userbase: StrPath, wheel: StrPath, *, env: Mapping[str, str]
) -> Path:
    """``pip install --user`` with ``PYTHONUSERBASE``; returns the user site-packages dir.

    ``python`` must not be a venv interpreter (pip refuses --user inside a venv) nor
    Debian's /usr/bin/python3 (PEP 668); the pyenv interpreter works.
    """
    child = {**env, "PYTHONUSERBASE": str(userbase)}
    cmd = [python, "-m", "pip", "install", "--user", "--no-index", "--disable-pip-version-check"]
    run([*cmd, wheel], env=child)
    ver = run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], env=child)
    return Path(userbase) / "lib" / f"python{ver.stdout.strip()}" / "site-packages"


def find_uv() -> str | None:
    """The uv binary: ``$ENVWATCHD_TEST_UV``, the test venv's own (uv is a test
    dependency), or PATH."""
    beside = Path(sys.executable).parent / "uv"
    return (
        os.environ.get("ENVWATCHD_TEST_UV")
        or (str(beside) if beside.exists() else None)
        or (shutil.which("uv"))
    )


def uv_pip_install(
    uv: StrPath, python: StrPath, *args: StrPath, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """``uv pip install --offline --no-index --link-mode copy`` (hard links would share inodes)."""
    cmd = [uv, "pip", "install", "--offline", "--no-index", "--link-mode", "copy"]
    return run([*cmd, "--python", python, *args], env=env)


# --------------------------------------------------------------------------- dpkg


def build_deb(
    tmp: StrPath,
    pkg: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    control: Mapping[str, str] | None = None,
) -> Path:
    """``dpkg-deb --root-owner-group -b`` a package holding ``files`` (root-relative paths).

    Adds DEBIAN/md5sums like dh_md5sums (C-sorted). ``control`` adds/overrides fields.
    """
    stage = Path(tmp) / f"stage-{pkg}-{version}"
    for rel, data in files.items():
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    fields = {
        "Package": pkg,
        "Version": version,
        "Architecture": "all",
        "Maintainer": "T <t@example.invalid>",
        "Description": "tiny",
        **(control or {}),
    }
    (stage / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (stage / "DEBIAN" / "control").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    md5 = sorted(files, key=lambda s: s.encode())
    (stage / "DEBIAN" / "md5sums").write_text("".join(f"{_md5(files[p])}  {p}\n" for p in md5))
    deb = Path(tmp) / f"{pkg}_{version}_{fields['Architecture']}.deb"
    run(["dpkg-deb", "--root-owner-group", "-b", stage, deb])
    return deb


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _dpkg_root(root: StrPath) -> Path:
    admin = Path(root) / "var" / "lib" / "dpkg"
    for sub in ("info", "updates"):
        (admin / sub).mkdir(parents=True, exist_ok=True)
    for name in ("status", "available"):
        (admin / name).touch()
    return Path(root)


def _dpkg(root: StrPath, *args: StrPath) -> subprocess.CompletedProcess[str]:
    base = _dpkg_root(root)
    log = base / "dpkg.log"  # REQUIRED: otherwise dpkg --root logs to the host's /var/log
    flags = ["--force-not-root", "--force-script-chrootless", f"--log={log}"]
    return run(["dpkg", f"--root={base}", *flags, *args])


def dpkg_install(
    root: StrPath, deb: StrPath, *, force: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``dpkg --root=R --force-script-chrootless --log=R/dpkg.log -i x.deb``.

    ``force=("depends",)`` lets a package whose Depends are absent from the fake root
    reach ``install ok installed`` instead of ``unpacked``.
    """
    return _dpkg(root, *(f"--force-{f}" for f in force), "-i", deb)


def dpkg_remove(root: StrPath, pkg: str) -> subprocess.CompletedProcess[str]:
    """``dpkg --root=R ... -r pkg``: files, .list, .md5sums and the stanza go away."""
    return _dpkg(root, "-r", pkg)
