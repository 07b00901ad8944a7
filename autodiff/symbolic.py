"""The SymPy view of a recorded graph: each node replaced by its primitive's SymPy counterpart."""
from __future__ import annotations

import numpy as np

from .sweep import toposort
from .tensor import Tensor


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
    ``symbols`` may map leaves to SymPy objects of your own.

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
    unnamed = 0
    position = 0
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
        exprs[id(node)] = node.op.to_sympy(*args, **node.params)
    return exprs[id(y)] if id(y) in exprs else _sympy_constant(y._value)
