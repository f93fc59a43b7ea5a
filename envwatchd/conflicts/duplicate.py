"""duplicate: 2+ copies of one project importable by one interpreter.

Why it matters: the interpreter silently imports the first copy on its path and
every tool that reads metadata may report another (the story's ``pip show`` vs
``numpy.__file__``). We say which copy wins for which interpreter and who put
each copy there. Copies sharing one sys.path entry are mixed metadata, not
duplicates. Interpreters seeing the same set of copies share one conflict.

Severity is INFO only for the deliberate venv override: the winner lives in a
venv created with --system-site-packages and every loser is in its base
interpreter's dirs. The user site (or PYTHONPATH) shadowing a venv or conda env
is the story's trap and stays a WARNING.
"""

from __future__ import annotations

from envwatchd import remedy
from envwatchd.conflicts._common import Facts, RuleContext, describe, make_key
from envwatchd.model import (
    Conflict,
    ConflictKind,
    Copy,
    EnvKind,
    Format,
    Inventory,
    NormalizedName,
    Severity,
)
from envwatchd.precedence import Resolution, location

__all__ = ["check"]

_VENVS = (EnvKind.VENV, EnvKind.PIPX)


def check(inv: Inventory, ctx: RuleContext) -> list[Conflict]:
    facts = ctx.facts(inv)
    out: list[Conflict] = []
    for name, resolutions in facts.resolutions.items():
        groups: dict[tuple[tuple[str, str], ...], list[Resolution]] = {}
        for res in resolutions:
            if res.shadows:
                groups.setdefault(tuple(sorted(c.key for c in res.copies)), []).append(res)
        out.extend(_conflict(name, group, facts, inv) for group in groups.values())
    return out


def _conflict(
    name: NormalizedName, group: list[Resolution], facts: Facts, inv: Inventory
) -> Conflict:
    copies = group[0].copies
    severity = max((_severity(res, facts, inv) for res in group), key=lambda s: s.rank)
    return Conflict(
        key=make_key(ConflictKind.DUPLICATE, name, (_place(c) for c in copies)),
        kind=ConflictKind.DUPLICATE,
        name=name,
        severity=severity,
        copies=copies,
        message=_message(group, inv),
        remedy=tuple(_remedy(group, facts, inv)),
    )


def _place(copy: Copy) -> str:
    """Where a copy is, without its version: an egg's dir name carries one."""
    return copy.site if copy.format is Format.EGG else location(copy)


def _severity(res: Resolution, facts: Facts, inv: Inventory) -> Severity:
    env = facts.interp_env.get(res.interpreter.executable)
    if env is None or env.kind not in _VENVS or res.winner.env.prefix != env.prefix:
        return Severity.WARNING
    interp = res.interpreter
    for copy in res.shadowed:
        loc = location(copy)
        from_user = copy.env.kind is EnvKind.USER or loc == interp.user_site
        if copy.env.prefix == env.prefix or from_user or loc in inv.extra_roots:
            return Severity.WARNING
    return Severity.INFO


def _origin(copy: Copy, res: Resolution, inv: Inventory) -> str:
    loc = location(copy)
    if loc in inv.extra_roots:
        return " [from PYTHONPATH / extra roots]"
    if copy.env.kind is EnvKind.USER or loc == res.interpreter.user_site:
        return " [user site]"
    return ""


def _message(group: list[Resolution], inv: Inventory) -> str:
    by_winner: dict[tuple[str, str], list[Resolution]] = {}
    for res in group:
        by_winner.setdefault(res.winner.key, []).append(res)
    sentences = []
    for same in by_winner.values():
        res = same[0]
        who = ", ".join(r.interpreter.executable for r in same)
        lost = "; ".join(describe(c) + _origin(c, res, inv) for c in res.shadowed)
        won = describe(res.winner) + _origin(res.winner, res, inv)
        sentences.append(f"{who} imports {won}, which shadows {lost}.")
    return " ".join(sentences)


def _remedy(group: list[Resolution], facts: Facts, inv: Inventory) -> list[str]:
    cmds: list[str] = []
    for res in group:
        winner = res.winner
        loc = location(winner)
        if loc in inv.extra_roots:
            cmds.append(f"unset PYTHONPATH  # {loc} comes from PYTHONPATH or the extra roots")
            continue
        if winner.env.kind is EnvKind.USER or loc == res.interpreter.user_site:
            cmds.extend(_user_site_off(res, facts))
        cmds.extend(facts.uninstall(winner, res.interpreter))
    return list(dict.fromkeys(cmds))


def _user_site_off(res: Resolution, facts: Facts) -> list[str]:
    env = facts.interp_env.get(res.interpreter.executable)
    if env is None:
        return remedy.user_site_off(None)
    return remedy.user_site_off(env.prefix, env.name, conda=env.kind is EnvKind.CONDA)
