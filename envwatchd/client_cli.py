"""`envwatch`: the command-line client of envwatchd (contract §1).

Why it is built like this:
- Start-up cost is the product here: the module imports only the stdlib,
  envwatchd.client, envwatchd.paths and envwatchd.timespec, never pydantic,
  structlog, watchdog or asyncio (a test runs `-X importtime` to hold that).
- Subcommand help comes from envwatchd.client.METHOD_HELP, the table the
  server's dispatch is built from.
- Exit codes: 0 ok; 1 `conflicts` found an open conflict of severity warning
  or error (info advisories do not count, as for `envwatchd scan`), or the
  daemon failed internally; 2 usage error, including params the daemon rejects
  (-32602); 3 daemon unreachable, with how to start it. `watch` exits 0 on
  Ctrl-C or SIGTERM and 3 when the daemon goes away under it.
- Colour only when stdout is a TTY, NO_COLOR is unset or empty and TERM is not dumb.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, NamedTuple

from envwatchd.client import (
    INVALID_PARAMS,
    METHOD_HELP,
    METHOD_NOT_FOUND,
    Client,
    DaemonUnreachable,
    RpcCallError,
)
from envwatchd.timespec import TimespecError, to_utc_iso

__all__ = [
    "COMMANDS",
    "EXIT_CONFLICTS",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Command",
    "Style",
    "build_parser",
    "main",
    "render_table",
]

EXIT_OK, EXIT_CONFLICTS, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
START_HINT = (
    "Start it with `systemctl --user start envwatchd` (or run `envwatchd run` in a terminal)."
)
RESCAN_TIMEOUT = 600.0

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


def _status_lines(st: dict[str, Any], style: Style) -> list[str]:
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


def _where_lines(found: dict[str, Any], style: Style) -> list[str]:
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


def _explain_lines(found: dict[str, Any], style: Style) -> list[str]:
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


def _packages_lines(copies: list[dict[str, Any]], style: Style) -> list[str]:
    rows = [
        [c.get("name", "?"), *_copy_cells(c)[1:4], c.get("format", "?"), c.get("site", "")]
        for c in copies
    ]
    header = ["NAME", "VERSION", "MANAGER", "ENV", "FORMAT", "SITE"]
    return [*render_table(rows, header, style), f"{len(copies)} packages"]


def _envs_lines(envs: list[dict[str, Any]], style: Style) -> list[str]:
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


def _events_lines(events: list[dict[str, Any]], style: Style) -> list[str]:
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


def _conflicts_lines(conflicts: list[dict[str, Any]], style: Style) -> list[str]:
    opened = sum(not c.get("resolved") for c in conflicts)
    note = "  (* = the copy an interpreter imports)" if conflicts else ""
    return [
        *(line for c in conflicts for line in _conflict_lines(c, style)),
        f"{opened} open conflict{'' if opened == 1 else 's'}{note}",
    ]


def _conflicts_exit(conflicts: list[dict[str, Any]]) -> int:
    """Open warning/error conflicts fail `conflicts` (exit 1); info advisories do not."""
    blocking = any(
        not c.get("resolved") and c.get("severity") in ("warning", "error") for c in conflicts
    )
    return EXIT_CONFLICTS if blocking else EXIT_OK


def _rescan_lines(done: dict[str, Any], style: Style) -> list[str]:
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


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _watch(client: Client, args: argparse.Namespace, style: Style) -> int:
    """Print pushes as they come: 0 on Ctrl-C/SIGTERM, DaemonUnreachable (3) if the daemon goes."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        for method, params in client.stream():
            if args.json:
                print(json.dumps({"method": method, "params": params}), flush=True)
            else:
                print(
                    render_table([_notification_cells(method, params)], style=style)[0], flush=True
                )
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_UNREACHABLE  # pragma: no cover - stream() only ends by raising


class Command(NamedTuple):
    """One subcommand: the RPC method it calls, its params, how its answer is shown."""

    method: str
    params: Callable[[argparse.Namespace], dict[str, Any] | None]
    render: Callable[[Any, Style], list[str]]
    exit_code: Callable[[Any], int] = lambda _: EXIT_OK
    timeout: float = 10.0

    def run(self, client: Client, args: argparse.Namespace, style: Style) -> int:
        result = client.call(self.method, self.params(args), self.timeout)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print("\n".join(self.render(result, style)))
        return self.exit_code(result)


def _no_params(args: argparse.Namespace) -> None:
    return None


def _events_params(args: argparse.Namespace) -> dict[str, Any]:
    given = {"since": args.since, "package": args.package, "limit": args.limit}
    return {k: v for k, v in given.items() if v is not None}


def _packages_params(args: argparse.Namespace) -> dict[str, Any]:
    return {"env": os.path.abspath(args.env) if args.env else None, "manager": args.manager}


def _metrics_lines(answer: dict[str, Any], style: Style) -> list[str]:
    return [str(answer.get("text", "")).rstrip("\n")]


