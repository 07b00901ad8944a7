"""The "simple" variant of ``tiles.py`` (see its docstring): each direction of the convolution an implicit
GEMM tiled TILE x TILE in shared memory, one output per thread, one element of each operand per thread
and step along the inner dimension."""
from __future__ import annotations

from numba import cuda

from ..activations import formulas
from ..dense.cuda import TILE, accumulate_tile


def make_simple(dtype):
    """The three kernels (forward, backward_weight, backward_input) for ``dtype`` (a numba type)."""
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
