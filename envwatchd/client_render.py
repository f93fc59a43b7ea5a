"""Human output for `envwatch`: aligned tables, ANSI colour and one renderer per command.

Why a module of its own: client_cli.py is the argument parsing and the exit
codes; how an answer looks on a terminal is a separate concern that changes for
different reasons. The renderers take the daemon's JSON answer as plain dicts
and never call it, so `--json` output and human output cannot drift in what
they fetch.

Stdlib only, like client_cli: `envwatch` imports this on every run (a test
runs `-X importtime` on `--help`). Colour only when stdout is a TTY, NO_COLOR
is unset or empty and TERM is not dumb (`Style.for_stdout`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = [
    "Cell",
    "Style",
    "conflicts_lines",
    "envs_lines",
    "events_lines",
    "explain_lines",
    "metrics_lines",
    "notification_line",
    "packages_lines",
    "render_table",
    "rescan_lines",
    "status_lines",
    "where_lines",
]

Cell = str | tuple[str, str]
"""A table cell: plain text, or (text, ANSI SGR code) to colour it."""

_SEVERITY_SGR = {"error": "31;1", "warning": "33", "info": "36"}


class Style:
    """ANSI colour that switches itself off for pipes, NO_COLOR and TERM=dumb."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stdout(cls) -> Style:
        env = os.environ
        tty = sys.stdout.isatty()
        return cls(tty and not env.get("NO_COLOR") and env.get("TERM") != "dumb")

    def paint(self, text: str, sgr: str) -> str:
        return f"\x1b[{sgr}m{text}\x1b[0m" if self.enabled and sgr else text


def render_table(
    rows: Sequence[Sequence[Cell]],
    header: Sequence[str] = (),
    style: Style | None = None,
    indent: str = "",
) -> list[str]:
    """Left-aligned columns two spaces apart; colour is applied after padding."""
    paint = (style or Style(False)).paint
    cells = [[(c, "") if isinstance(c, str) else c for c in row] for row in rows]
    if header:
        cells.insert(0, [(h, "1") for h in header])
    widths = [
        max((len(row[i][0]) for row in cells if i < len(row)), default=0)
        for i in range(max((len(r) for r in cells), default=0))
    ]
    lines = []
    for row in cells:
        parts = [
            paint(text if i == len(row) - 1 else text.ljust(widths[i]), sgr)
            for i, (text, sgr) in enumerate(row)
        ]
        lines.append((indent + "  ".join(parts)).rstrip())
    return lines


def _time(value: object) -> str:
    """ISO-8601 UTC as "YYYY-MM-DD HH:MM:SS" for tables (the header says UTC)."""
    return str(value)[:19].replace("T", " ") if value else "-"


def _duration(seconds: object) -> str:
    total = int(seconds) if isinstance(seconds, int | float) else 0
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    return (f"{days}d " if days else "") + f"{hours}h {rest // 60}m"


def _env(env: object) -> str:
    if not isinstance(env, dict):
        return "-"
    return f"{env.get('kind', '?')} {env.get('prefix', '')}".strip()


def _event_cells(ev: dict[str, Any]) -> list[Cell]:
    new, old = ev.get("version"), ev.get("previous_version")
    version = f"{old} -> {new or '(removed)'}" if old and old != new else str(new or old or "-")
    manager, before = ev.get("manager"), ev.get("previous_manager")
    who = f"{before} -> {manager}" if before and manager and before != manager else manager
    return [
        _time(ev.get("time")),
        ev.get("kind", "?"),
        ev.get("name", "?"),
        version,
        str(who or before or "-"),
        _env(ev.get("env")),
    ]


def _copy_cells(copy: dict[str, Any], mark: str = "") -> list[Cell]:
    return [
        mark,
        str(copy.get("version", "?")),
        str(copy.get("manager", "?")),
        _env(copy.get("env")),
        str(copy.get("path", "")),
    ]


def status_lines(st: dict[str, Any], style: Style) -> list[str]:
    opened = int(st.get("open_conflicts") or 0)
    last = st.get("last_event")
    rows: list[list[Cell]] = [
        ["daemon", f"envwatchd {st.get('version', '?')}, pid {st.get('pid', '?')}"],
        ["up since", f"{_time(st.get('started'))} UTC ({_duration(st.get('uptime_s'))})"],
        [
            "trees watched",
            f"{st.get('trees_watched', 0)} ({st.get('watches', 0)} watches, "
            f"{st.get('threads', 0)} threads)",
        ],
        ["packages", f"{st.get('packages', 0)} in {st.get('envs', 0)} environments"],
        ["open conflicts", (str(opened), "33" if opened else "32")],
        ["last event", "  ".join(map(str, _event_cells(last))) if last else "none yet"],
    ]
    if st.get("unwatched"):
        rows.append(["unwatched", ", ".join(map(str, st["unwatched"]))])
    if st.get("degraded"):
        rows.append(["degraded", (str(st["degraded"]), "31")])
    return render_table(rows, style=style)


def _interpreter_lines(
    interp: dict[str, Any], copies: list[dict[str, Any]], style: Style
) -> list[str]:
    """Which copy this interpreter imports (*) and which it shadows."""
    by_path = {c.get("path"): c for c in copies} | {c.get("site"): c for c in copies}
    winner = interp.get("imported")
    rows = [[*_copy_cells(by_path.get(winner) or {"path": winner}, "*"), ("imported", "32")]]
    rows = rows if winner else []
    rows += [
        [*_copy_cells(by_path.get(p) or {"path": p}), ("shadowed", "2")]
        for p in interp.get("shadowed", [])
    ]
    return ["", f"{interp.get('executable')}:", *render_table(rows, style=style, indent="  ")]


