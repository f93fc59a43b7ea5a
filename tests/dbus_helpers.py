"""A private dbus-daemon and a recording org.freedesktop.Notifications server.

Follows shared/recipes/dbus-notifications.md: a minimal bus config with no
service directories (so a Notify with no owner fails at once with
ServiceUnknown instead of starting a real dunst), a fixed
`unix:path=` address so a killed bus can be restarted where clients look for
it, and `--nofork` so the test owns and reaps the daemon (no zombies).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["NotifyCall", "PrivateBus", "Recorder", "wait_until"]

DBUS_DAEMON = shutil.which("dbus-daemon")

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


def wait_until(predicate: Any, timeout: float = 5.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class PrivateBus:
    """One dbus-daemon on a fixed socket path; start/kill/start again."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "bus.sock"
        self.address = f"unix:path={self.socket}"
        self.config = directory / "bus.conf"
        self.config.write_text(_CONFIG.format(socket=self.socket))
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        assert DBUS_DAEMON is not None, "dbus-daemon not installed"
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [DBUS_DAEMON, f"--config-file={self.config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        printed = self.proc.stdout.readline()  # printed once it listens
        assert printed.startswith(self.address), printed

    def kill(self) -> None:
        """SIGKILL, like a crashed session: clients see resets, not a goodbye."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None


@dataclass(frozen=True)
class NotifyCall:
    app_name: str
    replaces_id: int
    icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, Any]
    expire_timeout: int


class Recorder:
    """Owns org.freedesktop.Notifications and records every Notify call."""

    def __init__(self, address: str) -> None:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self.calls: list[NotifyCall] = []
        self._next_id = 100  # not 1: proves the client uses the id it was given
        self._stop = threading.Event()
        self._conn = open_dbus_connection(address)
        reply = self._conn.send_and_get_reply(message_bus.RequestName(NAME, 4), timeout=5)
        assert reply.body == (1,), f"could not own {NAME}: {reply.body}"
        self._thread = threading.Thread(target=self._serve, name="notify-recorder", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from jeepney import HeaderFields, MessageType

        while not self._stop.is_set():
            try:
                msg = self._conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except (OSError, EOFError):
                return  # the bus died
            if msg.header.message_type is MessageType.method_call:
                self._answer(msg, msg.header.fields[HeaderFields.member])

    def _answer(self, msg: Any, member: str) -> None:
        from jeepney import new_method_return

        sig: str | None
        body: tuple[Any, ...]
        if member == "Notify":
            app, rid, icon, summary, text, actions, hints, expire = msg.body
            unwrapped = {k: v[1] for k, v in hints.items()}  # variants are (sig, value)
            call = NotifyCall(app, rid, icon, summary, text, actions, unwrapped, expire)
            self.calls.append(call)
            sig, body = "u", (rid or self._new_id(),)
        elif member == "GetCapabilities":
            sig, body = "as", (["body"],)
        elif member == "GetServerInformation":
            sig, body = "ssss", ("recorder", "tests", "0", "1.2")
        else:
            sig, body = None, ()
        self._conn.send(new_method_return(msg, sig, body))

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def wait_for(self, count: int, timeout: float = 5.0) -> list[NotifyCall]:
        wait_until(lambda: len(self.calls) >= count, timeout)
        return list(self.calls)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self._conn.close()
