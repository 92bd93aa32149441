"""Write the report: ``report.md`` and an ``index.html`` that opens offline (figures inlined)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from cfglab._io import write_text_atomic

__all__ = ["write_markdown", "write_html"]

from cfglab.report.base import LABELS as _STATUS

_CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
figure{margin:1em 0}img{max-width:100%}figcaption{font-size:.92em;color:#333}
.badge{display:inline-block;padding:.1em .5em;border-radius:.3em;font-size:.8em;color:#fff}
.supported{background:#2a7}.contradicted{background:#c33}.inconclusive{background:#888}
.not-available,.skipped{background:#b80}.error{background:#c33}pre{background:#f4f4f4;padding:.6em;overflow-x:auto;font-size:.8em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;font-size:.9em}"""


def _label(section: dict) -> str:
    if section["status"] != "ok":
        return section["status"]
    return _STATUS[section["supported"]]


def _timing(report: dict) -> str:
    cpu = report.get("cpu_s", {})
    return (f"wall time {report['wall_s']:.0f} s (CPU: {cpu.get('tasks_s', 0):.0f} s in sweep tasks, "
            f"{cpu.get('main_process_s', 0):.0f} s in the main process)")


def write_markdown(path: Path, report: dict) -> None:
    """``report.md``: the summary table, then per section the claim, sentence and figures."""
    lines = [f"# {report['title']}", "", f"Profile `{report['profile']}`, {_timing(report)}, "
             f"{report['created']}.", "", "| section | verdict |", "|---|---|"]
    lines += [f"| {s['title']} | {_label(s)} |" for s in report["sections"].values()]
    for s in report["sections"].values():
        lines += ["", f"## {s['title']}", "", f"*Claim.* {s['claim']}", "", f"**Verdict: {_label(s)}.**"]
        if s.get("rule"):
            lines += ["", f"*Rule.* {s['rule']}"]
        if s.get("sentence") and not s.get("figures"):
            lines += ["", s["sentence"]]
        for fig in s.get("figures", []):
            lines += ["", f"![{fig['path']}]({fig['path']})", "", f"*{fig['caption']}*"]
        for note in s.get("notes", []):
            lines += ["", f"> note: {note}"]
        if s.get("error"):
            lines += ["", "```", s["error"].rstrip(), "```"]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _img(root: Path, rel: str) -> str:
    data = base64.b64encode((root / rel).read_bytes()).decode()
    return f'<img alt="{html.escape(rel)}" src="data:image/png;base64,{data}">'


def _section_html(root: Path, s: dict) -> list[str]:
    label = _label(s)
    out = [f'<h2 id="{s["name"]}">{html.escape(s["title"])} '
           f'<span class="badge {label.lower().replace(" ", "-")}">{html.escape(label)}</span></h2>',
           f"<p><em>Claim.</em> {html.escape(s['claim'])}</p>"]
    if s.get("rule"):
        out.append(f"<p><em>Rule.</em> {html.escape(s['rule'])}</p>")
    if s.get("sentence") and not s.get("figures"):
        out.append(f"<p>{html.escape(s['sentence'])}</p>")
    for fig in s.get("figures", []):
        out.append(f"<figure>{_img(root, fig['path'])}<figcaption>{html.escape(fig['caption'])}"
                   "</figcaption></figure>")
    out += [f"<p><small>note: {html.escape(n)}</small></p>" for n in s.get("notes", [])]
    if s.get("error"):
        out.append(f"<pre>{html.escape(s['error'])}</pre>")
    return out


def write_html(path: Path, report: dict) -> None:
    """``index.html``: self-contained (inline CSS, figures as base64 data URIs, no scripts)."""
    rows = "".join(f'<tr><td><a href="#{s["name"]}">{html.escape(s["title"])}</a></td>'
                   f"<td>{html.escape(_label(s))}</td></tr>" for s in report["sections"].values())
    body = [f"<h1>{html.escape(report['title'])}</h1>",
            f"<p>Profile <code>{report['profile']}</code>, {html.escape(_timing(report))}, "
            f"{html.escape(report['created'])}. Numbers: <code>results.json</code>.</p>",
            f"<table><tr><th>section</th><th>verdict</th></tr>{rows}</table>"]
    for s in report["sections"].values():
        body += _section_html(path.parent, s)
    page = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(report['title'])}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
    write_text_atomic(path, page)
