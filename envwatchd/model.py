"""The domain vocabulary: names, managers, kinds, copies, events and conflicts.

Frozen dataclasses with slots, not pydantic models: the scanner builds tens of
thousands of copies and these must cost nothing to create. Pydantic lives at the
boundaries (config, RPC). Enum values are the contract's fixed strings (§4).
No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NewType

__all__ = [
    "CacheEntry",
    "Claim",
    "Conflict",
    "ConflictKind",
    "Copy",
    "Env",
    "EnvKind",
    "EnvRef",
    "Event",
    "EventKind",
    "Format",
    "Interpreter",
    "Inventory",
    "Manager",
    "NormalizedName",
    "Origin",
    "Problem",
    "Severity",
    "canonicalize",
    "owner_label",
]

NormalizedName = NewType("NormalizedName", str)

_NORMALIZE = re.compile(r"[-_.]+")


def canonicalize(name: str) -> NormalizedName:
    """PEP 503 normalisation: the only producer of NormalizedName.

    Same rule as packaging.utils.canonicalize_name, without importing packaging
    on the scan path (it pulls in sysconfig and tags).
    """
    return NormalizedName(_NORMALIZE.sub("-", name).lower())


def owner_label(manager: Manager, package: str) -> str:
    """How a database claim is named: `dpkg:python3-numpy`, `conda:<record stem>`."""
    db = {"apt": "dpkg", "rpm": "rpm", "conda": "conda"}.get(manager.value, manager.value)
    return f"{db}:{package}"


class EnvKind(StrEnum):
    SYSTEM = "system"
    LOCAL = "local"
    USER = "user"
    VENV = "venv"
    CONDA = "conda"
    CONDA_PKGS = "conda-pkgs"
    PYENV = "pyenv"
    PIPX = "pipx"
    OTHER = "other"


class Manager(StrEnum):
    APT = "apt"
    RPM = "rpm"
    PIP = "pip"
    EASY_INSTALL = "easy_install"
    CONDA = "conda"
    UV = "uv"
    POETRY = "poetry"
    PDM = "pdm"
    DISTUTILS = "distutils"
    UNKNOWN = "unknown"


class Format(StrEnum):
    DIST_INFO = "dist-info"
    EGG_INFO = "egg-info"
    EGG = "egg"
    EGG_LINK = "egg-link"
    EDITABLE = "editable"
    CONDA_META = "conda-meta"


class EventKind(StrEnum):
    INSTALL = "install"
    UNINSTALL = "uninstall"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    REPLACE = "replace"


class ConflictKind(StrEnum):
    DUPLICATE = "duplicate"
    MIXED_METADATA = "mixed-metadata"
    ORPHANED_RECORD = "orphaned-record"
    FOREIGN_OVERWRITE = "foreign-overwrite"
    FILE_COLLISION = "file-collision"
    USER_SITE_IN_CONDA = "user-site-in-conda"
    EXTERNALLY_MANAGED = "externally-managed"
    UNUSED_PKGS_CACHE = "unused-pkgs-cache"
    UNWATCHED_TREE = "unwatched-tree"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class Origin(StrEnum):
    LIVE = "live"
    RECONCILE = "reconcile"


@dataclass(frozen=True, slots=True)
class Problem:
    """A path the scanner could not fully read, and why. Never fatal."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class EnvRef:
    """How a copy, event or conflict names its environment (contract §5)."""

    kind: EnvKind
    prefix: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "prefix": self.prefix, "name": self.name}


@dataclass(frozen=True, slots=True)
class Interpreter:
    """One python executable and the ordered package dirs it searches.

    `search_path` holds site dirs and extra roots in import order; a copy whose
    site (or egg path) comes first wins. Two system Pythons share /usr but not
    this list, which is why interpreters, not envs, decide shadowing.
    """

    executable: str
    version: str
    env_prefix: str
    search_path: tuple[str, ...]
    user_site: str | None = None


