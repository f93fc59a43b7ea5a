"""A real `envwatchd run` on a fake machine, for end-to-end daemon tests.

`Box` is a throwaway machine under a tmp dir: `home/` (HOME; also the user base
and the only search dir), `root/` (an empty `--root`, so the host's /usr trees
are never scanned), `run/` (XDG_RUNTIME_DIR: the socket), `state/`
(XDG_STATE_HOME: the event log), and a config with a short settle. The host's
pyenv is invisible because discovery finds it through $HOME/.pyenv.

`DaemonProc` starts the console script as a subprocess, waits until the socket
answers `status`, and stops it with SIGTERM (asserting exit 0) or SIGKILL.
Every wait is bounded: `wait_for` polls with a deadline and fails with the
last thing it saw.

Real pip runs through tests.realtools (outer pip with `--python`, no ensurepip).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from envwatchd.client import Client, DaemonUnreachable, RpcCallError
from tests import realtools
from tests.builders import make_wheel

__all__ = [
    "PYVER",
    "Box",
    "DaemonProc",
    "as_user",
    "inotify_watches_of_uid",
    "pip",
    "system_user",
    "wait_for",
    "wait_quiet",
    "world_tmp_dir",
]

T = TypeVar("T")
PYVER = "3.11"
BIN = Path(sys.executable).parent


def wait_for(
    probe: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except (DaemonUnreachable, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: last={last!r}")
        time.sleep(interval)


def pip(python: str | Path, *args: str | Path, env: Mapping[str, str]) -> float:
    """The outer pip driving `python` (any subcommand); returns the time it exited."""
    cmd = [sys.executable, "-m", "pip", "--python", str(python), *map(str, args)]
    realtools.run(cmd, env=env)
    return time.monotonic()


def inotify_watches_of_uid(uid: int) -> int:
    """Inotify watches currently held by processes of `uid` (what max_user_watches counts)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            fds = os.listdir(f"/proc/{pid}/fdinfo")
        except OSError:
            continue
        for fd in fds:
            try:
                with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
                    total += sum(1 for line in fh if line.startswith("inotify wd:"))
            except OSError:
                continue
    return total


@dataclass
class Box:
    """A fake machine under `tmp` for one daemon (and the real tools driving it)."""

    tmp: Path
    settle_ms: int = 50
    max_settle_ms: int = 5000
    rescan_unwatched_s: float = 300.0
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.tmp / "home"
        self.root = self.tmp / "root"
        self.run = self.tmp / "run"
        self.state = self.tmp / "state"
        self.config = self.tmp / "config.toml"
        self.wheels = self.tmp / "wheels"
        for d in (self.home, self.root, self.wheels):
            d.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(mode=0o700, exist_ok=True)
        self.tools = realtools.isolated_env(self.tmp)
        self.write_config()

    @property
    def user_base(self) -> Path:
        return self.home / ".local"

    @property
    def user_site(self) -> Path:
        return self.user_base / "lib" / f"python{PYVER}" / "site-packages"

    @property
    def sock(self) -> Path:
        return self.run / "envwatchd" / "envwatchd.sock"

    @property
    def daemon_env(self) -> dict[str, str]:
        host = ("ENVWATCHD_", "PYENV", "WORKON_HOME", "UV_", "PIPX_", "POETRY_", "CONDA")
        env = {k: v for k, v in self.tools.items() if not k.startswith(host)}
        env.update(
            XDG_RUNTIME_DIR=str(self.run),
            XDG_STATE_HOME=str(self.state),
            XDG_CONFIG_HOME=str(self.tmp / "xdg-config"),
            PYTHONUSERBASE=str(self.user_base),
            DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent",
        )
        env.update(self.extra_env)
        return env

    def write_config(self) -> None:
        self.config.write_text(
            "[discovery]\n"
            f"search_dirs = [{json.dumps(str(self.home))}]\n"
            "[watch]\n"
            f"settle_ms = {self.settle_ms}\n"
            f"max_settle_ms = {self.max_settle_ms}\n"
            f"rescan_unwatched_s = {self.rescan_unwatched_s}\n"
            "[notify]\nenabled = false\n"
        )

    # -- real artefacts ---------------------------------------------------------

    def wheel(self, name: str, version: str, **kw: Any) -> Path:
        out = self.wheels / f"{name}-{version}"
        found = list(out.glob("*.whl")) if out.is_dir() else []
        return found[0] if found else make_wheel(out, name, version, **kw)

    def venv(self, path: Path) -> Path:
        """A real venv (no ensurepip); returns its bin/python."""
        return realtools.make_venv(path, env=self.tools)

    def site(self, venv: Path) -> Path:
        return venv / "lib" / f"python{PYVER}" / "site-packages"

    def install(self, python: Path, *wheels: Path | str, extra: Sequence[str] = ()) -> float:
        return pip(python, "install", "--no-index", *extra, *wheels, env=self.tools)

    def uninstall(self, python: Path, *names: str) -> float:
        return pip(python, "uninstall", "-y", *names, env=self.tools)


