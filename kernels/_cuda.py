"""What the numba.cuda modules share: the launch configuration, and where arrays live.

Every CUDA kernel of the package gives each thread one element of the array it writes. Threads are
numbered with ``cuda.grid(1)`` over the flattened result, in blocks of THREADS_PER_BLOCK, and each
checks first that its number is inside the result (the last block may run past the end); a kernel
turns the number back into an index with ``kernels._jit.unravel4``. No warp shuffles, so the
kernels also run in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), slowly.

Where data lives is a property of the data: host (NumPy) inputs are copied to the device and the
results copied back; when an input is already a device array (``kernels._checks.is_device_array``,
the package's one host/device test), the results stay on the device, as ``kernels.device.DeviceArray``.
The helpers are ``kernels.device``'s, under the names the kernel modules use.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from .device import THREADS_PER_BLOCK, DeviceArray, launch_config, on_device, raw, stride_config, zeros

__all__ = ["THREADS_PER_BLOCK", "DeviceArray", "launch_config", "stride_config", "on_device", "to_device", "to_caller",
           "zeros", "new", "flat"]

#: A kernel argument on the device: a DeviceArray's numba array, a numba array as it is, a host
#: array copied there (once).
to_device = raw


def to_caller(result, keep_on_device: bool):
    """A numba device result, left on the device as a DeviceArray (``keep_on_device``) or copied back
    to a NumPy array."""
    return DeviceArray(result) if keep_on_device else result.copy_to_host()


def new(shape, dtype):
    """An uninitialised numba device array: a kernel's result, before ``to_caller``."""
    return cuda.device_array(tuple(shape), dtype=np.dtype(dtype))


def flat(a):
    """A numba device array as one flat axis (a view), for the one-thread-per-element kernels."""
    return a.reshape(a.size)
