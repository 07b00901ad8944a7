"""Pictures of one recorded graph (graphviz): the whole graph, and the sweep step by step.

Everything here shows the graph the engine recorded and the numbers its sweeps produce; nothing is
recomputed another way for display. Adjoints come from ``reverse_sweep`` and tangents from
``forward_sweep``, the same functions ``backward()`` and ``jvp`` use; the step-by-step pictures
collect each contribution through the sweeps' ``on_edge`` hook (eq. 5.39's terms).

- ``draw(y)``: a ``graphviz.Digraph`` in the style of the source material's Fig. 5.8, with values,
  adjoints (``show=("value", "grad")``) and tangents (``show=("value", "tangent"), wrt=x``).
- ``draw_steps(y, mode)``: one picture per node swept, the node being processed highlighted.
- ``save(graph, path)``: SVG or PNG through the ``dot`` program, with the DOT source beside it.
- ``has_dot()``: whether Graphviz's ``dot`` program is there, the one test of it (the text fallback
  uses it, and so do the tests that skip without it).

Sizes: a picture holds at most ``MAX_NODES`` nodes (past ``max_nodes``, 200 by default, the earliest
collapse into one summary node), ``dot`` lays out at most ``MAX_RENDER_NODES``, and a sweep drawn step
by step has at most ``player.MAX_STEPS`` nodes; past a limit the view refuses in one line, before the
work, saying the way out (``max_nodes=``, a piece of the graph, the text views).

The graphviz Python package is imported when a picture is first asked for, not with ``autodiff``:
without it gradients work, and drawing raises ``GraphvizNotFound`` saying ``pip install graphviz``.

The other views of the same graph: ``trace_table`` (:mod:`autodiff.tables`) and ``graph_code`` /
``print_graph`` (:mod:`autodiff.labels`).
"""
from __future__ import annotations

import functools
import html
import shutil
from collections import Counter
from pathlib import Path

from .labels import (adjoints_of, check_size, constant_text, expression, graph_of, local_derivative, node_names,
                     number_text, partial_texts, seed_of, tangents_of, wrt_list)
from .player import COMPUTED, Step, check_steps, completed_at, one_size, player_html, table_at
from .tables import trace_table

INSTALL_DOT = "install Graphviz's 'dot' program (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"
INSTALL_PACKAGE = "install the graphviz Python package (pip install graphviz)"

#: The most nodes one picture holds: ``max_nodes`` may not exceed it, and ``max_nodes=None`` (every
#: node) is refused on a larger graph. Building a picture is linear (10^4 nodes: 0.5 s); no one
#: reads a drawing of more, and the text views (print_graph, trace_table) show every node.
MAX_NODES = 20_000
#: The most nodes ``dot`` is asked to lay out (``save``, a notebook's display, the player): its
#: layout grows faster than the graph (a chain of 3,000 nodes: 0.9 s, of 10^4: 5 s; a wider graph
#: of 3,000: 3 s on two cores). A bigger picture keeps its DOT source (``graph.source``).
MAX_RENDER_NODES = 2_000


class GraphvizNotFound(RuntimeError):
    """Graphviz is missing: its ``dot`` program (the picture cannot be rendered; its DOT source can),
    or its Python package (``GraphvizPackageMissing``: no picture can be built)."""


class GraphvizPackageMissing(GraphvizNotFound, ImportError):
    """The graphviz Python package cannot be imported: drawing needs it (``pip install graphviz``)."""


def has_dot() -> bool:
    """Whether Graphviz's ``dot`` program is on PATH (the one the graphviz package runs)."""
    return shutil.which("dot") is not None


def _graphviz():
    """The graphviz package, imported at the first picture; a missing one says how to install it."""
    try:
        import graphviz
    except ImportError as exc:
        raise GraphvizPackageMissing(f"drawing a graph needs the graphviz Python package: {INSTALL_PACKAGE} "
                                     f"({exc})") from None
    return graphviz


