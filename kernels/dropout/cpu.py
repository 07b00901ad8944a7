"""The dropout mask, Numba CPU-parallel: ``kernels.dropout.reference``'s hash of each element's index, the
same bits as the reference and the CUDA kernel for the same seed (tested), one pass over the output."""
from __future__ import annotations

import numpy as np
from numba import prange

from .._cache import njit
from .._recycle import empty as recycled
from .reference import keep_scale

#: No BLAS call here: the entry points call these functions directly (kernels.runtime.host_kernels).
BLAS_FREE = True

_MASK32 = np.uint64(0xFFFFFFFF)
_SEED_FACTOR = np.uint64(2654435761)


@njit(parallel=True, cache=True)
def _dropout_kernel(seed, rate, scale, out):
    """out[k] = scale where hash32(k + seed * 2654435761 mod 2^32) / 2^32 >= rate, else 0: the reference's
    integer steps on unsigned 64-bit integers (each product below 2^63, as there)."""
    base = np.uint64(seed) * _SEED_FACTOR
    zero = scale - scale
    for k in prange(out.size):
        h = (np.uint64(k) + base) & _MASK32
        h ^= h >> np.uint64(16)
        h = (h * np.uint64(0x7FEB352D)) & _MASK32
        h ^= h >> np.uint64(15)
        h = (h * np.uint64(0x2C1B3C6D)) & _MASK32
        h ^= h >> np.uint64(16)
        out[k] = scale if h / 4294967296.0 >= rate else zero


def dropout_mask(shape, rate, seed, dtype):
    """0 where u_k < rate, else 1 / (1 - rate), of ``shape``: the reference's mask."""
    out = recycled(shape, dtype)
    _dropout_kernel(np.int64(seed), float(rate), dtype.type(keep_scale(rate)), out.reshape(-1))
    return out
