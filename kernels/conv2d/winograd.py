"""3x3 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, 2016), in Numba.

Same maths as kernels.conv2d.reference, for 3x3 filters with stride 1, dilation 1 and groups 1
(any padding). In one dimension, two outputs of a 3-tap filter g over four inputs d are

    y = A^T [(G g) * (B^T d)]        (* elementwise: 4 multiplications instead of 6)

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

and nested, a 2x2 output tile from a 4x4 input tile d is Y = A^T [(G g G^T) * (B^T d B)] A: 16
multiplications instead of 36. Summed over the channels c, entry k of the 4x4 product becomes a
matrix product, one per k:

    U[k] (F, C)     = (G w[f, c] G^T)[k]                     the filters, transformed once a call
    V[k] (tiles, C) = (B^T d[c, tile] B)[k]                  the input tiles of a block of images
    M[k] (tiles, F) = V[k] @ U[k]^T                          16 products per block (gemm)
    y[f, tile]      = A^T M[:, tile, f] A  (+ b, then ReLU)  the inverse transform, the epilogue fused

A block holds a few images (``COLUMNS`` tiles at most), so that its V and M stay in the core's L2
cache between the transforms and the products. V and M hold a block tile by tile, the channels
(filters) along the row: the transforms are then vector loops over whole rows of tiles and
channels (kernels/conv2d/winograd_transforms.py says how), and the product's columns are the filters,
the side along which gemm's blocks hold whole vectors. The last tile of an odd output size (11
for the Keras CNN's second convolution) reads zeros past the input and writes only its valid outputs.

backward input is the same algorithm: dx is the full correlation of g with the flipped filters,
channels and filters swapped (w'[c, f] = w[f, c] rotated by 180 degrees, padding 2 - pad; a negative
padding just starts inside g). backward weight is F(3x3, 2x2): a 2x2 tile of g taken as the filter,
the 4x4 tile of x under it as the input, the transforms transposed (z . y = sum_j (A z)_j (G g)_j
(B^T d)_j for F(2, 3)'s y, read as a function of g with z given):

    Gg[k] (F, tiles) = (A g[f, tile] A^T)[k]     A = (A^T)^T, 4x2
    dw_hat[k] (F, C) = sum over tiles and images of Gg[k] @ V[k]^T   16 products, long inner dimension
    dw[f, c]         = G^T dw_hat[:, f, c] G     3x3

Float32 error: the transforms add and subtract up to four values and scale by 1/2 (exact), so each
output carries a few more roundings than the direct sum, and the transformed values can be larger
than the inputs. F(2x2, 3x3) keeps this mild: on random inputs of the benchmark's shapes the max
error against the float64 direct reference was 0.4 to 2.3 times im2col's float32 error (a few 1e-7
of the largest output); tests/kernels/test_winograd.py holds it to ``FLOAT32_ERROR_FACTOR`` times.
Larger tiles have transforms with larger entries, and their error grows quickly. F(4x4, 3x3)
(kernels/conv2d/winograd_f4.py: 36 products per 4x4 tile, 1.78x fewer than F(2x2, 3x3) for the same
outputs) is here as an opt-in, by ``tile=4`` or TILE, the same algorithms with 6x6 tiles; the tests
hold its float32 error to ``FLOAT32_ERROR_FACTOR_F4`` times im2col's.

Deterministic as kernels.conv2d.cpu: the blocks of images are fixed (not split by thread count), each
block writes its own outputs, and backward weight sums the images in fixed chunks (``weight_chunks``),
the chunks' partial sums added in order at the end. Results are bitwise identical run to run and
for any number of threads.

The public functions take the arguments of kernels.conv2d.cpu's and return the same results:
``forward(x, w, b, geometry, relu=False)``, ``backward_input(g, w, input_shape, geometry)``,
``backward_weight(g, x, weight_shape, geometry, bias)`` (each also takes ``tile``: 2, 4 or None for
TILE's), ``backward(g, x, w, geometry, input_grad, weight_grad, relu_out)``; they raise ValueError
for a geometry Winograd does not cover (``eligible`` says which), and take NumPy arrays already
checked (kernels.conv2d's entry points check them). The "cpu" backend calls them where they are
eligible and faster (use_winograd, its rule; kernels.conv2d.cpu.WINOGRAD forces either path).

>>> import numpy as np
>>> from kernels.options import ConvGeometry
>>> x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
>>> w = np.ones((1, 1, 3, 3))
>>> forward(x, w, None, ConvGeometry())[0, 0]         # sums of the 3x3 windows
array([[45., 54.],
       [81., 90.]])
>>> np.allclose(forward(x, w, None, ConvGeometry(), tile=4), [[[[45, 54], [81, 90]]]])   # F(4x4, 3x3)
True
"""
from __future__ import annotations

