"""Settings from TOML, validated by pydantic: the daemon, `scan` and the shipped
example `config/envwatchd.toml` all go through `load_config`, so the example
can never drift from what the daemon accepts.

A bad file raises ConfigError naming the key (`notify.min_severity: ...`);
the CLI turns it into one message and exit 2.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envwatchd.model import Severity

__all__ = ["Config", "ConfigError", "load_config"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Discovery(_Section):
    """Where to look beyond the well-known locations of contract §3."""

    search_dirs: list[str] = Field(default_factory=lambda: ["~"])
    search_depth: int = Field(default=3, ge=0, le=12)
    extra_roots: list[str] = Field(default_factory=list)
    extra_site_dirs: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class Watch(_Section):
    settle_ms: int = Field(default=200, ge=10, le=60_000)
    max_settle_ms: int = Field(default=5_000, ge=100, le=600_000)
    rescan_unwatched_s: float = Field(default=300.0, ge=5.0)


class Notify(_Section):
    enabled: bool = True
    min_severity: Severity = Severity.WARNING
    window_s: float = Field(default=2.0, ge=0.0, le=600.0)
    min_interval_s: float = Field(default=10.0, ge=0.0, le=86_400.0)


class Log(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Export(_Section):
    prometheus_textfile: str | None = None


class Config(_Section):
    discovery: Discovery = Field(default_factory=Discovery)
    watch: Watch = Field(default_factory=Watch)
    notify: Notify = Field(default_factory=Notify)
    log: Log = Field(default_factory=Log)
    export: Export = Field(default_factory=Export)


class ConfigError(Exception):
    """A config file that cannot be used; `str()` names the file and the key."""


def load_config(path: Path | None, *, required: bool = False) -> Config:
    """Parse and validate `path`; a missing optional file means the defaults."""
    if path is None or (not required and not path.exists()):
        return Config()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {key}: {first['msg']}") from exc


def expand(path: str, home: str) -> str:
    """`~` against the given HOME (not the real one: tests give fake homes)."""
    if path == "~" or path.startswith("~/"):
        return os.path.join(home, path[2:]) if len(path) > 1 else home
    return path
