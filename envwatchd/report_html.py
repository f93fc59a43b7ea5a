"""One self-contained HTML page from ReportData: inline CSS, no script, no network.

Every string that came from the machine goes through `_e` (html.escape with
quotes): package names, paths, evidence and command lines are attacker-
controllable (anyone can publish a wheel called `<script>`), and the page is
meant to be opened in a browser. Attribute values are escaped the same way.

The structure carries the meaning in classes as well as colour, so the page
reads the same printed in black and white and a test can assert on the DOM:
`tr.conflict.sev-<severity>[data-kind][data-name]`, `section.project[data-name]`,
`td.winner` (the copy an interpreter imports, marked ★), `td.shadowed` (greyed),
`tr.event.ev-<kind>`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from itertools import groupby
from typing import Any

from envwatchd.report import ReportData

__all__ = ["render_html"]

Json = Mapping[str, Any]

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d232b;
background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:2px solid #d8dde3}
h3{font-size:15px;margin:14px 0 6px}.sub{color:#5b6570}
.cards{display:flex;gap:12px;margin:14px 0}.card{background:#fff;border:1px solid #d8dde3;
border-radius:6px;padding:8px 14px;min-width:110px}.card b{display:block;font-size:22px}
table{border-collapse:collapse;background:#fff;width:100%;margin:4px 0 10px}
th,td{border:1px solid #d8dde3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}code{font:12px ui-monospace,monospace;word-break:break-all}
.badge{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;font-weight:600;
color:#fff;background:#6b7785}
.sev-error .badge.sev,.badge.sev-error{background:#c62828}
.sev-warning .badge.sev,.badge.sev-warning{background:#e08a00}
.sev-info .badge.sev,.badge.sev-info{background:#2f7fc1}
tr.sev-error{background:#fdecea}tr.sev-warning{background:#fff6e0}tr.sev-info{background:#eef6fd}
.k-system{background:#6d4c41}.k-local{background:#8d6e63}.k-user{background:#00897b}
.k-venv{background:#3949ab}.k-conda,.k-conda-pkgs{background:#43a047}.k-pyenv{background:#7b1fa2}
.k-pipx{background:#5e35b1}
td.winner{background:#e3f5e1;font-weight:600}td.winner::before{content:"\\2605  ";color:#2e7d32}
td.shadowed{color:#9aa3ad;background:#f1f2f4;text-decoration:line-through}
td.unseen{color:#c0c6cc}th.copy.winner{background:#d5efd1}th.copy.shadowed{color:#8a939c}
.ev-install .badge.ev{background:#2e7d32}.ev-uninstall .badge.ev{background:#c62828}
.ev-upgrade .badge.ev{background:#1565c0}.ev-downgrade .badge.ev{background:#ef6c00}
.ev-replace .badge.ev{background:#6a1b9a}ul.remedy{margin:2px 0;padding-left:18px}
.none{color:#5b6570;font-style:italic}tr.day th{background:#dfe5eb}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _env_label(env: Json | None) -> str:
    if not env:
        return "-"
    kind = str(env.get("kind", "other"))
    return f'<span class="badge k-{_e(kind)}">{_e(kind)}</span> {_e(env.get("name"))}'


def _table(header: Iterable[str], rows: Iterable[str], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(rows)
    return f'<table class="{_e(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cards(data: ReportData) -> str:
    opened = data["conflicts"]
    blocking = sum(c.get("severity") in ("warning", "error") for c in opened)
    cards = [
        ("environments", len(data["envs"])),
        ("packages", data["package_count"]),
        ("projects with 2+ copies", len(data["projects"])),
        ("open conflicts", f"{len(opened)} ({blocking} warning/error)"),
        (f"events, last {data['since']}", len(data["events"])),
    ]
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in cards)
        + "</div>"
    )


def _conflict_row(c: Json) -> str:
    sev, kind, name = str(c.get("severity")), str(c.get("kind")), str(c.get("name"))
    copies = "<br>".join(
        f"{_e(k.get('version'))} {_e(k.get('manager'))} {_env_label(k.get('env'))}"
        f"<br><code>{_e(k.get('path'))}</code>"
        for k in c.get("copies") or ()
    )
    remedy = "".join(f"<li><code>{_e(r)}</code></li>" for r in c.get("remedy") or ())
    return (
        f'<tr class="conflict sev-{_e(sev)}" data-kind="{_e(kind)}" data-name="{_e(name)}">'
        f'<td><span class="badge sev">{_e(sev)}</span></td><td>{_e(kind)}</td>'
        f"<td><b>{_e(name)}</b></td><td>{_e(c.get('message'))}{'<br>' if copies else ''}"
        f'{copies}</td><td><ul class="remedy">{remedy}</ul></td></tr>'
    )


def _conflicts(conflicts: list[dict[str, Any]]) -> str:
    if not conflicts:
        return '<p class="none">No open conflicts.</p>'
    rank = {"error": 0, "warning": 1, "info": 2}
    ordered = sorted(conflicts, key=lambda c: (rank.get(str(c.get("severity")), 3), c.get("id")))
    header = ["severity", "kind", "project", "what", "remedy"]
    return _table(header, map(_conflict_row, ordered), "conflicts")


def _env_row(env: Json) -> str:
    interps = "<br>".join(f"<code>{_e(i)}</code>" for i in env.get("interpreters") or ()) or "-"
    flags = "externally managed" if env.get("externally_managed") else ""
    return (
        f'<tr class="env" data-prefix="{_e(env.get("prefix"))}"><td>{_env_label(env)}</td>'
        f"<td><code>{_e(env.get('prefix'))}</code></td><td>{_e(env.get('python_version'))}</td>"
        f"<td>{interps}</td><td>{_e(env.get('package_count', '-'))}</td><td>{_e(flags)}</td></tr>"
    )


def _envs(envs: list[dict[str, Any]]) -> str:
    header = ["environment", "prefix", "python", "interpreters", "packages", ""]
    ordered = sorted(envs, key=lambda e: (str(e.get("kind")), str(e.get("prefix"))))
    return _table(header, map(_env_row, ordered), "envs")


def _state(interp: Json, path: object) -> str:
    if interp.get("imported") == path:
        return '<td class="winner">imported</td>'
    if path in (interp.get("shadowed") or ()):
        return '<td class="shadowed">shadowed</td>'
    return '<td class="unseen">not on its path</td>'


def _copy_head(copy: Json, interps: list[Json]) -> str:
    path = copy.get("path")
    wins = any(i.get("imported") == path for i in interps)
    loses = any(path in (i.get("shadowed") or ()) for i in interps)
    cls = "winner" if wins else "shadowed" if loses else ""
    return (
        f'<th class="copy {cls}" title="{_e(path)}">{_env_label(copy.get("env"))}<br>'
        f"{_e(copy.get('version'))} · {_e(copy.get('manager'))} · {_e(copy.get('format'))}</th>"
    )


def _project(found: Json) -> str:
    copies = sorted(
        found.get("copies") or (), key=lambda c: (str(c.get("env", {}).get("kind")), c["path"])
    )
    interps = list(found.get("interpreters") or ())
    head = "".join(_copy_head(c, interps) for c in copies)
    rows = "".join(
        f'<tr class="interp"><th><code>{_e(i.get("executable"))}</code></th>'
        + "".join(_state(i, c.get("path")) for c in copies)
        + "</tr>"
        for i in interps
    )
    if not rows:
        span = len(copies) + 1
        rows = f'<tr><td colspan="{span}" class="none">no interpreter sees two copies</td></tr>'
    name = str(found.get("name"))
    return (
        f'<section class="project" data-name="{_e(name)}"><h3>{_e(name)} '
        f'<span class="sub">{len(copies)} copies</span></h3>'
        f"<table><thead><tr><th>interpreter \\ copy</th>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _projects(projects: list[dict[str, Any]]) -> str:
    if not projects:
        return '<p class="none">Every project has exactly one copy.</p>'
    legend = '<p class="sub">★ the copy each interpreter imports; greyed: shadowed by it.</p>'
    return legend + "".join(map(_project, projects))


def _event_row(ev: Json) -> str:
    kind = str(ev.get("kind"))
    old, new = ev.get("previous_version"), ev.get("version")
    version = f"{_e(old)} → {_e(new or '(removed)')}" if old and old != new else _e(new or old)
    before, manager = ev.get("previous_manager"), ev.get("manager")
    who = f"{_e(before)} → {_e(manager)}" if before and manager and before != manager else ""
    origin = " (found at start-up)" if ev.get("origin") == "reconcile" else ""
    command = f"<br><code>{_e(ev['command'])}</code>" if ev.get("command") else ""
    return (
        f'<tr class="event ev-{_e(kind)}"><td>{_e(str(ev.get("time", ""))[11:19])}</td>'
        f'<td><span class="badge ev">{_e(kind)}</span>{_e(origin)}</td>'
        f"<td><b>{_e(ev.get('name'))}</b></td><td>{version}</td>"
        f"<td>{who or _e(manager or before)}</td><td>{_env_label(ev.get('env'))}{command}</td></tr>"
    )


def _timeline(events: list[dict[str, Any]], since: str) -> str:
    if not events:
        return f'<p class="none">No events in the last {_e(since)}.</p>'
    ordered = sorted(events, key=lambda e: str(e.get("time")), reverse=True)
    rows = []
    for day, evs in groupby(ordered, key=lambda e: str(e.get("time"))[:10]):
        rows.append(f'<tr class="day"><th colspan="6">{_e(day)}</th></tr>')
        rows.extend(map(_event_row, evs))
    return _table(["time (UTC)", "kind", "project", "version", "manager", "where"], rows, "events")


def render_html(data: ReportData) -> str:
    st = data["status"]
    title = f"envwatchd report: {data['host']}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{_e(title)}</h1><p class="sub">generated {_e(data["generated"])} by envwatchd '
        f"{_e(st.get('version'))}, up since {_e(st.get('started'))}</p>"
        f"{_cards(data)}"
        f"<h2>Open conflicts</h2>{_conflicts(data['conflicts'])}"
        f"<h2>Projects with more than one copy</h2>{_projects(data['projects'])}"
        f"<h2>Environments</h2>{_envs(data['envs'])}"
        f"<h2>Events, last {_e(data['since'])}</h2>{_timeline(data['events'], data['since'])}"
        "</body></html>\n"
    )
