"""2-D convolution on the CPU: one image per Numba thread, im2col and a matrix product inside the thread.

Same maths as kernels.conv2d.reference (read that first). For one image n and one group, the
convolution is a matrix product ("im2col"):

    cols[(c*kh + p)*kw + q, i*Wo + j] = x[n, c, i*sh + p*dil_h - ph, j*sw + q*dil_w - pw]   (0 in the padding)

so row r of ``cols`` holds, for every output position, the input value that kernel entry
r = (c, p, q) multiplies. With the group's filters flattened to ``w_mat`` (F/groups, C/groups*kh*kw):

    forward          y[n] (F/groups, Ho*Wo)      = w_mat @ cols             (+ b, then relu if asked)
    backward input   dcols (C/groups*kh*kw, Ho*Wo) = w_mat.T @ g[n]         then col2im adds dcols into dx[n]
    backward weight  dw (F/groups, C/groups*kh*kw) += g[n] @ cols.T         summed over the images
                     (made as dw.T += cols @ g[n].T, with g[n] transposed: gemm reads its b by rows)

Why this layout (PyTorch's own CPU fallback works the same way): an image's ``cols`` (139 KB for the
Keras CNN's second convolution) stays in the core's cache between being written and being multiplied,
the product's result is already in NCHW order (no reshuffle), and the bias and ReLU are added while
the result is still in cache. Every product is kernels.microkernel.gemm, serial code inside the
Numba thread: the only thread pool is Numba's, and no product depends on which BLAS is installed or
which kernels it chose.

Threads never write to the same element: forward and backward input write their own image; backward
weight adds each image into the partial sum of its chunk (a fixed split of the batch, independent of
the number of threads) and the chunks are summed in order at the end. So results are identical run to
run, and do not depend on the thread count.

3x3 stride-1 convolutions with enough channels go through Winograd F(2x2, 3x3) instead
(winograd.py), direction by direction, as winograd.use_winograd says (WINOGRAD forces a path).

Under a 2x2 max pooling, ``backward_pooled`` starts from the pooling's gradient: the backward pass masks
and scatters each image's into its own scratch (_scatter_pooled) just before using it, so the full-size
gradient is never written to memory and read back.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .._cache import njit, sized
from .._jit import WEIGHT_CHUNKS, ZERO, weight_chunks  # noqa: F401 (WEIGHT_CHUNKS: lesson 1 shows it)
from .._recycle import empty as recycled
from ..activations import formulas
from ..microkernel import aligned_empty, gemm, whole_vectors
from ..pool2d import cpu as pool
from ..pool2d.windows import scatter_row, tiles_2x2
from . import winograd
from .columns import col2im as _col2im, col2im_plan, im2col as _im2col
from .pooled import by_parts
from .winograd import use_winograd

#: No BLAS call here or in winograd.py and columns.py (kernels.microkernel makes every product): the entry
#: points call these functions directly (kernels.runtime.host_kernels), and no result depends on the BLAS.
BLAS_FREE = True

#: Winograd F(2x2, 3x3) (winograd.py) instead of im2col: None follows winograd.use_winograd's rule
#: (also importable from here), True wherever it is eligible (all three directions), False never
#: (tests and lessons compare the paths).
WINOGRAD = None


def _by_winograd(weight_shape, geometry, direction):
    """Whether a call in ``direction`` goes through winograd.py: where eligible, as WINOGRAD forces or the rule says."""
    if not winograd.eligible(weight_shape, geometry):
        return False
    return use_winograd(weight_shape, geometry, direction) if WINOGRAD is None else bool(WINOGRAD)


@njit(cache=True, fastmath={"reassoc"})
def _add_row_sums(gg, hw, db, first):
    """db[first + f] += the sum of gg[f, :hw] for every row f. ``reassoc`` lets the compiler split each
    sum over the vector lanes (without it each addition waits for the one before: the loop is not
    vectorised); the order it picks is fixed at compile time, so the sums are the same on every run.
    One call for all the rows of an image."""
    for f in range(gg.shape[0]):
        total = ZERO
        for k in range(hw):
            total += gg[f, k]
        db[first + f] += total


#: Below this many rows of cols (C/groups * kh * kw), backward weight multiplies with _small_k_weight
#: instead of gemm: for a first convolution over a grey image (K = 9) gemm would need g[n] transposed
#: and its 9 rows padded to a whole block, and the loop below, dot products along Ho*Wo, is faster.
SMALL_K = 32


@njit(cache=True, fastmath={"reassoc", "contract"})
def _small_k_weight(gg, cols, dw):
    """dw (K, F) += cols (K, HW) @ gg (F, HW).T for small K (dw transposed, as gemm's path keeps it):
    four filters and two rows of cols at a time, eight running sums in registers, each loaded value
    used four (or two) times.

    ``reassoc`` lets the compiler split each sum over the vector lanes (so it vectorises); the order
    it picks is fixed at compile time, so results are still identical run to run, and each image's
    contribution does not depend on the thread count."""
    fg, hw = gg.shape
    kg = cols.shape[0]
    f4 = fg - fg % 4
    for f in range(0, f4, 4):
        r = 0
        while r + 1 < kg:
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = ZERO
            for k in range(hw):
                c, e = cols[r, k], cols[r + 1, k]
                g0, g1, g2, g3 = gg[f, k], gg[f + 1, k], gg[f + 2, k], gg[f + 3, k]
                a0 += g0 * c
                a1 += g1 * c
                a2 += g2 * c
                a3 += g3 * c
                b0 += g0 * e
                b1 += g1 * e
                b2 += g2 * e
                b3 += g3 * e
            dw[r, f] += a0
            dw[r, f + 1] += a1
            dw[r, f + 2] += a2
            dw[r, f + 3] += a3
            dw[r + 1, f] += b0
            dw[r + 1, f + 1] += b1
            dw[r + 1, f + 2] += b2
            dw[r + 1, f + 3] += b3
            r += 2
        if r < kg:                                   # an odd K: the last row of cols
            a0 = a1 = a2 = a3 = ZERO
            for k in range(hw):
                c = cols[r, k]
                a0 += gg[f, k] * c
                a1 += gg[f + 1, k] * c
                a2 += gg[f + 2, k] * c
                a3 += gg[f + 3, k] * c
            dw[r, f] += a0
            dw[r, f + 1] += a1
            dw[r, f + 2] += a2
            dw[r, f + 3] += a3
    for f in range(f4, fg):                          # the filters left over after the fours
        for r in range(kg):
            a0 = ZERO
            for k in range(hw):
                a0 += gg[f, k] * cols[r, k]
            dw[r, f] += a0


@njit(cache=True)
def _forward_images(x, w3, b, first, last, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, relu, y):
    """y[n] (F, Ho*Wo) = w_mat @ cols (+ b[f], then max(., 0) if relu) for images first .. last-1."""
    groups, fg, kg = w3.shape
    cg = kg // (kh * kw)
    padded = whole_vectors(ho * wo, x.itemsize)        # columns to whole vectors, the padding 0: see _backward_images
    cols = aligned_empty(kg, padded, x)
    cols[:, :] = 0
    prod = aligned_empty(fg, padded, x)
    for n in range(first, last):
        for grp in range(groups):
            _im2col(x, n, grp * cg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, cols)
            gemm(w3[grp], cols, prod, False)
            for f in range(fg):                         # the epilogue, while prod is in cache
                bias = b[grp * fg + f]
                row = y[n, grp * fg + f]
                if relu:
                    for k in range(ho * wo):
                        row[k] = formulas.relu(prod[f, k] + bias)
                else:
                    for k in range(ho * wo):
                        row[k] = prod[f, k] + bias


@njit(cache=True)
def _scatter_pooled(pg, py, gp, out, wo, gm):
    """gm[f, :Ho*Wo] = the 2x2 max pooling's gradient pg[f] (F, Ho//2, Wo//2), masked by the ReLU (0 where the
    pooled value py is not positive: written to gp), routed to the maximum of its window in out[f] (F, Ho*Wo:
    the fused ReLU's output, the pooling's input), 0 elsewhere: pool2d's max_scatter for one image, row by
    row of windows (scatter_row), into gm's rows while they are in cache."""
    f_all, out_h, out_w = gp.shape
    flat_g, flat_y, flat_p = pg.reshape(-1), py.reshape(-1), gp.reshape(-1)
    for k in range(flat_p.size):
        flat_p[k] = formulas.relu_backward(flat_g[k], flat_y[k])
    like = np.zeros(1, gm.dtype)[0]
    for f in range(f_all):
        xa, ga, da = out[f].ctypes.data, gp[f].ctypes.data, gm[f].ctypes.data
        for oh in range(out_h):
            top = 2 * oh * wo
            scatter_row(like, xa, top, top + wo, ga, oh * out_w, da, out_w)
            for w in range(2 * out_w, wo):               # an odd width: the column no window covers
                gm[f, top + w] = ZERO
                gm[f, top + wo + w] = ZERO
        for k in range(2 * out_h * wo, out.shape[1]):     # an odd height: the row no window covers
            gm[f, k] = ZERO


