"""Builders that write real package-manager trees, byte-compatible with the real tools.

Every function imitates one tool and says which. The formats were measured on this
machine (see /work/shared/recipes/real-managers.md) and, where the recipe and the
machine disagreed, the machine won; those traps are named in the docstrings:

* pip sorts RECORD rows by path and writes ``direct_url.json`` with sorted keys;
  uv writes compact JSON with ``url`` first, ``INSTALLER`` = ``uv`` (no newline) and
  ``uv_cache.json``.
* Debian 12 (pybuild + python3-installer) keeps RECORD in ``/usr/lib/python3/dist-packages``
  dist-infos, with **hex** sha256 digests, and writes no INSTALLER/REQUESTED
  (``/usr/lib/python3/dist-packages/blinker-1.5.dist-info`` on this host).
* py-rattler writes conda-meta JSON with a fixed key order, two-space indent, no final
  newline, mode 0600, and an empty ``conda-meta/history``.
* dpkg orders status fields by its own table, lists every directory of the package in
  ``.list`` depth-first with C-sorted siblings, and C-sorts ``.md5sums`` by full path.

Builders take plain paths, create parents, and return the main path they wrote.
Nothing here needs a working interpreter or network.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "INSTALLERS",
    "DebPkg",
    "apt_history",
    "conda_base",
    "conda_env",
    "conda_environments_txt",
    "deb_python_files",
    "dist_info",
    "dist_stem",
    "dpkg_admin",
    "dpkg_fields",
    "dpkg_list_lines",
    "dpkg_stanza",
    "easy_install_pth",
    "editable_pep660",
    "egg",
    "egg_info_dir",
    "egg_info_file",
    "egg_link",
    "make_wheel",
    "module_name",
    "pip_archive_direct_url",
    "pkgs_cache_entry",
    "pyvenv",
    "record_hash",
    "site_packages",
    "write_file",
]

StrPath = str | os.PathLike[str]

#: INSTALLER contents as each tool writes them (exact bytes; some have no newline).
INSTALLERS: dict[str, str | None] = {
    "pip": "pip\n",
    "uv": "uv",
    "poetry": "Poetry 1.8.3",
    "conda": "conda",
    "rpm": "rpm\n",  # pyproject-rpm-macros: sed 's/pip/rpm/' on pip's "pip\n"
    "debian": None,
}

FIXED_EPOCH = 1_700_000_000  # deterministic timestamps for reproducible trees
WHEEL_TEXT = "Wheel-Version: 1.0\nGenerator: {gen}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"

# setuptools < 25 wrapped easy-install.pth entries in these two lines (PthDistributions.save,
# text copied from the setuptools source); 25.0 made "raw" (no wrapper) the default.
_PTH_CLASSIC = (
    "import sys; sys.__plen = len(sys.path)",
    "import sys; new=sys.path[sys.__plen:]; del sys.path[sys.__plen:];"
    " p=getattr(sys,'__egginsert',0); sys.path[p:p]=new; sys.__egginsert = p+len(new)",
)
# setuptools 25..~49 with SETUPTOOLS_SYS_PATH_TECHNIQUE=rewrite (RewritePthDistributions).
_PTH_REWRITE = (
    "import sys; sys.__plen = len(sys.path)",
    "import sys; new = sys.path[sys.__plen:]; del sys.path[sys.__plen:];"
    " p = getattr(sys, '__egginsert', 0); sys.path[p:p] = new; sys.__egginsert = p + len(new)",
)
PthStyle = Literal["raw", "classic", "rewrite"]


# --------------------------------------------------------------------------- helpers


def record_hash(data: bytes) -> str:
    """A RECORD digest as pip/uv/installer write it: urlsafe base64, no padding."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def dist_stem(name: str) -> str:
    """Name part of a wheel file / .dist-info dir: normalised, ``-`` -> ``_`` (spec)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def module_name(name: str) -> str:
    """The import name a project of this name would plausibly ship."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).lower()


def _egg_stem(name: str) -> str:
    """pkg_resources.to_filename(safe_name(name)): egg-info/egg file names keep case and dots."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", name)


def site_packages(prefix: StrPath, pyver: str = "3.11") -> Path:
    return Path(prefix) / "lib" / f"python{pyver}" / "site-packages"


def _put(path: Path, data: bytes | str, mode: int | None = None) -> None:
    """Write a file, creating parents only when the open fails (one syscall when they exist)."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        fh = open(path, "wb")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        os.makedirs(path.parent, exist_ok=True)
        fh = open(path, "wb")  # noqa: SIM115
    with fh:
        fh.write(raw)
    if mode is not None:
        os.chmod(path, mode)


