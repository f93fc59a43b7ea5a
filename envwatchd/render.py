"""Human text for `envwatchd scan`: the inventory grouped by environment, then
the conflicts with the copies side by side, the winner marked, and the remedy.
"""

from __future__ import annotations

from collections.abc import Sequence

from envwatchd.model import Conflict, Inventory, Severity

__all__ = ["render_scan", "table"]

_SEV_COLOR = {Severity.INFO: "36", Severity.WARNING: "33", Severity.ERROR: "31"}


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    all_rows = [list(header)] + [list(r) for r in rows] if header else [list(r) for r in rows]
    if not all_rows:
        return ""
    widths = [max(len(r[i]) for r in all_rows if i < len(r)) for i in range(len(all_rows[0]))]
    lines = []
    for row in all_rows:
        cells = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def render_scan(inv: Inventory, conflicts: Sequence[Conflict], *, color: bool = False) -> str:
    out: list[str] = []
    by_env: dict[str, list[list[str]]] = {}
    for copy in sorted(inv.copies, key=lambda c: (c.env.prefix, c.name, c.path)):
        imported = "imported" if copy.imported_by else ""
        by_env.setdefault(copy.env.prefix, []).append(
            [
                copy.display_name,
                copy.version,
                copy.manager.value,
                copy.format.value,
                imported,
                copy.evidence[0] if copy.evidence else "",
            ]
        )
    for env in inv.envs:
        rows = by_env.get(env.prefix, [])
        if not rows and not env.site_dirs:
            continue
        py = f"python {env.python_version}" if env.python_version else "no python"
        title = f"{env.kind.value} {env.name}  {env.prefix}  ({py}, {len(rows)} packages)"
        out.append(_paint(title, "1", color))
        if rows:
            out.append(table(rows, ["name", "version", "manager", "format", "", "evidence"]))
        else:
            out.append("")
    out.append(render_conflicts(conflicts, color=color))
    return "\n".join(out)


def render_conflicts(conflicts: Sequence[Conflict], *, color: bool = False) -> str:
    if not conflicts:
        return "No conflicts.\n"
    lines = [_paint(f"{len(conflicts)} conflict(s):", "1", color)]
    for c in sorted(conflicts, key=lambda c: (-c.severity.rank, c.kind.value, c.name)):
        tag = _paint(f"[{c.severity.value}]", _SEV_COLOR[c.severity], color)
        lines.append(f"\n{tag} {c.kind.value}: {c.name}")
        lines.append(f"  {c.message}")
        rows = [
            [
                "*" if cp.imported_by else " ",
                cp.version,
                cp.manager.value,
                cp.env.kind.value,
                cp.path,
            ]
            for cp in c.copies
        ]
        if rows:
            lines.append("  " + table(rows).rstrip("\n").replace("\n", "\n  "))
        for step in c.remedy:
            lines.append(f"  fix: {step}")
    return "\n".join(lines) + "\n"
