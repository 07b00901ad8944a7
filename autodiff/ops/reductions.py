"""Reductions: sums, means, extrema, logsumexp, softmax and log-softmax over axes.

Ties are split evenly: ``max(x)`` shares the gradient equally among all the maxima (as JAX and
PyTorch's ``amax``); the forward rule uses the same weights, so both modes agree. The rules read no
value as a constant (the ties of max and min come from ``heaviside``, prod's zeros are handled by
exclusive products), so a recorded rule holds at every input and ``autodiff.compile`` compiles them.
"""
from __future__ import annotations

import builtins

import numpy as np

from .. import buffers
from ..primitives import broadcast_to, primitive, shape_of, sum_axes
from ..samples import cases1
from ..tensor import Tensor, every_example, value_of
from .elementwise import clip, exp, heaviside, real_only, sqrt, where
from .shapes import concatenate, getitem, reshape, transpose


def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return tuple(int(a) % ndim if ndim else 0 for a in axes)


def _keepdims_shape(shape, axis):
    axes = _normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand(g, x_shape, axis, keepdims):
    """Reshape a reduction's cotangent so that it broadcasts against the reduced input."""
    if keepdims:
        return g
    return reshape(g, _keepdims_shape(x_shape, axis))



# --------------------------------------------------------------------------------------------
# Reductions

@primitive(vjp=[lambda g, out, x, *, axis, keepdims: broadcast_to(_expand(g, shape_of(x), axis, keepdims), shape_of(x))],
           jvp=[lambda t, out, x, *, axis, keepdims: sum(t, axis=axis, keepdims=keepdims)],
           sympy=lambda x, **params: x,  # of a scalar
           samples=cases1(((3,), {"axis": None, "keepdims": False}), ((2, 3), {"axis": 1, "keepdims": False}),
                          ((2, 3, 2), {"axis": (0, 2), "keepdims": True}), ((), {"axis": None, "keepdims": False})))
def sum(x, *, axis=None, keepdims=False):
    """Sum over ``axis`` (all axes by default)."""
    return sum_axes(x, axis, keepdims)


def _count(x_shape, out_shape):
    return int(np.prod(x_shape)) // builtins.max(int(np.prod(out_shape)), 1)


@primitive(vjp=[lambda g, out, x, *, axis, keepdims:
                broadcast_to(_expand(g, shape_of(x), axis, keepdims) / _count(shape_of(x), shape_of(out)), shape_of(x))],
           jvp=[lambda t, out, x, *, axis, keepdims: mean(t, axis=axis, keepdims=keepdims)],
           sympy=lambda x, **params: x,  # of a scalar
           samples=cases1(((3,), {"axis": None, "keepdims": False}), ((2, 3), {"axis": 0, "keepdims": False}),
                          ((2, 3, 2), {"axis": -1, "keepdims": True})))
def mean(x, *, axis=None, keepdims=False):
    """Mean over ``axis`` (all axes by default)."""
    return np.mean(x, axis=axis, keepdims=keepdims)


def _finite(v, dtype):
    """``v`` with +-inf clipped to the dtype's largest numbers: the same order and ties, and x - m is no longer
    inf - inf (NaN) where a slice's extremum is infinite."""
    if np.dtype(dtype).kind != "f":
        return v
    big = float(np.finfo(dtype).max)
    return clip(v, a_min=-big, a_max=big)


def _tie_weights(x, out, axis, keepdims, sign):
    """1/k on each of the k maxima (sign 1) or minima (sign -1) of each reduced slice, 0 elsewhere: ties split
    evenly. Written with the engine's ops, nothing read from the values, so a recorded rule computes the ties
    at each input (autodiff.compile): H(x - max) with H(0) = 1 is 1 at a maximum and 0 below it."""
    dtype = x.dtype
    gap = _finite(x, dtype) - _finite(_expand(out, shape_of(x), axis, keepdims), dtype)
    hit = heaviside(gap if sign > 0 else -gap, 1.0)
    return hit / sum(hit, axis=_normalize_axes(axis, len(shape_of(x))), keepdims=True)