write_file = _put  # public name for scripts (bench/make_machine.py)


def _metadata(name: str, version: str, mv: str = "2.1", summary: str | None = None) -> bytes:
    text = f"Metadata-Version: {mv}\nName: {name}\nVersion: {version}\n"
    if summary is not None:
        text += f"Summary: {summary}\n"
    return text.encode()


def _module_files(top_level: Iterable[str], version: str) -> dict[str, bytes]:
    body = f"__version__ = {version!r}\n".encode()
    return {f"{mod}/__init__.py": body for mod in top_level}


def _write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        _put(root / rel, data)


# --------------------------------------------------------------------------- wheels, dist-info


def make_wheel(
    outdir: StrPath,
    name: str,
    version: str,
    *,
    script: bool = False,
    top_level: Sequence[str] | None = None,
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """The recipe's smallest wheel pip, uv, poetry and pipx all accept.

    ``script`` adds a console script (pipx refuses a wheel without one); ``files`` adds
    members (wheel-relative path -> bytes), all of them listed in RECORD.
    """
    mods = list(top_level) if top_level is not None else [module_name(name)]
    di = f"{dist_stem(name)}-{version}.dist-info"
    members = _module_files(mods, version)
    members[f"{di}/METADATA"] = _metadata(name, version)
    members[f"{di}/WHEEL"] = WHEEL_TEXT.format(gen="test").encode()
    if script:
        members[f"{mods[0]}/__main__.py"] = b"def main():\n    print('hi')\n"
        members[f"{di}/entry_points.txt"] = (
            f"[console_scripts]\n{module_name(name)} = {mods[0]}.__main__:main\n".encode()
        )
    members.update(files or {})
    rows = "".join(f"{p},{record_hash(b)},{len(b)}\n" for p, b in members.items())
    members[f"{di}/RECORD"] = (rows + f"{di}/RECORD,,\n").encode()
    path = Path(outdir) / f"{dist_stem(name)}-{version}-py3-none-any.whl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


def pip_archive_direct_url(wheel: StrPath) -> dict[str, Any]:
    """The direct_url.json dict pip writes for ``pip install ./x.whl``."""
    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    return {
        "archive_info": {"hash": f"sha256={digest}", "hashes": {"sha256": digest}},
        "url": Path(wheel).resolve().as_uri(),
    }


def _direct_url_bytes(direct_url: Mapping[str, Any], installer: str | None) -> bytes:
    if installer is not None and installer.startswith("uv"):
        return json.dumps(direct_url, separators=(",", ":")).encode()
    return json.dumps(direct_url, sort_keys=True).encode()


def _uv_cache_json(epoch: int) -> bytes:
    stamp = {"secs_since_epoch": epoch, "nanos_since_epoch": 0}
    info = {"timestamp": stamp, "commit": None, "tags": None, "env": {}, "directories": {}}
    return json.dumps(info, separators=(",", ":")).encode()


def _record_text(
    di: str, files: Mapping[str, bytes], digest: Literal["b64", "hex"], eol: str = "\n"
) -> bytes:
    rows = {f"{di}/RECORD": f"{di}/RECORD,,"}
    for rel, data in files.items():
        if rel.endswith(".pyc"):
            rows[rel] = f"{rel},,"
        elif digest == "hex":
            rows[rel] = f"{rel},sha256={hashlib.sha256(data).hexdigest()},{len(data)}"
        else:
            rows[rel] = f"{rel},{record_hash(data)},{len(data)}"
    return "".join(rows[k] + eol for k in sorted(rows)).encode()


def _default_eol(installer: str | None, record: bool | str) -> str:
    """pip writes RECORD with csv.writer's default CRLF; uv, poetry (installer lib), Debian LF."""
    if record == "hex" or installer is None or installer.startswith(("uv", "Poetry")):
        return "\n"
    return "\r\n"


def dist_info(
    site: StrPath,
    name: str,
    version: str,
    *,
    installer: str | None = "pip\n",
    record: bool | Literal["hex"] = True,
    requested: bool = True,
    direct_url: Mapping[str, Any] | None = None,
    editable: bool = False,
    top_level: Sequence[str] | None = None,
    module_files: bool = True,
    metadata_name: str | None = None,
    uv_cache: bool = False,
    dirname: str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    top_level_txt: bool = False,
    pyc: bool = False,
    wheel_generator: str = "test",
    record_eol: str | None = None,
) -> Path:
    """An installed ``.dist-info`` plus its modules, as pip (default) writes it.

    Styles, by argument: pip ``installer="pip\\n"`` (default); uv ``installer="uv",
    uv_cache=True``; poetry ``installer="Poetry 1.8.3"``; conda ``installer="conda"``;
    Fedora rpm ``installer="rpm\\n", record=False``; Debian 12 ``installer=None,
    requested=False, record="hex", top_level_txt=True``; a stripped distro copy
    ``installer=None, record=False``. ``dirname`` overrides the normalised dir name for
    historical names (``PyYAML-6.0.dist-info``). ``extra_files`` (site-relative) are
    written and listed in RECORD. ``pyc`` adds pip's ``__pycache__`` row (``,,``).
    Trap: pip's RECORD lines end in CRLF (csv.writer default; measured with pip 23.2.1),
    uv/poetry/Debian's in LF; ``record_eol`` overrides the per-installer default.
    """
    root = Path(site)
    mods = list(top_level) if top_level is not None else [module_name(name)]
    di = dirname or f"{dist_stem(name)}-{version}.dist-info"
    if editable and direct_url is None:
        direct_url = {"dir_info": {"editable": True}, "url": f"file:///src/{module_name(name)}"}
    files: dict[str, bytes] = _module_files(mods, version) if module_files and not editable else {}
    files.update(extra_files or {})
    if pyc and module_files and not editable:
        for mod in mods:
            files[f"{mod}/__pycache__/__init__.cpython-311.pyc"] = _fake_pyc()
    files[f"{di}/METADATA"] = _metadata(metadata_name or name, version)
    files[f"{di}/WHEEL"] = WHEEL_TEXT.format(gen=wheel_generator).encode()
    if top_level_txt:
        files[f"{di}/top_level.txt"] = "".join(m + "\n" for m in mods).encode()
    if installer is not None:
        files[f"{di}/INSTALLER"] = installer.encode()
    if requested:
        files[f"{di}/REQUESTED"] = b""
    if direct_url is not None:
        files[f"{di}/direct_url.json"] = _direct_url_bytes(direct_url, installer)
    if uv_cache:
        files[f"{di}/uv_cache.json"] = _uv_cache_json(FIXED_EPOCH)
    if record:
        eol = record_eol or _default_eol(installer, record)
        files[f"{di}/RECORD"] = _record_text(di, files, "hex" if record == "hex" else "b64", eol)
    _write_tree(root, files)
    return root / di


def _fake_pyc() -> bytes:
    """A header-valid pyc (3.11 magic) with an empty code body: tests never import it."""
    return b"\xa7\r\r\n" + bytes(12)


# --------------------------------------------------------------------------- egg-info, eggs


def _pkg_info(name: str, version: str, mv: str = "2.1") -> bytes:
    return _metadata(name, version, mv, summary=f"{name} test distribution")


def _egg_info_files(name: str, version: str, mods: Sequence[str], egg_dir: str) -> dict[str, bytes]:
    sources = sorted([*(f"{m}/__init__.py" for m in mods), "setup.py"])
    sources += [
        f"{egg_dir}/{f}"
        for f in ("PKG-INFO", "SOURCES.txt", "dependency_links.txt", "top_level.txt")
    ]
    return {
        "PKG-INFO": _pkg_info(name, version),
        "SOURCES.txt": "".join(s + "\n" for s in sources).encode(),
        "top_level.txt": "".join(m + "\n" for m in mods).encode(),
        "dependency_links.txt": b"\n",
        "not-zip-safe": b"\n",
        "zip-safe": b"\n",
        "requires.txt": b"",
    }


def egg_info_dir(
    site: StrPath,
    name: str,
    version: str,
    *,
    pyver: str | None = "3.11",
    files: Sequence[str] = ("PKG-INFO", "SOURCES.txt", "top_level.txt", "dependency_links.txt"),
    installed_files: bool = False,
    dirname: str | None = None,
    top_level: Sequence[str] | None = None,
    module_files: bool = True,
) -> Path:
    """``setup.py install --single-version-externally-managed``: ``X-1.0-py3.11.egg-info/``.

    ``pyver=None`` gives Debian's ``X-1.0.egg-info`` (Debian also ships
    ``not-zip-safe``/``requires.txt``: pass them in ``files``). ``installed_files`` adds
    pip's legacy ``installed-files.txt`` (paths relative to the egg-info dir, sorted).
    """
    mods = list(top_level) if top_level is not None else [module_name(name)]
    suffix = f"-py{pyver}" if pyver else ""
    eid = dirname or f"{_egg_stem(name)}-{_egg_stem(version)}{suffix}.egg-info"
    root = Path(site)
    available = _egg_info_files(name, version, mods, f"{module_name(name)}.egg-info")
    meta = {f: available[f] for f in files}
    modules = _module_files(mods, version) if module_files else {}
    if installed_files:
        rels = [f"../{m}" for m in modules] + [*meta, "installed-files.txt"]
        meta["installed-files.txt"] = ("\n".join(sorted(rels)) + "\n").encode()
    _write_tree(root, modules)
    _write_tree(root / eid, meta)
    return root / eid


def egg_info_file(
    site: StrPath, name: str, version: str, pyver: str | None = "3.11", *, module: bool = True
) -> Path:
    """distutils ``install_egg_info``: a flat FILE ``X-1.0-py3.11.egg-info`` holding PKG-INFO.

    pip cannot uninstall these and osquery skips them; Debian ships some without pyver.
    """
    suffix = f"-py{pyver}" if pyver else ""
    path = Path(site) / f"{_egg_stem(name)}-{_egg_stem(version)}{suffix}.egg-info"
    _put(path, _pkg_info(name, version, mv="1.1"))
    if module:
        _put(Path(site) / f"{module_name(name)}.py", f"__version__ = {version!r}\n")
    return path


def easy_install_pth(site: StrPath, entry: str, *, style: PthStyle = "raw") -> Path:
    """Add ``entry`` to ``easy-install.pth`` the way setuptools' PthDistributions.save does.

    The whole file is rewritten: existing ``import`` lines dropped, paths kept in order,
    the new one appended once, then wrapped per ``style`` ("classic": setuptools < 25;
    "rewrite": SETUPTOOLS_SYS_PATH_TECHNIQUE=rewrite; "raw": setuptools >= 25 default).
    """
    path = Path(site) / "easy-install.pth"
    lines = path.read_text().splitlines() if path.exists() else []
    paths = [ln for ln in lines if ln.strip() and not ln.startswith(("import ", "import\t"))]
    if entry not in paths:
        paths.append(entry)
    wrap = {"raw": None, "classic": _PTH_CLASSIC, "rewrite": _PTH_REWRITE}[style]
    out = [wrap[0], *paths, wrap[1]] if wrap else paths
    _put(path, "\n".join(out) + "\n")
    return path


def egg(
    site: StrPath,
    name: str,
    version: str,
    *,
    pyver: str = "3.11",
    zipped: bool = True,
    pth: bool = True,
    platform: str | None = None,
    old_setuptools: bool = False,
) -> Path:
    """``easy_install X.egg``: ``X-1.0-py3.11[-platform].egg`` zip (or dir with ``-Z``).

    Inside: ``EGG-INFO/{PKG-INFO,SOURCES.txt,dependency_links.txt,top_level.txt,zip-safe}``
    and the package; no RECORD, no INSTALLER. ``pth`` appends ``./<egg>`` to
    easy-install.pth; ``old_setuptools`` writes the setuptools < 25 ``sys.__plen`` wrapper.
    """
    mods = [module_name(name)]
    plat = f"-{platform}" if platform else ""
    egg_name = f"{_egg_stem(name)}-{_egg_stem(version)}-py{pyver}{plat}.egg"
    info = _egg_info_files(name, version, mods, f"{module_name(name)}.egg-info")
    members = {
        f"EGG-INFO/{f}": info[f]
        for f in ("PKG-INFO", "SOURCES.txt", "dependency_links.txt", "top_level.txt", "zip-safe")
    }
    members.update(_module_files(mods, version))
    path = Path(site) / egg_name
    path.parent.mkdir(parents=True, exist_ok=True)
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for member in sorted(members):
                zf.writestr(member, members[member])
    else:
        _write_tree(path, members)
    if pth:
        easy_install_pth(site, f"./{egg_name}", style="classic" if old_setuptools else "raw")
    return path


def egg_link(site: StrPath, name: str, project_dir: StrPath, *, version: str = "0.0.0") -> Path:
    """Legacy ``setup.py develop`` / ``pip install -e`` (pre-PEP 660).

    ``<site>/<Name>.egg-link`` = ``<project>\\n.`` (no final newline, as setuptools writes
    it), ``<project>/<name>.egg-info/`` with the metadata, the package in the project,
    and the absolute project path appended to easy-install.pth.
    """
    project = Path(project_dir)
    mods = [module_name(name)]
    ei = f"{_egg_stem(name)}.egg-info"
    info = _egg_info_files(name, version, mods, ei)
    _write_tree(
        project / ei,
        {f: info[f] for f in ("PKG-INFO", "SOURCES.txt", "dependency_links.txt", "top_level.txt")},
    )
    _write_tree(project, _module_files(mods, version))
    _put(project / "setup.py", "from setuptools import setup\nsetup()\n")
    link = Path(site) / (re.sub(r"[^A-Za-z0-9.]+", "-", name) + ".egg-link")
    _put(link, f"{project}\n.")
    easy_install_pth(site, str(project))
    return link


def editable_pep660(site: StrPath, name: str, version: str, src_dir: StrPath) -> Path:
    """``pip install -e`` via setuptools' PEP 660 (lenient mode).

    ``__editable__.<name>-<version>.pth`` holding the src path, plus a pip dist-info
    whose RECORD lists that .pth and whose direct_url.json says ``editable``.
    """
    src = Path(src_dir)
    _write_tree(src, _module_files([module_name(name)], version))
    pth_name = f"__editable__.{dist_stem(name)}-{version}.pth"
    return dist_info(
        site,
        name,
        version,
        editable=True,
        top_level_txt=True,
        direct_url={"dir_info": {"editable": True}, "url": src.resolve().as_uri()},
        extra_files={pth_name: f"{src}\n".encode()},
        wheel_generator="setuptools (69.0.3)",
    )


# --------------------------------------------------------------------------- venvs


def pyvenv(
    prefix: StrPath,
    home: StrPath,
    version: str,
    *,
    system_site: bool = False,
    virtualenv: bool = False,
    uv: bool = False,
    executable: StrPath | None = None,
) -> Path:
    """``pyvenv.cfg`` + ``bin/python`` + empty site-packages, as venv / virtualenv / uv.

    ``executable`` is the interpreter bin/python links to; without it bin/python is a
    non-working stub file (executable bit set), enough for discovery code.
    """
    root = Path(prefix)
    home = str(home)
    short = ".".join(version.split(".")[:2])
    exe = f"{home}/python{short}"
    inc = "true" if system_site else "false"
    if uv:
        cfg = (
            f"home = {home}\nimplementation = CPython\nuv = 0.13.9\n"
            f"version_info = {version}\ninclude-system-site-packages = {inc}\n"
        )
    elif virtualenv:
        base = str(Path(home).parent)
        cfg = (
            f"home = {home}\nimplementation = CPython\npython-version = {short}\n"
            f"version_info = {version}.final.0\nversion = {version}\nexecutable = {exe}\n"
            f"command = {home}/python3 -m virtualenv {root}\nvirtualenv = 21.15.11\n"
            f"include-system-site-packages = {inc}\nbase-prefix = {base}\n"
            f"base-exec-prefix = {base}\nbase-executable = {home}/python3\n"
        )
    else:
        cfg = (
            f"home = {home}\ninclude-system-site-packages = {inc}\nversion = {version}\n"
            f"executable = {exe}\ncommand = {home}/python3 -m venv {root}\n"
        )
    _put(root / "pyvenv.cfg", cfg)
    site_packages(root, short).mkdir(parents=True, exist_ok=True)
    _python_links(root / "bin", short, executable)
    return root


def _python_links(bindir: Path, short: str, executable: StrPath | None) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    target = bindir / "python3"
    if executable is not None:
        target.symlink_to(executable)
    else:
        _put(target, "#!/bin/sh\necho 'envwatchd test stub python' >&2\nexit 1\n", mode=0o755)
    (bindir / "python").symlink_to("python3")
    (bindir / f"python{short}").symlink_to("python3")


# --------------------------------------------------------------------------- conda


_CONDA_KEY_ORDER = (
    "build",
    "build_number",
    "depends",
    "indexed_timestamp",
    "license",
    "md5",
    "name",
    "noarch",
    "sha256",
    "size",
    "subdir",
    "timestamp",
    "version",
    "fn",
    "url",
    "channel",
    "extracted_package_dir",
    "requested_specs",
    "files",
    "paths_data",
    "link",
)
CondaPkg = tuple[str, str, str]


def _conda_payload(name: str, version: str, pyver: str, meta: str | None) -> dict[str, bytes]:
    sp = f"lib/python{pyver}/site-packages"
    mod = module_name(name)
    files = {f"{sp}/{mod}/__init__.py": f"__version__ = {version!r}\n".encode()}
    if meta == "dist-info":
        di = f"{sp}/{dist_stem(name)}-{version}.dist-info"
        files[f"{di}/INSTALLER"] = b"conda"
        files[f"{di}/METADATA"] = _metadata(name, version)
        files[f"{di}/WHEEL"] = WHEEL_TEXT.format(gen="bdist_wheel (0.41.2)").encode()
        files[f"{di}/top_level.txt"] = f"{mod}\n".encode()
        files[f"{di}/RECORD"] = _record_text(
            di[len(sp) + 1 :], {k[len(sp) + 1 :]: v for k, v in files.items()}, "b64"
        )
    elif meta == "egg-info":
        files[f"{sp}/{_egg_stem(name)}-{version}-py{pyver}.egg-info"] = _pkg_info(name, version)
    return files


def _conda_record(
    prefix: Path,
    pkg: CondaPkg,
    files: Mapping[str, bytes],
    *,
    pkgs_dir: Path,
    channel: str,
    subdir: str,
    requested: bool,
) -> dict[str, Any]:
    name, version, build = pkg
    fn = f"{name}-{version}-{build}.conda"
    tail = build.rsplit("_", 1)[-1]
    source = str(pkgs_dir / f"{name}-{version}-{build}")
    blob = "".join(sorted(files)).encode()
    rec: dict[str, Any] = {
        "build": build,
        "build_number": int(tail) if tail.isdigit() else 0,
        "depends": [] if name == "python" else ["python >=3.11,<3.12.0a0"],
        "indexed_timestamp": FIXED_EPOCH * 1000,
        "license": "BSD-3-Clause",
        "md5": hashlib.md5(blob).hexdigest(),
        "name": name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size": sum(map(len, files.values())),
        "subdir": subdir,
        "timestamp": FIXED_EPOCH * 1000,
        "version": version,
        "fn": fn,
        "url": f"{channel}{subdir}/{fn}",
        "channel": channel,
        "extracted_package_dir": source,
        "requested_specs": [name] if requested else [],
        "files": list(files),
        "paths_data": {
            "paths_version": 1,
            "paths": [
                {
                    "_path": p,
                    "path_type": "hardlink",
                    "sha256": hashlib.sha256(b).hexdigest(),
                    "size_in_bytes": len(b),
                }
                for p, b in files.items()
            ],
        },
        "link": {"source": source, "type": 1},
    }
    return {k: rec[k] for k in _CONDA_KEY_ORDER if k in rec}


def _python_payload(pyver: str) -> dict[str, bytes]:
    return {f"bin/python{pyver}": b"#!/bin/sh\necho 'envwatchd test stub python' >&2\nexit 1\n"}


def conda_env(
    prefix: StrPath,
    packages: Sequence[CondaPkg],
    *,
    pyver: str = "3.11",
    pkgs_dir: StrPath | None = None,
    python_metadata: Literal["dist-info", "egg-info"] | None = "dist-info",
    python: str | None = "3.11.7",
    history: Sequence[tuple[str, str]] = (),
    channel: str = "https://conda.anaconda.org/conda-forge/",
    write_pkgs_cache: bool = False,
) -> Path:
    """A conda prefix as py-rattler installs it (conda-meta JSON byte layout measured).

    ``packages`` are ``(name, version, build)``; each gets its site-packages payload
    (dist-info with INSTALLER ``conda``, or an old ``-py3.11.egg-info`` file, or none)
    and ``conda-meta/<n>-<v>-<b>.json``. ``python`` adds a python record owning the
    stub ``bin/python<pyver>``. ``history`` holds ``(date, cmd)`` blocks like conda
    writes (rattler leaves the file empty). ``write_pkgs_cache`` fills ``pkgs_dir``.
    """
    root = Path(prefix)
    pkgs = Path(pkgs_dir) if pkgs_dir is not None else root / "pkgs"
    meta = root / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    all_pkgs = [(("python", python, "h0_0_cpython"), _python_payload(pyver))] if python else []
    all_pkgs += [(p, _conda_payload(p[0], p[1], pyver, python_metadata)) for p in packages]
    for pkg, files in all_pkgs:
        _write_tree(root, files)
        rec = _conda_record(
            root,
            pkg,
            files,
            pkgs_dir=pkgs,
            channel=channel,
            subdir="linux-64",
            requested=pkg[0] != "python",
        )
        _put(meta / f"{'-'.join(pkg)}.json", json.dumps(rec, indent=2), mode=0o600)
        if write_pkgs_cache:
            pkgs_cache_entry(pkgs, pkg, files, rec)
    if python:
        (root / "bin" / f"python{pyver}").chmod(0o755)
        _symlink(root / "bin" / "python", f"python{pyver}")
    _put(meta / "history", "".join(f"==> {d} <==\n# cmd: {c}\n" for d, c in history))
    _put(
        root / "CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55\n"
        "# This file is a cache directory tag created by rattler.\n",
    )
    return root


def _symlink(link: Path, target: str) -> None:
    if not link.is_symlink():
        link.symlink_to(target)


def pkgs_cache_entry(
    pkgs_dir: StrPath, pkg: CondaPkg, files: Mapping[str, bytes], record: Mapping[str, Any]
) -> Path:
    """An extracted package in a conda pkgs cache: payload + ``info/{index,files,paths}``.

    conda (not rattler) also appends the package URL to ``pkgs/urls.txt``.
    """
    entry = Path(pkgs_dir) / "-".join(pkg)
    index = {
        k: record[k]
        for k in (
            "name",
            "version",
            "build",
            "build_number",
            "depends",
            "license",
            "subdir",
            "timestamp",
        )
    }
    _write_tree(entry, files)
    _put(entry / "info" / "index.json", json.dumps(index, indent=2))
    _put(entry / "info" / "files", "".join(p + "\n" for p in files))
    _put(entry / "info" / "paths.json", json.dumps(record["paths_data"], indent=2))
    with open(Path(pkgs_dir) / "urls.txt", "a") as fh:
        fh.write(record["url"] + "\n")
    return entry


def conda_base(
    root: StrPath,
    packages: Sequence[CondaPkg] = (),
    *,
    home: StrPath | None = None,
    envs: Mapping[str, Sequence[CondaPkg]] | None = None,
    **kw: Any,
) -> Path:
    """A miniconda install: base prefix, ``envs/<name>`` prefixes, a shared ``pkgs/`` cache.

    With ``home``, also registers every prefix in ``~/.conda/environments.txt``.
    """
    base = Path(root)
    kw.setdefault("pkgs_dir", base / "pkgs")
    conda_env(base, [("conda", "23.11.0", "py311h06a4308_0"), *packages], **kw)
    (base / "envs").mkdir(exist_ok=True)
    (base / "pkgs").mkdir(exist_ok=True)
    prefixes = [base]
    for name, pkgs in (envs or {}).items():
        prefixes.append(conda_env(base / "envs" / name, pkgs, **kw))
    if home is not None:
        conda_environments_txt(home, prefixes)
    return base


def conda_environments_txt(home: StrPath, prefixes: Iterable[StrPath]) -> Path:
    """``~/.conda/environments.txt``: one prefix per line, appended without duplicates."""
    path = Path(home) / ".conda" / "environments.txt"
    known = path.read_text().splitlines() if path.exists() else []
    known += [str(p) for p in prefixes if str(p) not in known]
    _put(path, "".join(p + "\n" for p in known))
    return path


# --------------------------------------------------------------------------- dpkg / apt


@dataclass
class DebPkg:
    """One Debian package: its control fields and its files (root-relative path -> bytes)."""

    package: str
    version: str
    files: dict[str, bytes]
    architecture: str = "all"
    multi_arch: str | None = None
    source: str | None = None
    depends: str | None = "python3:any"
    section: str = "python"
    priority: str = "optional"
    maintainer: str = "Debian Python Team <team+python@tracker.debian.org>"
    description: str = "test package\n Built by envwatchd's tests."
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def list_name(self) -> str:
        """``pkg:arch`` for Multi-Arch: same, as dpkg names info files."""
        return f"{self.package}:{self.architecture}" if self.multi_arch == "same" else self.package


def deb_python_files(
    name: str,
    version: str,
    *,
    fmt: Literal["egg-info", "dist-info"] = "egg-info",
    docs: bool = True,
    package: str | None = None,
) -> dict[str, bytes]:
    """Files of a ``python3-<name>`` package as Debian 12 ships them (see module doc)."""
    sp = "usr/lib/python3/dist-packages"
    mod = module_name(name)
    files = {f"{sp}/{mod}/__init__.py": f"__version__ = {version!r}\n".encode()}
    if fmt == "egg-info":
        ei = f"{sp}/{_egg_stem(name)}-{version}.egg-info"
        files.update(
            {
                f"{ei}/PKG-INFO": _pkg_info(name, version),
                f"{ei}/dependency_links.txt": b"\n",
                f"{ei}/top_level.txt": f"{mod}\n".encode(),
            }
        )
    else:
        di = f"{dist_stem(name)}-{version}.dist-info"
        meta = {
            f"{di}/METADATA": _metadata(name, version),
            f"{di}/top_level.txt": f"{mod}\n".encode(),
            f"{di}/WHEEL": WHEEL_TEXT.format(gen="bdist_wheel (0.38.4)").encode(),
        }
        rel = {f"{mod}/__init__.py": files[f"{sp}/{mod}/__init__.py"], **meta}
        meta[f"{di}/RECORD"] = _record_text(di, rel, "hex")
        files.update({f"{sp}/{k}": v for k, v in meta.items()})
    if docs:
        doc = f"usr/share/doc/{package or 'python3-' + name.lower()}"
        files[f"{doc}/copyright"] = b"Format: https://www.debian.org/doc/packaging-manuals/\n"
        files[f"{doc}/changelog.Debian.gz"] = gzip.compress(b"changelog\n", mtime=0)
    return files


_DPKG_FIELD_ORDER = (
    "Package",
    "Essential",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Description",
)


def dpkg_fields(pkg: DebPkg, status: str | None = "install ok installed") -> dict[str, str]:
    """Status fields in dpkg's order (unknown fields last); ``status=None`` gives control."""
    size = max(1, (sum(len(b) for b in pkg.files.values()) + 1023) // 1024)
    fields = {
        "Package": pkg.package,
        "Status": status,
        "Priority": pkg.priority,
        "Section": pkg.section,
        "Installed-Size": str(size),
        "Maintainer": pkg.maintainer,
        "Architecture": pkg.architecture,
        "Multi-Arch": pkg.multi_arch,
        "Source": pkg.source,
        "Version": pkg.version,
        "Depends": pkg.depends,
        "Description": pkg.description,
        **pkg.extra,
    }
    known = [k for k in _DPKG_FIELD_ORDER if fields.get(k)]
    rest = [k for k in fields if k not in _DPKG_FIELD_ORDER and fields[k]]
    return {k: str(fields[k]) for k in known + rest}


def dpkg_stanza(pkg: DebPkg, status: str = "install ok installed") -> str:
    """One ``/var/lib/dpkg/status`` stanza (without the blank separator line)."""
    return "".join(f"{k}: {v}\n" for k, v in dpkg_fields(pkg, status).items())


def dpkg_list_lines(files: Iterable[str]) -> list[str]:
    """``info/<pkg>.list``: ``/.`` then every dir and file, depth-first, C-sorted siblings."""
    tree: dict[str, Any] = {}
    for rel in files:
        node = tree
        for part in rel.strip("/").split("/"):
            node = node.setdefault(part, {})
    out = ["/."]

    def walk(node: dict[str, Any], prefix: str) -> None:
        for part in sorted(node, key=lambda s: s.encode()):
            out.append(f"{prefix}/{part}")
            walk(node[part], f"{prefix}/{part}")

    walk(tree, "")
    return out


def dpkg_admin(root: StrPath, packages: Sequence[DebPkg], *, payload: bool = True) -> Path:
    """``<root>/var/lib/dpkg``: status, ``info/<pkg>.list``/``.md5sums``, ``info/format``.

    Also writes the payload under ``<root>`` unless ``payload=False`` (an orphaned record).
    Appends to an existing status file, like successive ``dpkg -i`` runs.
    """
    base = Path(root)
    admin = base / "var" / "lib" / "dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True, exist_ok=True)
    _put(admin / "info" / "format", "1\n")
    (admin / "available").touch()
    stanzas = []
    for pkg in packages:
        if payload:
            _write_tree(base, pkg.files)
        info = admin / "info"
        _put(
            info / f"{pkg.list_name}.list", "".join(ln + "\n" for ln in dpkg_list_lines(pkg.files))
        )
        md5 = sorted(pkg.files, key=lambda s: s.encode())
        _put(
            info / f"{pkg.list_name}.md5sums",
            "".join(f"{hashlib.md5(pkg.files[p]).hexdigest()}  {p}\n" for p in md5),
        )
        stanzas.append(dpkg_stanza(pkg) + "\n")
    with open(admin / "status", "a") as fh:
        fh.write("".join(stanzas))
    return admin


def apt_history(root: StrPath, entries: Sequence[Mapping[str, Any]]) -> Path:
    """``<root>/var/log/apt/history.log`` blocks as apt writes them.

    Each entry: ``start``/``end`` ("2026-11-26  14:43:15", two spaces like apt),
    ``commandline``, optional ``requested_by`` ("user (1000)"), and ``install`` /
    ``upgrade`` / ``remove`` lists of tuples: ``("python3-x:amd64", "1.0-1")``,
    ``("python3-y:amd64", "2.0-1", "automatic")``, upgrades ``(pkg, old, new)``.
    Format checked against this host's /var/log/apt/history.log.
    """
    out = []
    for e in entries:
        lines = ["", f"Start-Date: {e['start']}", f"Commandline: {e['commandline']}"]
        if e.get("requested_by"):
            lines.append(f"Requested-By: {e['requested_by']}")
        for key, label in (("install", "Install"), ("upgrade", "Upgrade"), ("remove", "Remove")):
            if e.get(key):
                lines.append(f"{label}: " + ", ".join(_apt_item(i, key) for i in e[key]))
        lines.append(f"End-Date: {e['end']}")
        out.append("\n".join(lines) + "\n")
    path = Path(root) / "var" / "log" / "apt" / "history.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write("".join(out))
    return path


def _apt_item(item: Sequence[str], key: str) -> str:
    """``pkg:arch (ver)``; upgrades ``(old, new)``; ``(ver, automatic)`` for dependencies."""
    return f"{item[0]} ({', '.join(item[1:])})"
