"""RpcServer on a real AF_UNIX socket: framing, limits, isolation, permissions, peers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from envwatchd.client import MAX_LINE_BYTES, Client, DaemonUnreachable
from envwatchd.rpc import METHODS
from envwatchd.server import RpcServer, ServerError, SocketInUse, peer_allowed
from tests.fake_service import FakeService, LiveServer, exchange, make_conflict, make_event
from tests.test_rpc import VALID_PARAMS

COPY_KEYS = {
    "name",
    "display_name",
    "version",
    "format",
    "path",
    "site",
    "env",
    "manager",
    "evidence",
    "imported_by",
}
STATUS = b'{"jsonrpc":"2.0","method":"status","id":"probe"}\n'


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "envwatchd" / "envwatchd.sock"


@pytest.fixture
def live(sock_path: Path) -> Iterator[LiveServer]:
    with LiveServer(sock_path, drain_timeout=0.5) as server:
        yield server


def connect(path: Path, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(path))
    return sock


def read_line(sock: socket.socket) -> dict[str, Any]:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        assert chunk, "connection closed before a full line"
        buf += chunk
    reply: dict[str, Any] = json.loads(buf)
    return reply


def probe(path: Path) -> None:
    """The server still answers `status` promptly."""
    assert exchange(path, STATUS, timeout=5)[0]["result"]["pid"] == 4242


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"subscribe"}))
def test_every_method_over_the_socket(live: LiveServer, sock_path: Path, method: str) -> None:
    result = Client(sock_path).call(method, VALID_PARAMS[method])
    json.dumps(result)
    if method == "packages":
        assert result and all(set(c) == COPY_KEYS for c in result)


def test_where_shape(live: LiveServer, sock_path: Path) -> None:
    found = Client(sock_path).call("where", {"name": "NumPy"})
    assert found["name"] == "numpy" and len(found["copies"]) == 2
    assert found["interpreters"][0]["imported"] == found["copies"][1]["path"]


def test_several_requests_on_one_connection_answered_in_order(
    live: LiveServer, sock_path: Path
) -> None:
    lines = b"".join(
        json.dumps({"jsonrpc": "2.0", "method": "status", "id": i}).encode() + b"\n"
        for i in range(20)
    )
    assert [r["id"] for r in exchange(sock_path, lines)] == list(range(20))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json\n", -32700),
        (b'{"jsonrpc":"2.0","method":"status","id":1\n', -32700),
        (b"\xff\xfe{}\n", -32700),
        (b'{"jsonrpc":"2.0","method":"st\xc3\x28tus","id":1}\n', -32700),
        (b"[" * 100_000 + b"\n", -32700),
        (b'{"method":"status","id":1}\n', -32600),
        (b'{"jsonrpc":"2.0","method":["status"],"id":1}\n', -32600),
        (b'{"jsonrpc":"2.0","method":"status","id":{}}\n', -32600),
        (b"[]\n", -32600),
        (b'"status"\n', -32600),
        (b'{"jsonrpc":"2.0","method":"nope","id":1}\n', -32601),
        (b'{"jsonrpc":"2.0","method":"where","params":{"nmae":"x"},"id":1}\n', -32602),
        (b'{"jsonrpc":"2.0","method":"events","params":{"since":"soon"},"id":1}\n', -32602),
    ],
)
def test_bad_input_gets_its_error_code(
    live: LiveServer, sock_path: Path, data: bytes, code: int
) -> None:
    """Each bad line gets one error reply and the connection keeps serving."""
    replies = exchange(sock_path, data + STATUS)
    assert [r.get("error", {}).get("code") for r in replies] == [code, None]
    assert replies[1]["id"] == "probe"


def test_invalid_utf8_says_so(live: LiveServer, sock_path: Path) -> None:
    (reply,) = exchange(sock_path, b'{"jsonrpc":"2.0","method":"\xff","id":1}\n')
    assert "UTF-8" in reply["error"]["message"]


def test_notification_gets_no_reply(live: LiveServer, sock_path: Path) -> None:
    data = b'{"jsonrpc":"2.0","method":"rescan"}\n{"jsonrpc":"2.0","method":"nope"}\n' + STATUS
    assert [r["id"] for r in exchange(sock_path, data)] == ["probe"]
    assert ("rescan", ()) in live.service.calls


def test_blank_lines_and_final_line_without_newline(live: LiveServer, sock_path: Path) -> None:
    replies = exchange(sock_path, b"\n\r\n  \n" + STATUS.rstrip(b"\n"))
    assert [r["id"] for r in replies] == ["probe"]


def test_oversized_line_errors_then_closes_while_others_are_served(
    live: LiveServer, sock_path: Path
) -> None:
    """A 2 MiB line: 'request too large', connection closed; a bystander is unaffected."""
    bystander = connect(sock_path)
    big = connect(sock_path)

    def flood() -> None:
        with contextlib.suppress(OSError):  # the server hangs up mid-send: expected
            big.sendall(
                b'{"jsonrpc":"2.0","method":"where","params":{"name":"'
                + b"a" * (2 * MAX_LINE_BYTES)
                + b'"},"id":1}\n'
            )

    sender = threading.Thread(target=flood)
    sender.start()
    reply = read_line(big)
    assert reply["error"]["code"] == -32600
    assert reply["error"]["message"] == "request too large"
    with pytest.raises((ConnectionResetError, AssertionError)):
        read_line(big)  # EOF (AssertionError from read_line) or reset: closed either way
    sender.join(10)
    big.close()
    bystander.sendall(STATUS)
    assert read_line(bystander)["id"] == "probe"
    bystander.close()
    probe(sock_path)


def test_line_of_exactly_the_limit_is_accepted(live: LiveServer, sock_path: Path) -> None:
    head = b'{"jsonrpc":"2.0","method":"where","params":{"name":"'
    tail = b'"},"id":1}'
    line = head + b"x" * (MAX_LINE_BYTES - len(head) - len(tail)) + tail
    assert len(line) == MAX_LINE_BYTES
    (reply,) = exchange(sock_path, line + b"\n")
    assert reply["result"]["copies"] == []


def test_silent_clients_do_not_stall_others(live: LiveServer, sock_path: Path) -> None:
    """Idle connections and half-sent lines cost nothing to the other clients."""
    idle = [connect(sock_path) for _ in range(20)]
    idle[0].sendall(b'{"jsonrpc":"2.0","method":')  # never finished
    started = time.monotonic()
    for _ in range(20):
        probe(sock_path)
    assert time.monotonic() - started < 5
    assert live.server is not None and live.server.stats()["clients"] >= 20
    for sock in idle:
        sock.close()


def test_slow_rescan_holds_only_its_own_connection(live: LiveServer, sock_path: Path) -> None:
    live.service.rescan_delay = 2.0
    slow = connect(sock_path)
    slow.sendall(b'{"jsonrpc":"2.0","method":"rescan","id":1}\n')
    started = time.monotonic()
    probe(sock_path)
    assert time.monotonic() - started < 1.5
    assert read_line(slow)["result"]["packages"] == 3
    slow.close()


def test_two_hundred_concurrent_clients(live: LiveServer, sock_path: Path) -> None:
    def one(i: int) -> Any:
        return Client(sock_path).call("where", {"name": f"pkg-{i}"}, timeout=20)

    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))
    assert [r["name"] for r in results] == [f"pkg-{i}" for i in range(200)]


def test_two_hundred_concurrent_asyncio_clients(live: LiveServer, sock_path: Path) -> None:
    async def one(i: int) -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(str(sock_path))
        writer.write(json.dumps({"jsonrpc": "2.0", "method": "status", "id": i}).encode() + b"\n")
        reply: dict[str, Any] = json.loads(await reader.readline())
        writer.close()
        return reply

    async def all_of_them() -> list[dict[str, Any]]:
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(200))), 30)

    assert sorted(r["id"] for r in asyncio.run(all_of_them())) == list(range(200))


def subscribe(path: Path) -> socket.socket:
    sock = connect(path)
    sock.sendall(b'{"jsonrpc":"2.0","method":"subscribe","id":"s"}\n')
    assert read_line(sock) == {"jsonrpc": "2.0", "result": {"subscribed": True}, "id": "s"}
    return sock


def test_subscribe_streams_events_and_conflicts(live: LiveServer, sock_path: Path) -> None:
    sub = subscribe(sock_path)
    live.wait_for(lambda: len(live.service.queues) == 1)
    live.push("event", make_event().to_json())
    live.push("conflict", make_conflict().to_json())
    first, second = read_line(sub), read_line(sub)
    assert first == {"jsonrpc": "2.0", "method": "event", "params": make_event().to_json()}
    assert second["method"] == "conflict" and second["params"]["kind"] == "duplicate"
    assert "id" not in first
    sub.close()


def test_subscriber_vanishing_mid_stream_is_dropped_alone(
    live: LiveServer, sock_path: Path
) -> None:
    gone, stays = subscribe(sock_path), subscribe(sock_path)
    live.wait_for(lambda: len(live.service.queues) == 2)
    live.push("event", make_event(ident=1).to_json())
    assert read_line(gone)["params"]["id"] == 1
    gone.close()
    for i in range(2, 50):
        live.push("event", make_event(ident=i).to_json())
    assert [read_line(stays)["params"]["id"] for _ in range(49)] == list(range(1, 50))
    live.wait_for(lambda: len(live.service.queues) == 1)
    probe(sock_path)
    stays.close()
    live.wait_for(lambda: not live.service.queues)


def test_subscriber_that_stops_reading_is_dropped(sock_path: Path) -> None:
    """A subscriber that never reads is cut once a write cannot drain; others carry on."""
    with LiveServer(sock_path, FakeService(queue_size=50), drain_timeout=0.3) as live:
        stuck = subscribe(sock_path)
        live.wait_for(lambda: len(live.service.queues) == 1)
        big = make_event().to_json() | {"path": "x" * 10_000}
        with capture_logs() as logs:
            for _ in range(200):
                live.push("event", big)
                time.sleep(0.002)
            live.wait_for(lambda: not live.service.queues, timeout=10)
        assert live.server is not None and live.server.stats()["subscribers_dropped"] == 1
        assert any(e["event"] == "server.subscriber_dropped" for e in logs)
        probe(sock_path)
        stuck.close()


def test_full_queue_drops_the_subscriber(sock_path: Path) -> None:
    with LiveServer(sock_path, FakeService(queue_size=3)) as live:
        sub = subscribe(sock_path)
        live.wait_for(lambda: len(live.service.queues) == 1)

        def burst() -> None:  # on the loop: the relay cannot run in between
            for i in range(5):
                live.service.push("event", make_event(ident=i).to_json())

        with capture_logs() as logs:
            live.loop.call_soon_threadsafe(burst)
            live.wait_for(lambda: not live.service.queues)
        assert {
            "event": "server.subscriber_dropped",
            "reason": "queue_full",
            "log_level": "warning",
        } in logs
        sub.settimeout(5)
        assert sub.recv(65536) == b""
        sub.close()


def test_socket_and_dir_permissions(live: LiveServer, sock_path: Path) -> None:
    assert stat.S_IMODE(sock_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(sock_path.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(sock_path.stat().st_mode)


def test_existing_open_envwatchd_dir_is_tightened(sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True, mode=0o755)
    os.chmod(sock_path.parent, 0o755)
    with LiveServer(sock_path):
        assert stat.S_IMODE(sock_path.parent.stat().st_mode) == 0o700


def test_shared_parent_dir_is_left_alone(tmp_path: Path) -> None:
    """ENVWATCHD_SOCKET=/somewhere/shared/x.sock must not chmod the shared dir."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    with capture_logs() as logs, LiveServer(shared / "x.sock"):
        assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert any(e["event"] == "server.socket_dir_open" for e in logs)


