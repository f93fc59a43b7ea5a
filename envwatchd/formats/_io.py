"""Tolerant small-file reading shared by the parsers.

Every read is bounded: a 50 MB METADATA or a FIFO where a file should be must
not stall the scan. FIFOs, sockets and devices are refused by an lstat-free
O_NONBLOCK open plus fstat check.
"""

from __future__ import annotations

import os
import stat

__all__ = ["MAX_SMALL", "first_line", "header", "read_text", "top_level"]

MAX_SMALL = 1 << 20


def read_text(path: str, limit: int = MAX_SMALL) -> str:
    """Read at most `limit` bytes of a regular file as text (invalid UTF-8 replaced).

    The buffer is sized from fstat, never from `limit`: os.read(fd, n) allocates n
    bytes up front, and a 64 MiB allowance per conda record would mmap/munmap
    64 MiB thousands of times per scan. Raises OSError for missing, unreadable or
    non-regular files.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"not a regular file: {path}")
        chunks: list[bytes] = []
        total, want = 0, min(limit, st.st_size + 1)
        while total < limit:
            ask = min(want, limit - total)
            data = os.read(fd, ask)
            chunks.append(data)
            total += len(data)
            if len(data) < ask:
                break  # a short read of a regular file is its end: no extra read(2)
            want = 1 << 16  # the file grew while we read: continue in bounded steps
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", errors="replace")


def first_line(text: str) -> str | None:
    """The first non-empty stripped line, as pip reads INSTALLER."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped:
            return stripped
    return None


def header(text: str, field: str) -> str | None:
    """One RFC 822 header of METADATA/PKG-INFO, stopping at the body."""
    prefix = field.lower() + ":"
    for line in text.splitlines():
        if not line.strip():
            return None
        if line.lower().startswith(prefix):
            return line[len(prefix) :].strip()
    return None


def top_level(path: str, names: set[str], project: str) -> tuple[str, ...]:
    """Import names: top_level.txt when the installer kept it, else the project name."""
    if "top_level.txt" in names:
        try:
            text = read_text(f"{path}/top_level.txt", 64 * 1024)
        except OSError:
            text = ""
        tops = {ln.strip().split("/")[0] for ln in text.splitlines() if ln.strip()}
        if tops:
            return tuple(sorted(tops))
    return (project.replace("-", "_").replace(".", "_").lower(),)
