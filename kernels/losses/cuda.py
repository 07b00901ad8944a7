"""numba.cuda versions of ``kernels.losses.reference`` (same functions and arguments).

One thread per row of z (N, K) (of the prediction, seen as (N, M), for mse), each summing its row in a
fixed order (no atomics: the same result every run); the loss is the sum of the row losses
(``DeviceArray.sum``) over N. The weight penalty and the elementwise gradients take one thread per
element. A row's weight (``weights``) multiplies its loss and its gradient; the loss's cotangent ``g``
is read on the device when it is there. Device in, device out; host in, host out.
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
def _sce_rows_kernel(z, labels, dist, use_dist, weights, use_weights, rows):
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
        if use_weights:
            rows[i] *= weights[i]


@cuda.jit
def _sce_grad_kernel(z, labels, dist, use_dist, weights, use_weights, scale, g, use_g, dz):
    """dz = g w_i (softmax(z) - t) / N, scale = 1 / N (times g when g is a host number)."""
    i = cuda.grid(1)
    if i < z.shape[0]:
        lse = _log_sum_exp(z, i)
        s = scale * g[0] if use_g else scale
        if use_weights:
            s *= weights[i]
        for j in range(z.shape[1]):
            t = dist[i, j] if use_dist else (1 if labels[i] == j else 0)
            dz[i, j] = (math.exp(z[i, j] - lse) - t) * s


@cuda.jit(device=True)
def _clip_and_slope(p, eps, one):
    """min(max(p, eps), 1) and its slope in p as nn.functional.cross_entropy's graph has it (a tie: 1/2)."""
    half, zero = one / 2, one - one
    high = max(p, eps)
    slope = one if p > eps else (half if p == eps else zero)
    slope *= one if high < one else (half if high == one else zero)
    return min(high, one), slope


@cuda.jit
def _ce_rows_kernel(p, labels, dist, use_dist, eps, one, weights, use_weights, rows):
    """rows[i] = -w_i sum_k t_ik log clip(p_ik); NaN for a label outside 0..K-1."""
    i = cuda.grid(1)
    if i < p.shape[0]:
        acc = one - one
        if use_dist:
            for j in range(p.shape[1]):
                acc -= dist[i, j] * math.log(_clip_and_slope(p[i, j], eps, one)[0])
        elif 0 <= labels[i] < p.shape[1]:
            acc = -math.log(_clip_and_slope(p[i, labels[i]], eps, one)[0])
        else:
            acc = math.nan
        rows[i] = acc * weights[i] if use_weights else acc


@cuda.jit
def _ce_grad_kernel(p, labels, dist, use_dist, eps, one, weights, use_weights, scale, g, use_g, dp):
    """dp = -g w_i t_ik slope_ik / clip(p_ik) / N."""
    i = cuda.grid(1)
    if i < p.shape[0]:
        s = scale * g[0] if use_g else scale
        if use_weights:
            s *= weights[i]
        for j in range(p.shape[1]):
            t = dist[i, j] if use_dist else (one if labels[i] == j else one - one)
            clipped, slope = _clip_and_slope(p[i, j], eps, one)
            dp[i, j] = -(t / clipped) * slope * s


@cuda.jit
def _mse_rows_kernel(prediction, target, weights, use_weights, rows):
    """rows[i] = w_i sum_j (prediction - target)_ij^2 over a row of the (N, M) views."""
    i = cuda.grid(1)
    if i < prediction.shape[0]:
        acc = prediction[i, 0] * 0
        for j in range(prediction.shape[1]):
            d = prediction[i, j] - target[i, j]
            acc += d * d
        rows[i] = acc * weights[i] if use_weights else acc


@cuda.jit
def _mse_grad_kernel(prediction, target, weights, use_weights, scale, g, use_g, dp):
    """dp = 2 g w_i (prediction - target) / size, one thread per element of the (N, M) views."""
    k = cuda.grid(1)
    columns = prediction.shape[1]
    if k < prediction.shape[0] * columns:
        i, j = k // columns, k % columns
        s = scale * g[0] if use_g else scale
        if use_weights:
            s *= weights[i]
        d = prediction[i, j] - target[i, j]
        dp[i, j] = (d + d) * s


@cuda.jit
def _penalty_terms_kernel(w, l1, half_l2, terms):
    k = cuda.grid(1)
    if k < w.size:
        terms[k] = l1 * abs(w[k]) + half_l2 * w[k] * w[k]


@cuda.jit
def _penalty_grad_kernel(w, l1, l2, one, scale, g, use_g, dw):
    """dw = g (l1 sign(w) + l2 w); sign(NaN) stays NaN, as NumPy's."""
    k = cuda.grid(1)
    if k < w.size:
        v = w[k]
        sign = v - v if v == 0 else (one if v > 0 else (-one if v < 0 else v))
        s = scale * g[0] if use_g else scale
        dw[k] = s * (l1 * sign + l2 * v)


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


