"""2-D convolution with numba.cuda: one GPU thread per output element, written to be read.

Same maths, functions and arguments as kernels.conv2d.reference. Each kernel gives every thread one
element of the result and lets it sum its terms in a fixed order, so there are no atomics and
results are identical run to run:

    forward          one thread per y[n, f, i, j]: sum over (c, p, q)
    backward input   one thread per dx[n, c, h, v]: gather form, sum over the filters and the kernel
                     offsets (p, q) whose output position (i, j) reads x[n, c, h, v]
    backward weight  one thread per dw[f, c, p, q]: sum over n and the output positions (i, j)
    bias gradient    the sum of g over (N, Ho, Wo): ``kernels.device.DeviceArray.sum``

On a GPU, with groups == 1 (every ready model), the three directions run instead as matrix products
tiled in shared memory (``tiles.py``, ``TILED``), these kernels staying for grouped convolutions. How threads are numbered and launched, and where arrays live (host in, host out; device in, device
out), is shared by the three CUDA modules: ``kernels/_cuda.py``. Sums start from ``kernels._jit.ZERO``.
"""
from __future__ import annotations

import numpy as np
from numba import config, cuda

from .._cuda import DeviceArray, launch_config, on_device, stride_config, to_caller, to_device, zeros
from .._jit import ZERO, unravel4
from ..activations import formulas
from . import tiles
from ..pool2d import cuda as pool
from .pooled import by_parts
from .reference import _composed_backward

#: Whether groups == 1 runs the tiled kernels (tiles.py): on a GPU, yes. Not in the simulator, whose
#: ``syncthreads`` makes every thread of the block poll (five times slower there); the tests switch
#: it on for the tiles' own checks.
TILED = not config.ENABLE_CUDASIM


# --- kernels ----------------------------------------------------------------------------------------

