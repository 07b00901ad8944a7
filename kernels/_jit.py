"""Small pieces the compiled kernels share, Numba CPU loops and numba.cuda kernels alike.

``register_jitable`` compiles a function into whichever kind of code calls it (``@njit`` or
``@cuda.jit``; plain Python in the CUDA simulator), as ``kernels/optim/formulas.py`` explains.

``ZERO``
    The typed zero a sum starts from: a float32 zero. In Numba a literal ``0.0`` is a float64, and
    float32 arithmetic with a float64 is done in float64, so a float32 sum started at ``0.0`` would
    run (and round) in float64; started at ``ZERO`` it stays float32, and with float64 arrays Numba
    widens it to float64. (For the same reason ``formulas.py`` passes every coefficient in the
    arrays' dtype.)

``WEIGHT_CHUNKS`` and ``weight_chunks(n)``
    A convolution's backward weight (im2col's in conv2d/cpu.py and Winograd's in conv2d/winograd.py)
    sums the images in fixed chunks, each chunk's partial sum apart, the partials added in order: a
    split of the batch, not of the threads, so the bits do not depend on the thread count.
    ``weight_chunks(n)`` chunks for a batch of n: about ``IMAGES_PER_CHUNK`` images each (fewer
    chunks make longer products and fewer partials to add, but longer float32 sums), at least
    ``MIN_CHUNKS`` (so that a small batch still spreads over several threads), at most
    ``WEIGHT_CHUNKS`` and n.
"""
from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

ZERO = np.float32(0.0)
WEIGHT_CHUNKS = 16
IMAGES_PER_CHUNK = 8
MIN_CHUNKS = 8


def weight_chunks(n: int) -> int:
    """The chunks backward weight splits a batch of ``n`` images into (n alone decides, never the threads).

    >>> [weight_chunks(n) for n in (1, 3, 8, 32, 64, 128, 1000)]
    [1, 3, 8, 8, 8, 16, 16]
    """
    return max(1, min(n, WEIGHT_CHUNKS, max(MIN_CHUNKS, n // IMAGES_PER_CHUNK)))


@register_jitable
def unravel4(t, d1, d2, d3):
    """(i0, i1, i2, i3) with t = ((i0*d1 + i1)*d2 + i2)*d3 + i3: element t of a C-order (., d1, d2, d3) array."""
    i3 = t % d3
    i2 = (t // d3) % d2
    i1 = (t // (d3 * d2)) % d1
    i0 = t // (d3 * d2 * d1)
    return i0, i1, i2, i3
