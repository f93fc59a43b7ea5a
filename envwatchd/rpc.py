"""JSON-RPC 2.0 for envwatchd: envelope checks, typed params, the method table.

No sockets here (server.py owns the transport), so every rule of the protocol
can be tested by calling `handle()` with plain dicts. The wire is data:
one strict pydantic model per method's params, one dict from method name to
handler, and the names and help text come from `envwatchd.client.METHOD_HELP`
so the `envwatch` help and this table cannot drift apart.

Choices the contract leaves open:
- Batch requests (a JSON array) are answered with one -32600 error
  ("batch requests are not supported", id null): no client of ours sends them
  and a batch of `rescan`s is an amplification with no use.
- Params must be an object (by-name); an array is -32602. Unknown keys are
  -32602 too, so a typo (`{"nmae": ...}`) fails loudly instead of widening a query.
- A valid notification (no "id") is executed and never answered, even on
  error; an *invalid* envelope is not a notification and gets -32600, id null.
- Any exception a handler raises other than RpcError is logged with its
  traceback and answered -32603: no request can take the daemon down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from envwatchd.client import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_HELP,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
)
from envwatchd.model import Manager
from envwatchd.timespec import to_utc_iso

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHODS",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "SUBSCRIBER_QUEUE_SIZE",
    "ConflictsParams",
    "EventsParams",
    "ExplainParams",
    "Method",
    "NoParams",
    "PackagesParams",
    "Push",
    "PushQueue",
    "Request",
    "RpcError",
    "Service",
    "WhereParams",
    "dispatch",
    "error_response",
    "handle",
    "notification",
    "parse_request",
    "respond",
    "result_response",
]

log = structlog.get_logger(__name__)

SUBSCRIBER_QUEUE_SIZE: Final = 10_000
"""The bound a Service should give each subscriber queue (see Service.subscribe)."""

Push = tuple[str, dict[str, Any]]
"""A notification for subscribers: ("event" | "conflict", params)."""
PushQueue = asyncio.Queue[Push]


class RpcError(Exception):
    """A JSON-RPC error with its stable code; `data` names the bad field when there is one."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


class Service(Protocol):
    """What the daemon offers the socket. Results are contract §5 JSON shapes.

    Sync methods run on the event loop and must answer from memory quickly;
    only `rescan` may take long. `subscribe` returns a fresh queue bounded at
    SUBSCRIBER_QUEUE_SIZE; the service feeds it with `put_nowait` and ignores
    QueueFull (a producer must never block on a slow client): the server sees
    the full queue, drops that subscriber and calls `unsubscribe`.
    """

    def status(self) -> dict[str, Any]: ...
    def where(self, name: str) -> dict[str, Any]: ...
    def explain(self, path: str) -> dict[str, Any]: ...
    def packages(self, env: str | None, manager: str | None) -> list[dict[str, Any]]: ...
    def envs(self) -> list[dict[str, Any]]: ...
    def events(
        self, since: str | None, package: str | None, limit: int | None
    ) -> list[dict[str, Any]]: ...
    def conflicts(self, include_resolved: bool) -> list[dict[str, Any]]: ...
    async def rescan(self) -> dict[str, Any]: ...
    def metrics(self) -> dict[str, Any]: ...
    def subscribe(self) -> PushQueue: ...
    def unsubscribe(self, queue: PushQueue) -> None: ...


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NoParams(_Params):
    """status, envs, rescan, subscribe, metrics: no params (absent or {})."""


class WhereParams(_Params):
    name: str = Field(min_length=1)


class ExplainParams(_Params):
    path: str = Field(min_length=1)


class PackagesParams(_Params):
    env: str | None = Field(default=None, min_length=1)
    manager: Manager | None = Field(default=None, strict=False)  # "pip" -> Manager.PIP


class EventsParams(_Params):
    since: str | None = None
    package: str | None = Field(default=None, min_length=1)
    limit: int | None = Field(default=None, ge=1)

    @field_validator("since")
    @classmethod
    def _since_is_utc_iso(cls, value: str | None) -> str | None:
        """Accept "2h" or any ISO-8601; hand the service one canonical UTC form."""
        return None if value is None else to_utc_iso(value)


class ConflictsParams(_Params):
    all: bool = False


P = TypeVar("P", bound=_Params)


@dataclass(frozen=True, slots=True)
class Method(Generic[P]):
    """One row of the method table: params model and handler."""

    name: str
    params: type[P]
    run: Callable[[Service, P], Awaitable[Any]]

    @property
    def summary(self) -> str:
        return METHOD_HELP[self.name]


