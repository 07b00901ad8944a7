"""numba.cuda versions of ``kernels.elementwise.reference`` (same functions and arguments).

Elementwise ops (activations and their derivatives, the dropout mask, batch normalisation's
normalise-and-scale and its dx) run one thread per element of flat arrays. Row ops (softmax, the
softmax cross-entropy per row, the argmax test) run one thread per row of (N, K), and per-channel
statistics (batch normalisation's mean and variance, its gradient sums) one thread per channel,
each summing its elements in a fixed order (no atomics: the same result every run). A loss is the
sum of its row losses (``DeviceArray.sum``) over N. Device in, device out; host in, host out.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .._cuda import launch_config, on_device, to_caller, to_device
from .._jit import unravel4
from ..device import DeviceArray
from .reference import ACTIVATIONS, MASK32

# --- elementwise ---------------------------------------------------------------------------------


@cuda.jit(device=True)
def _sigmoid(v):
    if v >= 0:
        return 1 / (1 + math.exp(-v))
    e = math.exp(v)
    return e / (1 + e)


@cuda.jit
def _activation_kernel(x, code, alpha, y):
    k = cuda.grid(1)
    if k < y.size:
        v = x[k]
        if code == 0:
            y[k] = v if v > 0 else 0
        elif code == 1:
            y[k] = math.tanh(v)
        elif code == 2:
            y[k] = _sigmoid(v)
        elif code == 3:
            y[k] = v if v > 0 else alpha * (math.exp(v) - 1)
        elif code == 4:
            y[k] = v if v > 0 else alpha * v
        else:
            y[k] = v * _sigmoid(alpha * v)


@cuda.jit
def _activation_grad_kernel(g, x, y, code, alpha, dx):
    k = cuda.grid(1)
    if k < dx.size:
        v = x[k]
        if code == 0:
            d = 1 if v > 0 else 0
        elif code == 1:
            d = 1 - y[k] * y[k]
        elif code == 2:
            d = y[k] * (1 - y[k])
        elif code == 3:
            d = 1 if v > 0 else alpha * math.exp(v)
        elif code == 4:
            d = 1 if v > 0 else alpha
        else:
            s = _sigmoid(alpha * v)
            d = s + alpha * v * s * (1 - s)
        dx[k] = g[k] * d


@cuda.jit
def _dropout_kernel(seed, rate, scale, out):
    k = cuda.grid(1)
    if k < out.size:
        h = (k + seed * 2654435761) & MASK32
        h ^= h >> 16
        h = (h * 0x7FEB352D) & MASK32
        h ^= h >> 15
        h = (h * 0x2C1B3C6D) & MASK32
        h ^= h >> 16
        out[k] = scale if h / 4294967296.0 >= rate else 0


# --- rows: softmax, cross-entropy, argmax ----------------------------------------------------------

@cuda.jit
def _softmax_kernel(z, y):
    i = cuda.grid(1)
    if i < z.shape[0]:
        m = z[i, 0]
        for j in range(z.shape[1]):
            m = max(m, z[i, j])
        total = z[i, 0] * 0
        for j in range(z.shape[1]):
            y[i, j] = math.exp(z[i, j] - m)
            total += y[i, j]
        for j in range(z.shape[1]):
            y[i, j] = y[i, j] / total


@cuda.jit
def _softmax_grad_kernel(g, y, dz):
    i = cuda.grid(1)
    if i < y.shape[0]:
        dot = y[i, 0] * 0
        for j in range(y.shape[1]):
            dot += g[i, j] * y[i, j]
        for j in range(y.shape[1]):
            dz[i, j] = y[i, j] * (g[i, j] - dot)


@cuda.jit(device=True)
def _log_sum_exp(z, i):
    m = z[i, 0]
    for j in range(z.shape[1]):
        m = max(m, z[i, j])
    total = z[i, 0] * 0
    for j in range(z.shape[1]):
        total += math.exp(z[i, j] - m)
    return m + math.log(total)


@cuda.jit
def _sce_rows_kernel(z, labels, dist, use_dist, rows):
    """rows[i] = -sum_k t_ik log softmax(z)_ik = lse_i - z[i, label_i] (labels) or sum_k t_ik (lse_i - z_ik);
    NaN for a label outside 0..K-1 (device labels are not checked on the host: that would copy them)."""
    i = cuda.grid(1)
    if i < z.shape[0]:
        lse = _log_sum_exp(z, i)
        if use_dist:
            acc = z[i, 0] * 0
            for j in range(z.shape[1]):
                acc += dist[i, j] * (lse - z[i, j])
            rows[i] = acc
        elif 0 <= labels[i] < z.shape[1]:
            rows[i] = lse - z[i, labels[i]]
        else:                                   # a label out of range: a NaN loss, not a stray read
            rows[i] = math.nan


@cuda.jit
def _sce_grad_kernel(z, labels, dist, use_dist, scale, g, use_g, dz):
    """dz = g (softmax(z) - t) / N, scale = 1 / N (times g when g is a host number)."""
    i = cuda.grid(1)
    if i < z.shape[0]:
        lse = _log_sum_exp(z, i)
        s = scale * g[0] if use_g else scale
        for j in range(z.shape[1]):
            t = dist[i, j] if use_dist else (1 if labels[i] == j else 0)
            dz[i, j] = (math.exp(z[i, j] - lse) - t) * s


@cuda.jit
def _correct_kernel(z, labels, dist, use_dist, rows):
    i = cuda.grid(1)
    if i < z.shape[0]:
        best, best_at = z[i, 0], 0
        for j in range(z.shape[1]):
            if z[i, j] > best:
                best, best_at = z[i, j], j
        if use_dist:
            label, top = 0, dist[i, 0]
            for j in range(dist.shape[1]):
                if dist[i, j] > top:
                    label, top = j, dist[i, j]
        else:
            label = labels[i]
        rows[i] = 1.0 if best_at == label else 0.0


# --- batch normalisation ---------------------------------------------------------------------------

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

def _flat(a):
    return a.reshape(a.size)


def _new(shape, dtype):
    return cuda.device_array(tuple(shape), dtype=np.dtype(dtype))


def activation_forward(x, name, alpha):
    keep, d = on_device(x), to_device(x)
    y = _new(x.shape, x.dtype)
    _activation_kernel[launch_config(y.size)](_flat(d), ACTIVATIONS[name], np.dtype(x.dtype).type(alpha), _flat(y))
    return to_caller(y, keep)


def activation_backward(g, x, y, name, alpha):
    keep = on_device(g, x, y)
    dx = _new(x.shape, x.dtype)
    _activation_grad_kernel[launch_config(dx.size)](_flat(to_device(g)), _flat(to_device(x)), _flat(to_device(y)),
                                                    ACTIVATIONS[name], np.dtype(x.dtype).type(alpha), _flat(dx))
    return to_caller(dx, keep)


def dropout_mask(shape, rate, seed, dtype):
    """Made on the device (nothing copied): a DeviceArray."""
    out = _new(shape, dtype)
    _dropout_kernel[launch_config(out.size)](np.int64(seed), float(rate), np.dtype(dtype).type(1.0 / (1.0 - rate)),
                                             _flat(out))
    return DeviceArray(out)


def softmax(z):
    keep = on_device(z)
    y = _new(z.shape, z.dtype)
    _softmax_kernel[launch_config(z.shape[0])](to_device(z), y)
    return to_caller(y, keep)


def softmax_backward(g, y):
    keep = on_device(g, y)
    dz = _new(y.shape, y.dtype)
    _softmax_grad_kernel[launch_config(y.shape[0])](to_device(g), to_device(y), dz)
    return to_caller(dz, keep)


def _target_arrays(targets, dtype):
    """(labels, dist, use_dist) for the row kernels: the unused one a 1-element stand-in."""
    if targets.ndim == 1:
        return to_device(targets), cuda.device_array((1, 1), dtype=np.dtype(dtype)), False
    return cuda.device_array(1, dtype=np.int64), to_device(targets), True


def softmax_cross_entropy(z, targets):
    keep = on_device(z, targets)
    labels, dist, use_dist = _target_arrays(targets, z.dtype)
    rows = _new((z.shape[0],), z.dtype)
    _sce_rows_kernel[launch_config(z.shape[0])](to_device(z), labels, dist, use_dist, rows)
    loss = DeviceArray(rows).sum() / z.shape[0]
    return loss if keep else loss.copy_to_host()


def softmax_cross_entropy_backward(g, z, targets):
    keep = on_device(z, targets)
    labels, dist, use_dist = _target_arrays(targets, z.dtype)
    scale = np.dtype(z.dtype).type(1.0 / z.shape[0])
    if on_device(g):                                  # the loss's cotangent on the device: read it there
        g_dev, use_g = to_device(g).reshape(1), True
    else:
        scale, g_dev, use_g = np.dtype(z.dtype).type(scale * np.asarray(g).reshape(())), _new((1,), z.dtype), False
    dz = _new(z.shape, z.dtype)
    _sce_grad_kernel[launch_config(z.shape[0])](to_device(z), labels, dist, use_dist, scale, g_dev, use_g, dz)
    return to_caller(dz, keep)


def correct(z, targets):
    keep = on_device(z, targets)
    labels, dist, use_dist = _target_arrays(targets, z.dtype)
    rows = _new((z.shape[0],), np.float64)
    _correct_kernel[launch_config(z.shape[0])](to_device(z), labels, dist, use_dist, rows)
    count = DeviceArray(rows).sum()
    return count if keep else count.copy_to_host()


def _stats(x, running_mean, running_var, training, momentum, eps, update):
    channels = x.shape[1]
    mean, inv = _new((channels,), x.dtype), _new((channels,), x.dtype)
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
    y = _new(x.shape, x.dtype)
    _bn_apply_kernel[launch_config(y.size)](xd, mean, inv, to_device(gamma), to_device(beta), y)
    return to_caller(y, keep)


def batch_norm_backward(g, x, gamma, running_mean, running_var, training, eps):
    keep, xd, gd = on_device(g, x), to_device(x), to_device(g)
    channels = x.shape[1]
    mean, inv = _stats(xd, to_device(running_mean), to_device(running_var), training, 0.0, eps, update=False)
    sum_g, sum_gx = _new((channels,), x.dtype), _new((channels,), x.dtype)
    _bn_sums_kernel[launch_config(channels)](gd, xd, mean, inv, sum_g, sum_gx)
    dx = _new(x.shape, x.dtype)
    _bn_dx_kernel[launch_config(dx.size)](gd, xd, mean, inv, to_device(gamma), sum_g, sum_gx, bool(training), dx)
    return to_caller(dx, keep), to_caller(sum_gx, keep), to_caller(sum_g, keep)
