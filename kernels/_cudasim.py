"""A fix for Numba's CUDA simulator: a block's shared array is allocated once, by whichever thread asks first.

The simulator runs each thread of a block as a Python thread. Its ``cuda.shared.array`` (numba-cuda's
``FakeCUDAShared.array``, 0.30.4 and before) looks the block's array up by the source line that asks
for it and allocates it when it is missing, without a lock: two threads that ask at the same moment
can each get an array of their own, and the kernel then computes with shared memory that is not
shared, a wrong result now and then (seen in the CUDA lesson run as a notebook, where the lookup's
stack walk is slow). ``fix_shared_arrays()`` replaces that method by the same lookup under a lock
(and reads the caller's line from its frame, not from a formatted stack). On a GPU nothing changes.
"""
from __future__ import annotations

import sys
import threading

import numpy as np
from numba import config
from numba.core import types
from numba.np import numpy_support

_LOCK = threading.Lock()
_ORIGINAL = []          # the simulator's own method, once replaced (dynamic shared memory and alignment go to it)


def _shared_array(self, shape, dtype, alignment=None):
    """FakeCUDAShared.array, its lookup and allocation one step under a lock."""
    if shape == 0 or alignment is not None:        # dynamic shared memory, alignment: the simulator's own
        return _ORIGINAL[0](self, shape, dtype, alignment)
    if isinstance(dtype, types.Type):
        dtype = numpy_support.as_dtype(dtype)
    caller = sys._getframe(1)
    key = (caller.f_code.co_filename, caller.f_lineno)   # the simulator's key: the asking line
    with _LOCK:
        array = self._allocations.get(key)
        if array is None:
            array = self._allocations[key] = np.empty(shape, dtype)
    return array


def fix_shared_arrays() -> bool:
    """Install ``_shared_array`` in the simulator (once); False where the simulator is off."""
    if not config.ENABLE_CUDASIM:
        return False
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    if FakeCUDAShared.array is not _shared_array:
        _ORIGINAL.append(FakeCUDAShared.array)
        FakeCUDAShared.array = _shared_array
    return True
