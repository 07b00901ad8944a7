"""2-D convolution on the CPU: Numba-parallel im2col / col2im around one BLAS matrix product.

Same maths as kernels.conv2d.reference (read that first). The convolution is turned into a matrix
product ("im2col"):

    cols[(c*kh + p)*kw + q, (n*Ho + i)*Wo + j] = x[n, c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw]   (0 in the padding)

so row r of ``cols`` holds, for every output position of every image, the input value that kernel
entry r = (c, p, q) multiplies. With the filters flattened to ``w_mat`` (F, C/groups*kh*kw):

    forward          y_mat (F, N*Ho*Wo) = w_mat @ cols                  then reshuffle y_mat -> y (N, F, Ho, Wo)
    backward weight  dw_mat (F, C/groups*kh*kw) = g_mat @ cols.T         with g_mat = g reshuffled to (F, N*Ho*Wo)
    backward input   dcols = w_mat.T @ g_mat                             then col2im: add dcols back into dx

(one product per group: group k uses filter rows k*F/groups... and cols rows k*C/groups*kh*kw...).

Why this layout: the matrix product is by far the largest piece of work, and BLAS (OpenBLAS through
NumPy) does it with its own threads and vector code. It is called from Python, outside every Numba
``prange`` loop, so BLAS's thread pool and Numba's never run at the same time (and OpenBLAS's idle
threads do not spin against Numba's: ``kernels.runtime`` sees to that, once per process). The copying steps are
Numba ``prange`` loops in which every iteration writes its own part of the output (one image and
channel), so no two threads ever add to the same element: results are identical run to run.
"""
from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit, prange



# --- the parallel copying steps (compiled once per dtype, cached on disk) -------------------------

