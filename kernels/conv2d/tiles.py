"""The three directions of the convolution as tiled matrix products in shared memory (numba.cuda),
for ``groups == 1`` (cuda.py keeps the one-thread-per-element gather kernels for grouped ones).

Each direction is a product whose operands are never formed (implicit GEMM): with K = C kh kw and the
columns (n, i, j) of the output,

    forward          y[f, (n,i,j)]  = sum_k  W[f, k] X[k, (n,i,j)]              (+ b[f], then the ReLU)
    backward weight  dw[f, k]       = sum_(n,i,j) g[n, f, i, j] X[k, (n,i,j)]       (split-K: see below)
    backward input   dx[c, (n,h,v)] = sum_(f,p,q) w[f, c, p, q] G[(f,p,q), (n,h,v)]

where X[(c,p,q), (n,i,j)] = x[n, c, i*sh + p*dh - ph, j*sw + q*dw - pw] (0 in the padding) is the
im2col matrix, read from x as it is needed, and G[(f,p,q), (n,h,v)] = g[n, f, i, j] for the output
(i, j) whose window reads x[n, c, h, v] through offset (p, q) (0 when there is none). A block of
TILE x TILE threads computes a TILE x TILE tile of the result: at each step along the inner dimension
it loads one tile of each operand into shared memory (every thread one element of each), waits for
the block (``syncthreads``), multiplies the tiles, and waits again before the next load. Each
operand element is then read from global memory once per tile instead of once per term, and
neighbouring threads read neighbouring columns (coalesced). Sums run in a fixed order: no atomics,
the same result every run. TILE is kernels.dense's (16 on a GPU, 4 in the simulator).

Backward weight's result is small (F x C kh kw: 64 x 288 for the Keras CNN's second layer, 32 x 9 for
its first) and its inner dimension long (N Ho Wo: 692,224 for the first at batch 1024): its tiles
alone would keep 2 to 72 blocks busy. So the inner dimension is cut into pieces (``splits``), one
block per tile and piece (the grid's third axis), each writing its partial product, and a second
kernel adds the pieces in order (split-K).
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32, float64

from .._cuda import launch_config
from ..activations import formulas
from ..dense.cuda import TILE, accumulate_tile

#: Backward weight's split-K (``splits``): about this many blocks in all, at least MIN_TILES tiles each.
TARGET_BLOCKS, MIN_TILES = 512, 8


def _make(dtype):
    @cuda.jit
    def forward(x, w, b, sh, sw, ph, pw, dh, dw, relu, zero, y):
        sa = cuda.shared.array((TILE, TILE), dtype)
        sb = cuda.shared.array((TILE, TILE), dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        n_images, n_filters, ho, wo = y.shape
        channels, height, width = x.shape[1], x.shape[2], x.shape[3]
        kh, kw = w.shape[2], w.shape[3]
        inner, columns = channels * kh * kw, n_images * ho * wo
        f = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        n, i, j = col // (ho * wo), (col % (ho * wo)) // wo, col % wo
        acc = zero
        for t in range((inner + TILE - 1) // TILE):
            k = t * TILE + tx
            sa[ty, tx] = w[f, k // (kh * kw), (k % (kh * kw)) // kw, k % kw] if f < n_filters and k < inner else zero
            k = t * TILE + ty
            value = zero
            if col < columns and k < inner:
                c, p, q = k // (kh * kw), (k % (kh * kw)) // kw, k % kw
                h, v = i * sh + p * dh - ph, j * sw + q * dw - pw
                if 0 <= h < height and 0 <= v < width:
                    value = x[n, c, h, v]
            sb[ty, tx] = value
            acc = accumulate_tile(sa, sb, ty, tx, acc)
        if f < n_filters and col < columns:
            acc += b[f]
            y[n, f, i, j] = formulas.relu(acc) if relu else acc

    @cuda.jit
    def backward_weight(g, x, kh, kw, sh, sw, ph, pw, dh, dw, zero, tiles_per_split, partial):
        """partial[z, f, k] = the sum over split z's tiles of the inner dimension (split-K)."""
        sa = cuda.shared.array((TILE, TILE), dtype)
        sb = cuda.shared.array((TILE, TILE), dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        n_filters, columns = partial.shape[1], partial.shape[2]
        n_images, ho, wo = g.shape[0], g.shape[2], g.shape[3]
        height, width = x.shape[2], x.shape[3]
        inner = n_images * ho * wo
        f = cuda.blockIdx.y * TILE + ty
        k = cuda.blockIdx.x * TILE + tx
        z = cuda.blockIdx.z
        c, p, q = k // (kh * kw), (k % (kh * kw)) // kw, k % kw
        acc = zero
        first = z * tiles_per_split
        for t in range(first, min(first + tiles_per_split, (inner + TILE - 1) // TILE)):
            col = t * TILE + tx
            value = zero
            if f < n_filters and col < inner:
                value = g[col // (ho * wo), f, (col % (ho * wo)) // wo, col % wo]
            sa[ty, tx] = value
            col = t * TILE + ty
            value = zero
            if k < columns and col < inner:
                n, i, j = col // (ho * wo), (col % (ho * wo)) // wo, col % wo
                h, v = i * sh + p * dh - ph, j * sw + q * dw - pw
                if 0 <= h < height and 0 <= v < width:
                    value = x[n, c, h, v]
            sb[ty, tx] = value
            acc = accumulate_tile(sa, sb, ty, tx, acc)
        if f < n_filters and k < columns:
            partial[z, f, k] = acc

    @cuda.jit
    def backward_input(g, w, sh, sw, ph, pw, dh, dw, zero, dx):
        sa = cuda.shared.array((TILE, TILE), dtype)
        sb = cuda.shared.array((TILE, TILE), dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        n_images, channels, height, width = dx.shape
        n_filters, ho, wo = g.shape[1], g.shape[2], g.shape[3]
        kh, kw = w.shape[2], w.shape[3]
        inner, columns = n_filters * kh * kw, n_images * height * width
        c = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        n, h, v = col // (height * width), (col % (height * width)) // width, col % width
        acc = zero
        for t in range((inner + TILE - 1) // TILE):
            k = t * TILE + tx
            sa[ty, tx] = w[k // (kh * kw), c, (k % (kh * kw)) // kw, k % kw] if c < channels and k < inner else zero
            k = t * TILE + ty
            value = zero
            if col < columns and k < inner:
                f, p, q = k // (kh * kw), (k % (kh * kw)) // kw, k % kw
                ti, tj = h + ph - p * dh, v + pw - q * dw          # = i*sh and j*sw if output (i, j) reads here
                if ti >= 0 and tj >= 0 and ti % sh == 0 and tj % sw == 0 and ti // sh < ho and tj // sw < wo:
                    value = g[n, f, ti // sh, tj // sw]
            sb[ty, tx] = value
            acc = accumulate_tile(sa, sb, ty, tx, acc)
        if c < channels and col < columns:
            dx[n, c, h, v] = acc

    return forward, backward_weight, backward_input


_KERNELS = {np.dtype(np.float32): _make(float32), np.dtype(np.float64): _make(float64)}


def _grid(rows, columns):
    return ((columns + TILE - 1) // TILE, (rows + TILE - 1) // TILE), (TILE, TILE)


def forward(x, w, b, geometry, relu, y):
    """y (device, (N, F, Ho, Wo)) = conv2d(x, w) + b (then the ReLU), x, w, b numba device arrays."""
    n, f, ho, wo = y.shape
    dtype = np.dtype(y.dtype)
    _KERNELS[dtype][0][_grid(f, n * ho * wo)](x, w, b, *geometry.stride, *geometry.padding, *geometry.dilation,
                                              bool(relu), dtype.type(0), y)


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
    grid, block = _grid(f, c * kh * kw)
    inner_tiles = -(-(n * ho * wo) // TILE)
    pieces = splits(grid[0] * grid[1], inner_tiles) if pieces is None else int(pieces)
    per_piece = -(-inner_tiles // pieces)
    partial = cuda.device_array((pieces, f, c * kh * kw), dtype=dtype)
    _KERNELS[dtype][1][(grid[0], grid[1], pieces), block](g, x, kh, kw, *geometry.stride, *geometry.padding,
                                                         *geometry.dilation, dtype.type(0), per_piece, partial)
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
    _KERNELS[dtype][2][_grid(c, n * height * width)](g, w, *geometry.stride, *geometry.padding, *geometry.dilation,
                                                     dtype.type(0), dx)
