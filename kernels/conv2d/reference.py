"""2-D convolution in plain NumPy: the oracle the fast versions are tested against.

Layout NCHW. ``x`` is (N, C, H, W), ``w`` is (F, C/groups, kh, kw), ``y`` is (N, F, Ho, Wo) with

    y[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * x[n, g*C/groups + c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw]

where g = f // (F/groups) is the group of filter f, (sh, sw) the stride, (ph, pw) the zero padding and
(dil_h, dil_w) the dilation (cross-correlation, as in torch.nn.functional.conv2d).

The idea: for one kernel offset (p, q), the inputs that w[:, :, p, q] multiplies form a strided
window of the padded input, of shape (N, C, Ho, Wo). So the convolution is a sum over the kh*kw
offsets of one small matrix product each, and both backward passes are the same loop read the other
way round. Arguments are already validated by kernels.conv2d; ``geometry`` is a
``kernels.ConvGeometry`` (stride, padding and dilation as (int, int) pairs, and groups). The same
functions, with the same arguments, are in cpu.py and cuda.py.
"""
from __future__ import annotations

import numpy as np

from ..pool2d import reference as pool
from .pooled import by_parts


def _window(p, q, ho, wo, stride, dilation):
    """The index of the padded input that kernel offset (p, q) reads, for every output (i, j).

    Rows p*dil_h, p*dil_h + sh, ..., p*dil_h + (Ho-1)*sh and columns q*dil_w, q*dil_w + sw, ...
    (basic slices, so ``xp[:, :, rows, cols]`` is a view and ``+=`` into it adds to each element once).
    """
    (sh, sw), (dil_h, dil_w) = stride, dilation
    rows = slice(p * dil_h, p * dil_h + (ho - 1) * sh + 1, sh)
    cols = slice(q * dil_w, q * dil_w + (wo - 1) * sw + 1, sw)
    return rows, cols


def forward(x, w, b, geometry, relu=False):
    """y (N, F, Ho, Wo) = sum over offsets (p, q) of w[:, :, p, q] applied to the window of x (+ b), then
    max(y, 0) when ``relu`` (the fused activation of a Conv2D(..., activation="relu"))."""
    n, c, height, width = x.shape
    f, cg, kh, kw = w.shape
    stride, dilation, groups = geometry.stride, geometry.dilation, geometry.groups
    fg = f // groups
    ho, wo = geometry.output_hw(height, width, (kh, kw))
    ph, pw = geometry.padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((n, f, ho, wo), dtype=x.dtype)
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]          # this group's input channels
        wg = w[g * fg:(g + 1) * fg]              # this group's filters
        yg = y[:, g * fg:(g + 1) * fg]           # a view: adding to it adds to y
        for p in range(kh):
            for q in range(kw):
                rows, cols = _window(p, q, ho, wo, stride, dilation)
                yg += np.einsum("nchw,fc->nfhw", xg[:, :, rows, cols], wg[:, :, p, q], optimize=True)
    if b is not None:
        y += b[None, :, None, None]
    return np.maximum(y, 0, out=y) if relu else y


def backward_input(g, w, input_shape, geometry):
    """dx = dL/dx for dL/dy = g: each offset (p, q) sends w[:, :, p, q]^T g back to its window."""
    n, c, height, width = input_shape
    f, cg, kh, kw = w.shape
    stride, dilation, groups = geometry.stride, geometry.dilation, geometry.groups
    fg = f // groups
    ho, wo = g.shape[2], g.shape[3]
    ph, pw = geometry.padding
    dxp = np.zeros((n, c, height + 2 * ph, width + 2 * pw), dtype=g.dtype)   # gradient of the padded input
    for grp in range(groups):
        gg = g[:, grp * fg:(grp + 1) * fg]
        wg = w[grp * fg:(grp + 1) * fg]
        dxg = dxp[:, grp * cg:(grp + 1) * cg]
        for p in range(kh):
            for q in range(kw):
                rows, cols = _window(p, q, ho, wo, stride, dilation)
                dxg[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", gg, wg[:, :, p, q], optimize=True)
    return dxp[:, :, ph:ph + height, pw:pw + width].copy()   # the padding's gradient is dropped


def backward_weight(g, x, weight_shape, geometry, bias):
    """(dw, db) for dL/dy = g: dw[f, c, p, q] = sum_{n,i,j} g[n, f, i, j] * window_(p,q)(x)[n, c, i, j].

    db[f] = sum_{n,i,j} g[n, f, i, j], or None when ``bias`` is False.
    """
    f, cg, kh, kw = weight_shape
    stride, dilation, groups = geometry.stride, geometry.dilation, geometry.groups
    fg = f // groups
    ho, wo = g.shape[2], g.shape[3]
    ph, pw = geometry.padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dw = np.zeros(weight_shape, dtype=g.dtype)
    for grp in range(groups):
        gg = g[:, grp * fg:(grp + 1) * fg]
        xg = xp[:, grp * cg:(grp + 1) * cg]
        for p in range(kh):
            for q in range(kw):
                rows, cols = _window(p, q, ho, wo, stride, dilation)
                dw[grp * fg:(grp + 1) * fg, :, p, q] = np.einsum("nfhw,nchw->fc", gg, xg[:, :, rows, cols],
                                                                 optimize=True)
    db = g.sum(axis=(0, 2, 3)) if bias else None
    return dw, db


def relu_grad(g, out):
    """g where the fused ReLU's output ``out`` is positive, else 0 (relu'(0) = 0)."""
    return np.where(out > 0, g, np.zeros((), dtype=g.dtype))


def backward(g, x, w, geometry, input_grad, weight_grad, relu_out):
    """(dx, dw, db) in one call: g masked by the fused ReLU's output first (when ``relu_out`` is given),
    then backward_input (when ``input_grad``) and backward_weight (when ``weight_grad``); None for the
    gradients not asked for."""
    return _composed_backward(relu_grad, backward_input, backward_weight, g, x, w, geometry, input_grad,
                              weight_grad, relu_out)


def backward_pooled(g, pooled, x, w, relu_out, geometry, pool_geometry, input_grad, weight_grad):
    """(dx, dw, db) of the convolution under its fused ReLU and a max pooling (``pooled`` = the pooling of
    relu_out), given the pooling's gradient g: the ReLU's mask on g (where the pooled value is positive: the
    value the mask reads at the window's maximum), max pooling's scatter, then backward."""
    return by_parts(relu_grad, pool.max_scatter, backward, g, pooled, x, w, relu_out, geometry, pool_geometry,
                    input_grad, weight_grad)


def _composed_backward(relu_grad, backward_input, backward_weight, g, x, w, geometry, input_grad, weight_grad,
                       relu_out):
    """``backward`` made of a backend's three other verbs (the reference's, and the CUDA kernels')."""
    if relu_out is not None:
        g = relu_grad(g, relu_out)
    dx = backward_input(g, w, x.shape, geometry) if input_grad else None
    dw, db = backward_weight(g, x, w.shape, geometry, True) if weight_grad else (None, None)
    return dx, dw, db
