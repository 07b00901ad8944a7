"""The loss of nn's device path, the fused softmax cross-entropy, and the accuracy count over the same
targets. Formulas in reference.py (NumPy, the oracle; also the host version); numba.cuda versions in
cuda.py.

    softmax_cross_entropy(z, targets) -> 0-d loss;  softmax_cross_entropy_backward(g, z, targets) -> dz
    correct(z, targets)               -> 0-d count of rows whose argmax is the label

z is (N, K) logits; targets integer labels (N,) or distributions (N, K). As for every family: device
arrays in, device arrays out (the device follows the data); host arrays run in NumPy unless the call
or the current backend says "cuda".

>>> import numpy as np
>>> z = np.array([[2.0, 0.0], [0.0, 3.0]], np.float32)
>>> correct(z, np.array([0, 0]), backend="numpy")
array(1.)
>>> float(softmax_cross_entropy(np.zeros((1, 4), np.float32), np.array([2]), backend="numpy"))  # log 4
1.3862943649291992
"""
from __future__ import annotations

import numpy as np

from .._checks import float_array, is_device_array
from ..backend import implementation, implementations

__all__ = ["softmax_cross_entropy", "softmax_cross_entropy_backward", "correct"]

IMPLEMENTATIONS = implementations(__name__, cpu="reference")     # NumPy is the CPU version


def _targets(targets, z):
    """Labels (N,) of an integer dtype, or distributions (N, K) of z's dtype; host labels are checked
    to lie in 0..K-1 (device labels cannot be read without a copy: the caller checks them)."""
    n, k = z.shape
    device = is_device_array(targets)
    t = targets if device else np.ascontiguousarray(targets)
    dtype = np.dtype(t.dtype)
    if len(t.shape) == 1:
        if t.shape[0] != n or dtype.kind not in "iu":
            raise ValueError(f"targets must be integer labels of shape ({n},), got {dtype} {tuple(t.shape)}")
        if not device:
            if t.size and (t.min() < 0 or t.max() >= k):
                raise ValueError(f"labels must be in 0..{k - 1}, got values from {t.min()} to {t.max()}")
            t = t.astype(np.int64, copy=False)
        elif dtype != np.int64:
            raise TypeError(f"device labels must be int64, got {dtype}")
    elif tuple(t.shape) != (n, k) or dtype != np.dtype(z.dtype):
        raise ValueError(f"targets must be labels (N,) or a distribution (N, K) = ({n}, {k}) of dtype {z.dtype}, "
                         f"got {dtype} {tuple(t.shape)}")
    return t


def softmax_cross_entropy(z, targets, *, backend=None):
    """Mean over the N rows of -sum_k t_k log softmax(z)_k, a 0-d array (log-sum-exp: never log 0)."""
    z = float_array(z, "z", 2)
    t = _targets(targets, z)
    return implementation(IMPLEMENTATIONS, backend, z=z, targets=t).softmax_cross_entropy(z, t)


def softmax_cross_entropy_backward(g, z, targets, *, backend=None):
    """dL/dz = g (softmax(z) - t) / N, g the loss's cotangent (a number or a 1-element array)."""
    z = float_array(z, "z", 2)
    t = _targets(targets, z)
    if int(np.prod(np.shape(g))) != 1:
        raise ValueError(f"g must be the loss's cotangent, one number, got shape {np.shape(g)}")
    return implementation(IMPLEMENTATIONS, backend, z=z, targets=t).softmax_cross_entropy_backward(g, z, t)


def correct(z, targets, *, backend=None):
    """How many rows of z have their argmax at the label (accuracy * N), a 0-d float64 array."""
    z = float_array(z, "z", 2)
    t = _targets(targets, z)
    return implementation(IMPLEMENTATIONS, backend, z=z, targets=t).correct(z, t)
