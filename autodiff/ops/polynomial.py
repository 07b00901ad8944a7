"""Polynomial bases: vander (as ``np.vander``), one primitive with the power rule.

The value is built by repeated multiplication, x^k = x^(k-1) * x, one column per step, written into
an array laid out column by column (Fortran order): each step is one pass over contiguous memory,
where ``np.vander``'s ``multiply.accumulate`` walks rows of N numbers. The numbers are NumPy's, bit
for bit (the same products in the same order); only the memory layout differs, which a product
with it (``vander(x) @ w``, BLAS) does not mind. The engine keeps the dtype it is given: float32
stays float32 (``np.vander`` promotes it to float64, ``torch.vander`` keeps it).
"""
from __future__ import annotations

import numpy as np

from ..primitives import primitive, shape_of
from ..samples import cases1
from ..tensor import Tensor, value_of
from .shapes import concatenate, getitem, reshape
from .reductions import sum


def _derivative(out, n, N, increasing):
    """d out[:, j] / dx: p_j x^(p_j - 1), the neighbouring column times its power (0 for x^0)."""
    powers = np.arange(N, dtype=np.result_type(value_of(out).dtype, np.float32))
    if increasing:
        lower, coeff = getitem(out, index=(slice(None), slice(0, N - 1))), powers[1:]
        parts = [np.zeros((n, 1), dtype=powers.dtype), lower * coeff]
    else:
        lower, coeff = getitem(out, index=(slice(None), slice(1, N))), powers[::-1][:-1]
        parts = [lower * coeff, np.zeros((n, 1), dtype=powers.dtype)]
    return concatenate(parts, axis=1) if N > 1 else np.zeros((n, N), dtype=powers.dtype)


def _vjp(g, out, x, *, N, increasing):
    return sum(g * _derivative(out, shape_of(x)[0], N, increasing), axis=1)


def _jvp(t, out, x, *, N, increasing):
    return reshape(t, (shape_of(x)[0], 1)) * _derivative(out, shape_of(x)[0], N, increasing)


@primitive(name="vander", vjp=[_vjp], jvp=[_jvp],
           samples=cases1(((4,), {"N": 3, "increasing": False}), ((3,), {"N": 4, "increasing": True}),
                          ((2,), {"N": 1, "increasing": False})))
def _vander(x, *, N, increasing):
    out = np.empty((N, x.shape[0]), dtype=x.dtype if x.dtype.kind in "fc" else np.promote_types(x.dtype, int))
    if N == 0:
        return out.T
    steps = range(1, N) if increasing else range(N - 2, -1, -1)
    out[0 if increasing else N - 1] = 1
    for k in steps:
        np.multiply(out[k - 1 if increasing else k + 1], x, out=out[k])
    return out.T


def vander(x, N=None, increasing=False):
    """The Vandermonde matrix of a vector ``x`` (as ``np.vander``): column j is x^(N-1-j), or x^j
    with ``increasing=True``; N (default len(x)) columns. d x^p / dx = p x^(p-1).

    >>> import autodiff as ad
    >>> ad.vander(np.array([2.0, 3.0]), 3)
    array([[4., 2., 1.],
           [9., 3., 1.]])
    >>> ad.grad(lambda x: ad.sum(ad.vander(x, 3) @ np.array([1.0, 0.0, 0.0])))(np.array([2.0, 3.0]))   # 2x
    array([4., 6.])
    """
    shape = shape_of(x) if isinstance(x, Tensor) else np.shape(x)
    if len(shape) != 1:
        raise ValueError(f"vander: x must be a 1-d vector, got shape {shape}")
    if N is None:
        N = shape[0]
    if isinstance(N, (bool, np.bool_)) or not isinstance(N, (int, np.integer)) or N < 0:
        raise ValueError(f"vander: N must be a whole number of columns >= 0, got {N!r:.40}")
    if not isinstance(x, Tensor):
        x = np.asarray(x)
        if x.dtype.kind not in "biufc":
            raise TypeError(f"vander: x must hold numbers, got dtype {x.dtype}")
    return _vander(x, N=int(N), increasing=bool(increasing))
