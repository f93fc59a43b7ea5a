"""Where things live: XDG locations for socket, state and config (contract §2).

Kept free of pydantic and every heavy import: the `envwatch` client resolves
the socket path through here on each invocation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["config_file", "home", "socket_path", "state_dir", "xdg"]

_XDG_DEFAULTS = {
    "XDG_CONFIG_HOME": ".config",
    "XDG_STATE_HOME": ".local/state",
    "XDG_DATA_HOME": ".local/share",
    "XDG_CACHE_HOME": ".cache",
}


def home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("HOME") or os.path.expanduser("~"))


def xdg(var: str, environ: Mapping[str, str] | None = None) -> Path:
    """An XDG base dir; relative values are invalid per the spec and ignored."""
    env = os.environ if environ is None else environ
    value = env.get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return home(env) / _XDG_DEFAULTS[var]


def socket_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("ENVWATCHD_SOCKET"):
        return Path(env["ENVWATCHD_SOCKET"])
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "envwatchd" / "envwatchd.sock"
    return xdg("XDG_STATE_HOME", env) / "envwatchd" / "envwatchd.sock"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("ENVWATCHD_STATE_DIR"):
        return Path(env["ENVWATCHD_STATE_DIR"])
    return xdg("XDG_STATE_HOME", env) / "envwatchd"


def config_file(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("ENVWATCHD_CONFIG"):
        return Path(env["ENVWATCHD_CONFIG"])
    return xdg("XDG_CONFIG_HOME", env) / "envwatchd" / "config.toml"
