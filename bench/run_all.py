"""Driver behind `bench/run`: one machine, three figure scripts, one table, RESULTS.md.

    bench/run [--quick] [--machine DIR] [--keep] [--idle-seconds S] [--installs N]

The full run writes bench/RESULTS.md; `--quick` (2,000 dists, 10 installs,
10 s idle) writes bench/out/RESULTS-quick.md so a smoke run never replaces
the recorded full results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH, PYTHON, Row, build, render_rows  # bench dir on sys.path (above)

SCRIPTS = (("scan", "scan (issue 2)"), ("where", "where (issue 5)"), ("daemon", "daemon (issue 4)"))


def machine_facts(mdir: Path) -> list[str]:
    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    py = subprocess.run(
        [PYTHON, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
    ).stdout.strip()

    def fs(path: str) -> str:
        res = subprocess.run(["df", "-T", path], capture_output=True, text=True)
        rows = res.stdout.splitlines()
        return rows[-1].split()[1] if len(rows) > 1 else "?"

    return [
        f"- CPU: {os.cpu_count()} x {cpu} (nproc {len(os.sched_getaffinity(0))})",
        f"- RAM: {mem_kb / 1024 / 1024:.1f} GiB",
        f"- kernel: {platform.release()}",
        f"- python: {py} (.venv)",
        f"- machine dir: {mdir} on {fs(str(mdir))}; daemon state/socket dirs on "
        f"{fs(tempfile.gettempdir())} ({tempfile.gettempdir()})",
    ]


def run_script(name: str, mdir: Path, extra: list[str], tmp: Path) -> list[Row]:
    out = tmp / f"{name}.json"
    argv = [PYTHON, str(BENCH / f"{name}.py"), "--machine", str(mdir), "--json-out", str(out)]
    t0 = time.monotonic()
    res = subprocess.run([*argv, *extra], timeout=3600)
    took = time.monotonic() - t0
    if res.returncode != 0 or not out.exists():
        return [Row(f"{name}.py", "FAILED", note=f"exit {res.returncode} after {took:.0f} s")]
    return [Row(**r) for r in json.loads(out.read_text())]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--machine", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the machine this run builds")
    ap.add_argument("--idle-seconds", type=float)
    ap.add_argument("--installs", type=int)
    ap.add_argument("--only", choices=[s for s, _ in SCRIPTS], action="append")
    args = ap.parse_args(argv)
    command = "bench/run" + "".join(" " + shlex.quote(a) for a in (argv or sys.argv[1:]))
    t0 = time.monotonic()
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="envwatch-bench-", dir=shm) as tmp_s:
        tmp = Path(tmp_s)
        if args.machine is not None:
            mdir = args.machine.resolve()
        else:
            mdir = (
                Path(tempfile.mkdtemp(prefix="envwatch-m-", dir=shm)) if args.keep else tmp
            ) / "m"
            print(f"building the machine in {mdir}", file=sys.stderr, flush=True)
            build(mdir, "2000" if args.quick else "20000")
        manifest = json.loads((mdir / "manifest.json").read_text())
        facts = machine_facts(mdir)
        common = ["--quick"] if args.quick else []
        sections: list[tuple[str, list[Row]]] = []
        for name, title in SCRIPTS:
            if args.only and name not in args.only:
                continue
            extra = list(common)
            if name == "daemon":
                if args.idle_seconds is not None:
                    extra += ["--idle-seconds", str(args.idle_seconds)]
                if args.installs is not None:
                    extra += ["--installs", str(args.installs)]
            sections.append((title, run_script(name, mdir, extra, tmp)))
    took = time.monotonic() - t0
    table = render_rows([r for _, rs in sections for r in rs])
    summary = (
        f"machine: {manifest['dists']} dists, {manifest['envs']} envs, "
        f"{manifest['site_dirs']} site dirs, {manifest['files']} files (seed {manifest['seed']})"
    )
    doc = "\n".join(
        [
            "# envwatchd benchmarks",
            "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
            f"- command: `{command}` (from the repo root)",
            f"- duration: {took / 60:.1f} min",
            f"- {summary}",
            *facts,
            "",
            "Every ratio is against a peer measured in the same run on the same machine.",
            "",
            table,
        ]
    )
    print("\n" + doc)
    dest = BENCH / ("out/RESULTS-quick.md" if args.quick else "RESULTS.md")
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(doc)
    print(f"written to {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
