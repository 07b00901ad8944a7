"""im2col and its adjoint col2im for one image (cpu.py's products read and write these columns).

    cols[(c*kh + p)*kw + q, i*Wo + j] = x[n, c0 + c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw]   (0 in the padding)

Each row of cols is made of runs, one per output row i, of Wo values at most, read from one row of x
(contiguous when sw = 1). Runs that short (11 values for the Keras CNN's conv2) are what Numba's loop
vectoriser leaves to scalar code, so with unit strides they go through kernels.spans: one masked
vector per run for im2col, and for col2im every run that lands in one vector of a row of dx summed
in a register and stored once (a store per run would have the next run's load wait for it: the runs
overlap in dx). Either way each value of dx gets its terms in the same order as the plain loops add
them, so the fast paths give the same bits; the plain loops do every other stride.
"""
from __future__ import annotations

import numpy as np

from .._cache import njit
from ..spans import TABLE_COLUMNS, add_runs, copy_run, lanes

U = np.uint64   # an index known not to be negative (see im2col)


@njit(cache=True)
def valid_range(size, out, stride, offset):
    """The outputs j in [lo, hi) whose input j*stride + offset lies in [0, size): the rest read padding."""
    lo = max(0, -((offset) // stride))             # ceil(-offset / stride)
    hi = min(out, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


@njit(cache=True)
def im2col(x, n, c0, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, cols):
    """Fill cols (cg*kh*kw, Ho*Wo) from image n, channels c0 .. c0+cg-1 (cg = cols rows / (kh*kw)).

    The valid columns [j0, j1) of each q and rows [i0, i1) of each p are worked out once, so the
    inner loop is a plain copy (spans.copy_run when the strides allow). Its indices are unsigned
    (U): Numba then knows they are not negative and leaves out the wrap-around test it makes for a
    signed index, which would keep the copy from being vectorised.
    """
    height, width = x.shape[2], x.shape[3]
    cg = cols.shape[0] // (kh * kw)
    item = x.itemsize
    runs = sw == 1 and x.strides[3] == item and cols.strides[1] == item
    xs0, xs1, xs2, cs0 = x.strides[0] // item, x.strides[1] // item, x.strides[2] // item, cols.strides[0] // item
    like, xa, ca = np.zeros(1, x.dtype)[0], x.ctypes.data, cols.ctypes.data
    for q in range(kw):
        j0, j1 = valid_range(width, wo, sw, q * dil_w - pw)
        v0 = U(j0 * sw + q * dil_w - pw)
        for p in range(kh):
            i0, i1 = valid_range(height, ho, sh, p * dil_h - ph)
            for c in range(cg):
                src = x[n, c0 + c]
                r = (c * kh + p) * kw + q
                dst = cols[r]
                for k in range(i0 * wo):                 # output rows that read the top padding
                    dst[k] = 0
                for i in range(i0, i1):
                    start = U(i * wo)
                    h = i * sh + p * dil_h - ph
                    for j in range(j0):
                        dst[start + U(j)] = 0
                    if runs:
                        copy_run(like, xa, n * xs0 + (c0 + c) * xs1 + h * xs2 + v0, ca, r * cs0 + start + j0, j1 - j0)
                    else:
                        line = src[U(h)]
                        for j in range(j1 - j0):
                            dst[start + U(j0 + j)] = line[v0 + U(j * sw)]
                    for j in range(j1, wo):
                        dst[start + U(j)] = 0
                for k in range(i1 * wo, ho * wo):        # and the bottom padding
                    dst[k] = 0


@njit(cache=True)
def col2im_plan(dcols, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dx):
    """What col2im's unit-stride path reads, made once for every image and channel: for each vector of a
    row of dx (``first[h * chunks + k]`` .. ``first[h * chunks + k + 1]``), the runs of dcols that reach
    it in the order (q, p), as rows (offset in a channel's rows of dcols, first lane, lane past the
    last). Empty arrays where the strides are not all 1: col2im then takes the plain loops."""
    item = dx.itemsize
    if not (sh == 1 and sw == 1 and dx.strides[3] == item and dcols.strides[1] == item):
        return np.empty((0, TABLE_COLUMNS), dtype=np.intp), np.empty(0, dtype=np.intp)
    height, width = dx.shape[2], dx.shape[3]
    lane = lanes(item)
    chunks = (width + lane - 1) // lane
    ld = dcols.strides[0] // item
    table = np.empty((height * chunks * kh * kw, TABLE_COLUMNS), dtype=np.intp)
    first = np.empty(height * chunks + 1, dtype=np.intp)
    e = 0
    for h in range(height):
        for a in range(0, width, lane):
            first[h * chunks + a // lane] = e
            for q in range(kw):
                j0, j1 = valid_range(width, wo, 1, q * dil_w - pw)
                v0 = j0 + q * dil_w - pw
                lo, hi = max(0, v0 - a), min(lane, v0 + j1 - j0 - a)
                for p in range(kh):
                    i = h + ph - p * dil_h
                    if 0 <= i < ho and lo < hi:
                        table[e, 0] = (p * kw + q) * ld + i * wo + j0 + a - v0
                        table[e, 1], table[e, 2] = lo, hi
                        e += 1
    first[height * chunks] = e
    return table, first


@njit(cache=True)
def col2im(dcols, n, c0, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dx, plan):
    """The adjoint of im2col: dx[n, c0 + c, h, v] += dcols[row, col] for every entry it copied from there.
    Each value's terms are added in the order (q, p): kernel column by kernel column. ``plan`` is
    col2im_plan's for these arguments (the same for every n and c0).

    With unit strides, one vector of a row of dx at a time: spans.add_runs adds the runs the plan
    lists for it. The rows go even ones first, then odd ones, so that a row's store is not still
    pending when the next row's load overlaps it."""
    table, first = plan
    height, width = dx.shape[2], dx.shape[3]
    cg = dcols.shape[0] // (kh * kw)
    if first.size:
        item = dx.itemsize
        lane = lanes(item)
        chunks = (width + lane - 1) // lane
        like, xa, ca, ta = np.zeros(1, dx.dtype)[0], dx.ctypes.data, dcols.ctypes.data, table.ctypes.data
        xs0, xs1, xs2 = dx.strides[0] // item, dx.strides[1] // item, dx.strides[2] // item
        for c in range(cg):
            base = c * kh * kw * (dcols.strides[0] // item)
            for parity in range(2):
                for h in range(parity, height, 2):
                    for k in range(chunks):
                        at = h * chunks + k
                        add_runs(like, xa, n * xs0 + (c0 + c) * xs1 + h * xs2 + k * lane, min(lane, width - k * lane),
                                 ca, ta, first[at], first[at + 1] - first[at], base)
        return
    for q in range(kw):
        j0, j1 = valid_range(width, wo, sw, q * dil_w - pw)
        v0 = U(j0 * sw + q * dil_w - pw)
        for p in range(kh):
            i0, i1 = valid_range(height, ho, sh, p * dil_h - ph)
            for c in range(cg):
                dst = dx[n, c0 + c]
                src = dcols[(c * kh + p) * kw + q]
                for i in range(i0, i1):
                    start = U(i * wo)
                    line = dst[U(i * sh + p * dil_h - ph)]
                    for j in range(j1 - j0):
                        line[v0 + U(j * sw)] += src[start + U(j0 + j)]
