"""The JSON-RPC layer without sockets: envelope, params, method table, time specs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from envwatchd.client import METHOD_HELP
from envwatchd.rpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    METHODS,
    handle,
)
from envwatchd.timespec import TimespecError, parse_since, to_utc_iso
from tests.fake_service import FakeService

VALID_PARAMS: dict[str, dict[str, Any]] = {
    "status": {},
    "where": {"name": "NumPy"},
    "explain": {"path": "/usr/lib/python3/dist-packages/numpy-1.24.2.dist-info"},
    "packages": {"env": "/usr", "manager": "apt"},
    "envs": {},
    "events": {"since": "2024-05-01T00:00:00Z", "package": "numpy", "limit": 5},
    "conflicts": {"all": True},
    "rescan": {},
    "subscribe": {},
    "metrics": {},
}


def ask(obj: object, service: FakeService | None = None) -> dict[str, Any] | None:
    return asyncio.run(handle(service or FakeService(), obj))


def req(method: str, params: object = None, ident: object = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": ident}
    if params is not None:
        out["params"] = params
    return out


def test_method_table_is_the_help_table() -> None:
    """The server's methods and the CLI's help come from one list."""
    assert set(METHODS) == set(METHOD_HELP) == set(VALID_PARAMS)
    assert all(m.summary == METHOD_HELP[name] for name, m in METHODS.items())


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_answers_valid_params(method: str) -> None:
    """Each method returns a JSON-serialisable result and echoes the id."""
    reply = ask(req(method, VALID_PARAMS[method], "abc"))
    assert reply is not None and "error" not in reply, reply
    assert reply["id"] == "abc" and reply["jsonrpc"] == "2.0"
    json.dumps(reply["result"])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_unknown_param_key_is_invalid_params(method: str) -> None:
    """Strict params: a typo fails loudly and names the field."""
    reply = ask(req(method, {**VALID_PARAMS[method], "bogus": 1}))
    assert reply is not None
    assert reply["error"]["code"] == INVALID_PARAMS
    assert reply["error"]["data"][0]["field"] == "bogus"


@pytest.mark.parametrize(
    "obj",
    [
        {"method": "status", "id": 1},
        {"jsonrpc": "1.0", "method": "status", "id": 1},
        {"jsonrpc": 2.0, "method": "status", "id": 1},
        {"jsonrpc": "2.0", "method": 7, "id": 1},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "method": "status", "id": 1.5},
        {"jsonrpc": "2.0", "method": "status", "id": True},
        {"jsonrpc": "2.0", "method": "status", "id": [1]},
        {"jsonrpc": "2.0", "method": "status", "params": "x", "id": 1},
        {"jsonrpc": "2.0", "method": "status", "params": None, "id": 1},
        [req("status")],
        [],
        "status",
        42,
        None,
    ],
)
def test_invalid_envelope_is_invalid_request(obj: object) -> None:
    """Anything that is not a JSON-RPC 2.0 request object gets -32600, even without an id."""
    reply = ask(obj)
    assert reply is not None and reply["error"]["code"] == INVALID_REQUEST


def test_invalid_request_keeps_a_valid_id() -> None:
    reply = ask({"method": "status", "id": "k"})
    assert reply is not None and reply["id"] == "k"


def test_batch_is_refused_with_a_reason() -> None:
    reply = ask([req("status"), req("envs")])
    assert reply is not None and "batch" in reply["error"]["message"]


def test_unknown_method() -> None:
    reply = ask(req("drop_tables", ident=9))
    assert reply == {
        "jsonrpc": "2.0",
        "error": {
            "code": METHOD_NOT_FOUND,
            "message": "method not found: drop_tables",
            "data": {"method": "drop_tables"},
        },
        "id": 9,
    }


def test_positional_params_are_invalid_params() -> None:
    reply = ask(req("where", ["numpy"]))
    assert reply is not None and reply["error"]["code"] == INVALID_PARAMS


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("where", {}, "name"),
        ("where", {"name": ""}, "name"),
        ("where", {"name": 3}, "name"),
        ("explain", {"path": None}, "path"),
        ("events", {"limit": 0}, "limit"),
        ("events", {"limit": "5"}, "limit"),
        ("events", {"limit": True}, "limit"),
        ("events", {"since": "yesterday-ish"}, "since"),
        ("events", {"since": 5}, "since"),
        ("conflicts", {"all": 1}, "all"),
        ("packages", {"manager": "brew"}, "manager"),
        ("status", {"verbose": True}, "verbose"),
    ],
)
def test_bad_params_name_the_field(method: str, params: dict[str, Any], field: str) -> None:
    """-32602 carries the offending field in data and in the message."""
    reply = ask(req(method, params))
    assert reply is not None
    assert reply["error"]["code"] == INVALID_PARAMS
    assert field in reply["error"]["message"]
    assert [d["field"] for d in reply["error"]["data"]] == [field]


def test_notification_runs_but_gets_no_reply() -> None:
    service = FakeService()
    assert ask({"jsonrpc": "2.0", "method": "rescan"}, service) is None
    assert ask({"jsonrpc": "2.0", "method": "no_such"}, service) is None
    assert ("rescan", ()) in service.calls


def test_since_reaches_the_service_as_utc_iso() -> None:
    service = FakeService()
    ask(req("events", {"since": "2024-05-01T12:00:00+02:00"}), service)
    assert service.calls[-1] == ("events", ("2024-05-01T10:00:00+00:00", None, None))


def test_manager_reaches_the_service_as_its_string() -> None:
    service = FakeService()
    ask(req("packages", {"manager": "pip"}), service)
    assert service.calls[-1] == ("packages", (None, "pip"))


def test_service_crash_is_internal_error_and_logged() -> None:
    """A bug in the service answers -32603 and logs the traceback; nothing propagates."""
    service = FakeService()
    service.fail = "where"
    with capture_logs() as logs:
        reply = ask(req("where", {"name": "numpy"}), service)
    assert reply is not None and reply["error"]["code"] == INTERNAL_ERROR
    assert "exploded" not in json.dumps(reply)  # no internals on the wire
    assert [e["event"] for e in logs] == ["rpc.internal_error"]
    assert logs[0]["exc_info"] is True and logs[0]["method"] == "where"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    obj=json_values
    | st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "method": st.sampled_from([*METHODS, "x"])},
        optional={"id": json_values, "params": json_values},
    )
)
def test_handle_never_raises(obj: object) -> None:
    """Property: any JSON value yields a JSON-RPC reply or None, never an exception."""
    reply = ask(obj)
    if reply is not None:
        assert reply["jsonrpc"] == "2.0" and ("result" in reply) != ("error" in reply)
        json.dumps(reply)


NOW = datetime(2024, 5, 10, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", "2024-05-10T11:58:30+00:00"),
        ("30m", "2024-05-10T11:30:00+00:00"),
        ("2h", "2024-05-10T10:00:00+00:00"),
        (" 7D ", "2024-05-03T12:00:00+00:00"),
        ("2w", "2024-04-26T12:00:00+00:00"),
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
        ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00+00:00"),
        ("2024-05-01T10:00:00.123456+00:00", "2024-05-01T10:00:00+00:00"),
    ],
)
def test_timespec(text: str, expected: str) -> None:
    assert to_utc_iso(text, now=NOW) == expected


def test_timespec_naive_is_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A time typed without offset means the user's wall clock, like journalctl."""
    local = datetime(2024, 5, 1, 10, 0).astimezone()
    assert parse_since("2024-05-01T10:00:00") == local.astimezone(UTC)


@pytest.mark.parametrize("text", ["", "2x", "-2h", "h", "yesterday", "2024-13-01", "9999999999d"])
def test_timespec_rejects(text: str) -> None:
    with pytest.raises(TimespecError) as info:
        to_utc_iso(text, now=NOW)
    assert info.value.text == text
