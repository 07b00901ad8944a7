"""2-D convolution with numba.cuda: one GPU thread per output element, written to be read.

Same maths as kernels.conv2d.reference. Each kernel gives every thread one element of the result
and lets it sum its terms in a fixed order, so there are no atomics and results are identical run to
run:

    forward          one thread per y[n, f, i, j]: sum over (c, p, q)
    backward input   one thread per dx[n, c, h, v]: gather form, sum over the filters and the kernel
                     offsets (p, q) whose output position (i, j) reads x[n, c, h, v]
    backward weight  one thread per dw[f, c, p, q]: sum over n and the output positions (i, j)
    bias gradient    one thread per db[f]: sum of g[:, f]

Threads are numbered with cuda.grid(1) over the flattened result, in blocks of THREADS_PER_BLOCK;
each thread first checks that its number is inside the result. No warp shuffles or shared memory,
so the kernels also run in Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), slowly.

Host (NumPy) inputs are copied to the device and the result is copied back; when any input is
already a device array, the result is left on the device (a numba device array).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from .._checks import output_hw

THREADS_PER_BLOCK = 128


def launch_config(n_threads):
    """(blocks, threads per block) for one thread per element of an ``n_threads``-element result."""
    blocks = (n_threads + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    return blocks, THREADS_PER_BLOCK


# --- kernels ----------------------------------------------------------------------------------------

@cuda.jit
def _forward_kernel(x, w, b, sh, sw, ph, pw, dil_h, dil_w, groups, y):
    """y[n, f, i, j] = b[f] + sum_{c,p,q} w[f, c, p, q] * x[n, c0 + c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw].

    c0 = group * C/groups is the first input channel of filter f's group.
    """
    n_images, n_filters, ho, wo = y.shape
    height, width = x.shape[2], x.shape[3]
    cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    idx = cuda.grid(1)
    if idx < n_images * n_filters * ho * wo:
        j = idx % wo                          # idx = ((n*F + f)*Ho + i)*Wo + j
        i = (idx // wo) % ho
        f = (idx // (wo * ho)) % n_filters
        n = idx // (wo * ho * n_filters)
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
        y[n, f, i, j] = acc


@cuda.jit
def _backward_input_kernel(g, w, sh, sw, ph, pw, dil_h, dil_w, groups, zero, dx):
    """dx[n, c, h, v] = sum of w[f, c', p, q] * g[n, f, i, j] over the (f, p, q, i, j) that read x[n, c, h, v].

    Output (i, j) reads row h through kernel row p when i*sh + p*dil_h - ph == h, that is when
    h + ph - p*dil_h is >= 0 and a multiple of sh (then i is that over sh, and must be < Ho); the same
    for columns. ``zero`` is 0 in the arrays' dtype, so a float32 sum stays float32.
    """
    n_images, n_channels, height, width = dx.shape
    n_filters, ho, wo = g.shape[1], g.shape[2], g.shape[3]
    cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    fg = n_filters // groups
    idx = cuda.grid(1)
    if idx < n_images * n_channels * height * width:
        v = idx % width                       # idx = ((n*C + c)*H + h)*W + v
        h = (idx // width) % height
        c = (idx // (width * height)) % n_channels
        n = idx // (width * height * n_channels)
        group = c // cg
        c_in_group = c % cg
        acc = zero
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
def _backward_weight_kernel(g, x, sh, sw, ph, pw, dil_h, dil_w, groups, zero, dw):
    """dw[f, c, p, q] = sum_{n,i,j} g[n, f, i, j] * x[n, c0 + c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw]."""
    n_filters, cg, kh, kw = dw.shape
    n_images, ho, wo = g.shape[0], g.shape[2], g.shape[3]
    height, width = x.shape[2], x.shape[3]
    idx = cuda.grid(1)
    if idx < n_filters * cg * kh * kw:
        q = idx % kw                          # idx = ((f*Cg + c)*kh + p)*kw + q
        p = (idx // kw) % kh
        c = (idx // (kw * kh)) % cg
        f = idx // (kw * kh * cg)
        c0 = (f // (n_filters // groups)) * cg
        acc = zero
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
def _bias_grad_kernel(g, zero, db):
    """db[f] = sum_{n,i,j} g[n, f, i, j]."""
    n_images, n_filters, ho, wo = g.shape
    f = cuda.grid(1)
    if f < n_filters:
        acc = zero
        for n in range(n_images):
            for i in range(ho):
                for j in range(wo):
                    acc += g[n, f, i, j]
        db[f] = acc


# --- host side --------------------------------------------------------------------------------------

def _on_device(*arrays):
    """Whether any of the (non-None) arrays is already on the device (not a NumPy array)."""
    return any(a is not None and not isinstance(a, np.ndarray) for a in arrays)


def _device(a):
    """``a`` on the device: host arrays are copied there, device arrays are used as they are."""
    return cuda.to_device(a) if isinstance(a, np.ndarray) else a


def forward(x, w, b, stride, padding, dilation, groups):
    """y (N, F, Ho, Wo), one thread per element; a device array when an input is one."""
    keep = _on_device(x, w, b)
    dtype = np.dtype(x.dtype)
    n, c, height, width = x.shape
    f, cg, kh, kw = w.shape
    ho, wo = output_hw(height, width, (kh, kw), stride, padding, dilation)
    bias = np.zeros(f, dtype=dtype) if b is None else b                  # no bias: add zeros
    y = cuda.device_array((n, f, ho, wo), dtype=dtype)
    blocks, threads = launch_config(n * f * ho * wo)
    _forward_kernel[blocks, threads](_device(x), _device(w), _device(bias), *stride, *padding, *dilation,
                                     groups, y)
    return y if keep else y.copy_to_host()


def backward_input(g, w, input_shape, stride, padding, dilation, groups):
    """dx of input_shape, one thread per input element (gather form, no atomics)."""
    keep = _on_device(g, w)
    dtype = np.dtype(g.dtype)
    dx = cuda.device_array(tuple(input_shape), dtype=dtype)
    blocks, threads = launch_config(dx.size)
    _backward_input_kernel[blocks, threads](_device(g), _device(w), *stride, *padding, *dilation, groups,
                                            dtype.type(0), dx)
    return dx if keep else dx.copy_to_host()


def backward_weight(g, x, weight_shape, stride, padding, dilation, groups, bias):
    """(dw, db): one thread per weight element, one per filter for db (None when ``bias`` is False)."""
    keep = _on_device(g, x)
    dtype = np.dtype(g.dtype)
    g_dev = _device(g)
    dw = cuda.device_array(tuple(weight_shape), dtype=dtype)
    blocks, threads = launch_config(dw.size)
    _backward_weight_kernel[blocks, threads](g_dev, _device(x), *stride, *padding, *dilation, groups,
                                             dtype.type(0), dw)
    db = None
    if bias:
        db = cuda.device_array(weight_shape[0], dtype=dtype)
        blocks, threads = launch_config(weight_shape[0])
        _bias_grad_kernel[blocks, threads](g_dev, dtype.type(0), db)
    if keep:
        return dw, db
    return dw.copy_to_host(), None if db is None else db.copy_to_host()
