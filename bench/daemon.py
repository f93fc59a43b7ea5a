"""Issue 4: the daemon on the machine: start-up, memory, watches, idle wake-ups, event latency.

    .venv/bin/python bench/daemon.py [--machine DIR] [--quick] [--idle-seconds 60] [--installs 100]

Event latency: N pip operations (alternating install / uninstall of a tiny
wheel, real pip `--python` into a real venv created in the machine's
~/.virtualenvs before the daemon starts), each measured from pip's exit to the
matching `event` notification on a `subscribe` stream (envwatchd.client.Client
in a thread, stamped on receipt). Beside it: raw inotify delivery (mkdir ->
line from `inotifywait -m`, or a ctypes inotify reader when inotifywait is
absent) on the same filesystem.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # the bench dir is on sys.path (line above)
    PYTHON,
    VENV_BIN,
    DaemonProc,
    Machine,
    Row,
    base_parser,
    emit,
    fmt_ms,
    fmt_s,
    machine_from_args,
    median,
    out,
    percentile,
    ratio,
    timed,
    timed_runs,
)

TINY = "envwatch-bench-tiny"
TINY_MOD = "envwatch_bench_tiny"
LATENCY_VENV = "zz-bench-latency"


# -- /proc readers ----------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def inotify_watches(pid: int) -> int:
    n = 0
    fd_dir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(OSError), open(os.path.join(fd_dir, fd)) as fh:
            n += sum(1 for line in fh if line.startswith("inotify wd:"))
    return n


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_slices(pid: int) -> int:
    """Sum over the process's tasks of schedstat's 3rd field (times run on a CPU)."""
    total = 0
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        with contextlib.suppress(OSError), open(os.path.join(task_dir, tid, "schedstat")) as fh:
            total += int(fh.read().split()[2])
    return total


# -- the tiny wheel and its venv ----------------------------------------------------


def make_wheel(dest: Path) -> Path:
    """A real, minimal py3-none-any wheel with a correct RECORD."""
    dist = f"{TINY.replace('-', '_')}-1.0"
    files = {
        f"{TINY_MOD}/__init__.py": b"VALUE = 1\n",
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {TINY}\nVersion: 1.0\n".encode()
        ),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: envwatchd-bench\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = dest / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def latency_venv(m: Machine) -> Path:
    """A real venv (no pip) in ~/.virtualenvs; created before the daemon starts."""
    prefix = m.home / ".virtualenvs" / LATENCY_VENV
    if not (prefix / "bin" / "python").exists():
        subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(prefix)], check=True)
    return prefix


def pip_env(m: Machine) -> dict[str, str]:
    return m.env(
        PIP_CONFIG_FILE="/dev/null",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_NO_CACHE_DIR="1",
    )


def pip_argv(venv: Path, op: str, wheel: Path) -> list[str]:
    base = [PYTHON, "-m", "pip", "--python", str(venv / "bin" / "python")]
    if op == "install":
        return [*base, "install", "--no-index", "--no-deps", "--quiet", str(wheel)]
    return [*base, "uninstall", "--yes", "--quiet", TINY]


# -- event stream ---------------------------------------------------------------------


class Subscriber:
    """Client(...).stream() in a daemon thread; every event stamped on receipt."""

    def __init__(self, socket_path: str) -> None:
        from envwatchd.client import Client, DaemonUnreachable

        self.events: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self._client = Client(socket_path)
        self._unreachable = DaemonUnreachable
        self.thread = threading.Thread(target=self._run, name="bench-subscriber", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(self._unreachable):
            for method, params in self._client.stream(timeout=10):
                if method == "event":
                    self.events.put((time.perf_counter(), params))

    def wait_for(self, kind: str, timeout: float) -> tuple[float, dict[str, Any]] | None:
        """The next `kind` event for the tiny wheel; others are counted as strays."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                stamp, params = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if params.get("name") == TINY and params.get("kind") == kind:
                return stamp, params
            self.strays.append(params)
        return None

    strays: list[dict[str, Any]] = []


