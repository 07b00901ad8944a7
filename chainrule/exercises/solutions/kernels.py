"""Answers to the kernel lessons' exercises: Numba kernels and NumPy.

Each function has the signature of its stub in :mod:`chainrule.exercises.kernels` and passes its
checker there. ``SOLUTIONS`` maps each exercise name to its answer.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..kernels import BT

#: The sum of squares adds its vector in this many chunks (fewer for a shorter one): a fixed split.
CHUNKS = 16


@njit(parallel=True, cache=True)
def _chunk_sums_of_squares(x, n_chunks):
    per = (x.size + n_chunks - 1) // n_chunks
    partial = np.zeros(n_chunks, dtype=np.float32)
    for c in prange(n_chunks):            # one chunk per iteration: a thread may run several
        s = np.float32(0.0)
        for i in range(c * per, min(x.size, (c + 1) * per)):
            s += x[i] * x[i]
        partial[c] = s                    # each chunk writes its own element: no race
    return partial


def sum_of_squares(x):
    """Fixed chunks (CHUNKS, whatever the thread count), one float32 partial each, summed in chunk order."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    partial = _chunk_sums_of_squares(x, max(1, min(CHUNKS, x.size)))
    total = np.float32(0.0)
    for p in partial:                     # in order: the same sum whichever thread computed which chunk
        total += p
    return total


def im2col(x, kh, kw):
    """Row (c, p, q) of cols is the (Ho, Wo) window of channel c that kernel entry (p, q) multiplies."""
    c, height, width = x.shape
    ho, wo = height - kh + 1, width - kw + 1
    cols = np.empty((c, kh, kw, ho, wo), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, p, q] = x[:, p:p + ho, q:q + wo]
    return cols.reshape(c * kh * kw, ho * wo)


def winograd_input_transform(d):
    """B^T d B, for every tile of the stack at once (matmul broadcasts over the leading axes)."""
    return BT @ d @ BT.T


@njit(cache=True)
def _matmul_blocked(a, b, c):
    m, depth = a.shape
    n = b.shape[1]
    for i in range(0, m - 1, 2):                    # whole 2 x 2 blocks: four sums in registers over k
        for j in range(0, n - 1, 2):
            c00 = c01 = c10 = c11 = 0.0
            for k in range(depth):
                a0, a1, b0, b1 = a[i, k], a[i + 1, k], b[k, j], b[k, j + 1]
                c00 += a0 * b0
                c01 += a0 * b1
                c10 += a1 * b0
                c11 += a1 * b1
            c[i, j], c[i, j + 1], c[i + 1, j], c[i + 1, j + 1] = c00, c01, c10, c11
    if n % 2:                                       # the edges: the last column when N is odd,
        for i in range(m):
            c[i, n - 1] = _dot(a, b, i, n - 1)
    if m % 2:                                       # and the last row when M is odd
        for j in range(n):
            c[m - 1, j] = _dot(a, b, m - 1, j)
    return c


@njit(cache=True)
def _dot(a, b, i, j):
    total = 0.0
    for k in range(a.shape[1]):
        total += a[i, k] * b[k, j]
    return total


def matmul_blocked(a, b):
    """2 x 2 blocks of c with four running sums each, then the odd row and column one entry at a time."""
    a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
    return _matmul_blocked(a, b, np.empty((a.shape[0], b.shape[1])))


SOLUTIONS = {"sum_of_squares": sum_of_squares, "im2col": im2col, "winograd_input_transform": winograd_input_transform,
             "matmul_blocked": matmul_blocked}
