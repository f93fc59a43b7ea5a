"""Build a synthetic machine of ~20,000 distributions in ~40 environments.

    .venv/bin/python bench/make_machine.py DIR [--dists 20000] [--envs 40] [--seed 1]

Writes DIR/root (system tree: dpkg admin + /usr/lib/python3/dist-packages, pip's
/usr/local/lib/python3.11/dist-packages with eggs) and DIR/home (~/.local user site,
~/.virtualenvs/*, ~/miniconda3 base + envs/* + pkgs cache, ~/.pyenv/versions/3.11.7,
pipx venvs), every file in the real on-disk format via tests/builders.py. Planted
conflicts are listed in DIR/manifest.json. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import builders as b  # importable thanks to the sys.path line above

PY = "3.11"
PYFULL = "3.11.7"
SYLLABLES = (
    "py",
    "net",
    "data",
    "flow",
    "lib",
    "core",
    "xml",
    "json",
    "http",
    "auth",
    "cache",
    "grid",
    "log",
    "math",
    "geo",
    "img",
    "sql",
    "test",
    "web",
    "zip",
    "tool",
    "sci",
    "ml",
    "io",
    "fast",
    "lite",
    "kit",
    "util",
    "sync",
    "cloud",
)


@dataclass
class Stats:
    dists: int = 0
    envs: list[dict[str, Any]] = field(default_factory=list)
    sites: set[str] = field(default_factory=set)
    planted: list[dict[str, Any]] = field(default_factory=list)

    def env(self, kind: str, prefix: Path, sites: list[Path], dists: int) -> None:
        self.envs.append(
            {
                "kind": kind,
                "prefix": str(prefix),
                "dists": dists,
                "site_dirs": [str(s) for s in sites],
            }
        )
        self.sites.update(str(s) for s in sites)
        self.dists += dists


class Names:
    """Deterministic project names; reserved slices never overlap the shared pool."""

    def __init__(self, rng: random.Random, pool_size: int) -> None:
        self.rng = rng
        self.counter = 0
        self.pool = [self.fresh() for _ in range(pool_size)]

    def fresh(self) -> str:
        self.counter += 1
        a, c = self.rng.choice(SYLLABLES), self.rng.choice(SYLLABLES)
        sep = self.rng.choice(("-", "-", "_", ".", ""))
        return f"{a}{sep}{c}{self.counter}"

    def sample(self, k: int) -> list[str]:
        return self.rng.sample(self.pool, min(k, len(self.pool)))

    def version(self) -> str:
        r = self.rng
        return f"{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 12)}"


def _pip_like(site: Path, names: list[str], nm: Names, installer: str, uv: bool = False) -> int:
    for name in names:
        b.dist_info(
            site,
            name,
            nm.version(),
            installer=installer,
            uv_cache=uv,
            requested=nm.rng.random() < 0.4,
        )
    return len(names)


def build_system(root: Path, nm: Names, st: Stats, n_deb: int, n_local: int) -> None:
    """Debian system python: dpkg-owned dist-packages, sudo-pip /usr/local, planted issues."""
    _stub_python(root / "usr" / "bin", PY)
    b.write_file(
        root / "usr/lib/python3.11/EXTERNALLY-MANAGED",
        "[externally-managed]\nError=To install Python packages system-wide, try apt install\n",
    )
    debs = []
    for i in range(n_deb):
        name = nm.fresh()
        fmt = "dist-info" if i % 3 == 0 else "egg-info"
        version = nm.version()
        files = b.deb_python_files(name, version, fmt=fmt)  # type: ignore[arg-type]
        multi = "same" if i % 10 == 0 else None
        debs.append(
            b.DebPkg(
                f"python3-{b.module_name(name)}",
                f"{version}-1",
                files,
                architecture="amd64" if multi else "all",
                multi_arch=multi,
            )
        )
    b.dpkg_admin(root, debs)
    deb_site = root / "usr/lib/python3/dist-packages"
    # planted: dpkg orphan (record, no files) and pip over a dpkg package (foreign overwrite)
    orphan = b.DebPkg("python3-orphaned", "2.0-1", b.deb_python_files("orphaned", "2.0"))
    clobbered = b.DebPkg(
        "python3-requests",
        "2.28.1+dfsg-1",
        b.deb_python_files("requests", "2.28.1", fmt="dist-info"),
    )
    b.dpkg_admin(root, [orphan, clobbered], payload=False)
    b.dist_info(deb_site, "requests", "2.31.0")
    b.dist_info(
        deb_site,
        "cryptography",
        "38.0.4",
        installer=None,
        requested=False,
        record="hex",
        top_level_txt=True,
    )
    b.egg_info_dir(
        deb_site,
        "cryptography",
        "38.0.4",
        pyver=None,
        dirname="cryptography.egg-info",
        files=("PKG-INFO", "dependency_links.txt", "not-zip-safe", "top_level.txt"),
        module_files=False,
    )
    b.egg_info_file(deb_site, "command-not-found", "0.3", pyver=None)
    st.planted += [
        {"kind": "orphaned-record", "name": "orphaned", "record": "dpkg:python3-orphaned"},
        {"kind": "foreign-overwrite", "name": "requests", "site": str(deb_site)},
        {"kind": "mixed-metadata", "name": "cryptography", "site": str(deb_site)},
    ]
    b.apt_history(
        root,
        [
            {
                "start": "2026-11-20  10:00:00",
                "end": "2026-11-20  10:00:04",
                "commandline": "apt-get install -y python3-requests",
                "install": [("python3-requests:all", "2.28.1+dfsg-1")],
            }
        ],
    )
    st.env("system", root / "usr", [deb_site], n_deb + 5)

    local = root / "usr/local/lib/python3.11/dist-packages"
    n = _pip_like(local, [nm.fresh() for _ in range(n_local - 6)], nm, "pip\n")
    for i in range(3):
        b.egg(local, nm.fresh(), nm.version(), zipped=i != 1)
    b.egg_info_dir(local, nm.fresh(), nm.version(), installed_files=True)
    b.egg_info_file(local, nm.fresh(), nm.version())
    b.dist_info(local, "pip", "24.0")  # planted: sudo pip upgraded pip over Debian's
    b.dist_info(deb_site, "pip", "23.0.1", installer=None, requested=False, record="hex")
    st.planted.append({"kind": "duplicate", "name": "pip", "sites": [str(local), str(deb_site)]})
    st.env("local", root / "usr/local", [local], n + 6)


def build_user(home: Path, nm: Names, st: Stats, n: int) -> Path:
    site = home / ".local/lib/python3.11/site-packages"
    count = _pip_like(site, [nm.fresh() for _ in range(n - 1)], nm, "pip\n")
    b.dist_info(site, "numpy", "1.24.0")  # planted: shadows conda base's numpy
    st.env("user", home / ".local", [site], count + 1)
    return site


def build_pyenv(home: Path, nm: Names, st: Stats, n: int) -> None:
    prefix = home / ".pyenv/versions" / PYFULL
    _stub_python(prefix / "bin", PY)
    site = b.site_packages(prefix, PY)
    count = _pip_like(site, [nm.fresh() for _ in range(n)], nm, "pip\n")
    st.env("pyenv", prefix, [site], count)


def build_venv(home: Path, idx: int, nm: Names, st: Stats, n: int) -> None:
    """One ~/.virtualenvs env; flavour by index: venv+pip, uv, poetry, legacy eggs."""
    flavour = ("pip", "uv", "pip", "poetry", "legacy", "pip")[idx % 6]
    prefix = home / ".virtualenvs" / f"proj{idx:02d}"
    base = home / ".pyenv/versions" / PYFULL / "bin"
    b.pyvenv(
        prefix,
        base,
        PYFULL,
        uv=flavour == "uv",
        virtualenv=flavour == "poetry",
        system_site=idx % 7 == 3,
    )
    site = b.site_packages(prefix, PY)
    names = nm.sample(n)
    installer = {"uv": "uv", "poetry": "Poetry 1.8.3"}.get(flavour, "pip\n")
    extras = 4 if flavour == "legacy" else 1
    count = _pip_like(site, names[: n - extras], nm, installer, uv=flavour == "uv")
    src = home / "src" / f"proj{idx:02d}"
    b.editable_pep660(site, f"proj{idx:02d}", "0.1.0", src / "src")
    if flavour == "legacy":
        b.egg(site, names[-1], nm.version(), old_setuptools=True)
        b.egg(site, names[-2], nm.version(), zipped=False, old_setuptools=True)
        b.egg_link(site, f"legacy-tool{idx}", home / "src" / f"legacy-tool{idx}")
    if idx == 0:  # planted: mixed metadata + a pip stash + a module collision
        b.dist_info(site, "mixedpkg", "1.0")
        b.egg_info_dir(site, "mixedpkg", "0.9", module_files=False)
        # pip's upgrade stash: renamed, still complete, must be ignored by readers
        b.dist_info(site, "mixedpkg", "0.8", dirname="~ixedpkg-0.8.dist-info", module_files=False)
        b.dist_info(site, "collide-a", "1.0", top_level=("collide",))
        b.dist_info(site, "collide-b", "2.0", top_level=("collide",))
        st.planted += [
            {"kind": "mixed-metadata", "name": "mixedpkg", "site": str(site)},
            {"kind": "file-collision", "name": "collide", "site": str(site)},
        ]
        count += 4
    st.env("venv", prefix, [site], count + extras)


def build_conda(home: Path, nm: Names, st: Stats, n_base: int, env_sizes: list[int]) -> None:
    """~/miniconda3: base (+ its own `conda` dist), envs/*, a partial pkgs cache."""
    root = home / "miniconda3"
    user_site = home / ".local/lib/python3.11/site-packages"
    pkgs_dir = root / "pkgs"
    base_pkgs = [(name, nm.version(), "py311_0") for name in nm.sample(n_base - 1)]
    base_pkgs.append(("numpy", "1.26.4", "py311h64a7726_0"))
    b.conda_base(
        root,
        base_pkgs,
        home=home,
        pkgs_dir=pkgs_dir,
        write_pkgs_cache=False,
        history=[("2017-10-12 00:00:51", "conda install numpy")],
    )
    for pkg in base_pkgs[:50]:  # a slice of the cache, as after `conda clean`
        files = {f"lib/python{PY}/site-packages/{b.module_name(pkg[0])}/__init__.py": b"x = 1\n"}
        rec = json.loads((root / "conda-meta" / f"{'-'.join(pkg)}.json").read_text())
        b.pkgs_cache_entry(pkgs_dir, pkg, files, rec)
    b.pkgs_cache_entry(
        pkgs_dir,
        ("unused", "0.1", "py_0"),
        {"info/x": b""},
        {
            "name": "unused",
            "version": "0.1",
            "build": "py_0",
            "build_number": 0,
            "depends": [],
            "license": "MIT",
            "subdir": "noarch",
            "timestamp": 0,
            "paths_data": {"paths_version": 1, "paths": []},
            "url": "https://conda.anaconda.org/conda-forge/noarch/unused-0.1-py_0.conda",
        },
    )
    st.planted += [
        {"kind": "duplicate", "name": "numpy", "sites": [str(user_site), str(root)]},
        {"kind": "unused-pkgs-cache", "name": "unused", "path": str(pkgs_dir / "unused-0.1-py_0")},
    ]
    st.env("conda", root, [b.site_packages(root, PY)], n_base + 1)
    for i, size in enumerate(env_sizes):
        prefix = root / "envs" / f"env{i:02d}"
        meta = "egg-info" if i % 5 == 4 else "dist-info"
        pkgs = [(name, nm.version(), f"py311_{i % 3}") for name in nm.sample(size)]
        b.conda_env(prefix, pkgs, pkgs_dir=pkgs_dir, python_metadata=meta)  # type: ignore[arg-type]
        if i == 0:  # planted: pip clobbered a conda-owned package
            clobbered = b.site_packages(prefix, PY)
            victim = pkgs[0]
            shutil.rmtree(clobbered / f"{b.dist_stem(victim[0])}-{victim[1]}.dist-info")
            b.dist_info(clobbered, victim[0], "99.0.0")
            st.planted.append({"kind": "foreign-overwrite", "name": victim[0], "env": str(prefix)})
        b.conda_environments_txt(home, [prefix])
        st.env("conda", prefix, [b.site_packages(prefix, PY)], size)


def build_pipx(home: Path, idx: int, nm: Names, st: Stats, n: int) -> None:
    app = f"tool{idx:02d}"
    prefix = home / ".local/share/pipx/venvs" / app
    b.pyvenv(prefix, home / ".pyenv/versions" / PYFULL / "bin", PYFULL, uv=True)
    site = b.site_packages(prefix, PY)
    b.dist_info(site, app, "1.0.0", installer="uv", uv_cache=True)
    count = 1 + _pip_like(site, nm.sample(n - 1), nm, "uv", uv=True)
    meta = {
        "main_package": {"package": app, "package_version": "1.0.0", "apps": [app]},
        "pipx_metadata_version": "0.5",
        "python_version": f"Python {PYFULL}",
    }
    b.write_file(prefix / "pipx_metadata.json", json.dumps(meta, indent=4, sort_keys=True) + "\n")
    b.write_file(prefix / "bin" / app, f"#!{prefix}/bin/python\n", mode=0o755)
    bindir = home / ".local/bin"
    bindir.mkdir(parents=True, exist_ok=True)
    (bindir / app).symlink_to(prefix / "bin" / app)
    st.env("pipx", prefix, [site], count)


def _stub_python(bindir: Path, short: str) -> None:
    b.write_file(bindir / f"python{short}", "#!/bin/sh\nexit 1\n", mode=0o755)
    os.symlink(f"python{short}", bindir / "python3")


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def build(out: Path, dists: int, envs: int, seed: int) -> Stats:
    rng = random.Random(seed)
    nm = Names(rng, pool_size=max(500, dists // 4))
    st = Stats()
    root, home = out / "root", out / "home"
    n_var = max(3, envs - 5)
    n_pipx = max(1, n_var // 4)
    n_conda = max(1, (n_var - n_pipx) * 2 // 5)
    n_venv = max(1, n_var - n_pipx - n_conda)
    share: dict[str, float] = {
        "deb": 0.08,
        "local": 0.03,
        "user": 0.02,
        "pyenv": 0.03,
        "base": 0.08,
        "conda": 0.34,
    }
    fixed = {k: max(8, int(dists * v)) for k, v in share.items()}
    build_system(root, nm, st, fixed["deb"], fixed["local"])
    build_user(home, nm, st, fixed["user"])
    build_pyenv(home, nm, st, fixed["pyenv"])
    build_conda(home, nm, st, fixed["base"], _split(fixed["conda"], n_conda))
    for i in range(n_pipx):
        build_pipx(home, i, nm, st, 5 + (i % 6))
    venv_total = max(n_venv * 8, dists - st.dists - 4)  # 4: proj00's planted copies
    for i, size in enumerate(_split(venv_total, n_venv)):
        build_venv(home, i, nm, st, max(8, size))
    return st


def _count_files(top: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(top):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


def main(argv: list[str] | None = None, echo: Callable[[str], None] = print) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--dists", type=int, default=20_000)
    ap.add_argument("--envs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="delete DIR first if it exists")
    args = ap.parse_args(argv)
    out: Path = args.dir.resolve()
    if out.exists() and any(out.iterdir()):
        if not args.force:
            ap.error(f"{out} is not empty (use --force)")
        shutil.rmtree(out)
    t0 = time.perf_counter()
    st = build(out, args.dists, args.envs, args.seed)
    seconds = time.perf_counter() - t0
    files, size = _count_files(out)
    summary = {
        "dists": st.dists,
        "envs": len(st.envs),
        "site_dirs": len(st.sites),
        "files": files,
        "bytes": size,
        "seconds": round(seconds, 2),
        "seed": args.seed,
    }
    manifest = {**summary, "environments": st.envs, "planted": st.planted}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    echo(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
