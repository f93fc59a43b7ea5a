"""conda without conda: build tiny packages, index a local channel and link them into
a prefix with py-rattler (recipe §5 of shared/recipes/real-managers.md).

Run as a subprocess (`python -m tests.e2e.rattler_tool ...`): rattler's API is async
and its runtime once crashed at interpreter exit (PyGILState_Release), so every run
ends with os._exit and a pytest process never hosts it.

  index CHANNEL
  install PREFIX PKGS CHANNEL SPEC...   make PREFIX hold exactly what SPECs solve to
                                         (no SPEC: remove everything)
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["conda_package", "main"]


def conda_package(
    channel: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    build: str = "py_0",
    noarch: str = "python",
    depends: tuple[str, ...] = ("python",),
) -> Path:
    """A `.tar.bz2` conda package in CHANNEL/noarch: info/{index,paths}.json, info/files."""
    index = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": list(depends),
        "license": "MIT",
        "noarch": noarch,
        "subdir": "noarch",
        "timestamp": int(time.time() * 1000),
    }
    paths = {
        "paths_version": 1,
        "paths": [
            {
                "_path": p,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(b).hexdigest(),
                "size_in_bytes": len(b),
            }
            for p, b in files.items()
        ],
    }
    members = {
        "info/index.json": json.dumps(index).encode(),
        "info/paths.json": json.dumps(paths).encode(),
        "info/files": "".join(p + "\n" for p in files).encode(),
        **files,
    }
    out = channel / "noarch" / f"{name}-{version}-{build}.tar.bz2"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:bz2") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return out


async def _index(channel: str) -> None:
    import rattler.index

    await rattler.index.index_fs(channel, write_zst=False, write_shards=False)


async def _install(prefix: str, pkgs: str, channel: str, specs: list[str]) -> None:
    import rattler
    from rattler import Channel, MatchSpec, PrefixRecord

    meta = Path(prefix) / "conda-meta"
    installed = [PrefixRecord.from_path(str(p)) for p in sorted(meta.glob("*.json"))]
    records = []
    if specs:
        records = await rattler.solve([Channel(channel)], specs, platforms=["noarch"])
    await rattler.install(
        records,
        target_prefix=prefix,
        cache_dir=Path(pkgs),
        installed_packages=installed,
        requested_specs=[MatchSpec(s)._match_spec for s in specs],
        show_progress=False,
    )


def main(argv: list[str]) -> None:
    cmd, *args = argv
    if cmd == "index":
        asyncio.run(_index(args[0]))
    elif cmd == "install":
        prefix, pkgs, channel, *specs = args
        asyncio.run(_install(prefix, pkgs, channel, specs))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BaseException as exc:  # report, then leave without running rattler's atexit
        print(f"rattler_tool: {exc!r}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)
