"""Socket fuzz against a LIVE daemon: random bytes and well-shaped random JSON-RPC, many per
connection and on new connections, plus the nasty shapes (huge lines, deep nesting, huge
ints, invalid UTF-8, a line without newline). The daemon answers every request it can
parse, drops at most the offending client, a probe client keeps getting `status` within
2 s, and the daemon is alive (and still logging events) at the end."""

from __future__ import annotations

import json
import random
import select
import socket
import time
from pathlib import Path
from typing import Any

from tests.builders import dist_info, pyvenv, site_packages
from tests.daemon_harness import Box, DaemonProc, wait_for
from tests.torture.conftest import budget
from tests.torture.test_bad_trees import Probe

METHODS = ["status", "where", "explain", "packages", "envs", "events", "conflicts", "rescan",
           "subscribe", "metrics", "nope", "", "rpc.discover", "status\n"]  # fmt: skip
CODES = {-32700, -32600, -32601, -32602, -32603}
KEYS = ["name", "path", "env", "manager", "since", "package", "limit", "all", "x"]


def _value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(10 if depth < 3 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**31, -(2**63), 10**30, rng.randint(-9, 9)])
    if pick == 3:
        return rng.choice([0.5, -1e308, 1e-300])
    if pick in (4, 5):
        return rng.choice(["", "2h", "1970-01-01", "pip", "/", "..", "\x00", "é", "\ud800x",
                           "a" * rng.randint(0, 3000), "numpy", "9999-99-99T99:99Z"])  # fmt: skip
    if pick in (6, 7):
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _request(rng: random.Random) -> bytes:
    method = rng.choice(METHODS)
    if method == "rescan" and rng.random() < 0.9:
        method = "status"  # a rescan is a full scan: keep them rare
    msg: dict[str, Any] = {"jsonrpc": rng.choice(["2.0", "2.0", "2.0", "1.0", 2, None]),
                           "method": method}  # fmt: skip
    if rng.random() < 0.8:
        msg["id"] = rng.choice([rng.randint(0, 10**6), "x", None, 1.5, [1], {"a": 1}])
    if rng.random() < 0.7:
        msg["params"] = (
            _value(rng)
            if rng.random() < 0.3
            else {rng.choice(KEYS): _value(rng) for _ in range(rng.randint(0, 3))}
        )
    if rng.random() < 0.1:
        msg[rng.choice(KEYS)] = _value(rng)
    text = json.dumps(msg, ensure_ascii=rng.random() < 0.5)
    return text.encode("utf-8", "surrogatepass")


def _garbage(rng: random.Random) -> bytes:
    pick = rng.randrange(8)
    if pick == 0:
        return rng.randbytes(rng.randint(0, 300))
    if pick == 1:
        return b"[" * rng.randint(1000, 200_000)
    if pick == 2:
        return b'{"jsonrpc":"2.0","id":1,"method":"status","params":{"a":' + b"9" * 5000 + b"}}"
    if pick == 3:
        return b'{"jsonrpc":"2.0","id":1,"method":"st\xff\xfeatus"}'
    if pick == 4:
        return b"NaN"
    if pick == 5:
        good = _request(rng)
        return good[: rng.randint(0, len(good))]
    if pick == 6:
        return b"\x00" * rng.randint(1, 50)
    return bytes(rng.choice(b'{}[]":,0123456789aeflnrstu\\ \t') for _ in range(rng.randint(1, 80)))


def _exchange(path: Path, lines: list[bytes], timeout: float = 20.0) -> list[bytes]:
    """Send everything while reading (no deadlock on full buffers); EOF; read to the end."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    s.setblocking(False)
    out = bytearray(b"".join(lines))
    got = bytearray()
    deadline = time.monotonic() + timeout
    closed_w = False
    try:
        while time.monotonic() < deadline:
            want_w = [s] if not closed_w else []
            readable, writable, _ = select.select([s], want_w, [], 0.5)
            if writable and out:
                try:
                    out = out[s.send(out[:65536]) :]
                except (BrokenPipeError, ConnectionResetError):
                    out, closed_w = bytearray(), True
            if not out and not closed_w:
                s.shutdown(socket.SHUT_WR)
                closed_w = True
            if readable:
                try:
                    chunk = s.recv(1 << 20)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                got += chunk
        else:
            raise AssertionError(f"the daemon did not finish answering in {timeout} s")
    finally:
        s.close()
    return bytes(got).splitlines()


def _check(responses: list[bytes], sent: int) -> int:
    assert len(responses) <= sent + 1
    for raw in responses:
        msg = json.loads(raw)
        assert msg.get("jsonrpc") == "2.0", msg
        if "method" in msg:  # a subscription notification
            continue
        assert ("result" in msg) != ("error" in msg), msg
        if "error" in msg:
            assert msg["error"]["code"] in CODES, msg
    return len(responses)


def test_fuzzed_clients_never_hurt_the_daemon(tmp_path: Path, seed: int) -> None:
    """>= 10,000 random byte strings and >= 10,000 random requests; probe keeps its status."""
    box = Box(tmp_path)
    prefix = box.home / ".virtualenvs" / "fz"
    pyvenv(prefix, "/usr/bin", "3.11.2")
    for i in range(20):
        dist_info(site_packages(prefix), f"fz{i}", "1.0")
    rng = random.Random(seed)
    d = DaemonProc(box).start()
    n = budget(ci=10_000, long=100_000)
    answered = sent = 0
    try:
        with Probe(d) as probe:
            for make in (_garbage, _request):
                done = 0
                while done < n:
                    batch = [make(rng) + b"\n" for _ in range(rng.randint(1, 400))]
                    if rng.random() < 0.05:
                        batch.append(b"x" * (1 << 20) + b"\n")  # over the limit: error + close
                    if rng.random() < 0.1:
                        batch[-1] = batch[-1].rstrip(b"\n")  # last line without newline
                    answered += _check(_exchange(box.sock, batch), b"".join(batch).count(b"\n"))
                    done += len(batch)
                sent += done
            many = [socket.socket(socket.AF_UNIX) for _ in range(200)]  # idle, never read
            for s in many:
                s.connect(str(box.sock))
                s.send(b'{"jsonrpc":"2.0","id":1,"method":"packages"}\n' * 50)
            time.sleep(1.0)
            for s in many:
                s.close()
            dist_info(site_packages(prefix), "afterfuzz", "1.0")
            wait_for(lambda: [e for e in d.events() if e["name"] == "afterfuzz"], 15,
                     what="an event after the fuzz")  # fmt: skip
        print(f"[metric] fuzz sent={sent} answered={answered} probe_worst={probe.worst:.3f}s")
        assert sent >= 2 * n
        assert answered > n, "most well-shaped requests must get an answer"
        assert not probe.failures, probe.failures[:5]
        assert probe.worst < 2.0, f"status took {probe.worst:.2f} s during the fuzz"
        assert d.alive() and d.status()["pid"] == d.pid
        assert not d.logs("server.client_failed"), "a request raised inside the server"
    finally:
        if d.alive():
            assert d.stop() == 0, d.tail()