def _extremum_gap(x, *, axis, keepdims, sign):
    """Kink of max (sign=1) or min (sign=-1): the gap between the two largest (smallest) of each
    slice, zero at a tie. Written with the engine's ops, so its rate of change has a tangent."""
    vx = value_of(x) * sign
    top = np.max(vx, axis=axis, keepdims=True)
    ties = np.sum(vx == top, axis=axis, keepdims=True) > 1
    first = max(x * sign, axis=axis, keepdims=True)
    second = max(where(vx == top, -np.inf, x * sign), axis=axis, keepdims=True)
    return where(ties, 0.0, first - where(np.isfinite(value_of(second)), second, first))


def _extremum_vjp(sign):
    def vjp(g, out, x, *, axis, keepdims):
        if x.__class__ is not np.ndarray or not isinstance(g, (np.ndarray, np.generic)):
            return _expand(g, shape_of(x), axis, keepdims) * _tie_weights(x, out, axis, keepdims, sign)
        # plain arrays (an eager sweep): the same weights in three passes, the ties found by equality
        hit = np.equal(x, _expand(out, x.shape, axis, keepdims))
        count = np.sum(hit, axis=_normalize_axes(axis, x.ndim), keepdims=True)
        c = np.multiply(_expand(np.asarray(g), x.shape, axis, keepdims), hit, out=buffers.empty(x.shape, g.dtype))
        return np.divide(c, count, out=c)
    return vjp


def _extremum_rules(sign):
    vjp = [_extremum_vjp(sign)]
    jvp = [lambda t, out, x, *, axis, keepdims:
           sum(t * _tie_weights(x, out, axis, keepdims, sign), axis=axis, keepdims=keepdims)]
    return dict(vjp=vjp, jvp=jvp)


_REDUCE_CASES = cases1(((5,), {"axis": None, "keepdims": False}), ((2, 3), {"axis": 1, "keepdims": False}),
                       ((2, 3, 2), {"axis": 0, "keepdims": True}), ((2, 3, 4), {"axis": (0, 2), "keepdims": False}))


@primitive(**_extremum_rules(1), sympy=lambda x, **params: x,  # of a scalar
           samples=_REDUCE_CASES,
           kinks=[lambda x, *, axis, keepdims: _extremum_gap(x, axis=axis, keepdims=keepdims, sign=1)])
def max(x, *, axis=None, keepdims=False):
    """Maximum over ``axis``; the gradient is shared equally among tied maxima."""
    real_only("max", x)
    return (np.maximum.reduce if x.__class__ is np.ndarray else np.max)(x, axis=axis, keepdims=keepdims)


@primitive(**_extremum_rules(-1), sympy=lambda x, **params: x,  # of a scalar
           samples=_REDUCE_CASES,
           kinks=[lambda x, *, axis, keepdims: _extremum_gap(x, axis=axis, keepdims=keepdims, sign=-1)])
def min(x, *, axis=None, keepdims=False):
    """Minimum over ``axis``; the gradient is shared equally among tied minima."""
    real_only("min", x)
    return (np.minimum.reduce if x.__class__ is np.ndarray else np.min)(x, axis=axis, keepdims=keepdims)


def _softmax_of_input(x, out, axis, keepdims):
    return exp(x - _expand(out, shape_of(x), axis, keepdims))


@primitive(vjp=[lambda g, out, x, *, axis, keepdims:
                _expand(g, shape_of(x), axis, keepdims) * _softmax_of_input(x, out, axis, keepdims)],
           jvp=[lambda t, out, x, *, axis, keepdims:
                sum(t * _softmax_of_input(x, out, axis, keepdims), axis=axis, keepdims=keepdims)],
           samples=cases1(((4,), {"axis": None, "keepdims": False}), ((2, 3), {"axis": 1, "keepdims": False}),
                          ((2, 3), {"axis": 0, "keepdims": True})))
def logsumexp(x, *, axis=None, keepdims=False):
    """log(sum(exp(x))) over ``axis``, shifted by the maximum so that it never overflows."""
    x = np.asarray(x)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.reshape(out, np.shape(np.sum(x, axis=axis)))


