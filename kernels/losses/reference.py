"""The fused softmax cross-entropy and the accuracy count in NumPy: the oracle of cuda.py (and the host
implementation of the same functions)."""
from __future__ import annotations

import numpy as np

from ..activations.reference import softmax


def _targets(t, shape, dtype):
    if t.ndim == 1:
        onehot = np.zeros(shape, dtype=dtype)
        onehot[np.arange(shape[0]), t] = 1
        return onehot
    return t.astype(dtype, copy=False)


def softmax_cross_entropy(z, targets):
    """Mean over rows of -sum_k t_k log softmax(z)_k (a 0-d array); targets labels (N,) or (N, K)."""
    m = z.max(axis=1, keepdims=True)
    log_p = z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))
    return np.asarray(-(_targets(targets, z.shape, z.dtype) * log_p).sum() / z.shape[0], dtype=z.dtype)


def softmax_cross_entropy_backward(g, z, targets):
    """dL/dz = g (softmax(z) - t) / N, g the (scalar) cotangent of the loss."""
    scale = z.dtype.type(np.asarray(g).reshape(()) / z.shape[0])
    return ((softmax(z) - _targets(targets, z.shape, z.dtype)) * scale).astype(z.dtype)


def correct(z, targets):
    """How many rows' argmax is the label (targets (N,) labels, or (N, K): their argmax), as a 0-d float."""
    labels = targets if targets.ndim == 1 else targets.argmax(axis=1)
    return np.asarray(np.sum(z.argmax(axis=1) == labels), dtype=np.float64)
