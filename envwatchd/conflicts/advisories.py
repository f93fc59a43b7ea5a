"""INFO advisories: environment-wide states worth knowing, not yet breakage.

Why separate from the per-project rules: each speaks about a whole environment
or cache, so the daemon re-evaluates them in full after every change (they are
O(copies)) instead of per changed name.

- user-site-in-conda: a conda env's python imports ~/.local before its own
  site-packages (conda#394, #13746): the story's "never use pip install --user".
- externally-managed: pip/uv wrote into a PEP 668 python's trees, so someone
  used --break-system-packages (or sudo pip before the marker existed).
- unused-pkgs-cache: extracted packages in a pkgs cache no env links any more.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import replace

from envwatchd import remedy
from envwatchd.conflicts._common import RuleContext, make_key
from envwatchd.model import (
    CacheEntry,
    Conflict,
    ConflictKind,
    Copy,
    Env,
    EnvKind,
    Inventory,
    Manager,
    Severity,
)

__all__ = ["externally_managed", "unused_pkgs_cache", "user_site_in_conda"]

_SHOWN = 8
_PIP_LIKE = frozenset({Manager.PIP, Manager.UV})


def _names(copies: list[Copy]) -> str:
    names = sorted({c.name for c in copies})
    extra = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + extra


def user_site_in_conda(inv: Inventory, ctx: RuleContext) -> list[Conflict]:
    by_site: dict[str, list[Copy]] = defaultdict(list)
    for copy in inv.copies:
        by_site[copy.site].append(copy)
    out = []
    for env in inv.envs:
        if env.kind is not EnvKind.CONDA:
            continue
        user_site = _admitted_user_site(env)
        if user_site and by_site.get(user_site):
            out.append(_user_site_conflict(env, user_site, by_site[user_site]))
    return out


def _admitted_user_site(env: Env) -> str | None:
    for interp in env.interpreters:
        if interp.user_site and interp.user_site in interp.search_path:
            return interp.user_site
    return None


def _user_site_conflict(env: Env, user_site: str, copies: list[Copy]) -> Conflict:
    copies = sorted(copies, key=lambda c: (c.name, c.path))
    message = (
        f"conda env {env.name} ({env.prefix}) imports the user site {user_site} before "
        f"its own site-packages: {len(copies)} package(s) there ({_names(copies)}) "
        f"are imported ahead of what conda installed."
    )
    steps = (*remedy.user_site_off(env.prefix, env.name, conda=True), "export PYTHONNOUSERSITE=1")
    return _advisory(ConflictKind.USER_SITE_IN_CONDA, env.name, env.prefix, copies, message, steps)


def externally_managed(inv: Inventory, ctx: RuleContext) -> list[Conflict]:
    marked = {(e.kind, e.prefix): e for e in inv.envs if e.externally_managed}
    found: dict[tuple[EnvKind, str], list[Copy]] = defaultdict(list)
    for copy in inv.copies:
        ident = (copy.env.kind, copy.env.prefix)
        if ident in marked and copy.manager in _PIP_LIKE:
            found[ident].append(copy)
    return [_pep668_conflict(marked[k], sorted(v, key=lambda c: c.path)) for k, v in found.items()]


def _pep668_conflict(env: Env, copies: list[Copy]) -> Conflict:
    sites = sorted({c.site for c in copies})
    python = f"python{env.python_version}" if env.python_version else "python3"
    sudo = remedy.needs_root(env.ref)
    names = sorted({c.name for c in copies})
    message = (
        f"{len(copies)} package(s) in {', '.join(sites)} were written by pip/uv into an "
        f"externally managed (PEP 668) python: {_names(copies)}. They bypass "
        f"{'apt' if env.kind is not EnvKind.USER else 'the distro'} and can break system tools."
    )
    steps = (
        remedy.pip_uninstall(python, " ".join(names), sudo=sudo, break_system=True),
        "pipx install APP  # for command-line applications",
        "python3 -m venv ~/.venvs/NAME && ~/.venvs/NAME/bin/pip install PACKAGE  # libraries",
    )
    return _advisory(ConflictKind.EXTERNALLY_MANAGED, env.name, env.prefix, copies, message, steps)


def unused_pkgs_cache(inv: Inventory, ctx: RuleContext) -> list[Conflict]:
    caches: dict[str, list[CacheEntry]] = defaultdict(list)
    for entry in inv.cache_entries:
        caches[os.path.dirname(entry.path.rstrip("/"))].append(entry)
    out = []
    for cache, entries in sorted(caches.items()):
        unused = sorted((e for e in entries if not e.used_by), key=lambda e: e.path)
        if unused:
            out.append(_cache_conflict(cache, entries, unused))
    return out


def _cache_conflict(cache: str, entries: list[CacheEntry], unused: list[CacheEntry]) -> Conflict:
    size = sum(e.size_bytes for e in unused)
    shown = ", ".join(os.path.basename(e.path) for e in unused[:_SHOWN])
    more = f" and {len(unused) - _SHOWN} more" if len(unused) > _SHOWN else ""
    message = (
        f"{len(unused)} of {len(entries)} packages in the conda cache {cache} are linked "
        f"by no environment ({size / 1e6:.1f} MB): {shown}{more}."
    )
    name = os.path.basename(os.path.dirname(cache)) or cache
    conflict = _advisory(ConflictKind.UNUSED_PKGS_CACHE, "", cache, [], message,
                         (f"{_conda_for(cache)} clean --packages",))  # fmt: skip
    return replace(conflict, name=name)


def _advisory(
    kind: ConflictKind,
    key_name: str,
    place: str,
    copies: list[Copy],
    message: str,
    steps: tuple[str, ...],
) -> Conflict:
    """An info-level, whole-env advisory: keyed by its kind and place, named after it."""
    return Conflict(
        key=make_key(kind, key_name, [place]),
        kind=kind,
        name=key_name,
        severity=Severity.INFO,
        copies=tuple(copies),
        message=message,
        remedy=steps,
    )


def _conda_for(cache: str) -> str:
    """The conda that owns this cache, so ``clean`` acts on the right pkgs dir."""
    base = os.path.dirname(cache)
    if os.path.basename(base).lower().startswith(remedy.BASE_NAMES):
        return os.path.join(base, "bin", "conda")
    return "conda"
