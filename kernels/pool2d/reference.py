"""2-D max and average pooling in plain NumPy: the reference the Numba versions are tested against.

Short and obviously right rather than fast. Every function loops over the kh * kw offsets (i, j) of
the pooling window; for one offset, the input elements that sit at that offset in *every* window form
a strided slice of the (padded) input,

    xp[:, :, i : i + sh * Ho : sh, j : j + sw * Wo : sw]      (shape N, C, Ho, Wo)

so a whole layer is kh * kw array operations. Layout NCHW; the result has the input's dtype.
Arguments are assumed checked by :mod:`kernels.pool2d`; ``geometry`` is a ``kernels.PoolGeometry``
(kernel_size, stride, padding as (int, int) pairs). cpu.py and cuda.py have the same functions with
the same arguments.
"""
from __future__ import annotations

import numpy as np



def _window_slice(i, j, out_h, out_w, stride):
    """Index of the elements at offset (i, j) of every window, in the padded input."""
    sh, sw = stride
    return (slice(None), slice(None), slice(i, i + sh * out_h, sh), slice(j, j + sw * out_w, sw))


def max_forward(x, geometry):
    """Max pooling: ``(y, argmax)``, argmax the flat index h * W + w of the chosen element in its plane.

    Padding is -inf, so it never wins. NaN propagates (counts as larger than every number). Ties go
    to the first maximum in row-major order: an element replaces the running best only if it is
    strictly larger.
    """
    n, c, h, w = x.shape
    (kh, kw), stride, (ph, pw) = geometry.kernel_size, geometry.stride, geometry.padding
    out_h, out_w = geometry.output_hw(h, w)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    # the flat index of each input element, -1 in the padding
    flat = np.pad(np.arange(h * w, dtype=np.int64).reshape(h, w), ((ph, ph), (pw, pw)), constant_values=-1)

    best = np.full((n, c, out_h, out_w), -np.inf, dtype=x.dtype)
    argmax = np.full((n, c, out_h, out_w), -1, dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            where = _window_slice(i, j, out_h, out_w, stride)
            v, idx = xp[where], flat[where[2:]]
            take = (idx >= 0) & ((argmax < 0)                                  # first real element
                                 | (v > best)                                  # strictly larger
                                 | (np.isnan(v) & ~np.isnan(best)))            # NaN propagates
            best = np.where(take, v, best)
            argmax = np.where(take, idx, argmax)
    return best, argmax


def max_values(x, geometry):
    """Max pooling's ``y`` alone: max_forward's first result."""
    return max_forward(x, geometry)[0]


def max_backward(g, argmax, input_shape):
    """Each g element goes to the input element its window chose; overlapping windows add up."""
    n, c, h, w = input_shape
    dx = np.zeros((n * c, h * w), dtype=g.dtype)
    planes = np.arange(n * c).reshape(n, c, 1, 1)  # which (n, c) plane each g element belongs to
    np.add.at(dx, (np.broadcast_to(planes, g.shape), argmax), g)  # unbuffered: repeats accumulate
    return dx.reshape(n, c, h, w)


def max_scatter(g, x, geometry):
    """max_backward's dx for the argmax that max_forward finds in x."""
    return max_backward(g, max_forward(x, geometry)[1], x.shape)


def avg_forward(x, geometry):
    """Average pooling, zero padding counted in the divisor: every window is divided by kh * kw."""
    n, c, h, w = x.shape
    (kh, kw), stride, (ph, pw) = geometry.kernel_size, geometry.stride, geometry.padding
    out_h, out_w = geometry.output_hw(h, w)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    total = np.zeros((n, c, out_h, out_w), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            total += xp[_window_slice(i, j, out_h, out_w, stride)]
    return total / x.dtype.type(kh * kw)


def avg_backward(g, input_shape, geometry):
    """Each window hands g / (kh * kw) to every one of its elements; the padding's share is dropped."""
    n, c, h, w = input_shape
    (kh, kw), stride, (ph, pw) = geometry.kernel_size, geometry.stride, geometry.padding
    out_h, out_w = g.shape[2:]
    share = g / g.dtype.type(kh * kw)
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[_window_slice(i, j, out_h, out_w, stride)] += share
    return np.ascontiguousarray(dxp[:, :, ph:ph + h, pw:pw + w])
