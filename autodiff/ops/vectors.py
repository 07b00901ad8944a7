"""Products and norms composed from primitives (matmul, einsum, mul, getitem...): dot, inner,
outer, tensordot, cross, trace, norm. Composed, they need no rules of their own: the gradient is
the chain rule through the primitives they are made of.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..primitives import shape_of
from ..tensor import value_of
from .arrays import _axes, _along, diagonal, ravel
from .elementwise import abs, heaviside, mul, pow_const, sqrt
from .linalg import _LETTERS, einsum, matmul
from .reductions import max, min, sum
from .shapes import getitem, stack


def tensordot(a, b, axes=2):
    """Sum of products over the last ``axes`` axes of a and the first of b (or over the given pairs
    of axes), as ``np.tensordot``: an einsum."""
    na, nb = len(shape_of(a)), len(shape_of(b))
    if isinstance(axes, (int, np.integer)):
        pa, pb = tuple(range(na - int(axes), na)), tuple(range(int(axes)))
    else:
        pa, pb = (_axes(ax, n, "tensordot") for ax, n in zip(axes, (na, nb)))
    if len(pa) != len(pb):
        raise ValueError(f"tensordot: axes {axes} pair {len(pa)} axes of a with {len(pb)} of b")
    la, lb = list(_LETTERS[:na]), list(_LETTERS[na:na + nb])
    for i, j in zip(pa, pb):
        lb[j] = la[i]
    out = [c for k, c in enumerate(la) if k not in pa] + [c for k, c in enumerate(lb) if k not in pb]
    return einsum("".join(la) + "," + "".join(lb) + "->" + "".join(out), a, b)


def dot(a, b):
    """``np.dot``: a product for numbers, matmul for vectors and matrices, and for N-d arrays the sum
    over a's last axis and b's second-to-last."""
    na, nb = len(shape_of(a)), len(shape_of(b))
    if na == 0 or nb == 0:
        return mul(a, b)
    if nb <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([na - 1], [nb - 2]))


def inner(a, b):
    """Sum over the last axes of a and b (``np.inner``; a product for numbers)."""
    na, nb = len(shape_of(a)), len(shape_of(b))
    if na == 0 or nb == 0:
        return mul(a, b)
    return tensordot(a, b, axes=([na - 1], [nb - 1]))


def outer(a, b):
    """``ravel(a)[:, None] * ravel(b)[None, :]`` (``np.outer``)."""
    return einsum("i,j->ij", ravel(a), ravel(b))


def vdot(a, b):
    """Sum of the products of the flattened arrays (real inputs: ``np.vdot``)."""
    return sum(ravel(a) * ravel(b))


def cross(a, b, axis=-1):
    """The cross product a x b of 3-vectors along ``axis`` (broadcasting the others)."""
    na, nb = len(shape_of(a)), len(shape_of(b))
    (ia,), (ib,) = _axes(axis, na, "cross"), _axes(axis, nb, "cross")
    if shape_of(a)[ia] != 3 or shape_of(b)[ib] != 3:
        raise ValueError(f"cross: both vectors need 3 components along axis {axis}; got shapes "
                         f"{shape_of(a)} and {shape_of(b)}")
    (a0, a1, a2), (b0, b1, b2) = ([getitem(v, index=_along(i, n, k)) for k in range(3)]
                                  for v, i, n in ((a, ia, na), (b, ib, nb)))
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=axis)


def trace(x, offset=0, axis1=0, axis2=1):
    """Sum of the diagonal (``np.trace``)."""
    return sum(diagonal(x, offset, axis1, axis2), axis=-1)


def _root(total, p):
    """total ** (1/p) for total >= 0, with the gradient 0 (a subgradient) where total is 0: the double-where
    pattern written with the step H (total + 1 - H is 1 there), so that no 0 / 0 reaches the gradient
    (the root's derivative is infinite at 0), and so that compiled code computes the mask too."""
    positive = heaviside(total, 0.0)
    safe = total + (1.0 - positive)
    return positive * (sqrt(safe) if p == 2 else pow_const(safe, p=1.0 / p))


def _root_of_sum(squares, axis, keepdims):
    """sqrt(sum(squares)), its gradient 0 where the sum is 0."""
    return _root(sum(squares, axis=axis, keepdims=keepdims), 2)


def _power_norm(x, p, axis, keepdims):
    return _root(sum(pow_const(abs(x), p=p), axis=axis, keepdims=keepdims), p)


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector and matrix norms, as ``np.linalg.norm``.

    Vectors (1-d, or one ``axis``): ord None or 2 (Euclidean), 1, inf, -inf, 0 (the count of
    non-zeros, a constant) or any other p (sum |x|^p)^(1/p). Matrices (2-d, or a pair of axes):
    ord None or 'fro' (Frobenius), 1 (largest column sum of |x|), inf (largest row sum), -1, -inf.
    At x = 0 the gradient of the 2- and p-norms is 0 (a subgradient, as PyTorch), not NaN.
    The matrix 2-norm and nuclear norm need the SVD, which autodiff does not differentiate.
    """
    nd = len(shape_of(x))
    if axis is None:
        if ord is None:
            return _root_of_sum(x * x, None, keepdims)
        axis = tuple(range(nd))
    axes = _axes(axis, nd, "norm")
    if len(axes) == 1:
        (a,) = axes
        if ord is None or ord == 2:
            return _root_of_sum(x * x, a, keepdims)
        if ord == np.inf:
            return max(abs(x), axis=a, keepdims=keepdims)
        if ord == -np.inf:
            return min(abs(x), axis=a, keepdims=keepdims)
        if ord == 0:
            return np.sum(value_of(x) != 0, axis=a, keepdims=keepdims).astype(np.asarray(value_of(x)).dtype)
        if ord == 1:
            return sum(abs(x), axis=a, keepdims=keepdims)
        if isinstance(ord, str):
            raise ValueError(f"norm: ord={ord!r} is a matrix norm; a vector norm takes a number")
        return _power_norm(x, float(ord), a, keepdims)
    if len(axes) != 2:
        raise ValueError(f"norm: axis must name one axis (a vector norm) or two (a matrix norm), got {axis}")
    rows, cols = axes
    if ord is None or ord == "fro":
        return _root_of_sum(x * x, axes, keepdims)
    if ord in (1, -1, np.inf, -np.inf):
        summed, reduced = (rows, cols) if builtins.abs(ord) == 1 else (cols, rows)
        sums = sum(abs(x), axis=summed, keepdims=True)
        extremum = max if ord > 0 else min
        out = extremum(sums, axis=reduced, keepdims=True)
        return out if keepdims else getitem(out, index=tuple(0 if i in axes else slice(None) for i in range(nd)))
    raise ValueError(f"norm: matrix ord must be None, 'fro', 1, -1, inf or -inf (the 2-norm and the nuclear "
                     f"norm need the SVD, which autodiff does not differentiate), got {ord!r}")