def _too_big_to_render(graph, what):
    """Why ``graph`` is not given to ``dot`` (more than ``MAX_RENDER_NODES`` nodes), or None."""
    count = getattr(graph, "node_count", 0)
    if count <= MAX_RENDER_NODES:
        return None
    return (f"cannot render {what}: the picture has {count:,} nodes, more than dot lays out in seconds "
            f"(autodiff.draw.MAX_RENDER_NODES = {MAX_RENDER_NODES:,}); draw it with max_nodes={MAX_RENDER_NODES:,} "
            f"or fewer (the earliest nodes collapse into one), or keep its DOT source (graph.source)")


def _pipe(graph, fmt, what, encoding=None):
    """``graph`` rendered by ``dot``; without ``dot``, ``GraphvizNotFound`` naming ``what``; a picture
    past ``MAX_RENDER_NODES``: ValueError."""
    refusal = _too_big_to_render(graph, what)
    if refusal:
        raise ValueError(refusal)
    if not has_dot():
        raise GraphvizNotFound(f"cannot render {what}: {INSTALL_DOT}")
    return graph.pipe(format=fmt, encoding=encoding)


def _fallback_html(text):
    """What a notebook shows in place of a picture when ``dot`` is missing: text, and how to install it."""
    return (f"<pre>{html.escape(text)}</pre>"
            f"<p><em>(no picture: {html.escape(INSTALL_DOT)}; then run the cell again)</em></p>")


@functools.cache
def _picture_class():
    """``Picture``, built at the first picture (it subclasses ``graphviz.Digraph``)."""

    class Picture(_graphviz().Digraph):
        """A ``graphviz.Digraph`` that a notebook can always show: rendered by ``dot`` when it is
        installed; otherwise the graph as straight-line code and its trace table (eq. 5.38 and the
        sweep's numbers), with one line saying how to install Graphviz (``fallback_of()``: that text).
        ``node_count``: the nodes drawn; past ``MAX_RENDER_NODES`` it is shown as one line saying so."""

        node_count = 0

        def fallback_of(self):
            return self.source

        def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
            refusal = _too_big_to_render(self, "this picture")
            if refusal:
                return {"text/plain": refusal}
            if has_dot():
                return super()._repr_mimebundle_(include, exclude, **kwargs)
            text = self.fallback_of()
            return {"text/html": _fallback_html(text), "text/plain": f"{text}\n(no picture: {INSTALL_DOT})"}

    Picture.__module__, Picture.__qualname__ = __name__, "Picture"   # pickled and printed as autodiff.draw.Picture
    return Picture


def __getattr__(name):
    if name == "Picture":
        return _picture_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- pictures ----------------------------------------------------------------------------------

_STYLE = {"leaf": dict(shape="ellipse", style="filled", fillcolor="#dbeafe"),
          "op": dict(shape="box", style="rounded,filled", fillcolor="#f8fafc"),
          "const": dict(shape="plaintext", fontcolor="#64748b"),
          "summary": dict(shape="note", style="filled", fillcolor="#fef3c7"),
          "current": dict(style="rounded,filled,bold", fillcolor="#fde68a", penwidth="2")}


def _box_text(node, name, names, show, adjoint, tangent, digits, extra=None):
    """The text in a node's box: its line of eq. 5.38, shape, and the numbers asked for."""
    lines = [name if node.op is None else f"{name} = {expression(node, names)}"]
    if node.size != 1:
        lines.append(f"{node.shape} {node.dtype}")
    if "value" in show:
        lines.append(f"value {number_text(node._value, digits)}")
    if "grad" in show and adjoint is not None:
        lines.append(f"adjoint {number_text(adjoint, digits)}")
    if "tangent" in show and tangent is not None:
        lines.append(f"tangent {number_text(tangent, digits)}")
    if extra:
        lines.extend(extra)
    return "\n".join(lines)


#: The most edges drawn from the summary node of the collapsed nodes; further nodes fed by them say so
#: in their box. dot lays out 200 edges from one node in 10 s, 20 in a twentieth of a second.
_SUMMARY_EDGES = 20