import numbers

import numba
import numpy as np
from numba import prange
from numba.extending import register_jitable

from .._cache import njit, sized
from .._jit import weight_chunks  # backward weight's fixed split of the batch
from .._recycle import aligned, empty as recycled
from ..activations import formulas
from ..microkernel import block_rows, gemm
from . import winograd_f4 as f4
from .winograd_transforms import (CHUNK_ROW, CORNERS, channels_last, grad_parity, grad_tiles, input_tiles, inverse,
                                  output_tiles)

#: A block of images holds at most this many tiles (V's and M's rows), at least one image; by tile size.
COLUMNS = {2: 96, 4: 36}
#: Backward weight: the tiles of one block (the inner dimension of its products); by tile size.
WEIGHT_COLUMNS = {2: 256, 4: 112}
#: The bound the tests hold float32's max error to, as a multiple of im2col's on the same inputs: F(2x2, 3x3)...
FLOAT32_ERROR_FACTOR = 4.0
#: ...and F(4x4, 3x3).
FLOAT32_ERROR_FACTOR_F4 = 64.0

_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
#: By tile size, (16, 9) and (36, 9): w (9 entries, row by row) -> G w G^T (row by row).
_GG = {2: np.kron(_G, _G), 4: np.kron(f4.G, f4.G)}
#: Backward weight's final transform: _GG with F(2x2)'s corner rows signed as CORNERS says (dw_hat's corner
#: rows are made from grad_parity's rows as they are: negating a factor negates the sums exactly).
_GG_WEIGHT = {2: _GG[2] * np.array([[{k: s for k, _, s in CORNERS}.get(k, 1)] for k in range(16)]), 4: _GG[4]}


def eligible(weight_shape, geometry) -> bool:
    """Whether Winograd F(2x2, 3x3) computes this convolution: 3x3 filters, stride 1, dilation 1, groups 1.

    >>> from kernels.options import ConvGeometry
    >>> eligible((8, 4, 3, 3), ConvGeometry(padding=1)), eligible((8, 4, 3, 3), ConvGeometry(stride=2))
    (True, False)
    """
    return (tuple(weight_shape[2:]) == (3, 3) and geometry.stride == (1, 1) and geometry.dilation == (1, 1)
            and geometry.groups == 1)


#: The output tile's side by direction, 2 or 4: F(2x2, 3x3) unless set to F(4x4, 3x3), whose products are 1.78x
#: fewer and whose float32 error is an order of magnitude larger (FLOAT32_ERROR_FACTOR_F4): an opt-in.
TILE = {"forward": 2, "backward input": 2, "backward weight": 2}

#: use_winograd's rule: the least of C and F from which each direction goes through Winograd.
MIN_CHANNELS = {"forward": 16, "backward input": 32, "backward weight": 32}


def use_winograd(weight_shape, geometry, direction="forward") -> bool:
    """The "cpu" backend's rule: whether a call in ``direction`` ("forward", "backward input", "backward
    weight") is faster here than im2col. Eligible, C and F at least MIN_CHANNELS[direction], and for
    backward input a padding of at least 1 on both axes. Below those sizes the 16 products are too
    thin and the transforms cost more than they save; without padding, backward input is a
    full correlation over g padded by 2, whose extra tiles eat the saving. (Decided by measurement on
    the benchmark's shapes and a few others, not by a timing at run time; kernels.conv2d.cpu.WINOGRAD
    overrides it.)

    >>> from kernels.options import ConvGeometry
    >>> use_winograd((64, 32, 3, 3), ConvGeometry()), use_winograd((32, 1, 3, 3), ConvGeometry())
    (True, False)
    >>> use_winograd((64, 32, 3, 3), ConvGeometry(), "backward input")     # padding 0: a full correlation
    False
    """
    if not eligible(weight_shape, geometry) or min(weight_shape[0], weight_shape[1]) < MIN_CHANNELS[direction]:
        return False
    return direction != "backward input" or min(geometry.padding) >= 1


