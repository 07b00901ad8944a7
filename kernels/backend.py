"""Which implementation runs a kernel: "numpy" (the reference), "cpu" (Numba, parallel) or "cuda".

The default is "cpu". Choose per call (``backend="numpy"``), for a block of code
(``with kernels.use_backend("cuda"): ...``) or for the session (``kernels.set_backend("cuda")``).
"cuda" needs numba-cuda (the ``cuda`` extra: ``pip install 'chainrule[cuda]'``) and
``numba.cuda.is_available()``: a CUDA GPU and driver, or the Numba CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported; correct but very slow).

The dispatch itself is a static table in each family's package, e.g. ``kernels.conv2d.IMPLEMENTATIONS
= {"numpy": ..., "cpu": ..., "cuda": ...}``: backend name -> a function returning the module that
implements the family's verbs on that backend (``reference.py``, ``cpu.py``, ``cuda.py``, which share
their function names and arguments). Every family builds its table with ``implementations`` and every
entry point ends in one call of ``implementation`` (the backend, the device test, the module), e.g.::

    IMPLEMENTATIONS = implementations(__name__)
    ...
    return implementation(IMPLEMENTATIONS, backend, x=x, w=w).forward(x, w)

The modules are imported at their first use, so that ``import kernels`` does not pay for Numba
(about 0.3 s) or numba.cuda (about 0.5 s more).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import threading

from . import runtime
from ._checks import host_only, is_device_array

BACKENDS = ("numpy", "cpu", "cuda")
INSTALL_CUDA = "pip install 'chainrule[cuda]'"     # numba-cuda, an extra: the core install runs on the CPU


class _State(threading.local):
    name = "cpu"


_state = _State()


class BackendUnavailable(RuntimeError):
    """The backend asked for cannot run here (no CUDA device, say)."""


def _check_name(name):
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")


@functools.cache
def _numba_cuda_installed() -> bool:
    return importlib.util.find_spec("numba_cuda") is not None


#: numba-cuda versions whose compiler calls ``np.row_stack``, which NumPy 2.5 removed: with NumPy 2.5 every
#: kernel fails to compile, deep in numba (seen on a GPU machine with numba-cuda 0.30.4 and NumPy 2.5.2).
ROW_STACK_RELEASES = (0, 30, 4)


@functools.cache
def _numba_cuda_version() -> tuple:
    from importlib.metadata import version
    return tuple(int(part) for part in version("numba-cuda").split(".")[:3] if part.isdigit())


def cuda_import_error() -> str | None:
    """Why the CUDA kernels cannot load here, or None: numba-cuda (the ``cuda`` extra) is not installed
    (Numba's own deprecated ``numba.cuda``, which it then falls back to, is not the one they are written
    for), it is a release that cannot compile with this NumPy, or ``numba.cuda`` does not import."""
    if not _numba_cuda_installed():
        return "numba-cuda is not installed"
    import numpy as np
    if not hasattr(np, "row_stack") and _numba_cuda_version() <= ROW_STACK_RELEASES:
        return (f"numba-cuda {'.'.join(map(str, _numba_cuda_version()))} cannot compile kernels with NumPy "
                f"{np.__version__}, which removed np.row_stack: pip install 'numpy<2.5'")
    try:
        from numba import cuda  # noqa: F401
    except ImportError as exc:
        return f"numba.cuda does not import: {exc}"
    return None


def cuda_available() -> bool:
    """Whether numba-cuda's numba.cuda can run kernels here (a GPU, or the simulator)."""
    if cuda_import_error() is not None:
        return False
    from numba import cuda
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install reports through exceptions
        return False


def cuda_unavailable_reason() -> str | None:
    """Why backend "cuda" cannot run here, in words that name no API (Python's message below and the
    command line's each add their own advice), or None when it can."""
    if (why := cuda_import_error()) is not None:
        return f"it needs the cuda extra ({why}): {INSTALL_CUDA}"
    if not cuda_available():
        return "numba.cuda.is_available() is False: no CUDA GPU and driver were found (and the simulator is off)"
    return None


def _require(name):
    if name == "cuda" and not cuda_available():
        if (why := cuda_import_error()) is not None:
            raise BackendUnavailable(f"backend 'cuda' needs the cuda extra ({why}): {INSTALL_CUDA}, "
                                     f"or use backend='cpu'")
        raise BackendUnavailable(
            f"backend 'cuda' was asked for, but {cuda_unavailable_reason()}. Use backend='cpu', or set "
            "NUMBA_ENABLE_CUDASIM=1 before numba is imported to run the CUDA kernels in Numba's simulator (slow).")


def get_backend() -> str:
    """The backend used when a call does not name one."""
    return _state.name


def set_backend(name: str) -> None:
    """Use ``name`` ("numpy", "cpu" or "cuda") by default from now on (in this thread)."""
    _check_name(name)
    _require(name)
    _state.name = name


@contextlib.contextmanager
def use_backend(name: str):
    """``with use_backend("numpy"): ...`` runs the block's kernels on ``name``."""
    _check_name(name)
    _require(name)
    previous, _state.name = _state.name, name
    try:
        yield name
    finally:
        _state.name = previous


def resolve(backend: str | None) -> str:
    """The backend a kernel call runs on: its own ``backend=`` argument, else the current default.

    Every kernel entry point comes here (through ``implementation``) before its kernel runs, so this
    is also where the process-wide tuning is applied at the first call
    (``kernels.runtime.ensure_configured``: a flag test after that).
    """
    name = _state.name if backend is None else backend
    _check_name(name)
    _require(name)
    runtime.ensure_configured()
    return name


def resolve_for(backend: str | None, *arrays) -> str:
    """``resolve`` for a call on ``arrays``: the device follows the data. When the call names no
    backend and one of the arrays is a device array, it runs on "cuda", whatever the current default
    (a backend context only chooses between implementations for host data); a backend named in the
    call is taken at its word (a device array on "cpu" is then refused, by ``_checks.host_only``)."""
    if backend is None:
        for a in arrays:
            if a is not None and is_device_array(a):
                return resolve("cuda")
    return resolve(backend)


def implementations(package: str, *, cpu: str = "cpu") -> dict:
    """A family's IMPLEMENTATIONS table: backend name -> a function returning the module of ``package``
    that runs the family's verbs there: "reference" for "numpy", ``cpu`` for "cpu" ("cpu", or
    "reference" where NumPy is the CPU version), "cuda" for "cuda". Each is imported at its first call
    (and kept: later calls cost a lookup)."""
    modules = {"numpy": "reference", "cpu": cpu, "cuda": "cuda"}
    return {name: functools.cache(functools.partial(importlib.import_module, f"{package}.{module}"))
            for name, module in modules.items()}


def implementation(table, backend: str | None, **arrays):
    """The module of ``table`` (a family's IMPLEMENTATIONS) that runs a call on ``arrays``: the backend
    ``resolve_for`` picks, after refusing device arrays on a host backend (naming the argument). The
    one dispatch of every entry point. On the host, the module's functions run with every BLAS on one
    thread, given back its own count after (``kernels.runtime.host_kernels``)."""
    name = resolve_for(backend, *arrays.values())
    host_only(name, **arrays)
    return table[name]() if name == "cuda" else runtime.host_kernels(table[name]())
