"""The step-through player: a sweep's pictures, one node at a time, as one self-contained HTML page.

``draw_steps(y).save_html("sweep.html")`` (or ``Steps._repr_html_`` in Jupyter) shows the graph
with buttons, a slider and the keyboard's arrow keys to step the reverse (or forward) sweep one
node at a time: the node being completed highlighted in the picture, its adjoint (or tangent) and,
at a fan-out node, the sum of its contributions (eq. 5.39), and the matching row of the trace
table highlighted beside it. The table and the pictures show a number only from the step that
computes it (an adjoint; in forward mode a value and its tangent), that step taken from the step
list (``completed_at``), and nothing on the page moves while stepping (what is hidden keeps its
room), nor in the picture: ``one_size`` gives each node one size in every picture, so dot lays them all out alike.
Everything is inline (the SVGs, the style, the script): the file opens offline.

This module lays the page out; the numbers and pictures come from :mod:`autodiff.draw`, which
takes them from the engine's sweeps. The page's script is ``_player.js`` beside this file.
"""
from __future__ import annotations

import html
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = Path(__file__).with_name("_player.js")

#: The most steps (nodes swept) one player holds. It carries one picture of the graph per step, so
#: its size grows as steps x nodes: a chain of 100 nodes gives 10 MB and takes 2.3 s with ``dot``, one
#: of 200 gives 38 MB and 7 s, of 4,000 gave 1 GB in 28 s. Larger sweeps read better as trace tables.
MAX_STEPS = 100

_CSS = """
.cr-player{font-family:Helvetica,Arial,sans-serif;font-size:13px;border:1px solid #cbd5e1;padding:8px;outline:none}
.cr-player:focus{border-color:#f59e0b}
.cr-controls{display:flex;gap:6px;align-items:center;flex-wrap:wrap}
.cr-controls input[type=range]{width:240px}
.cr-counter{display:inline-block;font-variant-numeric:tabular-nums;white-space:nowrap}
.cr-panel{margin:6px 0;padding:6px;background:#fef3c7;font-family:monospace;white-space:pre;line-height:1.4;
overflow:auto}
.cr-body{display:flex;gap:12px;align-items:flex-start;flex-wrap:wrap}
.cr-graph{display:grid}
.cr-frame{grid-area:1/1;align-self:center}
.cr-frame[hidden]{display:block;visibility:hidden}
.cr-graph svg{max-width:100%;height:auto}
.cr-table table{border-collapse:collapse;font-family:monospace}
.cr-table td,.cr-table th{border:1px solid #e2e8f0;padding:2px 6px;text-align:left;white-space:nowrap}
.cr-table tr.cr-row-current td{background:#fde68a}
.cr-table tr td.cr-new{background:#fbbf24}
.cr-table td.cr-hidden{visibility:hidden}
.cr-note{color:#b45309}
"""


@dataclass
class Step:
    """One step of a sweep: the node completed, its number as text, the terms of its sum."""
    node: str           # the node's name, as in the pictures and the trace table
    quantity: str       # "adjoint" or "tangent"
    value: str          # its value, as the pictures print it
    terms: list         # lines: the sum of contributions (eq. 5.39) and its numbers


def check_steps(count, what):
    """Refuse, in one line, a player (or draw_steps) of more than ``MAX_STEPS`` steps, before any work."""
    if count > MAX_STEPS:
        raise ValueError(f"{what}: the sweep has {count:,} steps (one per node), more than a player's limit of "
                         f"{MAX_STEPS} (autodiff.player.MAX_STEPS: it holds a picture of the graph per step); "
                         f"step through a piece of the graph (an intermediate Tensor, a smaller function), or read "
                         f"every step in trace_table(y, mode=...)")


def one_size(frames, measure):
    """Fix each node of a sweep's pictures (graphviz Digraphs, one per step) at the largest size it
    takes in any of them, so that dot lays every picture out alike: the graph stands still while
    stepping, only the text and the highlight change. ``measure``: a Digraph to dot's JSON, called
    once, on every distinct node statement of the sweep side by side."""
    sizing, variants, size = frames[0].copy(), {}, {}
    sizing.body.clear()
    for line in (line for frame in frames for line in frame.body):
        key, _, attributes = line.strip().partition(" ")
        if attributes.startswith("[") and key not in ("graph", "node", "edge"):     # a node statement
            variants.setdefault((key, attributes), f"s{len(variants)}")
    sizing.body.extend(f"\t{sid} {attributes}\n" for (_, attributes), sid in variants.items())
    key_of = {sid: key for (key, _), sid in variants.items()}
    for box in json.loads(measure(sizing)).get("objects", []):
        w, h = size.get(key_of[box["name"]], (0.0, 0.0))
        size[key_of[box["name"]]] = max(w, float(box["width"])), max(h, float(box["height"]))
    for frame in frames:
        for key, (w, h) in size.items():
            frame.node(key, width=f"{w:.4f}", height=f"{h:.4f}", fixedsize="true")


def svg_body(svg: str) -> str:
    """An SVG document without its XML prolog and DOCTYPE, to be put inline in HTML."""
    start = svg.find("<svg")
    if start < 0:
        raise ValueError("svg_body: the text holds no <svg> element")
    return svg[start:]


def _json_for_script(data) -> str:
    """JSON that is safe inside a <script> element (no '</' can close it)."""
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


