"""file-collision: two different distributions in one site dir install the same files.

Why: both metadata entries stay, the files come from whichever was installed
last, and uninstalling either breaks the other (uv#10564; PyJWT vs jwt).

Cheap first, exact second: candidates are pairs of distributions sharing a
top-level name in one site (a dict from (site, top) to copies, O(copies)); only
those pairs are confirmed through the injected ``read_files``. With both file
lists known we require a real shared file, ignoring directories, bytecode and
``__init__.py`` (pkgutil/pkg_resources namespace packages ship one in every
member, and PEP 420 / ``*-nspkg.pth`` namespaces share only directories). With a
list unknown we report only when the known side shows the name is a single-file
module, which no namespace can be; with both unknown we stay silent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations

from envwatchd.conflicts._common import Facts, FileReader, RuleContext, describe, make_key
from envwatchd.model import Conflict, ConflictKind, Copy, EnvKind, Inventory, Severity

__all__ = ["candidates", "check", "shared_files"]

_SHOWN = 5
_Pair = tuple[Copy, Copy]


def candidates(inv: Inventory) -> dict[_Pair, set[str]]:
    """Pairs of differently named copies in one site sharing top-level names."""
    buckets: dict[tuple[str, str], list[Copy]] = defaultdict(list)
    for copy in inv.copies:
        if copy.import_path is None and copy.env.kind is not EnvKind.CONDA_PKGS:
            for top in copy.top_level:
                if top:
                    buckets[(copy.site, top)].append(copy)
    pairs: dict[_Pair, set[str]] = defaultdict(set)
    for (_site, top), copies in buckets.items():
        if len(copies) < 2:
            continue
        for a, b in combinations(sorted(copies, key=lambda c: (c.name, c.path)), 2):
            if a.name != b.name:
                pairs[(a, b)].add(top)
    return pairs


def _ignorable(path: str) -> bool:
    parts = path.split("/")
    return (
        path.endswith("/")
        or path.startswith("..")
        or "__pycache__" in parts
        or path.endswith((".pyc", ".pyo"))
        or parts[-1] == "__init__.py"
    )


def _is_module_file(path: str, tops: set[str]) -> bool:
    if "/" in path:
        return False
    stem = path.split(".", 1)[0]
    return stem in tops and path.endswith((".py", ".so", ".pyd"))


def shared_files(a: Copy, b: Copy, tops: set[str], read: FileReader) -> list[str] | None:
    """The evidence that a and b collide, or None when it is not proven."""
    fa, fb = read(a), read(b)
    if fa is not None and fb is not None:
        shared = sorted(p for p in fa & fb if not _ignorable(p))
        return shared or None
    known = fa if fa is not None else fb
    if known is None:
        return None
    modules = sorted(p for p in known if _is_module_file(p, tops))
    return modules or None


def check(inv: Inventory, ctx: RuleContext) -> list[Conflict]:
    facts = ctx.facts(inv)
    cache: dict[tuple[str, str], frozenset[str] | None] = {}

    def read(copy: Copy) -> frozenset[str] | None:
        if copy.key not in cache:
            cache[copy.key] = ctx.read_files(copy)
        return cache[copy.key]

    found: dict[tuple[str, str, str], Conflict] = {}
    for (a, b), tops in candidates(inv).items():
        shared = shared_files(a, b, tops, read)
        ident = (a.site, a.name, b.name)
        if shared and ident not in found:
            found[ident] = _conflict(a, b, shared, facts)
    return list(found.values())


def _conflict(a: Copy, b: Copy, shared: list[str], facts: Facts) -> Conflict:
    keep, drop = (b, a) if a.owner is None and b.owner else (a, b)
    return Conflict(
        key=make_key(ConflictKind.FILE_COLLISION, f"{a.name}+{b.name}", [a.site]),
        kind=ConflictKind.FILE_COLLISION,
        name=a.name,
        severity=Severity.WARNING,
        copies=(a, b),
        message=_message(a, b, shared),
        remedy=tuple([*facts.uninstall(drop), facts.reinstall(keep)]),
    )


def _message(a: Copy, b: Copy, shared: Iterable[str]) -> str:
    files = list(shared)
    shown = ", ".join(files[:_SHOWN]) + (
        f" and {len(files) - _SHOWN} more" if len(files) > _SHOWN else ""
    )
    return (
        f"{describe(a)} and {describe(b)} both install {shown}. The files on disk come "
        f"from whichever was installed last; uninstalling either breaks the other."
    )
