"""Process-wide tuning for the kernels, all in this one module: threads (Numba's and BLAS's) and malloc.

Three settings change how the whole process runs, not one call, so they are made here and nowhere
else (``nn.fit`` does not touch them, and importing ``kernels`` changes nothing). ``configure()``
makes them, once; the kernels call it themselves (``ensure_configured()``) at their first call, so
``nn.fit`` and a training loop of your own get the same, whatever was imported first. Call
``configure(...)`` before the first kernel call to choose otherwise; ``status()`` says what is in
effect.

1. One thread pool: Numba's. The CPU convolution runs one image per Numba thread, and each thread
   makes its own matrix products (single-threaded BLAS calls from inside the thread, through SciPy's
   BLAS, which Numba's ``np.dot`` uses). Were BLAS multi-threaded too, its threads would pile onto
   Numba's; and after every product OpenBLAS's idle threads busy-wait for ~0.1 s before they sleep,
   taking the cores from the Numba loop that follows (measured on 2 cores: conv2 forward 24 ms
   instead of 11 ms; a digits training step 60 ms instead of 5 ms). So ``configure()`` limits every
   BLAS library loaded (NumPy's and SciPy's) to one thread, with threadpoolctl: no BLAS thread ever
   starts, so none spins, and the speed no longer depends on whether NumPy or ``kernels`` was
   imported first (the environment variable ``OPENBLAS_THREAD_TIMEOUT`` that an earlier version
   set before NumPy loaded is not needed). NumPy's own products (a dense layer, your ``x @ w``) run
   on one thread from then on; ``limit_blas=False`` refuses (and undoes) it.

2. Numba's threading layer: TBB (Intel's oneTBB, from the ``tbb`` package, a dependency on x86-64
   Linux and Windows), unless you chose one with ``NUMBA_THREADING_LAYER``. It is fork-safe and
   thread-safe, and it starts a parallel loop in ~2 us. Numba's own ``workqueue`` layer, also
   fork-safe, is the fallback when TBB cannot load: it takes 50-150 us to start each loop here, and
   its calling thread busy-waits beside the workers (on 2 cores it takes a core from them: the same
   loop of products ran 1.2-1.4x slower than on TBB or OpenMP), so a training step of the Keras CNN
   ran in 35 ms with it and 25 ms with TBB. The default that Numba would pick here, GNU OpenMP, is
   as fast as TBB but not fork-safe: a child started with ``fork()`` after a parallel loop ran (a
   ``multiprocessing`` pool with the fork start method) is killed at its first parallel loop
   ("fork() called from a process already using GNU OpenMP"). pip puts TBB's library
   (``libtbb.so.12``) in the environment's ``lib`` folder, where the dynamic loader does not look,
   so it is loaded from there by its full path first (Numba's TBB extension then finds it, already
   loaded, by name). The layer is fixed by the first parallel loop in the process, so this is done
   before the kernels' first one (``status().threading_layer`` says which one runs).

3. glibc's malloc. A training step allocates and frees the same large arrays (activations,
   gradients: up to 6 MB each for the Keras CNN at batch 128) again and again. glibc serves each
   large request with a fresh mmap and unmaps it on free, so every step pays the page faults of
   touching new memory again (about 0.3 ms per MB here). Raising glibc's mmap and trim thresholds
   (mmap threshold 32 MB, trim 1 GB, top pad 64 MB) makes it keep freed memory in its heap and hand
   it out again, as PyTorch's caching allocator does. The memory is not returned to the system until
   the process ends. Set ``CHAINRULE_KEEP_MEMORY=0`` (or pass ``keep_freed_memory=False``) to leave
   malloc alone; on a C library without ``mallopt`` (musl, macOS) nothing happens.

>>> from kernels import runtime
>>> runtime.configure() == runtime.configure()        # idempotent: the second call changes nothing
True
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["configure", "ensure_configured", "status", "Tuning"]

#: glibc's mallopt parameters (malloc.h) and the values point 3 sets.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MALLOC_SETTINGS = ((M_MMAP_THRESHOLD, 32 * 2**20), (M_TRIM_THRESHOLD, 2**30), (M_TOP_PAD, 64 * 2**20))

#: The Numba threading layers the kernels ask for (point 2): the first, else (TBB cannot load) the second.
THREADING_LAYER, FALLBACK_THREADING_LAYER = "tbb", "workqueue"

#: TBB's library as pip's ``tbb`` package installs it, under the environment's (or the user's) base folder.
TBB_LIBRARY = "libtbb.so.12"


@dataclass(frozen=True)
class Tuning:
    """What this module has done to the process."""

    blas_single_threaded: bool  # every BLAS library loaded is limited to one thread (point 1)
    threading_layer: str        # the Numba threading layer asked for, or running once a loop ran (point 2)
    freed_memory_kept: bool     # glibc's malloc keeps freed large blocks for reuse (point 3)
    configured: bool            # configure() has run (by hand or at the kernels' first call)


class _State:
    blas_limiter = None         # threadpoolctl's limiter while BLAS is limited (it can restore)
    malloc_tuned = False
    configured = False


_state = _State()


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


def _pip_tbb_library() -> str | None:
    """The path of TBB's library where pip's ``tbb`` package puts it (the environment's or the
    user's base folder, ``lib/``), or None."""
    import site
    import sys

    for base in (sys.prefix, site.getuserbase()):
        path = os.path.join(base, "lib", TBB_LIBRARY)
        if os.path.exists(path):
            return path
    return None


def _tbb_loads() -> bool:
    """Whether Numba's TBB layer can load, loading TBB's library from pip's folder first if needed."""
    import ctypes

    try:
        from numba.np.ufunc import parallel

        try:
            parallel._check_tbb_version_compatible()     # Numba's own check (TBB 2021.6 or later)
        except ImportError:                               # not found by name: load pip's copy by path
            path = _pip_tbb_library()
            if path is None:
                return False
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            parallel._check_tbb_version_compatible()
        from numba.np.ufunc import tbbpool  # noqa: F401  (the extension itself)
    except (ImportError, OSError, AttributeError):
        return False
    return True


def _choose_threading_layer() -> None:
    """Ask Numba for THREADING_LAYER (else FALLBACK_THREADING_LAYER) unless the user chose one or a
    parallel loop already ran."""
    import numba
    from numba.np.ufunc import parallel

    if "NUMBA_THREADING_LAYER" not in os.environ and not parallel._is_initialized:
        numba.config.THREADING_LAYER = THREADING_LAYER if _tbb_loads() else FALLBACK_THREADING_LAYER


def _threading_layer() -> str:
    import numba
    from numba.np.ufunc import parallel

    return numba.threading_layer() if parallel._is_initialized else str(numba.config.THREADING_LAYER)


def _limit_blas(limit: bool) -> None:
    """BLAS on one thread for the process (limit) or back to what it was (not limit)."""
    if limit and _state.blas_limiter is None:
        import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS that Numba's np.dot calls, to limit it too)
        from threadpoolctl import threadpool_limits

        _state.blas_limiter = threadpool_limits(limits=1, user_api="blas")
    elif not limit and _state.blas_limiter is not None:
        _state.blas_limiter.restore_original_limits()
        _state.blas_limiter = None


def configure(*, keep_freed_memory: bool = True, limit_blas: bool = True) -> Tuning:
    """Apply the process-wide tuning now, idempotently, and return what is in effect.

    ``limit_blas``: every BLAS library on one thread (point 1; False undoes it). ``keep_freed_memory``:
    tune glibc's malloc to reuse freed memory (point 3; unless ``CHAINRULE_KEEP_MEMORY=0``, which
    always wins). Once done it stays done for the process; False before the first kernel call keeps
    it from being done. The threading layer (point 2) is asked for in any case. The kernels call
    this with the defaults at their first call, unless it was called before.
    """
    _choose_threading_layer()
    if keep_freed_memory and os.environ.get("CHAINRULE_KEEP_MEMORY") != "0":
        _keep_freed_memory()
    _limit_blas(bool(limit_blas))
    _state.configured = True
    return status()


def ensure_configured() -> None:
    """``configure()`` with the defaults, the first time a kernel runs; nothing after (or after a call
    of ``configure`` by hand). Every kernel entry point calls this, through ``kernels.backend.resolve``."""
    if not _state.configured:
        configure()


def status() -> Tuning:
    """What is in effect now."""
    return Tuning(blas_single_threaded=_state.blas_limiter is not None, threading_layer=_threading_layer(),
                  freed_memory_kept=_state.malloc_tuned, configured=_state.configured)
