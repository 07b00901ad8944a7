"""The losses of nn's device path and the accuracy count. Formulas in reference.py (NumPy, the oracle;
also the host version); numba.cuda versions in cuda.py.

    softmax_cross_entropy(z, targets)  -> 0-d loss;  softmax_cross_entropy_backward(g, z, targets) -> dz
    cross_entropy(p, targets, eps=)    -> 0-d loss;  cross_entropy_backward(g, p, targets, eps=)   -> dp
    mse(prediction, target)            -> 0-d loss;  mse_backward(g, prediction, target)           -> dprediction
    weight_penalty(w, l1=, l2=)        -> l1 sum|w| + l2/2 sum w^2;  weight_penalty_backward(g, w, l1=, l2=)
    correct(z, targets)                -> 0-d count of rows whose argmax is the label

z is (N, K) logits, p (N, K) probabilities; targets integer labels (N,) or distributions (N, K). The
losses take ``weights=`` (N,), each row's factor (Keras's sample_weight); g is the loss's cotangent,
one number (on the device, it is read there). As for every family: device
arrays in, device arrays out (the device follows the data); host arrays run in NumPy unless the call
or the current backend says "cuda".

>>> import numpy as np
>>> z = np.array([[2.0, 0.0], [0.0, 3.0]], np.float32)
>>> correct(z, np.array([0, 0]), backend="numpy")
array(1.)
>>> float(softmax_cross_entropy(np.zeros((1, 4), np.float32), np.array([2]), backend="numpy"))  # log 4
1.3862943649291992
>>> p = np.array([[0.5, 0.5], [0.25, 0.75]])
>>> float(cross_entropy(p, np.array([0, 1]), weights=np.array([2.0, 0.0]), backend="numpy"))   # 2 log 2 / 2
0.6931471805599453
>>> float(mse(p, np.zeros((2, 2)), backend="numpy")), mse_backward(1.0, p, np.zeros((2, 2)), backend="numpy")
(0.28125, array([[0.25 , 0.25 ],
       [0.125, 0.375]]))
>>> float(weight_penalty(np.array([1.0, -2.0]), l1=0.5, l2=1.0, backend="numpy"))   # 0.5 * 3 + 5 / 2
4.0
"""
from __future__ import annotations

import numpy as np

from .._checks import float_array, is_device_array
from ..backend import implementation, implementations

__all__ = ["softmax_cross_entropy", "softmax_cross_entropy_backward", "cross_entropy", "cross_entropy_backward",
           "mse", "mse_backward", "weight_penalty", "weight_penalty_backward", "correct"]

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


def _weights(weights, n, dtype):
    """None, or (N,) row weights of the loss's dtype (device weights are used as they are)."""
    if weights is None:
        return None
    w = float_array(weights, "weights", 1, dtype=dtype)
    if tuple(w.shape) != (n,):
        raise ValueError(f"weights must have shape ({n},) (one per row), got {tuple(w.shape)}")
    return w


def _cotangent(g):
    if int(np.prod(np.shape(g))) != 1:
        raise ValueError(f"g must be the loss's cotangent, one number, got shape {np.shape(g)}")
    return g


def _eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not 0 < eps < 1:
        raise ValueError(f"eps must be a number in (0, 1), got {eps!r}")
    return float(eps)


