"""Activations for nn's device path: the elementwise ones (relu, tanh, sigmoid, elu, leaky_relu, swish)
and their derivatives, and the row softmax. Formulas in reference.py (NumPy, the oracle; also the host
version); numba.cuda versions in cuda.py, whose elementwise kernels call the scalar formulas of
formulas.py (shared with the compiled convolution's fused ReLU).

    activation_forward(x, name, alpha=0.0)            -> y       name in ACTIVATIONS
    activation_backward(g, x, y, name, alpha=0.0)     -> dx
    softmax(z) / softmax_backward(g, y)               rows of (N, K)
    prelu_forward(x, alpha) -> y;  prelu_backward(g, x, alpha) -> (dx, dalpha)    alpha (C,) along axis 1
    maxout_forward(x, pieces) -> y;  maxout_backward(g, x, pieces) -> dx         groups of axis 1

As for every family: device arrays in, device arrays out (the device follows the data); host arrays
run in NumPy unless the call or the current backend says "cuda". nn's CPU path composes these ops
from autodiff's primitives instead; nn's device path calls these.

>>> import numpy as np
>>> activation_forward(np.array([-1.0, 2.0], np.float32), "relu", backend="numpy")
array([0., 2.], dtype=float32)
>>> softmax(np.zeros((1, 4), np.float32), backend="numpy")
array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
>>> prelu_forward(np.array([[-2.0, 3.0]]), np.array([0.25, 0.5]), backend="numpy")
array([[-0.5,  3. ]])
>>> maxout_forward(np.array([[1.0, 4.0, -1.0, -3.0]]), 2, backend="numpy")
array([[ 4., -1.]])
"""
from __future__ import annotations

from .._checks import float_array, same_shape
from ..backend import implementation, implementations
from .reference import ACTIVATIONS

__all__ = ["ACTIVATIONS", "activation_forward", "activation_backward", "softmax", "softmax_backward", "prelu_forward",
           "prelu_backward", "maxout_forward", "maxout_backward"]

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


def _channels(x, name):
    x = float_array(x, name)
    if len(x.shape) < 2:
        raise ValueError(f"{name} must be (N, C, ...) with channels on axis 1, got shape {tuple(x.shape)}")
    return x


def _alpha(alpha, x):
    alpha = float_array(alpha, "alpha", 1, dtype=x.dtype)
    if alpha.shape[0] != x.shape[1]:
        raise ValueError(f"alpha must have one slope per channel ({x.shape[1]},), got {tuple(alpha.shape)}")
    return alpha


def _pieces(pieces, x):
    if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 1 or x.shape[1] % pieces:
        raise ValueError(f"pieces must be an int >= 1 dividing the {x.shape[1]} channels, got {pieces!r}")
    return pieces


def prelu_forward(x, alpha, *, backend=None):
    """x where x > 0, else alpha[c] x: PReLU with one slope per channel (axis 1)."""
    x = _channels(x, "x")
    alpha = _alpha(alpha, x)
    return implementation(IMPLEMENTATIONS, backend, x=x, alpha=alpha).prelu_forward(x, alpha)


def prelu_backward(g, x, alpha, *, backend=None):
    """(dx, dalpha) of PReLU: dx = g or alpha[c] g; dalpha[c] = sum of g x where x <= 0."""
    x = _channels(x, "x")
    g, alpha = float_array(g, "g", dtype=x.dtype), _alpha(alpha, x)
    same_shape(g, "g", x, "x")
    return implementation(IMPLEMENTATIONS, backend, g=g, x=x, alpha=alpha).prelu_backward(g, x, alpha)


def maxout_forward(x, pieces, *, backend=None):
    """The maximum over each group of ``pieces`` consecutive channels (axis 1)."""
    x = _channels(x, "x")
    return implementation(IMPLEMENTATIONS, backend, x=x).maxout_forward(x, _pieces(pieces, x))


def maxout_backward(g, x, pieces, *, backend=None):
    """dx of maxout: each group's gradient shared evenly by its maxima (autodiff's max rule)."""
    x = _channels(x, "x")
    pieces = _pieces(pieces, x)
    g = float_array(g, "g", dtype=x.dtype)
    expected = (x.shape[0], x.shape[1] // pieces) + tuple(x.shape[2:])
    if tuple(g.shape) != expected:
        raise ValueError(f"g must have maxout's output shape {expected}, got {tuple(g.shape)}")
    return implementation(IMPLEMENTATIONS, backend, g=g, x=x).maxout_backward(g, x, pieces)