def _keep_nodes(order, max_nodes):
    """The nodes drawn: all, or the ``max_nodes`` created last (nearest the output)."""
    if max_nodes is None or len(order) <= max_nodes:
        return order, []
    return order[-max_nodes:], order[:-max_nodes]


def _edge_label(node, i, label, partials, digits):
    """The local derivative on an edge (eq. 5.40), e.g. ``dd/dc = exp(c) = 2.033``; "" when not scalar."""
    value = local_derivative(node, i)
    if value is None:
        return ""
    name, parent = label[id(node)], label[id(node.inputs[i])]
    text = number_text(value, digits)
    symbolic = partials[i] if partials else None
    middle = f"{symbolic} = " if symbolic and symbolic != text else ""
    return f"d{name}/d{parent} = {middle}{text}"


def _check_max_nodes(max_nodes, count, what):
    """Refuse, before any work, a picture of more than ``MAX_NODES`` nodes (asked for, or all)."""
    if max_nodes is not None and max_nodes > MAX_NODES:
        raise ValueError(f"{what}: max_nodes={max_nodes:,} is more than a picture's limit of {MAX_NODES:,} "
                         f"(autodiff.draw.MAX_NODES); pass max_nodes={MAX_NODES:,} or fewer (the earlier nodes "
                         f"collapse into one summary node)")
    if max_nodes is None:
        check_size(count, MAX_NODES, what, f"pass max_nodes={MAX_NODES:,} or fewer (the earlier nodes collapse "
                   f"into one summary node), or see every node in print_graph(y) / trace_table(y)",
                   "autodiff.draw.MAX_NODES")


def _digraph(order, y, *, names, show, adjoints, tangents, digits, rankdir, max_nodes, current=None,
             extra_labels=None, edge_labels=False, label=None, unvalued=()):
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir must be one of LR, TB, RL, BT; got {rankdir!r}")
    label = label or node_names(order, y, names)
    kept, hidden = _keep_nodes(order, max_nodes)
    hidden_ids = {id(n) for n in hidden}
    first = len(order) - len(kept)
    key = {id(n): f"n{first + k}" for k, n in enumerate(kept)}  # stable DOT ids
    dot = _picture_class()(graph_attr=dict(rankdir=rankdir), node_attr=dict(fontname="Helvetica", fontsize="11"))
    if hidden:
        counts = Counter(n.op.name if n.op else "input" for n in hidden)
        summary = ", ".join(f"{op} x{k}" for op, k in counts.most_common(6))
        dot.node("hidden", f"... {len(hidden):,} earlier nodes\n({summary})", **_STYLE["summary"])
    constants = summary_edges = 0
    for node in kept:
        nid = id(node)
        kind = "leaf" if node.op is None else "op"
        style = dict(_STYLE[kind])
        if current is not None and node is current:
            style.update(_STYLE["current"])
        extra = list((extra_labels or {}).get(nid) or [])
        edges_from_hidden = any(id(inp) in hidden_ids for inp in node.inputs)
        if edges_from_hidden and summary_edges >= _SUMMARY_EDGES:   # dot's layout slows to seconds past a few
            extra.append("(inputs from the earlier nodes)")
            edges_from_hidden = False
        shows = [s for s in show if s != "value"] if nid in unvalued else show    # its value not yet computed
        dot.node(key[nid], _box_text(node, label[nid], label, shows, adjoints.get(nid), tangents.get(nid), digits,
                                       extra), **style)
        partials = partial_texts(node, label) if edge_labels and node.op is not None else None
        for i, inp in enumerate(node.inputs):
            if id(inp) in hidden_ids:
                continue
            elif id(inp) in label:
                text = _edge_label(node, i, label, partials, digits) if edge_labels else ""
                edge_style = dict(label=text, fontsize="9", fontcolor="#1d4ed8") if text else {}
                dot.edge(key[id(inp)], key[nid], **edge_style)
            else:  # a constant input
                constants += 1
                cid = f"const{constants}"
                dot.node(cid, constant_text(inp._value, digits), **_STYLE["const"])
                dot.edge(cid, key[nid], style="dashed", color="#94a3b8")
        if edges_from_hidden:
            summary_edges += 1
            dot.edge("hidden", key[nid], style="dashed")
    dot.node_count = len(kept) + constants + bool(hidden)
    return dot


