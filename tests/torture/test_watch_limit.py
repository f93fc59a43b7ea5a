"""Watch limit: another process of the daemon's uid holds every inotify watch the kernel
allows (fs.inotify.max_user_watches is per uid), so the daemon cannot watch some trees.
It must say which (status `unwatched`, `watch.failed` log lines, `unwatched-tree` warning
conflicts), keep serving, catch changes there by the periodic rescan, and once the
watches are released, watch those trees again (unwatched empties, conflicts resolve, a
change is seen live).

The sysctl is never lowered: a helper runs as a dedicated uid (so root's processes on
this machine are not starved) and adds watches on distinct files until ENOSPC."""

from __future__ import annotations

import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import dist_info, pyvenv, site_packages
from tests.daemon_harness import Box, DaemonProc, as_user, system_user, wait_for, world_tmp_dir

USER = "envwatch-tort"
KNOB = Path("/proc/sys/fs/inotify/max_user_watches")
HELPER = r"""
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_CLOEXEC)
top, keep_free = sys.argv[1], int(sys.argv[2])
wds, i = [], 0
while True:
    path = os.path.join(top, str(i // 10000), str(i))
    if i % 10000 == 0:
        os.mkdir(os.path.dirname(path))
    with open(path, "wb"):
        pass
    wd = libc.inotify_add_watch(fd, path.encode(), 0x4)  # IN_ATTRIB
    if wd < 0:
        assert ctypes.get_errno() == errno.ENOSPC, os.strerror(ctypes.get_errno())
        break
    wds.append(wd)
    i += 1
for wd in wds[len(wds) - keep_free:]:
    libc.inotify_rm_watch(fd, wd)
print(len(wds) - keep_free, flush=True)
sys.stdin.read()  # hold the watches until the test closes our stdin
"""


@pytest.fixture
def user() -> pwd.struct_passwd:
    pw: pwd.struct_passwd = system_user(USER)
    return pw


@pytest.fixture
def world_tmp() -> Iterator[Path]:
    with world_tmp_dir("envwatchd-tort-") as path:
        yield path


def test_watch_limit_reported_caught_up_and_recovered(
    world_tmp: Path, user: pwd.struct_passwd
) -> None:
    """Unwatched trees are named, rescanned every rescan_unwatched_s, and re-watched later."""
    limit = int(KNOB.read_text())
    if limit > 400_000:
        pytest.skip(f"max_user_watches={limit}: too many files to exhaust in a CI test")
    box = Box(world_tmp / "box", rescan_unwatched_s=5)
    sites = []
    for i in range(6):
        prefix = box.home / ".virtualenvs" / f"w{i}"
        pyvenv(prefix, "/usr/bin", "3.11.2")
        sites.append(site_packages(prefix))
        dist_info(sites[-1], f"seed{i}", "1.0")
    hog = world_tmp / "hog"
    hog.mkdir()
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(world_tmp)], check=True)
    helper = subprocess.Popen(
        [*as_user(user), sys.executable, "-c", HELPER, str(hog), "4"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    d = DaemonProc(box, preexec=as_user(user))
    try:
        assert helper.stdout is not None
        held = int(helper.stdout.readline())
        assert held > 0
        d.start()
        status = d.status()
        unwatched = [s for s in status["unwatched"] if s in map(str, sites)]
        assert unwatched, status
        assert d.logs("watch.failed"), d.tail()
        conflicts = wait_for(
            lambda: [c for c in d.conflicts() if c["kind"] == "unwatched-tree"], 10,
            what="unwatched-tree conflicts",
        )  # fmt: skip
        assert {c["severity"] for c in conflicts} == {"warning"}
        assert set(status["unwatched"]) <= {c["name"] for c in conflicts}
        assert {(s, f"seed{i}") for i, s in enumerate(map(str, sites))} <= {
            (c["site"], c["name"]) for c in d.packages()
        }, "the inventory of unwatched trees is still served"
        target = Path(unwatched[0])
        dist_info(target, "caught", "1.0")
        started = time.monotonic()
        (event,) = wait_for(lambda: [e for e in d.events() if e["name"] == "caught"], 20,
                            what="the periodic rescan to find the change")  # fmt: skip
        assert event["site"] == str(target) and event["kind"] == "install"
        print(f"[metric] unwatched catch-up {time.monotonic() - started:.1f} s")
        assert helper.stdin is not None
        helper.stdin.close()
        helper.wait(10)
        wait_for(lambda: not d.status()["unwatched"], 20, what="the trees to be watched again")
        wait_for(lambda: not [c for c in d.conflicts() if c["kind"] == "unwatched-tree"], 10,
                 what="the unwatched-tree conflicts to resolve")  # fmt: skip
        dist_info(target, "live", "1.0")
        wait_for(lambda: [e for e in d.events() if e["name"] == "live"], 3,
                 what="a live event (faster than the 5 s rescan)")  # fmt: skip
        assert d.status()["pid"] == d.pid
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait(10)
        if d.alive():
            assert d.stop() == 0
