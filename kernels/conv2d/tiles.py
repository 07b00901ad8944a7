"""The three directions of the convolution as tiled matrix products in shared memory (numba.cuda),
for ``groups == 1`` (cuda.py keeps the one-thread-per-element gather kernels for grouped ones).

Each direction is a product whose operands are never formed (implicit GEMM): with K = C kh kw and the
columns (n, i, j) of the output,

    forward          y[f, (n,i,j)]  = sum_k  W[f, k] X[k, (n,i,j)]              (+ b[f], then the ReLU)
    backward weight  dw[f, k]       = sum_(n,i,j) g[n, f, i, j] X[k, (n,i,j)]       (split-K: see below)
    backward input   dx[c, (n,h,v)] = sum_(f,p,q) w[f, c, p, q] G[(f,p,q), (n,h,v)]

where X[(c,p,q), (n,i,j)] = x[n, c, i*sh + p*dh - ph, j*sw + q*dw - pw] (0 in the padding) is the
im2col matrix, read from x as it is needed, and G[(f,p,q), (n,h,v)] = g[n, f, i, j] for the output
(i, j) whose window reads x[n, c, h, v] through offset (p, q) (0 when there is none).

Two variants, chosen at call time by ``VARIANT``:

``"blocked"``: register blocking. A block of TY x TX threads computes a BM x BN tile of
the result (BM = TM TY, BN = TN TX), each thread a TM x TN sub-tile held in registers (a local array
indexed only by unrolled loops), its rows ty + r TY and columns tx + c TX (so that a warp reads
neighbouring words of shared memory and writes neighbouring outputs). At each step along the inner
dimension the block loads a BK x BM tile of the left operand and a BK x BN tile of the right one into
shared memory (each thread a few elements; consecutive threads read consecutive addresses of the
operand's contiguous axis), waits (``syncthreads``), and every thread does BK TM TN multiply-adds
from TM + TN shared reads per k; a second wait guards the next load. What a thread loads is fixed
but for the inner index, so the divisions that decompose an index run once per kernel: along the
inner dimension the digits (c, p, q), (f, p, q) or (n, i, j) advance by a constant step with carries.
The block's shape (TY, TX) is picked per call from ``SHAPES``, the one with the least padding (32
filters or channels fill a 32-row tile, not half a 64-row one).

``"simple"`` (the default): one output per thread, a TILE x TILE block (kernels.dense's TILE) computing a
TILE x TILE tile, one element of each operand per thread and step. It is the default because it is the
one that has run on a GPU: "blocked" is checked against the reference in Numba's simulator only (no GPU
was lent when it was written). ``benchmarks/gpu.py`` runs both variants' tests on the device and
measures both against cuDNN; make "blocked" the default once it passes there and is faster.

Sums run in a fixed order (k ascending, one term at a time, in both variants): no atomics, the same
result every run. Backward weight's result is small (F x C kh kw: 64 x 288 for the Keras CNN's second
layer, 32 x 9 for its first) and its inner dimension long (N Ho Wo: 692,224 for the first at batch
1024): its tiles alone would keep a few blocks busy. So the inner dimension is cut into pieces
(``splits``), one block per tile and piece (the grid's third axis), each writing its partial product,
and a second kernel adds the pieces in order (split-K).
"""
from __future__ import annotations

import numpy as np
from numba import config, cuda, float32, float64, int64, uint64

from .._cuda import launch_config
from ..activations import formulas
from ..dense.cuda import TILE
from .tiles_simple import make_simple

#: Which kernels run: "simple" (one output per thread, the default: the variant run on a GPU so far) or
#: "blocked" (register-blocked; simulator-tested only, see above).
VARIANT = "simple"

#: The blocked variant's tiles: each thread TM x TN outputs; BK along the inner dimension per step;
#: the block's (TY, TX) threads from SHAPES. Smaller in the simulator (every thread a Python thread),
#: so that the tests' tiny shapes still span several blocks and partial tiles.
if config.ENABLE_CUDASIM:
    TM = TN = 2
    BK = 4
    SHAPES = ((4, 4), (2, 8), (8, 2))
