"""An in-memory Service and a live server on a real socket, for the wire tests.

Why: the socket layer and the CLI are tested against the real RpcServer on a
real AF_UNIX socket, but without the daemon's scanner, so the data is a small
machine built from envwatchd.model objects (their to_json() is the contract
shape). `LiveServer` runs the server's event loop in a thread so tests can use
plain blocking sockets, subprocesses and setpriv against it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from envwatchd.model import (
    Conflict,
    ConflictKind,
    Copy,
    Env,
    EnvKind,
    Event,
    EventKind,
    Format,
    Interpreter,
    Manager,
    Severity,
    canonicalize,
)
from envwatchd.rpc import SUBSCRIBER_QUEUE_SIZE, PushQueue
from envwatchd.server import RpcServer

__all__ = ["FakeService", "LiveServer", "exchange", "make_conflict", "make_event"]

SYS_SITE = "/usr/lib/python3/dist-packages"
USER_SITE = "/home/ada/.local/lib/python3.11/site-packages"
VENV_SITE = "/home/ada/proj/.venv/lib/python3.11/site-packages"

SYSTEM = Env(
    EnvKind.SYSTEM,
    "/usr",
    "system",
    "3.11",
    (SYS_SITE,),
    (Interpreter("/usr/bin/python3.11", "3.11", "/usr", (USER_SITE, SYS_SITE)),),
)
USER = Env(EnvKind.USER, "/home/ada/.local", "user", "3.11", (USER_SITE,))
VENV = Env(
    EnvKind.VENV,
    "/home/ada/proj/.venv",
    "proj",
    "3.11",
    (VENV_SITE,),
    (Interpreter("/home/ada/proj/.venv/bin/python", "3.11", "/home/ada/proj/.venv", (VENV_SITE,)),),
)


def _copy(name: str, version: str, env: Env, manager: Manager, imported: bool) -> Copy:
    site = env.site_dirs[0]
    return Copy(
        name=canonicalize(name),
        display_name=name,
        version=version,
        format=Format.DIST_INFO,
        path=f"{site}/{name}-{version}.dist-info",
        site=site,
        env=env.ref,
        manager=manager,
        evidence=(f"INSTALLER: {manager.value}",),
        imported_by=("/usr/bin/python3.11",) if imported else (),
    )


NUMPY_SYS = _copy("numpy", "1.24.2", SYSTEM, Manager.APT, imported=False)
NUMPY_USER = _copy("numpy", "2.0.1", USER, Manager.PIP, imported=True)
REQUESTS = _copy("requests", "2.32.3", VENV, Manager.PIP, imported=False)


def make_event(
    name: str = "numpy",
    kind: EventKind = EventKind.UPGRADE,
    ident: int = 1,
    when: str = "2024-05-01T10:00:00+00:00",
    version: str = "2.0.1",
    previous: str | None = "1.26.4",
) -> Event:
    return Event(
        kind=kind,
        name=canonicalize(name),
        version=version,
        previous_version=previous,
        manager=Manager.PIP,
        previous_manager=Manager.PIP,
        env=USER.ref,
        site=USER_SITE,
        path=NUMPY_USER.path,
        time=when,
        id=ident,
    )


def make_conflict(
    severity: Severity = Severity.WARNING, ident: int = 1, resolved: str | None = None
) -> Conflict:
    return Conflict(
        key=f"duplicate:numpy:{ident}",
        kind=ConflictKind.DUPLICATE,
        name="numpy",
        severity=severity,
        copies=(NUMPY_USER, NUMPY_SYS),
        message="numpy 2.0.1 (pip, user) shadows numpy 1.24.2 (apt, system)",
        remedy=("pip uninstall --user numpy",),
        id=ident,
        opened="2024-05-01T10:00:00+00:00",
        resolved=resolved,
    )


class FakeService:
    """The Service protocol over a fixed little machine; `push()` feeds subscribers."""

    def __init__(
        self, conflicts: Iterable[Conflict] | None = None, queue_size: int = SUBSCRIBER_QUEUE_SIZE
    ) -> None:
        self.copies = [NUMPY_SYS, NUMPY_USER, REQUESTS]
        self.env_list = [SYSTEM, USER, VENV]
        self.event_list = [
            make_event(ident=1, when="2024-05-01T10:00:00+00:00"),
            make_event(
                "requests", EventKind.INSTALL, 2, "2024-05-02T09:30:00+00:00", "2.32.3", None
            ),
        ]
        self.conflict_list = (
            list(conflicts)
            if conflicts is not None
            else [
                make_conflict(Severity.WARNING, 1),
                make_conflict(Severity.ERROR, 2, resolved="2024-05-03T00:00:00+00:00"),
            ]
        )
        self.queues: list[PushQueue] = []
        self.queue_size = queue_size
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: str | None = None  # a method name that raises, to test -32603
        self.rescan_delay = 0.0

    def _called(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        if self.fail == method:
            raise RuntimeError(f"{method} exploded")

    def status(self) -> dict[str, Any]:
        self._called("status")
        return {
            "version": "0.1.0",
            "pid": 4242,
            "started": "2024-05-01T08:00:00+00:00",
            "uptime_s": 7380.0,
            "trees_watched": 3,
            "watches": 12,
            "threads": 4,
            "packages": len(self.copies),
            "envs": len(self.env_list),
            "open_conflicts": sum(c.resolved is None for c in self.conflict_list),
            "last_event": self.event_list[-1].to_json(),
            "unwatched": [],
            "degraded": None,
        }

    def where(self, name: str) -> dict[str, Any]:
        self._called("where", name)
        norm = canonicalize(name)
        copies = [c for c in self.copies if c.name == norm]
        interps = []
        if len(copies) > 1:
            interps.append(
                {
                    "executable": "/usr/bin/python3.11",
                    "imported": NUMPY_USER.path,
                    "shadowed": [NUMPY_SYS.path],
                }
            )
        return {"name": norm, "copies": [c.to_json() for c in copies], "interpreters": interps}

    def explain(self, path: str) -> dict[str, Any]:
        self._called("explain", path)
        for c in self.copies:
            if path == c.path or path.startswith(c.path + "/"):
                return {
                    "path": path,
                    "env": c.env.to_json(),
                    "site": c.site,
                    "copy": c.to_json(),
                    "owner": None,
                    "manager": c.manager.value,
                    "evidence": list(c.evidence),
                    "found": True,
                }
        return {
            "path": path,
            "env": None,
            "site": None,
            "copy": None,
            "owner": None,
            "manager": None,
            "evidence": [],
            "found": False,
        }

    def packages(self, env: str | None, manager: str | None) -> list[dict[str, Any]]:
        self._called("packages", env, manager)
        return [
            c.to_json()
            for c in self.copies
            if (env is None or c.env.prefix == env) and (manager in (None, c.manager.value))
        ]

    def envs(self) -> list[dict[str, Any]]:
        self._called("envs")
        return [
            e.to_json(sum(c.env.prefix == e.prefix for c in self.copies)) for e in self.env_list
        ]

    def events(
        self, since: str | None, package: str | None, limit: int | None
    ) -> list[dict[str, Any]]:
        self._called("events", since, package, limit)
        out = [
            e
            for e in self.event_list
            if (since is None or datetime.fromisoformat(e.time) >= datetime.fromisoformat(since))
            and (package is None or e.name == canonicalize(package))
        ]
        return [e.to_json() for e in (out[-limit:] if limit else out)]

    def conflicts(self, include_resolved: bool) -> list[dict[str, Any]]:
        self._called("conflicts", include_resolved)
        return [c.to_json() for c in self.conflict_list if include_resolved or c.resolved is None]

    async def rescan(self) -> dict[str, Any]:
        self._called("rescan")
        await asyncio.sleep(self.rescan_delay)
        return {
            "envs": len(self.env_list),
            "packages": len(self.copies),
            "events": 0,
            "duration_ms": 1.5,
        }

    def metrics(self) -> dict[str, Any]:
        self._called("metrics")
        return {
            "content_type": "text/plain; version=0.0.4; charset=utf-8",
            "text": "# HELP envwatchd_packages Installed copies.\n"
            "# TYPE envwatchd_packages gauge\n"
            'envwatchd_packages{env_kind="user",manager="pip"} 1.0\n',
        }

    def subscribe(self) -> PushQueue:
        queue: PushQueue = asyncio.Queue(self.queue_size)
        self.queues.append(queue)
        return queue

    def unsubscribe(self, queue: PushQueue) -> None:
        self.queues.remove(queue)

    def push(self, method: str, params: dict[str, Any]) -> None:
        """What the daemon does on a change: put_nowait, never block on a slow client."""
        for queue in self.queues:
            if not queue.full():
                queue.put_nowait((method, params))


class LiveServer:
    """An RpcServer with its own event loop in a thread, serving `service` at `path`."""

    def __init__(
        self,
        path: Path | None,
        service: FakeService | None = None,
        sock: socket.socket | None = None,
        **options: float,
    ) -> None:
        self.path = path
        self.service = service or FakeService()
        self._sock = sock
        self._options = options
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: RpcServer | None = None

    def __enter__(self) -> LiveServer:
        self._thread.start()
        self.server = self.run(self._make_server)
        return self

    async def _make_server(self) -> RpcServer:
        server = RpcServer(self.service, self.path, self._sock, **self._options)
        await server.start()
        return server

    def run(self, make: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Await a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(timeout)

    def push(self, method: str, params: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.service.push, method, params)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.01)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.server is not None:
            self.run(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def exchange(path: Path, data: bytes, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Send raw bytes, half-close, and return every JSON line the server sends back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        buf = b""
        while chunk := sock.recv(65536):
            buf += chunk
    return [json.loads(line) for line in buf.splitlines() if line.strip()]
