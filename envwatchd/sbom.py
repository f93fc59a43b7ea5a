"""CycloneDX 1.6 SBOM of the inventory, built on the client from `packages` JSON.

Why the client side: cyclonedx-python-lib (with py-serializable, sortedcontainers,
license-expression) is heavy to import and slow to serialise thousands of
components; inside the daemon that would either block the event loop for
seconds or need a thread, and the daemon would carry the library's memory for
the rest of its life after one request. `packages` already has everything an
SBOM needs, so `envwatch sbom` asks for it and builds the document here; only
that command path imports this module.

One component per copy, not per project: two numpy copies on one machine are
two things a vulnerability scanner must see, each with where it lives.
`bom-ref` is the copy's metadata path, unique in the inventory by construction
(Copy.key). The purl says who shipped the bits:
- a copy apt installed and dpkg still claims: `pkg:deb/debian/<package>@<deb version>`
  (no `arch` qualifier: the dpkg architecture is not carried through the model);
- a copy conda installed: `pkg:conda/<conda name>@<version>?build=<build>`, read off
  the claiming conda-meta record when there is one (conda names differ from
  PyPI's: pytorch vs torch);
- an rpm-claimed copy: `pkg:rpm/<package>@<version>`;
- anything else (pip, uv, poetry, ... and a copy another manager overwrote):
  `pkg:pypi/<normalized name>@<version>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependable, Dependency
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from envwatchd import __version__

__all__ = ["PROPERTY_PREFIX", "build_bom", "component_of", "purl_of", "sbom_json"]

PROPERTY_PREFIX = "envwatchd:"

CopyJson = Mapping[str, Any]


def _owner(copy: CopyJson, database: str) -> str | None:
    """The package named by a `<database>:<package>` owner label, if that is the owner."""
    owner = copy.get("owner")
    if isinstance(owner, str) and owner.startswith(database + ":"):
        return owner.split(":", 1)[1] or None
    return None


def _conda_purl(copy: CopyJson) -> PackageURL:
    stem = _owner(copy, "conda")
    parts = stem.rsplit("-", 2) if stem else []
    if len(parts) == 3:
        name, version, build = parts
        return PackageURL("conda", None, name, version, {"build": build})
    return PackageURL("conda", None, str(copy["name"]), copy.get("version") or None)


def purl_of(copy: CopyJson) -> PackageURL:
    """The package URL of one copy (see the module docstring for the rules)."""
    manager = copy.get("manager")
    version = copy.get("version") or None
    deb = _owner(copy, "dpkg")
    if manager == "apt" and deb:
        return PackageURL("deb", "debian", deb, copy.get("owner_version") or version)
    if manager == "conda":
        return _conda_purl(copy)
    rpm = _owner(copy, "rpm")
    if manager == "rpm" and rpm:
        return PackageURL("rpm", None, rpm, copy.get("owner_version") or version)
    return PackageURL("pypi", None, str(copy["name"]), version)


def _properties(copy: CopyJson) -> list[Property]:
    env = copy.get("env") or {}
    pairs: list[tuple[str, Any]] = [
        ("manager", copy.get("manager")),
        ("env.kind", env.get("kind")),
        ("env.prefix", env.get("prefix")),
        ("env.name", env.get("name")),
        ("path", copy.get("path")),
        ("site", copy.get("site")),
        ("format", copy.get("format")),
        ("owner", copy.get("owner")),
        *(("evidence", e) for e in copy.get("evidence") or ()),
        *(("imported_by", i) for i in copy.get("imported_by") or ()),
    ]
    return [
        Property(name=PROPERTY_PREFIX + key, value=str(value))
        for key, value in pairs
        if value not in (None, "")
    ]


def component_of(copy: CopyJson) -> Component:
    return Component(
        type=ComponentType.LIBRARY,
        name=str(copy.get("display_name") or copy["name"]),
        version=copy.get("version") or None,
        bom_ref=str(copy["path"]),
        purl=purl_of(copy),
        properties=_properties(copy),
    )


def _order(component: Component) -> tuple[str, bool, str, str]:
    """The library's own component order for our components (all libraries, no group):
    handing them over presorted saves most of its costly comparisons."""
    version = component.version
    return (component.name, version is not None, version or "", component.bom_ref.value or "")


def _index_dependencies(bom: Bom) -> None:
    """Work around an O(n²) in the library (cyclonedx-python-lib issue #1006, open).

    Every output calls Bom.validate(), which calls register_dependency() once per
    component, and that finds the component's entry by a linear scan: 5,000 copies
    took 15 s here. Each component gets its (empty) dependency entry up front, and
    register_dependency answers "already there" from a set; anything else still
    goes to the library's own method.
    """
    refs = [c.bom_ref for c in bom.components]
    bom.dependencies.update(Dependency(ref=r) for r in refs)
    known = {r.value for r in refs}
    original = bom.register_dependency

    def register(target: Dependable, depends_on: Iterable[Dependable] | None = None) -> None:
        if depends_on is None and target.bom_ref.value in known:
            return
        original(target, depends_on)

    bom.register_dependency = register  # type: ignore[method-assign]


def build_bom(copies: Iterable[CopyJson]) -> Bom:
    components = sorted(map(component_of, copies), key=_order)
    bom = Bom(components=components)
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="envwatchd", version=__version__)
    )
    _index_dependencies(bom)
    return bom


def sbom_json(copies: Sequence[CopyJson], indent: int | None = 2) -> str:
    """The CycloneDX 1.6 JSON document for `copies` (`packages` answer items)."""
    return JsonV1Dot6(build_bom(copies)).output_as_string(indent=indent)
