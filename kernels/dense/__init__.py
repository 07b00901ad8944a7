"""The dense (fully connected) layer's three products: y = x w + b, dL/dx = g w^T, (dL/dw, dL/db) =
(x^T g, column sums of g). x (N, in), w (in, units) (Keras's layout), b (units,) or None.

    forward(x, w, b)               -> y
    backward_input(g, w)           -> dx
    backward_weight(g, x, bias=True) -> (dw, db)

Device arrays in (``kernels.device.DeviceArray`` or numba's): they run on the device (cuda.py,
tiled in shared memory) and return DeviceArrays. Host arrays run in NumPy (reference.py: BLAS, which
is the CPU implementation; "numpy" and "cpu" are the same here), unless the call (or the current
backend) says "cuda". All arrays of a call share one float dtype.

>>> import numpy as np
>>> x = np.array([[1.0, 2.0]], np.float32); w = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]], np.float32)
>>> forward(x, w, np.array([0.5, 0.5, 0.5], np.float32), backend="numpy")
array([[1.5, 2.5, 8.5]], dtype=float32)
"""
from __future__ import annotations

from .._checks import float_array
from ..backend import implementation, implementations

__all__ = ["forward", "backward_input", "backward_weight"]


IMPLEMENTATIONS = implementations(__name__, cpu="reference")     # NumPy is the CPU version


def _inner(a_name, a_cols, b_name, b_rows, what):
    if a_cols != b_rows:
        raise ValueError(f"{what}: {a_name} has {a_cols} columns but {b_name} has {b_rows} rows")


def forward(x, w, b=None, *, backend=None):
    """y = x @ w + b (b may be None)."""
    x = float_array(x, "x", 2)
    w = float_array(w, "w", 2, dtype=x.dtype)
    _inner("x", x.shape[1], "w", w.shape[0], "dense forward")
    if b is not None:
        b = float_array(b, "b", 1, dtype=x.dtype)
        if tuple(b.shape) != (w.shape[1],):
            raise ValueError(f"b must have shape (units,) = ({w.shape[1]},), got {tuple(b.shape)}")
    return implementation(IMPLEMENTATIONS, backend, x=x, w=w, b=b).forward(x, w, b)


def backward_input(g, w, *, backend=None):
    """dL/dx = g @ w^T for g = dL/dy (N, units)."""
    g = float_array(g, "g", 2)
    w = float_array(w, "w", 2, dtype=g.dtype, like="g")
    _inner("g", g.shape[1], "w", w.shape[1], "dense backward_input (w's columns are the units)")
    return implementation(IMPLEMENTATIONS, backend, g=g, w=w).backward_input(g, w)


def backward_weight(g, x, bias=True, *, backend=None):
    """(dL/dw = x^T @ g, dL/db = column sums of g, or None when ``bias`` is False)."""
    g = float_array(g, "g", 2)
    x = float_array(x, "x", 2, dtype=g.dtype, like="g")
    if x.shape[0] != g.shape[0]:
        raise ValueError(f"dense backward_weight: x has {x.shape[0]} rows but g has {g.shape[0]}")
    return implementation(IMPLEMENTATIONS, backend, g=g, x=x).backward_weight(g, x, bool(bias))
