"""The kernels' threads and the process-wide settings, all in this one module.

The kernels arrange their own threads, never the user's: importing ``kernels`` or ``nn`` changes
nothing, and after any kernel call every BLAS library has the thread count it had before it.
``status()`` says what is in effect.

1. BLAS threads: limited around the kernels' own work only. The CPU convolution runs one image per
   Numba thread, and each thread makes its own matrix products (kernels.microkernel, no BLAS); the
   only thread pool the kernels want is Numba's. But after every product of its own (NumPy's ``@``
   between the kernels: the dense layers, the user's code) OpenBLAS's idle threads busy-wait for
   ~0.1 s before they sleep, taking the cores from the Numba loop that follows. So every kernel call
   on host data runs inside ``single_threaded_blas()``: each BLAS library loaded (NumPy's, and
   SciPy's when it is loaded, found once with threadpoolctl) is set to one thread on entry, through
   its own ``openblas_set_num_threads`` (~1 us), and given back its count on exit, exceptions
   included. No BLAS thread wakes for the kernels, and your thread counts are yours between calls.
   The modules that make no BLAS call at all (the convolutions', the pools', the optimisers' and the
   dropout mask's Numba loops: ``BLAS_FREE = True``) skip the context: it would not still threads
   already spinning from a product before the call (measured), and its C calls are most of such a
   small call's overhead.
   ``nn.fit`` runs its steps inside the same context, so the dense layers' NumPy products run on
   one thread there too; in a training loop of your own they run on your setting, and
   ``with kernels.runtime.single_threaded_blas():`` around the loop gives fit's speed.
   ``configure(limit_blas=False)`` lets the kernels run on the counts as they are (for comparison:
   much slower).

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

3. Memory. A training step allocates the same large outputs again and again, and glibc gives large
   freed blocks back to the system, so each step would pay the page faults of touching new memory
   again. The CPU kernels therefore recycle their own outputs (``kernels/_recycle.py``, a caching
   allocator as PyTorch's: an output is handed out again once nothing refers to it, up to 512 MB
   kept); ``empty_cache()`` gives back what is not in use. The process's malloc is left alone. The
   earlier process-wide remedy stays as an opt-in: ``configure(keep_freed_memory=True)``, or
   ``CHAINRULE_KEEP_MEMORY=1`` in the environment for the kernels' first call, raises glibc's mmap
   and trim thresholds (32 MB, 1 GB, top pad 64 MB) so that it keeps every freed block for the
   whole process, NumPy's own temporaries included, and never gives it back to the system. On a C
   library without ``mallopt`` (musl, macOS) it does nothing.

>>> from kernels import runtime
>>> runtime.configure() == runtime.configure()        # idempotent: the second call changes nothing
True
>>> import numpy as np, scipy.linalg, threadpoolctl
>>> counts = lambda: [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
>>> before = counts()
>>> with runtime.single_threaded_blas():
...     set(counts())
{1}
>>> counts() == before
True
"""
from __future__ import annotations

import ctypes
import functools
import os
import threading
from dataclasses import dataclass

from . import _recycle

__all__ = ["configure", "ensure_configured", "status", "Tuning", "single_threaded_blas", "host_kernels", "empty_cache"]

#: glibc's mallopt parameters (malloc.h) and the values point 3 sets.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MALLOC_SETTINGS = ((M_MMAP_THRESHOLD, 32 * 2**20), (M_TRIM_THRESHOLD, 2**30), (M_TOP_PAD, 64 * 2**20))

#: The Numba threading layers the kernels ask for (point 2): the first, else (TBB cannot load) the second.
THREADING_LAYER, FALLBACK_THREADING_LAYER = "tbb", "workqueue"

#: TBB's library as pip's ``tbb`` package installs it, under the environment's (or the user's) base folder.
TBB_LIBRARY = "libtbb.so.12"

#: The environment variable that opts in to point 3 at the kernels' first call.
KEEP_MEMORY_VARIABLE = "CHAINRULE_KEEP_MEMORY"


@dataclass(frozen=True)
class Tuning:
    """What is in effect."""

    blas_single_threaded: bool  # the kernels' own work runs with every BLAS on one thread (point 1)
    threading_layer: str        # the Numba threading layer asked for, or running once a loop ran (point 2)
    freed_memory_kept: bool     # glibc's malloc keeps freed large blocks for reuse (point 3, opt-in)
    configured: bool            # configure() has run (by hand or at the kernels' first call)
    outputs_kept_bytes: int = 0 # the kernels' recycled outputs, in use or free (point 3)


class _State:
    limit_blas = True
    malloc_tuned = False
    configured = False


_state = _State()


# --- point 1: every BLAS on one thread inside the kernels' calls, and back after -----------------------

class _Blas:
    """One BLAS library's thread count: ``get()`` and ``set(n)``, straight C calls where it is OpenBLAS
    on its own threads (threadpoolctl's ``set_num_threads`` would also make this Python thread the only
    one whose later threadpoolctl limits take effect), threadpoolctl's methods otherwise (MKL, BLIS...)."""

    def __init__(self, controller):
        functions = None
        if controller.internal_api == "openblas" and getattr(controller, "threading_layer", "") != "openmp":
            functions = _openblas_functions(controller.dynlib)
        self.get, self.set = functions or (controller.get_num_threads, controller.set_num_threads)


def _openblas_functions(library):
    """(get, set) of an OpenBLAS library's thread count, whatever its symbols' prefix and suffix."""
    for prefix in ("", "scipy_"):
        for suffix in ("", "64_", "_64"):
            name = f"{prefix}openblas_%s_num_threads{suffix}"
            if hasattr(library, name % "get") and hasattr(library, name % "set"):
                get, set_ = getattr(library, name % "get"), getattr(library, name % "set")
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                return get, set_
    return None