@njit(cache=True)
def _backward_images(g, out, masked, x, wt3, first, last, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo,
                     want_dx, want_dw, dx, dw, db, pg, py):
    """Images first .. last-1 of the backward pass, each read once while it is in cache:
    gm = g[n] (masked by the fused ReLU: 0 where out[n] = 0, when ``masked``); then, per group,
    dx[n] = col2im(w_mat.T @ gm) (when ``want_dx``; dx[n] is zeroed here first), dw[grp] (kg, fg) +=
    cols @ gm.T (when ``want_dw``: the chunk's dw, transposed, zeroed here first) and db[f] += the sum
    of gm[f]. ``pg`` (when not None): the gradient of a 2x2 max pooling of out, whose values are ``py``; gm is
    then pg masked by the ReLU and scattered to the windows' maxima (_scatter_pooled), and g is not read."""
    groups, kg, fg = dw.shape
    cg = kg // (kh * kw)
    hw = ho * wo
    # the Ho*Wo columns padded with zeros to whole vectors (121 -> 128 for the Keras CNN's conv2): every
    # product then takes gemm's fast path; the zeros add exact zeros to dw and db, dx ignores them
    padded = whole_vectors(hw, g.itemsize)
    gm = aligned_empty(groups * fg, padded, g)      # scratch: the columns past hw zeroed once,
    gn = aligned_empty(fg, padded, g)               # nothing below writes them
    cols = aligned_empty(kg, padded, g)
    dcols = aligned_empty(kg, padded, g)
    ggt = aligned_empty(padded if want_dw and kg > SMALL_K else 0, fg, g)
    plan = col2im_plan(dcols, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dx)
    for k in range(hw, padded):
        for f in range(groups * fg):
            gm[f, k] = 0
        for r in range(kg):
            cols[r, k] = 0
        if ggt.shape[0]:
            for f in range(fg):
                ggt[k, f] = 0
    if pg is not None:
        gp = np.empty(pg.shape[1:], dtype=g.dtype)       # an image's masked pooled gradient
    dw[:, :, :] = 0                                      # this chunk's own sums (recycled memory)
    db[:] = 0
    for n in range(first, last):
        gi = g[n]
        if pg is not None:
            _scatter_pooled(pg[n], py[n], gp, out[n], wo, gm)
            gi = gm
        elif masked:
            oi = out[n]
            for f in range(groups * fg):
                for k in range(hw):
                    gm[f, k] = formulas.relu_backward(gi[f, k], oi[f, k])
            gi = gm
        elif padded != hw:
            for f in range(groups * fg):
                for k in range(hw):
                    gm[f, k] = gi[f, k]
            gi = gm
        if want_dx:
            image = dx[n].reshape(-1)
            for k in range(image.size):
                image[k] = ZERO
        for grp in range(groups):
            if groups == 1:
                gg = gi                                  # the image's g is already the (F, padded) matrix
            else:
                for f in range(fg):                      # loops, not a slice assignment: Numba
                    for k in range(padded):              # compiles ~3 s of error formatting for one
                        gn[f, k] = gi[grp * fg + f, k]
                gg = gn
            if want_dx:
                gemm(wt3[grp], gg, dcols, False)
                _col2im(dcols, n, grp * cg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, dx, plan)
            if want_dw:
                _im2col(x, n, grp * cg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, cols)
                if kg <= SMALL_K:
                    _small_k_weight(gg, cols, dw[grp])
                else:                                    # dw[grp] (kg, fg) += cols @ gg.T: gemm reads gg.T by rows
                    for k in range(hw):
                        for f in range(fg):
                            ggt[k, f] = gg[f, k]
                    gemm(cols, ggt, dw[grp], True)
                _add_row_sums(gg, hw, db, grp * fg)


