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


def to_sympy(y: Tensor, symbols: dict | None = None):
    """The SymPy expression of the scalar graph that produced ``y``.

    Leaves that require grad become symbols named after the Tensors' names (``x`` when unnamed,
    then ``x1``, ``x2`` ...); constants become numbers. ``symbols`` may map leaves to SymPy objects.

    >>> from autodiff import Tensor, sin, to_sympy
    >>> x = Tensor(0.5, requires_grad=True, name="x")
    >>> to_sympy(sin(x) ** 2 + 1)
    sin(x)**2 + 1
    """
    import sympy

    if not isinstance(y, Tensor):
        return _sympy_constant(y)
    symbols = dict(symbols or {})
    exprs = {id(k): v for k, v in symbols.items()}
    order, _ = toposort([y])
    unnamed = 0
    for node in order:
        if id(node) in exprs:
            continue
        if node.op is None:
            name = node.name
            if name is None:
                name = "x" if unnamed == 0 else f"x{unnamed}"
                unnamed += 1
            exprs[id(node)] = sympy.Symbol(name, real=True)
            continue
        args = [exprs[id(i)] if id(i) in exprs else _sympy_constant(i._value) for i in node.inputs]
        exprs[id(node)] = node.op.to_sympy(*args, **node.params)
    return exprs[id(y)] if id(y) in exprs else _sympy_constant(y._value)