class _SingleThreadedBlas:
    """The context of ``single_threaded_blas()``: one object for the process. Nested and concurrent uses
    (two Python threads in the kernels at once) share one setting: the first in saves every library's
    count and sets it to one, the last out gives the counts back."""

    def __init__(self):
        self._lock = threading.Lock()
        self._libraries = None            # the _Blas of every BLAS library, found at the first use
        self._depth = 0
        self._saved = ()                  # (library, its count before) for each one this changed
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self):
        """A forked child starts with a lock of its own: one held by another thread at the fork would
        never be released there."""
        self._lock = threading.Lock()

    def _find(self):
        try:                             # SciPy's BLAS, when installed: loaded, to be found and held too
            import scipy.linalg.cython_blas  # noqa: F401
        except ImportError:
            pass
        from threadpoolctl import ThreadpoolController

        return tuple(_Blas(c) for c in ThreadpoolController().select(user_api="blas").lib_controllers)

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._libraries is None:
                    self._libraries = self._find()
                saved = []
                for library in self._libraries:
                    count = library.get()
                    if count is not None and count != 1:
                        library.set(1)
                        saved.append((library, count))
                self._saved = tuple(saved)
            self._depth += 1
        return self

    def __exit__(self, *exception):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for library, count in self._saved:
                    library.set(count)
                self._saved = ()
        return False


_single_threaded = _SingleThreadedBlas()


def single_threaded_blas() -> _SingleThreadedBlas:
    """``with single_threaded_blas(): ...`` runs the block with every BLAS library on one thread, and
    gives each its own count back after (exceptions too). Reentrant; cheap after the first use (a few
    C calls). The kernels' calls on host data run inside it (point 1), and so does ``nn.fit``."""
    return _single_threaded


class _HostKernels:
    """A kernel module whose functions run inside ``single_threaded_blas()`` (other attributes as they are)."""

    def __init__(self, module):
        self._module = module
        self._wrapped = {}                             # name -> (the module's function, its wrapper)

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if not callable(value) or isinstance(value, type):
            return value
        known = self._wrapped.get(name)
        if known is None or known[0] is not value:     # (a function replaced in the module is wrapped anew)
            known = self._wrapped[name] = (value, _inside_single_threaded_blas(value))
        return known[1]


def _inside_single_threaded_blas(function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        if not _state.limit_blas:
            return function(*args, **kwargs)
        with _single_threaded:
            return function(*args, **kwargs)
    return call


@functools.cache
def host_kernels(module):
    """``module`` (a family's reference.py or cpu.py) as the entry points call it: each function inside
    ``single_threaded_blas()``, unless the module declares ``BLAS_FREE = True`` (it makes no BLAS call: the
    context would cost its C calls for nothing). ``kernels.backend.implementation`` returns this for host
    backends."""
    return module if getattr(module, "BLAS_FREE", False) else _HostKernels(module)


# --- point 3 -------------------------------------------------------------------------------------------

def _keep_freed_memory() -> bool:
    """glibc's mallopt with MALLOC_SETTINGS, once; whether it took effect."""
    if not _state.malloc_tuned:
        import ctypes.util

        try:
            mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _state.malloc_tuned = all(mallopt(parameter, value) for parameter, value in MALLOC_SETTINGS)
    return _state.malloc_tuned


# --- point 2 -------------------------------------------------------------------------------------------

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


def configure(*, keep_freed_memory: bool = False, limit_blas: bool = True) -> Tuning:
    """Apply the settings now, idempotently, and return what is in effect.

    ``limit_blas``: the kernels' own work runs with every BLAS on one thread (point 1; the counts are
    given back after each call either way); False runs it on the counts as they are. ``keep_freed_memory``:
    tune glibc's malloc to reuse freed memory (point 3, opt-in; once done it stays done for the
    process). The threading layer (point 2) is asked for in any case. The kernels call this with
    the defaults at their first call (``CHAINRULE_KEEP_MEMORY=1`` then opts in to point 3), unless
    it was called before.
    """
    _choose_threading_layer()
    if keep_freed_memory:
        _keep_freed_memory()
    _state.limit_blas = bool(limit_blas)
    _state.configured = True
    return status()


def ensure_configured() -> None:
    """``configure()`` with the defaults, the first time a kernel runs; nothing after (or after a call
    of ``configure`` by hand). Every kernel entry point calls this, through ``kernels.backend.resolve``."""
    if not _state.configured:
        configure(keep_freed_memory=os.environ.get(KEEP_MEMORY_VARIABLE) == "1")


def status() -> Tuning:
    """What is in effect now."""
    return Tuning(blas_single_threaded=_state.limit_blas, threading_layer=_threading_layer(),
                  freed_memory_kept=_state.malloc_tuned, configured=_state.configured,
                  outputs_kept_bytes=_recycle.kept_bytes())


def empty_cache() -> int:
    """Give back the memory of the kernels' recycled outputs that nothing uses now (as PyTorch's
    ``torch.cuda.empty_cache``); the bytes released.

    >>> import numpy as np, kernels
    >>> y = kernels.conv2d.forward(np.ones((4, 8, 32, 32), np.float32), np.ones((8, 8, 3, 3), np.float32),
    ...                            np.zeros(8, np.float32), kernels.ConvGeometry(), backend="cpu")
    >>> del y                                   # nothing refers to that output now: it is free, and kept
    >>> empty_cache() >= 4 * 8 * 30 * 30 * 4
    True
    """
    return _recycle.release()
