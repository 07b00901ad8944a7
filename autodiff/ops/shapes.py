"""Shapes and indexing: reshape, transpose, getitem and its adjoint scatter_add, concatenate, stack.

(The broadcasting pair ``sum_to`` / ``broadcast_to`` is declared in :mod:`autodiff.primitives`, where
the elementwise rules that need it are built.)
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives import accumulate_rules, primitive, shape_of
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
    x = np.asarray(x)
    if index.__class__ is tuple:
        for item in index:
            if item.__class__ is np.ndarray:
                return _gather(x, index)
    return x[index]


def _gather(x, index):
    """``x[index]`` for an advanced index: one integer array among full slices is np.take (the same copy;
    NumPy's fancy indexing is several times slower); anything else, or an index out of range (NumPy then
    raises), is NumPy's indexing."""
    found = _one_array(index, x.ndim)
    if found is None or found[1].dtype.kind not in "iu" or not 0 <= found[0] < x.ndim or not found[1].size:
        return x[index]
    axis, idx = found
    n = x.shape[axis]
    if idx.min() < -n or idx.max() >= n:
        return x[index]
    return np.take(x, idx, axis=axis, mode="wrap")    # wrap: -1 is the last, as in x[index]


# The eager sweep adds getitem's cotangent into the adjoint it owns, not a zero array of x's shape per use.
accumulate_rules[getitem.primitive] = (lambda acc, g, out, x, *, index: scatter_into(acc, index, g),)


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
        scatter_into(out, index, x)
    return out


def scatter_into(acc, index, x):
    """``np.add.at(acc, index, x)``, in place: repeated indices add up. np.add.at is slow, so one integer
    array among full slices (``table[idx]``'s adjoint) goes through np.bincount, and an index that selects
    no element twice (basic, or one boolean mask) through ``acc[index] += x``; the rest through np.add.at."""
    if _is_basic(index):
        view = acc[index]
        if view.__class__ is np.ndarray:
            _add_into(view, x)
        else:
            acc[index] += x
        return
    found = _one_array(index, acc.ndim)
    if found is not None and found[1].dtype == bool:
        acc[index] += x
    elif found is None or acc.dtype.kind != "f" or not _bincount_into(acc, *found, np.asarray(x)):
        np.add.at(acc, index, x)


def _add_into(view, x):
    """``view += x``. A view of a few columns of a wider array (``acc[:, 0:3]``) cannot be walked as one
    line, and NumPy then runs its inner loop once per row, so a large one is added column by column."""
    x = np.asarray(x)
    if view.ndim and 2 <= view.shape[-1] < 8 and view.size >= 4096 and \
            not (view.flags.c_contiguous and x.flags.c_contiguous and x.shape == view.shape):
        x = np.broadcast_to(x, view.shape)
        for j in range(view.shape[-1]):
            column = view[..., j]
            np.add(column, x[..., j], out=column)
    else:
        np.add(view, x, out=view)


def _one_array(index, ndim):
    """``(axis, array)`` when the index is one integer or boolean array of one or more dimensions among full
    slices and at most one Ellipsis (``x[idx]``, ``x[:, idx]``, ``x[..., mask]``); else None."""
    at = [k for k, item in enumerate(index) if isinstance(item, np.ndarray)]
    if len(at) != 1:
        return None
    k = at[0]
    array = index[k]
    if not array.ndim or array.dtype.kind not in "iub":
        return None
    rest = index[:k] + index[k + 1:]
    if sum(item is Ellipsis for item in rest) > 1 or \
            not all(item is Ellipsis or (isinstance(item, slice) and item == slice(None)) for item in rest):
        return None
    if Ellipsis in index[:k]:       # the axes after the array count from the end
        return ndim - (len(index) - 1 - k) - (array.ndim if array.dtype == bool else 1), array
    return k, array


def _bincount_into(acc, axis, idx, x):
    """Add ``x`` into ``acc`` at ``idx`` along ``axis`` with np.bincount (float64 sums in np.add.at's order);
    False, adding nothing, when x is not real or an index is out of range (np.add.at then raises)."""
    if x.dtype.kind != "f" or not 0 <= axis < acc.ndim:
        return False
    n, idx = acc.shape[axis], idx.ravel()
    if idx.size == 0:
        return True
    lo, hi = idx.min(), idx.max()
    if lo < -n or hi >= n:
        return False
    if lo < 0:
        idx = np.where(idx < 0, idx + n, idx)
    idx = idx.astype(np.intp, copy=False)
    m, pre, post = idx.size, math.prod(acc.shape[:axis]), math.prod(acc.shape[axis + 1:])
    g = x.reshape(pre, m, post)
    if pre == 1 and post <= 12 and n <= m:      # a few columns: one bincount each
        total = np.empty((n, post))
        for j in range(post):
            total[:, j] = np.bincount(idx, weights=g[0, :, j], minlength=n)
    else:                                       # one bincount over the flattened positions
        flat = idx[:, None] * post + np.arange(post)
        if pre > 1:
            flat = np.arange(0, pre * n * post, n * post)[:, None, None] + flat
        total = np.bincount(flat.ravel(), weights=g.ravel(), minlength=pre * n * post)
    acc += total.reshape(acc.shape)
    return True


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
