"""The SymPy view of a recorded graph: each node replaced by its primitive's SymPy counterpart.

The graph is walked iteratively (any depth), but SymPy builds, prints and differentiates its
expressions recursively, a few Python frames per level of nesting: with Python's default recursion
limit a chain of sin nests 150 deep before ``diff`` fails, 200 before ``str`` does, 350 before SymPy
cannot build it. So an expression may nest at most ``MAX_SYMPY_DEPTH`` levels (measured on SymPy's
own tree, in which sums and products flatten: a sum of 10^4 terms is 1 deep); deeper, ``to_sympy``
refuses in one line as soon as a node passes the limit. SymPy also flattens and sorts a sum's
terms anew at every addition, so a sum grown one term at a time takes time quadratic in its length
(1,000 terms: 9 s): the arguments of the nodes' expressions, summed, may be at most
``MAX_SYMPY_ARGS``, a budget of SymPy's work that a wide graph exhausts in seconds, where the
node count would not do (eq. 5.36's 10th derivative is 28,645 nodes, and converts in 2 s). And each
node costs SymPy some 100 microseconds whatever its shape: a graph of more than ``MAX_SYMPY_NODES``
nodes is refused before any SymPy work.
"""
from __future__ import annotations

import numpy as np

from .labels import check_size
from .sweep import toposort
from .tensor import Tensor

#: The deepest SymPy expression ``to_sympy`` builds: one that ``str``, ``diff`` and ``lambdify`` still
#: take at Python's default recursion limit, with room for the caller's own frames.
MAX_SYMPY_DEPTH = 100
#: The most arguments, summed over the nodes' SymPy expressions, that ``to_sympy`` has SymPy build:
#: about 5 s of SymPy's work on two cores (a sum grown to 700 terms; the 10th derivative of
#: exp(sin(x)) takes 67,508); past it the graph is too wide for SymPy in seconds.
MAX_SYMPY_ARGS = 250_000
#: The most nodes ``to_sympy`` converts: some seconds of SymPy's time (a 10th derivative of 28,645
#: nodes: 2 s; 10^5 nodes took 8 s); ``graph_code`` and ``trace_table`` show larger graphs.
MAX_SYMPY_NODES = 50_000


def _depth(expr, depths):
    """How deep ``expr`` nests (a symbol or a number: 0), without recursion. ``depths`` maps
    ``id(sub-expression)`` to (depth, sub-expression), kept across calls (the nodes share their
    inputs' trees), the expression held so that its id is not reused."""
    stack = [expr]
    while stack:
        e = stack[-1]
        if id(e) in depths:
            stack.pop()
            continue
        pending = [a for a in getattr(e, "args", ()) if id(a) not in depths]
        if pending:
            stack.extend(pending)
            continue
        depths[id(e)] = (1 + max((depths[id(a)][0] for a in getattr(e, "args", ())), default=-1), e)
        stack.pop()
    return depths[id(expr)][0]


def _sympy_constant(value):
    import sympy

    value = np.asarray(value)
    if value.size != 1:
        raise ValueError(f"to_sympy: a constant of shape {value.shape} has no scalar SymPy form")
    v = value.item()
    if isinstance(v, float) and v.is_integer():
        return sympy.Integer(int(v))
    return sympy.sympify(v)


