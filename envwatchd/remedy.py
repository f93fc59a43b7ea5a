"""Exact commands that repair an inconsistency, in the owning manager's own words.

Why a module: the conflict rules and the CLI both print remedies, and a remedy
that names the wrong tool does harm (``pip uninstall`` on a dpkg package is the
very cross-manager uninstall envwatchd warns about). Every function here is pure
string building; nothing is run.

Traps encoded here:
- ``pip uninstall NAME`` removes the FIRST copy on the interpreter's path, not a
  chosen one, so callers must pick an interpreter for which that copy wins.
- pip run by a venv's interpreter refuses to touch copies outside the venv
  (the user site, the base dirs): use the base python for those.
- A Debian python carries PEP 668's marker: pip needs ``--break-system-packages``
  even to uninstall.
- conda addresses environments by ``-n NAME`` only for ``envs/NAME`` and the base
  prefix; anything else needs ``-p PREFIX``.
"""

from __future__ import annotations

import os
import shlex

from envwatchd.model import Claim, Copy, EnvKind, EnvRef, Manager

__all__ = [
    "BASE_NAMES",
    "claim_owner",
    "conda_package",
    "conda_target",
    "needs_root",
    "owner_db",
    "owner_manager",
    "pip_install",
    "pip_uninstall",
    "reinstall_claim",
    "reinstall_owner",
    "remove_owned",
    "remove_paths",
    "uninstall",
    "user_site_off",
]

_ROOT_KINDS = frozenset({EnvKind.SYSTEM, EnvKind.LOCAL})
BASE_NAMES = ("miniconda", "anaconda", "miniforge", "mambaforge", "micromamba")
_DB_MANAGER = {"dpkg": Manager.APT, "rpm": Manager.RPM, "conda": Manager.CONDA}
_CLAIM_DB = {m: db for db, m in _DB_MANAGER.items()}


def owner_db(owner: str | None) -> tuple[str, str] | None:
    """Split ``"dpkg:python3-numpy"`` into ``("dpkg", "python3-numpy")``."""
    if not owner or ":" not in owner:
        return None
    db, _, package = owner.partition(":")
    return db, package


def owner_manager(owner: str | None) -> Manager | None:
    """The manager whose database the owner string points into."""
    parts = owner_db(owner)
    return _DB_MANAGER.get(parts[0]) if parts else None


def conda_package(record_stem: str) -> str:
    """``numpy-1.13.3-py27hbcc08e0_0`` -> ``numpy``: name-version-build, split from the right."""
    parts = record_stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else record_stem


def conda_target(prefix: str, name: str = "") -> str:
    """``-n NAME`` for ``.../envs/NAME``, ``-n base`` for a base prefix, else ``-p PREFIX``."""
    parent = os.path.basename(os.path.dirname(prefix.rstrip("/")))
    leaf = os.path.basename(prefix.rstrip("/"))
    if parent == "envs" and leaf:
        return f"-n {shlex.quote(leaf)}"
    if name == "base" or leaf.lower().startswith(BASE_NAMES) or leaf == "conda":
        return "-n base"
    return f"-p {shlex.quote(prefix)}"


def needs_root(env: EnvRef) -> bool:
    """System and /usr/local trees are root-owned: their commands need sudo."""
    return env.kind in _ROOT_KINDS


def pip_uninstall(python: str, name: str, *, sudo: bool = False, break_system: bool = False) -> str:
    flag = " --break-system-packages" if break_system else ""
    pre = "sudo " if sudo else ""
    return f"{pre}{shlex.quote(python)} -m pip uninstall{flag} {name}"


def pip_install(
    python: str,
    spec: str,
    *,
    sudo: bool = False,
    break_system: bool = False,
    user: bool = False,
    target: str | None = None,
) -> str:
    """Rewrite a pip-managed copy in place (``--no-deps``: touch nothing else).

    ``target``: a `pip install --target` dir no interpreter owns; pip must be told
    where, or it would reinstall into its own site-packages."""
    flags = " --user" if user else ""
    flags += f" --upgrade --target {shlex.quote(target)}" if target else ""
    flags += " --break-system-packages" if break_system else ""
    pre = "sudo " if sudo else ""
    return f"{pre}{shlex.quote(python)} -m pip install --force-reinstall --no-deps{flags} {spec}"


