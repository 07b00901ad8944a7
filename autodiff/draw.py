"""Views of one recorded graph: pictures (graphviz), step-by-step sweeps, trace tables, code.

Everything here shows the graph the engine recorded and the numbers its sweeps produce; nothing is
recomputed another way for display. Adjoints come from ``reverse_sweep`` and tangents from
``forward_sweep``, the same functions ``backward()`` and ``jvp`` use; the step-by-step pictures
collect each contribution through the sweeps' ``on_edge`` hook (eq. 5.39's terms).

- ``draw(y)``: a ``graphviz.Digraph`` in the style of the source material's Fig. 5.8, with values,
  adjoints (``show=("value", "grad")``) and tangents (``show=("value", "tangent"), wrt=x``).
- ``draw_steps(y, mode)``: one picture per node swept, the node being processed highlighted.
- ``trace_table(y, mode)``: the evaluation trace as a textbook prints it (Algorithms 1 and 2).
- ``graph_code(y)`` / ``print_graph(y)``: the graph as straight-line code, the form of eq. 5.38.
- ``save(graph, path)``: SVG or PNG through the ``dot`` program, with the DOT source beside it.
"""
from __future__ import annotations

import html
import string
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

from .sweep import forward_sweep, reverse_sweep, toposort
from .tensor import Tensor

INSTALL_DOT = "install Graphviz's 'dot' program (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"


class GraphvizNotFound(RuntimeError):
    """The ``dot`` program is missing: the picture cannot be rendered (its DOT source can)."""


# --- naming and formatting ---------------------------------------------------------------------

def _graph(y, max_nodes=None):
    if not isinstance(y, Tensor):
        raise TypeError(f"expected a Tensor, got {type(y).__name__}")
    order, ids = toposort([y])
    if not order:  # an untracked Tensor: draw it alone
        order, ids = [y], {id(y)}
    return order, ids


def node_names(order, y, names="letters"):
    """Display names for the nodes: the user's ``name``; else, with ``names="letters"``, a, b, c ...
    in program order (as eq. 5.38), the output ``y``; with ``names=None``, ``v1, v2, ...``."""
    if names not in ("letters", None):
        raise ValueError(f"names must be 'letters' or None, got {names!r}")
    taken = {n.name for n in order if n.name}
    out = {}
    letters = iter([c for c in string.ascii_lowercase if c not in taken and c != "y"])
    unnamed_leaf = 0
    count = 0
    for node in order:
        if node.name:
            out[id(node)] = node.name
        elif node.op is None:
            out[id(node)] = "x" if unnamed_leaf == 0 and "x" not in taken else f"x{unnamed_leaf}"
            unnamed_leaf += 1
        elif node is y and names == "letters" and "y" not in taken:
            out[id(node)] = "y"
        else:
            count += 1
            out[id(node)] = next(letters, f"v{count}") if names == "letters" else f"v{count}"
    return out


def _number(v, digits):
    v = np.asarray(v)
    if v.size == 1:
        x = v.item()
        return f"{x + 0.0:.{digits}g}" if isinstance(x, float) else str(x)   # + 0.0: no "-0"
    if v.size <= 4:
        return "[" + ", ".join(f"{float(e) + 0.0:.{digits}g}" for e in v.ravel()) + "]"
    return f"{v.dtype} {v.shape}"


def _constant_text(value, digits=6):
    v = np.asarray(value)
    if v.size == 1 and v.ndim == 0:
        x = v.item()
        return f"{x:.{digits}g}" if isinstance(x, float) else str(x)
    return f"const{v.shape}"


def _index_text(index):
    parts = []
    for item in index:
        if isinstance(item, slice):
            text = f"{'' if item.start is None else item.start}:{'' if item.stop is None else item.stop}"
            parts.append(text + ("" if item.step is None else f":{item.step}"))
        elif item is None:
            parts.append("None")
        elif item is Ellipsis:
            parts.append("...")
        elif isinstance(item, np.ndarray):
            parts.append(str(item.tolist()) if item.size <= 6 else f"{item.dtype}{item.shape}")
        else:
            parts.append(str(item))
    return ", ".join(parts)


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}