def _penalty(l1, l2):
    for name, value in (("l1", l1), ("l2", l2)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value < np.inf:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(l1), float(l2)


def softmax_cross_entropy(z, targets, *, weights=None, backend=None):
    """Mean over the N rows of -w_i sum_k t_k log softmax(z)_k, a 0-d array (log-sum-exp: never log 0)."""
    z = float_array(z, "z", 2)
    t, w = _targets(targets, z), _weights(weights, z.shape[0], z.dtype)
    return implementation(IMPLEMENTATIONS, backend, z=z, targets=t, weights=w).softmax_cross_entropy(z, t, w)


def softmax_cross_entropy_backward(g, z, targets, *, weights=None, backend=None):
    """dL/dz = g w_i (softmax(z) - t) / N, g the loss's cotangent (a number or a 1-element array)."""
    z = float_array(z, "z", 2)
    t, w = _targets(targets, z), _weights(weights, z.shape[0], z.dtype)
    return implementation(IMPLEMENTATIONS, backend, z=z, targets=t, weights=w).softmax_cross_entropy_backward(
        _cotangent(g), z, t, w)


def cross_entropy(p, targets, *, eps=1e-7, weights=None, backend=None):
    """Mean over the N rows of -w_i sum_k t_k log min(max(p_k, eps), 1), p (N, K) probabilities."""
    p = float_array(p, "p", 2)
    t, w = _targets(targets, p), _weights(weights, p.shape[0], p.dtype)
    return implementation(IMPLEMENTATIONS, backend, p=p, targets=t, weights=w).cross_entropy(p, t, _eps(eps), w)


def cross_entropy_backward(g, p, targets, *, eps=1e-7, weights=None, backend=None):
    """dL/dp = -g w_i t_k / clip(p_k) / N where the clip passes p_k (1/2 at a tie, as the host graph), else 0."""
    p = float_array(p, "p", 2)
    t, w = _targets(targets, p), _weights(weights, p.shape[0], p.dtype)
    return implementation(IMPLEMENTATIONS, backend, p=p, targets=t, weights=w).cross_entropy_backward(
        _cotangent(g), p, t, _eps(eps), w)


def _pair(prediction, target):
    prediction = float_array(prediction, "prediction")
    target = float_array(target, "target", dtype=prediction.dtype)
    if len(prediction.shape) == 0 or prediction.shape[0] == 0:
        raise ValueError(f"prediction must have at least one row, got shape {tuple(prediction.shape)}")
    if tuple(target.shape) != tuple(prediction.shape):
        raise ValueError(f"target must have the prediction's shape {tuple(prediction.shape)} (no broadcasting), "
                         f"got {tuple(target.shape)}")
    return prediction, target


def mse(prediction, target, *, weights=None, backend=None):
    """Mean over every element of w_i (prediction - target)^2 (rows along axis 0), a 0-d array."""
    prediction, target = _pair(prediction, target)
    w = _weights(weights, prediction.shape[0], prediction.dtype)
    return implementation(IMPLEMENTATIONS, backend, prediction=prediction, target=target, weights=w).mse(
        prediction, target, w)


def mse_backward(g, prediction, target, *, weights=None, backend=None):
    """dL/dprediction = 2 g w_i (prediction - target) / size."""
    prediction, target = _pair(prediction, target)
    w = _weights(weights, prediction.shape[0], prediction.dtype)
    return implementation(IMPLEMENTATIONS, backend, prediction=prediction, target=target, weights=w).mse_backward(
        _cotangent(g), prediction, target, w)


def weight_penalty(w, *, l1=0.0, l2=0.0, backend=None):
    """l1 sum |w| + l2 / 2 sum w^2 of one parameter ``w``: the elastic net of eq. 5.14 (eqs. 5.12 and 5.13 its
    L2 and L1 parts, with nn.regularizers' 1/2), a 0-d array."""
    w = float_array(w, "w")
    return implementation(IMPLEMENTATIONS, backend, w=w).weight_penalty(w, *_penalty(l1, l2))


def weight_penalty_backward(g, w, *, l1=0.0, l2=0.0, backend=None):
    """d/dw of weight_penalty: g (l1 sign(w) + l2 w)."""
    w = float_array(w, "w")
    return implementation(IMPLEMENTATIONS, backend, w=w).weight_penalty_backward(_cotangent(g), w, *_penalty(l1, l2))


def correct(z, targets, *, backend=None):
    """How many rows of z have their argmax at the label (accuracy * N), a 0-d float64 array."""
    z = float_array(z, "z", 2)
    t = _targets(targets, z)
    return implementation(IMPLEMENTATIONS, backend, z=z, targets=t).correct(z, t)
