"""Activations and the row softmax in NumPy: the oracle of cuda.py and of the scalar formulas of
formulas.py it calls (and the host implementation of the same functions).

Activations by code (``ACTIVATIONS``), with a parameter ``alpha`` where they have one:
relu max(x, 0); tanh; sigmoid 1 / (1 + e^-x); elu x or alpha (e^x - 1); leaky_relu x or alpha x;
swish x sigmoid(alpha x). Derivatives at 0 as in ``nn.functional``: relu'(0) = 0, leaky'(0) = alpha,
elu'(0) = alpha.
"""
from __future__ import annotations

import numpy as np

ACTIVATIONS = {"relu": 0, "tanh": 1, "sigmoid": 2, "elu": 3, "leaky_relu": 4, "swish": 5}


def _sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def activation_forward(x, name, alpha):
    """y = activation(x)."""
    one = x.dtype.type(1)
    if name == "relu":
        return np.maximum(x, x.dtype.type(0))
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return _sigmoid(x).astype(x.dtype)
    if name == "elu":
        return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - one)).astype(x.dtype)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x).astype(x.dtype)
    return (x * _sigmoid(alpha * x)).astype(x.dtype)     # swish


def activation_backward(g, x, y, name, alpha):
    """dL/dx = g * activation'(x) (y = activation(x), which some derivatives are written with)."""
    one = x.dtype.type(1)
    if name == "relu":
        d = (x > 0).astype(x.dtype)
    elif name == "tanh":
        d = one - y * y
    elif name == "sigmoid":
        d = y * (one - y)
    elif name == "elu":
        d = np.where(x > 0, one, alpha * np.exp(np.minimum(x, 0)))
    elif name == "leaky_relu":
        d = np.where(x > 0, one, x.dtype.type(alpha))
    else:
        s = _sigmoid(alpha * x)
        d = s + alpha * x * s * (one - s)
    return (g * d).astype(x.dtype)


def softmax(z):
    """Row softmax of z (N, K), stabilised by the row maximum."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(g, y):
    """dL/dz for y = softmax(z): y * (g - sum_j g_j y_j) per row."""
    return y * (g - (g * y).sum(axis=1, keepdims=True))
