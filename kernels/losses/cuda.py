"""numba.cuda versions of ``kernels.losses.reference`` (same functions and arguments).

One thread per row of z (N, K), each summing its row in a fixed order (no atomics: the same result
every run); the loss is the sum of the row losses (``DeviceArray.sum``) over N. Device in, device out;
host in, host out.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .._cuda import DeviceArray, launch_config, new, on_device, to_caller, to_device


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


# --- host side: the functions of reference.py ---------------------------------------------------------

def _target_arrays(targets, dtype):
    """(labels, dist, use_dist) for the row kernels: the unused one a 1-element stand-in."""
    if targets.ndim == 1:
        return to_device(targets), cuda.device_array((1, 1), dtype=np.dtype(dtype)), False
    return cuda.device_array(1, dtype=np.int64), to_device(targets), True


def softmax_cross_entropy(z, targets):
    keep = on_device(z, targets)
    labels, dist, use_dist = _target_arrays(targets, z.dtype)
    rows = new((z.shape[0],), z.dtype)
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
        scale, g_dev, use_g = np.dtype(z.dtype).type(scale * np.asarray(g).reshape(())), new((1,), z.dtype), False
    dz = new(z.shape, z.dtype)
    _sce_grad_kernel[launch_config(z.shape[0])](to_device(z), labels, dist, use_dist, scale, g_dev, use_g, dz)
    return to_caller(dz, keep)


def correct(z, targets):
    keep = on_device(z, targets)
    labels, dist, use_dist = _target_arrays(targets, z.dtype)
    rows = new((z.shape[0],), np.float64)
    _correct_kernel[launch_config(z.shape[0])](to_device(z), labels, dist, use_dist, rows)
    count = DeviceArray(rows).sum()
    return count if keep else count.copy_to_host()
