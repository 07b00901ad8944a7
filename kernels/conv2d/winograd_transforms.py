"""The tile transforms of kernels.conv2d.winograd (F(2x2, 3x3)), written as vector loops.

A transform is a few additions per tile, and scalar code pays a load or store for each of the 16
values a tile has in each of its 16 rows. Here every step is one loop over a long run of entries
that are contiguous in both its inputs and its output: one store stream, unsigned indices, so LLVM
vectorises it (behind a runtime check that the arrays do not overlap). The arrays are flat and the
runs given by offsets, not slices: a slice is a new array, reference-counted, on every call.

- The input transform works on one image in channels-last order with the even and odd columns
  apart (``channels_last``): B^T down the rows is then a loop over a whole row of the plane, and B
  along the row a loop over a whole row of tiles and channels, since d's columns 0 and 2 (1 and 3)
  are the even (odd) columns tj and tj + 1.
- The inverse transform ``inverse`` treats each column of M alone, whatever the layout: one pass over
  M's 16 rows, a column's sums kept in registers and its four outputs stored (no intermediate rows).
- ``output_tiles`` (F(4x4, 3x3)'s too) adds the bias, applies the ReLU and puts each tile in its place
  in the output planes, a vector of filters at a time turned into the filters' runs of an output row
  (kernels.spans.columns_to_rows); one value at a time, that scatter along the planes was the slowest step.
- Backward weight's transform of g's 2x2 tiles (which do not overlap) splits them into their four
  entries first (``grad_parity``, one row each, in Gg's column order, db's sums on the way);
  ``grad_tiles`` is then passes over whole rows, as the inverse, for the 12 rows of A t A^T that
  combine entries (the 4 corners are one entry each: those rows are grad_parity's, signs apart).

Numba's cache checks only the file of the function it compiled, not the files of the functions it
calls; kernels._cache's ``njit`` stamps the kernels' caches with the whole package, so a change here
recompiles winograd.py's functions too.
"""
from __future__ import annotations

import numpy as np

from .._cache import njit
from ..activations import formulas
from ..spans import columns_to_rows, lanes, split_run

#: Backward weight's transform of g (and F(4x4)'s inverse) takes this many columns a pass: its inputs (and
#: F(4x4)'s intermediate rows) stay in the L1 cache.
CHUNK = 512
#: The distance between those rows: an odd number of cache lines (see winograd._row).
CHUNK_ROW = CHUNK + 16


@njit(cache=True)
def _add2(a, ao, b, bo, out, oo, n):
    """out[oo:oo+n] = a[ao:ao+n] + b[bo:bo+n], 1-D arrays."""
    ao, bo, oo = np.uint64(ao), np.uint64(bo), np.uint64(oo)
    for i in range(np.uint64(n)):
        out[oo + i] = a[ao + i] + b[bo + i]


@njit(cache=True)
def _sub2(a, ao, b, bo, out, oo, n):
    """out[oo:oo+n] = a[ao:ao+n] - b[bo:bo+n], 1-D arrays."""
    ao, bo, oo = np.uint64(ao), np.uint64(bo), np.uint64(oo)
    for i in range(np.uint64(n)):
        out[oo + i] = a[ao + i] - b[bo + i]