async def _status(svc: Service, _: NoParams) -> Any:
    return svc.status()


async def _where(svc: Service, p: WhereParams) -> Any:
    return svc.where(p.name)


async def _explain(svc: Service, p: ExplainParams) -> Any:
    return svc.explain(p.path)


async def _packages(svc: Service, p: PackagesParams) -> Any:
    return svc.packages(p.env, p.manager.value if p.manager else None)


async def _envs(svc: Service, _: NoParams) -> Any:
    return svc.envs()


async def _events(svc: Service, p: EventsParams) -> Any:
    return svc.events(p.since, p.package, p.limit)


async def _conflicts(svc: Service, p: ConflictsParams) -> Any:
    return svc.conflicts(p.all)


async def _rescan(svc: Service, _: NoParams) -> Any:
    return await svc.rescan()


async def _metrics(svc: Service, _: NoParams) -> Any:
    return svc.metrics()


async def _subscribe(svc: Service, _: NoParams) -> Any:
    """Only the acknowledgement: the transport owns the stream (server.py)."""
    return {"subscribed": True}


METHODS: Final[dict[str, Method[Any]]] = {
    m.name: m
    for m in (
        Method("status", NoParams, _status),
        Method("where", WhereParams, _where),
        Method("explain", ExplainParams, _explain),
        Method("packages", PackagesParams, _packages),
        Method("envs", NoParams, _envs),
        Method("events", EventsParams, _events),
        Method("conflicts", ConflictsParams, _conflicts),
        Method("rescan", NoParams, _rescan),
        Method("subscribe", NoParams, _subscribe),
        Method("metrics", NoParams, _metrics),
    )
}


@dataclass(frozen=True, slots=True)
class Request:
    """A request whose envelope passed the JSON-RPC 2.0 checks; params not yet validated."""

    method: str
    params: object
    id: str | int | None
    notification: bool


def _valid_id(value: object) -> bool:
    return value is None or (isinstance(value, str | int) and not isinstance(value, bool))


def parse_request(obj: object) -> Request:
    """Check the envelope; raise RpcError(-32600) naming what is wrong."""
    if isinstance(obj, list):
        raise RpcError(INVALID_REQUEST, "batch requests are not supported")
    if not isinstance(obj, dict):
        raise RpcError(INVALID_REQUEST, "a request must be a JSON object")
    if obj.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"')
    if not _valid_id(obj.get("id")):
        raise RpcError(INVALID_REQUEST, 'invalid request: "id" must be a string, integer or null')
    method = obj.get("method")
    if not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, 'invalid request: "method" must be a string')
    params = obj.get("params", {})
    if not isinstance(params, dict | list):
        raise RpcError(INVALID_REQUEST, 'invalid request: "params" must be an object')
    return Request(method, params, obj.get("id"), "id" not in obj)


def _params(method: Method[P], raw: object) -> P:
    if not isinstance(raw, dict):
        raise RpcError(INVALID_PARAMS, "invalid params: params must be an object (by name)")
    try:
        return method.params.model_validate(raw)
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(part) for part in err["loc"]) or "params", "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        raise RpcError(INVALID_PARAMS, f"invalid params: {summary}", fields) from None


async def dispatch(service: Service, request: Request) -> Any:
    """Run the request's handler; raise RpcError for every failure, never anything else."""
    method = METHODS.get(request.method)
    if method is None:
        raise RpcError(
            METHOD_NOT_FOUND, f"method not found: {request.method}", {"method": request.method}
        )
    params = _params(method, request.params)
    try:
        return await method.run(service, params)
    except RpcError:
        raise
    except Exception:
        log.exception("rpc.internal_error", method=request.method)
        raise RpcError(INTERNAL_ERROR, "internal error", {"method": request.method}) from None


def result_response(result: Any, request_id: str | int | None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def error_response(error: RpcError, request_id: str | int | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


async def respond(service: Service, request: Request) -> dict[str, Any] | None:
    """The reply to a parsed request, or None for a notification."""
    try:
        response = result_response(await dispatch(service, request), request.id)
    except RpcError as err:
        response = error_response(err, request.id)
    return None if request.notification else response


async def handle(service: Service, obj: object) -> dict[str, Any] | None:
    """The reply to one decoded JSON value (None: a notification, nothing to send)."""
    try:
        request = parse_request(obj)
    except RpcError as err:
        salvaged = obj.get("id") if isinstance(obj, dict) else None
        return error_response(err, salvaged if _valid_id(salvaged) else None)
    return await respond(service, request)
