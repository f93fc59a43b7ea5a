"""Which manager put a distribution there: ordered small rules over evidence.

Strongest first: a package database that claims the metadata (dpkg, rpm,
conda-meta); then INSTALLER; then the format and location rules of the
reference story's "Reverse the paths". A database claim contradicted by
INSTALLER means another manager wrote over the package last: `manager` names
who wrote it, `owner` keeps the claim so the foreign-overwrite rule can fire.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from envwatchd.formats import RawDist
from envwatchd.model import EnvKind, Format, Manager

__all__ = ["Claimant", "Inferred", "infer", "manager_from_installer"]

_INSTALLERS: tuple[tuple[str, Manager], ...] = (
    ("pip", Manager.PIP),
    ("uv", Manager.UV),
    ("poetry", Manager.POETRY),
    ("pdm", Manager.PDM),
    ("conda", Manager.CONDA),
    ("mamba", Manager.CONDA),
    ("rattler", Manager.CONDA),
    ("rpm", Manager.RPM),
    ("debian", Manager.APT),
    ("dpkg", Manager.APT),
    ("apt", Manager.APT),
    ("easy_install", Manager.EASY_INSTALL),
    ("distutils", Manager.DISTUTILS),
)


@dataclass(frozen=True, slots=True)
class Claimant:
    """A database record claiming the copy's metadata path."""

    manager: Manager
    owner: str
    version: str
    record: str


@dataclass(frozen=True, slots=True)
class Inferred:
    manager: Manager
    evidence: tuple[str, ...]
    owner: str | None = None
    owner_version: str | None = None


@functools.lru_cache(maxsize=256)
def manager_from_installer(installer: str) -> Manager | None:
    """INSTALLER's first line, case-insensitive prefix match (`Poetry 1.8.3` -> poetry)."""
    low = installer.strip().lower()
    for prefix, manager in _INSTALLERS:
        if low.startswith(prefix):
            return manager
    return None


def infer(
    raw: RawDist,
    kind: EnvKind,
    claim: Claimant | None,
    in_easy_install_pth: bool = False,
) -> Inferred:
    evidence: list[str] = []
    by_installer = _installer_evidence(raw, evidence)
    if claim is not None:
        evidence.insert(0, f"{_claim_text(claim)}")
        owner = claim.owner
        if by_installer is None or by_installer is claim.manager:
            return Inferred(claim.manager, tuple(evidence + _extra(raw)), owner, claim.version)
        evidence.append(f"INSTALLER contradicts the {claim.manager.value} record: rewritten later")
        return Inferred(by_installer, tuple(evidence + _extra(raw)), owner, claim.version)
    if by_installer is not None:
        return Inferred(by_installer, tuple(evidence + _extra(raw)))
    manager, why = _by_layout(raw, kind, in_easy_install_pth, raw.installer is not None)
    return Inferred(manager, (*evidence, *why, *_extra(raw)))


def _installer_evidence(raw: RawDist, evidence: list[str]) -> Manager | None:
    if raw.installer is None:
        return None
    manager = manager_from_installer(raw.installer)
    if manager is None:
        evidence.append(f"INSTALLER says {raw.installer!r} (not a known manager)")
    else:
        evidence.append(_says(raw.installer))
    return manager


@functools.lru_cache(maxsize=256)
def _says(installer: str) -> str:
    """One shared string per INSTALLER value: 20,000 copies say "pip" alike."""
    return f"INSTALLER says {installer}"


def _claim_text(claim: Claimant) -> str:
    if claim.manager is Manager.CONDA:
        return f"claimed by {claim.record}"
    return f"listed in {claim.record}"


def _extra(raw: RawDist) -> list[str]:
    out = list(raw.extra_evidence)
    if raw.editable and raw.format is Format.EDITABLE:
        out.append("direct_url.json says editable (PEP 660)")
    if raw.format in (Format.DIST_INFO, Format.EDITABLE) and not raw.has_record:
        out.append("no RECORD (distro packaging drops it; pip cannot uninstall)")
    return out


def _by_layout(
    raw: RawDist, kind: EnvKind, in_pth: bool, had_installer: bool
) -> tuple[Manager, tuple[str, ...]]:
    """The location and format rules of "Reverse the paths"."""
    fmt = raw.format
    if had_installer:
        return Manager.UNKNOWN, ()
    if fmt is Format.EGG:
        pth = ("listed in easy-install.pth",) if in_pth else ("not listed in any .pth",)
        return Manager.EASY_INSTALL, pth
    if fmt is Format.EGG_LINK:
        return Manager.PIP, ("legacy editable: pip install -e or setup.py develop",)
    if kind in (EnvKind.CONDA, EnvKind.CONDA_PKGS):
        where = "conda pkgs cache" if kind is EnvKind.CONDA_PKGS else "conda env"
        return Manager.CONDA, (f"in a {where} without INSTALLER: conda's own layout",)
    if fmt is Format.EGG_INFO and raw.has_record:
        return Manager.PIP, ("egg-info with installed-files.txt (pip install of an sdist)",)
    if kind is EnvKind.SYSTEM:
        return Manager.APT, ("in the distro's dist-packages without INSTALLER: distro packaging",)
    if fmt is Format.EGG_INFO:
        return Manager.DISTUTILS, ("egg-info without a file list (setup.py install)",)
    return Manager.UNKNOWN, ("no INSTALLER and no package database claims it",)