def _check(weight_shape, geometry):
    if not eligible(weight_shape, geometry):
        raise ValueError(f"winograd needs 3x3 filters, stride 1, dilation 1 and groups 1, got weight shape "
                         f"{tuple(weight_shape)}, stride {geometry.stride}, dilation {geometry.dilation}, "
                         f"groups {geometry.groups}")


# --- the compiled pieces -----------------------------------------------------------------------------

@register_jitable
def _width(per_block, tiles, f_out, itemsize):
    """A forward block's rows of V and M for ``per_block`` images: their tiles, rounded up to whole blocks
    of gemm's rows (49 tiles -> 56 where M has 32 columns), so that every product takes gemm's fast
    path; the rows past the tiles are zeros, multiplied and never read back."""
    width = per_block * tiles
    return width + (-width) % block_rows(f_out, itemsize)


@njit(cache=True)
def _forward_blocks(x, ut, b, first, last, per_block, v, m, y4, off_h, off_w, relu, y, tile4):
    """y for the blocks of images first .. last-1 (per_block images each): transform, products, inverse.

    V[k] (W, C) and M[k] (W, F), k < (t + 2)^2: t = 2, or 4 by winograd_f4's transforms where ``tile4`` is
    not None (None prunes F(4x4, 3x3)'s code at compile time: the default path does not compile it),
    W = per_block * tiles rounded up by _width, tile by tile (channels, filters along the row),
    are the first W*C and W*F entries of row k of ``v`` and ``m`` (the calling thread's scratch; rows a
    little longer: see _row). M[k] = V[k] @ U[k]^T (``ut`` holds U[k]^T). A
    short last block (or a batch smaller than a block) multiplies only its own tiles, rounded up to
    gemm's block rows like W; the rows past the tiles are set to zeros first: the scratch's old
    contents could be subnormal numbers, which cost Intel cores a microcode assist per
    multiplication (a batch of one image ran many times slower on them)."""
    n, c_in = x.shape[0], x.shape[1]
    f_out, t = y.shape[1], 2
    if tile4 is not None:
        t = 4
    th, tw = (y.shape[2] + t - 1) // t, (y.shape[3] + t - 1) // t
    tiles = th * tw
    xt = np.zeros((t * th + 2) * t * (tw + 1) * c_in, dtype=x.dtype)
    r = np.empty((t + 2) * t * (tw + 1) * c_in, dtype=x.dtype)
    st = np.empty(0 if tile4 is None else t * (t + 2) * CHUNK_ROW, dtype=x.dtype)
    flat_v, flat_m, flat_y, y_row = v.reshape(-1), m.reshape(-1), y4.reshape(-1), y4.shape[1]
    for blk in range(first, last):
        n0, n1 = blk * per_block, min(n, (blk + 1) * per_block)
        rows = _width(n1 - n0, tiles, f_out, y.itemsize)
        for k in range(n1 - n0):
            channels_last(x[n0 + k], off_h, off_w, xt, tw + 1, t)
            if tile4 is None:
                input_tiles(xt, th, tw, c_in, r, flat_v, v.shape[1], k * tiles * c_in)
            else:
                f4.input_tiles(xt, th, tw, c_in, r, flat_v, v.shape[1], k * tiles * c_in)
        for k in range(ut.shape[0]):                     # the rows past the tiles: zeros
            for col in range((n1 - n0) * tiles * c_in, rows * c_in):
                v[k, col] = 0
        for k in range(ut.shape[0]):
            gemm(v[k, :rows * c_in].reshape(rows, c_in), ut[k], m[k, :rows * f_out].reshape(rows, f_out), False)
        if tile4 is None:
            inverse(flat_m, m.shape[1], rows * f_out, flat_y, y_row)
        else:
            f4.inverse(flat_m, m.shape[1], rows * f_out, st, flat_y, y_row)
        for k in range(n1 - n0):
            output_tiles(flat_y, y_row, k * tiles * f_out, th, tw, b, relu, y[n0 + k], t)


