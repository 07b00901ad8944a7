"""BLAS threading, arranged before NumPy loads OpenBLAS (imported first by ``kernels``).

The CPU convolution alternates Numba ``prange`` loops (im2col, col2im) with one OpenBLAS matrix
product called from Python, outside every ``prange``: the two thread pools never run at once, and
no BLAS call is made from inside a Numba thread (which is what floods "OpenBLAS Warning: Detect
OpenMP Loop" and runs erratically). One thing remains: after a call, OpenBLAS's worker threads
busy-wait for about 2**28 cycles (~0.1 s) before they sleep, and they take the cores from the
``prange`` loop that follows, and from every Numba loop after any NumPy matrix product (measured on
2 cores: conv2 forward 24 ms instead of 11 ms; a digits training step 60 ms instead of 5 ms).

So, when NumPy has not been imported yet, ``OPENBLAS_THREAD_TIMEOUT=4`` (2**4 cycles: idle threads
sleep at once) is set here, unless the user set it. OpenBLAS reads it only when it is loaded. When
NumPy came first and the variable was not set, the spinning cannot be switched off any more;
``blas_guard()`` then limits BLAS to one thread (with threadpoolctl) around the kernels' products and
around ``nn``'s training loop, which removes the spinning threads at the price of single-threaded
matrix products. Import ``kernels`` (or ``nn``) before NumPy, or export the variable, for both.
"""
import contextlib
import os
import sys

BLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}

#: True when this module set the environment before NumPy was loaded (or the user had set it).
ARRANGED = "numpy" not in sys.modules or all(name in os.environ for name in BLAS_ENV)
if "numpy" not in sys.modules:
    for _name, _value in BLAS_ENV.items():
        os.environ.setdefault(_name, _value)

_controller = None


def blas_guard():
    """A context in which BLAS runs single-threaded, when the environment could not be arranged
    (a no-op otherwise)."""
    global _controller
    if ARRANGED:
        return contextlib.nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


# --- memory: reuse freed arrays instead of faulting in fresh pages ----------------------------------
#
# A training step allocates and frees the same large arrays (activations, im2col matrices, gradients:
# up to 18 MB each for the Keras CNN at batch 128) again and again. glibc serves each large request
# with a fresh mmap and unmaps it on free, so every step pays the page faults of touching new memory
# again (about 0.3 ms per MB here: a third of a CNN training step). Raising glibc's mmap and trim
# thresholds makes it keep freed memory in its heap and hand it out again, as PyTorch's caching
# allocator does. It is process-wide (the memory is not returned to the system until the process
# ends), so it is done only when asked: nn.fit and the benchmarks ask.

_MALLOC_TUNED = False
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to reuse freed large blocks (mmap threshold 32 MB, no trimming).

    Returns whether it took effect (False on a C library without ``mallopt``, e.g. musl or macOS).
    Set ``CHAINRULE_KEEP_MEMORY=0`` to leave malloc alone.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or os.environ.get("CHAINRULE_KEEP_MEMORY") == "0":
        return _MALLOC_TUNED
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _MALLOC_TUNED = bool(mallopt(M_MMAP_THRESHOLD, 32 * 2**20) and mallopt(M_TRIM_THRESHOLD, 2**30)
                         and mallopt(M_TOP_PAD, 64 * 2**20))
    return _MALLOC_TUNED
