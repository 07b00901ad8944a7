"""Activations for nn's device path: the elementwise ones (relu, tanh, sigmoid, elu, leaky_relu, swish)
and their derivatives, and the row softmax. Formulas in reference.py (NumPy, the oracle; also the host
version); numba.cuda versions in cuda.py, whose elementwise kernels call the scalar formulas of
formulas.py (shared with the compiled convolution's fused ReLU).

    activation_forward(x, name, alpha=0.0)            -> y       name in ACTIVATIONS
    activation_backward(g, x, y, name, alpha=0.0)     -> dx
    softmax(z) / softmax_backward(g, y)               rows of (N, K)

As for every family: device arrays in, device arrays out (the device follows the data); host arrays
run in NumPy unless the call or the current backend says "cuda". nn's CPU path composes these ops
from autodiff's primitives instead; nn's device path calls these.

>>> import numpy as np
>>> activation_forward(np.array([-1.0, 2.0], np.float32), "relu", backend="numpy")
array([0., 2.], dtype=float32)
>>> softmax(np.zeros((1, 4), np.float32), backend="numpy")
array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
"""
from __future__ import annotations

from .._checks import float_array, same_shape
from ..backend import implementation, implementations
from .reference import ACTIVATIONS

__all__ = ["ACTIVATIONS", "activation_forward", "activation_backward", "softmax", "softmax_backward"]

IMPLEMENTATIONS = implementations(__name__, cpu="reference")     # NumPy is the CPU version


def _name(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return name


def activation_forward(x, name, alpha=0.0, *, backend=None):
    """y = activation(x), elementwise (see reference.py for the formulas)."""
    x = float_array(x, "x")
    return implementation(IMPLEMENTATIONS, backend, x=x).activation_forward(x, _name(name), float(alpha))


def activation_backward(g, x, y, name, alpha=0.0, *, backend=None):
    """dL/dx = g activation'(x), with y = activation(x)."""
    x = float_array(x, "x")
    g, y = float_array(g, "g", dtype=x.dtype), float_array(y, "y", dtype=x.dtype)
    same_shape(g, "g", x, "x"), same_shape(y, "y", x, "x")
    module = implementation(IMPLEMENTATIONS, backend, g=g, x=x, y=y)
    return module.activation_backward(g, x, y, _name(name), float(alpha))


def softmax(z, *, backend=None):
    """Row softmax of z (N, K)."""
    z = float_array(z, "z", 2)
    return implementation(IMPLEMENTATIONS, backend, z=z).softmax(z)


def softmax_backward(g, y, *, backend=None):
    """dL/dz = y (g - sum_j g_j y_j) per row, y = softmax(z)."""
    y = float_array(y, "y", 2)
    g = float_array(g, "g", 2, dtype=y.dtype)
    same_shape(g, "g", y, "y")
    return implementation(IMPLEMENTATIONS, backend, g=g, y=y).softmax_backward(g, y)
