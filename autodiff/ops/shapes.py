"""Shapes and indexing: reshape, transpose, getitem and its adjoint scatter_add, concatenate, stack.

(The broadcasting pair ``sum_to`` / ``broadcast_to`` is declared in :mod:`autodiff.primitives`, where
the elementwise rules that need it are built.)
"""
from __future__ import annotations

import numpy as np

from ..primitives import primitive, shape_of
from ..samples import cases, cases1, uniform
from ..tensor import value_of


# --------------------------------------------------------------------------------------------
# Shapes

@primitive(vjp=[lambda g, out, x, *, shape: reshape(g, shape_of(x))],
           jvp=[lambda t, out, x, *, shape: reshape(t, shape)],
           sympy=lambda x, **params: x,  # of a scalar
           samples=cases1(((2, 3), {"shape": (3, 2)}), ((6,), {"shape": (2, -1)}), ((), {"shape": (1, 1)})))
def reshape(x, *, shape):
    """``x`` with a new shape (same elements, C order)."""
    return np.reshape(x, shape)


def _inverse_axes(axes, ndim):
    return None if axes is None else tuple(np.argsort([a % ndim for a in axes]))


@primitive(vjp=[lambda g, out, x, *, axes: transpose(g, axes=_inverse_axes(axes, len(shape_of(x))))],
           jvp=[lambda t, out, x, *, axes: transpose(t, axes=axes)],
           sympy=lambda x, **params: x,  # of a scalar
           samples=cases1(((2, 3), {"axes": None}), ((2, 3, 4), {"axes": (2, 0, 1)}), ((2, 3, 4), {"axes": (0, 2, 1)})))
def transpose(x, *, axes=None):
    """Permute the axes (reverse them by default)."""
    return np.transpose(x, axes)


def normalize_index(index):
    """Static index for getitem: Tensors become their values, lists become arrays."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        item = value_of(item)
        if isinstance(item, list):      # an empty list selects nothing, as NumPy's x[[]] (integers, not floats)
            item = np.asarray(item) if item else np.zeros(0, dtype=np.intp)
        out.append(item)
    return tuple(out)


def _is_basic(index):
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in index)


def _getitem_samples(rng):
    x = uniform(rng, -2, 2, (4, 3))
    return [((x,), {"index": i}) for i in [(1,), (slice(1, 3),), (Ellipsis, 0), (np.array([0, 2, 0]),),
                                         (x > 0,), (slice(None), None, slice(None, None, 2))]]


@primitive(vjp=[lambda g, out, x, *, index: scatter_add(g, index=index, shape=shape_of(x))],
           jvp=[lambda t, out, x, *, index: getitem(t, index=index)],
           samples=_getitem_samples)
def getitem(x, *, index):
    """``x[index]``: NumPy indexing (basic and advanced). Repeated indices add up in the gradient."""
    return np.asarray(x)[index]


def _scatter_samples(rng):
    return [((uniform(rng, -2, 2, (3,)),), {"index": (np.array([0, 2, 0]),), "shape": (4,)}),
            ((uniform(rng, -2, 2, (2, 3)),), {"index": (slice(1, 3),), "shape": (4, 3)})]


@primitive(vjp=[lambda g, out, x, *, index, shape: getitem(g, index=index)],
           jvp=[lambda t, out, x, *, index, shape: scatter_add(t, index=index, shape=shape)],
           samples=_scatter_samples)
def scatter_add(x, *, index, shape):
    """Zeros of ``shape`` with ``x`` added at ``index`` (the adjoint of getitem)."""
    x = np.asarray(x)
    out = np.zeros(shape, dtype=x.dtype)
    if _is_basic(index):
        out[index] = x
    else:
        np.add.at(out, index, x)
    return out


def _piece(shapes, axis, i):
    """The index of the i-th input inside the concatenation of inputs of ``shapes``."""
    ndim = len(shapes[0])
    axis %= ndim
    start = int(np.sum([s[axis] for s in shapes[:i]], dtype=int))
    return (slice(None),) * axis + (slice(start, start + shapes[i][axis]),)


def _concat_vjp(g, out, *xs, axis, argnum):
    return getitem(g, index=_piece([shape_of(x) for x in xs], axis, argnum))


def _concat_jvp(t, out, *xs, axis, argnum):
    return scatter_add(t, index=_piece([shape_of(x) for x in xs], axis, argnum), shape=shape_of(out))


@primitive(vjp=_concat_vjp, jvp=_concat_jvp,
           samples=cases((((2, 3), (1, 3)), {"axis": 0}), (((2, 1), (2, 2), (2, 3)), {"axis": -1})))
def concatenate(*xs, axis=0):
    """Join a sequence of arrays along an existing axis: ``concatenate([a, b], axis=0)``."""
    return np.concatenate(xs, axis=axis)


def _stack_index(ndim_out, axis, i):
    return (slice(None),) * (axis % ndim_out) + (i,)


def _stack_vjp(g, out, *xs, axis, argnum):
    return getitem(g, index=_stack_index(len(shape_of(out)), axis, argnum))


def _stack_jvp(t, out, *xs, axis, argnum):
    return scatter_add(t, index=_stack_index(len(shape_of(out)), axis, argnum), shape=shape_of(out))


@primitive(vjp=_stack_vjp, jvp=_stack_jvp,
           samples=cases((((3,), (3,)), {"axis": 0}), (((2, 3), (2, 3), (2, 3)), {"axis": -1})))
def stack(*xs, axis=0):
    """Join a sequence of same-shaped arrays along a new axis: ``stack([a, b], axis=0)``."""
    first = xs[0]
    if axis == 0 and all(x.__class__ is np.ndarray and x.shape == first.shape and x.dtype == first.dtype for x in xs):
        return np.array(xs)            # the same copy as np.stack's, without its Python-level checks
    return np.stack(xs, axis=axis)
