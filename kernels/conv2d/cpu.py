"""2-D convolution on the CPU: one image per Numba thread, im2col and a BLAS product inside the thread.

Same maths as kernels.conv2d.reference (read that first). For one image n and one group, the
convolution is a matrix product ("im2col"):

    cols[(c*kh + p)*kw + q, i*Wo + j] = x[n, c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw]   (0 in the padding)

so row r of ``cols`` holds, for every output position, the input value that kernel entry
r = (c, p, q) multiplies. With the group's filters flattened to ``w_mat`` (F/groups, C/groups*kh*kw):

    forward          y[n] (F/groups, Ho*Wo)      = w_mat @ cols             (+ b, then relu if asked)
    backward input   dcols (C/groups*kh*kw, Ho*Wo) = w_mat.T @ g[n]         then col2im adds dcols into dx[n]
    backward weight  dw (F/groups, C/groups*kh*kw) += g[n] @ cols.T         summed over the images

Why this layout (PyTorch's own CPU fallback works the same way): an image's ``cols`` (139 KB for the
Keras CNN's second convolution) stays in the core's cache between being written and being multiplied,
the product's result is already in NCHW order (no reshuffle), and the bias and ReLU are added while
the result is still in cache. Every product is a single-threaded BLAS call made from inside the
Numba thread (Numba's ``np.dot``, through SciPy's BLAS), so the only thread pool is Numba's: BLAS's
own threads never start, so they cannot spin against Numba's, whatever was imported first
(``kernels.runtime`` keeps every BLAS at one thread).

Threads never write to the same element: forward and backward input write their own image; backward
weight adds each image into the partial sum of its chunk (a fixed split of the batch, independent of
the number of threads) and the chunks are summed in order at the end. So results are identical run to
run, and do not depend on the thread count.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .._jit import ZERO

U = np.uint64   # an index known not to be negative (see _im2col)

#: Backward weight sums the images in this many chunks (at most), each chunk's partial sum apart.
WEIGHT_CHUNKS = 16


@njit(cache=True)
def _valid_range(size, out, stride, offset):
    """The outputs j in [lo, hi) whose input j*stride + offset lies in [0, size): the rest read padding."""
    lo = max(0, -((offset) // stride))             # ceil(-offset / stride)
    hi = min(out, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


@njit(cache=True)
def _im2col(x, n, c0, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, cols):
    """Fill cols (cg*kh*kw, Ho*Wo) from image n, channels c0 .. c0+cg-1 (cg = cols rows / (kh*kw)).

    cols[(c*kh + p)*kw + q, i*Wo + j] = x[n, c0 + c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw], 0 in
    the padding. The valid columns [j0, j1) of each q and rows [i0, i1) of each p are worked out
    once, so the inner loop is a plain copy. Its indices are unsigned (U): Numba then knows they are
    not negative and leaves out the wrap-around test it makes for a signed index, which would keep
    the copy from being vectorised (3x slower here).
    """
    height, width = x.shape[2], x.shape[3]
    cg = cols.shape[0] // (kh * kw)
    for q in range(kw):
        j0, j1 = _valid_range(width, wo, sw, q * dil_w - pw)
        v0 = U(j0 * sw + q * dil_w - pw)
        for p in range(kh):
            i0, i1 = _valid_range(height, ho, sh, p * dil_h - ph)
            for c in range(cg):
                src = x[n, c0 + c]
                dst = cols[(c * kh + p) * kw + q]
                for k in range(i0 * wo):                 # output rows that read the top padding
                    dst[k] = 0
                for i in range(i0, i1):
                    start = U(i * wo)
                    line = src[U(i * sh + p * dil_h - ph)]
                    for j in range(j0):
                        dst[start + U(j)] = 0
                    for j in range(j1 - j0):
                        dst[start + U(j0 + j)] = line[v0 + U(j * sw)]
                    for j in range(j1, wo):
                        dst[start + U(j)] = 0
                for k in range(i1 * wo, ho * wo):        # and the bottom padding
                    dst[k] = 0


@njit(cache=True)
def _col2im(dcols, n, c0, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dx):
    """The adjoint of _im2col: dx[n, c0 + c, h, v] += dcols[row, col] for every entry it copied from there."""
    height, width = dx.shape[2], dx.shape[3]
    cg = dcols.shape[0] // (kh * kw)
    for q in range(kw):
        j0, j1 = _valid_range(width, wo, sw, q * dil_w - pw)
        v0 = U(j0 * sw + q * dil_w - pw)
        for p in range(kh):
            i0, i1 = _valid_range(height, ho, sh, p * dil_h - ph)
            for c in range(cg):
                dst = dx[n, c0 + c]
                src = dcols[(c * kh + p) * kw + q]
                for i in range(i0, i1):
                    start = U(i * wo)
                    line = dst[U(i * sh + p * dil_h - ph)]
                    for j in range(j1 - j0):
                        line[v0 + U(j * sw)] += src[start + U(j0 + j)]


@njit(cache=True)
def _row_sum(row):
    """The sum of a 1-D array with eight running sums (added in a fixed order): one running sum
    waits for each addition to finish before the next (float additions are not reordered without
    fastmath, so the loop is not vectorised); eight keep the adder busy (4x faster here)."""
    partial = np.zeros(8, dtype=row.dtype)
    full = row.size - row.size % 8
    for k in range(0, full, 8):
        for lane in range(8):
            partial[lane] += row[k + lane]
    total = ZERO
    for k in range(full, row.size):
        total += row[k]
    for lane in range(8):
        total += partial[lane]
    return total


@njit(cache=True)
def _forward_images(x, w3, b, first, last, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, relu, y):
    """y[n] (F, Ho*Wo) = w_mat @ cols (+ b[f], then max(., 0) if relu) for images first .. last-1."""
    groups, fg, kg = w3.shape
    cg = kg // (kh * kw)
    cols = np.empty((kg, ho * wo), dtype=x.dtype)
    prod = np.empty((fg, ho * wo), dtype=x.dtype)
    for n in range(first, last):
        for grp in range(groups):
            _im2col(x, n, grp * cg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, cols)
            np.dot(w3[grp], cols, prod)
            for f in range(fg):                         # the epilogue, while prod is in cache
                bias = b[grp * fg + f]
                row = y[n, grp * fg + f]
                if relu:
                    for k in range(ho * wo):
                        row[k] = max(prod[f, k] + bias, ZERO)
                else:
                    for k in range(ho * wo):
                        row[k] = prod[f, k] + bias


@njit(cache=True)
def _backward_input_images(g, wt3, first, last, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dx):
    """dx[n] += col2im(w_mat.T @ g[n]) per group for images first .. last-1 (dx starts at zero)."""
    groups, kg, fg = wt3.shape
    cg = kg // (kh * kw)
    dcols = np.empty((kg, ho * wo), dtype=g.dtype)
    gn = np.empty((fg, ho * wo), dtype=g.dtype)
    for n in range(first, last):
        for grp in range(groups):
            if groups == 1:
                np.dot(wt3[0], g[n], dcols)              # g[n] is already the (F, Ho*Wo) matrix
            else:
                gn[:, :] = g[n, grp * fg:(grp + 1) * fg]
                np.dot(wt3[grp], gn, dcols)
            _col2im(dcols, n, grp * cg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dx)


@njit(cache=True)
def _backward_weight_images(g, x, first, last, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dw, db):
    """dw[grp] += g[n] @ cols.T and db[f] += sum of g[n, f] over images first .. last-1."""
    groups, fg, kg = dw.shape
    cg = kg // (kh * kw)
    cols = np.empty((kg, ho * wo), dtype=x.dtype)
    gn = np.empty((fg, ho * wo), dtype=g.dtype)
    prod = np.empty((fg, kg), dtype=g.dtype)
    for n in range(first, last):
        for grp in range(groups):
            _im2col(x, n, grp * cg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, cols)
            if groups == 1:
                np.dot(g[n], cols.T, prod)               # g[n] is already the (F, Ho*Wo) matrix
            else:
                gn[:, :] = g[n, grp * fg:(grp + 1) * fg]
                np.dot(gn, cols.T, prod)
            dw[grp] += prod
            for f in range(fg):
                db[grp * fg + f] += _row_sum(g[n, grp * fg + f])


# The parallel drivers: one chunk of images per iteration, each chunk's work a serial function above
# (so that Numba compiles the BLAS calls on plain contiguous arrays).

@njit(parallel=True, cache=True)
def _forward(x, w3, b, n_chunks, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, relu, y):
    per = (x.shape[0] + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _forward_images(x, w3, b, t * per, min(x.shape[0], (t + 1) * per), kh, kw, sh, sw, ph, pw, dil_h, dil_w,
                        ho, wo, relu, y)


@njit(parallel=True, cache=True)
def _backward_input(g, wt3, n_chunks, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dx):
    per = (g.shape[0] + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _backward_input_images(g, wt3, t * per, min(g.shape[0], (t + 1) * per), kh, kw, sh, sw, ph, pw, dil_h,
                               dil_w, ho, wo, dx)


@njit(parallel=True, cache=True)
def _backward_weight(g, x, n_chunks, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dw_part, db_part):
    per = (g.shape[0] + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _backward_weight_images(g, x, t * per, min(g.shape[0], (t + 1) * per), kh, kw, sh, sw, ph, pw, dil_h,
                                dil_w, ho, wo, dw_part[t], db_part[t])


def _chunks(n):
    """How many chunks of images a call splits the batch into: a few per thread, so that a thread
    slowed by another process leaves less work waiting (forward and backward input)."""
    return max(1, min(n, 4 * numba.get_num_threads()))


@njit(parallel=True, cache=True)
def _relu_grad(g, out, dg):
    """dg = g where out > 0, else 0 (flat arrays), in one parallel pass."""
    for k in prange(g.size):
        dg[k] = g[k] if out[k] > ZERO else ZERO


def _geometry_args(geometry):
    return (*geometry.stride, *geometry.padding, *geometry.dilation)


def forward(x, w, b, geometry, relu=False):
    """y (N, F, Ho, Wo) = conv2d(x, w) + b, then max(y, 0) when ``relu``: see the module docstring."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    n, c, height, width = x.shape
    f, cg, kh, kw = w.shape
    groups = geometry.groups
    ho, wo = geometry.output_hw(height, width, (kh, kw))
    w3 = w.reshape(groups, f // groups, cg * kh * kw)
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b)   # no bias: add zeros
    y = np.empty((n, f, ho, wo), dtype=x.dtype)
    _forward(x, w3, bias, _chunks(n), kh, kw, *_geometry_args(geometry), ho, wo, bool(relu), y.reshape(n, f, ho * wo))
    return y