def draw(y, show=("value", "grad"), rankdir="LR", names=None, wrt=None, seed=None, max_nodes=200, digits=4,
         edge_labels=False):
    """A picture of the graph that produced ``y``: one node per leaf and per recorded op.

    ``show`` picks what each node lists: ``"value"``, ``"grad"`` (the adjoint dy/dv from a reverse
    sweep, the one ``y.backward()`` runs, labelled "adjoint" as in the trace tables; ``seed=`` for
    non-scalar y) and ``"tangent"`` (from a forward sweep seeded with 1 at ``wrt``).
    ``names="letters"`` names unnamed nodes a, b, c as in eq. 5.38. ``edge_labels=True`` writes
    each scalar edge's local derivative on it (eq. 5.40: ``dd/dc = exp(c) = 2.033``), the factor
    the chain rule multiplies there. Past ``max_nodes`` the earliest nodes are collapsed into one
    summary node; ``max_nodes`` (or the whole graph, with ``max_nodes=None``) may be at most
    ``MAX_NODES``, and ``dot`` renders at most ``MAX_RENDER_NODES``: past them, a one-line
    ValueError. Returns a ``Picture`` (a ``graphviz.Digraph``, shown inline in Jupyter, as text
    when ``dot`` is missing; ``save`` renders it to SVG or PNG).

    >>> from autodiff import Tensor, sin
    >>> x = Tensor(0.5, requires_grad=True, name="x")
    >>> dot = draw(sin(x) * x, names="letters")
    >>> "a = sin" in dot.source and "adjoint 1" in dot.source
    True
    """
    show = (show,) if isinstance(show, str) else tuple(show)
    unknown = set(show) - {"value", "grad", "tangent"}
    if unknown:
        raise ValueError(f"show may hold 'value', 'grad' and 'tangent'; got {sorted(unknown)}")
    order, ids = graph_of(y, "draw")
    _check_max_nodes(max_nodes, len(order), "draw")
    adjoints = adjoints_of(order, ids, y, seed_of(y, seed, "draw")) if "grad" in show else {}
    tangents = tangents_of(order, wrt_list(wrt, order, "draw")) if "tangent" in show else {}
    picture = _digraph(order, y, names=names, show=show, adjoints=adjoints, tangents=tangents, digits=digits,
                       rankdir=rankdir, max_nodes=max_nodes, edge_labels=edge_labels)
    mode = "forward" if "tangent" in show else "reverse"
    picture.fallback_of = lambda: _text_views(y, mode, wrt, names, seed, max_nodes)
    return picture


def _text_views(y, mode, wrt, names, seed, max_nodes, table=None):
    """The graph as straight-line code (eq. 5.38) and, for a graph of at most ``max_nodes`` lines
    whose sweep needs nothing more (a seed, wrt=), its trace table (``table``, else the whole sweep's):
    what needs no ``dot``. Only the last ``max_nodes`` lines are written out (linear time)."""
    order, _ = graph_of(y, "draw")
    label = node_names(order, y, names)
    ops = [n for n in order if n.op is not None]
    if max_nodes is not None and len(ops) > max_nodes:
        return "\n".join([f"... {len(ops) - max_nodes:,} earlier lines"]
                         + [f"{label[id(n)]} = {expression(n, label)}" for n in ops[-max_nodes:]])
    code = "\n".join(f"{label[id(n)]} = {expression(n, label)}" for n in ops)
    try:
        table = table or trace_table(y, mode=mode, wrt=wrt, names=names, seed=seed)
    except ValueError:   # a non-scalar y without seed=, tangents without wrt=: the code alone
        return code
    return f"{code}\n\n{table}"