class Local(NamedTuple):
    """A subcommand composed here from several calls; its libraries load only when it runs."""

    help: str
    run_fn: Callable[[Client, argparse.Namespace, Style], int]

    def run(self, client: Client, args: argparse.Namespace, style: Style) -> int:
        return self.run_fn(client, args, style)


def _sbom(client: Client, args: argparse.Namespace, style: Style) -> int:
    """CycloneDX JSON is the output either way, so --json changes nothing here."""
    from envwatchd.sbom import sbom_json  # cyclonedx is heavy: only this command loads it

    print(sbom_json(client.call("packages", _packages_params(args), 60.0)))
    return EXIT_OK


def _report(client: Client, args: argparse.Namespace, style: Style) -> int:
    from envwatchd.report import gather
    from envwatchd.report_html import render_html

    if not (args.html or args.json):
        print("envwatch: report: give --html FILE (or --json)", file=sys.stderr)
        return EXIT_USAGE
    label, since = args.since
    data = gather(lambda method, params: client.call(method, params, 60.0), since, label)
    if args.json:
        print(json.dumps(data, indent=2))
    if args.html:
        page = render_html(data)
        if args.html == "-":
            sys.stdout.write(page)
            return EXIT_OK
        with open(args.html, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(page)
        if not args.json:
            print(
                f"wrote {args.html} ({len(page.encode()) // 1024} KiB): "
                f"{len(data['envs'])} environments, {len(data['conflicts'])} open conflicts, "
                f"{len(data['events'])} events, projects with 2+ copies: {len(data['projects'])}"
            )
    return EXIT_OK


COMMANDS: dict[str, Command | Local | None] = {
    "status": Command("status", _no_params, _status_lines),
    "where": Command("where", lambda a: {"name": a.name}, _where_lines),
    "explain": Command("explain", lambda a: {"path": os.path.abspath(a.path)}, _explain_lines),
    "packages": Command("packages", _packages_params, _packages_lines),
    "envs": Command("envs", _no_params, _envs_lines),
    "events": Command("events", _events_params, _events_lines),
    "conflicts": Command("conflicts", lambda a: {"all": a.all}, _conflicts_lines, _conflicts_exit),
    "watch": None,  # subscribe: a stream, see _watch
    "rescan": Command("rescan", _no_params, _rescan_lines, timeout=RESCAN_TIMEOUT),
    "metrics": Command("metrics", _no_params, _metrics_lines),
    "sbom": Local("CycloneDX 1.6 JSON SBOM: one component per installed copy", _sbom),
    "report": Local("one self-contained HTML page: envs, duplicates, conflicts, events", _report),
}
"""Subcommands in contract order, then the export ones; None marks `watch`, the one
that streams; Local marks those composed on this side (sbom, report)."""


def _since(text: str) -> str:
    try:
        return to_utc_iso(text)
    except TimespecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _since_pair(text: str) -> tuple[str, str]:
    return text, _since(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return int(text)


def _help(name: str) -> str:
    command = COMMANDS[name]
    if isinstance(command, Local):
        return command.help
    return METHOD_HELP[command.method if command else "subscribe"]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON (watch: JSON lines)")
    common.add_argument(
        "--socket",
        metavar="PATH",
        help="the daemon's socket (default: "
        "$ENVWATCHD_SOCKET, else $XDG_RUNTIME_DIR/envwatchd/envwatchd.sock)",
    )
    parser = argparse.ArgumentParser(
        prog="envwatch",
        epilog=START_HINT,
        description=("Ask envwatchd which manager put each Python package where."),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subs = {
        name: sub.add_parser(name, parents=[common], help=_help(name), description=_help(name))
        for name in COMMANDS
    }
    subs["where"].add_argument("name", metavar="NAME")
    subs["explain"].add_argument("path", metavar="PATH")
    subs["packages"].add_argument("--env", metavar="PREFIX")
    subs["packages"].add_argument("--manager", metavar="M")
    subs["events"].add_argument("--since", type=_since, metavar="2h|ISO-8601")
    subs["events"].add_argument("--package", metavar="NAME")
    subs["events"].add_argument("--limit", type=_positive, metavar="N")
    subs["conflicts"].add_argument("--all", action="store_true", help="resolved ones too")
    subs["sbom"].add_argument("--env", metavar="PREFIX", help="only this environment")
    subs["sbom"].add_argument("--manager", metavar="M", help="only copies this manager installed")
    subs["report"].add_argument("--html", metavar="FILE", help="write the page here (- : stdout)")
    subs["report"].add_argument(
        "--since",
        type=_since_pair,
        default=("7d", to_utc_iso("7d")),
        metavar="7d|ISO-8601",
        help="the event timeline's start (default: 7d)",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    client, style, command = Client(args.socket), Style.for_stdout(), COMMANDS[args.command]
    try:
        return command.run(client, args, style) if command else _watch(client, args, style)
    except DaemonUnreachable as exc:
        print(f"envwatch: {exc}\n{START_HINT}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except RpcCallError as exc:
        print(f"envwatch: {args.command}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.code in (INVALID_PARAMS, METHOD_NOT_FOUND) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="surrogateescape")  # undecodable path bytes, as on disk
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `envwatch packages | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
