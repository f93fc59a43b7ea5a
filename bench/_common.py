"""Shared plumbing for the bench scripts: the machine, timing, rows, a live daemon.

Every figure is a ratio against a peer measured in the same run on the same
machine, never an absolute number compared with a constant from another day.
Every loop here is bounded twice: by a count and by a wall-clock deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH",
    "REPO",
    "VENV_BIN",
    "DaemonProc",
    "Machine",
    "Row",
    "base_parser",
    "emit",
    "machine_from_args",
    "percentile",
    "render_rows",
    "timed",
    "timed_runs",
]

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")


@dataclass
class Row:
    """One line of the results table; `ok` is None when there is no target."""

    figure: str
    envwatchd: str
    peer: str = ""
    ratio: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""


@dataclass
class Machine:
    dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def home(self) -> Path:
        return self.dir / "home"

    @property
    def site_dirs(self) -> list[str]:
        out: list[str] = []
        for env in self.manifest["environments"]:
            out.extend(s for s in env["site_dirs"] if s not in out)
        return out

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a command on this machine runs with: fake HOME, no user config."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "CONDA", "XDG_"))}
        env.pop("VIRTUAL_ENV", None)
        env.pop("PYTHONPATH", None)
        env["HOME"] = str(self.home)
        env.update(extra)
        return env

    def duplicate_name(self) -> str:
        for planted in self.manifest.get("planted", []):
            if planted["kind"] == "duplicate" and planted["name"] != "pip":
                return str(planted["name"])
        return "numpy"


def base_parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    ap.add_argument("--machine", type=Path, help="reuse a machine built by make_machine.py")
    ap.add_argument("--quick", action="store_true", help="small machine, fewer repetitions")
    ap.add_argument("--json-out", type=Path, help="also write the rows here (for bench/run)")
    ap.add_argument("--keep", action="store_true", help="keep the machine built for this run")
    return ap


@contextlib.contextmanager
def machine_from_args(args: argparse.Namespace) -> Iterator[Machine]:
    """`--machine DIR`, or a fresh one on /dev/shm (20k dists; 2k with --quick)."""
    if args.machine is not None:
        mdir = args.machine.resolve()
        yield Machine(mdir, json.loads((mdir / "manifest.json").read_text()))
        return
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    tmp = Path(tempfile.mkdtemp(prefix="envwatch-bench-", dir=shm))
    dists = "2000" if args.quick else "20000"
    try:
        build(tmp / "m", dists)
        yield Machine(tmp / "m", json.loads((tmp / "m" / "manifest.json").read_text()))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def build(out: Path, dists: str) -> None:
    subprocess.run(
        [PYTHON, str(BENCH / "make_machine.py"), str(out), "--dists", dists],
        check=True,
        timeout=600,
    )


def timed(argv: Sequence[str], env: dict[str, str], timeout: float = 600) -> tuple[float, int]:
    """Wall seconds and exit code of one subprocess, output discarded."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout
    )
    return time.perf_counter() - t0, proc.returncode


def timed_runs(fn: Callable[[], float], runs: int, budget_s: float, warmup: int = 1) -> list[float]:
    """`runs` samples of fn() after `warmup`, stopping early past `budget_s` (>= 1 sample)."""
    for _ in range(warmup):
        fn()
    deadline = time.monotonic() + budget_s
    out: list[float] = []
    for _ in range(runs):
        out.append(fn())
        if time.monotonic() > deadline:
            break
    return out


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def render_rows(rows: Sequence[Row]) -> str:
    """A Markdown table; a missed target is marked MISS, a met one ok."""
    head = ("figure", "envwatchd", "peer", "ratio", "target", "")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        verdict = "" if r.ok is None else ("ok" if r.ok else "**MISS**")
        cells = (r.figure, r.envwatchd, r.peer, r.ratio, r.target, verdict)
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    notes = [f"- {r.figure}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def emit(rows: Sequence[Row], args: argparse.Namespace, title: str) -> None:
    print(f"\n## {title}\n")
    print(render_rows(rows))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")


class DaemonProc:
    """A real `envwatchd run --root ROOT` on the machine, in its own temp state/run dirs.

    `ready_s` is spawn -> first `status` answer. Stopped with SIGTERM (bounded),
    then SIGKILL; only this process is ever signalled.
    """

    def __init__(self, machine: Machine, ready_timeout: float = 300.0) -> None:
        self.machine = machine
        self.tmp = Path(tempfile.mkdtemp(prefix="envwatchd-run-"))
        for sub in ("run", "state", "config/envwatchd"):
            (self.tmp / sub).mkdir(parents=True, mode=0o700)
        # no desktop bus here: notifications off so the figures are the daemon's own
        (self.tmp / "config/envwatchd/config.toml").write_text("[notify]\nenabled = false\n")
        self.env = machine.env(
            XDG_RUNTIME_DIR=str(self.tmp / "run"),
            XDG_STATE_HOME=str(self.tmp / "state"),
            XDG_CONFIG_HOME=str(self.tmp / "config"),
        )
        self.socket = str(self.tmp / "run" / "envwatchd" / "envwatchd.sock")
        self.log_path = self.tmp / "daemon.log"
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s = float("nan")

    def __enter__(self) -> DaemonProc:
        argv = [str(VENV_BIN / "envwatchd"), "run", "--root", str(self.machine.root)]
        argv += ["--log-format", "json", "--log-level", "warning"]
        with self.log_path.open("wb") as log:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}: {self.log_tail()}")
            if self._answers():
                self.ready_s = time.perf_counter() - t0
                return self
            time.sleep(0.01)
        self.__exit__(None, None, None)
        raise RuntimeError(f"daemon not ready in {self.ready_timeout}s: {self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(self.socket)
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"status"}\n')
                return b'"result"' in s.recv(65536)
        except OSError:
            return False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.tmp, ignore_errors=True)


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def out(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
