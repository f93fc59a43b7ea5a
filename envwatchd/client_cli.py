"""`envwatch`: the command-line client of envwatchd (contract §1).

Why it is built like this:
- Start-up cost is the product here: the module imports only the stdlib,
  envwatchd.client, envwatchd.paths, envwatchd.timespec and
  envwatchd.client_render, never pydantic, structlog, watchdog or asyncio (a
  test runs `-X importtime` to hold that).
- This module is arguments, dispatch and exit codes; how each answer looks on a
  terminal (tables, colour) is envwatchd.client_render.
- Subcommand help comes from envwatchd.client.METHOD_HELP, the table the
  server's dispatch is built from.
- Exit codes: 0 ok; 1 `conflicts` found an open conflict of severity warning
  or error (info advisories do not count, as for `envwatchd scan`), or the
  daemon failed internally; 2 usage error, including params the daemon rejects
  (-32602); 3 daemon unreachable, with how to start it. `watch` exits 0 on
  Ctrl-C or SIGTERM and 3 when the daemon goes away under it.
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
from envwatchd.client_render import (
    Style,
    conflicts_lines,
    envs_lines,
    events_lines,
    explain_lines,
    metrics_lines,
    notification_line,
    packages_lines,
    rescan_lines,
    status_lines,
    where_lines,
)
from envwatchd.timespec import TimespecError, to_utc_iso

__all__ = [
    "COMMANDS",
    "EXIT_CONFLICTS",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Command",
    "build_parser",
    "main",
]

EXIT_OK, EXIT_CONFLICTS, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
START_HINT = (
    "Start it with `systemctl --user start envwatchd` (or run `envwatchd run` in a terminal)."
)
RESCAN_TIMEOUT = 600.0


def _conflicts_exit(conflicts: list[dict[str, Any]]) -> int:
    """Open warning/error conflicts fail `conflicts` (exit 1); info advisories do not."""
    blocking = any(
        not c.get("resolved") and c.get("severity") in ("warning", "error") for c in conflicts
    )
    return EXIT_CONFLICTS if blocking else EXIT_OK


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
                print(notification_line(method, params, style), flush=True)
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
    "status": Command("status", _no_params, status_lines),
    "where": Command("where", lambda a: {"name": a.name}, where_lines),
    "explain": Command("explain", lambda a: {"path": os.path.abspath(a.path)}, explain_lines),
    "packages": Command("packages", _packages_params, packages_lines),
    "envs": Command("envs", _no_params, envs_lines),
    "events": Command("events", _events_params, events_lines),
    "conflicts": Command("conflicts", lambda a: {"all": a.all}, conflicts_lines, _conflicts_exit),
    "watch": None,  # subscribe: a stream, see _watch
    "rescan": Command("rescan", _no_params, rescan_lines, timeout=RESCAN_TIMEOUT),
    "metrics": Command("metrics", _no_params, metrics_lines),
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
