"""Issue 5: `where` latency, raw socket and end to end, beside `python -c pass` and `find`.

    .venv/bin/python bench/where.py [--machine DIR] [--quick] [--requests 200] [--cli-runs 20]

Starts a real `envwatchd run --root ROOT` on the machine (temp XDG dirs),
asks for the planted duplicate (numpy) from manifest.json.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # the bench dir is on sys.path (line above)
    PYTHON,
    VENV_BIN,
    DaemonProc,
    Row,
    base_parser,
    emit,
    fmt_ms,
    machine_from_args,
    median,
    out,
    percentile,
    ratio,
    timed,
    timed_runs,
)


def socket_round_trips(path: str, name: str, n: int, budget_s: float) -> tuple[list[float], int]:
    """n `where` requests over ONE connection, each waited for; returns walls and copies."""
    walls: list[float] = []
    copies = 0
    deadline = time.monotonic() + budget_s
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        buf = b""
        for i in range(n):
            req = {"jsonrpc": "2.0", "id": i, "method": "where", "params": {"name": name}}
            t0 = time.perf_counter()
            s.sendall(json.dumps(req).encode() + b"\n")
            while b"\n" not in buf:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("daemon closed the connection")
                buf += chunk
            line, _, buf = buf.partition(b"\n")
            walls.append(time.perf_counter() - t0)
            reply = json.loads(line)
            if "error" in reply:
                raise RuntimeError(f"where failed: {reply['error']}")
            copies = _count_copies(reply["result"])
            if time.monotonic() > deadline:
                break
    return walls, copies


def _count_copies(result: object) -> int:
    if isinstance(result, dict):
        for key in ("copies", "results"):
            if isinstance(result.get(key), list):
                return len(result[key])
    return len(result) if isinstance(result, list) else 0


def find_lines(argv: list[str]) -> int:
    res = subprocess.run(argv, capture_output=True, timeout=120)
    return len(res.stdout.splitlines())


def measure(d: DaemonProc, name: str, requests: int, cli_runs: int) -> list[Row]:
    m = d.machine
    out(f"where: {requests} raw round trips of where {name}")
    socket_round_trips(d.socket, name, 10, 30)  # warm the index and the page cache
    walls, copies = socket_round_trips(d.socket, name, requests, budget_s=120)
    p50, p99 = percentile(walls, 50), percentile(walls, 99)
    out(f"where: envwatch where {name} --json x{cli_runs}")
    cli = [str(VENV_BIN / "envwatch"), "where", name, "--json"]
    res = subprocess.run(cli, env=d.env, capture_output=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"envwatch where exited {res.returncode}: {res.stderr[-500:]!r}")
    cli_walls = timed_runs(lambda: timed(cli, d.env)[0], cli_runs, budget_s=120)
    pass_walls = timed_runs(lambda: timed([PYTHON, "-c", "pass"], d.env)[0], cli_runs, 60)
    find = ["find", str(m.root), str(m.home), "-name", f"{name}*"]
    find_walls = timed_runs(lambda: timed(find, d.env)[0], 5, budget_s=120)
    n_find = find_lines(find)
    cli_med, pass_med, find_med = median(cli_walls), median(pass_walls), median(find_walls)
    return [
        Row(
            "where, raw socket p50 / p99",
            f"{fmt_ms(p50)} / {fmt_ms(p99)}",
            "",
            "",
            "p99 < 5 ms",
            p99 < 0.005,
            f"{len(walls)} requests on one connection, {copies} copies per answer",
        ),
        Row(
            "envwatch where --json (end to end) / python -c pass",
            fmt_ms(cli_med),
            fmt_ms(pass_med),
            f"{ratio(cli_med, pass_med):.1f}x",
            "< 100 ms (stretch 60 ms)",
            cli_med < 0.100,
            f"median of {len(cli_walls)} subprocess runs each; NAME={name}",
        ),
        Row(
            "envwatch where --json / find ROOT HOME -name",
            fmt_ms(cli_med),
            fmt_ms(find_med),
            f"{ratio(cli_med, find_med):.2f}",
            "(info)",
            None,
            f"find (warm, median of {len(find_walls)}) prints {n_find} lines and says nothing "
            "of versions, managers or which copy wins",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = base_parser(__doc__)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--cli-runs", type=int, default=20)
    args = ap.parse_args(argv)
    with machine_from_args(args) as m, DaemonProc(m) as d:
        name = m.duplicate_name()
        emit(measure(d, name, args.requests, args.cli_runs), args, "where (issue 5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