@njit(parallel=True, cache=True)
def _forward(x, ut, b, n_chunks, per_block, v, m, y4, off_h, off_w, relu, y, tile4):
    blocks = (x.shape[0] + per_block - 1) // per_block
    per = (blocks + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        me = numba.get_thread_id()
        _forward_blocks(x, ut, b, t * per, min(blocks, (t + 1) * per), per_block, v[me], m[me], y4[me], off_h,
                        off_w, relu, y, tile4)


@njit(cache=True)
def _weight_chunk(g, x, first, last, per_block, v, gg, p, ph, pw, dw_hat, db, tile4):
    """dw_hat ((t + 2)^2, F, C) += Gg[k] (F, W) @ V[k] (W, C) and db += sums of g, for images first ..
    last-1, in blocks of W = per_block * tiles tiles (V as in _forward_blocks, tile by tile, and Gg[k] the first
    F*W entries of row k of ``gg``: a plain product, gemm reading V by rows and adding into dw_hat;
    a short block's unused tiles are 0 in both). t and ``tile4`` as in _forward_blocks."""
    c_in, f_out = x.shape[1], g.shape[1]
    ho, wo, t = g.shape[2], g.shape[3], 2
    if tile4 is not None:
        t = 4
    th, tw = (ho + t - 1) // t, (wo + t - 1) // t
    tiles = th * tw
    width = per_block * tiles
    size, p_row, flat_p = f_out * width, p.shape[1], p.reshape(-1)
    dw_hat[:, :, :] = 0
    db[:] = 0
    st = np.empty(0 if tile4 is None else t * (t + 2) * CHUNK_ROW, dtype=x.dtype)
    xt = np.zeros((t * th + 2) * t * (tw + 1) * c_in, dtype=x.dtype)
    r = np.empty((t + 2) * t * (tw + 1) * c_in, dtype=x.dtype)
    flat_v = v.reshape(-1)
    n0 = first
    while n0 < last:
        n1 = min(last, n0 + per_block)
        for k in range(n1 - n0):
            channels_last(x[n0 + k], ph, pw, xt, tw + 1, t)
            if tile4 is None:
                input_tiles(xt, th, tw, c_in, r, flat_v, v.shape[1], k * tiles * c_in)
                grad_parity(g[n0 + k], th, tw, flat_p, p_row, k * tiles, width, db)
            else:
                f4.input_tiles(xt, th, tw, c_in, r, flat_v, v.shape[1], k * tiles * c_in)
                f4.grad_quarters(g[n0 + k], th, tw, flat_p, p_row, k * tiles, width, db)
        used = (n1 - n0) * tiles                             # a short block: 0 in the unused columns of V
        for k in range(dw_hat.shape[0]):
            for col in range(used * c_in, width * c_in):
                v[k, col] = 0
        for j in range(p.shape[0]):                          # and of p (so of Gg, made from it)
            for f in range(f_out):
                for col in range(used, width):
                    p[j, f * width + col] = 0
        if tile4 is None:
            grad_tiles(flat_p, p_row, size, gg.reshape(-1), gg.shape[1])
        else:
            f4.grad_tiles(flat_p, p_row, size, st, gg.reshape(-1), gg.shape[1])
        for k in range(dw_hat.shape[0]):
            rows = gg[k]
            if tile4 is None:                                # Gg's corner rows are p's (their signs in _GG_WEIGHT)
                for corner, entry, _ in CORNERS:
                    rows = p[entry] if k == corner else rows
            gemm(rows[:f_out * width].reshape(f_out, width), v[k, :width * c_in].reshape(width, c_in), dw_hat[k], True)
        n0 = n1


@njit(parallel=True, cache=True)
def _weight(g, x, n_chunks, per_block, v, gg, p, ph, pw, dw_part, db_part, tile4):
    per = (g.shape[0] + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        me = numba.get_thread_id()
        _weight_chunk(g, x, t * per, min(g.shape[0], (t + 1) * per), per_block, v[me], gg[me], p[me], ph, pw,
                     dw_part[t], db_part[t], tile4)


@njit(cache=True)
def _filter_transform(w, gg, ut):
    """ut[k, c, f] = sum over e of gg[k, e] * w[f, c, e], e in order from 0. Channel by channel: its 9 x F
    weights gathered once, then loops along f (contiguous, so they vectorise); one thread (a few us)."""
    f_out, c_in = w.shape[0], w.shape[1]
    wt = np.empty((9, f_out), dtype=w.dtype)
    for c in range(c_in):
        for f in range(f_out):
            for e in range(9):
                wt[e, f] = w[f, c, e]
        for k in range(gg.shape[0]):
            row = ut[k, c]
            for f in range(f_out):
                row[f] = gg[k, 0] * wt[0, f]
            for e in range(1, 9):
                for f in range(f_out):
                    row[f] += gg[k, e] * wt[e, f]


@njit(parallel=True, cache=True)
def _weight_finish(dw_part, db_part, gg, dw, db):
    """dw[f, c] (9 entries) = G^T dw_hat[:, f, c] G, as the 16 entries times ``gg`` (the (16, 9) Kronecker
    product of G with itself), where dw_hat is the chunks' dw_part added in chunk order (the same bits
    whatever the thread count); db the chunks' db_part added in the same order. One filter per iteration."""
    n_chunks, _, f_out, c_in = dw_part.shape
    for f in prange(f_out):
        total = np.empty((gg.shape[0], c_in), dtype=dw.dtype)
        out = np.zeros((9, c_in), dtype=dw.dtype)
        for k in range(gg.shape[0]):
            for c in range(c_in):
                total[k, c] = dw_part[0, k, f, c]
            for t in range(1, n_chunks):
                for c in range(c_in):
                    total[k, c] += dw_part[t, k, f, c]
            for e in range(9):
                for c in range(c_in):
                    out[e, c] += gg[k, e] * total[k, c]
        for c in range(c_in):
            for e in range(9):
                dw[f, c, e] = out[e, c]
    for f in range(f_out):
        total_b = db_part[0, f]
        for t in range(1, n_chunks):
            total_b += db_part[t, f]
        db[f] = total_b


@njit(parallel=True, cache=True)
def _relu_grad(g, out, dg):
    """dg = g where out > 0, else 0 (flat arrays), in one pass."""
    for k in prange(g.size):
        dg[k] = formulas.relu_backward(g[k], out[k])


# --- the entry points ----------------------------------------------------------------------------------

def _filters(w, tile):
    """U[k]^T ((tile + 2)^2, C, F): G w[f, c] G^T for every filter and channel, entry k = (tile + 2)*row +
    column, as the Kronecker product of G with itself times w's 9 entries, (G w G^T)[(tile + 2)i + j] =
    sum_pq G[i, p] G[j, q] w[p, q] (Numba loops: the bits do not depend on a BLAS)."""
    f, c = w.shape[0], w.shape[1]
    gg = _GG[tile].astype(w.dtype)
    ut = aligned((gg.shape[0], c, f), w.dtype)                # gemm's b: its rows' vectors start on cache lines
    _filter_transform(np.ascontiguousarray(w).reshape(f, c, 9), gg, ut)
    return ut


def _row(size, itemsize):
    """A buffer row length >= size whose byte length is an odd number of cache lines past a multiple of 4 KiB.

    The transforms write (and read) the 16 rows of V and M at once, one entry each: with rows a
    multiple of 4 KiB long (M's are 64 x 144 x 4 bytes for the Keras CNN) all 16 fall in one set of
    the L1 cache, which holds 8 or 12, and every access misses. Odd line counts spread them out."""
    lines = (size * itemsize + 63) // 64
    lines += 1 - lines % 2
    return lines * 64 // itemsize


def _scratch(size, dtype, rows):
    """One (rows, _row(size)) buffer per Numba thread (numba.get_thread_id picks its own), recycled between
    calls: the blocks of one thread reuse it while it is in cache, and no call pays fresh pages for it."""
    dtype = np.dtype(dtype)
    return recycled((numba.config.NUMBA_NUM_THREADS, rows, _row(size, dtype.itemsize)), dtype)


def _tile(tile, direction):
    """The output tile's side: ``tile`` (2 or 4) or, when None, TILE[direction]."""
    name = "tile" if tile is not None else f"winograd.TILE[{direction!r}]"
    tile = TILE[direction] if tile is None else tile
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile not in (2, 4):
        raise ValueError(f"{name}: expected 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3)), got {tile!r}")
    return int(tile)


def _convolve(x, w, b, off_h, off_w, ho, wo, relu, tile):
    """y (N, F, ho, wo): y[n, f, i, j] = b[f] + sum w[f, c, p, q] x[n, c, i + p - off_h, j + q - off_w]."""
    n, f, t = x.shape[0], w.shape[0], tile
    tiles = ((ho + t - 1) // t) * ((wo + t - 1) // t)
    per_block = max(1, COLUMNS[t] // tiles)
    blocks = (n + per_block - 1) // per_block
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    y = recycled((n, f, ho, wo), x.dtype)
    n_chunks = max(1, min(blocks, 4 * numba.get_num_threads()))
    width = _width(per_block, tiles, f, x.dtype.itemsize)
    ut = _filters(w, t)                                                  # U[k]^T (C, F)
    v, m = _scratch(x.shape[1] * width, x.dtype, len(ut)), _scratch(f * width, x.dtype, len(ut))
    y4 = _scratch(f * width, x.dtype, t * t)
    _forward(np.ascontiguousarray(x), ut, bias, n_chunks, per_block, v, m, y4, off_h, off_w, bool(relu), y,
             None if t == 2 else 4)
    return y


def forward(x, w, b, geometry, relu=False, tile=None):
    """y (N, F, Ho, Wo) = conv2d(x, w) + b, then max(y, 0) when ``relu``, by F(tile x tile, 3x3) (``tile`` 2
    or 4; None: TILE["forward"]): see the module docstring."""
    _check(w.shape, geometry)
    tile = _tile(tile, "forward")
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    ho, wo = geometry.output_hw(x.shape[2], x.shape[3], (3, 3))
    return _convolve(x, w, b, *geometry.padding, ho, wo, relu, tile)


def backward_input(g, w, input_shape, geometry, tile=None):
    """dx of input_shape: the full correlation of g with the flipped filters, channels and filters swapped."""
    _check(w.shape, geometry)
    tile = _tile(tile, "backward input")
    flipped = np.ascontiguousarray(np.asarray(w)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    ph, pw = geometry.padding
    return _convolve(np.ascontiguousarray(g), flipped, None, 2 - ph, 2 - pw, input_shape[2], input_shape[3], False,
                     tile)


def backward_weight(g, x, weight_shape, geometry, bias, tile=None):
    """(dw, db) by F(3x3, tile x tile) over the tiles of g, summed in fixed chunks of images; db None without bias."""
    _check(weight_shape, geometry)
    t = _tile(tile, "backward weight")
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    n, f, ho, wo = g.shape
    c = x.shape[1]
    tiles = ((ho + t - 1) // t) * ((wo + t - 1) // t)
    n_chunks, gg = weight_chunks(n), _GG_WEIGHT[t].astype(g.dtype)
    dw_part = recycled((n_chunks, len(gg), f, c), g.dtype)         # each chunk zeroes its own part first
    db_part = recycled((n_chunks, f), g.dtype)
    per = (n + n_chunks - 1) // n_chunks                 # images per chunk, in blocks of about WEIGHT_COLUMNS tiles
    blocks = (per * tiles + WEIGHT_COLUMNS[t] - 1) // WEIGHT_COLUMNS[t]
    per_block = (per + blocks - 1) // blocks
    width = per_block * tiles
    _weight(g, x, n_chunks, per_block, _scratch(c * width, g.dtype, len(gg)), _scratch(f * width, g.dtype, len(gg)),
            _scratch(f * width, g.dtype, t * t), *geometry.padding, dw_part, db_part, None if t == 2 else 4)
    dw, db = np.empty((f, c, 9), g.dtype), np.empty(f, g.dtype)
    _weight_finish(dw_part, db_part, gg, dw, db)
    return dw.reshape(f, c, 3, 3), (db if bias else None)


def relu_grad(g, out):
    """g where the fused ReLU's output ``out`` is positive, else 0 (relu'(0) = 0): the gradient that reaches
    the convolution under relu (the cpu backend's relu_grad too)."""
    g, out = np.ascontiguousarray(g), np.ascontiguousarray(out)
    dg = recycled(g.shape, g.dtype)
    sized(_relu_grad, g.size)(g.reshape(-1), out.reshape(-1), dg.reshape(-1))
    return dg


def backward(g, x, w, geometry, input_grad, weight_grad, relu_out):
    """(dx, dw, db): g masked by the fused ReLU's output (when given), then backward_input (when
    ``input_grad``) and backward_weight (when ``weight_grad``); None for the gradients not asked for."""
    _check(w.shape, geometry)
    if relu_out is not None:
        g = relu_grad(g, relu_out)
    dx = backward_input(g, w, x.shape, geometry) if input_grad else None
    dw, db = backward_weight(g, x, w.shape, geometry, True) if weight_grad else (None, None)
    return dx, dw, db