#: The table's columns that a sweep computes, step by step (the rest are known before it starts).
COMPUTED = {"reverse": ("adjoint",), "forward": ("value", "tangent")}


def completed_at(steps):
    """{node name: the step that completes it}, from ``steps`` (the pictures' own step list): the
    one source of when a number shows, in the table (``appears_at``) and in the pictures."""
    when = {}
    for k, step in enumerate(steps):
        when.setdefault(step.node, k)
    return when


def appears_at(steps, rows):
    """For each table row, the step that completes its node (``completed_at``): its computed cells
    (``COMPUTED``) show from then on, never before the picture has them."""
    for k, (row, step) in enumerate(zip(rows, steps)):
        if "node" in row and str(row["node"]) != step.node:
            raise ValueError(f"player_html: rows must be in step order; row {k} is {row['node']!r}, "
                             f"step {k} completes {step.node!r}")
    when = completed_at(steps)
    return [when.get(str(row.get("node")), k) for k, row in enumerate(rows)]


def table_at(table, steps, k):
    """The trace table as the sweep's step ``k`` leaves it: the computed cells of nodes not yet
    completed blank (the text a picture shows without ``dot``)."""
    computed, when = COMPUTED.get(table.mode, ()), appears_at(steps, table.rows)
    rows = [{c: "" if c in computed and start > k else v for c, v in row.items()}
            for row, start in zip(table.rows, when)]
    return type(table)(table.mode, table.columns, rows)


def _cell(text, step):
    """A table cell; ``step``: the step that computes its number (None: shown throughout). It starts
    as at step 0: hidden, or highlighted if step 0 computes it (the script takes over from there)."""
    if step is None:
        return f"<td>{html.escape(str(text))}</td>"
    state = "cr-new" if step == 0 else "cr-hidden"
    return f'<td data-from="{step}" class="{state}">{html.escape(str(text))}</td>'


def player_html(steps, mode, columns, rows, svgs=None, note=None, standalone=False) -> str:
    """The player as an HTML fragment (``standalone``: a whole page, with keyboard arrows on the
    page). ``steps``: a list of ``Step``; ``rows``: the trace table's rows, one per step, in step
    order; ``svgs``: one SVG document per step, or None (no pictures: the table and the panel
    still step, and ``note`` says why). At most ``MAX_STEPS`` steps."""
    check_steps(len(steps), "player_html")
    if svgs is not None and len(svgs) != len(steps):
        raise ValueError(f"player_html: svgs must hold one picture per step ({len(steps)}), got {len(svgs)}")
    if len(rows) != len(steps):
        raise ValueError(f"player_html: rows must hold one row per step ({len(steps)}), got {len(rows)}")
    n = len(steps)
    pid = f"cr-player-{uuid.uuid4().hex[:12]}"   # unique even across saved notebook outputs
    frames = "" if svgs is None else "".join(
        f'<div class="cr-frame" data-step="{k}"{"" if k == 0 else " hidden"}>{svg_body(s)}</div>'
        for k, s in enumerate(svgs))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    computed = COMPUTED.get(mode, ())
    body = "".join(f'<tr data-step="{k}"' + (' class="cr-row-current">' if k == 0 else ">")
                   + "".join(_cell(r[c], k if c in computed else None) for c in columns) + "</tr>"
                   for k, r in zip(appears_at(steps, rows), rows))
    lines = 1 + max((len(s.terms) for s in steps), default=0)    # the panel's height: its longest step
    counter = len(f"{mode} sweep, step {n} of {n}")
    panel = '<span class="cr-node"></span>: <span class="cr-quantity"></span> <span class="cr-value"></span>' \
            '<span class="cr-terms"></span>'
    data = {"mode": mode, "standalone": standalone,
            "steps": [dict(node=s.node, quantity=s.quantity, value=s.value, terms=s.terms) for s in steps]}
    fragment = f"""<div class="cr-player" id="{pid}" tabindex="0" data-step="0">
<style>{_CSS}</style>
<div class="cr-controls">
<button type="button" data-act="first" title="first step (Home)">&#xAB; first</button>
<button type="button" data-act="prev" title="previous step (left arrow)">&#x25C0; back</button>
<button type="button" data-act="next" title="next step (right arrow)">next &#x25B6;</button>
<button type="button" data-act="last" title="last step (End)">last &#xBB;</button>
<input type="range" class="cr-slider" min="1" max="{n}" value="1" step="1" aria-label="step">
<span class="cr-counter" style="min-width:{counter}ch"></span>
</div>
{f'<p class="cr-note">{html.escape(note)}</p>' if note else ''}
<div class="cr-panel" style="height:{1.4 * lines:.1f}em">{panel}</div>
<div class="cr-body"><div class="cr-graph">{frames}</div>
<div class="cr-table"><table><tr>{head}</tr>{body}</table></div></div>
<script type="application/json" class="cr-data">{_json_for_script(data)}</script>
<script>{_SCRIPT.read_text()}
chainrulePlayer(document.getElementById("{pid}"));</script>
</div>"""
    if not standalone:
        return fragment
    title = f"{mode} sweep, step by step"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
            f"<body>\n<h3>{title}</h3>\n{fragment}\n</body></html>\n")


def inline_only(page: str) -> bool:
    """True when ``page`` loads nothing from elsewhere (no src= or href= to another file or site)."""
    return re.search(r"""\b(?:src|href)\s*=\s*["'](?!#|data:)""", page) is None
