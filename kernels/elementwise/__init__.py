"""The CNN stack's light ops, for data on the device: activations and their derivatives, dropout
masks, row softmax, the fused softmax cross-entropy (and the argmax test of accuracy), batch
normalisation. Formulas in reference.py (NumPy, the oracle); numba.cuda versions in cuda.py.

    activation_forward(x, name, alpha=0.0)            -> y       name in ACTIVATIONS
    activation_backward(g, x, y, name, alpha=0.0)     -> dx
    dropout_mask(shape, rate, seed, dtype, device=False) -> mask (0 or 1/(1-rate)); device=True: on the device
    softmax(z) / softmax_backward(g, y)               rows of (N, K)
    softmax_cross_entropy(z, targets) -> 0-d loss;  softmax_cross_entropy_backward(g, z, targets) -> dz
    correct(z, targets)                               -> 0-d count of rows whose argmax is the label
    batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps) -> y
    batch_norm_backward(g, x, gamma, running_mean, running_var, training, eps) -> (dx, dgamma, dbeta)

As for every family: device arrays in, device arrays out (the device follows the data); host arrays
run in NumPy unless the call or the current backend says "cuda". nn's CPU path composes these ops
from autodiff's primitives instead; nn's device path calls these.

>>> import numpy as np
>>> activation_forward(np.array([-1.0, 2.0], np.float32), "relu", backend="numpy")
array([0., 2.], dtype=float32)
>>> dropout_mask((2, 4), 0.5, seed=1, dtype=np.float32, backend="numpy")
array([[2., 0., 2., 0.],
       [0., 2., 0., 2.]], dtype=float32)
"""
from __future__ import annotations

import numpy as np

from .._checks import float_array, is_device_array
from ..backend import implementation, implementations
from .reference import ACTIVATIONS

__all__ = ["ACTIVATIONS", "activation_forward", "activation_backward", "dropout_mask", "softmax", "softmax_backward",
           "softmax_cross_entropy", "softmax_cross_entropy_backward", "correct", "batch_norm_forward",
           "batch_norm_backward"]


IMPLEMENTATIONS = implementations(__name__, cpu="reference")     # NumPy is the CPU version


def _name(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return name


def _same_shape(a, a_name, b, b_name):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{a_name} must have {b_name}'s shape {tuple(b.shape)}, got {tuple(a.shape)}")


def activation_forward(x, name, alpha=0.0, *, backend=None):
    """y = activation(x), elementwise (see reference.py for the formulas)."""
    x = float_array(x, "x")
    return implementation(IMPLEMENTATIONS, backend, x=x).activation_forward(x, _name(name), float(alpha))


def activation_backward(g, x, y, name, alpha=0.0, *, backend=None):
    """dL/dx = g activation'(x), with y = activation(x)."""
    x = float_array(x, "x")
    g, y = float_array(g, "g", dtype=x.dtype), float_array(y, "y", dtype=x.dtype)
    _same_shape(g, "g", x, "x"), _same_shape(y, "y", x, "x")
    module = implementation(IMPLEMENTATIONS, backend, g=g, x=x, y=y)
    return module.activation_backward(g, x, y, _name(name), float(alpha))


def dropout_mask(shape, rate, seed, dtype=np.float32, *, device=False, backend=None):
    """The inverted-dropout mask of ``shape`` for ``seed`` (an int in [0, 2^30)): the same values on
    the host and on the device (``device=True``, or backend "cuda": made there, nothing copied)."""
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    if not 0 <= int(seed) < 2**30:
        raise ValueError(f"seed must be an int in [0, 2**30), got {seed!r}")
    shape = tuple(int(s) for s in shape)
    module = implementation(IMPLEMENTATIONS, "cuda" if device else backend)
    return module.dropout_mask(shape, float(rate), int(seed), np.dtype(dtype))


def _rows(z, name="z"):
    return float_array(z, name, 2)


def softmax(z, *, backend=None):
    """Row softmax of z (N, K)."""
    z = _rows(z)
    return implementation(IMPLEMENTATIONS, backend, z=z).softmax(z)


def softmax_backward(g, y, *, backend=None):
    """dL/dz = y (g - sum_j g_j y_j) per row, y = softmax(z)."""
    y = _rows(y, "y")
    g = float_array(g, "g", 2, dtype=y.dtype)
    _same_shape(g, "g", y, "y")
    return implementation(IMPLEMENTATIONS, backend, g=g, y=y).softmax_backward(g, y)


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
    z = _rows(z)
    t = _targets(targets, z)
    return implementation(IMPLEMENTATIONS, backend, z=z, targets=t).softmax_cross_entropy(z, t)


def softmax_cross_entropy_backward(g, z, targets, *, backend=None):
    """dL/dz = g (softmax(z) - t) / N, g the loss's cotangent (a number or a 1-element array)."""
    z = _rows(z)
    t = _targets(targets, z)
    if int(np.prod(np.shape(g))) != 1:
        raise ValueError(f"g must be the loss's cotangent, one number, got shape {np.shape(g)}")
    return implementation(IMPLEMENTATIONS, backend, z=z, targets=t).softmax_cross_entropy_backward(g, z, t)


def correct(z, targets, *, backend=None):
    """How many rows of z have their argmax at the label (accuracy * N), a 0-d float64 array."""
    z = _rows(z)
    t = _targets(targets, z)
    return implementation(IMPLEMENTATIONS, backend, z=z, targets=t).correct(z, t)


def _channels(x, gamma, beta, running_mean, running_var):
    x = float_array(x, "x", 4)
    c = x.shape[1]
    arrays = {"gamma": gamma, "beta": beta, "running_mean": running_mean, "running_var": running_var}
    checked = []
    for name, a in arrays.items():
        if a is None:
            checked.append(None)
            continue
        a = float_array(a, name, 1, dtype=x.dtype) if is_device_array(a) else a
        if tuple(a.shape) != (c,):
            raise ValueError(f"{name} must have shape (C,) = ({c},), one value per channel, got {tuple(a.shape)}")
        checked.append(a)
    return x, checked


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps, *, backend=None):
    """Batch normalisation per channel of x (N, C, H, W); the running statistics are updated in place
    when training (see reference.py)."""
    x, (gamma, beta, running_mean, running_var) = _channels(x, gamma, beta, running_mean, running_var)
    module = implementation(IMPLEMENTATIONS, backend, x=x, gamma=gamma, beta=beta)
    return module.batch_norm_forward(x, gamma, beta, running_mean, running_var, bool(training), float(momentum),
                                     float(eps))


def batch_norm_backward(g, x, gamma, running_mean, running_var, training, eps, *, backend=None):
    """(dL/dx, dL/dgamma, dL/dbeta) of batch_norm_forward for g = dL/dy."""
    x, (gamma, _, running_mean, running_var) = _channels(x, gamma, None, running_mean, running_var)
    g = float_array(g, "g", 4, dtype=x.dtype)
    _same_shape(g, "g", x, "x")
    module = implementation(IMPLEMENTATIONS, backend, g=g, x=x, gamma=gamma)
    return module.batch_norm_backward(g, x, gamma, running_mean, running_var, bool(training), float(eps))