def _weight_arrays(weights, dtype):
    """(weights on the device, use_weights): a 1-element stand-in without weights."""
    return (new((1,), dtype), False) if weights is None else (to_device(weights), True)


def _cotangent(g, count, dtype):
    """(scale, g, use_g) for a gradient kernel: it multiplies by scale (1 / count), and by g[0] when g is on
    the device (read there, not copied out); a host g is folded into scale."""
    scale = np.dtype(dtype).type(1.0 / count)
    if on_device(g):
        return scale, to_device(g).reshape(1), True
    return np.dtype(dtype).type(scale * np.asarray(g).reshape(())), new((1,), dtype), False


def _mean_of_rows(rows, count, keep):
    loss = DeviceArray(rows).sum() / count
    return loss if keep else loss.copy_to_host()


def softmax_cross_entropy(z, targets, weights=None):
    keep = on_device(z, targets, weights)
    labels, dist, use_dist = _target_arrays(targets, z.dtype)
    rows = new((z.shape[0],), z.dtype)
    _sce_rows_kernel[launch_config(z.shape[0])](to_device(z), labels, dist, use_dist,
                                                *_weight_arrays(weights, z.dtype), rows)
    return _mean_of_rows(rows, z.shape[0], keep)


def softmax_cross_entropy_backward(g, z, targets, weights=None):
    keep = on_device(z, targets, weights)
    labels, dist, use_dist = _target_arrays(targets, z.dtype)
    dz = new(z.shape, z.dtype)
    _sce_grad_kernel[launch_config(z.shape[0])](to_device(z), labels, dist, use_dist,
                                                *_weight_arrays(weights, z.dtype),
                                                *_cotangent(g, z.shape[0], z.dtype), dz)
    return to_caller(dz, keep)


def cross_entropy(p, targets, eps, weights=None):
    keep = on_device(p, targets, weights)
    labels, dist, use_dist = _target_arrays(targets, p.dtype)
    rows, one = new((p.shape[0],), p.dtype), np.dtype(p.dtype).type(1)
    _ce_rows_kernel[launch_config(p.shape[0])](to_device(p), labels, dist, use_dist, np.dtype(p.dtype).type(eps), one,
                                               *_weight_arrays(weights, p.dtype), rows)
    return _mean_of_rows(rows, p.shape[0], keep)


def cross_entropy_backward(g, p, targets, eps, weights=None):
    keep = on_device(p, targets, weights)
    labels, dist, use_dist = _target_arrays(targets, p.dtype)
    dp, one = new(p.shape, p.dtype), np.dtype(p.dtype).type(1)
    _ce_grad_kernel[launch_config(p.shape[0])](to_device(p), labels, dist, use_dist, np.dtype(p.dtype).type(eps), one,
                                               *_weight_arrays(weights, p.dtype), *_cotangent(g, p.shape[0], p.dtype),
                                               dp)
    return to_caller(dp, keep)


def _rows_view(a):
    """A device array as (N, M): its first axis, and the rest as one."""
    n = a.shape[0]
    return to_device(a).reshape((n, a.size // n if n else 0))


def mse(prediction, target, weights=None):
    keep = on_device(prediction, target, weights)
    rows = new((prediction.shape[0],), prediction.dtype)
    _mse_rows_kernel[launch_config(prediction.shape[0])](_rows_view(prediction), _rows_view(target),
                                                         *_weight_arrays(weights, prediction.dtype), rows)
    return _mean_of_rows(rows, prediction.size, keep)


def mse_backward(g, prediction, target, weights=None):
    keep = on_device(prediction, target, weights)
    dp = new(prediction.shape, prediction.dtype)
    _mse_grad_kernel[launch_config(prediction.size)](_rows_view(prediction), _rows_view(target),
                                                     *_weight_arrays(weights, prediction.dtype),
                                                     *_cotangent(g, prediction.size, prediction.dtype), _rows_view(dp))
    return to_caller(dp, keep)


def weight_penalty(w, l1, l2):
    keep = on_device(w)
    s = np.dtype(w.dtype).type
    terms = new((w.size,), w.dtype)
    _penalty_terms_kernel[launch_config(w.size)](to_device(w).reshape(w.size), s(l1), s(l2 / 2), terms)
    total = DeviceArray(terms).sum()
    return total if keep else total.copy_to_host()


def weight_penalty_backward(g, w, l1, l2):
    keep = on_device(w)
    s = np.dtype(w.dtype).type
    dw = new(w.shape, w.dtype)
    _penalty_grad_kernel[launch_config(w.size)](to_device(w).reshape(w.size), s(l1), s(l2), s(1),
                                                *_cotangent(g, 1, w.dtype),
                                                dw.reshape(w.size))
    return to_caller(dw, keep)


def correct(z, targets):
    keep = on_device(z, targets)
    labels, dist, use_dist = _target_arrays(targets, z.dtype)
    rows = new((z.shape[0],), np.float64)
    _correct_kernel[launch_config(z.shape[0])](to_device(z), labels, dist, use_dist, rows)
    count = DeviceArray(rows).sum()
    return count if keep else count.copy_to_host()
