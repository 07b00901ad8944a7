"""numba.cuda versions of ``kernels.normalization.reference`` (same functions and arguments).

Per-channel statistics (the batch's mean and variance, the gradient's sums) run one thread per
channel, each summing its elements in a fixed order (no atomics: the same result every run);
normalise-and-scale and dx one thread per element. Device in, device out; host in, host out.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .._cuda import launch_config, new, on_device, to_caller, to_device
from .._jit import unravel4


@cuda.jit
def _bn_stats_kernel(x, running_mean, running_var, training, update, momentum, eps, mean, inv):
    """Per channel c: mean[c] and inv[c] = 1 / sqrt(var + eps), of the batch (training; the running
    statistics moved when ``update``) or of the running statistics (evaluation)."""
    c = cuda.grid(1)
    n, channels, height, width = x.shape
    if c < channels:
        if training:
            total = x[0, c, 0, 0] * 0
            for a in range(n):
                for h in range(height):
                    for w in range(width):
                        total += x[a, c, h, w]
            count = n * height * width
            mu = total / count
            sq = total * 0
            for a in range(n):
                for h in range(height):
                    for w in range(width):
                        d = x[a, c, h, w] - mu
                        sq += d * d
            var = sq / count
            if update:
                running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mu
                running_var[c] = (1 - momentum) * running_var[c] + momentum * var * count / max(count - 1, 1)
        else:
            mu, var = running_mean[c], running_var[c]
        mean[c] = mu
        inv[c] = 1 / math.sqrt(var + eps)


@cuda.jit
def _bn_apply_kernel(x, mean, inv, gamma, beta, y):
    t = cuda.grid(1)
    n, channels, height, width = x.shape
    if t < x.size:
        a, c, h, w = unravel4(t, channels, height, width)
        y[a, c, h, w] = (x[a, c, h, w] - mean[c]) * inv[c] * gamma[c] + beta[c]


@cuda.jit
def _bn_sums_kernel(g, x, mean, inv, sum_g, sum_gx):
    c = cuda.grid(1)
    n, channels, height, width = x.shape
    if c < channels:
        sg = g[0, c, 0, 0] * 0
        sgx = sg
        for a in range(n):
            for h in range(height):
                for w in range(width):
                    sg += g[a, c, h, w]
                    sgx += g[a, c, h, w] * (x[a, c, h, w] - mean[c]) * inv[c]
        sum_g[c] = sg
        sum_gx[c] = sgx


@cuda.jit
def _bn_dx_kernel(g, x, mean, inv, gamma, sum_g, sum_gx, training, dx):
    t = cuda.grid(1)
    n, channels, height, width = x.shape
    if t < x.size:
        a, c, h, w = unravel4(t, channels, height, width)
        if training:
            m = n * height * width
            x_hat = (x[a, c, h, w] - mean[c]) * inv[c]
            dx[a, c, h, w] = gamma[c] * inv[c] / m * (m * g[a, c, h, w] - sum_g[c] - x_hat * sum_gx[c])
        else:
            dx[a, c, h, w] = g[a, c, h, w] * gamma[c] * inv[c]


# --- host side: the functions of reference.py ---------------------------------------------------------

def _stats(x, running_mean, running_var, training, momentum, eps, update):
    channels = x.shape[1]
    mean, inv = new((channels,), x.dtype), new((channels,), x.dtype)
    dtype = np.dtype(x.dtype).type
    _bn_stats_kernel[launch_config(channels)](x, to_device(running_mean), to_device(running_var), bool(training),
                                              bool(update), dtype(momentum), dtype(eps), mean, inv)
    return mean, inv


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """Updates ``running_mean`` / ``running_var`` in place on the device when they are device arrays
    (a model on the device); host statistics with host x are copied there and back."""
    keep, xd = on_device(x), to_device(x)
    host_stats = not on_device(running_mean)
    rm, rv = to_device(running_mean), to_device(running_var)
    mean, inv = _stats(xd, rm, rv, training, momentum, eps, update=True)
    if host_stats and training:
        rm.copy_to_host(running_mean)
        rv.copy_to_host(running_var)
    y = new(x.shape, x.dtype)
    _bn_apply_kernel[launch_config(y.size)](xd, mean, inv, to_device(gamma), to_device(beta), y)
    return to_caller(y, keep)


def batch_norm_backward(g, x, gamma, running_mean, running_var, training, eps):
    keep, xd, gd = on_device(g, x), to_device(x), to_device(g)
    channels = x.shape[1]
    mean, inv = _stats(xd, to_device(running_mean), to_device(running_var), training, 0.0, eps, update=False)
    sum_g, sum_gx = new((channels,), x.dtype), new((channels,), x.dtype)
    _bn_sums_kernel[launch_config(channels)](gd, xd, mean, inv, sum_g, sum_gx)
    dx = new(x.shape, x.dtype)
    _bn_dx_kernel[launch_config(dx.size)](gd, xd, mean, inv, to_device(gamma), sum_g, sum_gx, bool(training), dx)
    return to_caller(dx, keep), to_caller(sum_gx, keep), to_caller(sum_g, keep)
