"""Lossless JSON for the domain types, as the store persists them.

Why not `Copy.to_json()`: that is the contract's user-facing shape (§5) and
leaves out internal fields (installer, owner, fingerprint...) that the diff and
the conflict rules need after a restart. These functions round-trip EVERY
field; a test compares their keys with `dataclasses.fields` so a new model
field cannot be silently dropped. Readers use `.get()` with the model's
defaults so rows written by an older version still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from envwatchd.model import (
    Claim,
    Conflict,
    ConflictKind,
    Copy,
    EnvKind,
    EnvRef,
    Event,
    EventKind,
    Format,
    Manager,
    NormalizedName,
    Origin,
    Severity,
)

__all__ = [
    "claim_from_json",
    "claim_to_json",
    "conflict_from_json",
    "conflict_to_json",
    "copy_from_json",
    "copy_to_json",
    "env_from_json",
    "event_from_row",
    "event_to_row",
    "normalize_time",
    "utc_now",
]


def utc_now() -> str:
    return normalize_time(datetime.now(UTC))


def normalize_time(value: str | datetime) -> str:
    """ISO-8601 UTC as stored: `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so text order is time order.

    A naive time is taken as UTC. Raises ValueError for text that is not ISO-8601.
    """
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def env_from_json(d: Mapping[str, Any]) -> EnvRef:
    return EnvRef(EnvKind(d["kind"]), d["prefix"], d["name"])


def copy_to_json(c: Copy) -> dict[str, Any]:
    """Every field of `c`, JSON-safe (enums as their contract strings)."""
    return {
        "name": c.name,
        "display_name": c.display_name,
        "version": c.version,
        "format": c.format.value,
        "path": c.path,
        "site": c.site,
        "env": c.env.to_json(),
        "manager": c.manager.value,
        "evidence": list(c.evidence),
        "imported_by": list(c.imported_by),
        "installer": c.installer,
        "owner": c.owner,
        "owner_version": c.owner_version,
        "editable": c.editable,
        "requested": c.requested,
        "top_level": list(c.top_level),
        "import_path": c.import_path,
        "fingerprint": c.fingerprint,
    }


def copy_from_json(d: Mapping[str, Any]) -> Copy:
    return Copy(
        name=NormalizedName(d["name"]),
        display_name=d["display_name"],
        version=d["version"],
        format=Format(d["format"]),
        path=d["path"],
        site=d["site"],
        env=env_from_json(d["env"]),
        manager=Manager(d["manager"]),
        evidence=tuple(d.get("evidence", ())),
        imported_by=tuple(d.get("imported_by", ())),
        installer=d.get("installer"),
        owner=d.get("owner"),
        owner_version=d.get("owner_version"),
        editable=bool(d.get("editable", False)),
        requested=bool(d.get("requested", False)),
        top_level=tuple(d.get("top_level", ())),
        import_path=d.get("import_path"),
        fingerprint=d.get("fingerprint"),
    )


def _opt_manager(value: str | None) -> Manager | None:
    return Manager(value) if value else None


def event_to_row(e: Event) -> dict[str, Any]:
    """Column values of the `events` table (without `id`, which SQLite assigns)."""
    return {
        "time": e.time,
        "kind": e.kind.value,
        "name": e.name,
        "version": e.version,
        "previous_version": e.previous_version,
        "manager": e.manager.value if e.manager else None,
        "previous_manager": e.previous_manager.value if e.previous_manager else None,
        "env_kind": e.env.kind.value,
        "env_prefix": e.env.prefix,
        "env_name": e.env.name,
        "site": e.site,
        "path": e.path,
        "origin": e.origin.value,
        "command": e.command,
    }


def event_from_row(r: Mapping[str, Any]) -> Event:
    return Event(
        kind=EventKind(r["kind"]),
        name=NormalizedName(r["name"]),
        version=r["version"],
        previous_version=r["previous_version"],
        manager=_opt_manager(r["manager"]),
        previous_manager=_opt_manager(r["previous_manager"]),
        env=EnvRef(EnvKind(r["env_kind"]), r["env_prefix"], r["env_name"]),
        site=r["site"],
        path=r["path"],
        origin=Origin(r["origin"]),
        time=r["time"],
        id=r.get("id"),
        command=r.get("command"),
    )


def conflict_to_json(c: Conflict) -> dict[str, Any]:
    """Every field except the store-owned ones (id, opened, resolved are columns)."""
    return {
        "key": c.key,
        "kind": c.kind.value,
        "name": c.name,
        "severity": c.severity.value,
        "copies": [copy_to_json(x) for x in c.copies],
        "message": c.message,
        "remedy": list(c.remedy),
    }


def conflict_from_json(
    d: Mapping[str, Any], *, id: int | None, opened: str | None, resolved: str | None
) -> Conflict:
    return Conflict(
        key=d["key"],
        kind=ConflictKind(d["kind"]),
        name=d["name"],
        severity=Severity(d["severity"]),
        copies=tuple(copy_from_json(x) for x in d.get("copies", ())),
        message=d.get("message", ""),
        remedy=tuple(d.get("remedy", ())),
        id=id,
        opened=opened,
        resolved=resolved,
    )


def claim_to_json(c: Claim) -> dict[str, Any]:
    return {
        "manager": c.manager.value,
        "package": c.package,
        "name": c.name,
        "version": c.version,
        "env": c.env.to_json(),
        "site": c.site,
        "record_path": c.record_path,
        "claimed": list(c.claimed),
        "missing": list(c.missing),
        "installed": c.installed,
    }


def claim_from_json(d: Mapping[str, Any]) -> Claim:
    return Claim(
        manager=Manager(d["manager"]),
        package=d["package"],
        name=NormalizedName(d["name"]),
        version=d["version"],
        env=env_from_json(d["env"]),
        site=d["site"],
        record_path=d["record_path"],
        claimed=tuple(d.get("claimed", ())),
        missing=tuple(d.get("missing", ())),
        installed=bool(d.get("installed", True)),
    )