@cuda.jit
def _forward_kernel(x, w, b, sh, sw, ph, pw, dil_h, dil_w, groups, relu, y):
    """y[n, f, i, j] = b[f] + sum_{c,p,q} w[f, c, p, q] * x[n, c0 + c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw],
    then max(y, 0) when ``relu``.

    c0 = group * C/groups is the first input channel of filter f's group.
    """
    n_images, n_filters, ho, wo = y.shape
    height, width = x.shape[2], x.shape[3]
    cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    for idx in range(cuda.grid(1), n_images * n_filters * ho * wo, cuda.gridsize(1)):   # grid-stride
        n, f, i, j = unravel4(idx, n_filters, ho, wo)
        c0 = (f // (n_filters // groups)) * cg    # first input channel of f's group
        acc = b[f]
        for c in range(cg):
            for p in range(kh):
                h = i * sh + p * dil_h - ph
                if 0 <= h < height:
                    for q in range(kw):
                        v = j * sw + q * dil_w - pw
                        if 0 <= v < width:
                            acc += w[f, c, p, q] * x[n, c0 + c, h, v]
        y[n, f, i, j] = formulas.relu(acc) if relu else acc


@cuda.jit
def _backward_input_kernel(g, w, sh, sw, ph, pw, dil_h, dil_w, groups, dx):
    """dx[n, c, h, v] = sum of w[f, c', p, q] * g[n, f, i, j] over the (f, p, q, i, j) that read x[n, c, h, v].

    Output (i, j) reads row h through kernel row p when i*sh + p*dil_h - ph == h, that is when
    h + ph - p*dil_h is >= 0 and a multiple of sh (then i is that over sh, and must be < Ho); the same
    for columns.
    """
    n_images, n_channels, height, width = dx.shape
    n_filters, ho, wo = g.shape[1], g.shape[2], g.shape[3]
    cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    fg = n_filters // groups
    for idx in range(cuda.grid(1), n_images * n_channels * height * width, cuda.gridsize(1)):   # grid-stride
        n, c, h, v = unravel4(idx, n_channels, height, width)
        group = c // cg
        c_in_group = c % cg
        acc = ZERO
        for f in range(group * fg, (group + 1) * fg):
            for p in range(kh):
                ti = h + ph - p * dil_h          # = i*sh if output row i reads h
                if ti >= 0 and ti % sh == 0 and ti // sh < ho:
                    i = ti // sh
                    for q in range(kw):
                        tj = v + pw - q * dil_w  # = j*sw if output column j reads v
                        if tj >= 0 and tj % sw == 0 and tj // sw < wo:
                            acc += w[f, c_in_group, p, q] * g[n, f, i, tj // sw]
        dx[n, c, h, v] = acc


@cuda.jit
def _backward_weight_kernel(g, x, sh, sw, ph, pw, dil_h, dil_w, groups, dw):
    """dw[f, c, p, q] = sum_{n,i,j} g[n, f, i, j] * x[n, c0 + c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw]."""
    n_filters, cg, kh, kw = dw.shape
    n_images, ho, wo = g.shape[0], g.shape[2], g.shape[3]
    height, width = x.shape[2], x.shape[3]
    for idx in range(cuda.grid(1), n_filters * cg * kh * kw, cuda.gridsize(1)):   # grid-stride (_cuda.stride_config)
        f, c, p, q = unravel4(idx, cg, kh, kw)
        c0 = (f // (n_filters // groups)) * cg
        acc = ZERO
        for n in range(n_images):
            for i in range(ho):
                h = i * sh + p * dil_h - ph
                if 0 <= h < height:
                    for j in range(wo):
                        v = j * sw + q * dil_w - pw
                        if 0 <= v < width:
                            acc += g[n, f, i, j] * x[n, c0 + c, h, v]
        dw[f, c, p, q] = acc


@cuda.jit
def _relu_grad_kernel(g, out, dg):
    """dg = g where out > 0, else 0 (flat arrays), one thread per element."""
    k = cuda.grid(1)
    if k < g.size:
        dg[k] = formulas.relu_backward(g[k], out[k])


# --- host side: the functions of kernels.conv2d.reference, with the same arguments ------------------

def forward(x, w, b, geometry, relu=False):
    """y (N, F, Ho, Wo) (then max(y, 0) when ``relu``), one thread per element; a device array when an input is one."""
    keep = on_device(x, w, b)
    dtype = np.dtype(x.dtype)
    n, c, height, width = x.shape
    f, cg, kh, kw = w.shape
    ho, wo = geometry.output_hw(height, width, (kh, kw))
    if b is None:                                                        # no bias: add zeros (made where x is)
        b = zeros(f, dtype) if keep else np.zeros(f, dtype=dtype)
    y = cuda.device_array((n, f, ho, wo), dtype=dtype)
    if TILED and geometry.groups == 1:                                   # tiled in shared memory (tiles.py)
        tiles.forward(to_device(x), to_device(w), to_device(b), geometry, relu, y)
    else:
        _forward_kernel[stride_config(y.size)](to_device(x), to_device(w), to_device(b), *geometry.stride,
                                               *geometry.padding, *geometry.dilation, geometry.groups, bool(relu), y)
    return to_caller(y, keep)


def backward_input(g, w, input_shape, geometry):
    """dx of input_shape, one thread per input element (gather form, no atomics)."""
    keep = on_device(g, w)
    dx = cuda.device_array(tuple(input_shape), dtype=np.dtype(g.dtype))
    if TILED and geometry.groups == 1:
        tiles.backward_input(to_device(g), to_device(w), geometry, dx)
    else:
        _backward_input_kernel[stride_config(dx.size)](to_device(g), to_device(w), *geometry.stride,
                                                       *geometry.padding, *geometry.dilation, geometry.groups, dx)
    return to_caller(dx, keep)


def backward_weight(g, x, weight_shape, geometry, bias):
    """(dw, db): one thread per weight element, one per filter for db (None when ``bias`` is False)."""
    keep = on_device(g, x)
    dtype = np.dtype(g.dtype)
    g_dev = to_device(g)
    dw = cuda.device_array(tuple(weight_shape), dtype=dtype)
    if TILED and geometry.groups == 1:
        tiles.backward_weight(g_dev, to_device(x), geometry, dw)
    else:
        _backward_weight_kernel[stride_config(dw.size)](g_dev, to_device(x), *geometry.stride, *geometry.padding,
                                                        *geometry.dilation, geometry.groups, dw)
    db = None
    if bias:                    # a sum over (N, Ho, Wo) per filter: in pieces when long (kernels.device)
        db = DeviceArray(g_dev).sum(axis=(0, 2, 3)).data
    return to_caller(dw, keep), None if db is None else to_caller(db, keep)


def relu_grad(g, out):
    """g where the fused ReLU's output ``out`` is positive, else 0, one thread per element."""
    keep = on_device(g, out)
    dg = cuda.device_array(g.shape, dtype=np.dtype(g.dtype))
    _relu_grad_kernel[launch_config(g.size)](to_device(g).reshape(-1), to_device(out).reshape(-1), dg.reshape(-1))
    return to_caller(dg, keep)


def backward(g, x, w, geometry, input_grad, weight_grad, relu_out):
    """(dx, dw, db) in one call: relu_grad, backward_input and backward_weight above, one after the other
    (no fused pass on the device yet); None for the gradients not asked for."""
    return _composed_backward(relu_grad, backward_input, backward_weight, g, x, w, geometry, input_grad,
                              weight_grad, relu_out)


def backward_pooled(g, pooled, x, w, relu_out, geometry, pool_geometry, input_grad, weight_grad):
    """The ReLU's mask on the pooled gradient, max pooling's scatter and backward above, one after the other."""
    return by_parts(relu_grad, pool.max_scatter, backward, g, pooled, x, w, relu_out, geometry, pool_geometry,
                    input_grad, weight_grad)
