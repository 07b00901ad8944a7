"""The CPU kernels' output arrays, recycled: the kernels' own caching allocator (as PyTorch's).

A training step allocates the same large outputs again and again (activations, pooling indices,
gradients: up to 11 MB each for the Keras CNN at batch 128). Each is a fresh block from malloc,
and glibc gives large freed blocks back to the system, so every step pays the page faults of
touching new memory again (about 6,000 a step there). Instead the kernels ask this module: it
keeps the memory of the arrays it handed out, and hands it out again once nothing but itself refers
to it (CPython's reference count: a Tensor, a view or a NumPy operation holding it keeps it taken).
Each array starts on a cache line (``ALIGN``): a vector load crossing one costs two. The
process's malloc is left as it is; the memory kept is this module's, up to ``LIMIT`` bytes, and
``release()`` (``kernels.runtime.empty_cache()``) gives back what is not in use.
"""
from __future__ import annotations

import math
import os
import sys
import threading

import numpy as np

#: The most bytes kept for reuse; past it, free arrays are dropped (the oldest kind first) or, if
#: none is free, the new array is a plain one.
LIMIT = 512 * 2**20
#: Smaller outputs are plain allocations (glibc reuses small freed blocks by itself).
SMALLEST = 64 * 2**10


def _count_of_unreferenced() -> int:
    """The reference count that the loops below read for an array only the list holds. Measured with the
    same code shape, not assumed: what a loop variable and a call argument add differs between
    CPython versions (3.14 borrows some references)."""
    arrays = [np.empty(0)]
    for a in arrays:
        return sys.getrefcount(a)


#: The reference count of a kept array that nothing else refers to, as ``empty`` and ``_drop_free`` read it.
_UNREFERENCED = _count_of_unreferenced()


#: Where an array starts: a cache line (the kernels' vector loads then never cross one at a row's start).
ALIGN = 64


def _buffer(nbytes) -> np.ndarray:
    """Memory for an array of ``nbytes`` that may start on an ALIGN-byte boundary (``_view``)."""
    return np.empty(nbytes + ALIGN, np.uint8)


def _view(raw, shape, dtype) -> np.ndarray:
    """The array of ``shape`` and ``dtype`` on ``raw``'s memory from its first ALIGN-byte boundary: a new
    view each time, whose base is ``raw`` (as every view of it is: NumPy names the owner), so raw's
    reference count says whether anything still uses its memory."""
    skip = -raw.ctypes.data % ALIGN
    return raw[skip:skip + raw.size - ALIGN].view(dtype).reshape(shape)


class _Recycler:
    def __init__(self):
        self.kept = {}          # (shape, dtype) -> [buffers], the kinds in the order first asked for
        self.nbytes = 0
        self.lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self):
        """A forked child starts with a lock no thread of its own holds (another thread may have held it)."""
        self.lock = threading.Lock()

    def empty(self, shape, dtype) -> np.ndarray:
        shape, dtype = tuple(shape), np.dtype(dtype)
        key = (shape, dtype)
        with self.lock:
            arrays = self.kept.get(key)
            if arrays:
                for a in arrays:
                    if sys.getrefcount(a) == _UNREFERENCED:
                        return _view(a, shape, dtype)
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes < SMALLEST:
                return np.empty(shape, dtype)
            fresh = _buffer(nbytes)
            if self.nbytes + fresh.nbytes > LIMIT:
                self._drop_free(self.nbytes + fresh.nbytes - LIMIT)
            if self.nbytes + fresh.nbytes <= LIMIT:
                self.kept.setdefault(key, []).append(fresh)
                self.nbytes += fresh.nbytes
            return _view(fresh, shape, dtype)

    def _drop_free(self, wanted: int) -> int:
        """Forget free buffers (the oldest kinds first) until ``wanted`` bytes are dropped; the bytes dropped."""
        dropped = 0
        for key in list(self.kept):
            arrays = self.kept[key]
            keep = []
            for a in arrays:
                if dropped < wanted and sys.getrefcount(a) == _UNREFERENCED:
                    dropped += a.nbytes
                else:
                    keep.append(a)
            if keep:
                self.kept[key] = keep
            else:
                del self.kept[key]
        self.nbytes -= dropped
        return dropped

    def release(self) -> int:
        with self.lock:
            return self._drop_free(self.nbytes)


_recycler = _Recycler()


def aligned(shape, dtype) -> np.ndarray:
    """An uninitialised array, as ``np.empty``, starting on a cache line, not kept: a kernel's temporary
    that gemm reads by vectors (the filters' transforms)."""
    dtype = np.dtype(dtype)
    return _view(_buffer(math.prod(shape) * dtype.itemsize), tuple(shape), dtype)


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised array, as ``np.empty``: a kept one that nothing refers to any more, else a new one."""
    return _recycler.empty(shape, dtype)


def release() -> int:
    """Forget every kept array that is not in use (its memory goes back to malloc); the bytes released."""
    return _recycler.release()


def kept_bytes() -> int:
    """The bytes of the arrays kept now (in use or free)."""
    return _recycler.nbytes