def remove_paths(paths: list[str], *, sudo: bool = False) -> str:
    pre = "sudo " if sudo else ""
    return pre + "rm -r " + " ".join(shlex.quote(p) for p in paths)


# what each package database's own tool types: (remove, reinstall)
_OWNER_VERBS = {
    "dpkg": ("sudo apt-get remove {pkg}", "sudo apt-get install --reinstall {pkg}"),
    "rpm": ("sudo dnf remove {pkg}", "sudo dnf reinstall {pkg}"),
    "conda": ("conda remove {target} {pkg}", "conda install --force-reinstall {target} {pkg}"),
}


def _owner_command(owner: str, prefix: str, env_name: str, verb: int) -> str | None:
    parts = owner_db(owner)
    if parts is None or parts[0] not in _OWNER_VERBS:
        return None
    db, package = parts
    if db == "conda":
        pkg, target = conda_package(package), conda_target(prefix, env_name)
    else:
        pkg, target = package, ""
    return _OWNER_VERBS[db][verb].format(pkg=pkg, target=target)


def remove_owned(owner: str, prefix: str, env_name: str = "") -> str | None:
    """Remove a database-owned package with its own manager."""
    return _owner_command(owner, prefix, env_name, 0)


def reinstall_owner(owner: str, prefix: str, env_name: str = "") -> str | None:
    """Reinstall a database-owned package so its files match its record again."""
    return _owner_command(owner, prefix, env_name, 1)


def claim_owner(claim: Claim) -> str | None:
    """The owner string of a record, as ``Copy.owner`` spells it (conda: the record stem)."""
    db = _CLAIM_DB.get(claim.manager)
    if db is None:
        return None
    if db == "conda":
        return f"conda:{os.path.basename(claim.record_path).removesuffix('.json')}"
    return f"{db}:{claim.package}"


def reinstall_claim(claim: Claim) -> str | None:
    """Reinstall the package behind a database record."""
    owner = claim_owner(claim)
    return reinstall_owner(owner, claim.env.prefix, claim.env.name) if owner else None


def uninstall(copy: Copy, python: str, *, break_system: bool = False) -> list[str]:
    """Remove one copy with the tool that wrote it (``python`` must import it first)."""
    owned = _owned_uninstall(copy)
    if owned is not None:
        return [owned]
    return [_manager_uninstall(copy, python, break_system)]


def _owned_uninstall(copy: Copy) -> str | None:
    """The database's command, when the database still agrees it wrote the copy."""
    db_manager = owner_manager(copy.owner)
    if db_manager is None or copy.owner is None:
        return None
    if copy.manager not in (db_manager, Manager.UNKNOWN, Manager.DISTUTILS):
        return None
    return remove_owned(copy.owner, copy.env.prefix, copy.env.name)


def _manager_uninstall(copy: Copy, python: str, break_system: bool) -> str:
    sudo = needs_root(copy.env)
    path = shlex.quote(copy.path)
    match copy.manager:
        case Manager.CONDA:
            return f"conda remove {conda_target(copy.env.prefix, copy.env.name)} {copy.name}"
        case Manager.APT:
            return f"sudo apt-get remove $(dpkg -S {path} | cut -d: -f1)"
        case Manager.RPM:
            return f"sudo dnf remove $(rpm -qf {path})"
        case Manager.UV:
            pre = "sudo " if sudo else ""
            return f"{pre}uv pip uninstall --python {shlex.quote(python)} {copy.name}"
        case Manager.POETRY | Manager.PDM:
            return f"{copy.manager.value} remove {copy.name}"
        case Manager.DISTUTILS:
            # pip refuses "distutils installed projects": delete the metadata by hand.
            return remove_paths([copy.path], sudo=sudo) + "  # and its modules: " + _tops(copy)
        case _:
            return pip_uninstall(python, copy.name, sudo=sudo, break_system=break_system)


def _tops(copy: Copy) -> str:
    return ", ".join(copy.top_level) or copy.name


def user_site_off(env_prefix: str | None, env_name: str = "", conda: bool = False) -> list[str]:
    """Keep ~/.local out of an interpreter: per conda env, else for the shell."""
    if conda and env_prefix:
        target = conda_target(env_prefix, env_name)
        return [f"conda env config vars set PYTHONNOUSERSITE=1 {target}"]
    return ["export PYTHONNOUSERSITE=1"]
