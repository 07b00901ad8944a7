"""Activations, dropout masks, softmax, the fused softmax cross-entropy and batch normalisation in
NumPy: the oracle of cuda.py (and the host implementation of the same functions).

Activations by code (``ACTIVATIONS``), with a parameter ``alpha`` where they have one:
relu max(x, 0); tanh; sigmoid 1 / (1 + e^-x); elu x or alpha (e^x - 1); leaky_relu x or alpha x;
swish x sigmoid(alpha x). Derivatives at 0 as in ``nn.functional``: relu'(0) = 0, leaky'(0) = alpha,
elu'(0) = alpha.

The dropout mask is counter-based: element k of a call with seed s keeps its input when
u_k >= rate, u_k = hash32(k + s * 2654435761 mod 2^32) / 2^32 (an integer hash, Wellons' lowbias32
shape, with multipliers below 2^31 so that every product fits in an int64), so device and host
give the same mask for the same seed, without moving any random numbers.
"""
from __future__ import annotations

import numpy as np

ACTIVATIONS = {"relu": 0, "tanh": 1, "sigmoid": 2, "elu": 3, "leaky_relu": 4, "swish": 5}
MASK32 = 0xFFFFFFFF


def _sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def activation_forward(x, name, alpha):
    """y = activation(x)."""
    one = x.dtype.type(1)
    if name == "relu":
        return np.where(x > 0, x, 0).astype(x.dtype)
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


def uniform_hash(k, seed):
    """u_k in [0, 1) for integer k (int64 arrays) and a seed < 2^30 (see the module docstring)."""
    h = (k + np.int64(seed) * 2654435761) & MASK32
    h ^= h >> 16
    h = (h * 0x7FEB352D) & MASK32
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & MASK32
    h ^= h >> 16
    return h / 4294967296.0


def dropout_mask(shape, rate, seed, dtype):
    """0 where u_k < rate, else 1 / (1 - rate) (inverted dropout: E[mask] = 1), of ``shape``."""
    u = uniform_hash(np.arange(int(np.prod(shape)), dtype=np.int64), seed).reshape(shape)
    return np.where(u >= rate, 1.0 / (1.0 - rate), 0.0).astype(dtype)


def softmax(z):
    """Row softmax of z (N, K), stabilised by the row maximum."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(g, y):
    """dL/dz for y = softmax(z): y * (g - sum_j g_j y_j) per row."""
    return y * (g - (g * y).sum(axis=1, keepdims=True))


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


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """y = (x - mean) / sqrt(var + eps) gamma + beta per channel of x (N, C, H, W). Training: the batch's
    mean and biased variance, and the running statistics moved (in place) towards the mean and the
    unbiased variance by ``momentum``; evaluation: the running statistics."""
    if training:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        count = x.size // x.shape[1]
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * (count / max(count - 1, 1))
    else:
        mean, var = running_mean, running_var
    c = (1, -1, 1, 1)
    return ((x - mean.reshape(c)) / np.sqrt(var.reshape(c) + eps) * gamma.reshape(c) + beta.reshape(c)).astype(x.dtype)


def batch_norm_backward(g, x, gamma, running_mean, running_var, training, eps):
    """(dL/dx, dL/dgamma, dL/dbeta) of batch_norm_forward, for g = dL/dy (N, C, H, W).

    Training, with M = N H W, x_hat the normalised input and s = 1 / sqrt(var + eps):
    dx = gamma s / M (M g - sum g - x_hat sum g x_hat); dgamma = sum g x_hat; dbeta = sum g
    (sums over N, H, W). Evaluation: dx = g gamma s with the running statistics.
    """
    c = (1, -1, 1, 1)
    mean, var = (x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))) if training else (running_mean, running_var)
    inv = 1 / np.sqrt(var + eps)
    x_hat = (x - mean.reshape(c)) * inv.reshape(c)
    sum_g, sum_gx = g.sum(axis=(0, 2, 3)), (g * x_hat).sum(axis=(0, 2, 3))
    if training:
        m = x.size // x.shape[1]
        dx = (gamma * inv / m).reshape(c) * (m * g - sum_g.reshape(c) - x_hat * sum_gx.reshape(c))
    else:
        dx = g * (gamma * inv).reshape(c)
    return dx.astype(x.dtype), sum_gx.astype(x.dtype), sum_g.astype(x.dtype)