def backward_input(g, w, input_shape, geometry):
    """dx of input_shape: per image, dcols = w_mat.T @ g[n] (BLAS), then col2im adds dcols into dx[n]."""
    g, w = np.ascontiguousarray(g), np.ascontiguousarray(w)
    n, c, height, width = input_shape
    f, cg, kh, kw = w.shape
    groups = geometry.groups
    ho, wo = g.shape[2], g.shape[3]
    wt3 = np.ascontiguousarray(w.reshape(groups, f // groups, cg * kh * kw).transpose(0, 2, 1))
    dx = np.zeros((n, c, height, width), dtype=g.dtype)
    _backward_input(g.reshape(n, f, ho * wo), wt3, _chunks(n), kh, kw, *_geometry_args(geometry), ho, wo, dx)
    return dx


def backward_weight(g, x, weight_shape, geometry, bias):
    """(dw, db): per image g[n] @ cols.T (BLAS), summed in fixed chunks; db the sums of g (None without bias)."""
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    f, cg, kh, kw = weight_shape
    groups = geometry.groups
    n, ho, wo = g.shape[0], g.shape[2], g.shape[3]
    n_chunks = min(n, WEIGHT_CHUNKS)
    dw_part = np.zeros((n_chunks, groups, f // groups, cg * kh * kw), dtype=g.dtype)
    db_part = np.zeros((n_chunks, f), dtype=g.dtype)
    _backward_weight(g.reshape(n, f, ho * wo), x, n_chunks, kh, kw, *_geometry_args(geometry), ho, wo, dw_part, db_part)
    dw, db = dw_part[0], db_part[0]
    for t in range(1, n_chunks):          # in chunk order: the same sum whatever the thread count
        dw = dw + dw_part[t]
        db = db + db_part[t]
    return dw.reshape(f, cg, kh, kw), (db if bias else None)


def relu_grad(g, out):
    """g where the fused ReLU's output ``out`` is positive, else 0: the gradient that reaches the
    convolution under relu (relu'(0) = 0)."""
    g, out = np.ascontiguousarray(g), np.ascontiguousarray(out)
    dg = np.empty_like(g)
    _relu_grad(g.reshape(-1), out.reshape(-1), dg.reshape(-1))
    return dg