def expression(node, names):
    """The right-hand side of ``node``'s line in eq. 5.38 form, e.g. ``sin(x)`` or ``a ** 2``."""
    args = [names.get(id(i)) or _constant_text(i._value) for i in node.inputs]
    name = node.op.name
    params = node.params
    if name in _INFIX:
        return f"{args[0]} {_INFIX[name]} {args[1]}"
    if name == "pow_const":
        return f"{args[0]} ** {params['p']:g}"
    if name == "neg":
        return f"-{args[0]}"
    if name == "getitem":
        return f"{args[0]}[{_index_text(params['index'])}]"
    if name == "where":
        return f"where(cond, {args[0]}, {args[1]})"
    extras = [f"{k}={v}" for k, v in params.items() if v is not None and not (k == "keepdims" and v is False)
              and not isinstance(v, np.ndarray)]
    return f"{name}({', '.join(args + extras)})"


def graph_code(y, names="letters") -> str:
    """The recorded graph as straight-line code, one primitive per line (eq. 5.38).

    >>> from autodiff import Tensor
    >>> from autodiff.examples import eq_5_36
    >>> print(graph_code(eq_5_36(Tensor(0.5, requires_grad=True, name="x"))))
    a = sin(x)
    b = a ** 2
    c = a + b
    d = exp(c)
    e = exp(x)
    f = e ** 2
    g = e + f
    h = sin(g)
    y = d + h
    """
    order, _ = _graph(y)
    label = node_names(order, y, names)
    return "\n".join(f"{label[id(n)]} = {expression(n, label)}" for n in order if n.op is not None)


def print_graph(y, names="letters", file=None) -> None:
    """Print ``graph_code(y)``: the graph as straight-line code, the form of eq. 5.38."""
    print(graph_code(y, names), file=file)


# --- sweeps for display ------------------------------------------------------------------------

def _seed_of(y, seed, what):
    if seed is not None:
        return np.broadcast_to(np.asarray(seed, dtype=y.dtype), y.shape)
    if y.size != 1:
        raise ValueError(f"{what}: adjoints need a scalar output or seed= (y has shape {y.shape})")
    return np.ones(y.shape, dtype=y.dtype)


def _wrt_list(wrt, order, what):
    if wrt is None:
        leaves = [n for n in order if n.op is None]
        if len(leaves) != 1:
            raise ValueError(f"{what}: tangents need wrt= (the input(s) to seed with 1); the graph has "
                             f"{len(leaves)} inputs")
        return leaves
    wrt = list(wrt) if isinstance(wrt, (list, tuple)) else [wrt]
    ids = {id(n) for n in order}
    for w in wrt:
        if id(w) not in ids:
            raise ValueError(f"{what}: wrt={w!r} is not an input of this graph")
    return wrt


def _adjoints(order, ids, y, seed, on_edge=None):
    return reverse_sweep(order, ids, {id(y): seed}, keep=None, on_edge=on_edge)


def _tangents(order, wrt, on_edge=None):
    return forward_sweep(order, {id(w): np.ones(w.shape, dtype=w.dtype) for w in wrt}, on_edge=on_edge)


# --- pictures ----------------------------------------------------------------------------------

_STYLE = {"leaf": dict(shape="ellipse", style="filled", fillcolor="#dbeafe"),
          "op": dict(shape="box", style="rounded,filled", fillcolor="#f8fafc"),
          "const": dict(shape="plaintext", fontcolor="#64748b"),
          "summary": dict(shape="note", style="filled", fillcolor="#fef3c7"),
          "current": dict(style="rounded,filled,bold", fillcolor="#fde68a", penwidth="2")}


def _node_label(node, name, names, show, adjoint, tangent, digits, extra=None):
    lines = [name if node.op is None else f"{name} = {expression(node, names)}"]
    if node.size != 1:
        lines.append(f"{node.shape} {node.dtype}")
    if "value" in show:
        lines.append(f"value {_number(node._value, digits)}")
    if "grad" in show and adjoint is not None:
        lines.append(f"grad {_number(adjoint, digits)}")
    if "tangent" in show and tangent is not None:
        lines.append(f"tangent {_number(tangent, digits)}")
    if extra:
        lines.extend(extra)
    return "\n".join(lines)


def _keep_nodes(order, max_nodes):
    """The nodes drawn: all, or the ``max_nodes`` created last (nearest the output)."""
    if max_nodes is None or len(order) <= max_nodes:
        return order, []
    return order[-max_nodes:], order[:-max_nodes]