class DaemonProc:
    """One `envwatchd run` subprocess on a Box."""

    def __init__(self, box: Box, *, preexec: Sequence[str] = (), log_name: str = "daemon") -> None:
        self.box = box
        self.preexec = list(preexec)
        self.log_path = box.tmp / f"{log_name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = Client(box.sock)
        self.ready_at = 0.0

    def start(self, timeout: float = 30.0) -> DaemonProc:
        cmd = [
            *self.preexec,
            str(BIN / "envwatchd"),
            "run",
            "--root",
            str(self.box.root),
            "--config",
            str(self.box.config),
            "--log-format",
            "json",
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=self.box.daemon_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"envwatchd exited {self.proc.returncode} before answering:\n{self.tail()}"
                )
            status: dict[str, Any] = self.client.call("status", timeout=2)
            return status

        status = wait_for(probe, timeout, 0.05, "the daemon to answer status")
        self.ready_at = time.monotonic()
        return status

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"envwatchd ignored SIGTERM for {timeout} s") from None
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    # -- talking to it ----------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.client.call(method, params, timeout=20)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("status")
        return result

    def events(self, **params: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("events", params)
        return result

    def packages(self, **params: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("packages", params)
        return result

    def envs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("envs")
        return result

    def conflicts(self, include_all: bool = False) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("conflicts", {"all": include_all})
        return result

    def wait_events(
        self,
        count: int,
        *,
        after: int = 0,
        timeout: float = 15.0,
        quiet: float | None = None,
    ) -> list[dict[str, Any]]:
        """Wait until exactly `count` events with id > `after` exist, and stay so for `quiet` s.

        The quiet period (default: several settles) catches late duplicates.
        """

        def newer() -> list[dict[str, Any]]:
            return [e for e in self.events() if e["id"] > after]

        got = wait_for(
            lambda: (lambda evs: evs if len(evs) >= count else None)(newer()) if count else [1],
            timeout,
            what=f"{count} events after id {after}",
        )
        wait_quiet(self, quiet if quiet is not None else max(0.6, 6 * self.box.settle_ms / 1000))
        final = newer()
        assert len(final) == count, _show(final)
        del got
        return final

    def last_id(self) -> int:
        evs = self.events(limit=1)
        return int(evs[-1]["id"]) if evs else 0

    def logs(self, event: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self.log_path.exists():
            return out
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and (event is None or obj.get("event") == event):
                out.append(obj)
        return out

    def tail(self, n: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def wait_quiet(daemon: DaemonProc, seconds: float) -> None:
    """Sleep a bounded, short quiet period while the daemon stays up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert daemon.alive(), daemon.tail()
        time.sleep(0.05)


def _show(events: Iterable[Mapping[str, Any]]) -> str:
    return "\n".join(
        f"{e['id']} {e['kind']} {e['name']} {e.get('previous_version')}->{e.get('version')}"
        f" {e['origin']} {e['site']}"
        for e in events
    )


def by_kind(events: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(e["kind"], e["name"], e.get("version")) for e in events]


__all__ += ["RpcCallError", "by_kind"]


def system_user(name: str) -> Any:
    """A login-less account for tests that need another uid (created once, as root).

    Skips the calling test where that is impossible (not root, no setpriv/useradd)."""
    import pwd

    import pytest

    if os.getuid() != 0 or not shutil.which("setpriv") or not shutil.which("useradd"):
        pytest.skip("needs root, setpriv and useradd to run as another uid")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True)
        return pwd.getpwnam(name)


def as_user(pw: Any) -> list[str]:
    """Run as that uid with no capabilities (root would bypass every permission)."""
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]


@contextlib.contextmanager
def world_tmp_dir(prefix: str) -> Iterator[Path]:
    """A tmp dir another uid can reach (pytest's own tmp_path parent is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
