"""The dropout mask with numba.cuda: ``kernels.dropout.reference``'s hash, one thread per element,
made on the device (nothing copied)."""
from __future__ import annotations

import numpy as np
from numba import cuda

from .._cuda import DeviceArray, flat, launch_config, new
from .reference import MASK32, keep_scale


@cuda.jit
def _dropout_kernel(seed, rate, scale, out):
    k = cuda.grid(1)
    if k < out.size:
        h = (k + seed * 2654435761) & MASK32
        h ^= h >> 16
        h = (h * 0x7FEB352D) & MASK32
        h ^= h >> 15
        h = (h * 0x2C1B3C6D) & MASK32
        h ^= h >> 16
        out[k] = scale if h / 4294967296.0 >= rate else 0


def dropout_mask(shape, rate, seed, dtype):
    """Made on the device (nothing copied): a DeviceArray."""
    out = new(shape, dtype)
    _dropout_kernel[launch_config(out.size)](np.int64(seed), float(rate), np.dtype(dtype).type(keep_scale(rate)),
                                             flat(out))
    return DeviceArray(out)