def _digraph(order, y, *, names, show, adjoints, tangents, digits, rankdir, max_nodes, current=None,
             extra_labels=None):
    import graphviz

    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir must be one of LR, TB, RL, BT; got {rankdir!r}")
    label = node_names(order, y, names)
    kept, hidden = _keep_nodes(order, max_nodes)
    hidden_ids = {id(n) for n in hidden}
    key = {id(n): f"n{k}" for k, n in enumerate(order)}  # stable DOT ids
    dot = graphviz.Digraph(graph_attr=dict(rankdir=rankdir), node_attr=dict(fontname="Helvetica", fontsize="11"))
    if hidden:
        counts = Counter(n.op.name if n.op else "input" for n in hidden)
        summary = ", ".join(f"{op} x{k}" for op, k in counts.most_common(6))
        dot.node("hidden", f"... {len(hidden):,} earlier nodes\n({summary})", **_STYLE["summary"])
    constants = 0
    for node in kept:
        nid = id(node)
        kind = "leaf" if node.op is None else "op"
        style = dict(_STYLE[kind])
        if current is not None and node is current:
            style.update(_STYLE["current"])
        extra = (extra_labels or {}).get(nid)
        dot.node(key[nid], _node_label(node, label[nid], label, show, adjoints.get(nid), tangents.get(nid), digits,
                                       extra), **style)
        edges_from_hidden = False
        for inp in node.inputs:
            if id(inp) in hidden_ids:
                edges_from_hidden = True
            elif id(inp) in label:
                dot.edge(key[id(inp)], key[nid])
            else:  # a constant input
                constants += 1
                cid = f"const{constants}"
                dot.node(cid, _constant_text(inp._value, digits), **_STYLE["const"])
                dot.edge(cid, key[nid], style="dashed", color="#94a3b8")
        if edges_from_hidden:
            dot.edge("hidden", key[nid], style="dashed")
    return dot


def draw(y, show=("value", "grad"), rankdir="LR", names=None, wrt=None, seed=None, max_nodes=200, digits=4):
    """A picture of the graph that produced ``y``: one node per leaf and per recorded op.

    ``show`` picks what each node lists: ``"value"``, ``"grad"`` (the adjoint dy/dv from a reverse
    sweep, the one ``y.backward()`` runs; ``seed=`` for non-scalar y) and ``"tangent"`` (from a
    forward sweep seeded with 1 at ``wrt``). ``names="letters"`` names unnamed nodes a, b, c as in
    eq. 5.38. Past ``max_nodes`` the earliest nodes are collapsed into one summary node. Returns a
    ``graphviz.Digraph`` (shown inline in Jupyter; ``save`` renders it to SVG or PNG).

    >>> from autodiff import Tensor, sin
    >>> x = Tensor(0.5, requires_grad=True, name="x")
    >>> dot = draw(sin(x) * x, names="letters")
    >>> "a = sin" in dot.source and "grad 1" in dot.source
    True
    """
    show = (show,) if isinstance(show, str) else tuple(show)
    unknown = set(show) - {"value", "grad", "tangent"}
    if unknown:
        raise ValueError(f"show may hold 'value', 'grad' and 'tangent'; got {sorted(unknown)}")
    order, ids = _graph(y)
    adjoints = _adjoints(order, ids, y, _seed_of(y, seed, "draw")) if "grad" in show and y.requires_grad else {}
    tangents = _tangents(order, _wrt_list(wrt, order, "draw")) if "tangent" in show and y.requires_grad else {}
    return _digraph(order, y, names=names, show=show, adjoints=adjoints, tangents=tangents, digits=digits,
                    rankdir=rankdir, max_nodes=max_nodes)