@njit(cache=True)
def channels_last(src, off_h, off_w, xt, per_phase, phases=2):
    """xt (Hp, phases, per_phase, C), flat: xt[r, s % phases, s // phases, c] = src[c, r - off_h, s - off_w] where
    that is inside src (C, H, W); the rest of xt is left as it is (zeros: the padding, and past the last
    tile). Two phases (even and odd columns) for F(2x2, 3x3), four for F(4x4, 3x3)."""
    c_in, height, width = src.shape
    part = per_phase * c_in
    h0, h1 = max(0, -off_h), min(height, xt.shape[0] // (phases * part) - off_h)
    w0, w1 = max(0, -off_w), min(width, phases * per_phase - off_w)
    flat, plane = src.reshape(-1), np.uint64(height * width)
    for h in range(h0, h1):                     # the channels innermost: one store stream, the loads a gather,
        row = (h + off_h) * phases * part       # faster here than reading src in memory order
        for w in range(w0, w1):
            s = w + off_w
            dst, at = np.uint64(row + (s % phases) * part + (s // phases) * c_in), np.uint64(h * width + w)
            for c in range(np.uint64(c_in)):
                xt[dst + c] = flat[at + c * plane]


@njit(cache=True)
def input_tiles(xt, th, tw, c_in, r, v, row, base):
    """v[(4i + j)*row + base + (ti*tw + tj)*C + c] = (B^T d B)[i, j] for the 4x4 tile d of channel c at
    (ti, tj) of xt (channels_last's, half_w = tw + 1); r: scratch of 4 rows of xt's (8 * (tw + 1) * C)."""
    half = (tw + 1) * c_in
    span = 2 * half
    n = tw * c_in
    for ti in range(th):
        d0 = 2 * ti * span
        d1, d2, d3 = d0 + span, d0 + 2 * span, d0 + 3 * span
        _sub2(xt, d0, xt, d2, r, 0, span)                  # B^T d, down the rows: (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
        _add2(xt, d1, xt, d2, r, span, span)
        _sub2(xt, d2, xt, d1, r, 2 * span, span)
        _sub2(xt, d1, xt, d3, r, 3 * span, span)
        col = base + ti * n
        for i in range(4):                                  # then times B, along the row
            e0, o0 = i * span, i * span + half
            e1, o1 = e0 + c_in, o0 + c_in
            _sub2(r, e0, r, e1, v, 4 * i * row + col, n)
            _add2(r, o0, r, e1, v, (4 * i + 1) * row + col, n)
            _sub2(r, e1, r, o0, v, (4 * i + 2) * row + col, n)
            _sub2(r, o0, r, o1, v, (4 * i + 3) * row + col, n)


@njit(cache=True)
def inverse(m, row, size, y4, y_row):
    """y4 (4, y_row), flat: the four outputs (y00, y01, y10, y11) of A^T M[:, col] A for the columns col < size
    of m (16 rows of ``row`` entries, flat): per column j of M's 4x4, S_j = rows 0 + 4 + 8 and T_j = rows
    4 - 8 - 12 (A^T down the column), then A^T along S and T; one pass, every sum in registers (the order
    of the two matrix products, left to right)."""
    r = np.uint64(row)                             # unsigned offsets (an int64 times a uint64 is a float64)
    r2, r3, r4 = r + r, r + r + r, r + r + r + r
    y1, y2, y3 = np.uint64(y_row), np.uint64(2 * y_row), np.uint64(3 * y_row)
    for i in range(np.uint64(size)):
        c0, c1, c2, c3 = i, i + r, i + r2, i + r3                # column j of the 4x4: rows j, 4 + j, 8 + j, 12 + j
        s0 = m[c0] + m[c0 + r4] + m[c0 + r4 + r4]
        s1 = m[c1] + m[c1 + r4] + m[c1 + r4 + r4]
        s2 = m[c2] + m[c2 + r4] + m[c2 + r4 + r4]
        s3 = m[c3] + m[c3 + r4] + m[c3 + r4 + r4]
        t0 = m[c0 + r4] - m[c0 + r4 + r4] - m[c0 + r4 + r4 + r4]
        t1 = m[c1 + r4] - m[c1 + r4 + r4] - m[c1 + r4 + r4 + r4]
        t2 = m[c2 + r4] - m[c2 + r4 + r4] - m[c2 + r4 + r4 + r4]
        t3 = m[c3 + r4] - m[c3 + r4 + r4] - m[c3 + r4 + r4 + r4]
        y4[i] = s0 + s1 + s2
        y4[y1 + i] = s1 - s2 - s3
        y4[y2 + i] = t0 + t1 + t2
        y4[y3 + i] = t1 - t2 - t3


@njit(cache=True)
def output_tiles(y, size, base, th, tw, bias, relu, out, t=2):
    """out (F, Ho, Wo)[f] = tile (ti, tj) of y (the inverse's: t x t tiles, entry (a, b) in row t*a + b of
    ``size`` entries, at base + (ti*tw + tj)*F + f) + bias[f], then ReLU, the last tile row and column cut
    to the output's size. y holds the filters along its rows and out along its planes: a row of out is t
    values of each of its tiles, taken for a vector of filters at once and turned in registers into each
    filter's run of the row (spans.columns_to_rows); output_tiles_plain where a vector holds fewer than t."""
    f_out, ho, wo = out.shape
    width = lanes(out.itemsize)
    per = width // t                                    # tiles whose values of one output row fill a vector
    if per == 0:
        output_tiles_plain(y, size, base, th, tw, bias, relu, out, t)
        return
    like, plane, relu_int = y[0], ho * wo, 1 if relu else 0     # like: a value of the data's type
    offsets = np.zeros(width, dtype=np.intp)
    ya, ba, oa, at = y.ctypes.data, bias.ctypes.data, out.ctypes.data, offsets.ctypes.data
    for ti in range(th):
        for a in range(min(t, ho - t * ti)):
            h = t * ti + a
            for c0 in range(0, tw, per):
                k = t * min(per, tw - c0)
                for r in range(k):                      # the row's values r = t*tj' + b, each a vector of filters
                    offsets[r] = (t * a + r % t) * size + base + (ti * tw + c0 + r // t) * f_out
                for f0 in range(0, f_out, width):
                    columns_to_rows(like, ya, f0, at, k, min(width, f_out - f0), ba, f0, relu_int, oa,
                                    f0 * plane + h * wo + t * c0, plane, min(k, wo - t * c0))


@njit(cache=True)
def output_tiles_plain(y, size, base, th, tw, bias, relu, out, t=2):
    """output_tiles one value at a time (the same bits): for vectors narrower than a tile, and the tests."""
    f_out, ho, wo = out.shape
    for ti in range(th):
        for tj in range(tw):
            col = base + (ti * tw + tj) * f_out
            for a in range(min(t, ho - t * ti)):
                for b in range(min(t, wo - t * tj)):
                    at = (t * a + b) * size + col
                    for f in range(f_out):
                        value = y[at + f] + bias[f]
                        out[f, t * ti + a, t * tj + b] = formulas.relu(value) if relu else value


@njit(cache=True)
def _add_sub(a, ao, bo, out, o0, o1, n):
    """out[o0:o0+n] = a[ao:ao+n] + a[bo:bo+n] and out[o1:o1+n] = a[ao:ao+n] - a[bo:bo+n], 1-D arrays."""
    ao, bo, o0, o1 = np.uint64(ao), np.uint64(bo), np.uint64(o0), np.uint64(o1)
    for i in range(np.uint64(n)):
        p, q = a[ao + i], a[bo + i]
        out[o0 + i] = p + q
        out[o1 + i] = p - q


@njit(cache=True)
def _neg_add_sub(a, ao, bo, out, o0, o1, n):
    """_add_sub of the negated runs: out[o0:o0+n] = (-a[ao:]) + (-a[bo:]), out[o1:o1+n] = (-a[ao:]) - (-a[bo:])."""
    ao, bo, o0, o1 = np.uint64(ao), np.uint64(bo), np.uint64(o0), np.uint64(o1)
    for i in range(np.uint64(n)):
        p, q = -a[ao + i], -a[bo + i]
        out[o0 + i] = p + q
        out[o1 + i] = p - q


@njit(cache=True)
def _middle_rows(a, r0, r1, r2, r3, sign, out, o0, o1, o2, o3, n):
    """With u = a[r0] + sign a[r2] and v = a[r1] + sign a[r3] (sign +1 or -1; runs of n from those offsets):
    out[o0] = u, out[o1] = u + v, out[o2] = u - v, out[o3] = -v (rows 4i .. 4i + 3 of A t A^T, i = 1, 2)."""
    r0, r1, r2, r3 = np.uint64(r0), np.uint64(r1), np.uint64(r2), np.uint64(r3)
    o0, o1, o2, o3 = np.uint64(o0), np.uint64(o1), np.uint64(o2), np.uint64(o3)
    if sign > 0:                        # two loops: each vectorises with no select inside
        for i in range(np.uint64(n)):
            u, v = a[r0 + i] + a[r2 + i], a[r1 + i] + a[r3 + i]
            out[o0 + i] = u
            out[o1 + i] = u + v
            out[o2 + i] = u - v
            out[o3 + i] = -v
    else:
        for i in range(np.uint64(n)):
            u, v = a[r0 + i] - a[r2 + i], a[r1 + i] - a[r3 + i]
            out[o0 + i] = u
            out[o1 + i] = u + v
            out[o2 + i] = u - v
            out[o3 + i] = -v


@njit(cache=True, fastmath={"reassoc"})
def grad_parity(src, th, tw, p, p_row, base, width, db):
    """p (4, p_row), flat: p[2a + b, base + f*width + ti*tw + tj] = src[f, 2ti + a, 2tj + b], 0 past src
    (F, Ho, Wo; one image's g, contiguous): the four entries of each 2x2 tile of g, apart; and db[f] +=
    the sum of src[f] (``reassoc`` vectorises that sum over the whole plane, in an order fixed at
    compile time). One call per image, by indices into the flat image: faster than a call per
    filter on row views, as this was; each row's even and odd columns split by kernels.spans.split_run
    (a row of 11 was too short for Numba's own vector loop)."""
    f_out, ho, wo = src.shape
    flat, plane, pairs = src.reshape(-1), np.uint64(ho * wo), np.uint64(wo // 2)
    like, fa, pa = np.zeros(1, src.dtype)[0], flat.ctypes.data, p.ctypes.data
    for f in range(f_out):
        at = np.uint64(f) * plane
        total = db[f]
        for i in range(plane):
            total += flat[at + i]
        db[f] = total
        for ti in range(th):
            for a in range(2):
                h = 2 * ti + a
                even = np.uint64((2 * a) * p_row + base + f * width + ti * tw)
                odd = even + np.uint64(p_row)
                if h >= ho:
                    for tj in range(np.uint64(tw)):
                        p[even + tj] = 0
                        p[odd + tj] = 0
                    continue
                line = at + np.uint64(h * wo)
                split_run(like, fa, line, pa, even, odd, pairs)        # the even and odd columns apart
                if wo % 2:
                    p[even + pairs] = flat[line + np.uint64(wo - 1)]
                    p[odd + pairs] = 0


#: The rows of A t A^T that are one entry of t each: (row, entry of t, sign). grad_tiles leaves them out;
#: backward weight multiplies grad_parity's rows for them, the signs folded into its final transform.
CORNERS = ((0, 0, 1), (3, 1, -1), (12, 2, -1), (15, 3, 1))


@njit(cache=True)
def grad_tiles(p, p_row, size, gg, row):
    """gg (16, row), flat: gg[k, col] = (A t A^T)[k] for the 2x2 tile t of column col < size of p
    (grad_parity's, rows p_row apart), for the 12 rows k that are not CORNERS: per row i of A, A t's
    row (t0 + t1, t0 - t1, ...: the sums the two matrix products make, in their order) then times A^T
    along the row, from p directly; a chunk of columns at a time, so that p's stay in the L1 cache."""
    for lo in range(0, size, CHUNK):
        n = min(CHUNK, size - lo)
        _add_sub(p, lo, p_row + lo, gg, row + lo, 2 * row + lo, n)                    # i = 0: t00 +- t01
        for i, sign in ((1, 1), (2, -1)):                                              # t0. +- t1.
            _middle_rows(p, lo, p_row + lo, 2 * p_row + lo, 3 * p_row + lo, sign, gg, 4 * i * row + lo,
                         (4 * i + 1) * row + lo, (4 * i + 2) * row + lo, (4 * i + 3) * row + lo, n)
        _neg_add_sub(p, 2 * p_row + lo, 3 * p_row + lo, gg, 13 * row + lo, 14 * row + lo, n)   # i = 3: -t10, -t11