def test_stale_socket_is_replaced(sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True, mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()  # the file stays, nobody listens: a crashed daemon's leftover
    with capture_logs() as logs, LiveServer(sock_path):
        probe(sock_path)
    assert any(e["event"] == "server.stale_socket_removed" for e in logs)


def test_live_socket_is_not_stolen(live: LiveServer, sock_path: Path) -> None:
    async def second() -> None:
        await RpcServer(FakeService(), sock_path).start()

    with pytest.raises(SocketInUse):
        asyncio.run(second())
    probe(sock_path)


def test_non_socket_at_path_is_refused(sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True)
    sock_path.write_text("precious")
    with pytest.raises(ServerError, match="not a socket"):
        asyncio.run(RpcServer(FakeService(), sock_path).start())
    assert sock_path.read_text() == "precious"


def test_close_cuts_clients_and_removes_the_socket(sock_path: Path) -> None:
    with LiveServer(sock_path, close_timeout=1.0) as live:
        idle, sub = connect(sock_path), subscribe(sock_path)
        live.wait_for(lambda: len(live.service.queues) == 1)
        started = time.monotonic()
        assert live.server is not None
        live.run(live.server.close)
        live.server = None
        assert time.monotonic() - started < 2
        assert idle.recv(10) == b"" and sub.recv(10) == b""
        assert not sock_path.exists() and not live.service.queues
        idle.close()
        sub.close()
    with pytest.raises(DaemonUnreachable):
        Client(sock_path).call("status")


def test_inherited_socket_is_served_and_kept(tmp_path: Path) -> None:
    """Socket activation: serve the fd systemd passed; its path is systemd's to remove."""
    path = tmp_path / "activated.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    with LiveServer(None, sock=listener):
        probe(path)
    assert path.exists()


def test_peer_policy() -> None:
    assert peer_allowed(1000, 1000) and peer_allowed(0, 1000) and peer_allowed(0, 0)
    assert not peer_allowed(1001, 1000) and not peer_allowed(1000, 0)
    assert not peer_allowed(-1, 1000)


def _other_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam("envwatch-test")
    except KeyError:
        subprocess.run(["useradd", "-M", "envwatch-test"], check=True)
        entry = pwd.getpwnam("envwatch-test")
    return entry.pw_uid, entry.pw_gid


PEER_SCRIPT = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"jsonrpc":"2.0","method":"status","id":1}\\n')
    data = s.recv(65536)
    print("ANSWER" if data else "EOF")
