"""The client end of the envwatchd socket, and the wire vocabulary both ends share.

Why it is stdlib only (json, os, socket): `envwatch` runs once per command and
must start in milliseconds, so this module may not pull in pydantic, structlog,
watchdog or asyncio. For the same reason the protocol's fixed data — error
codes, the line limit and the method table's names and help — lives here and
`envwatchd.rpc` (the pydantic side) imports it, so the CLI's help text and the
server's dispatch table cannot drift apart.

Framing (contract §6): one JSON-RPC 2.0 object per line, UTF-8.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any, Final

from envwatchd.paths import socket_path

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "MAX_LINE_BYTES",
    "METHOD_HELP",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "Client",
    "DaemonUnreachable",
    "RpcCallError",
]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

MAX_LINE_BYTES: Final = 1024 * 1024
"""A request line longer than this gets an error and the connection closes."""

METHOD_HELP: Final[Mapping[str, str]] = {
    "status": "daemon health: up since, trees watched, packages, open conflicts, last event",
    "where": "every copy of a distribution and which one each interpreter imports",
    "explain": "reverse a path: its environment, owning distribution, manager, evidence",
    "packages": "the inventory, optionally filtered by environment prefix or manager",
    "envs": "discovered environments: kind, prefix, python version, package count",
    "events": "the event log: installs, uninstalls, upgrades, downgrades, replaces",
    "conflicts": "open conflicts (all=true: resolved ones too), each with its remedy",
    "rescan": "rescan every package tree now",
    "subscribe": "stream event and conflict notifications until the client leaves",
    "metrics": "Prometheus text exposition: packages, conflicts, events, watches",
}
"""The socket's methods and their one-line help; rpc.METHODS is built from it."""


class DaemonUnreachable(Exception):
    """No daemon answers on the socket (missing, refused, closed on us, or silent)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot reach envwatchd at {path}: {reason}")
        self.path = path
        self.reason = reason


class RpcCallError(Exception):
    """The daemon answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (JSON-RPC error {code})")
        self.code = code
        self.message = message
        self.data = data


class _Lines:
    """Newline-delimited JSON objects read off a connected socket."""

    def __init__(self, sock: socket.socket, path: str) -> None:
        self._sock = sock
        self._path = path
        self._buf = b""

    def next(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            self._buf += self._recv()
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise DaemonUnreachable(self._path, f"garbled reply: {exc}") from exc
        if not isinstance(obj, dict):
            raise DaemonUnreachable(self._path, "garbled reply: not a JSON object")
        return obj

    def _recv(self) -> bytes:
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError as exc:
            raise DaemonUnreachable(self._path, "no answer in time") from exc
        except OSError as exc:
            raise DaemonUnreachable(self._path, exc.strerror or str(exc)) from exc
        if not chunk:
            raise DaemonUnreachable(self._path, "the daemon closed the connection")
        return chunk


class Client:
    """A blocking JSON-RPC client: one connection per `call`, one per `stream`."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else str(socket_path())
        self._next_id = 0

    def call(
        self, method: str, params: Mapping[str, Any] | None = None, timeout: float = 10.0
    ) -> Any:
        """Send one request and return its `result`; raises RpcCallError or DaemonUnreachable."""
        request_id = self._send_id()
        with self._connect(timeout) as sock:
            self._send(sock, method, params, request_id)
            lines = _Lines(sock, self.path)
            while True:
                reply = lines.next()
                if reply.get("id") == request_id or ("error" in reply and reply.get("id") is None):
                    return _result(reply)

    def stream(self, timeout: float = 10.0) -> Iterator[tuple[str, dict[str, Any]]]:
        """Subscribe and yield (method, params) notifications; EOF raises DaemonUnreachable.

        `timeout` bounds the connect and the acknowledgement only: after that the
        stream blocks until the daemon says something or a signal interrupts.
        """
        request_id = self._send_id()
        with self._connect(timeout) as sock:
            self._send(sock, "subscribe", None, request_id)
            lines = _Lines(sock, self.path)
            _result(lines.next())
            sock.settimeout(None)
            while True:
                note = lines.next()
                method, params = note.get("method"), note.get("params")
                if isinstance(method, str) and isinstance(params, dict):
                    yield method, params

    def _send_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise DaemonUnreachable(self.path, exc.strerror or str(exc)) from exc
        return sock

    def _send(
        self,
        sock: socket.socket,
        method: str,
        params: Mapping[str, Any] | None,
        request_id: int,
    ) -> None:
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            request["params"] = dict(params)
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            raise DaemonUnreachable(self.path, exc.strerror or str(exc)) from exc


def _result(reply: Mapping[str, Any]) -> Any:
    error = reply.get("error")
    if isinstance(error, dict):
        raise RpcCallError(
            int(error.get("code", INTERNAL_ERROR)),
            str(error.get("message", "")),
            error.get("data"),
        )
    return reply.get("result")
