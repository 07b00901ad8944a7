"""numba.cuda versions of ``kernels.activations.reference`` (same functions and arguments).

The activations and their derivatives run one thread per element of flat arrays, each computing the
scalar formula of formulas.py (shared with the convolution's fused ReLU); the softmax one thread per
row of (N, K), summing the row in a fixed order (no atomics: the same result every run).
Device in, device out; host in, host out.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .._cuda import DeviceArray, flat, launch_config, new, on_device, stride_config, to_caller, to_device
from . import formulas
from .reference import ACTIVATIONS


@cuda.jit
def _activation_kernel(x, code, alpha, y):
    k = cuda.grid(1)
    if k < y.size:
        y[k] = formulas.activation(code, x[k], alpha)


@cuda.jit
def _activation_grad_kernel(g, x, y, code, alpha, dx):
    k = cuda.grid(1)
    if k < dx.size:
        dx[k] = formulas.activation_backward(code, g[k], x[k], y[k], alpha)


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


@cuda.jit
def _prelu_kernel(x, alpha, dx_or_g, backward, zero, out, product):
    """Over (N, C, S) views: forward out = x or alpha[c] x; backward out = g or alpha[c] g (dx_or_g is g)
    and product = g x where x <= 0, else 0 (summed per channel after)."""
    channels, inner = x.shape[1], x.shape[2]
    for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, s = k // (channels * inner), (k // inner) % channels, k % inner
        v = x[n, c, s]
        if backward:
            g = dx_or_g[n, c, s]
            out[n, c, s] = g if v > 0 else alpha[c] * g
            product[n, c, s] = zero if v > 0 else g * v
        else:
            out[n, c, s] = v if v > 0 else alpha[c] * v


@cuda.jit
def _maxout_kernel(x, pieces, g, backward, zero, out):
    """Over (N, C, S) views, one thread per output element (n, group, s): forward out = the group's maximum;
    backward out = dx, g shared by the group's k maxima."""
    groups, inner = x.shape[1] // pieces, x.shape[2]
    for k in range(cuda.grid(1), x.shape[0] * groups * inner, cuda.gridsize(1)):
        n, j, s = k // (groups * inner), (k // inner) % groups, k % inner
        top = x[n, j * pieces, s]
        for p in range(1, pieces):
            top = max(top, x[n, j * pieces + p, s])
        if backward:
            count = 0
            for p in range(pieces):
                count += 1 if x[n, j * pieces + p, s] == top else 0
            share = g[n, j, s] / count
            for p in range(pieces):
                out[n, j * pieces + p, s] = share if x[n, j * pieces + p, s] == top else zero
        else:
            out[n, j, s] = top


# --- host side: the functions of reference.py ---------------------------------------------------------

def _view(a, channels):
    """A device array (N, C, ...) as (N, C, S)."""
    n = a.shape[0]
    return to_device(a).reshape((n, channels, a.size // max(n * channels, 1)))


def prelu_forward(x, alpha):
    keep = on_device(x, alpha)
    y = new(x.shape, x.dtype)
    c = x.shape[1]
    zero = np.dtype(x.dtype).type(0)
    _prelu_kernel[stride_config(x.size)](_view(x, c), to_device(alpha), _view(y, c), False, zero, _view(y, c),
                                         _view(y, c))
    return to_caller(y, keep)


def prelu_backward(g, x, alpha):
    keep = on_device(g, x, alpha)
    c = x.shape[1]
    dx, product = new(x.shape, x.dtype), new(x.shape, x.dtype)
    _prelu_kernel[stride_config(x.size)](_view(x, c), to_device(alpha), _view(g, c), True,
                                         np.dtype(x.dtype).type(0), _view(dx, c), _view(product, c))
    dalpha = DeviceArray(product).sum(axis=(0,) + tuple(range(2, len(x.shape))))
    return to_caller(dx, keep), dalpha if keep else dalpha.copy_to_host()


def maxout_forward(x, pieces):
    keep = on_device(x)
    c = x.shape[1]
    y = new((x.shape[0], c // pieces) + tuple(x.shape[2:]), x.dtype)
    _maxout_kernel[stride_config(y.size)](_view(x, c), pieces, _view(y, c // pieces), False, np.dtype(x.dtype).type(0),
                                          _view(y, c // pieces))
    return to_caller(y, keep)


def maxout_backward(g, x, pieces):
    keep = on_device(g, x)
    c = x.shape[1]
    dx = new(x.shape, x.dtype)
    _maxout_kernel[stride_config(g.size)](_view(x, c), pieces, _view(g, c // pieces), True, np.dtype(x.dtype).type(0),
                                          _view(dx, c))
    return to_caller(dx, keep)

def activation_forward(x, name, alpha):
    keep, d = on_device(x), to_device(x)
    y = new(x.shape, x.dtype)
    _activation_kernel[launch_config(y.size)](flat(d), ACTIVATIONS[name], np.dtype(x.dtype).type(alpha), flat(y))
    return to_caller(y, keep)


def activation_backward(g, x, y, name, alpha):
    keep = on_device(g, x, y)
    dx = new(x.shape, x.dtype)
    _activation_grad_kernel[launch_config(dx.size)](flat(to_device(g)), flat(to_device(x)), flat(to_device(y)),
                                                    ACTIVATIONS[name], np.dtype(x.dtype).type(alpha), flat(dx))
    return to_caller(dx, keep)


def softmax(z):
    keep = on_device(z)
    y = new(z.shape, z.dtype)
    _softmax_kernel[launch_config(z.shape[0])](to_device(z), y)
    return to_caller(y, keep)


def softmax_backward(g, y):
    keep = on_device(g, y)
    dz = new(y.shape, y.dtype)
    _softmax_grad_kernel[launch_config(y.shape[0])](to_device(g), to_device(y), dz)
    return to_caller(dz, keep)