except (ConnectionResetError, BrokenPipeError):
    print("RESET")
except TimeoutError:
    print("TIMEOUT")
"""


@pytest.mark.skipif(
    os.getuid() != 0 or not shutil.which("setpriv") or not Path("/usr/bin/python3").exists(),
    reason="needs root, setpriv and /usr/bin/python3 to act as a second uid",
)
def test_foreign_uid_is_refused_root_is_served() -> None:
    """SO_PEERCRED: another uid gets a closed connection and no reply, even with a 0666 socket."""
    uid, gid = _other_user()
    base = Path(tempfile.mkdtemp(prefix="envwatchd-peer-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        path = base / "envwatchd" / "envwatchd.sock"
        with capture_logs() as logs, LiveServer(path) as live:
            os.chmod(path.parent, 0o755)  # open the door on purpose: only the check remains
            os.chmod(path, 0o666)
            cmd = [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={gid}",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
                PEER_SCRIPT,
                str(path),
            ]
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            assert run.stdout.strip() in {"EOF", "RESET"}, (run.stdout, run.stderr)
            probe(path)  # root (our own uid here) is still served
            assert live.server is not None and live.server.stats()["refused"] == 1
        refused = [e for e in logs if e["event"] == "server.peer_refused"]
        assert refused and refused[0]["uid"] == uid
    finally:
        shutil.rmtree(base, ignore_errors=True)


well_shaped = st.fixed_dictionaries(
    {
        "jsonrpc": st.sampled_from(["2.0", "2.0", "1.0"]),
        "method": st.sampled_from([*METHODS, "nope", ""]),
    },
    optional={
        "id": st.none() | st.integers() | st.text(max_size=10) | st.booleans(),
        "params": st.dictionaries(
            st.sampled_from(
                ["name", "path", "env", "manager", "since", "package", "limit", "all", "x"]
            ),
            st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=12),
            max_size=3,
        ),
    },
).map(lambda d: json.dumps(d).encode())


def test_fuzzed_lines_never_break_the_server(tmp_path: Path) -> None:
    """Property: random bytes or random requests each get JSON-RPC lines back (or none),
    and the server answers a `status` probe after every one."""
    path = tmp_path / "envwatchd" / "fuzz.sock"
    with LiveServer(path):

        @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(payload=st.binary(max_size=300) | well_shaped)
        def check(payload: bytes) -> None:
            for reply in exchange(path, payload + b"\n"):
                assert reply["jsonrpc"] == "2.0" and ("error" in reply) != ("result" in reply)
            probe(path)

        check()
