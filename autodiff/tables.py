"""Tables: the trace table of a sweep (Algorithms 1 and 2), and the text / HTML / Markdown rendering
that every table of the toolkit uses (trace tables, gradcheck reports, ``compare``).

- ``trace_table(y, mode)``: the evaluation trace as a textbook prints it.
- ``text_table``, ``html_table``, ``markdown_table``: one row of cells per entry, widths measured
  as displayed (a combining bar, as in ``ā``, takes no room).
"""
from __future__ import annotations

import html
import unicodedata

import numpy as np

from .labels import (MAX_TEXT_NODES, adjoints_of, bar, expression, graph_of, node_names, number_text,
                     partial_texts, seed_of, tangents_of, times, wrt_list)


# --- rendering --------------------------------------------------------------------------------------

def cell_text(v):
    """A number as a table shows it (6 significant digits; inf and nan as words)."""
    if isinstance(v, (float, np.floating)):
        return f"{v:.6g}" if np.isfinite(v) else str(v)
    return str(v)


def display_width(text):
    """How many columns ``text`` takes on screen (combining marks take none); C loops, no Python
    one per character: a table of 10^5 rows is measured in a fraction of a second."""
    if text.isascii():
        return len(text)
    return list(map(unicodedata.combining, text)).count(0)


def text_table(columns, rows, align="left"):
    """Plain-text table. ``align="left"``: cells left-aligned under a rule per column (trace tables);
    ``"right"``: right-aligned under one rule as wide as the header (numbers: gradcheck, compare)."""
    columns = [str(c) for c in columns]
    widths = [max([display_width(c)] + [display_width(r[k]) for r in rows]) for k, c in enumerate(columns)]

    def pad(cell, width):
        space = " " * (width - display_width(cell))
        return cell + space if align == "left" else space + cell

    def line(cells):
        return "  ".join(pad(c, w) for c, w in zip(cells, widths)).rstrip()

    header = line(columns)
    rule = line(["-" * w for w in widths]) if align == "left" else "-" * len(header)
    return "\n".join([header, rule] + [line(r) for r in rows])


def html_table(columns, rows):
    """An HTML table (Jupyter's ``_repr_html_``), every cell escaped."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def markdown_table(columns, rows):
    """A Markdown table (GitHub pipes), pipes in cells escaped."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- trace tables -----------------------------------------------------------------------------------

class TraceTable:
    """An evaluation trace: one row per node, as ``rows`` (dicts), text, Markdown or HTML."""

    def __init__(self, mode, columns, rows):
        self.mode = mode
        self.columns = columns
        self.rows = rows

    def _cells(self):
        return [[str(r[c]) for c in self.columns] for r in self.rows]

    def __str__(self):
        return text_table(self.columns, self._cells())

    def to_markdown(self):
        """The table in Markdown (GitHub pipes)."""
        return markdown_table(self.columns, self._cells())

    def _repr_html_(self):
        return html_table(self.columns, self._cells())


def trace_table(y, mode="forward", wrt=None, names="letters", seed=None, digits=6) -> TraceTable:
    """The evaluation trace of ``y`` as a textbook prints it (Baydin et al.; Algorithms 1 and 2).

    ``mode="forward"``: rows in evaluation order with the primal value v_i, the tangent dv_i (seeded
    with 1 at ``wrt``) and the forward rule applied. ``mode="reverse"``: rows from y back to the
    inputs with the adjoint v̄_i and the reverse rule (a sum over the node's consumers); the last row
    is the derivative with respect to the input.

    Time is linear in the graph (each kind of node's partials are written out by SymPy once), up to
    ``MAX_TEXT_NODES`` nodes; a larger graph is refused in one line before any work.

    >>> from autodiff import Tensor, sin
    >>> x = Tensor(0.5, requires_grad=True, name="x")
    >>> print(trace_table(sin(x) * x, mode="reverse"))
    node  value     adjoint   rule
    ----  --------  --------  ------------------
    y     0.239713  1         ȳ = 1 (seed)
    a     0.479426  0.5       ā = x·ȳ
    x     0.5       0.918217  x̄ = cos(x)·ā + a·ȳ
    """
    if mode not in ("forward", "reverse"):
        raise ValueError(f"trace_table: mode must be 'forward' or 'reverse', got {mode!r}")
    order, ids = graph_of(y, "trace_table", MAX_TEXT_NODES, "tabulate a piece of it (an intermediate Tensor), "
                          "or print_graph(y) for its code alone")
    label = node_names(order, y, names)
    partials = {id(n): partial_texts(n, label) for n in order if n.op is not None}
    rows = []
    if mode == "forward":
        seeds = wrt_list(wrt, order, "trace_table")
        tangents = tangents_of(order, seeds)
        seeded = {id(w) for w in seeds}
        for node in order:
            name = label[id(node)]
            if node.op is None:
                rule = f"d{name} = 1 (seed)" if id(node) in seeded else f"d{name} = 0"
                expr = "input"
            else:
                expr = expression(node, label)
                terms = []
                for k, inp in enumerate(node.inputs):
                    if id(inp) not in tangents:
                        continue
                    p = partials[id(node)][k] if partials[id(node)] else None
                    terms.append(times(p, f"d{label[id(inp)]}") if p else f"jvp_{node.op.name}(d{label[id(inp)]})")
                rule = f"d{name} = " + (" + ".join(terms) if terms else "0")
            t = tangents.get(id(node))
            rows.append({"node": name, "expression": expr, "value": number_text(node._value, digits),
                         "tangent": number_text(0 if t is None else t, digits), "rule": rule})
        return TraceTable("forward", ["node", "expression", "value", "tangent", "rule"], rows)

    consumers = {}
    for node in order:
        for k, inp in enumerate(node.inputs):
            if id(inp) in ids:
                consumers.setdefault(id(inp), []).append((node, k))
    adjoints = adjoints_of(order, ids, y, seed_of(y, seed, "trace_table"))
    for node in reversed(order):
        name = label[id(node)]
        if node is y:
            total = "1" if seed is None else "seed"
        else:
            terms = []
            for consumer, k in consumers.get(id(node), []):
                p = partials[id(consumer)][k] if partials[id(consumer)] else None
                cbar = bar(label[id(consumer)])
                terms.append(times(p, cbar) if p else f"vjp_{consumer.op.name}({cbar})")
            total = " + ".join(terms) if terms else "0"
        if node._hooks:        # register_hook's functions replaced the sum (the adjoint shown is theirs)
            total = f"hook({total})"
        rule = f"{bar(name)} = {total}" + (" (seed)" if node is y and seed is None else "")
        a = adjoints.get(id(node))
        rows.append({"node": name, "value": number_text(node._value, digits),
                     "adjoint": number_text(0 if a is None else a, digits), "rule": rule})
    return TraceTable("reverse", ["node", "value", "adjoint", "rule"], rows)
