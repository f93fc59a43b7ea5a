"""The asyncio Unix-socket server: newline-delimited JSON-RPC 2.0 for `envwatch`.

Why it looks like this:
- One task per connection, requests on a connection answered in order; a
  slow `rescan` or a silent client holds only its own connection, and every
  write is bounded by a drain timeout so a reader that stops reading is dropped
  instead of filling our memory.
- The socket file (0700 dir, 0600 socket before listen, stale-socket test,
  unlink only if still ours) is envwatchd.socketfile. SO_PEERCRED is still
  checked here on every connection because a path's mode is easy to loosen by
  hand. Root is allowed (an admin asking), every other foreign uid gets a
  closed connection and no reply.
- An inherited socket (systemd socket activation) is served as is and never
  unlinked: systemd owns that path.
- Lines are capped at MAX_LINE_BYTES with the StreamReader limit: a longer line
  gets one -32600 "request too large" and the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any, Final

import structlog

from envwatchd.client import MAX_LINE_BYTES
from envwatchd.rpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    Push,
    PushQueue,
    RpcError,
    Service,
    error_response,
    notification,
    parse_request,
    respond,
)
from envwatchd.socketfile import ServerError, SocketInUse, bind, unlink_if_ours

# ServerError and SocketInUse stay exported here: RpcServer.start() raises them.
__all__ = ["RpcServer", "ServerError", "SocketInUse", "peer_allowed"]

log = structlog.get_logger(__name__)

_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_BACKLOG: Final = 1024  # a burst of `envwatch` calls queues in the kernel, never EAGAIN


class _TooLarge(Exception):
    """The client sent a line over MAX_LINE_BYTES."""


def peer_allowed(peer_uid: int, our_uid: int) -> bool:
    """Our own uid, or root: nobody else may talk to the daemon (contract §2)."""
    return peer_uid in (our_uid, 0)


def _encode(message: dict[str, Any]) -> bytes:
    """One line on the wire; a result that is not JSON becomes -32603, not a crash."""
    try:
        return json.dumps(message, allow_nan=False).encode() + b"\n"
    except (TypeError, ValueError):  # a set, a datetime, NaN: not JSON
        log.exception("server.unencodable_result", id=message.get("id"))
        fallback = error_response(RpcError(INTERNAL_ERROR, "internal error"), message.get("id"))
        return json.dumps(fallback).encode() + b"\n"


def _decode(line: bytes) -> object:
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RpcError(PARSE_ERROR, "parse error: request is not valid UTF-8") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
        raise RpcError(PARSE_ERROR, f"parse error: {exc}") from exc


class RpcServer:
    """Serve `service` on the Unix socket at `path`, or on the inherited `sock`."""

    def __init__(
        self,
        service: Service,
        path: Path | None,
        sock: socket.socket | None = None,
        *,
        drain_timeout: float = 5.0,
        close_timeout: float = 2.0,
    ) -> None:
        if path is None and sock is None:
            raise ValueError("RpcServer needs a socket path or an inherited socket")
        self._service = service
        self._path = path
        self._inherited = sock
        self._drain_timeout = drain_timeout
        self._close_timeout = close_timeout
        self._server: asyncio.Server | None = None
        self._bound_inode: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribers = 0
        self._closing = False
        self.counters: dict[str, int] = dict.fromkeys(
            ("connections", "refused", "requests", "errors", "subscribers_dropped"), 0
        )

    def stats(self) -> dict[str, int]:
        """Open clients and subscribers now, plus the running totals, for `status`."""
        return {"clients": len(self._tasks), "subscribers": self._subscribers, **self.counters}

    async def start(self) -> None:
        sock = self._inherited if self._inherited is not None else self._bind()
        self._server = await asyncio.start_unix_server(
            self._on_connect, sock=sock, limit=MAX_LINE_BYTES, backlog=_BACKLOG
        )
        log.info(
            "server.listening", path=str(sock.getsockname()), inherited=sock is self._inherited
        )

    async def close(self) -> None:
        """Stop accepting, end every connection within close_timeout, unlink our socket."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self._close_timeout)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), self._close_timeout)
        self._unlink_own_socket()
        log.info("server.closed", cut_clients=len(tasks), **self.counters)

    # -- socket set-up -------------------------------------------------

    def _bind(self) -> socket.socket:
        assert self._path is not None
        sock, self._bound_inode = bind(self._path)
        return sock

    def _unlink_own_socket(self) -> None:
        if self._path is None or self._bound_inode is None:
            return
        unlink_if_ours(self._path, self._bound_inode)
        self._bound_inode = None

    # -- connections ---------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.counters["connections"] += 1
        try:
            if self._peer_ok(writer):
                await self._serve(reader, writer)
        except (ConnectionError, TimeoutError) as exc:  # vanished, or stopped reading
            log.info("server.client_dropped", reason=type(exc).__name__)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # close() cut us: end quietly, or asyncio's start_server callback logs the
            # cancellation as an error (it calls task.exception() on a cancelled task)
        except Exception:
            log.exception("server.client_failed")
        finally:
            self._tasks.discard(task)
            writer.close()

    def _peer_ok(self, writer: asyncio.StreamWriter) -> bool:
        sock: socket.socket | None = writer.get_extra_info("socket")
        pid, uid = -1, -1  # unknown peer: fail closed
        if sock is not None:
            with contextlib.suppress(OSError):
                raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
                pid, uid, _gid = _CRED.unpack(raw)
        if peer_allowed(uid, os.getuid()):
            return True
        self.counters["refused"] += 1
        log.warning("server.peer_refused", uid=uid, pid=pid)
        return False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await _read_line(reader)
            except _TooLarge:
                error = RpcError(INVALID_REQUEST, "request too large", {"limit": MAX_LINE_BYTES})
                await self._write(writer, error_response(error))
                log.warning("server.request_too_large", limit=MAX_LINE_BYTES)
                return
            if line is None:
                return
            if line.strip() and await self._answer(line, writer):
                await self._stream(reader, writer)
                return

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one line; True when it was an acknowledged `subscribe`."""
        self.counters["requests"] += 1
        started = time.monotonic()
        try:
            request = parse_request(_decode(line))
        except RpcError as err:
            self.counters["errors"] += 1
            await self._write(writer, error_response(err))
            return False
        response = await respond(self._service, request)
        log.debug(
            "server.request",
            method=request.method,
            error=response.get("error", {}).get("code") if response else None,
            duration_ms=round((time.monotonic() - started) * 1000, 2),
        )
        if response is None:
            return False
        if "error" in response:
            self.counters["errors"] += 1
        subscribing = request.method == "subscribe" and "result" in response
        await self._write(writer, response)
        return subscribing

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Relay the service's pushes until the client leaves or falls behind."""
        queue: PushQueue = self._service.subscribe()
        gone = asyncio.ensure_future(_until_eof(reader))
        get: asyncio.Future[Push] | None = None
        self._subscribers += 1
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    return
                if _was_full(queue):
                    self._drop_subscriber("queue_full")
                    return
                await self._push(writer, *get.result())
        finally:
            self._subscribers -= 1
            for future in (gone, get):
                if future is not None:
                    future.cancel()
            self._service.unsubscribe(queue)

    async def _push(
        self, writer: asyncio.StreamWriter, method: str, params: dict[str, Any]
    ) -> None:
        try:
            await self._write(writer, notification(method, params))
        except TimeoutError:
            self._drop_subscriber("slow_reader")
            raise

    def _drop_subscriber(self, reason: str) -> None:
        self.counters["subscribers_dropped"] += 1
        log.warning("server.subscriber_dropped", reason=reason)

    async def _write(self, writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        writer.write(_encode(message))
        await asyncio.wait_for(writer.drain(), self._drain_timeout)


async def _read_line(reader: asyncio.StreamReader) -> bytes | None:
    """The next line without its newline; None at EOF; _TooLarge over the limit."""
    try:
        return (await reader.readuntil(b"\n"))[:-1]
    except asyncio.IncompleteReadError as exc:
        return exc.partial or None  # a last line without newline still counts
    except (asyncio.LimitOverrunError, ValueError) as exc:
        raise _TooLarge from exc


def _was_full(queue: PushQueue) -> bool:
    """Was the queue at its bound just before our get()? Then the service may have lost
    events for this subscriber (it never blocks on QueueFull), so the stream has a gap.

    Only our gets drain the queue, so a full queue stays full until the next get
    and is seen here: checking `full()` before get() would miss it, because a
    waiting get() takes the first item as soon as the burst begins.
    """
    return bool(queue.maxsize) and queue.qsize() + 1 >= queue.maxsize


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Wait until a subscriber hangs up; whatever it sends after subscribing is ignored."""
    while await reader.read(65536):
        pass