def event_latency(
    d: DaemonProc, venv: Path, wheel: Path, n: int, budget_s: float
) -> tuple[list[float], list[float], dict[str, Any]]:
    """(event latencies after pip exit, pip walls, facts) for n alternating operations."""
    sub = Subscriber(d.socket)
    env = pip_env(d.machine)
    facts: dict[str, Any] = {"managers": set(), "missed": 0, "early": 0}
    ops = ["install", "uninstall"]
    # warm-up pair: pip's caches, and proof the subscription is live before timing
    for op in ops:
        subprocess.run(pip_argv(venv, op, wheel), env=env, check=True, timeout=120)
        if sub.wait_for(op, 30) is None:
            raise RuntimeError(f"no {op} event within 30 s: {d.log_tail()}")
    lat: list[float] = []
    walls: list[float] = []
    deadline = time.monotonic() + budget_s
    for i in range(n):
        op = ops[i % 2]
        t0 = time.perf_counter()
        subprocess.run(pip_argv(venv, op, wheel), env=env, check=True, timeout=120)
        t_exit = time.perf_counter()
        walls.append(t_exit - t0)
        got = sub.wait_for(op, 30)
        if got is None:
            facts["missed"] += 1
            continue
        stamp, params = got
        facts["early"] += stamp < t_exit
        lat.append(stamp - t_exit)
        if op == "install":
            facts["managers"].add(params.get("manager"))
        if time.monotonic() > deadline:
            break
    facts["strays"] = len(sub.strays)
    facts["stray_kinds"] = sorted({f"{s.get('kind')}:{s.get('name')}" for s in sub.strays})[:5]
    return lat, walls, facts


# -- raw inotify -------------------------------------------------------------------------