def _softmax_rule(g, out, x, *, axis):
    return out * (g - sum(g * out, axis=axis, keepdims=True))


@primitive(vjp=[_softmax_rule], jvp=[_softmax_rule],  # the softmax Jacobian is symmetric
           samples=cases1(((4,), {"axis": -1}), ((2, 3), {"axis": 0}), ((2, 3, 4), {"axis": 1})))
def softmax(x, *, axis=-1):
    """exp(x_i) / sum_j exp(x_j) along ``axis``; Jacobian y_i (delta_ij - y_j)."""
    x = np.asarray(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@primitive(vjp=[lambda g, out, x, *, axis: g - exp(out) * sum(g, axis=axis, keepdims=True)],
           jvp=[lambda t, out, x, *, axis: t - sum(exp(out) * t, axis=axis, keepdims=True)],
           samples=cases1(((4,), {"axis": -1}), ((2, 3), {"axis": 0})))
def log_softmax(x, *, axis=-1):
    """x_i - logsumexp(x) along ``axis``: the log of softmax, without overflow or log(0)."""
    x = np.asarray(x)
    return x - logsumexp.primitive.impl(x, axis=axis, keepdims=True)


# --------------------------------------------------------------------------------------------
# Products and running sums

def _single_axis(name, axis):
    if axis is not None and not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be None or an int, got {axis!r}")


def _axes_given(name, axis):
    if axis is not None and not isinstance(axis, (int, np.integer)) and not (
            isinstance(axis, tuple) and all(isinstance(a, (int, np.integer)) for a in axis)):
        raise TypeError(f"{name}: axis must be None, an int or a tuple of ints, got {axis!r}")


def _to_last(x, axis):
    """``x`` with the axes of ``axis`` (an int, a tuple; None: all) moved to the end as one, and the way back."""
    shape = shape_of(x)
    axes = _normalize_axes(axis, len(shape))
    order = tuple(i for i in range(len(shape)) if i not in axes) + axes
    moved = tuple(shape[i] for i in order)
    kept = moved[:len(shape) - len(axes)]
    if order == tuple(range(len(shape))):
        return reshape(x, kept + (-1,)), lambda y: reshape(y, shape)
    back = tuple(np.argsort(order))
    return reshape(transpose(x, axes=order), kept + (-1,)), lambda y: transpose(reshape(y, moved), axes=back)


def _rows(last):
    """(..., n) -> (..., n, n) whose every row is the last axis, and n."""
    n = shape_of(last)[-1]
    return broadcast_to(reshape(last, shape_of(last)[:-1] + (1, n)), shape_of(last) + (n,)), n


def _exclusive_products(x, axis):
    """prod_{j != i} x_j along ``axis`` for every i, without dividing: a product tree over the axis (padded with
    1s to a power of two), each x_i multiplied by its sibling's product at every level. O(n log n), exact at
    zeros, nothing read from the values, and polynomial, so differentiable to any order."""
    last, back = _to_last(x, axis)
    lead, n = shape_of(last)[:-1], shape_of(last)[-1]
    size = 1 << builtins.max(n - 1, 0).bit_length()
    level = last if size == n else concatenate([last, np.ones(lead + (size - n,), x.dtype)], axis=-1)
    others, span = None, 1        # span: the leaves under a node of this level
    while span < size:
        pairs = reshape(level, lead + (size // (2 * span), 2))
        sibling = getitem(pairs, index=(Ellipsis, slice(None, None, -1)))
        spread = reshape(broadcast_to(reshape(sibling, lead + (size // span, 1)), lead + (size // span, span)),
                         lead + (size,))
        others = spread if others is None else others * spread
        level, span = prod(pairs, axis=-1), 2 * span
    if others is None:            # one element: the empty product
        return back(np.ones(shape_of(last), x.dtype))
    return back(others if size == n else getitem(others, index=(Ellipsis, slice(0, n))))


def _prod_others(x, out, axis, keepdims):
    """d prod / d x_i = prod_{j != i} x_j. On plain arrays (nothing recorded) out / x_i where no x_j is 0;
    a recorded rule (Tensors: a higher derivative, autodiff.compile) the exclusive products, which read no value
    and so hold at any input."""
    inner = every_example(x)      # the array behind vmap's levels; a Tensor where compile stages the map
    if isinstance(x, Tensor) or isinstance(inner, Tensor) or np.any(inner == 0):   # vmap: a zero in any example
        return _exclusive_products(x, axis)                                         # takes this path for all
    return _expand(out, shape_of(x), axis, keepdims) / x


def _prod_samples(rng):
    with_zero = rng.uniform(-2, 2, (2, 3))
    with_zero[0, 1] = 0.0
    two_zeros = rng.uniform(-2, 2, (4,))
    two_zeros[[0, 2]] = 0.0
    three = rng.uniform(-2, 2, (2, 3, 5))
    three[1, 2, [0, 3]] = 0.0
    return [((rng.uniform(-2, 2, (4,)),), {"axis": None, "keepdims": False}),
            ((rng.uniform(-2, 2, (2, 3)),), {"axis": 1, "keepdims": False}),
            ((rng.uniform(-2, 2, (2, 3)),), {"axis": 0, "keepdims": True}),
            ((with_zero,), {"axis": 1, "keepdims": False}), ((two_zeros,), {"axis": None, "keepdims": False}),
            ((three,), {"axis": (0, 2), "keepdims": True}),
            ((np.asarray(rng.uniform(-2, 2)),), {"axis": None, "keepdims": False})]


@primitive(vjp=[lambda g, out, x, *, axis, keepdims:
                _expand(g, shape_of(x), axis, keepdims) * _prod_others(x, out, axis, keepdims)],
           jvp=[lambda t, out, x, *, axis, keepdims: sum(t * _prod_others(x, out, axis, keepdims), axis=axis,
                                                          keepdims=keepdims)],
           sympy=lambda x, **params: x,  # of a scalar
           samples=_prod_samples)
def prod(x, *, axis=None, keepdims=False):
    """Product over ``axis`` (None: all elements); d/dx_i = prod_{j != i} x_j, exact at zeros too."""
    _axes_given("prod", axis)
    return np.prod(x, axis=axis, keepdims=keepdims)


def _reverse_cumsum(g, axis):
    """sum_{j >= i} g_j along ``axis``: the adjoint of a running sum."""
    return sum(g, axis=axis, keepdims=True) - cumsum(g, axis=axis) + g


@primitive(vjp=[lambda g, out, x, *, axis: reshape(_reverse_cumsum(g, 0 if axis is None else axis), shape_of(x))],
           jvp=[lambda t, out, x, *, axis: cumsum(t, axis=axis)],
           samples=cases1(((4,), {"axis": 0}), ((2, 3), {"axis": 1}), ((2, 3), {"axis": None}),
                          ((2, 3, 2), {"axis": -2})))
def cumsum(x, *, axis=None):
    """Running sum along ``axis`` (None: of the flattened array); its adjoint sums from the end."""
    _single_axis("cumsum", axis)
    return np.cumsum(x, axis=axis)


def cumprod(x, axis=None):
    """Running product along ``axis`` (None: of the flattened array), composed from ``prod``:
    out_k = prod_i m_ki with m_ki = x_i for i <= k, else 1. O(n^2) along the axis, and exact where
    an x_i is 0 (dividing by x_i, the usual shortcut, is not)."""
    _single_axis("cumprod", axis)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    last, back = _to_last(x, axis)
    rows, n = _rows(last)
    return back(prod(where(np.tril(np.ones((n, n), dtype=bool)), rows, 1.0), axis=-1))


def var(x, axis=None, ddof=0, keepdims=False):
    """Variance over ``axis``: mean of squared deviations, divided by n - ddof (NumPy's ``ddof``)."""
    centred = x - mean(x, axis=axis, keepdims=True)
    n = _count(shape_of(x), _keepdims_shape(shape_of(x), axis))
    return sum(centred * centred, axis=axis, keepdims=keepdims) / (n - ddof)


def std(x, axis=None, ddof=0, keepdims=False):
    """Standard deviation over ``axis``: sqrt(var)."""
    return sqrt(var(x, axis=axis, ddof=ddof, keepdims=keepdims))