@dataclass(frozen=True, slots=True)
class Env:
    """A discovered environment: a prefix that owns one or more site dirs."""

    kind: EnvKind
    prefix: str
    name: str
    python_version: str | None
    site_dirs: tuple[str, ...]
    interpreters: tuple[Interpreter, ...] = ()
    externally_managed: bool = False
    conda_meta: str | None = None

    @property
    def ref(self) -> EnvRef:
        return EnvRef(self.kind, self.prefix, self.name)

    def to_json(self, package_count: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "prefix": self.prefix,
            "name": self.name,
            "python_version": self.python_version,
            "site_dirs": list(self.site_dirs),
            "interpreters": [i.executable for i in self.interpreters],
            "externally_managed": self.externally_managed,
        }
        if package_count is not None:
            out["package_count"] = package_count
        return out


@dataclass(frozen=True, slots=True)
class Copy:
    """One installed copy of a distribution: a metadata location in a site dir.

    `owner` is the package database entry that claims it ("dpkg:python3-numpy",
    "conda:numpy-1.13.3-py27hbcc08e0_0", "rpm:python3-numpy"), kept apart from
    `manager` because the two disagree exactly when another manager overwrote
    the files (foreign-overwrite). `top_level` lists the import names the copy
    provides, used to find file collisions cheaply.
    """

    name: NormalizedName
    display_name: str
    version: str
    format: Format
    path: str
    site: str
    env: EnvRef
    manager: Manager
    evidence: tuple[str, ...]
    imported_by: tuple[str, ...] = ()
    installer: str | None = None
    owner: str | None = None
    owner_version: str | None = None
    editable: bool = False
    requested: bool = False
    top_level: tuple[str, ...] = ()
    import_path: str | None = None
    fingerprint: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """Identity within the inventory: one metadata path holds one copy."""
        return (self.site, self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "version": self.version,
            "format": self.format.value,
            "path": self.path,
            "site": self.site,
            "env": self.env.to_json(),
            "manager": self.manager.value,
            "evidence": list(self.evidence),
            "imported_by": list(self.imported_by),
        }


@dataclass(frozen=True, slots=True)
class Event:
    """One install/uninstall/upgrade/downgrade/replace of one distribution."""

    kind: EventKind
    name: NormalizedName
    version: str | None
    previous_version: str | None
    manager: Manager | None
    previous_manager: Manager | None
    env: EnvRef
    site: str
    path: str
    origin: Origin = Origin.LIVE
    time: str = ""
    id: int | None = None
    command: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "kind": self.kind.value,
            "name": self.name,
            "version": self.version,
            "previous_version": self.previous_version,
            "manager": self.manager.value if self.manager else None,
            "previous_manager": self.previous_manager.value if self.previous_manager else None,
            "env": self.env.to_json(),
            "site": self.site,
            "path": self.path,
            "origin": self.origin.value,
            "command": self.command,
        }


@dataclass(frozen=True, slots=True)
class Conflict:
    """An inconsistency with its explanation and remedy.

    `key` is the stable identity (kind + name + the paths involved): the same
    inconsistency keeps its id across rescans and restarts because the store
    maps key -> id.
    """

    key: str
    kind: ConflictKind
    name: str
    severity: Severity
    copies: tuple[Copy, ...]
    message: str
    remedy: tuple[str, ...]
    id: int | None = None
    opened: str | None = None
    resolved: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "severity": self.severity.value,
            "copies": [c.to_json() for c in self.copies],
            "message": self.message,
            "remedy": list(self.remedy),
            "opened": self.opened,
            "resolved": self.resolved,
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """A package database record (dpkg, rpm, conda-meta) claiming entries of a site dir.

    `claimed` are the top-level site-dir entries the record lists (metadata dirs
    and modules, as absolute paths); `missing` those of them gone from disk —
    the trace a cross-manager uninstall leaves behind.
    """

    manager: Manager
    package: str
    name: NormalizedName
    version: str
    env: EnvRef
    site: str
    record_path: str
    claimed: tuple[str, ...]
    missing: tuple[str, ...] = ()
    installed: bool = True


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One extracted package in a conda pkgs cache and the envs that link it."""

    path: str
    name: NormalizedName
    version: str
    build: str
    size_bytes: int
    used_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything one scan found: the input of conflict rules and of the diff."""

    envs: tuple[Env, ...]
    copies: tuple[Copy, ...]
    claims: tuple[Claim, ...] = ()
    cache_entries: tuple[CacheEntry, ...] = ()
    problems: tuple[Problem, ...] = ()
    extra_roots: tuple[str, ...] = ()
