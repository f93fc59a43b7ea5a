"""Issue 2: `envwatchd scan` against pip list, scandir, INSTALLER reads, importlib.metadata.

    .venv/bin/python bench/scan.py [--machine DIR] [--quick] [--runs 5] [--pip-budget 180]

Peers run over the manifest's site dirs (the envs' own site-packages; the
conda pkgs-cache copies envwatchd also reads are not in the peers' set).
The scan is a subprocess (start-up, discovery, dpkg/conda databases, conflicts
and JSON included); the scandir/INSTALLER/importlib peers run in this process,
so the in-process `Scanner.full_scan` row is the like-for-like one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # the bench dir is on sys.path (line above)
    PYTHON,
    REPO,
    VENV_BIN,
    Machine,
    Row,
    base_parser,
    emit,
    fmt_ms,
    fmt_s,
    machine_from_args,
    median,
    out,
    ratio,
    timed,
    timed_runs,
)

SCAN_PATH_MODULES = (
    "envwatchd.cli",
    "envwatchd.config",
    "envwatchd.log",
    "envwatchd.discovery",
    "envwatchd.inventory",
    "envwatchd.conflicts",
    "envwatchd.formats.files",
    "envwatchd.model",
    "envwatchd.render",
)


def scan_argv(m: Machine) -> list[str]:
    return [str(VENV_BIN / "envwatchd"), "scan", "--json", "--root", str(m.root)]


def time_scan(m: Machine, runs: int) -> list[float]:
    env = m.env()
    return timed_runs(lambda: timed(scan_argv(m), env)[0], runs, budget_s=600)


def peak_rss_kb(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Peak RSS of one run: GNU time -v when present, else getrusage of the child."""
    if os.path.exists("/usr/bin/time"):
        proc = subprocess.run(
            ["/usr/bin/time", "-v", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
        )
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        if found:
            return int(found.group(1)), "/usr/bin/time -v"
    code = (
        "import resource,subprocess,sys;subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    res = subprocess.run([PYTHON, "-c", code, *argv], env=env, capture_output=True, text=True)
    return int(res.stdout.strip() or 0), "getrusage(RUSAGE_CHILDREN)"


def pip_list(m: Machine, sites: list[str], budget_s: float) -> tuple[float, int, int]:
    """Sum of `pip list --path S` walls over a stride sample of sites within the budget.

    Returns (seconds measured, sites measured, dists pip listed). One warm-up call first.
    """
    env = m.env(PIP_CONFIG_FILE="/dev/null", PIP_DISABLE_PIP_VERSION_CHECK="1")
    base = [PYTHON, "-m", "pip", "list", "--format", "json", "--path"]
    timed([*base, sites[0]], env)
    order = sites[::2] + sites[1::2]  # a stride: small and large envs alike early on
    total, done, dists = 0.0, 0, 0
    deadline = time.monotonic() + budget_s
    for site in order:
        t0 = time.perf_counter()
        res = subprocess.run([*base, site], env=env, capture_output=True, timeout=600)
        total += time.perf_counter() - t0
        done += 1
        dists += len(json.loads(res.stdout or b"[]"))
        if time.monotonic() > deadline:
            break
    return total, done, dists


def scandir_pass(sites: list[str]) -> int:
    n = 0
    for site in sites:
        try:
            with os.scandir(site) as it:
                n += sum(1 for _ in it)
        except OSError:
            continue
    return n


def installer_pass(sites: list[str]) -> int:
    n = 0
    for site in sites:
        try:
            with os.scandir(site) as it:
                names = [e.name for e in it if e.name.endswith(".dist-info")]
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(site, name, "INSTALLER"), "rb") as fh:
                    n += bool(fh.read(256).strip())
            except OSError:
                continue
    return n


def importlib_pass(sites: list[str]) -> int:
    from importlib.metadata import distributions

    n = 0
    for dist in distributions(path=sites):
        n += bool(dist.metadata["Name"]) and bool(dist.version)
    return n


def best_of(fn: Any, arg: Any, runs: int) -> tuple[float, Any]:
    fn(arg)  # warm-up
    best, result = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn(arg)
        best = min(best, time.perf_counter() - t0)
    return best, result


def import_cost_us(modules: tuple[str, ...]) -> tuple[int, int]:
    """Sum of top-level cumulative µs under -X importtime: (scan path, bare interpreter)."""

    def total(code: str) -> int:
        res = subprocess.run(
            [PYTHON, "-X", "importtime", "-c", code], capture_output=True, text=True, timeout=60
        )
        s = 0
        for line in res.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  "):
                try:
                    s += int(parts[1])
                except ValueError:
                    continue
        return s

    pairs = [
        (total("import " + ", ".join(modules)), total("pass")) for _ in range(3)
    ]  # three tries, keep the fastest of each: import time is noisy
    return min(p[0] for p in pairs), min(p[1] for p in pairs)


RULES_CODE = r"""
import json, os, sys, time
from envwatchd.log import configure
configure("warning", "json", sys.stderr)
from envwatchd.config import Config
from envwatchd.discovery import Machine
from envwatchd.inventory import Scanner
from envwatchd.conflicts import RuleContext, evaluate
from envwatchd.formats.files import read_files
root, home, runs, profile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def once():
    m = Machine(root=root, home=home, environ=dict(os.environ), settings=Config().discovery)
    t0 = time.perf_counter(); inv = Scanner(m).full_scan(); t1 = time.perf_counter()
    conflicts = evaluate(inv, RuleContext(read_files=read_files)); t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(inv.copies), len(conflicts)
if profile:
    import cProfile, pstats
    cProfile.run("once()", profile)
    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    sys.exit(0)
once()
res = [once() for _ in range(runs)]
best_scan = min(r[0] for r in res); best_rules = min(r[1] for r in res)
print(json.dumps({"scan": best_scan, "rules": best_rules, "copies": res[0][2],
                  "conflicts": res[0][3]}))
"""


def rules_vs_scan(m: Machine, runs: int, profile: str = "") -> dict[str, Any]:
    res = subprocess.run(
        [PYTHON, "-c", RULES_CODE, str(m.root), str(m.home), str(runs), profile],
        env=m.env(),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    if profile:
        print(res.stdout)
        return {}
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure(m: Machine, quick: bool, runs: int, pip_budget: float) -> list[Row]:
    sites = [s for s in m.site_dirs if os.path.isdir(s)]
    dists = m.manifest["dists"]
    out(f"scan: {len(sites)} site dirs, {dists} dists; timing envwatchd scan x{runs}")
    scans = time_scan(m, runs)
    scan_med, scan_best = median(scans), min(scans)
    rss_kb, rss_how = peak_rss_kb(scan_argv(m), m.env())
    out("scan: peers (scandir, INSTALLER, importlib.metadata)")
    t_scandir, entries = best_of(scandir_pass, sites, 5)
    t_inst, n_inst = best_of(installer_pass, sites, 5)
    t_imp, n_imp = best_of(importlib_pass, sites, 3)
    out("scan: in-process full_scan vs conflict rules")
    rules = rules_vs_scan(m, 2 if quick else 3)
    out(f"scan: pip list (budget {pip_budget:.0f}s)")
    pip_s, pip_n, pip_dists = pip_list(m, sites, pip_budget)
    pip_total = pip_s * len(sites) / pip_n
    sampled = pip_n < len(sites)
    imp_us, bare_us = import_cost_us(SCAN_PATH_MODULES)
    pip_note = (
        f"measured {pip_n}/{len(sites)} site dirs ({pip_s:.1f} s, {pip_dists} dists), "
        f"extrapolated by site count"
        if sampled
        else f"all {pip_n} site dirs, {pip_dists} dists listed"
    )
    r_pip = ratio(pip_total, scan_med)
    r_imp = ratio(scan_med, t_imp)
    r_inst = ratio(scan_med, t_inst)
    r_inproc = ratio(rules["scan"], t_inst)
    r_rules = ratio(rules["rules"], rules["scan"])
    return [
        Row(
            "scan wall (CLI, --json, 20k)" if not quick else "scan wall (CLI, --json)",
            f"{fmt_s(scan_med)} (best {fmt_s(scan_best)})",
            "",
            "",
            "",
            None,
            f"median of {len(scans)} after 1 warm-up; {rules['copies']} copies, "
            f"{rules['conflicts']} conflicts, {dists} dists in manifest",
        ),
        Row(
            "pip list --path, summed / scan",
            fmt_s(scan_med),
            fmt_s(pip_total) + (" (extrap.)" if sampled else ""),
            f"{r_pip:.1f}x",
            ">= 30x",
            r_pip >= 30,
            pip_note,
        ),
        Row(
            "scan / importlib.metadata pass",
            fmt_s(scan_med),
            fmt_s(t_imp),
            f"{r_imp:.2f}",
            "< 1",
            r_imp < 1,
            f"distributions(path=sites) name+version, {n_imp} dists, best of 3, in-process",
        ),
        Row(
            "scan / scandir+INSTALLER",
            fmt_s(scan_med),
            fmt_s(t_inst),
            f"{r_inst:.1f}x",
            "<= 4x (stretch 2x)",
            r_inst <= 4,
            f"{n_inst} INSTALLER files read, best of 5, in-process",
        ),
        Row(
            "in-process full_scan / scandir+INSTALLER",
            fmt_s(rules["scan"]),
            fmt_s(t_inst),
            f"{r_inproc:.1f}x",
            "(info)",
            None,
            "Scanner.full_scan() alone: no interpreter start, no rules, no JSON",
        ),
        Row(
            "bare scandir pass",
            fmt_s(scan_med),
            fmt_ms(t_scandir),
            f"{ratio(scan_med, t_scandir):.0f}x",
            "(info)",
            None,
            f"{entries} entries in {len(sites)} site dirs, best of 5",
        ),
        Row(
            "scan peak RSS",
            f"{rss_kb / 1024:.0f} MB",
            "",
            "",
            "< 100 MB",
            rss_kb / 1024 < 100,
            f"via {rss_how}",
        ),
        Row(
            "import cost of the scan path",
            fmt_ms(imp_us / 1e6),
            fmt_ms(bare_us / 1e6) + " (python -c pass)",
            f"{ratio(imp_us, bare_us):.1f}x",
            "(info)",
            None,
            "sum of top-level cumulative -X importtime of " + ", ".join(SCAN_PATH_MODULES),
        ),
        Row(
            "conflict rules / full_scan",
            fmt_ms(rules["rules"]),
            fmt_ms(rules["scan"]),
            f"{r_rules * 100:.1f}%",
            "< 10%",
            r_rules < 0.10,
            "in-process evaluate() vs Scanner.full_scan(), best of each",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = base_parser(__doc__)
    ap.add_argument("--runs", type=int, default=None, help="timed scans (default 5, quick 3)")
    ap.add_argument("--pip-budget", type=float, default=None, help="seconds of pip list")
    ap.add_argument("--profile", action="store_true", help="cProfile one in-process scan")
    args = ap.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    budget = args.pip_budget or (30.0 if args.quick else 180.0)
    with machine_from_args(args) as m:
        if args.profile:
            rules_vs_scan(m, 1, profile=str(Path(os.environ.get("TMPDIR", "/tmp")) / "scan.prof"))
            return 0
        emit(measure(m, args.quick, runs, budget), args, "scan (issue 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
