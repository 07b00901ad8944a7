"""Loops as JAX writes them: ``scan``, ``fori_loop``, ``while_loop``; eager here, one loop when compiled.

On the eager engine each is the plain Python loop it describes (every step recorded, so grad, jvp
and the views see each step). While :func:`autodiff.compile` records f, the body is recorded once and
the loop is one node of the program (:mod:`autodiff.compiler.loops`): compile time grows with the
body's text, not with the trip count, and the reverse pass is a loop too, run backwards.
"""
from __future__ import annotations

import numpy as np

from . import pytree
from . import tensor as _tensor
from .compiler.loops import stage_scan, stage_while
from .ops import stack
from .tensor import Tensor


def _length(xs, length):
    leaves = pytree.tree_leaves(xs)
    sizes = {int(np.shape(x._value if isinstance(x, Tensor) else x)[0]) for x in leaves if np.ndim(
        x._value if isinstance(x, Tensor) else x) > 0}
    if len(sizes) > 1:
        raise ValueError(f"scan: the arrays of xs have different lengths along axis 0: {sorted(sizes)}")
    if leaves and len(sizes) != 1:
        raise ValueError("scan: each array of xs needs a leading axis to scan over; got 0-d arrays")
    if length is not None and sizes and length not in sizes:
        raise ValueError(f"scan: length={length} but xs has length {sizes.pop()}")
    if not sizes and length is None:
        raise ValueError("scan: give xs (arrays with a leading axis) or length=")
    return sizes.pop() if sizes else int(length)


def scan(f, init, xs=None, length=None):
    """``carry, ys = scan(f, init, xs)``: ``carry, y = f(carry, x)`` for each ``x`` along xs' first axis,
    the ys stacked (``jax.lax.scan``). carry, xs and y may be pytrees; xs=None with ``length=`` gives f None."""
    n = _length(xs, length)
    if _tensor.compiling and n > 0:
        return stage_scan(f, init, xs, n)
    carry, ys = init, []
    for t in range(n):
        x = None if xs is None else pytree.tree_map(lambda a: a[t], xs)
        carry, y = f(carry, x)
        ys.append(y)
    if not ys or pytree.tree_leaves(ys[0]) == []:
        return carry, (ys[0] if ys else None)
    return carry, pytree.tree_map(lambda *parts: stack(list(parts)) if any(isinstance(p, Tensor) for p in parts)
                                  else np.stack(parts), *ys)


def fori_loop(lower, upper, body_fun, init_val):
    """``val = body_fun(i, val)`` for i in range(lower, upper) (``jax.lax.fori_loop``). Bounds that are traced
    values under compile make it a while_loop, its trip count read at run time."""
    traced = [b for b in (lower, upper) if isinstance(b, Tensor) and b.requires_grad]
    if _tensor.compiling and traced:
        def cond(state):
            return state[0] < upper

        def body(state):
            return (state[0] + 1.0, body_fun(state[0], state[1]))

        start = lower if isinstance(lower, Tensor) else np.float64(lower)
        return while_loop(cond, body, (start * 1.0, init_val))[1]
    lo, hi = (int(b.item() if isinstance(b, Tensor) else b) for b in (lower, upper))
    if _tensor.compiling and hi > lo:
        steps = np.arange(lo, hi, dtype=np.float64)
        return scan(lambda val, i: (body_fun(i, val), None), init_val, steps)[0]
    val = init_val
    for i in range(lo, hi):
        val = body_fun(i, val)
    return val


def while_loop(cond_fun, body_fun, init_val):
    """``while cond_fun(val): val = body_fun(val)`` (``jax.lax.while_loop``); differentiable in reverse mode
    as well (the trip count is read at run time and the reverse loop runs it backwards)."""
    if _tensor.compiling:
        return stage_while(cond_fun, body_fun, init_val)
    val = init_val
    while cond_fun(val):
        val = body_fun(val)
    return val


__all__ = ["fori_loop", "scan", "while_loop"]