def where_lines(found: dict[str, Any], style: Style) -> list[str]:
    copies = found.get("copies", [])
    if not copies:
        return [f"{found.get('name')}: no copy found on this machine"]
    rows = [_copy_cells(c, str(i)) for i, c in enumerate(copies, 1)]
    lines = [
        f"{found.get('name')}: {len(copies)} cop{'y' if len(copies) == 1 else 'ies'}",
        *render_table(rows, ["#", "VERSION", "MANAGER", "ENV", "LOCATION"], style, "  "),
    ]
    lines += [f"  {i}: {e}" for i, c in enumerate(copies, 1) for e in c.get("evidence", [])]
    for interp in found.get("interpreters", []):
        lines += _interpreter_lines(interp, copies, style)
    return lines


def explain_lines(found: dict[str, Any], style: Style) -> list[str]:
    if not found.get("found"):
        return [f"{found.get('path')}: not inside any package tree envwatchd knows"]
    copy = found.get("copy") or {}
    rows: list[list[Cell]] = [
        ["path", str(found.get("path"))],
        ["environment", _env(found.get("env"))],
        ["site", str(found.get("site") or "-")],
        ["distribution", f"{copy.get('display_name', '-')} {copy.get('version', '')}".strip()],
        ["metadata", str(copy.get("path", "-"))],
        ["owner", str(found.get("owner") or "-")],
        ["manager", (str(found.get("manager") or "unknown"), "1")],
    ]
    return [
        *render_table(rows, style=style),
        "evidence:",
        *(f"  - {e}" for e in found.get("evidence", [])),
    ]


def packages_lines(copies: list[dict[str, Any]], style: Style) -> list[str]:
    rows = [
        [c.get("name", "?"), *_copy_cells(c)[1:4], c.get("format", "?"), c.get("site", "")]
        for c in copies
    ]
    header = ["NAME", "VERSION", "MANAGER", "ENV", "FORMAT", "SITE"]
    return [*render_table(rows, header, style), f"{len(copies)} packages"]


def envs_lines(envs: list[dict[str, Any]], style: Style) -> list[str]:
    rows = [
        [
            e.get("kind", "?"),
            e.get("prefix", "?"),
            e.get("name", ""),
            str(e.get("python_version") or "-"),
            str(e.get("package_count", "-")),
        ]
        for e in envs
    ]
    return render_table(rows, ["KIND", "PREFIX", "NAME", "PYTHON", "PACKAGES"], style)


def events_lines(events: list[dict[str, Any]], style: Style) -> list[str]:
    header = ["TIME (UTC)", "KIND", "NAME", "VERSION", "MANAGER", "ENV"]
    return render_table([_event_cells(e) for e in events], header, style)


def _conflict_lines(c: dict[str, Any], style: Style) -> list[str]:
    sev = str(c.get("severity", "?"))
    state = f"resolved {_time(c.get('resolved'))}" if c.get("resolved") else "open"
    head = (
        f"#{c.get('id')} {style.paint(sev, _SEVERITY_SGR.get(sev, ''))} {c.get('kind')} "
        f"{c.get('name')}  ({state}, opened {_time(c.get('opened'))})"
    )
    copies = [_copy_cells(k, "*" if k.get("imported_by") else "") for k in c.get("copies", [])]
    remedy = c.get("remedy") or []
    return [
        head,
        f"  {c.get('message', '')}",
        *render_table(copies, ["", "VERSION", "MANAGER", "ENV", "LOCATION"], style, "  "),
        *(["  remedy:"] if remedy else []),
        *(f"    {r}" for r in remedy),
        "",
    ]


def conflicts_lines(conflicts: list[dict[str, Any]], style: Style) -> list[str]:
    opened = sum(not c.get("resolved") for c in conflicts)
    note = "  (* = the copy an interpreter imports)" if conflicts else ""
    return [
        *(line for c in conflicts for line in _conflict_lines(c, style)),
        f"{opened} open conflict{'' if opened == 1 else 's'}{note}",
    ]


def rescan_lines(done: dict[str, Any], style: Style) -> list[str]:
    return [
        f"rescanned {done.get('envs', 0)} environments, {done.get('packages', 0)} packages, "
        f"{done.get('events', 0)} events in {done.get('duration_ms', 0)} ms"
    ]


def _notification_cells(method: str, params: dict[str, Any]) -> list[Cell]:
    if method == "event":
        return ["event", *_event_cells(params)]
    sev = str(params.get("severity", "?"))
    resolved = params.get("resolved")
    state = params.get("state") or ("resolved" if resolved else "opened")  # daemon adds "state"
    return [
        method,
        _time(resolved or params.get("opened")),
        str(state),
        (sev, _SEVERITY_SGR.get(sev, "")),
        str(params.get("name", "?")),
        str(params.get("message", "")),
    ]


def notification_line(method: str, params: dict[str, Any], style: Style) -> str:
    """One `watch` push as one row: lines are printed as they come, never aligned."""
    return render_table([_notification_cells(method, params)], style=style)[0]


def metrics_lines(answer: dict[str, Any], style: Style) -> list[str]:
    return [str(answer.get("text", "")).rstrip("\n")]
