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


def _per_channel(alpha, ndim):
    """alpha (C,) shaped to broadcast along axis 1 of an ndim-D input."""
    return alpha.reshape((1, -1) + (1,) * (ndim - 2))


def prelu_forward(x, alpha):
    """x where x > 0, else alpha[c] x (c the channel, axis 1)."""
    return np.where(x > 0, x, _per_channel(alpha, x.ndim) * x).astype(x.dtype)


def prelu_backward(g, x, alpha):
    """(dx, dalpha): g or alpha[c] g; the sum of g x over every position of channel c where x <= 0."""
    positive = x > 0
    dx = np.where(positive, g, _per_channel(alpha, x.ndim) * g).astype(x.dtype)
    axes = (0,) + tuple(range(2, x.ndim))
    return dx, np.where(positive, 0, g * x).sum(axis=axes).astype(x.dtype)


def _groups(x, pieces):
    return x.reshape((x.shape[0], x.shape[1] // pieces, pieces) + x.shape[2:])


def maxout_forward(x, pieces):
    """The maximum over each group of ``pieces`` consecutive channels: (N, C, ...) -> (N, C / pieces, ...)."""
    return _groups(x, pieces).max(axis=2)


def maxout_backward(g, x, pieces):
    """g shared evenly by the k maxima of each group (as autodiff's max), 0 elsewhere."""
    grouped = _groups(x, pieces)
    top = grouped == grouped.max(axis=2, keepdims=True)
    share = np.expand_dims(g, 2) / top.sum(axis=2, keepdims=True).astype(x.dtype)
    return (top * share).astype(x.dtype).reshape(x.shape)