# The parallel drivers: one chunk of images per iteration, each chunk's work a serial function above
# (so that Numba compiles the products on plain contiguous arrays).

@njit(parallel=True, cache=True)
def _forward(x, w3, b, n_chunks, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, relu, y):
    per = (x.shape[0] + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _forward_images(x, w3, b, t * per, min(x.shape[0], (t + 1) * per), kh, kw, sh, sw, ph, pw, dil_h, dil_w,
                        ho, wo, relu, y)


@njit(parallel=True, cache=True)
def _backward(g, out, masked, x, wt3, n_chunks, kh, kw, sh, sw, ph, pw, dil_h, dil_w, ho, wo, want_dx, want_dw,
              dx, dw_part, db_part, pg, py):
    per = (g.shape[0] + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _backward_images(g, out, masked, x, wt3, t * per, min(g.shape[0], (t + 1) * per), kh, kw, sh, sw, ph, pw,
                         dil_h, dil_w, ho, wo, want_dx, want_dw, dx, dw_part[t], db_part[t], pg, py)


@njit(parallel=True, cache=True)
def _sum_parts(dw_part, db_part, dw, db):
    """dw[grp * fg + f, r] = dw_part[0, grp, r, f] + dw_part[1, grp, r, f] + ..., in chunk order (the same
    bits whatever the thread count), transposed back to (F, C/groups * kh * kw); db the sum of db_part's
    rows, in the same order. The sums are made in dw_part[0] (scratch), along rows of f."""
    n_chunks, groups, kg, fg = dw_part.shape
    for r in prange(kg):
        for grp in range(groups):
            total = dw_part[0, grp, r]
            for t in range(1, n_chunks):
                part = dw_part[t, grp, r]
                for f in range(fg):
                    total[f] += part[f]
            for f in range(fg):
                dw[grp * fg + f, r] = total[f]
    for f in range(db.size):
        total_b = db_part[0, f]
        for t in range(1, n_chunks):
            total_b += db_part[t, f]
        db[f] = total_b


def _chunks(n):
    """How many chunks of images a call splits the batch into: a few per thread, so that a thread
    slowed by another process leaves less work waiting (forward and backward input)."""
    return max(1, min(n, 4 * numba.get_num_threads()))


def _geometry_args(geometry):
    return (*geometry.stride, *geometry.padding, *geometry.dilation)


def forward(x, w, b, geometry, relu=False):
    """y (N, F, Ho, Wo) = conv2d(x, w) + b, then max(y, 0) when ``relu``: see the module docstring
    (by Winograd where _by_winograd says)."""
    if _by_winograd(w.shape, geometry, "forward"):
        return winograd.forward(x, w, b, geometry, relu)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    n, c, height, width = x.shape
    f, cg, kh, kw = w.shape
    groups = geometry.groups
    ho, wo = geometry.output_hw(height, width, (kh, kw))
    w3 = w.reshape(groups, f // groups, cg * kh * kw)
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b)   # no bias: add zeros
    y = recycled((n, f, ho, wo), x.dtype)
    _forward(x, w3, bias, _chunks(n), kh, kw, *_geometry_args(geometry), ho, wo, bool(relu), y.reshape(n, f, ho * wo))
    return y


def _backward_pass(g, x, w, input_shape, weight_shape, geometry, input_grad, weight_grad, relu_out, pg=None, py=None):
    """(dx, dw, db) from one pass over the images (_backward_images). ``x`` is read only for dw and
    ``w`` only for dx (each may be None when its gradient is not asked for). dw and db are summed in
    fixed chunks of images, in chunk order: the same sums whatever the number of threads. ``pg``: the gradient
    of a 2x2 max pooling of relu_out, whose values are ``py``, masked and scattered image by image (g is then
    relu_out)."""
    n, c, height, width = input_shape
    f, cg, kh, kw = weight_shape
    groups, fg, kg = geometry.groups, f // geometry.groups, cg * kh * kw
    ho, wo = g.shape[2], g.shape[3]
    dtype = g.dtype
    g = np.ascontiguousarray(g).reshape(n, f, ho * wo)
    masked = relu_out is not None
    out = np.ascontiguousarray(relu_out).reshape(n, f, ho * wo) if masked else np.empty((0, 0, 0), dtype=dtype)
    x = np.ascontiguousarray(x) if weight_grad else np.empty((0, 0, 0, 0), dtype=dtype)
    wt3 = (np.ascontiguousarray(np.asarray(w).reshape(groups, fg, kg).transpose(0, 2, 1)) if input_grad
           else np.empty((0, 0, 0), dtype=dtype))
    n_chunks = weight_chunks(n) if weight_grad else _chunks(n)
    dx = recycled((n, c, height, width), dtype) if input_grad else np.empty((0, 0, 0, 0), dtype=dtype)
    dw_part = recycled((n_chunks, groups, kg, fg), dtype)     # transposed; each chunk zeroes its own part first
    db_part = recycled((n_chunks, f), dtype)
    if pg is not None:
        pg, py = np.ascontiguousarray(pg), np.ascontiguousarray(py)
    _backward(g, out, masked, x, wt3, n_chunks, kh, kw, *_geometry_args(geometry), ho, wo, bool(input_grad),
              bool(weight_grad), dx, dw_part, db_part, pg, py)
    if not weight_grad:
        return dx, None, None
    dw, db = np.empty((f, kg), dtype), np.empty(f, dtype)
    sized(_sum_parts, dw_part.size)(dw_part, db_part, dw, db)
    return (dx if input_grad else None), dw.reshape(f, cg, kh, kw), db


def relu_grad(g, out):
    """g where the fused ReLU's output ``out`` is positive, else 0: the gradient that reaches the
    convolution under relu (relu'(0) = 0); winograd.py's loop, shared by both paths."""
    return winograd.relu_grad(g, out)


def backward(g, x, w, geometry, input_grad, weight_grad, relu_out):
    """(dx, dw, db); dx is None unless ``input_grad``, dw and db are None unless ``weight_grad``. Each
    gradient goes the way _by_winograd says for its direction. Both by im2col: one pass over g (and
    relu_out), each image's g masked by the fused ReLU's output (when given) and used for both
    products while it is in cache. Otherwise g is masked once (relu_grad) and each gradient made on
    its own path from it (measured on conv2: im2col's dx and Winograd's dw beat the one pass)."""
    by_dx = input_grad and _by_winograd(w.shape, geometry, "backward input")
    by_dw = weight_grad and _by_winograd(w.shape, geometry, "backward weight")
    if not (by_dx or by_dw):
        return _backward_pass(g, x, w, x.shape, w.shape, geometry, input_grad, weight_grad, relu_out)
    if by_dx == input_grad and by_dw == weight_grad:
        return winograd.backward(g, x, w, geometry, input_grad, weight_grad, relu_out)
    if relu_out is not None:
        g = relu_grad(g, relu_out)
    dx = winograd.backward_input(g, w, x.shape, geometry) if by_dx else None
    if input_grad and not by_dx:
        dx = _backward_pass(g, None, w, x.shape, w.shape, geometry, True, False, None)[0]
    if by_dw:
        return dx, *winograd.backward_weight(g, x, w.shape, geometry, True)
    return dx, *_backward_pass(g, x, None, x.shape, w.shape, geometry, False, True, None)[1:]


def backward_pooled(g, pooled, x, w, relu_out, geometry, pool_geometry, input_grad, weight_grad):
    """(dx, dw, db) of the convolution under its fused ReLU and a max pooling, from the pooling's gradient ``g``
    and output ``pooled`` (kernels.conv2d.backward_pooled): where both gradients go by im2col and the windows
    are 2x2 with stride 2, one pass that masks and scatters each image's g while it is in cache (the
    full-size gradient is never stored); elsewhere the mask, the pooling's scatter, then backward."""
    if (not tiles_2x2(pool_geometry) or (input_grad and _by_winograd(w.shape, geometry, "backward input"))
            or (weight_grad and _by_winograd(w.shape, geometry, "backward weight"))):
        return by_parts(relu_grad, pool.max_scatter, backward, g, pooled, x, w, relu_out, geometry, pool_geometry,
                        input_grad, weight_grad)
    return _backward_pass(relu_out, x, w, x.shape, w.shape, geometry, input_grad, weight_grad, relu_out, g, pooled)


def backward_input(g, w, input_shape, geometry):
    """dx of input_shape: per image, dcols = w_mat.T @ g[n] (gemm), then col2im adds dcols into dx[n]
    (by Winograd where _by_winograd says)."""
    if _by_winograd(w.shape, geometry, "backward input"):
        return winograd.backward_input(g, w, input_shape, geometry)
    return _backward_pass(g, None, w, tuple(input_shape), w.shape, geometry, True, False, None)[0]


def backward_weight(g, x, weight_shape, geometry, bias):
    """(dw, db): per image g[n] @ cols.T (gemm), summed in fixed chunks; db the sums of g (None without
    bias). By Winograd where _by_winograd says."""
    if _by_winograd(weight_shape, geometry, "backward weight"):
        return winograd.backward_weight(g, x, weight_shape, geometry, bias)
    _, dw, db = _backward_pass(g, x, None, x.shape, tuple(weight_shape), geometry, False, True, None)
    return dw, (db if bias else None)


