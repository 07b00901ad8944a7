"""Loops as JAX writes them: ``scan``, ``fori_loop``, ``while_loop``; eager here, one loop when compiled.

On the eager engine each is the plain Python loop it describes (every step recorded, so grad, jvp
and the views see each step). While :func:`autodiff.compile` records f, the body is recorded once and
the loop is one node of the program (:mod:`autodiff.compiler.loops`): compile time grows with the
body's text, not with the trip count, and the reverse pass is a loop too, run backwards.

The arguments are checked before the first step, eager or compiled alike: a careless one is a
one-line TypeError or ValueError naming it; a body that changes its carry's structure, shapes or
dtypes is refused on the eager engine too, as under compile (where a loop's carry is fixed).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from . import pytree
from . import tensor as _tensor
from .compiler.guards import CompileError
from .compiler.loops import stage_scan, stage_while
from .ops import stack
from .tensor import Batched, Tensor, value_of


def _shape_dtype(x):
    if isinstance(x, Tensor):            # its shape and dtype hold under vmap too (one example's)
        return tuple(x.shape), np.dtype(x.dtype)
    arr = np.asarray(x)
    return arr.shape, arr.dtype


def _callable(fn, name, what):
    if not callable(fn):
        raise TypeError(f"autodiff.{what}: {name} must be a function, got {type(fn).__name__}")


def _numbers(tree, name, what):
    """Every leaf of ``tree`` a number, a numeric array or a Tensor (no string, no object)."""
    for leaf in pytree.tree_leaves(tree):
        if isinstance(leaf, Tensor):
            continue
        try:
            kind = np.asarray(leaf).dtype.kind
        except (TypeError, ValueError):
            kind = "O"
        if kind not in "biuf" or isinstance(leaf, (str, bytes)):
            raise TypeError(f"autodiff.{what}: {name} must hold numbers or arrays of numbers, got a leaf of type "
                            f"{type(leaf).__name__}: {repr(leaf)[:40]}")


def _count(v, name, what):
    """A trip count or a bound: an int, a NumPy int, a whole finite float, or a 0-d Tensor holding one."""
    raw = value_of(v)
    if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, (int, float, np.integer, np.floating, np.ndarray)):
        raise TypeError(f"autodiff.{what}: {name} must be an int, got {type(v).__name__}: {repr(v)[:40]}")
    if np.ndim(raw) != 0 or np.asarray(raw).dtype.kind not in "iuf":
        raise TypeError(f"autodiff.{what}: {name} must be an int (a scalar), got an array of shape {np.shape(raw)}, "
                        f"dtype {np.asarray(raw).dtype}")
    number = float(raw) if np.asarray(raw).dtype.kind == "f" else int(raw)
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"autodiff.{what}: {name} must be a whole number, got {number!r}")
    return int(number)


def _signature(tree):
    leaves, treedef = pytree.tree_flatten(tree)
    return treedef, [_shape_dtype(x) for x in leaves]


def _same(before, tree, what, who):
    """The eager engine keeps a loop's carry as the compiled loop must: its structure, shapes and dtypes."""
    treedef, parts = _signature(tree)
    error = CompileError if _tensor.compiling else TypeError
    if treedef != before[0]:
        raise error(f"autodiff.{what}: {who} must return a carry of the initial value's structure "
                    f"{before[0]}, got {treedef}")
    for k, (old, new) in enumerate(zip(before[1], parts)):
        if old != new:
            raise error(f"autodiff.{what}: {who} turns carry part {k} of shape {old[0]}, {old[1]} into "
                        f"{new[0]}, {new[1]}; a loop keeps its carry's shapes and dtypes")


def _length(xs, length):
    if length is not None:
        length = _count(length, "length", "scan")
        if length < 0:
            raise ValueError(f"autodiff.scan: length must be >= 0, got {length}")
    leaves = pytree.tree_leaves(xs)
    _numbers(xs, "xs", "scan")
    flat = [x for x in leaves if np.ndim(value_of(x)) == 0]
    if flat:
        raise ValueError(f"autodiff.scan: each array of xs needs a leading axis to scan over; got a 0-d "
                         f"{type(flat[0]).__name__} (a list of numbers is a pytree of 0-d leaves: pass np.array)")
    sizes = {int(np.shape(value_of(x))[0]) for x in leaves}
    if len(sizes) > 1:
        raise ValueError(f"autodiff.scan: the arrays of xs have different lengths along axis 0: {sorted(sizes)}")
    if length is not None and sizes and length not in sizes:
        raise ValueError(f"autodiff.scan: length={length} but xs has length {sizes.pop()}")
    if not sizes and length is None:
        raise ValueError("autodiff.scan: give xs (arrays with a leading axis) or length=")
    return sizes.pop() if sizes else length


def _pair(f):
    """f, checked to return (carry, y) at every call."""
    @functools.wraps(f)
    def step(carry, x):
        out = f(carry, x)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            got = f"a {len(out)}-tuple" if isinstance(out, (tuple, list)) else type(out).__name__
            raise TypeError(f"autodiff.scan: f must return a pair (carry, y), got {got}")
        return tuple(out)
    return step


