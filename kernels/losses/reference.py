"""The losses of nn's device path in NumPy: the oracle of cuda.py (and the host implementation of the
same functions). ``weights`` (N,) or None scales each row's loss and gradient (Keras's sample_weight)."""
from __future__ import annotations

import numpy as np

from ..activations.reference import softmax


def _targets(t, shape, dtype):
    if t.ndim == 1:
        onehot = np.zeros(shape, dtype=dtype)
        onehot[np.arange(shape[0]), t] = 1
        return onehot
    return t.astype(dtype, copy=False)


def _rows(weights, dtype, ndim=2):
    """The per-row factor, shaped to broadcast over a row: 1 without weights."""
    return dtype.type(1) if weights is None else weights.astype(dtype, copy=False).reshape((-1,) + (1,) * (ndim - 1))


def _scale(g, dtype, count):
    """The loss's cotangent g (a number) over ``count``, in ``dtype``."""
    return dtype.type(np.asarray(g).reshape(()) / count)


def softmax_cross_entropy(z, targets, weights=None):
    """Mean over rows of -w_i sum_k t_k log softmax(z)_k (a 0-d array); targets labels (N,) or (N, K)."""
    m = z.max(axis=1, keepdims=True)
    log_p = z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))
    t = _targets(targets, z.shape, z.dtype) * _rows(weights, z.dtype)
    return np.asarray(-(t * log_p).sum() / z.shape[0], dtype=z.dtype)


def softmax_cross_entropy_backward(g, z, targets, weights=None):
    """dL/dz = g w_i (softmax(z) - t) / N, g the (scalar) cotangent of the loss."""
    scale = _scale(g, z.dtype, z.shape[0])
    return ((softmax(z) - _targets(targets, z.shape, z.dtype)) * (_rows(weights, z.dtype) * scale)).astype(z.dtype)


def _clipped(p, eps):
    """min(max(p, eps), 1) and its derivative as nn.functional.cross_entropy's graph has it (a tie counts 1/2)."""
    high = np.maximum(p, eps)
    slope = np.heaviside(p - eps, 0.5) * np.heaviside(1 - high, 0.5)
    return np.minimum(high, 1).astype(p.dtype), slope.astype(p.dtype)


def cross_entropy(p, targets, eps, weights=None):
    """Mean over rows of -w_i sum_k t_k log min(max(p_k, eps), 1) (Keras's categorical_crossentropy)."""
    t = _targets(targets, p.shape, p.dtype) * _rows(weights, p.dtype)
    return np.asarray(-(t * np.log(_clipped(p, p.dtype.type(eps))[0])).sum() / p.shape[0], dtype=p.dtype)


def cross_entropy_backward(g, p, targets, eps, weights=None):
    """dL/dp = -g w_i t_k / clip(p_k) / N where the clip passes p (its slope), else 0."""
    clipped, slope = _clipped(p, p.dtype.type(eps))
    t = _targets(targets, p.shape, p.dtype) * _rows(weights, p.dtype)
    return (-(t / clipped) * slope * _scale(g, p.dtype, p.shape[0])).astype(p.dtype)


def mse(prediction, target, weights=None):
    """Mean over every element of w_i (prediction - target)^2 (a 0-d array); rows along axis 0."""
    d = prediction - target
    return np.asarray((_rows(weights, prediction.dtype, d.ndim) * d * d).sum() / d.size, dtype=prediction.dtype)


def mse_backward(g, prediction, target, weights=None):
    """dL/dprediction = g 2 w_i (prediction - target) / size."""
    d = prediction - target
    return (2 * _scale(g, d.dtype, d.size) * _rows(weights, d.dtype, d.ndim) * d).astype(d.dtype)


def weight_penalty(w, l1, l2):
    """l1 sum |w| + l2 / 2 sum w^2 (a 0-d array): the elastic net of nn.regularizers on one parameter."""
    return np.asarray(l1 * np.abs(w).sum() + (l2 / 2) * (w * w).sum(), dtype=w.dtype)


def weight_penalty_backward(g, w, l1, l2):
    """d/dw = g (l1 sign(w) + l2 w)."""
    s = np.asarray(g).reshape(()).astype(w.dtype)
    return (s * (w.dtype.type(l1) * np.sign(w) + w.dtype.type(l2) * w)).astype(w.dtype)


def correct(z, targets):
    """How many rows' argmax is the label (targets (N,) labels, or (N, K): their argmax), as a 0-d float."""
    labels = targets if targets.ndim == 1 else targets.argmax(axis=1)
    return np.asarray(np.sum(z.argmax(axis=1) == labels), dtype=np.float64)