@njit(cache=True)
def _valid_range(size, out, stride, offset):
    """The outputs j in [lo, hi) whose input j*stride + offset lies in [0, size): the rest read padding."""
    lo = max(0, -((offset) // stride))             # ceil(-offset / stride)
    hi = min(out, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, cols):
    """Fill cols (C*kh*kw, N*Ho*Wo): cols[(c*kh + p)*kw + q, (n*Ho + i)*Wo + j] = x[n, c, h, v] or 0.

    h = i*sh + p*dil_h - ph and v = j*sw + q*dil_w - pw; positions in the zero padding give 0.
    One parallel iteration per row of cols, written front to back: each thread writes its own rows,
    in long runs (row by row is 1.5x faster than image by image here, which writes 9 rows at once).
    The valid columns [j0, j1) are worked out once per row, so the inner loop has no branch.
    """
    n_images, n_channels, height, width = x.shape
    for row in prange(n_channels * kh * kw):
        c = row // (kh * kw)
        p = (row // kw) % kh
        q = row % kw
        j0, j1 = _valid_range(width, wo, sw, q * dil_w - pw)
        v0 = j0 * sw + q * dil_w - pw
        for n in range(n_images):
            for i in range(ho):
                h = i * sh + p * dil_h - ph
                start = (n * ho + i) * wo
                if 0 <= h < height:
                    for j in range(j0):
                        cols[row, start + j] = 0
                    for j in range(j0, j1):
                        cols[row, start + j] = x[n, c, h, v0 + (j - j0) * sw]
                    for j in range(j1, wo):
                        cols[row, start + j] = 0
                else:                                   # the whole row is in the padding
                    for j in range(wo):
                        cols[row, start + j] = 0


@njit(parallel=True, cache=True)
def _col2im(dcols, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, n_blocks, dx):
    """The adjoint of _im2col: dx[n, c, h, v] += dcols[row, col] for every entry im2col copied from there.

    ``dx`` must start at zero. Entries that came from the zero padding are dropped. One parallel
    iteration per (channel, block of images): it reads the rows of channel c for those images and
    adds only into dx[those images, c], so no two threads touch the same element, and each element's
    terms are added in the same order every run. ``n_blocks`` splits the images so that there are
    enough iterations to share out when there are few channels.
    """
    n_images, n_channels, height, width = dx.shape
    per_block = (n_images + n_blocks - 1) // n_blocks
    for cb in prange(n_channels * n_blocks):
        c = cb // n_blocks
        first = (cb % n_blocks) * per_block
        last = min(n_images, first + per_block)
        for p in range(kh):
            for q in range(kw):
                row = (c * kh + p) * kw + q
                j0, j1 = _valid_range(width, wo, sw, q * dil_w - pw)
                v0 = j0 * sw + q * dil_w - pw
                for n in range(first, last):
                    for i in range(ho):
                        h = i * sh + p * dil_h - ph
                        if 0 <= h < height:
                            start = (n * ho + i) * wo
                            for j in range(j0, j1):
                                dx[n, c, h, v0 + (j - j0) * sw] += dcols[row, start + j]


@njit(parallel=True, cache=True)
def _fmat_to_nchw(y_mat, b, y):
    """y[n, f, i, j] = y_mat[f, (n*Ho + i)*Wo + j] + b[f]: the product's result back in NCHW order."""
    n_images, n_filters, ho, wo = y.shape
    for nf in prange(n_images * n_filters):
        n = nf // n_filters
        f = nf % n_filters
        for i in range(ho):
            start = (n * ho + i) * wo
            for j in range(wo):
                y[n, f, i, j] = y_mat[f, start + j] + b[f]


@njit(parallel=True, cache=True)
def _nchw_to_fmat(g, g_mat):
    """g_mat[f, (n*Ho + i)*Wo + j] = g[n, f, i, j]: the inverse of _fmat_to_nchw (without bias)."""
    n_images, n_filters, ho, wo = g.shape
    for nf in prange(n_images * n_filters):
        n = nf // n_filters
        f = nf % n_filters
        for i in range(ho):
            start = (n * ho + i) * wo
            for j in range(wo):
                g_mat[f, start + j] = g[n, f, i, j]


# --- helpers ----------------------------------------------------------------------------------------

class _Workspace(threading.local):
    """Scratch matrices (cols, g_mat, y_mat, dcols) kept between calls, per thread.

    A fresh 18 MB array costs its page faults on every call (about 2 ms of conv2's 11 ms here);
    a training step asks for the same few shapes again and again, so they are kept, a handful at a
    time, and never returned to the caller.
    """
    KEEP = 8

    def __init__(self):
        self.arrays = {}

    def get(self, name, shape, dtype):
        key = (name, shape, np.dtype(dtype))
        array = self.arrays.pop(key, None)
        if array is None:
            array = np.empty(shape, dtype=dtype)
        self.arrays[key] = array                     # most recently used last
        while len(self.arrays) > self.KEEP:
            del self.arrays[next(iter(self.arrays))]
        return array


_workspace = _Workspace()


def _columns(x, kh, kw, geometry, ho, wo):
    """im2col of x: the (C*kh*kw, N*Ho*Wo) matrix described in the module docstring."""
    n, c = x.shape[0], x.shape[1]
    cols = _workspace.get("cols", (c * kh * kw, n * ho * wo), x.dtype)
    _im2col(x, kh, kw, *geometry.stride, *geometry.padding, *geometry.dilation, ho, wo, cols)
    return cols


def _filter_matrix(g):
    """g (N, F, Ho, Wo) as the (F, N*Ho*Wo) matrix g_mat."""
    n, f, ho, wo = g.shape
    g_mat = _workspace.get("g_mat", (f, n * ho * wo), g.dtype)
    _nchw_to_fmat(g, g_mat)
    return g_mat


def _group_rows(group, per_group):
    """The rows of group ``group`` when each group owns ``per_group`` consecutive rows."""
    return slice(group * per_group, (group + 1) * per_group)


# --- the three directions ---------------------------------------------------------------------------

def forward(x, w, b, geometry):
    """y (N, F, Ho, Wo): im2col, one matrix product per group (BLAS), reshuffle to NCHW adding b."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    n, c, height, width = x.shape
    f, cg, kh, kw = w.shape
    groups = geometry.groups
    ho, wo = geometry.output_hw(height, width, (kh, kw))
    cols = _columns(x, kh, kw, geometry, ho, wo)
    w_mat = w.reshape(f, cg * kh * kw)
    y_mat = _workspace.get("y_mat", (f, n * ho * wo), x.dtype)
    for grp in range(groups):
        rows_f, rows_k = _group_rows(grp, f // groups), _group_rows(grp, cg * kh * kw)
        np.matmul(w_mat[rows_f], cols[rows_k], out=y_mat[rows_f])
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b)   # no bias: add zeros
    y = np.empty((n, f, ho, wo), dtype=x.dtype)
    _fmat_to_nchw(y_mat, bias, y)
    return y


def backward_input(g, w, input_shape, geometry):
    """dx of input_shape: dcols = w_mat.T @ g_mat per group (BLAS), then col2im adds dcols into dx."""
    g, w = np.ascontiguousarray(g), np.ascontiguousarray(w)
    n, c, height, width = input_shape
    f, cg, kh, kw = w.shape
    groups = geometry.groups
    ho, wo = g.shape[2], g.shape[3]
    g_mat = _filter_matrix(g)
    w_mat = w.reshape(f, cg * kh * kw)
    dcols = _workspace.get("dcols", (c * kh * kw, n * ho * wo), g.dtype)
    for grp in range(groups):
        rows_f, rows_k = _group_rows(grp, f // groups), _group_rows(grp, cg * kh * kw)
        np.matmul(w_mat[rows_f].T, g_mat[rows_f], out=dcols[rows_k])
    dx = np.zeros((n, c, height, width), dtype=g.dtype)
    n_blocks = min(n, -(-4 * numba.get_num_threads() // c))    # at least ~4 iterations per thread
    _col2im(dcols, kh, kw, *geometry.stride, *geometry.padding, *geometry.dilation, ho, wo, n_blocks, dx)
    return dx


def backward_weight(g, x, weight_shape, geometry, bias):
    """(dw, db): dw_mat = g_mat @ cols.T per group (BLAS); db = row sums of g_mat (None without bias)."""
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    f, cg, kh, kw = weight_shape
    groups = geometry.groups
    ho, wo = g.shape[2], g.shape[3]
    cols = _columns(x, kh, kw, geometry, ho, wo)
    g_mat = _filter_matrix(g)
    dw_mat = np.empty((f, cg * kh * kw), dtype=g.dtype)
    for grp in range(groups):
        rows_f, rows_k = _group_rows(grp, f // groups), _group_rows(grp, cg * kh * kw)
        np.matmul(g_mat[rows_f], cols[rows_k].T, out=dw_mat[rows_f])
    db = g_mat.sum(axis=1) if bias else None
    return dw_mat.reshape(f, cg, kh, kw), db