def scan(f, init, xs=None, length=None):
    """``carry, ys = scan(f, init, xs)``: ``carry, y = f(carry, x)`` for each ``x`` along xs' first axis,
    the ys stacked (``jax.lax.scan``). carry, xs and y may be pytrees; xs=None with ``length=`` gives f None.

    >>> import numpy as np, autodiff as ad
    >>> carry, ys = ad.scan(lambda c, x: (c + x, c * x), 1.0, np.arange(3.0))   # running sum; ys = c * x
    >>> float(carry), ys
    (4.0, array([0., 1., 4.]))
    """
    _callable(f, "f", "scan")
    _numbers(init, "init", "scan")
    n = _length(xs, length)
    f = _pair(f)
    if _tensor.compiling and n > 0:
        return stage_scan(f, init, xs, n)
    carry, ys, before = init, [], _signature(init)
    for t in range(n):
        x = None if xs is None else pytree.tree_map(lambda a: a[t], xs)
        carry, y = f(carry, x)
        _same(before, carry, "scan", "f")
        ys.append(y)
    if not ys or pytree.tree_leaves(ys[0]) == []:
        return carry, (ys[0] if ys else None)
    return carry, pytree.tree_map(lambda *parts: stack(list(parts)) if any(isinstance(p, Tensor) for p in parts)
                                  else np.stack(parts), *ys)


def fori_loop(lower, upper, body_fun, init_val):
    """``val = body_fun(i, val)`` for i in range(lower, upper) (``jax.lax.fori_loop``). Bounds that are traced
    values under compile make it a while_loop, its trip count read at run time.

    >>> import autodiff as ad
    >>> ad.grad(lambda x: ad.fori_loop(0, 3, lambda i, y: y * x, 1.0))(2.0)      # d/dx x^3 = 3 x^2
    12.0
    """
    lo, hi = _count(lower, "lower", "fori_loop"), _count(upper, "upper", "fori_loop")
    _callable(body_fun, "body_fun", "fori_loop")
    _numbers(init_val, "init_val", "fori_loop")
    before, given = _signature(init_val), body_fun

    def body_fun(i, val):           # the carry checked here, so that an error names fori_loop's body_fun
        out = given(i, val)
        _same(before, out, "fori_loop", "body_fun")
        return out

    traced = [b for b in (lower, upper) if isinstance(b, Tensor) and b.requires_grad]
    if _tensor.compiling and traced:
        def cond(state):
            return state[0] < upper

        def body(state):
            return (state[0] + 1.0, body_fun(state[0], state[1]))

        start = (lower if isinstance(lower, Tensor) else np.float64(lower)) * 1.0
        # a traced bound is read at run time: the loop stops there unless it is a whole number, as range does
        return stage_while(cond, body, (start, init_val), whole=[(start, "lower"), (upper, "upper")])[1]
    if _tensor.compiling and hi > lo:
        steps = np.arange(lo, hi, dtype=np.float64)
        return scan(lambda val, i: (body_fun(i, val), None), init_val, steps)[0]
    val = init_val
    for i in range(lo, hi):
        val = body_fun(i, val)
    return val


def _truth(cond_fun):
    """cond_fun, checked to return one truth value (a bool, a number, a 0-d array or Tensor) at every call."""
    @functools.wraps(cond_fun)
    def test(val):
        out = cond_fun(val)
        if isinstance(out, Batched):     # a comparison under vmap: vmap says why it has no one truth value
            return out
        if not isinstance(out, (Tensor, bool, int, float, np.bool_, np.integer, np.floating, np.ndarray)) or (
                _shape_dtype(out)[1].kind not in "biuf"):
            raise TypeError(f"autodiff.while_loop: cond_fun must return a boolean scalar, got {type(out).__name__}")
        if _shape_dtype(out)[0] != ():
            raise ValueError(f"autodiff.while_loop: cond_fun must return a boolean scalar, got shape "
                             f"{_shape_dtype(out)[0]} (reduce it: all(), any())")
        if _tensor.compiling and not isinstance(out, Tensor):
            raise CompileError(f"autodiff.while_loop: under compile cond_fun must compare the loop's value; it "
                               f"returned the constant {out!r}, which does not depend on it")
        return out
    return test


def while_loop(cond_fun, body_fun, init_val):
    """``while cond_fun(val): val = body_fun(val)`` (``jax.lax.while_loop``); differentiable in reverse mode
    as well (the trip count is read at run time and the reverse loop runs it backwards).

    >>> import autodiff as ad
    >>> ad.while_loop(lambda v: v < 100, lambda v: v * 3, 1)
    243
    """
    _callable(cond_fun, "cond_fun", "while_loop")
    _callable(body_fun, "body_fun", "while_loop")
    _numbers(init_val, "init_val", "while_loop")
    cond_fun = _truth(cond_fun)
    if _tensor.compiling:
        return stage_while(cond_fun, body_fun, init_val)
    val, before = init_val, _signature(init_val)
    while cond_fun(val):
        val = body_fun(val)
        _same(before, val, "while_loop", "body_fun")
    return val


__all__ = ["fori_loop", "scan", "while_loop"]
