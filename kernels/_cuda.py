"""What the three numba.cuda modules share: the launch configuration, and where arrays live.

Every CUDA kernel of the package gives each thread one element of the array it writes. Threads are
numbered with ``cuda.grid(1)`` over the flattened result, in blocks of THREADS_PER_BLOCK, and each
checks first that its number is inside the result (the last block may run past the end); a kernel
turns the number back into an index with ``kernels._jit.unravel4``. No warp shuffles or shared
memory, so the kernels also run in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), slowly.

Where data lives is a property of the data: host (NumPy) inputs are copied to the device and the
results copied back; when an input is already a device array (``kernels._checks.is_device_array``,
the package's one host/device test), the results stay on the device.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._checks import is_device_array

THREADS_PER_BLOCK = 128


def launch_config(n_threads: int) -> tuple[int, int]:
    """(blocks, threads per block) for one thread per element of an ``n_threads``-element result."""
    return max(1, (n_threads + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK), THREADS_PER_BLOCK


def on_device(*arrays) -> bool:
    """Whether any of the (non-None) arrays is already a device array."""
    return any(a is not None and is_device_array(a) for a in arrays)


def to_device(a):
    """``a`` on the device: a host array is copied there (once), a device array is used as it is."""
    return a if is_device_array(a) else cuda.to_device(np.ascontiguousarray(a))


def to_caller(result, keep_on_device: bool):
    """A device result, left on the device (``keep_on_device``) or copied back to a NumPy array."""
    return result if keep_on_device else result.copy_to_host()
