"""Large arrays the engine makes, taken from a pool of buffers it keeps, instead of fresh from malloc.

Why: a gradient of NumPy code on large arrays makes many short-lived temporaries of the same sizes.
glibc gives memory above its thresholds back to the system when it is freed and takes it again on
the next call, so every call pays page faults for every temporary (a log-sum-exp of 10^6 numbers spends
more time faulting pages than computing). PyTorch's and JAX's allocators cache blocks for this reason.
The pool is the engine's own: it never changes malloc's settings for the rest of the process.

A buffer is free again when nothing references it but the pool: the arrays handed out are views of it,
so while any of them (or a view of one) is alive, the buffer's reference count says so. Only arrays of
at least ``MIN_BYTES`` are pooled; the pool keeps at most ``limit`` bytes (``set_pool_limit``), and
``empty_cache()`` (PyTorch's name) hands the idle buffers back.
"""
from __future__ import annotations

import sys
import threading

import numpy as np

MIN_BYTES = 1 << 18

_lock = threading.Lock()
_pools: dict = {}          # nbytes -> [uint8 buffers]
_held = 0
DEFAULT_LIMIT = 1 << 29     # 512 MiB
_limit = DEFAULT_LIMIT
_ndarray = np.ndarray


def _refs(pool, i):
    """References to ``pool[i]``: the list's own, getrefcount's argument, and one per array using it."""
    return sys.getrefcount(pool[i])


_IDLE = _refs([np.empty(1, np.uint8)], 0)     # a buffer only its pool list holds


def _idle(pool, i):
    return _refs(pool, i) == _IDLE


def empty(shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype``: a reused buffer when it is large."""
    dtype = np.dtype(dtype)
    size = 1
    for n in shape:
        size *= n
    nbytes = size * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    global _held
    with _lock:
        pool = _pools.setdefault(nbytes, [])
        for i in range(len(pool)):
            if _idle(pool, i):
                return pool[i].view(dtype).reshape(shape)
        if _held + nbytes > _limit and not _evict(nbytes):
            return np.empty(shape, dtype)
        buf = np.empty(nbytes, np.uint8)
        pool.append(buf)
        _held += nbytes
        return buf.view(dtype).reshape(shape)


def _evict(nbytes):
    """Drop idle buffers of other sizes until ``nbytes`` more fit under the limit; False if they can't."""
    global _held
    for size, pool in _pools.items():
        for i in range(len(pool) - 1, -1, -1):
            if _held + nbytes <= _limit:
                return True
            if _idle(pool, i):
                del pool[i]
                _held -= size
    return _held + nbytes <= _limit


def ufunc(func, *args):
    """``func(*args)`` for a NumPy ufunc of floats, written into a pooled buffer when the result is large
    and its dtype and shape are those of its largest array argument (the common case; others as NumPy)."""
    for a in args:      # small arrays and numbers, the per-op cost that matters: straight to NumPy
        if a.__class__ is _ndarray and a.nbytes >= MIN_BYTES:
            return _into_pool(func, args)
    return func(*args)


def _into_pool(func, args):
    big = None
    for a in args:
        if a.__class__ is _ndarray and a.nbytes >= MIN_BYTES and (big is None or a.size > big.size):
            big = a
    if big is None or big.dtype.kind not in "fc":
        return func(*args)
    shape, dtype = big.shape, big.dtype
    for a in args:
        if a is big or a.__class__ in (float, int):
            continue
        if a.__class__ is not _ndarray or a.dtype != dtype or (a.shape != shape and not _fits(a.shape, shape)):
            return func(*args)
    return func(*args, out=empty(shape, dtype))


def _fits(small, shape):
    """Whether an argument of shape ``small`` broadcasts into ``shape`` without making it larger."""
    return len(small) <= len(shape) and all(n == 1 or n == m for n, m in zip(small[::-1], shape[::-1]))


def empty_cache() -> int:
    """Hand the pool's idle buffers back (``torch.cuda.empty_cache``'s name); returns the bytes freed."""
    global _held
    freed = 0
    with _lock:
        for size, pool in _pools.items():
            for i in range(len(pool) - 1, -1, -1):
                if _idle(pool, i):
                    del pool[i]
                    freed += size
        _held -= freed
    return freed


def set_pool_limit(nbytes: int) -> None:
    """The most bytes the pool keeps (0 turns pooling off); idle buffers above it are handed back.

    >>> import autodiff as ad
    >>> ad.set_pool_limit(0)                  # every large array fresh from malloc again
    >>> ad.empty_cache()                      # the pool holds nothing, so nothing is handed back
    0
    >>> ad.set_pool_limit(512 * 2**20)        # the default, 512 MiB
    """
    global _limit
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise ValueError(f"set_pool_limit: nbytes must be a whole number of bytes >= 0, got {nbytes!r:.40}")
    _limit = nbytes
    with _lock:
        _evict(0)


def pool_stats() -> dict:
    """Bytes the pool holds, and how many of its buffers are in use now."""
    with _lock:
        busy = sum(not _idle(pool, i) for pool in _pools.values() for i in range(len(pool)))
        return {"held_bytes": _held, "buffers": sum(len(p) for p in _pools.values()), "in_use": busy,
                "limit_bytes": _limit}