def save(graph, path, format=None) -> Path:
    """Render ``graph`` (a Digraph) to ``path`` (.svg or .png) with ``dot``; the DOT source is always
    written beside it (``path`` with suffix .dot). Without ``dot``, raises ``GraphvizNotFound``
    saying how to install it, after writing the DOT source; so does a picture of more than
    ``MAX_RENDER_NODES`` nodes, with a ValueError."""
    path = Path(path)
    fmt = format or path.suffix.lstrip(".") or "svg"
    if fmt not in ("svg", "png", "pdf", "dot"):
        raise ValueError(f"save: format must be svg, png, pdf or dot; got {fmt!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    dot_path = path.with_suffix(".dot")
    dot_path.write_text(graph.source)
    if fmt == "dot":
        return dot_path
    refusal = _too_big_to_render(graph, path.name)
    if refusal:
        raise ValueError(f"{refusal}; it was saved to {dot_path}")
    try:
        data = _pipe(graph, fmt, path.name)
    except GraphvizNotFound as exc:
        raise GraphvizNotFound(f"{exc}. The DOT source was saved to {dot_path} (and is in graph.source).") from None
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


# --- step by step ------------------------------------------------------------------------------

class Steps(list):
    """The pictures of a sweep, one per node swept (a list of ``Picture``), with what each step
    completes (``steps``: a ``player.Step`` each) and the sweep's trace table (``table``), one row
    per step. ``save(folder)`` writes step_001.svg, ...; ``save_html(path)`` the step-through
    player; in Jupyter the player shows inline (without ``dot``: its panel and table, no pictures)."""

    def __init__(self, graphs, mode, steps, table):
        super().__init__(graphs)
        if not len(graphs) == len(steps) == len(table.rows):
            raise ValueError(f"Steps: graphs, steps and table rows must be as many; got {len(graphs)}, {len(steps)} "
                             f"and {len(table.rows)}")
        self.mode = mode
        self.steps = list(steps)
        self.table = table

    def save(self, folder, format="svg"):
        """Render every step to ``folder/step_NNN.<format>``; returns the paths."""
        folder = Path(folder)
        return [save(g, folder / f"step_{k:03d}.{format}", format) for k, g in enumerate(self, start=1)]

    def player(self, standalone=False):
        """The step-through player as HTML (``autodiff.player``); needs ``dot`` (GraphvizNotFound).
        At most ``player.MAX_STEPS`` steps (refused before any picture is rendered)."""
        check_steps(len(self), "player")
        svgs = [_pipe(g, "svg", "the player's pictures", encoding="utf-8") for g in self]
        return player_html(self.steps, self.mode, self.table.columns, self.table.rows, svgs, standalone=standalone)

    def save_html(self, path) -> Path:
        """Write the player to ``path`` as one self-contained HTML page (pictures, style and script
        inline: it opens offline). Without ``dot``, raises ``GraphvizNotFound`` and writes nothing."""
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ValueError(f"save_html: path must end in .html, got {path.name!r}")
        page = self.player(standalone=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
        return path

    def _repr_html_(self):
        try:
            return self.player()
        except GraphvizNotFound:
            return player_html(self.steps, self.mode, self.table.columns, self.table.rows, None,
                               note=f"No pictures: {INSTALL_DOT}. The table and the sums still step.")


def draw_steps(y, mode="reverse", wrt=None, names="letters", seed=None, rankdir="LR", max_nodes=200, digits=4,
               edge_labels=False):
    """The sweep as a sequence of pictures, one per node in the order the sweep visits them.

    Reverse mode (Algorithm 2) visits y first and the inputs last; each picture highlights the node
    whose adjoint is being completed and lists its terms, e.g. at a fan-out node
    ``dy/da = dy/dc dc/da + dy/db db/da`` (eq. 5.39) with their values. Forward mode visits the
    inputs first and lists the terms of each tangent; ``edge_labels=True`` as in ``draw``. Returns
    ``Steps`` (a list of Digraphs, with the trace table and the player); with ``dot``, each node has
    one size (its largest) in every picture, so the graph stands still while stepping. One picture
    per node makes the work grow as nodes squared: a graph of more than ``player.MAX_STEPS`` nodes
    is refused in one line before any (``trace_table`` shows every step of any graph as text).

    >>> from autodiff import Tensor, sin
    >>> x = Tensor(0.5, requires_grad=True, name="x")
    >>> a = sin(x)
    >>> len(draw_steps(a * a + a))   # x, a, a*a and the sum: four nodes, four steps
    4
    """
    if mode not in ("reverse", "forward"):
        raise ValueError(f"draw_steps: mode must be 'reverse' or 'forward', got {mode!r}")
    order, ids = graph_of(y, "draw_steps")
    check_steps(len(order), "draw_steps")
    _check_max_nodes(max_nodes, len(order), "draw_steps")
    label = node_names(order, y, names)
    terms = {}
    if mode == "reverse":
        def record(node, i, inp, c):
            terms.setdefault(id(inp), []).append((node, c))
        values = adjoints_of(order, ids, y, seed_of(y, seed, "draw_steps"), on_edge=record)
        visit, show, quantity = list(reversed(order)), ("value", "grad"), "adjoint"
    else:
        def record(node, i, inp, c):
            terms.setdefault(id(node), []).append((inp, c))
        values = tangents_of(order, wrt_list(wrt, order, "draw_steps"), on_edge=record)
        visit, show, quantity = order, ("value", "tangent"), "tangent"
    graphs, steps, extra = [], [], []
    for node in visit:
        nid = id(node)
        extra.append(_step_terms(node, terms.get(nid, []), label, mode, values.get(nid), digits))
        if mode == "reverse" and node._hooks and nid in values:    # register_hook's functions replaced it
            extra[-1].append(f"after the hook: {number_text(values[nid], digits)}")
        steps.append(Step(label[nid], quantity, number_text(values.get(nid, 0), digits), [t for t in extra[-1] if t]))
    # Each picture shows a computed number (COMPUTED: forward, a value too) from the step the step list says.
    when, table = completed_at(steps), trace_table(y, mode=mode, wrt=wrt, names=names, seed=seed)
    for k, (node, lines) in enumerate(zip(visit, extra)):
        later = {id(n) for n in order if when.get(label[id(n)], k + 1) > k}
        done = {nid: v for nid, v in values.items() if nid not in later}
        graphs.append(_digraph(order, y, names=names, show=show, adjoints=done if mode == "reverse" else {},
                               tangents=done if mode == "forward" else {}, digits=digits, rankdir=rankdir,
                               max_nodes=max_nodes, current=node, extra_labels={id(node): lines}, label=label,
                               edge_labels=edge_labels, unvalued=later if "value" in COMPUTED[mode] else ()))
        graphs[-1].fallback_of = lambda k=k: _text_views(y, mode, wrt, names, seed, max_nodes,
                                                         table_at(table, steps, k))
    if has_dot():   # one size per node, so every picture has the same layout (without dot: none to lay out)
        one_size(graphs, lambda g: _pipe(g, "json", "the pictures' sizes", encoding="utf-8"))
    return Steps(graphs, mode, steps, table)


def _step_terms(node, terms, label, mode, total, digits):
    name = label[id(node)]
    if mode == "reverse":
        if not terms:
            return ["seed: dy/dy = 1" if total is not None and node.op is not None or not terms else ""]
        symbolic = " + ".join(f"dy/d{label[id(c)]}·d{label[id(c)]}/d{name}" for c, _ in terms)
        numbers = " + ".join(number_text(v, digits) for _, v in terms)
        total_text = f" = {number_text(total, digits)}" if len(terms) > 1 else ""
        return [f"dy/d{name} = {symbolic}", f"= {numbers}{total_text}"]
    if node.op is None:
        return [f"d{name} = 1 (seed)" if total is not None else f"d{name} = 0"]
    if not terms:
        return [f"d{name} = 0"]
    symbolic = " + ".join(f"d{name}/d{label[id(i)]}·d{label[id(i)]}" for i, _ in terms)
    numbers = " + ".join(number_text(v, digits) for _, v in terms)
    return [f"d{name} = {symbolic}", f"= {numbers}" + (f" = {number_text(total, digits)}" if len(terms) > 1 else "")]
