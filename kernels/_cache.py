"""Numba's on-disk cache for the kernels, invalidated by a change to any file of the package.

Numba checks a cached function against its own source file only, not against the files of the
functions it calls and compiles in (``formulas.py``'s activations inside conv2d's loops,
``winograd_transforms.py`` inside ``winograd.py``). After an update that changes only a callee's
file (a ``git pull``), the caller's cached machine code would still run the old callee: a silent
wrong result. ``njit`` here is Numba's, except that with ``cache=True`` the cache is stamped with
the contents of every ``.py`` file of the package, so any change recompiles every kernel once.
Numba's own locators still choose where the cache lives (``$NUMBA_CACHE_DIR``, ``__pycache__``, or
the user-wide cache); nothing outside this package's functions changes. ``cfunc`` is Numba's, its
cache stamped the same way.

>>> from kernels._cache import PACKAGE, package_stamp
>>> len(package_stamp(PACKAGE))            # one SHA-256 for the whole package
32
"""
from __future__ import annotations

import functools
import hashlib
import types
from pathlib import Path

import numba
from numba.core import caching, sigutils
from numba.core.ccallback import CFunc

PACKAGE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def package_stamp(root: Path) -> bytes:
    """SHA-256 of every ``.py`` file under ``root`` (names and contents, in sorted order)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


def _stamped(locator, root):
    """Numba's ``locator`` class, its source stamp the package's instead of one file's."""
    return type(f"Package{locator.__name__}", (locator,), {"get_source_stamp": lambda self: package_stamp(root)})


@functools.lru_cache(maxsize=None)
def function_cache(root: Path):
    """The FunctionCache class of the package under ``root`` (where its cache lives is Numba's choice)."""
    locators = [_stamped(c, root) for c in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                                            caching.UserWideCacheLocator)]
    impl = type("PackageCacheImpl", (caching.CompileResultCacheImpl,), {"_locator_classes": locators})
    return type("PackageFunctionCache", (caching.FunctionCache,), {"_impl_class": impl})


def njit_for(root: Path):
    """An ``njit`` whose ``cache=True`` stamps the cache with every source file under ``root``. Given
    signatures, it compiles (or loads from that cache) those only, as Numba's does."""
    def njit(*args, cache=False, **options):
        if args and callable(args[0]):                     # @njit used without parentheses
            return njit(cache=cache, **options)(args[0])
        signatures = args[0] if args else None

        def decorate(function):
            dispatcher = numba.njit(**options)(function)
            if cache:
                dispatcher._cache = function_cache(root)(dispatcher.py_func)   # what cache=True sets up
            if signatures is not None:                     # after the cache is set, so that it is used
                for signature in signatures:
                    dispatcher.compile(signature)
                dispatcher.disable_compile()
            return dispatcher
        return decorate
    return njit


def cfunc_for(root: Path):
    """A ``cfunc`` (Numba's C callback: one native function at a fixed address) whose ``cache=True``
    stamps the cache as ``njit_for``'s does."""
    def cfunc(signature, cache=False, **options):
        def decorate(function):
            callback = CFunc(function, sigutils.normalize_signature(signature), locals={}, options=options)
            if cache:
                callback._cache = function_cache(root)(function)         # what enable_caching() sets up
            callback.compile()
            return callback
        return decorate
    return cfunc


njit = njit_for(PACKAGE)
cfunc = cfunc_for(PACKAGE)

#: Below this many elements a kernel's loop runs on the calling thread (``serial``): a parallel loop
#: wakes the other threads, asleep after the Python between two kernel calls, and that costs tens of
#: microseconds, more than such a loop takes on one core.
SERIAL_BELOW = 1 << 15


def serial(kernel):
    """``kernel``'s Python function compiled once more without ``parallel`` (its prange loops run as
    range on the calling thread), cached like the kernel; made on first use and kept on the kernel.
    For a kernel whose iterations are independent (or only add integers), the same bits as the
    parallel kernel: each iteration does the same operations in the same order."""
    twin = getattr(kernel, "_serial_twin", None)
    if twin is None:
        f = kernel.py_func
        copy = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__, f.__closure__)
        copy.__qualname__, copy.__module__, copy.__doc__ = f.__qualname__ + "_serial", f.__module__, f.__doc__
        options = {k: v for k, v in kernel.targetoptions.items() if k not in ("parallel", "nopython")}
        twin = kernel._serial_twin = njit(cache=True, **options)(copy)
    return twin


def sized(kernel, size, below=SERIAL_BELOW):
    """The kernel to run for ``size`` elements of work: ``serial(kernel)`` below ``below``, else itself. A
    loop over several arrays that it writes may not vectorise in the serial twin (Numba tells LLVM that a
    parallel loop's arrays do not overlap, not a serial one's): such a kernel takes a lower ``below``."""
    return serial(kernel) if size < below else kernel
