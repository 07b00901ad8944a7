"""What every view shows of a recorded graph: node names, eq. 5.38's lines, numbers, local derivatives.

The pictures (:mod:`autodiff.draw`), the trace tables (:mod:`autodiff.tables`) and the gradient
checks' messages (:mod:`autodiff.checks`) name and describe nodes with these functions, so that one
node reads the same everywhere. The adjoints and tangents they show come from the engine's own
sweeps (``adjoints_of``, ``tangents_of``), the functions ``backward()`` and ``jvp`` use.

- ``graph_code(y)`` / ``print_graph(y)``: the graph as straight-line code, the form of eq. 5.38.

Every view walks the graph iteratively and has a documented size limit, refused in one line before
the work starts: the text views (these, ``trace_table``) take up to ``MAX_TEXT_NODES`` nodes, in time
linear in the graph; the pictures and the player take fewer (:mod:`autodiff.draw`, :mod:`autodiff.player`).
"""
from __future__ import annotations

import functools
import re
import string

import numpy as np

from .sweep import forward_sweep, reverse_sweep, toposort
from .tensor import Tensor

#: The most nodes a text view (graph_code, print_graph, trace_table) shows. They run in time linear
#: in the graph (a chain of 10^5 nodes on two cores: graph_code 0.4 s, trace_table and its text 4 s):
#: the limit keeps the largest to about ten seconds; such a printout is searched, not read.
MAX_TEXT_NODES = 200_000


# --- the graph and its names -------------------------------------------------------------------

def graph_of(y, what="graph_of", limit=None, instead="", name="autodiff.labels.MAX_TEXT_NODES"):
    """(order, ids) of the graph behind ``y``. An untracked ``y`` (no input had requires_grad=True,
    or it was computed under no_grad) has no graph: nothing was recorded, so there is nothing to
    show but a constant, mislabelled as an input; ``what`` (the view asked for) says so instead.
    A graph of more than ``limit`` nodes is refused (``check_size``: ``name`` is the limit's, ``instead``
    the way out)."""
    if not isinstance(y, Tensor):
        raise TypeError(f"{what}: expected a Tensor, got {type(y).__name__}")
    if not y.requires_grad:
        value = number_text(y._value, 6) if y.size == 1 else f"of shape {y.shape}"
        raise ValueError(f"{what}: y has no recorded graph (it is the constant {value}): it was computed from "
                         f"Tensors without requires_grad=True, or under no_grad; create the inputs with "
                         f"Tensor(value, requires_grad=True, name=...) and compute y again")
    order, ids = toposort([y])
    check_size(len(order), limit, what, instead, name)
    return order, ids


def check_size(count, limit, what, instead="", name="autodiff.labels.MAX_TEXT_NODES"):
    """Refuse, in one line, a view of ``count`` nodes past its ``limit`` (None: no limit), naming the
    limit (``name``), the count and ``instead`` (the way out); called before the view does its work."""
    if limit is not None and count > limit:
        raise ValueError(f"{what}: the graph has {count:,} nodes, more than this view's limit of {limit:,} ({name})"
                         + (f"; {instead}" if instead else ""))


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



def describe_node(order, node):
    """'node #k = op(shapes)', k counting the recorded ops in evaluation order (as eq. 5.38's a, b, c)."""
    position = 0
    for n in order:
        position += n.op is not None
        if n is node:
            break
    name = f" {node.name!r}" if node.name else ""
    shapes = ", ".join(str(i.shape) for i in node.inputs)
    return f"node #{position}{name} = {node.op.name}({shapes})"


# --- numbers and expressions as text -------------------------------------------------------------

def number_text(v, digits):
    v = np.asarray(v)
    if v.size == 1:
        x = v.item()
        return f"{x + 0.0:.{digits}g}" if isinstance(x, float) else str(x)   # + 0.0: no "-0"
    if v.size <= 4:
        return "[" + ", ".join(f"{float(e) + 0.0:.{digits}g}" for e in v.ravel()) + "]"
    return f"{v.dtype} {v.shape}"


def constant_text(value, digits=6):
    v = np.asarray(value)
    if v.size == 1 and v.ndim == 0:
        x = v.item()
        return f"{x:.{digits}g}" if isinstance(x, float) else str(x)
    return f"const{v.shape}"


def index_text(index):
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
    args = [names.get(id(i)) or constant_text(i._value) for i in node.inputs]
    name = node.op.name
    params = node.params
    if name in _INFIX:
        return f"{args[0]} {_INFIX[name]} {args[1]}"
    if name == "pow_const":
        return f"{args[0]} ** {params['p']:g}"
    if name == "neg":
        return f"-{args[0]}"
    if name == "getitem":
        return f"{args[0]}[{index_text(params['index'])}]"
    if name == "where":
        return f"where(cond, {args[0]}, {args[1]})"
    extras = [f"{k}={v}" for k, v in params.items() if v is not None and not (k == "keepdims" and v is False)
              and not isinstance(v, np.ndarray) and not k.startswith("_")]   # _residuals: not for display
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
    return _graph_code(y, names, "graph_code")