else:
    TM = TN = 4
    BK = 8
    SHAPES = ((16, 16), (8, 32), (32, 8))
#: Padding of the shared tiles' rows, so that the k-fastest stores of a warp hit distinct banks.
PAD = 4

#: Backward weight's split-K (``splits``): about this many blocks in all, at least MIN_TILES tiles each.
TARGET_BLOCKS, MIN_TILES = 512, 8


@cuda.jit(device=True, inline="always")
def _advance(a, b, c, da, db, dc, nb, nc):
    """The mixed-radix number (a, b, c) (digits b < nb, c < nc) plus (da, db, dc) (db < nb, dc < nc)."""
    c += dc
    if c >= nc:
        c -= nc
        b += 1
    b += db
    if b >= nb:
        b -= nb
        a += 1
    return a + da, b, c


def _make_blocked(dtype, ty_threads, tx_threads):
    """The "blocked" variant's three kernels for one dtype and block shape (TY, TX): see the module's text."""
    TY, TX = ty_threads, tx_threads
    THREADS, BM, BN = TY * TX, TM * TY, TN * TX
    K_ROWS = THREADS // BK            # k fastest (consecutive threads, consecutive k): rows per pass
    COL_ROWS = THREADS // BN          # columns fastest: k rows per pass
    A_LOADS, B_LOADS, BT_LOADS = BM // K_ROWS, BK // COL_ROWS, BN // K_ROWS
    assert THREADS % BK == 0 and THREADS % BN == 0 and BM % K_ROWS == 0 and BN % K_ROWS == 0
    assert BK % COL_ROWS == 0
    LDA, LDB = BM + PAD, BN + PAD                  # the shared tiles As[kk, m], Bs[kk, n], flat: row lengths
    A_SIZE, B_SIZE = BK * LDA, BK * LDB            # (literal sizes for cuda.shared.array)
    U_BK, U_LDA, U_LDB, U_TY, U_TX = (np.uint64(v) for v in (BK, LDA, LDB, TY, TX))

    @cuda.jit(device=True, inline="always")
    def multiply(As, Bs, acc, ty, tx):
        """acc += the block's two shared tiles' product at this thread's TM x TN outputs, between the waits.
        The tiles are read with unsigned indices: Numba then adds no negative-index wraparound, and the
        compiler folds each row's offsets into the loads."""
        a = cuda.local.array(TM, dtype)
        b = cuda.local.array(TN, dtype)
        uty, utx = uint64(ty), uint64(tx)
        cuda.syncthreads()
        for kk in range(U_BK):
            ia, ib = kk * U_LDA + uty, kk * U_LDB + utx
            for r in range(TM):
                a[r] = As[ia + uint64(r) * U_TY]
            for s in range(TN):
                b[s] = Bs[ib + uint64(s) * U_TX]
            for r in range(TM):
                for s in range(TN):
                    acc[r, s] += a[r] * b[s]
        cuda.syncthreads()

    @cuda.jit
    def forward(x, w2, b, kh, kw, sh, sw, ph, pw, dh, dw, relu, zero, y):
        """y = W X (+ b, ReLU); w2 is w as (F, C kh kw)."""
        As = cuda.shared.array(A_SIZE, dtype)
        Bs = cuda.shared.array(B_SIZE, dtype)
        acc = cuda.local.array((TM, TN), dtype)
        t = cuda.threadIdx.x
        ty, tx = t // TX, t % TX
        n_images, n_filters, ho, wo = y.shape
        channels, height, width = x.shape[1], x.shape[2], x.shape[3]
        inner, columns, khkw = w2.shape[1], n_images * ho * wo, kh * kw
        row0, col0 = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN
        a_k, a_row = t % BK, t // BK                   # W: this thread's k in the step, first row
        b_k, b_col = t // BN, t % BN                   # X: first k in the step, column
        col = col0 + b_col
        n = col // (ho * wo)
        i = (col % (ho * wo)) // wo
        j = col % wo
        col_ok = col < columns
        h0, v0 = i * sh - ph, j * sw - pw
        c, p, q = b_k // khkw, (b_k % khkw) // kw, b_k % kw                     # (c, p, q) of k = b_k
        sc, sp, sq = COL_ROWS // khkw, (COL_ROWS % khkw) // kw, COL_ROWS % kw   # ... and of the stride
        for r in range(TM):
            for s in range(TN):
                acc[r, s] = zero
        for k0 in range(0, inner, BK):
            k = k0 + a_k
            for e in range(A_LOADS):
                f = row0 + a_row + e * K_ROWS
                As[a_k * LDA + a_row + e * K_ROWS] = w2[f, k] if f < n_filters and k < inner else zero
            for e in range(B_LOADS):
                value = zero
                if col_ok and c < channels:                                       # c < C: k < K
                    h, v = h0 + p * dh, v0 + q * dw
                    if 0 <= h < height and 0 <= v < width:
                        value = x[n, c, h, v]
                Bs[(b_k + e * COL_ROWS) * LDB + b_col] = value
                c, p, q = _advance(c, p, q, sc, sp, sq, kh, kw)
            multiply(As, Bs, acc, ty, tx)
        for s in range(TN):
            col = col0 + tx + s * TX
            if col < columns:
                n = col // (ho * wo)
                i = (col % (ho * wo)) // wo
                j = col % wo
                for r in range(TM):
                    f = row0 + ty + r * TY
                    if f < n_filters:
                        value = acc[r, s] + b[f]
                        y[n, f, i, j] = formulas.relu(value) if relu else value

    @cuda.jit
    def backward_input(g, w, sh, sw, ph, pw, dh, dw, zero, dx):
        """dx = W' G, W'[c, (f,p,q)] = w[f, c, p, q]."""
        As = cuda.shared.array(A_SIZE, dtype)
        Bs = cuda.shared.array(B_SIZE, dtype)
        acc = cuda.local.array((TM, TN), dtype)
        t = cuda.threadIdx.x
        ty, tx = t // TX, t % TX
        n_images, channels, height, width = dx.shape
        n_filters, ho, wo = g.shape[1], g.shape[2], g.shape[3]
        kh, kw = w.shape[2], w.shape[3]
        khkw = kh * kw
        inner, columns = n_filters * khkw, n_images * height * width
        unit = sh == 1 and sw == 1
        row0, col0 = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN
        a_k, a_row = t % BK, t // BK
        fa, pa, qa = a_k // khkw, (a_k % khkw) // kw, a_k % kw                   # (f, p, q) of W's k
        ka, pka, qka = BK // khkw, (BK % khkw) // kw, BK % kw                     # ... and of a step
        b_k, b_col = t // BN, t % BN
        col = col0 + b_col
        n = col // (height * width)
        hb = (col % (height * width)) // width + ph
        vb = col % width + pw
        col_ok = col < columns
        fb, pb, qb = b_k // khkw, (b_k % khkw) // kw, b_k % kw                   # (f, p, q) of G's k
        sf, sp, sq = COL_ROWS // khkw, (COL_ROWS % khkw) // kw, COL_ROWS % kw
        for r in range(TM):
            for s in range(TN):
                acc[r, s] = zero
        for k0 in range(0, inner, BK):
            for e in range(A_LOADS):
                c = row0 + a_row + e * K_ROWS
                As[a_k * LDA + a_row + e * K_ROWS] = w[fa, c, pa, qa] if c < channels and fa < n_filters else zero
            fa, pa, qa = _advance(fa, pa, qa, ka, pka, qka, kh, kw)
            for e in range(B_LOADS):
                value = zero
                if col_ok and fb < n_filters:
                    ti, tj = hb - pb * dh, vb - qb * dw       # = i*sh and j*sw if output (i, j) reads here
                    if ti >= 0 and tj >= 0:
                        if unit:
                            if ti < ho and tj < wo:
                                value = g[n, fb, ti, tj]
                        elif ti % sh == 0 and tj % sw == 0 and ti // sh < ho and tj // sw < wo:
                            value = g[n, fb, ti // sh, tj // sw]
                Bs[(b_k + e * COL_ROWS) * LDB + b_col] = value
                fb, pb, qb = _advance(fb, pb, qb, sf, sp, sq, kh, kw)
            multiply(As, Bs, acc, ty, tx)
        for s in range(TN):
            col = col0 + tx + s * TX
            if col < columns:
                n = col // (height * width)
                h = (col % (height * width)) // width
                v = col % width
                for r in range(TM):
                    c = row0 + ty + r * TY
                    if c < channels:
                        dx[n, c, h, v] = acc[r, s]

    @cuda.jit
    def backward_weight(g, x, kh, kw, sh, sw, ph, pw, dh, dw, zero, tiles_per_split, partial):
        """partial[z, f, k] = the sum over split z's steps of the inner dimension (split-K)."""
        As = cuda.shared.array(A_SIZE, dtype)
        Bs = cuda.shared.array(B_SIZE, dtype)
        acc = cuda.local.array((TM, TN), dtype)
        xc = cuda.local.array(BT_LOADS, int64)         # this thread's columns of X^T: c, and the
        xh = cuda.local.array(BT_LOADS, int64)         # offsets p*dh - ph and q*dw - pw
        xv = cuda.local.array(BT_LOADS, int64)
        t = cuda.threadIdx.x
        ty, tx = t // TX, t % TX
        n_filters, columns = partial.shape[1], partial.shape[2]
        n_images, ho, wo = g.shape[0], g.shape[2], g.shape[3]
        channels, height, width = x.shape[1], x.shape[2], x.shape[3]
        khkw, hw = kh * kw, ho * wo
        inner = n_images * hw
        row0, col0, z = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN, cuda.blockIdx.z
        a_k, a_row = t % BK, t // BK                   # both operands: k fastest, this thread's k
        for e in range(BT_LOADS):
            k = col0 + a_row + e * K_ROWS
            xc[e] = k // khkw if k < columns else channels        # channels: no column here
            xh[e] = ((k % khkw) // kw) * dh - ph
            xv[e] = (k % kw) * dw - pw
        first = z * tiles_per_split
        last = min(first + tiles_per_split, (inner + BK - 1) // BK)
        m = first * BK + a_k
        n, i, j = m // hw, (m % hw) // wo, m % wo                                 # (n, i, j) of m
        sn, si, sj = BK // hw, (BK % hw) // wo, BK % wo                           # ... and of a step
        for r in range(TM):
            for s in range(TN):
                acc[r, s] = zero
        for step in range(first, last):
            ok = n < n_images                                                     # m < N Ho Wo
            for e in range(A_LOADS):
                f = row0 + a_row + e * K_ROWS
                As[a_k * LDA + a_row + e * K_ROWS] = g[n, f, i, j] if ok and f < n_filters else zero
            ish, jsw = i * sh, j * sw
            for e in range(BT_LOADS):
                value = zero
                c = xc[e]
                if ok and c < channels:
                    h, v = ish + xh[e], jsw + xv[e]
                    if 0 <= h < height and 0 <= v < width:
                        value = x[n, c, h, v]
                Bs[a_k * LDB + a_row + e * K_ROWS] = value
            n, i, j = _advance(n, i, j, sn, si, sj, ho, wo)
            multiply(As, Bs, acc, ty, tx)
        for r in range(TM):
            f = row0 + ty + r * TY
            if f < n_filters:
                for s in range(TN):
                    k = col0 + tx + s * TX
                    if k < columns:
                        partial[z, f, k] = acc[r, s]

    return forward, backward_weight, backward_input


_SIMPLE = {np.dtype(np.float32): make_simple(float32), np.dtype(np.float64): make_simple(float64)}
_NUMBA_TYPES = {np.dtype(np.float32): float32, np.dtype(np.float64): float64}
_BLOCKED = {}


def _blocked(dtype, rows, columns):
    """(kernels, threads per block, grid of (columns, rows) blocks) of the blocked variant for a rows x columns
    result, in the block shape of SHAPES that pads the result least (the first of equals)."""
    def padded(shape):
        bm, bn = TM * shape[0], TN * shape[1]
        return -(-rows // bm) * bm * (-(-columns // bn) * bn)
    shape = min(SHAPES, key=padded)
    key = (np.dtype(dtype), shape)
    if key not in _BLOCKED:
        _BLOCKED[key] = _make_blocked(_NUMBA_TYPES[key[0]], *shape)
    grid = (-(-columns // (TN * shape[1])), -(-rows // (TM * shape[0])))
    return _BLOCKED[key], shape[0] * shape[1], grid


def _grid(rows, columns):
    return ((columns + TILE - 1) // TILE, (rows + TILE - 1) // TILE), (TILE, TILE)


def _variant():
    if VARIANT not in ("blocked", "simple"):
        raise ValueError(f"tiles.VARIANT must be 'blocked' or 'simple', got {VARIANT!r}")
    return VARIANT


def forward(x, w, b, geometry, relu, y):
    """y (device, (N, F, Ho, Wo)) = conv2d(x, w) + b (then the ReLU), x, w, b numba device arrays."""
    n, f, ho, wo = y.shape
    dtype = np.dtype(y.dtype)
    args = (*geometry.stride, *geometry.padding, *geometry.dilation, bool(relu), dtype.type(0), y)
    if _variant() == "simple":
        _SIMPLE[dtype][0][_grid(f, n * ho * wo)](x, w, b, *args)
        return
    _, c, kh, kw = w.shape
    kernels, threads, grid = _blocked(dtype, f, n * ho * wo)
    kernels[0][grid, threads](x, w.reshape((f, c * kh * kw)), b, kh, kw, *args)


def splits(blocks, inner_tiles):
    """How many pieces backward weight cuts its inner dimension (N Ho Wo, long) into: enough for about
    TARGET_BLOCKS blocks in all (a GPU has ~100 multiprocessors; F x C kh kw alone gives few tiles),
    each piece keeping at least MIN_TILES tiles of work."""
    return max(1, min(-(-TARGET_BLOCKS // max(blocks, 1)), inner_tiles // MIN_TILES))


def backward_weight(g, x, geometry, dw, pieces=None):
    """dw (device, (F, C, kh, kw)) from g and x (numba device arrays): split-K, each of ``pieces`` blocks
    along the inner dimension writes its partial product, and one thread per dw element adds them up
    in order (no atomics: the same result every run)."""
    f, c, kh, kw = dw.shape
    dtype = np.dtype(dw.dtype)
    n, _, ho, wo = g.shape
    if _variant() == "simple":
        kernel, step = _SIMPLE[dtype][1], TILE
        grid, block = _grid(f, c * kh * kw)
    else:
        kernels, block, grid = _blocked(dtype, f, c * kh * kw)
        kernel, step = kernels[1], BK
    inner_tiles = -(-(n * ho * wo) // step)
    pieces = splits(grid[0] * grid[1], inner_tiles) if pieces is None else int(pieces)
    per_piece = -(-inner_tiles // pieces)
    partial = cuda.device_array((pieces, f, c * kh * kw), dtype=dtype)
    kernel[(grid[0], grid[1], pieces), block](g, x, kh, kw, *geometry.stride, *geometry.padding, *geometry.dilation,
                                              dtype.type(0), per_piece, partial)
    flat = dw.reshape((f, c * kh * kw))
    _sum_pieces_kernel[launch_config(flat.size)](partial, flat)


@cuda.jit
def _sum_pieces_kernel(partial, out):
    t = cuda.grid(1)
    rows, cols = out.shape
    if t < rows * cols:
        acc = partial[0, t // cols, t % cols]
        for z in range(1, partial.shape[0]):
            acc += partial[z, t // cols, t % cols]
        out[t // cols, t % cols] = acc


def backward_input(g, w, geometry, dx):
    """dx (device, (N, C, H, W)) from g and w (numba device arrays)."""
    n, c, height, width = dx.shape
    dtype = np.dtype(dx.dtype)
    args = (*geometry.stride, *geometry.padding, *geometry.dilation, dtype.type(0), dx)
    if _variant() == "simple":
        _SIMPLE[dtype][2][_grid(c, n * height * width)](g, w, *args)
    else:
        kernels, threads, grid = _blocked(dtype, c, n * height * width)
        kernels[2][grid, threads](g, w, *args)
