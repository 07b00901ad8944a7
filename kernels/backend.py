"""Which implementation runs a kernel: "numpy" (the reference), "cpu" (Numba, parallel) or "cuda".

The default is "cpu". Choose per call (``backend="numpy"``), for a block of code
(``with kernels.use_backend("cuda"): ...``) or for the session (``kernels.set_backend("cuda")``).
"cuda" needs ``numba.cuda.is_available()``: a CUDA GPU and driver, or the Numba CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported; correct but very slow).
"""
from __future__ import annotations

import contextlib
import importlib
import threading

BACKENDS = ("numpy", "cpu", "cuda")
_MODULES = {"numpy": "reference", "cpu": "cpu", "cuda": "cuda"}


class _State(threading.local):
    name = "cpu"


_state = _State()


class BackendUnavailable(RuntimeError):
    """The backend asked for cannot run here (no CUDA device, say)."""


def _check_name(name):
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")


def cuda_available() -> bool:
    """Whether numba.cuda can run kernels here (a GPU, or the simulator)."""
    try:
        from numba import cuda
    except ImportError:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install reports through exceptions
        return False


def _require(name):
    if name == "cuda" and not cuda_available():
        raise BackendUnavailable(
            "backend 'cuda' was asked for, but numba.cuda.is_available() is False: no CUDA GPU and driver "
            "were found (and the simulator is off). Use backend='cpu', or set NUMBA_ENABLE_CUDASIM=1 before "
            "numba is imported to run the CUDA kernels in Numba's simulator (slow).")


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
    """The backend a call runs on: its own ``backend=`` argument, else the current default."""
    name = _state.name if backend is None else backend
    _check_name(name)
    _require(name)
    return name


def implementation(family: str, backend: str | None):
    """The module of ``family`` ("conv2d", "pool2d", "optim") for the backend, e.g. kernels.conv2d.cpu."""
    return importlib.import_module(f"kernels.{family}.{_MODULES[resolve(backend)]}")
