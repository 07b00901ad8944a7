"""Answers to lesson 6: the backward pass (vjp) of each exercise, in plain NumPy.

Each function takes the forward's inputs and the cotangent ``g = dL/dy`` and returns ``dL/dx = g J``
without forming the Jacobian J: for an elementwise function J is diagonal, so ``g J`` is ``g * f'(x)``;
for the others the sums over J's structure are written out. ``SOLUTIONS`` maps each exercise name to
its answer. Each passes its checker in :mod:`chainrule.exercises`.
"""
from __future__ import annotations

import numpy as np

from ..diff import BN_EPS, ELU_ALPHA, LEAKY_SLOPE, softmax


def sigmoid_vjp(x, g):
    """sigma' = sigma (1 - sigma)."""
    s = 1 / (1 + np.exp(-x))
    return g * s * (1 - s)


def tanh_vjp(x, g):
    """tanh' = 1 - tanh^2."""
    return g * (1 - np.tanh(x) ** 2)


def relu_vjp(x, g):
    """relu' = 1 where x > 0, else 0: the gradient passes where the unit was active."""
    return g * (x > 0)


def leaky_relu_vjp(x, g):
    """The slope is 1 for x > 0 and 0.1 otherwise."""
    return g * np.where(x > 0, 1.0, LEAKY_SLOPE)


def elu_vjp(x, g):
    """1 for x >= 0; alpha e^x = elu(x) + alpha for x < 0."""
    return g * np.where(x >= 0, 1.0, ELU_ALPHA * np.exp(np.minimum(x, 0)))


def softmax_vjp(z, g):
    """g J with J = diag(y) - y y^T per row: y * (g - <g, y>), without forming J."""
    y = softmax(z)
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


def softmax_cross_entropy_vjp(z, t, g):
    """dL/dz = (y - t) / N for the batch mean, times the incoming scalar g."""
    return g * (softmax(z) - t) / z.shape[0]


def dense_vjp(x, W, b, g):
    """y = x W + b: dx = g W^T, dW = x^T g, db = sum of g over the batch."""
    return g @ W.T, x.T @ g, g.sum(axis=0)


def maxpool2x2_vjp(x, g):
    """Each window's gradient goes to the element that was its maximum (Tomasi's appendix)."""
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // 2, 2, w // 2, 2)
    is_max = windows == windows.max(axis=(3, 5), keepdims=True)
    return (is_max * g[:, :, :, None, :, None]).reshape(x.shape)


def batchnorm_vjp(x, gamma, beta, g):
    """Through x_hat = (x - mu) / sqrt(var + eps), remembering that mu and var depend on x:
    dx = (gamma / (m sigma)) (m g - sum g - x_hat sum(g x_hat))."""
    m = x.shape[0]
    mu = x.mean(axis=0)
    inv_std = 1 / np.sqrt(((x - mu) ** 2).mean(axis=0) + BN_EPS)
    x_hat = (x - mu) * inv_std
    dx = gamma * inv_std / m * (m * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0))
    return dx, (g * x_hat).sum(axis=0), g.sum(axis=0)


def conv2d_vjp(x, w, g):
    """The forward's loop over kernel offsets (p, q), each einsum's transpose: x[.., i+p, j+q] met
    w[o, c, p, q] in y[n, o, i, j], so each receives g[n, o, i, j] times the other."""
    _, _, kh, kw = w.shape
    ho, wo = g.shape[2:]
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for p in range(kh):
        for q in range(kw):
            dx[:, :, p:p + ho, q:q + wo] += np.einsum("nohw,oc->nchw", g, w[:, :, p, q])
            dw[:, :, p, q] = np.einsum("nohw,nchw->oc", g, x[:, :, p:p + ho, q:q + wo])
    return dx, dw


#: Every answer, by exercise name.
SOLUTIONS = {name.removesuffix("_vjp"): fn for name, fn in list(globals().items()) if name.endswith("_vjp")}
