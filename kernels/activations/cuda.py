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

from .._cuda import flat, launch_config, new, on_device, to_caller, to_device
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


# --- host side: the functions of reference.py ---------------------------------------------------------

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
