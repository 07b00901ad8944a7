"""The dropout mask with numba.cuda: ``kernels.dropout.reference``'s hash of each element's index, made on
the device (nothing copied), a grid-stride loop (``kernels._cuda.stride_config``)."""
from __future__ import annotations

import numpy as np
from numba import cuda

from .._cuda import DeviceArray, flat, new, stride_config
from .reference import keep_scale, uniform_hash


@cuda.jit
def _dropout_kernel(seed, rate, scale, out):
    for k in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[k] = scale if uniform_hash(k, seed) >= rate else 0


def dropout_mask(shape, rate, seed, dtype):
    """Made on the device (nothing copied): a DeviceArray."""
    out = new(shape, dtype)
    _dropout_kernel[stride_config(out.size)](np.int64(seed), float(rate), np.dtype(dtype).type(keep_scale(rate)),
                                             flat(out))
    return DeviceArray(out)
