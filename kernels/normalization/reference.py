"""Batch normalisation in NumPy: the oracle of cuda.py (and the host implementation of the same
functions)."""
from __future__ import annotations

import numpy as np


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