def to_sympy(y, *arg_names, at=None, symbols: dict | None = None, real: bool = False):
    """The SymPy expression of a recorded graph of scalar ops.

    ``to_sympy(y)``: ``y`` is a recorded Tensor; its leaves that require grad become symbols named
    after the Tensors' names (``x``, ``x1``, ``x2``... when unnamed), constants become numbers.
    ``to_sympy(f, "x", "y")``: records ``f`` on leaves of those names first (at the values ``at``,
    default 0.5 each; only ``where``'s condition depends on them) and converts that graph.
    ``symbols`` may map leaves to SymPy objects of your own. A graph of more than ``MAX_SYMPY_NODES``
    nodes is refused at once; an expression nesting deeper than
    ``MAX_SYMPY_DEPTH`` (SymPy itself recurses once per level), or a graph so wide that its nodes'
    expressions hold more than ``MAX_SYMPY_ARGS`` arguments in all (SymPy's time), is refused in one
    line (ValueError) at the node that passes the limit, within seconds whatever the graph's size.

    The symbols are plain, ``sympy.Symbol("x")``, the one a user writes: SymPy tells symbols apart
    by their assumptions too, so ``diff`` by a symbol of other assumptions would silently give 0.
    ``real=True`` makes them ``Symbol("x", real=True)`` (then ``diff(Abs(x))`` is ``sign(x)``, where
    a plain symbol gives the complex form); differentiate by the same symbol, or by those of
    ``expr.free_symbols``.

    >>> import sympy
    >>> from autodiff import Tensor, sin, to_sympy
    >>> x = Tensor(0.5, requires_grad=True, name="x")
    >>> to_sympy(sin(x) ** 2 + 1)
    sin(x)**2 + 1
    >>> sympy.diff(to_sympy(sin(x) ** 2), sympy.Symbol("x"))
    2*sin(x)*cos(x)
    >>> to_sympy(lambda a, b: a * b + sin(b), "a", "b")
    a*b + sin(b)
    >>> sympy.diff(to_sympy(abs(x), real=True), sympy.Symbol("x", real=True))
    sign(x)
    """
    import sympy

    if callable(y) and not isinstance(y, Tensor):
        if not arg_names:
            raise ValueError("to_sympy(f, *arg_names): name f's arguments, e.g. to_sympy(f, 'x')")
        values = [0.5] * len(arg_names) if at is None else list(at)
        if len(values) != len(arg_names):
            raise ValueError(f"to_sympy: {len(arg_names)} argument names but {len(values)} values in at=")
        y = y(*[Tensor(float(v), requires_grad=True, name=n) for v, n in zip(values, arg_names)])
    if not isinstance(y, Tensor):
        return _sympy_constant(y)
    exprs = {id(k): v for k, v in (symbols or {}).items()}
    order, _ = toposort([y])
    check_size(len(order), MAX_SYMPY_NODES, "to_sympy", "convert a piece of it (an intermediate Tensor), or read "
               "the whole in graph_code(y)", "autodiff.symbolic.MAX_SYMPY_NODES")
    unnamed = 0
    position = 0
    depths = {}
    work = 0
    for node in order:
        if id(node) in exprs:
            continue
        if node.op is None:
            name = node.name
            if name is None:
                name = "x" if unnamed == 0 else f"x{unnamed}"
                unnamed += 1
            exprs[id(node)] = sympy.Symbol(name, real=True) if real else sympy.Symbol(name)
            continue
        position += 1
        args = [exprs[id(i)] if id(i) in exprs else _sympy_constant(i._value) for i in node.inputs]
        if node.op.sympy is None:
            raise ValueError(f"to_sympy: node #{position} ({node.op.name}) has no SymPy counterpart: "
                             f"op {node.op.name!r} cannot be converted")
        if any(np.ndim(i._value) for i in node.inputs) or node.ndim:
            raise ValueError(f"to_sympy: node #{position} ({node.op.name}) has shape {node.shape}: only graphs "
                             f"of scalar ops convert")
        expr = exprs[id(node)] = node.op.to_sympy(*args, **node.params)
        work += len(getattr(expr, "args", ()))
        if work > MAX_SYMPY_ARGS:
            raise ValueError(f"to_sympy: at node #{position} ({node.op.name}) the expressions hold {work:,} arguments "
                             f"in all, more than the limit of {MAX_SYMPY_ARGS:,} (autodiff.symbolic.MAX_SYMPY_ARGS: "
                             f"SymPy's time grows with them, a long sum's quadratically); convert a piece of the "
                             f"graph (an intermediate Tensor), or read the whole in graph_code(y)")
        if _depth(expr, depths) > MAX_SYMPY_DEPTH:
            raise ValueError(f"to_sympy: at node #{position} ({node.op.name}) the expression nests "
                             f"{_depth(expr, depths)} deep, more than the limit of {MAX_SYMPY_DEPTH} "
                             f"(autodiff.symbolic.MAX_SYMPY_DEPTH: SymPy recurses once per level); convert a piece "
                             f"of the graph (an intermediate Tensor), or read the whole in graph_code(y)")
    return exprs[id(y)] if id(y) in exprs else _sympy_constant(y._value)
