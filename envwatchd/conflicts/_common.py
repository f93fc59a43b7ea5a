"""Shared facts and phrasing for the conflict rules.

Why: every rule needs the same lookups (which Env a copy or an interpreter
belongs to, which interpreters import a copy) and the same way of naming a copy
in a sentence. Building them once per inventory keeps each rule O(copies);
``RuleContext.facts`` memoises them for the inventory being evaluated.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from envwatchd import remedy
from envwatchd.model import (
    Copy,
    Env,
    EnvKind,
    EnvRef,
    Interpreter,
    Inventory,
    NormalizedName,
)
from envwatchd.precedence import (
    Resolution,
    interpreters,
    location,
    multi_copy_names,
    shadowing,
)

__all__ = [
    "Facts",
    "FileReader",
    "RuleContext",
    "describe",
    "make_key",
    "no_files",
    "short_interp",
]

FileReader = Callable[[Copy], frozenset[str] | None]
_NON_VENV = (EnvKind.SYSTEM, EnvKind.PYENV, EnvKind.CONDA, EnvKind.OTHER)
_VENVS = (EnvKind.VENV, EnvKind.PIPX)


def no_files(copy: Copy) -> frozenset[str] | None:
    """The default reader: file lists unknown, so rules stay conservative."""
    return None


@dataclass(frozen=True, slots=True)
class Facts:
    """Per-inventory lookups shared by the rules."""

    envs: dict[tuple[EnvKind, str], Env]
    interp_env: dict[str, Env]
    resolutions: dict[NormalizedName, list[Resolution]]
    winner_for: dict[tuple[str, str], list[Interpreter]]
    seen_by: dict[str, list[Interpreter]]
    multi: frozenset[NormalizedName] = frozenset()

    @classmethod
    def build(cls, inv: Inventory) -> Facts:
        multi = multi_copy_names(inv)
        resolutions = shadowing(inv, multi, shadowed_only=True)
        winner_for: dict[tuple[str, str], list[Interpreter]] = defaultdict(list)
        for per_interp in resolutions.values():
            for res in per_interp:
                winner_for[res.winner.key].append(res.interpreter)
        seen_by: dict[str, list[Interpreter]] = defaultdict(list)
        for interp in interpreters(inv):
            for entry in dict.fromkeys(interp.search_path):
                seen_by[entry].append(interp)
        return cls(
            envs={(e.kind, e.prefix): e for e in inv.envs},
            interp_env={i.executable: e for e in inv.envs for i in e.interpreters},
            resolutions=resolutions,
            winner_for=dict(winner_for),
            seen_by=dict(seen_by),
            multi=frozenset(multi),
        )

    def env(self, ref: EnvRef) -> Env | None:
        return self.envs.get((ref.kind, ref.prefix))

    def break_system(self, interp: Interpreter | None) -> bool:
        env = self.interp_env.get(interp.executable) if interp else None
        return bool(env and env.externally_managed)

    def remover(self, copy: Copy, prefer: Interpreter | None = None) -> Interpreter | None:
        """An interpreter whose ``pip uninstall NAME`` removes exactly this copy.

        Prefer one that imports the copy (pip removes the first copy on the path),
        then the caller's, then one of the copy's env, then one not a venv (pip in
        a venv refuses copies outside it).
        """
        candidates = self.winner_for.get(copy.key) or self.seen_by.get(location(copy), [])
        if prefer is not None and prefer in candidates:
            candidates = [prefer, *candidates]
        for interp in candidates:
            if interp.env_prefix == copy.env.prefix or interp is prefer:
                return interp
        for interp in candidates:
            env = self.interp_env.get(interp.executable)
            if env is not None and env.kind in _NON_VENV:
                return interp
        return candidates[0] if candidates else None

    def python_for(
        self, copy: Copy, prefer: Interpreter | None = None
    ) -> tuple[str, Interpreter | None]:
        """The python to run pip with, falling back to the base python for venvs."""
        interp = self.remover(copy, prefer)
        if interp is None:
            return "python3", None
        env = self.interp_env.get(interp.executable)
        if env and env.kind in _VENVS and copy.env.prefix != env.prefix:
            return "python" + ".".join(interp.version.split(".")[:2]), None
        return interp.executable, interp

    def uninstall(self, copy: Copy, prefer: Interpreter | None = None) -> list[str]:
        """Commands removing ``copy``, each annotated with what it removes."""
        python, interp = self.python_for(copy, prefer)
        cmds = remedy.uninstall(copy, python, break_system=self.break_system(interp))
        exact = (
            interp is None
            or copy.name not in self.multi  # the only copy: pip removes exactly it
            or interp in self.winner_for.get(copy.key, ())
        )
        return [f"{cmd}  # {_note(cmd, copy, exact)}" for cmd in cmds]

    def reinstall(self, copy: Copy) -> str:
        """Rewrite a copy's files with the manager that should own them."""
        if copy.owner:
            cmd = remedy.reinstall_owner(copy.owner, copy.env.prefix, copy.env.name)
            if cmd:
                return cmd
        python, interp = self.python_for(copy)
        env = self.env(copy.env)
        bare = env is not None and not env.interpreters and copy.env.kind is EnvKind.OTHER
        return remedy.pip_install(
            python,
            f"{copy.name}=={copy.version}",
            sudo=remedy.needs_root(copy.env),
            break_system=self.break_system(interp),
            user=copy.env.kind is EnvKind.USER,
            target=copy.site if bare else None,
        )


def _note(cmd: str, copy: Copy, exact: bool) -> str:
    if "pip uninstall" in cmd and not exact:
        return f"removes the first {copy.name} on that path: repeat until {copy.path} is gone"
    return f"removes {copy.path}"


@dataclass(frozen=True)
class RuleContext:
    """What rules may use besides the inventory: injected I/O, never their own.

    ``read_files`` returns the relative paths a copy installed (RECORD,
    installed-files.txt, conda ``files``, dpkg ``.list``), or None when unknown;
    only the file-collision rule calls it, and only for candidate pairs.
    """

    read_files: FileReader = no_files
    _facts: dict[int, tuple[Inventory, Facts]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def facts(self, inv: Inventory) -> Facts:
        """Facts for ``inv``, built once per inventory object."""
        hit = self._facts.get(id(inv))
        if hit is not None and hit[0] is inv:
            return hit[1]
        built = Facts.build(inv)
        self._facts.clear()
        self._facts[id(inv)] = (inv, built)
        return built


def make_key(kind: str, name: str, parts: Iterable[str]) -> str:
    """Stable identity: kind, project, and the sorted places involved (no versions)."""
    return f"{kind}:{name}:" + "|".join(sorted(parts))


def describe(copy: Copy) -> str:
    """``numpy 1.24.2 in /usr/local/lib/python3.11/dist-packages (pip)``."""
    who = copy.manager.value
    if copy.owner:
        who += f", owned by {copy.owner}"
    where = copy.import_path or copy.site
    return f"{copy.display_name} {copy.version} in {where} ({who})"


def short_interp(interp: Interpreter) -> str:
    return interp.executable


def basename(path: str) -> str:
    return os.path.basename(path.rstrip("/"))
