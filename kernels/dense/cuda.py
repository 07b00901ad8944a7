"""The dense layer with numba.cuda: y = x w + b and its two gradients as matrix products.

Same functions and arguments as ``kernels.dense.reference``. Each product is tiled in shared memory:
a block of TILE x TILE threads computes a TILE x TILE tile of the result, loading one tile of each
operand into shared memory per step along the inner dimension (each element read from global memory
once per tile instead of once per product term), synchronising the block before and after using a
tile. The transposes of the backward passes are not formed: the kernels read the operand
transposed (``trans_a`` / ``trans_b``). Bias gradient: one thread per column, a sum over rows.
Device in, device out (DeviceArrays); host in, host out.

In Numba's simulator the products run instead with one thread per output element and no shared memory
(``TILED``): the simulator's ``syncthreads`` makes every thread of a block poll, which made a dense layer
the slowest op of a simulated training step. Both add the inner terms in the same order, one at a time:
the same results. The tests switch the tiles on for their own checks.
"""
from __future__ import annotations

import numpy as np
from numba import config, cuda, float32, float64

from .._cuda import launch_config, on_device, stride_config, to_caller, to_device

#: The tile's side: 16 x 16 threads per block on a GPU; 4 x 4 in the simulator (which runs every thread
#: as a Python thread), so that the tests' tiny matrices still span several tiles.
TILE = 4 if config.ENABLE_CUDASIM else 16

#: Whether the products run tiled in shared memory (on a GPU), or one thread per element (the simulator).
TILED = not config.ENABLE_CUDASIM


@cuda.jit(device=True)
def accumulate_tile(sa, sb, ty, tx, acc):
    """acc + row ty of tile sa times column tx of tile sb, once the whole block has loaded both tiles;
    returns when the whole block is done with them (so that the next load cannot overwrite them early)."""
    cuda.syncthreads()
    for kk in range(TILE):
        acc += sa[ty, kk] * sb[kk, tx]
    cuda.syncthreads()
    return acc


def _make_matmul(dtype):
    @cuda.jit
    def kernel(a, b, bias, use_bias, trans_a, trans_b, zero, out):
        """out[i, j] = sum_k A[i, k] B[k, j] (+ bias[j]); A = a or a^T, B = b or b^T."""
        sa = cuda.shared.array((TILE, TILE), dtype)
        sb = cuda.shared.array((TILE, TILE), dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        i = cuda.blockIdx.y * TILE + ty
        j = cuda.blockIdx.x * TILE + tx
        rows, cols = out.shape
        inner = a.shape[0] if trans_a else a.shape[1]
        acc = zero
        for t in range((inner + TILE - 1) // TILE):
            k = t * TILE + tx
            if i < rows and k < inner:
                sa[ty, tx] = a[k, i] if trans_a else a[i, k]
            else:
                sa[ty, tx] = zero
            k = t * TILE + ty
            if j < cols and k < inner:
                sb[ty, tx] = b[j, k] if trans_b else b[k, j]
            else:
                sb[ty, tx] = zero
            acc = accumulate_tile(sa, sb, ty, tx, acc)
        if i < rows and j < cols:
            out[i, j] = acc + bias[j] if use_bias else acc
    return kernel


_MATMUL = {np.dtype(np.float32): _make_matmul(float32), np.dtype(np.float64): _make_matmul(float64)}


@cuda.jit
def _matmul_simple_kernel(a, b, bias, use_bias, trans_a, trans_b, zero, out):
    """out[i, j] = sum_k A[i, k] B[k, j] (+ bias[j]), one thread per element, k in the tiles' order."""
    rows, cols = out.shape
    for t in range(cuda.grid(1), rows * cols, cuda.gridsize(1)):      # grid-stride: _cuda.stride_config
        i, j = t // cols, t % cols
        acc = zero
        for k in range(a.shape[0] if trans_a else a.shape[1]):
            acc += (a[k, i] if trans_a else a[i, k]) * (b[j, k] if trans_b else b[k, j])
        out[i, j] = acc + bias[j] if use_bias else acc


@cuda.jit
def _column_sum_kernel(g, out):
    j = cuda.grid(1)
    if j < out.size:
        acc = g[0, j] * 0
        for i in range(g.shape[0]):
            acc += g[i, j]
        out[j] = acc


def _matmul(a, b, bias, trans_a, trans_b, rows, cols, dtype):
    out = cuda.device_array((rows, cols), dtype=dtype)
    use_bias = bias is not None
    bias = to_device(bias) if use_bias else cuda.device_array(1, dtype=dtype)
    arguments = (to_device(a), to_device(b), bias, use_bias, trans_a, trans_b, np.dtype(dtype).type(0), out)
    if TILED:
        grid = ((cols + TILE - 1) // TILE, (rows + TILE - 1) // TILE)
        _MATMUL[np.dtype(dtype)][grid, (TILE, TILE)](*arguments)
    elif rows * cols:
        _matmul_simple_kernel[stride_config(rows * cols)](*arguments)
    return out


def forward(x, w, b):
    """y = x @ w (+ b), tiled."""
    keep = on_device(x, w, b)
    y = _matmul(x, w, b, False, False, x.shape[0], w.shape[1], np.dtype(x.dtype))
    return to_caller(y, keep)


def backward_input(g, w):
    """dL/dx = g @ w^T (w read transposed)."""
    keep = on_device(g, w)
    return to_caller(_matmul(g, w, None, False, True, g.shape[0], w.shape[0], np.dtype(g.dtype)), keep)


def backward_weight(g, x, bias):
    """(x^T @ g, column sums of g or None): x read transposed."""
    keep = on_device(g, x)
    dtype = np.dtype(g.dtype)
    dw = _matmul(x, g, None, True, False, x.shape[1], g.shape[1], dtype)
    db = None
    if bias:
        db = cuda.device_array(g.shape[1], dtype=dtype)
        _column_sum_kernel[launch_config(g.shape[1])](to_device(g), db)
    return to_caller(dw, keep), None if db is None else to_caller(db, keep)