def print_graph(y, names="letters", file=None) -> None:
    """Print ``graph_code(y)``: the graph as straight-line code, the form of eq. 5.38."""
    print(_graph_code(y, names, "print_graph"), file=file)


def _graph_code(y, names, what):
    order, _ = graph_of(y, what, MAX_TEXT_NODES, "print a piece of it (graph_code of an intermediate Tensor)")
    label = node_names(order, y, names)
    return "\n".join(f"{label[id(n)]} = {expression(n, label)}" for n in order if n.op is not None)



# --- the sweeps' numbers, for display ----------------------------------------------------------

def seed_of(y, seed, what):
    if seed is not None:
        return np.broadcast_to(np.asarray(seed, dtype=y.dtype), y.shape)
    if y.size != 1:
        raise ValueError(f"{what}: adjoints need a scalar output or seed= (y has shape {y.shape})")
    return np.ones(y.shape, dtype=y.dtype)


def wrt_list(wrt, order, what):
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


def adjoints_of(order, ids, y, seed, on_edge=None):
    return reverse_sweep(order, ids, {id(y): seed}, keep=None, on_edge=on_edge)


def tangents_of(order, wrt, on_edge=None):
    return forward_sweep(order, {id(w): np.ones(w.shape, dtype=w.dtype) for w in wrt}, on_edge=on_edge)



# --- local derivatives as text (eq. 5.40) --------------------------------------------------------

def bar(name):
    """The adjoint's name: ``a`` -> ``ā``."""
    return f"{name}\u0304"


def partial_texts(node, label):
    """d node / d input_i as text for scalar ops with a SymPy counterpart, else None.

    SymPy differentiates each kind of node once (``_partials_template``: keyed by the op, its
    parameters and constants, and the order of its inputs' names) and the names are put into the
    text: a chain of 10^5 sin nodes costs one ``diff``, not 10^5 (SymPy orders a printed sum or
    product by the names, so placeholders that sort as the names do print in the same order)."""
    if node.op.sympy is None or node.size != 1 or any(i.size != 1 for i in node.inputs):
        return None
    names = sorted({label[id(i)] for i in node.inputs if id(i) in label})
    pattern = tuple(("name", names.index(label[id(i)])) if id(i) in label
                    else ("const", repr(i._value.item()), i._value.item()) for i in node.inputs)
    key = (node.op, node.op.sympy, tuple(sorted(node.params.items())), pattern)
    try:
        hash(key)
    except TypeError:   # a parameter that cannot be a key (an array): this node differentiated alone
        template = _partials_template.__wrapped__(*key)
    else:
        template = _partials_template(*key)
    if template is None:
        return None
    return [None if t is None else _PLACEHOLDER.sub(lambda m: names[int(m.group(1))], t) for t in template]


_PLACEHOLDER = re.compile(r"_cr(\d{3})_")   # the k-th input name in sorted order; 3 digits sort as numbers


@functools.lru_cache(maxsize=4096)
def _partials_template(op, rule, params, pattern):
    """The partials of one kind of node as text, its k-th input name (in sorted order) written ``_crk_``."""
    del rule   # a key only: a rule registered again is differentiated again
    import sympy  # only when a scalar graph's derivatives are written out (it takes a while to import)

    # one symbol per input position, so that a node used twice (a * a) gets each edge's own partial (a, not 2a)
    symbols = [sympy.Symbol(f"_input{k}", real=True) if p[0] == "name" else sympy.sympify(p[2])
               for k, p in enumerate(pattern)]
    names = {s: sympy.Symbol(f"_cr{p[1]:03d}_", real=True) for s, p in zip(symbols, pattern) if p[0] == "name"}
    try:
        expr = op.to_sympy(*symbols, **dict(params))
    except Exception:  # a counterpart that does not take these arguments: fall back to generic text
        return None
    return tuple(str(sympy.diff(expr, s).subs(names)) if isinstance(s, sympy.Symbol) else None for s in symbols)


def local_derivative(node, i):
    """d node / d input ``i`` at the recorded values (a factor of eq. 5.40: dd/dc = exp(c)), from the
    primitive's own vjp rule seeded with 1; None unless the node and that input are scalars."""
    if node.op is None or node.size != 1 or node.inputs[i].size != 1:
        return None
    one = np.ones(node.shape, dtype=node.dtype)
    wanted = tuple(j == i for j in range(len(node.inputs)))
    c = node.op.cotangents(one, node._value, [inp._value for inp in node.inputs], node.params, wanted)[i]
    return None if c is None else np.asarray(c).reshape(())


def times(factor, term):
    if factor == "1":
        return term
    if factor == "-1":
        return f"-{term}"
    factor = f"({factor})" if any(op in factor for op in "+- ") else factor
    return f"{factor}·{term}"

