"""The daemon's socket file: bind it safely, and remove it only when it is still ours.

Why it is apart from server.py: the server speaks JSON-RPC over whatever
listening socket it is given; the rules for the path on disk are a separate
concern with its own traps, and an inherited socket (systemd socket
activation) never goes through here at all: systemd owns that path.

- The socket is created in a 0700 dir, bound, chmod-ed 0600 and only then
  listened on (by the caller), so no other user ever sees it open.
- A stale socket file from a crashed daemon is removed, but only after a
  connect test proves nobody answers on it: two daemons must never fight.
- At shutdown the path is unlinked only if it is still the inode we bound: a
  successor may already have replaced it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path
from typing import Final

import structlog

__all__ = ["ServerError", "SocketInUse", "bind", "unlink_if_ours"]

log = structlog.get_logger(__name__)

_SOCKET_DIR_NAME: Final = "envwatchd"


class ServerError(Exception):
    """The socket cannot be set up at this path; carries the path."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


class SocketInUse(ServerError):
    """Another live daemon answers on the socket path."""


def bind(path: Path) -> tuple[socket.socket, int]:
    """A bound, not yet listening, 0600 AF_UNIX socket at `path`, and its inode."""
    _prepare_dir(path.parent)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)  # before listen(): nobody can connect in between
    except OSError as exc:
        sock.close()
        raise ServerError(path, exc.strerror or str(exc)) from exc
    return sock, os.stat(path).st_ino


def unlink_if_ours(path: Path, inode: int) -> None:
    """Remove the socket file unless another daemon's socket has taken the path."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ino == inode:  # not a successor's socket
            path.unlink()


def _prepare_dir(directory: Path) -> None:
    """0700; an existing dir is tightened only if it is ours and named envwatchd.

    Trap: never chmod a shared parent (/tmp, $HOME) just because
    ENVWATCHD_SOCKET points into it; only warn.
    """
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        return
    st = directory.stat()
    if stat.S_IMODE(st.st_mode) & 0o077 == 0:
        return
    if st.st_uid == os.getuid() and directory.name == _SOCKET_DIR_NAME:
        os.chmod(directory, 0o700)
        log.info("server.socket_dir_tightened", dir=str(directory))
    else:
        log.warning("server.socket_dir_open", dir=str(directory), mode=oct(st.st_mode))


def _remove_stale(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ServerError(path, "exists and is not a socket")
    if _answers(path):
        raise SocketInUse(path, "another envwatchd is already listening here")
    path.unlink()
    log.info("server.stale_socket_removed", path=str(path))


def _answers(path: Path) -> bool:
    """Does a live process accept connections on this socket path?"""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True  # timeout or EAGAIN: a listener with a full backlog is still alive
    finally:
        probe.close()
    return True
