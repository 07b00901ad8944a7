"""Batch normalisation for nn's device path, per channel of x (N, C, H, W). Formulas in reference.py
(NumPy, the oracle; also the host version); numba.cuda versions in cuda.py.

    batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps) -> y
    batch_norm_backward(g, x, gamma, running_mean, running_var, training, eps) -> (dx, dgamma, dbeta)

As for every family: device arrays in, device arrays out (the device follows the data); host arrays
run in NumPy unless the call or the current backend says "cuda".

>>> import numpy as np
>>> x = np.array([1.0, 3.0], np.float32).reshape(2, 1, 1, 1)
>>> one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
>>> batch_norm_forward(x, one, zero, zero.copy(), one.copy(), True, 0.1, 0.0, backend="numpy").ravel()
array([-1.,  1.], dtype=float32)
"""
from __future__ import annotations

from .._checks import float_array, is_device_array, same_shape
from ..backend import implementation, implementations

__all__ = ["batch_norm_forward", "batch_norm_backward"]

IMPLEMENTATIONS = implementations(__name__, cpu="reference")     # NumPy is the CPU version


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
    same_shape(g, "g", x, "x")
    module = implementation(IMPLEMENTATIONS, backend, g=g, x=x, gamma=gamma)
    return module.batch_norm_backward(g, x, gamma, running_mean, running_var, bool(training), float(eps))
