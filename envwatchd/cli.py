"""`envwatchd`: run the daemon, scan once, or install the systemd user units.

Options follow the subcommand (`envwatchd scan --json --root DIR`). A bad
config file is one message naming the key, and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["daemon_main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="config file (default: XDG config)")
    p.add_argument("--socket", type=Path, help="Unix socket path")
    p.add_argument("--state-dir", type=Path, help="state directory (event log)")
    p.add_argument("--root", default="", help="re-root system locations under DIR")
    p.add_argument("--log-format", choices=["auto", "json", "console"], default=None)
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envwatchd",
        description="Watch every Python package tree; tell which manager put each package there.",
    )
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the daemon in the foreground (what systemd starts)")
    _common(run)
    scan = sub.add_parser("scan", help="inventory and conflicts once, printed; exit 1 on conflicts")
    _common(scan)
    scan.add_argument("--json", action="store_true", help="print one JSON document")
    inst = sub.add_parser("install-service", help="write the systemd user units")
    _common(inst)
    inst.add_argument("--now", action="store_true", help="enable and start them now")
    return parser


def daemon_main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    command = args.command or "run"
    if args.command is None:
        args = _parser().parse_args(["run"])
    from envwatchd.config import ConfigError, load_config
    from envwatchd.paths import config_file

    try:
        cfg_path = args.config or config_file()
        config = load_config(cfg_path, required=args.config is not None)
    except ConfigError as exc:
        print(f"envwatchd: invalid configuration: {exc}", file=sys.stderr)
        return 2
    from envwatchd.log import configure

    level = args.log_level or config.log.level
    fmt = args.log_format or config.log.format
    if command == "scan":
        configure(level if args.log_level else "warning", fmt, sys.stderr)
        return _scan(args, config)
    configure(level, fmt)
    if command == "install-service":
        return _install_service(args)
    from envwatchd.daemon import run_daemon

    return run_daemon(args, config)


def _machine(args: argparse.Namespace, config: Any) -> Any:
    from envwatchd.discovery import Machine

    return Machine(
        root=args.root,
        environ=dict(os.environ),
        home=os.environ.get("HOME") or os.path.expanduser("~"),
        settings=config.discovery,
    )


def _scan(args: argparse.Namespace, config: Any) -> int:
    import structlog

    from envwatchd.conflicts import RuleContext, evaluate
    from envwatchd.formats.files import read_files
    from envwatchd.inventory import Scanner
    from envwatchd.model import Severity

    scanner = Scanner(_machine(args, config))
    inv = scanner.full_scan()
    log = structlog.get_logger()
    for problem in inv.problems:
        log.warning("scan.problem", path=problem.path, message=problem.message)
    conflicts = evaluate(inv, RuleContext(read_files=read_files))
    if args.json:
        _write_json(inv, conflicts)
    else:
        from envwatchd.render import render_scan

        sys.stdout.write(render_scan(inv, conflicts, color=_color()))
    serious = any(c.severity.rank >= Severity.WARNING.rank for c in conflicts)
    return 1 if serious else 0


def _write_json(inv: Any, conflicts: Any) -> None:
    """One JSON document, streamed copy by copy: 20,000 copies never exist twice in
    memory (as dicts and as one big string). No indent: keeps json's C encoder."""
    from collections import Counter

    counts = Counter(c.env.prefix for c in inv.copies)
    out = sys.stdout
    out.write('{"envs": ' + json.dumps([e.to_json(counts[e.prefix]) for e in inv.envs]))
    out.write(', "copies": [')
    for i, copy in enumerate(inv.copies):
        out.write((", " if i else "") + json.dumps(copy.to_json()))
    out.write('], "conflicts": ' + json.dumps([c.to_json() for c in conflicts]) + "}\n")


def _color() -> bool:
    return (
        sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    )


def _install_service(args: argparse.Namespace) -> int:
    import shutil

    from envwatchd.units import install_service

    exe = shutil.which("envwatchd") or os.path.join(os.path.dirname(sys.executable), "envwatchd")
    code, message = install_service(now=args.now, executable=os.path.abspath(exe))
    print(message)
    return code


if __name__ == "__main__":
    raise SystemExit(daemon_main())
