"""Process-wide tuning for the kernels, all in this one module: BLAS's idle threads and glibc's malloc.

Two settings change how the whole process runs, not one call, so they are made here and nowhere else
(``nn.fit`` does not touch them). ``configure()`` makes them, once; the kernels call it themselves
(``ensure_configured()``) at their first call, so ``nn.fit`` and a training loop of your own get the
same. Call ``configure(...)`` before the first kernel call to choose otherwise; ``status()`` says what
is in effect.

1. OpenBLAS's idle threads. The CPU convolution alternates Numba ``prange`` loops (im2col, col2im)
   with one OpenBLAS matrix product called from Python, outside every ``prange``: the two thread pools
   never run at once. But after a product OpenBLAS's worker threads busy-wait for about 2**28 cycles
   (~0.1 s) before they sleep, and they take the cores from the ``prange`` loop that follows, and from
   every Numba loop after any NumPy matrix product (measured on 2 cores: conv2 forward 24 ms instead
   of 11 ms; a digits training step 60 ms instead of 5 ms). ``OPENBLAS_THREAD_TIMEOUT=4`` (2**4
   cycles: idle threads sleep at once) cures it, but OpenBLAS reads it only as it is loaded, that is
   when NumPy is imported. So ``kernels`` imports this module before NumPy and calls
   ``arrange_blas_environment()``, which sets the variable when NumPy is not loaded yet and the user
   has not set it: the one thing done at import, because later is too late (a child process inherits
   it too). Export the variable yourself to choose another value, or to keep it from being set.

   When NumPy came first and the variable was not set, the spinning cannot be switched off any more.
   Then ``configure()`` limits BLAS to one thread for the process (threadpoolctl), which removes the
   spinning threads at the price of single-threaded matrix products (``limit_blas=False`` refuses;
   ``True`` limits even when the timeout is in place). Import ``kernels`` (or ``nn``) before NumPy, or
   export the variable, for both fast products and no spinning.

2. glibc's malloc. A training step allocates and frees the same large arrays (activations, im2col
   matrices, gradients: up to 18 MB each for the Keras CNN at batch 128) again and again. glibc
   serves each large request with a fresh mmap and unmaps it on free, so every step pays the page
   faults of touching new memory again (about 0.3 ms per MB here: a third of a CNN training step).
   Raising glibc's mmap and trim thresholds (mmap threshold 32 MB, trim 1 GB, top pad 64 MB) makes it
   keep freed memory in its heap and hand it out again, as PyTorch's caching allocator does (1.5x
   faster steps). The memory is not returned to the system until the process ends. Set
   ``CHAINRULE_KEEP_MEMORY=0`` (or pass ``keep_freed_memory=False``) to leave malloc alone; on a C
   library without ``mallopt`` (musl, macOS) nothing happens.

>>> from kernels import runtime
>>> runtime.configure() == runtime.configure()        # idempotent: the second call changes nothing
True
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

__all__ = ["configure", "ensure_configured", "status", "Tuning", "BLAS_ENV", "arrange_blas_environment"]

#: The environment OpenBLAS reads when it is loaded (see the module docstring, point 1).
BLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}

#: glibc's mallopt parameters (malloc.h) and the values point 2 sets.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MALLOC_SETTINGS = ((M_MMAP_THRESHOLD, 32 * 2**20), (M_TRIM_THRESHOLD, 2**30), (M_TOP_PAD, 64 * 2**20))


@dataclass(frozen=True)
class Tuning:
    """What this module has done to the process."""

    blas_timeout: bool          # OpenBLAS was loaded with OPENBLAS_THREAD_TIMEOUT set: idle threads sleep
    blas_single_threaded: bool  # BLAS limited to one thread (the fallback when blas_timeout is False)
    freed_memory_kept: bool     # glibc's malloc keeps freed large blocks for reuse
    configured: bool            # configure() has run (by hand or at the kernels' first call)


class _State:
    blas_timeout = False        # set by arrange_blas_environment()
    blas_limiter = None         # threadpoolctl's limiter while BLAS is limited (it can restore)
    malloc_tuned = False
    configured = False


_state = _State()


def arrange_blas_environment() -> bool:
    """Set OPENBLAS_THREAD_TIMEOUT before NumPy loads OpenBLAS, unless the user set it; returns
    whether OpenBLAS gets a timeout (False when NumPy was imported first without the variable)."""
    numpy_loaded = "numpy" in sys.modules
    if not numpy_loaded:
        for name, value in BLAS_ENV.items():
            os.environ.setdefault(name, value)
    _state.blas_timeout = not numpy_loaded or all(name in os.environ for name in BLAS_ENV)
    return _state.blas_timeout


def _keep_freed_memory() -> bool:
    """glibc's mallopt with MALLOC_SETTINGS, once; whether it took effect."""
    if not _state.malloc_tuned:
        import ctypes
        import ctypes.util

        try:
            mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _state.malloc_tuned = all(mallopt(parameter, value) for parameter, value in MALLOC_SETTINGS)
    return _state.malloc_tuned


def _limit_blas(limit: bool) -> None:
    """BLAS on one thread for the process (limit) or back to what it was (not limit)."""
    if limit and _state.blas_limiter is None:
        from threadpoolctl import threadpool_limits

        _state.blas_limiter = threadpool_limits(limits=1, user_api="blas")
    elif not limit and _state.blas_limiter is not None:
        _state.blas_limiter.restore_original_limits()
        _state.blas_limiter = None


def configure(*, keep_freed_memory: bool = True, limit_blas: bool | None = None) -> Tuning:
    """Apply the process-wide tuning now, idempotently, and return what is in effect.

    ``keep_freed_memory``: tune glibc's malloc to reuse freed memory (default: yes, unless
    ``CHAINRULE_KEEP_MEMORY=0``, which always wins). Once done it stays done for the process; False
    before the first kernel call keeps it from being done. ``limit_blas``: BLAS on one thread
    (default: only when OpenBLAS could not get its thread timeout; False undoes the limit). The
    kernels call this with the defaults at their first call, unless it was called before.
    """
    if keep_freed_memory and os.environ.get("CHAINRULE_KEEP_MEMORY") != "0":
        _keep_freed_memory()
    _limit_blas(not _state.blas_timeout if limit_blas is None else bool(limit_blas))
    _state.configured = True
    return status()


def ensure_configured() -> None:
    """``configure()`` with the defaults, the first time a kernel runs; nothing after (or after a call
    of ``configure`` by hand). Every kernel entry point calls this, through ``kernels.backend.resolve``."""
    if not _state.configured:
        configure()


def status() -> Tuning:
    """What is in effect now."""
    return Tuning(blas_timeout=_state.blas_timeout, blas_single_threaded=_state.blas_limiter is not None,
                  freed_memory_kept=_state.malloc_tuned, configured=_state.configured)
