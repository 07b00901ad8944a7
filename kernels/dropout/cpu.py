"""The dropout mask, Numba CPU-parallel: ``kernels.dropout.reference``'s hash of each element's index, the
same bits as the reference and the CUDA kernel for the same seed (tested), one pass over the output."""
from __future__ import annotations

import numpy as np
from numba import prange

from .._cache import njit, sized
from .._recycle import empty as recycled
from .reference import keep_scale, uniform_hash

#: No BLAS call here: the entry points call these functions directly (kernels.runtime.host_kernels).
BLAS_FREE = True


@njit(parallel=True, cache=True)
def _dropout_kernel(seed, rate, scale, out):
    """out[k] = scale where uniform_hash(k, seed) >= rate, else 0."""
    zero = scale - scale
    for k in prange(out.size):
        out[k] = scale if uniform_hash(np.int64(k), seed) >= rate else zero


def dropout_mask(shape, rate, seed, dtype):
    """0 where u_k < rate, else 1 / (1 - rate), of ``shape``: the reference's mask."""
    out = recycled(shape, dtype)
    sized(_dropout_kernel, out.size)(np.int64(seed), float(rate), dtype.type(keep_scale(rate)), out.reshape(-1))
    return out