def save(graph, path, format=None) -> Path:
    """Render ``graph`` (a Digraph) to ``path`` (.svg or .png) with ``dot``; the DOT source is always
    written beside it (``path`` with suffix .dot). Without ``dot``, raises ``GraphvizNotFound``
    saying how to install it, after writing the DOT source."""
    import graphviz

    path = Path(path)
    fmt = format or path.suffix.lstrip(".") or "svg"
    if fmt not in ("svg", "png", "pdf", "dot"):
        raise ValueError(f"save: format must be svg, png, pdf or dot; got {fmt!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    dot_path = path.with_suffix(".dot")
    dot_path.write_text(graph.source)
    if fmt == "dot":
        return dot_path
    try:
        data = graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFound(f"cannot render {path.name}: {INSTALL_DOT}. The DOT source was saved to {dot_path} "
                               f"(and is in graph.source).") from None
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


# --- step by step ------------------------------------------------------------------------------

class Steps(list):
    """The pictures of a sweep, one per node swept; ``save(folder)`` writes step_001.svg, ..."""

    def __init__(self, graphs, mode):
        super().__init__(graphs)
        self.mode = mode

    def save(self, folder, format="svg"):
        """Render every step to ``folder/step_NNN.<format>``; returns the paths."""
        folder = Path(folder)
        return [save(g, folder / f"step_{k:03d}.{format}", format) for k, g in enumerate(self, start=1)]

    def _repr_html_(self):
        import graphviz

        parts = []
        for k, g in enumerate(self, start=1):
            try:
                body = g.pipe(format="svg").decode()
            except graphviz.ExecutableNotFound:
                body = f"<pre>{html.escape(g.source)}</pre>"
            parts.append(f"<div><p>{self.mode} sweep, step {k} of {len(self)}</p>{body}</div>")
        return "".join(parts)


def _bar(name):
    return f"{name}\u0304"


def draw_steps(y, mode="reverse", wrt=None, names="letters", seed=None, rankdir="LR", max_nodes=200, digits=4):
    """The sweep as a sequence of pictures, one per node in the order the sweep visits them.

    Reverse mode (Algorithm 2) visits y first and the inputs last; each picture highlights the node
    whose adjoint is being completed and lists its terms, e.g. at a fan-out node
    ``dy/da = dy/dc dc/da + dy/db db/da`` (eq. 5.39) with their values. Forward mode visits the
    inputs first and lists the terms of each tangent. Returns ``Steps`` (a list of Digraphs).

    >>> from autodiff import Tensor, sin
    >>> x = Tensor(0.5, requires_grad=True, name="x")
    >>> a = sin(x)
    >>> len(draw_steps(a * a + a))   # x, a, a*a and the sum: four nodes, four steps
    4
    """
    if mode not in ("reverse", "forward"):
        raise ValueError(f"draw_steps: mode must be 'reverse' or 'forward', got {mode!r}")
    order, ids = _graph(y)
    label = node_names(order, y, names)
    terms = {}

    if mode == "reverse":
        def record(node, i, inp, c):
            terms.setdefault(id(inp), []).append((node, c))
        values = _adjoints(order, ids, y, _seed_of(y, seed, "draw_steps"), on_edge=record)
        visit, show, letter = list(reversed(order)), ("value", "grad"), "grad"
    else:
        def record(node, i, inp, c):
            terms.setdefault(id(node), []).append((inp, c))
        values = _tangents(order, _wrt_list(wrt, order, "draw_steps"), on_edge=record)
        visit, show, letter = order, ("value", "tangent"), "tangent"

    graphs = []
    done = {}
    for node in visit:
        nid = id(node)
        if nid in values:
            done[nid] = values[nid]
        extra = {nid: _step_terms(node, terms.get(nid, []), label, mode, values.get(nid), digits)}
        graphs.append(_digraph(order, y, names=names, show=show,
                               adjoints=done if letter == "grad" else {}, tangents=done if letter == "tangent" else {},
                               digits=digits, rankdir=rankdir, max_nodes=max_nodes, current=node, extra_labels=extra))
    return Steps(graphs, mode)


def _step_terms(node, terms, label, mode, total, digits):
    name = label[id(node)]
    if mode == "reverse":
        if not terms:
            return ["seed: dy/dy = 1" if total is not None and node.op is not None or not terms else ""]
        symbolic = " + ".join(f"dy/d{label[id(c)]}·d{label[id(c)]}/d{name}" for c, _ in terms)
        numbers = " + ".join(_number(v, digits) for _, v in terms)
        return [f"dy/d{name} = {symbolic}", f"= {numbers}" + (f" = {_number(total, digits)}" if len(terms) > 1 else "")]
    if node.op is None:
        return [f"d{name} = 1 (seed)" if total is not None else f"d{name} = 0"]
    if not terms:
        return [f"d{name} = 0"]
    symbolic = " + ".join(f"d{name}/d{label[id(i)]}·d{label[id(i)]}" for i, _ in terms)
    numbers = " + ".join(_number(v, digits) for _, v in terms)
    return [f"d{name} = {symbolic}", f"= {numbers}" + (f" = {_number(total, digits)}" if len(terms) > 1 else "")]


# --- trace tables ------------------------------------------------------------------------------

def _partial_texts(node, label):
    """d node / d input_i as text for scalar ops with a SymPy counterpart, else None."""
    if node.op.sympy is None or node.size != 1 or any(i.size != 1 for i in node.inputs):
        return None
    import sympy

    symbols = [sympy.Symbol(label.get(id(i)) or "c", real=True) if id(i) in label else sympy.sympify(i._value.item())
               for i in node.inputs]
    try:
        expr = node.op.to_sympy(*symbols, **node.params)
    except Exception:  # a counterpart that does not take these arguments: fall back to generic text
        return None
    return [str(sympy.diff(expr, s)) if isinstance(s, sympy.Symbol) else None for s in symbols]


def _times(factor, term):
    if factor == "1":
        return term
    if factor == "-1":
        return f"-{term}"
    factor = f"({factor})" if any(op in factor for op in "+- ") else factor
    return f"{factor}·{term}"


class TraceTable:
    """An evaluation trace: one row per node, as ``rows`` (dicts), text, Markdown or HTML."""

    def __init__(self, mode, columns, rows):
        self.mode = mode
        self.columns = columns
        self.rows = rows

    def _cells(self):
        return [[str(r[c]) for c in self.columns] for r in self.rows]

    def __str__(self):
        cells = self._cells()
        widths = [max(_width(c), *(_width(r[k]) for r in cells)) for k, c in enumerate(self.columns)]
        def fmt(row):
            return "  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(row, widths)).rstrip()
        return "\n".join([fmt(self.columns), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells])

    def to_markdown(self):
        """The table in Markdown (GitHub pipes)."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self._cells()]
        return "\n".join(lines)

    def _repr_html_(self):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._cells())
        return f"<table><tr>{head}</tr>{body}</table>"


def _width(text):
    return sum(1 for ch in text if not unicodedata.combining(ch))


def trace_table(y, mode="forward", wrt=None, names="letters", seed=None, digits=6) -> TraceTable:
    """The evaluation trace of ``y`` as a textbook prints it (Baydin et al.; Algorithms 1 and 2).

    ``mode="forward"``: rows in evaluation order with the primal value v_i, the tangent dv_i (seeded
    with 1 at ``wrt``) and the forward rule applied. ``mode="reverse"``: rows from y back to the
    inputs with the adjoint v̄_i and the reverse rule (a sum over the node's consumers); the last row
    is the derivative with respect to the input.

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
    order, ids = _graph(y)
    label = node_names(order, y, names)
    partials = {id(n): _partial_texts(n, label) for n in order if n.op is not None}
    rows = []
    if mode == "forward":
        seeds = _wrt_list(wrt, order, "trace_table")
        tangents = _tangents(order, seeds)
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
                    terms.append(_times(p, f"d{label[id(inp)]}") if p else f"jvp_{node.op.name}(d{label[id(inp)]})")
                rule = f"d{name} = " + (" + ".join(terms) if terms else "0")
            t = tangents.get(id(node))
            rows.append({"node": name, "expression": expr, "value": _number(node._value, digits),
                         "tangent": _number(0 if t is None else t, digits), "rule": rule})
        return TraceTable("forward", ["node", "expression", "value", "tangent", "rule"], rows)

    consumers = {}
    for node in order:
        for k, inp in enumerate(node.inputs):
            if id(inp) in ids:
                consumers.setdefault(id(inp), []).append((node, k))
    adjoints = _adjoints(order, ids, y, _seed_of(y, seed, "trace_table"))
    for node in reversed(order):
        name = label[id(node)]
        if node is y:
            rule = f"{_bar(name)} = 1 (seed)" if seed is None else f"{_bar(name)} = seed"
        else:
            terms = []
            for consumer, k in consumers.get(id(node), []):
                p = partials[id(consumer)][k] if partials[id(consumer)] else None
                cbar = _bar(label[id(consumer)])
                terms.append(_times(p, cbar) if p else f"vjp_{consumer.op.name}({cbar})")
            rule = f"{_bar(name)} = " + (" + ".join(terms) if terms else "0")
        a = adjoints.get(id(node))
        rows.append({"node": name, "value": _number(node._value, digits),
                     "adjoint": _number(0 if a is None else a, digits), "rule": rule})
    return TraceTable("reverse", ["node", "value", "adjoint", "rule"], rows)