@contextlib.contextmanager
def raw_watch(path: Path) -> Iterator[tuple[str, Callable[[float], float | None]]]:
    """Yield (how, wait) where wait(timeout) returns the receipt time of the next event."""
    stamps: queue.Queue[float] = queue.Queue()
    if shutil.which("inotifywait"):
        argv = ["inotifywait", "-m", "-e", "create,delete", "--format", "%e %f", str(path)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        for _ in range(5):  # "Setting up watches." then "Watches established."
            if b"established" in proc.stderr.readline():
                break

        def pump() -> None:
            assert proc.stdout is not None
            for _line in proc.stdout:
                stamps.put(time.perf_counter())

        threading.Thread(target=pump, daemon=True).start()
        try:
            yield "inotifywait -m", lambda t: _get(stamps, t)
        finally:
            proc.terminate()
            proc.wait(timeout=5)
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = libc.inotify_init1(0)
    libc.inotify_add_watch(fd, os.fsencode(path), 0x100 | 0x200)  # IN_CREATE | IN_DELETE

    def read() -> None:
        with contextlib.suppress(OSError):
            while True:
                buf = os.read(fd, 4096)
                off = 0
                while off < len(buf):
                    stamps.put(time.perf_counter())
                    off += 16 + struct.unpack_from("iIII", buf, off)[3]

    threading.Thread(target=read, daemon=True).start()
    try:
        yield "ctypes inotify reader (no inotifywait)", lambda t: _get(stamps, t)
    finally:
        os.close(fd)


def _get(stamps: queue.Queue[float], timeout: float) -> float | None:
    try:
        return stamps.get(timeout=timeout)
    except queue.Empty:
        return None


def raw_inotify_latency(where: Path, n: int) -> tuple[list[float], str]:
    tmp = Path(tempfile.mkdtemp(prefix="raw-inotify-", dir=where))
    lat: list[float] = []
    try:
        with raw_watch(tmp) as (how, wait):
            for i in range(n):
                for step in (os.mkdir, os.rmdir):
                    t0 = time.perf_counter()
                    step(tmp / f"x{i}.dist-info")
                    got = wait(5)
                    if got is not None:
                        lat.append(got - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lat, how


# -- the figures -------------------------------------------------------------------------


def measure(m: Machine, idle_s: float, installs: int, quick: bool) -> list[Row]:
    from envwatchd.config import Config

    settle_ms = Config().watch.settle_ms
    venv = latency_venv(m)
    tmp = Path(tempfile.mkdtemp(prefix="bench-wheel-"))
    wheel = make_wheel(tmp)
    subprocess.run(pip_argv(venv, "uninstall", wheel), env=pip_env(m), timeout=120)
    out("daemon: envwatchd scan timing (peer of start-up)")
    scan_argv = [str(VENV_BIN / "envwatchd"), "scan", "--json", "--root", str(m.root)]
    scans = timed_runs(lambda: timed(scan_argv, m.env())[0], 2 if quick else 3, budget_s=300)
    scan_med = median(scans)
    out("daemon: starting envwatchd run")
    with DaemonProc(m) as d:
        pid = d.pid
        from envwatchd.client import Client

        status = Client(d.socket).call("status")
        st = proc_status(pid)
        rss_ready = int(st["VmRSS"].split()[0]) / 1024
        watches = inotify_watches(pid)
        threads = int(st["Threads"])
        trees = int(status.get("trees_watched", 0))
        time.sleep(2)  # let start-up work drain before counting idle wake-ups
        out(f"daemon: idle {idle_s:.0f} s")
        before, cpu0 = run_slices(pid), cpu_seconds(pid)
        time.sleep(idle_s)
        wakeups = (run_slices(pid) - before) * 60 / idle_s
        idle_cpu = (cpu_seconds(pid) - cpu0) / idle_s
        out(f"daemon: {installs} pip operations")
        lat, walls, facts = event_latency(d, venv, wheel, installs, budget_s=1800)
        st_end = proc_status(pid)
        rss_end = int(st_end["VmRSS"].split()[0]) / 1024
        hwm = int(st_end["VmHWM"].split()[0]) / 1024
    out("daemon: raw inotify latency")
    raw, raw_how = raw_inotify_latency(m.dir.parent, max(installs, 20))
    shutil.rmtree(tmp, ignore_errors=True)
    site_dirs = len(m.site_dirs) + 1  # + the latency venv
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    budget = (settle_ms + 100) / 1000
    managers = ",".join(sorted(str(x) for x in facts["managers"]))
    return [
        Row(
            "start-up to ready / envwatchd scan",
            fmt_s(d.ready_s),
            fmt_s(scan_med),
            f"{ratio(d.ready_s, scan_med):.2f}x",
            "<= 1.5x",
            d.ready_s <= 1.5 * scan_med,
            "spawn -> first status answer, first start (empty state: baseline written); "
            f"scan median of {len(scans)}",
        ),
        Row(
            "daemon RSS (VmRSS)",
            f"{rss_ready:.0f} MB",
            "",
            "",
            "< 80 MB",
            rss_ready < 80,
            f"after ready; {rss_end:.0f} MB after the pip runs, peak VmHWM {hwm:.0f} MB",
        ),
        Row(
            "inotify watches / site dirs",
            str(watches),
            f"{trees} (daemon's site trees)",
            f"{ratio(watches, trees):.2f}x",
            "<= 2x",
            watches <= 2 * trees,
            f"`inotify wd:` lines in /proc/PID/fdinfo; manifest site dirs + latency venv = "
            f"{site_dirs} ({ratio(watches, site_dirs):.2f}x of those)",
        ),
        Row(
            "daemon threads",
            str(threads),
            "",
            "",
            "(info)",
            None,
            "/proc/PID/status Threads, after ready",
        ),
        Row(
            "idle wake-ups",
            f"{wakeups:.1f}/min",
            "",
            "",
            "(info)",
            None,
            f"sum of /proc/PID/task/*/schedstat run counts over {idle_s:.0f} s of quiet; "
            f"CPU while idle {idle_cpu * 100:.1f}% of one core (utime+stime)",
        ),
        Row(
            "event latency after pip exit p50 / p99",
            f"{fmt_ms(p50)} / {fmt_ms(p99)}",
            f"raw inotify p50 {fmt_ms(percentile(raw, 50))} / p99 {fmt_ms(percentile(raw, 99))}",
            f"settle {settle_ms} ms",
            f"p99 < {settle_ms + 100} ms",
            p99 < budget and not facts["missed"],
            f"{len(lat)} of {installs} ops got their event ({facts['missed']} missed, "
            f"{facts['early']} before pip exited); install manager={managers}; "
            f"{facts['strays']} other events {facts['stray_kinds']}; pip wall median "
            f"{fmt_ms(median(walls))}; raw via {raw_how} (mkdir/rmdir -> line, {len(raw)} samples)",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = base_parser(__doc__)
    ap.add_argument("--idle-seconds", type=float, default=None, help="default 60, quick 10")
    ap.add_argument("--installs", type=int, default=None, help="default 100, quick 10")
    args = ap.parse_args(argv)
    idle = args.idle_seconds if args.idle_seconds is not None else (10.0 if args.quick else 60.0)
    installs = args.installs if args.installs is not None else (10 if args.quick else 100)
    with machine_from_args(args) as m:
        emit(measure(m, idle, installs, args.quick), args, "daemon (issue 4)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
