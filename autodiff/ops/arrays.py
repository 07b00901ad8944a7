"""Array manipulation composed from the shape primitives, so that each is differentiable in both
modes without rules of its own: squeeze, expand_dims, ravel, moveaxis, swapaxes, flip, roll,
take, take_along_axis, pad, triu, tril, diagonal, tile, repeat, diag; the functional update ``x.at[i].set(v)``;
and the ``astype`` primitive. (The constructors, eye, zeros, ones, full and the ``*_like``, are in
:mod:`.constructors`.)

Every gather here is a ``getitem`` with a static index built from the shapes, every scatter a
``scatter_add``: their rules (each the other's adjoint) carry the gradient.
"""
from __future__ import annotations

import numpy as np

from ..primitives import broadcast_to, primitive, shape_of
from ..tensor import Tensor, value_of
from .elementwise import where
from .shapes import getitem, normalize_index, reshape, scatter_add, transpose


def _axes(axis, ndim, name):
    """Non-negative axes from an int, a tuple of ints or None (all axes)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)) and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                                                 for a in axis):
        axes = tuple(axis)
    else:
        raise TypeError(f"{name}: axis must be an int, a tuple of ints or None, got {axis!r}")
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{name}: axis {a} is out of range for an array of {ndim} dimension(s)")
    normal = tuple(int(a) % max(ndim, 1) for a in axes)
    if len(set(normal)) != len(normal):
        raise ValueError(f"{name}: axis {axis!r} names one axis twice (repeated axis)")
    return normal


def _along(axis, ndim, item):
    """The index that applies ``item`` on ``axis`` and takes everything on the others."""
    return (slice(None),) * axis + (item,) + (slice(None),) * (ndim - axis - 1)


# --------------------------------------------------------------------------------------------
# Shapes (all reshapes or transposes)

def ravel(x):
    """The elements in one dimension (C order): ``reshape(x, (-1,))``; also ``x.flatten()``."""
    return reshape(x, shape=(-1,))


def squeeze(x, axis=None):
    """``x`` without its axes of length 1 (or only the given ones, which must have length 1)."""
    shape = shape_of(x)
    axes = _axes(axis, len(shape), "squeeze")
    if axis is not None and any(shape[a] != 1 for a in axes):
        raise ValueError(f"squeeze: axis {axis} of shape {shape} does not have length 1")
    return reshape(x, shape=tuple(n for i, n in enumerate(shape) if i not in axes or n != 1))


def expand_dims(x, axis):
    """``x`` with new axes of length 1 at the positions ``axis`` (an int or a tuple) of the result."""
    shape = shape_of(x)
    axes = _axes(axis, len(shape) + (1 if isinstance(axis, (int, np.integer)) else len(axis)), "expand_dims")
    out, rest = [], iter(shape)
    for i in range(len(shape) + len(axes)):
        out.append(1 if i in axes else next(rest))
    return reshape(x, shape=tuple(out))


def moveaxis(x, source, destination):
    """``x`` with the axes ``source`` moved to the positions ``destination`` (as ``np.moveaxis``)."""
    nd = len(shape_of(x))
    src, dst = _axes(source, nd, "moveaxis"), _axes(destination, nd, "moveaxis")
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must name the same number of axes")
    order = [a for a in range(nd) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, axes=tuple(order))


def swapaxes(x, axis1, axis2):
    """``x`` with two axes exchanged."""
    nd = len(shape_of(x))
    (a,), (b,) = _axes(axis1, nd, "swapaxes"), _axes(axis2, nd, "swapaxes")
    order = list(range(nd))
    order[a], order[b] = b, a
    return transpose(x, axes=tuple(order))


# --------------------------------------------------------------------------------------------
# Gathers: getitem with a static index

def flip(x, axis=None):
    """``x`` with the order of the elements reversed along ``axis`` (all axes by default)."""
    nd = len(shape_of(x))
    axes = _axes(axis, nd, "flip")
    return getitem(x, index=tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(nd)))


def roll(x, shift, axis=None):
    """Elements shifted by ``shift`` along ``axis``, those past the end coming back at the start
    (axis None: of the flattened array, shape kept), as ``np.roll``."""
    if axis is None:
        return reshape(roll(ravel(x), shift, 0), shape=shape_of(x))
    shape = shape_of(x)
    shifts, axes = np.broadcast_arrays(np.atleast_1d(shift), np.atleast_1d(axis))
    for s, a in zip(shifts, axes):
        (a,) = _axes(int(a), len(shape), "roll")
        x = getitem(x, index=_along(a, len(shape), (np.arange(shape[a]) - int(s)) % shape[a]))
    return x


def take(x, indices, axis=None):
    """Elements at ``indices`` along ``axis`` (None: of the flattened array), as ``np.take``."""
    indices = np.asarray(value_of(indices))
    if axis is None:
        return getitem(ravel(x), index=(indices,))
    nd = len(shape_of(x))
    (a,) = _axes(axis, nd, "take")
    return getitem(x, index=_along(a, nd, indices))


def take_along_axis(x, indices, axis):
    """``x`` gathered at ``indices`` along ``axis``; ``indices`` has x's number of dimensions and the
    other axes broadcast (as ``np.take_along_axis``; axis None: of the flattened array)."""
    indices = np.asarray(value_of(indices))
    if axis is None:
        return getitem(ravel(x), index=(indices.ravel(),))
    shape = shape_of(x)
    if indices.ndim != len(shape):
        raise ValueError(f"take_along_axis: indices must have {len(shape)} dimensions like x, got {indices.ndim}")
    (a,) = _axes(axis, len(shape), "take_along_axis")
    index = tuple(indices if i == a else np.arange(n).reshape((-1,) + (1,) * (len(shape) - i - 1))
                  for i, n in enumerate(shape))
    return getitem(x, index=index)


def pad(x, pad_width, mode="constant", constant_values=0):
    """``x`` padded as ``np.pad``. mode 'constant' (with a number ``constant_values``) scatters x
    into the larger array; 'edge', 'reflect', 'symmetric' and 'wrap' gather from x (np.pad of the
    positions gives the index along each axis)."""
    shape = shape_of(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (len(shape), 2))
    if mode == "constant":
        if np.ndim(value_of(constant_values)) != 0:
            raise ValueError("pad: constant_values must be a number for autodiff's pad")
        index = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, shape))
        padded = tuple(int(lo + n + hi) for (lo, hi), n in zip(widths, shape))
        out = scatter_add(x, index=index, shape=padded)
        if value_of(constant_values) != 0:
            out = out + np.pad(np.zeros(shape, dtype=np.asarray(value_of(x)).dtype), widths,
                               constant_values=value_of(constant_values))
        return out
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise ValueError(f"pad: mode must be 'constant', 'edge', 'reflect', 'symmetric' or 'wrap', got {mode!r}")
    for a, ((lo, hi), n) in enumerate(zip(widths, shape)):
        x = getitem(x, index=_along(a, len(shape), np.pad(np.arange(n), (lo, hi), mode=mode)))
    return x


def diagonal(x, offset=0, axis1=0, axis2=1):
    """The diagonal (``offset`` above it, below if negative) of the matrices on ``axis1``/``axis2``,
    as a last axis (as ``np.diagonal``)."""
    shape = shape_of(x)
    nd = len(shape)
    (a,), (b,) = _axes(axis1, nd, "diagonal"), _axes(axis2, nd, "diagonal")
    if a == b:
        raise ValueError("diagonal: axis1 and axis2 must differ")
    rest = tuple(i for i in range(nd) if i not in (a, b))
    moved = transpose(x, axes=rest + (a, b))
    n = max(0, min(shape[a] + min(offset, 0), shape[b] - max(offset, 0)))
    rows = np.arange(n) - min(offset, 0)
    return getitem(moved, index=(Ellipsis, rows, rows + offset))


def triu(x, k=0):
    """The upper triangle of the last two axes (from the ``k``-th diagonal up); zeros below."""
    return where(np.triu(np.ones(shape_of(x)[-2:], dtype=bool), k), x, 0)


def tril(x, k=0):
    """The lower triangle of the last two axes (up to the ``k``-th diagonal); zeros above."""
    return where(np.tril(np.ones(shape_of(x)[-2:], dtype=bool), k), x, 0)


def tile(x, reps):
    """``x`` repeated ``reps`` times along each axis (as ``np.tile``): a broadcast of x with a new
    axis before each of its own, reshaped; the cotangent sums the copies (broadcast_to's rule).

    >>> import autodiff as ad
    >>> ad.grad(lambda x: ad.sum(ad.tile(x, 3) * [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))(np.array([1.0, 1.0]))
    array([ 9., 12.])
    """
    reps = tuple(int(r) for r in np.atleast_1d(value_of(reps)))
    shape = shape_of(x)
    nd = max(len(shape), len(reps))
    shape, reps = (1,) * (nd - len(shape)) + tuple(shape), (1,) * (nd - len(reps)) + reps
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative, got {reps}")
    spread = broadcast_to(reshape(x, shape=tuple(n for s in shape for n in (1, s))),
                          shape=tuple(n for r, s in zip(reps, shape) for n in (r, s)))
    return reshape(spread, shape=tuple(r * s for r, s in zip(reps, shape)))


def repeat(x, repeats, axis=None):
    """Each element of ``x`` repeated ``repeats`` times (an int, or one count per element) along
    ``axis`` (None: of the flattened array), as ``np.repeat``: a gather whose cotangent adds up the copies.

    >>> import autodiff as ad
    >>> ad.grad(lambda x: ad.sum(ad.repeat(x, [1, 3]) * 2.0))(np.array([5.0, 7.0]))
    array([2., 6.])
    """
    if axis is None:
        x, axis = ravel(x), 0
    shape = shape_of(x)
    (a,) = _axes(axis, len(shape), "repeat")
    index = np.repeat(np.arange(shape[a]), np.asarray(value_of(repeats), dtype=np.intp))
    return getitem(x, index=_along(a, len(shape), index))


def diag(v, k=0):
    """As ``np.diag``: a vector gives the square matrix with it on the ``k``-th diagonal (a scatter),
    a matrix gives its ``k``-th diagonal.

    >>> import autodiff as ad
    >>> ad.diag(np.array([1.0, 2.0]), 1)
    array([[0., 1., 0.],
           [0., 0., 2.],
           [0., 0., 0.]])
    """
    shape = shape_of(v)
    if len(shape) == 2:
        return diagonal(v, offset=k)
    if len(shape) != 1:
        raise ValueError(f"diag: input must be 1-d or 2-d, got shape {shape}")
    n, k = shape[0] + abs(int(k)), int(k)
    rows = np.arange(shape[0])
    return scatter_add(v, index=(rows + max(-k, 0), rows + max(k, 0)), shape=(n, n))


# --------------------------------------------------------------------------------------------
# Casting

def _astype_samples(rng):
    return [((rng.uniform(-2, 2, s),), {"dtype": d}) for s, d in [((3,), np.float64), ((2, 3), np.longdouble)]]


@primitive(vjp=[lambda g, out, x, *, dtype: astype(g, dtype=value_of(x).dtype)],
           jvp=[lambda t, out, x, *, dtype: astype(t, dtype=dtype)],
           samples=_astype_samples)
def _astype(x, *, dtype):
    return np.asarray(x).astype(dtype)


def astype(x, dtype):
    """``x`` converted to ``dtype``; the cotangent is converted back to x's dtype. To a bool or integer
    dtype the result is a constant (an untracked Tensor): such a value has no derivative."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "fc" and isinstance(x, Tensor):
        return Tensor._make(x.value.astype(dtype))
    return _astype(x, dtype=dtype)


# --------------------------------------------------------------------------------------------
# Functional item update: x.at[index].set(v) / .add(v), as in JAX

class IndexUpdate:
    """``x.at``: ``x.at[index].set(v)`` and ``.add(v)`` return a new Tensor (``x`` is unchanged).

    Recorded as ``x + scatter_add(v)`` (add) or ``where(hit, 0, x) + scatter_add(v)`` (set), so both
    modes differentiate through x and v. Repeated positions add up in ``add``; ``set`` refuses them
    (which value would win is not defined)."""

    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x

    def __getitem__(self, index):
        return _IndexedUpdate(self.x, normalize_index(index))


class _IndexedUpdate:
    __slots__ = ("x", "index")

    def __init__(self, x, index):
        self.x, self.index = x, index

    def _placed(self, v):
        shape = shape_of(self.x)
        target = np.zeros(shape, dtype=bool)[self.index].shape
        if not isinstance(v, Tensor):
            v = np.asarray(v, dtype=value_of(self.x).dtype)
        try:
            v = broadcast_to(v, shape=target)
        except ValueError:
            raise ValueError(f"at[...]: a value of shape {shape_of(v)} does not fit the selected shape {target}") from None
        return scatter_add(v, index=self.index, shape=shape)

    def get(self):
        """``x[index]``."""
        return getitem(self.x, index=self.index)

    def add(self, v):
        """A copy of x with v added at the index (repeated positions add up, as ``np.add.at``)."""
        return self.x + self._placed(v)

    def set(self, v):
        """A copy of x with the positions at the index replaced by v."""
        counts = scatter_add(np.ones(np.zeros(shape_of(self.x), dtype=bool)[self.index].shape), index=self.index,
                             shape=shape_of(self.x))
        if np.any(counts > 1):
            raise ValueError("at[...].set: the index names some positions more than once, so which value "
                             "would win is not defined; use at[...].add or an index without repeats")
        return where(counts > 0, 0, self.x) + self._placed(v)
