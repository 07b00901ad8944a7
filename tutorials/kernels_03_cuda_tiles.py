# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Kernels, lesson 3: a CUDA kernel with shared-memory tiles
#
# *Follows the CUDA C++ Programming Guide (the thread hierarchy, and the shared-memory matrix
# product of its "Shared Memory" section) and Numba's CUDA documentation ("Writing CUDA Kernels",
# "Memory management: shared memory and thread synchronization", "The CUDA Simulator").*
#
# A CUDA kernel is one function run by many threads at once. The threads are grouped in **blocks**
# and the blocks in a **grid**; each thread knows its place (`cuda.threadIdx`, `cuda.blockIdx`,
# `cuda.blockDim`) and from it computes which element of the result is its own. The threads of a
# block share a small, fast on-chip memory (`cuda.shared.array`) and can wait for each other
# (`cuda.syncthreads()`, a barrier); threads of different blocks cannot. Everything else lives in
# the large, slow **global** memory. A kernel whose threads each read what they need from global
# memory is easy to write and slow, because its threads read the same numbers again and again; a
# **tiled** kernel has each block load a tile of its inputs into shared memory once and all its
# threads read it from there. We will
#
# 1. write a matrix product with one thread per output element, and draw its launch geometry;
# 2. tile it in shared memory, and count the global loads of both: the tiled kernel makes TILE
#    times fewer;
# 3. do the same for a convolution, whose tile needs a **halo** (the border the filter reaches
#    beyond the output tile), and compare with the project's own CUDA convolution;
# 4. write the tiled product yourself, checked against `np.matmul`.
#
# **No GPU needed.** Everything runs in Numba's **CUDA simulator**, which runs a kernel as Python:
# each thread of a block is a Python thread, each multiply-add a line of Python. It is correct (the
# same results, and every index checked) and far slower than a GPU, so the matrices here are tiny.
# The first code cell switches it on (`NUMBA_ENABLE_CUDASIM=1`, before numba is imported); on a
# machine with a CUDA GPU, delete that line and the same kernels run on the device (the load
# counts then come from the formulas alone, and the checker of section 4 checks the values only:
# counting needs the simulator). The simulator and the kernels come with numba-cuda, the package's
# `cuda` extra: `pip install 'chainrule[cuda]'`.
#
# Pictures go to `tutorials/_output/kernels_03_cuda_tiles/` (or `$TUTORIAL_OUTPUT`).

# %%
import os

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"   # Numba's CUDA simulator. On a machine with a CUDA GPU: delete this line.

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ROOT = HERE.parent if HERE.name == "tutorials" else HERE
sys.path.insert(0, str(ROOT))  # the repository: `kernels` and `chainrule` import without installing

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files, never open a window
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from numba import config, cuda, float64

from chainrule.exercises import attempt
from chainrule.exercises.cuda_tiles import (TILE, CountingArray, check_tiled_matmul, launch_matmul, naive_loads,
                                            quick_threads, tiled_loads)
from chainrule.lessons import show_figure

SIMULATED = bool(config.ENABLE_CUDASIM)
assert SIMULATED or cuda.is_available(), "no CUDA GPU here: keep NUMBA_ENABLE_CUDASIM=1 (the simulator)"
print("running in", "Numba's CUDA simulator" if SIMULATED else "a CUDA GPU")

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "kernels_03_cuda_tiles"
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)


def counting(array):
    """``array`` as a CountingArray in the simulator; on a GPU as it is (nothing there counts its loads)."""
    return CountingArray(array) if SIMULATED else array


def loads_seen(arrays, formula):
    """The loads of each array the counters saw, held to ``formula`` (one per array); on a GPU the formula's."""
    if not SIMULATED:
        return formula
    seen = tuple(a.loads for a in arrays)
    assert seen == tuple(formula), (seen, formula)
    return seen

# %% [markdown]
# ## 1. One thread per output element
#
# $C = AB$ with $A$ of shape $M \times K$ and $B$ of shape $K \times N$:
# $C_{ij} = \sum_k A_{ik} B_{kj}$. Give each element of $C$ its own thread. Blocks are
# `TILE x TILE` threads (`TILE` = 4 here, so that the simulator stays quick), and the grid has
# enough blocks to cover $C$: $\lceil N/\text{TILE} \rceil$ along $x$ (the columns) and
# $\lceil M/\text{TILE} \rceil$ along $y$ (the rows), the convention of the Programming Guide.
# Thread `(tx, ty)` of block `(bx, by)` computes row `i = by * TILE + ty`, column
# `j = bx * TILE + tx` (`cuda.grid(2)` gives the same pair, x first). A grid rarely fits the matrix
# exactly, so every thread first checks that its element exists.

# %%
M, K, N = 12, 8, 16
A = rng.uniform(-1, 1, (M, K))
B = rng.uniform(-1, 1, (K, N))


@cuda.jit
def matmul_naive(a, b, c):
    """c[i, j] = sum_k a[i, k] b[k, j], one thread per (i, j), reading a and b from global memory."""
    j, i = cuda.grid(2)                       # x: the column, y: the row
    if i < c.shape[0] and j < c.shape[1]:     # the grid may run past the matrix
        acc = 0.0
        for k in range(a.shape[1]):
            acc += a[i, k] * b[k, j]          # two global loads per multiply-add
        c[i, j] = acc


grid = (-(-N // TILE), -(-M // TILE))         # (blocks along x, along y): ceil(N/TILE), ceil(M/TILE)
C = np.zeros((M, N))
with quick_threads():                         # the simulator's threads take turns faster (see its docstring)
    matmul_naive[grid, (TILE, TILE)](A, B, C)
np.testing.assert_allclose(C, A @ B, rtol=1e-12, atol=1e-12)
assert grid == (4, 3) and grid[0] * grid[1] * TILE * TILE == M * N == 192
print(f"C ({M}x{N}) = A ({M}x{K}) @ B ({K}x{N}): a grid of {grid[0]} x {grid[1]} blocks of {TILE} x {TILE} "
      f"threads, one per element of C")

# %% [markdown]
# Each thread reads a row of $A$ and a column of $B$: $2K$ global loads, $2MNK$ for the product,
# 3,072 here for 1,536 multiply-adds. Every element of $A$ is read $N$ times, once by each thread of
# its row of $C$; every element of $B$ $M$ times. On a GPU global memory is far slower than the
# arithmetic units, and such a kernel waits on its loads.
#
# **Counting the loads.** The simulator passes to a kernel any argument that is not a NumPy array
# as it is, so we hand it arrays that count their reads (`CountingArray`): every `a[i, k]` a thread
# executes is one global load counted. Shared memory is not counted: it is the point of the next
# section.

# %%
counted = counting(A), counting(B)
C_counted = launch_matmul(matmul_naive, *counted)
np.testing.assert_allclose(C_counted, A @ B, rtol=1e-12, atol=1e-12)
loads_naive = sum(loads_seen(counted, (M * K * N, K * N * M)))                 # each element of A read N times
assert loads_naive == naive_loads(M, K, N) == 2 * M * N * K == 3072
assert M * N * K == 1536
print(f"one thread per output: {loads_naive} global loads (2 M N K) for {M * N * K} multiply-adds")

# %% [markdown]
# ## 2. Tiles in shared memory
#
# Split the sum over $k$ into **phases** of `TILE` terms. In phase $t$ the block at `(bx, by)`
# needs the `TILE x TILE` tile of $A$ at rows `by*TILE...`, columns `t*TILE...` and the tile of $B$
# at rows `t*TILE...`, columns `bx*TILE...`: one element each for each of its `TILE x TILE`
# threads. So each thread loads **one** element of each tile into shared memory, the block waits
# until all have (`cuda.syncthreads()`), then each thread adds its `TILE` terms reading from the
# tiles, and the block waits again before the next phase overwrites them. Where the last tiles run
# past the matrices, a thread loads 0 instead (it adds nothing to the sum), and only the threads
# inside $C$ store. The figure shows the launch: the grid of blocks over $C$, one block's threads,
# and the tiles of $A$ and $B$ that block loads in each of the $K/\text{TILE}$ phases.

# %%
@cuda.jit
def matmul_tiled(a, b, c):
    """c = a @ b: each block loads TILE x TILE tiles of a and b into shared memory, one phase at a time."""
    sa = cuda.shared.array((TILE, TILE), float64)   # the block's tile of a, shared by its threads
    sb = cuda.shared.array((TILE, TILE), float64)   # and of b
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i = cuda.blockIdx.y * TILE + ty                 # this thread's row of c
    j = cuda.blockIdx.x * TILE + tx                 # and column
    m, inner = a.shape
    n = b.shape[1]
    acc = 0.0
    for t in range((inner + TILE - 1) // TILE):     # the phases
        k = t * TILE + tx                           # one element of a's tile (0 past the edge)
        sa[ty, tx] = a[i, k] if i < m and k < inner else 0.0
        k = t * TILE + ty                           # one element of b's tile
        sb[ty, tx] = b[k, j] if k < inner and j < n else 0.0
        cuda.syncthreads()                          # the tiles are complete
        for kk in range(TILE):
            acc += sa[ty, kk] * sb[kk, tx]          # shared memory: no global load
        cuda.syncthreads()                          # everyone is done with them: the next phase may load
    if i < m and j < n:
        c[i, j] = acc


counted = counting(A), counting(B)
C_tiled = launch_matmul(matmul_tiled, *counted)
np.testing.assert_allclose(C_tiled, A @ B, rtol=1e-12, atol=1e-12)
loads_tiled = sum(loads_seen(counted, (M * K * (N // TILE), K * N * (M // TILE))))   # once per block column, row
assert loads_tiled == tiled_loads(M, K, N) == 768 and loads_tiled * TILE == loads_naive
print(f"tiled ({TILE} x {TILE}): {loads_tiled} global loads = {loads_naive} / {TILE}")


# %%
def draw_launch(m, k, n, block=(2, 1)):
    """C's grid of blocks, one block's threads, and the tiles of A and B that block loads in each phase."""
    bx, by = block
    phases = -(-k // TILE)
    colours = plt.cm.viridis(np.linspace(0.15, 0.85, phases))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), gridspec_kw={"width_ratios": [k, n, n]})
    panels = [(axes[0], "A", m, k), (axes[1], "B", k, n), (axes[2], "C = A B", m, n)]
    for ax, name, rows, cols in panels:
        ax.set_xlim(0, cols), ax.set_ylim(rows, 0), ax.set_aspect("equal")
        ax.set_xticks(range(0, cols + 1, TILE)), ax.set_yticks(range(0, rows + 1, TILE))
        ax.grid(True, color="0.85", lw=0.5)
        ax.set_title(f"{name} ({rows} x {cols})")
    for ax, (xlabel, ylabel) in zip(axes, [("k", "row i"), ("column j", "k"), ("column j: x", "row i: y")]):
        ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    for t in range(phases):                 # what block (bx, by) loads in phase t
        axes[0].add_patch(Rectangle((t * TILE, by * TILE), TILE, TILE, color=colours[t], alpha=0.8))
        axes[0].text((t + 0.5) * TILE, (by + 0.5) * TILE, f"phase {t}", ha="center", va="center", color="w")
        axes[1].add_patch(Rectangle((bx * TILE, t * TILE), TILE, TILE, color=colours[t], alpha=0.8))
        axes[1].text((bx + 0.5) * TILE, (t + 0.5) * TILE, f"phase {t}", ha="center", va="center", color="w")
    ax = axes[2]
    for gy in range(-(-m // TILE)):         # the grid: one block per TILE x TILE tile of C
        for gx in range(-(-n // TILE)):
            ax.add_patch(Rectangle((gx * TILE, gy * TILE), TILE, TILE, fill=False, lw=1.5))
            if (gx, gy) != block:
                ax.text((gx + 0.5) * TILE, (gy + 0.5) * TILE, f"block\n({gx}, {gy})", ha="center", va="center",
                        fontsize=7, color="0.4")
    ax.add_patch(Rectangle((bx * TILE, by * TILE), TILE, TILE, color="tab:orange", alpha=0.35))
    for ty in range(TILE):                  # the block's threads, one per element
        for tx in range(TILE):
            ax.plot(bx * TILE + tx + 0.5, by * TILE + ty + 0.5, "o", ms=4, color="tab:red")
    for tx, ty in [(0, 0), (TILE - 1, 0), (0, TILE - 1)]:
        ax.annotate(f"({tx}, {ty})", (bx * TILE + tx + 0.5, by * TILE + ty + 0.5), xytext=(3, -9),
                    textcoords="offset points", fontsize=6, color="tab:red")
    ax.text((bx + 0.5) * TILE, by * TILE - 0.3, f"block ({bx}, {by}): {TILE} x {TILE} threads (tx, ty)",
            ha="center", va="bottom", fontsize=8, color="tab:red")
    fig.suptitle(f"Launch: grid {-(-n // TILE)} x {-(-m // TILE)} blocks over C; block ({bx}, {by}) loads "
                 f"{phases} tiles of A (its rows) and of B (its columns), one per phase")
    fig.tight_layout()
    return fig


show_figure(draw_launch(M, K, N), OUT / "launch_geometry.svg")

# %% [markdown]
# **Why TILE times fewer.** The block at `(bx, by)` loads the whole band of $A$ at its rows and of
# $B$ at its columns, once: every element of $A$ is loaded once per block *column*
# ($\lceil N/\text{TILE} \rceil$ times instead of $N$), every element of $B$ once per block row. The
# multiply-adds are the same, so the arithmetic done per global load grows TILE times. With sizes
# that are not multiples of TILE the guards skip the loads past the edge, and the count is
# $MK\lceil N/\text{TILE}\rceil + KN\lceil M/\text{TILE}\rceil$, which the counter confirms on a
# $10 \times 7$ by $7 \times 9$ product. A GPU uses larger tiles (the project's dense kernels use
# `kernels.dense.cuda.TILE`); a tile's side is bounded by the threads a block may have and by the
# shared memory a multiprocessor holds.

# %%
A2, B2 = rng.uniform(-1, 1, (10, 7)), rng.uniform(-1, 1, (7, 9))
counted = counting(A2), counting(B2)
np.testing.assert_allclose(launch_matmul(matmul_tiled, *counted), A2 @ B2, rtol=1e-12, atol=1e-12)
edge_loads = sum(loads_seen(counted, (10 * 7 * -(-9 // TILE), 7 * 9 * -(-10 // TILE))))
assert edge_loads == tiled_loads(10, 7, 9) == 10 * 7 * 3 + 7 * 9 * 3 == 399
assert tiled_loads(256, 256, 256, tile=16) * 16 == naive_loads(256, 256, 256)   # the formula, at a GPU's sizes
print(f"10x7 @ 7x9, tiled: {edge_loads} loads (naive: {naive_loads(10, 7, 9)})")

# %% [markdown]
# ## 3. A convolution: the tile and its halo
#
# The direct convolution (cross-correlation, as `kernels.conv2d`) of an image $x$ of $C$ channels
# with $F$ filters $w$ of $K_h \times K_w$ taps, no padding:
# $y_{f,i,j} = \sum_{c,p,q} w_{f,c,p,q}\, x_{c,\,i+p,\,j+q}$. Give each output element a thread
# again, blocks of `TILE x TILE` over the output plane, and the filter along the grid's third
# axis (`blockIdx.z`). The outputs of one block read an input window of
# $(\text{TILE} + K_h - 1) \times (\text{TILE} + K_w - 1)$: the tile and its **halo**. So, one
# channel at a time, the block loads that window into shared memory (more elements than threads:
# each thread loads every TILE-th row and column of it), and the channel's $K_h \times K_w$ taps;
# waits; adds its $K_h K_w$ terms; waits.

# %%
CH, F, KH, KW, H, W = 2, 4, 3, 3, 10, 10
HALO_H, HALO_W = TILE + KH - 1, TILE + KW - 1
X = rng.uniform(-1, 1, (CH, H, W))
WEIGHTS = rng.uniform(-1, 1, (F, CH, KH, KW))
HO, WO = H - KH + 1, W - KW + 1


@cuda.jit
def conv_naive(x, w, y):
    """y[f, i, j] = sum_{c,p,q} w[f, c, p, q] x[c, i + p, j + q], one thread per output, from global memory."""
    j, i = cuda.grid(2)
    f = cuda.blockIdx.z
    if i < y.shape[1] and j < y.shape[2]:
        acc = 0.0
        for c in range(x.shape[0]):
            for p in range(w.shape[2]):
                for q in range(w.shape[3]):
                    acc += w[f, c, p, q] * x[c, i + p, j + q]
        y[f, i, j] = acc


@cuda.jit
def conv_tiled(x, w, y):
    """The same, each block loading its input tile + halo and its filter's taps into shared memory per channel."""
    window = cuda.shared.array((HALO_H, HALO_W), float64)
    taps = cuda.shared.array((KH, KW), float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    f = cuda.blockIdx.z
    i0, j0 = cuda.blockIdx.y * TILE, cuda.blockIdx.x * TILE     # the block's first output row and column
    channels, height, width = x.shape
    acc = 0.0
    for c in range(channels):
        for r in range(ty, HALO_H, TILE):                       # the window: TILE rows and columns at a time
            for s in range(tx, HALO_W, TILE):
                h, v = i0 + r, j0 + s
                window[r, s] = x[c, h, v] if h < height and v < width else 0.0
        if ty < KH and tx < KW:
            taps[ty, tx] = w[f, c, ty, tx]
        cuda.syncthreads()
        for p in range(KH):
            for q in range(KW):
                acc += taps[p, q] * window[ty + p, tx + q]
        cuda.syncthreads()
    if i0 + ty < y.shape[1] and j0 + tx < y.shape[2]:
        y[f, i0 + ty, j0 + tx] = acc


def launch_conv(kernel, x, w):
    y = np.full((w.shape[0], x.shape[1] - w.shape[2] + 1, x.shape[2] - w.shape[3] + 1), np.nan)
    with quick_threads():
        kernel[(-(-y.shape[2] // TILE), -(-y.shape[1] // TILE), w.shape[0]), (TILE, TILE)](x, w, y)
    return y


def draw_halo(block=(1, 0)):
    """The input plane under the grid of output tiles; one block's window (its tile + halo), and the
    elements of it that thread (0, 0) loads."""
    bx, by = block
    fig, ax = plt.subplots(figsize=(5.6, 5.4))
    ax.set_xlim(0, W), ax.set_ylim(H, 0), ax.set_aspect("equal")
    ax.set_xticks(range(W + 1)), ax.set_yticks(range(H + 1)), ax.grid(True, color="0.85", lw=0.5)
    ax.tick_params(labelsize=7)
    for gy in range(-(-HO // TILE)):
        for gx in range(-(-WO // TILE)):
            ax.add_patch(Rectangle((gx * TILE, gy * TILE), TILE, TILE, fill=False, lw=1, ls="--", color="0.5"))
    ax.add_patch(Rectangle((bx * TILE, by * TILE), HALO_W, HALO_H, color="tab:blue", alpha=0.2,
                           label=f"window: tile + halo, {HALO_H} x {HALO_W} (loaded into shared memory)"))
    ax.add_patch(Rectangle((bx * TILE, by * TILE), TILE, TILE, fill=False, lw=2, color="tab:orange",
                           label=f"block ({bx}, {by})'s outputs' top-left inputs, {TILE} x {TILE}"))
    for r in range(0, HALO_H, TILE):
        for s in range(0, HALO_W, TILE):
            ax.plot(bx * TILE + s + 0.5, by * TILE + r + 0.5, "o", color="tab:red")
    ax.plot([], [], "o", color="tab:red", label="what thread (0, 0) loads: every TILE-th row and column")
    ax.add_patch(Rectangle((bx * TILE + TILE - 1, by * TILE + TILE - 1), KW, KH, fill=False, lw=1.5, color="k",
                           label=f"the {KH} x {KW} taps of the block's last output"))
    ax.set_xlabel("input column"), ax.set_ylabel("input row")
    ax.set_title(f"x ({H} x {W}, one channel) under the {-(-WO // TILE)} x {-(-HO // TILE)} output tiles "
                 f"(dashed)", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=7)
    fig.tight_layout()
    return fig


show_figure(draw_halo(), OUT / "conv_halo.svg")

reference = np.einsum("fcpq,cpqij->fij", WEIGHTS,
                      np.lib.stride_tricks.sliding_window_view(X, (HO, WO), axis=(1, 2)))   # NumPy's direct sum
blocks = F * -(-HO // TILE) * -(-WO // TILE)
formulas = {"naive": (F * HO * WO * CH * KH * KW,) * 2,                      # each output's window and taps
            "tiled": (blocks * CH * HALO_H * HALO_W, blocks * CH * KH * KW)}   # each block's, once per channel
conv_loads = {}
for name, kernel in [("naive", conv_naive), ("tiled", conv_tiled)]:
    counted = counting(X), counting(WEIGHTS)
    np.testing.assert_allclose(launch_conv(kernel, *counted), reference, rtol=1e-12, atol=1e-12)
    conv_loads[name] = loads_seen(counted, formulas[name])
assert conv_loads["naive"] == (4608, 4608) and conv_loads["tiled"] == (1152, 288)
(x_naive, w_naive), (x_tiled, w_tiled) = conv_loads["naive"], conv_loads["tiled"]
assert w_naive // w_tiled == TILE * TILE == 16 and x_naive // x_tiled == 4
assert HALO_H * HALO_W == 36 and TILE * TILE * KH * KW == 144 and KH * KW == 9
assert [round(t * t * KH * KW / ((t + KH - 1) * (t + KW - 1)), 2) for t in (TILE, 16, 1000)] == [4.0, 7.11, 8.96]
print(f"conv ({CH} channels, {H}x{W}) * {F} filters {KH}x{KW}: loads of x, w: naive {conv_loads['naive']}, "
      f"tiled {conv_loads['tiled']}")

# %% [markdown]
# The taps are loaded TILE x TILE = 16 times fewer (each block loads them once per channel instead
# of once per thread), the input only 4 times fewer: a block loads
# $(\text{TILE}+K_h-1)(\text{TILE}+K_w-1) = 36$ input elements per channel for its
# $\text{TILE}^2 K_h K_w = 144$ reads. The halo is the price. It shrinks as the tile grows (with
# 16 x 16 tiles the input is loaded 7.11 times fewer, with 1000 x 1000 tiles 8.96 times), and the
# ratio tends to $K_h K_w = 9$: each input element read by 9 outputs, loaded once.
#
# **The project's convolution** (`kernels/conv2d/cuda.py`, `tiles.py`, `tiles_simple.py`) is
# organised differently. `cuda.py` gives one thread per output element that sums its terms in a
# fixed order (so results are the same run to run), for the forward pass and both gradients: our
# `conv_naive`, with batch, stride, padding, dilation and groups. On a GPU, with `groups == 1`,
# the three directions run instead as **implicit GEMMs** (`tiles.py`): each is a matrix product
# whose operand, the im2col matrix $X[(c,p,q), (n,i,j)]$, is never formed but read from $x$ as a
# tile needs it, tiled `TILE x TILE` in shared memory exactly like `matmul_tiled` (`tiles_simple.py`,
# the default; `tiles.py` also has a register-blocked variant, and cuts the long inner dimension of
# the weight gradient into pieces, split-K). The tiles' rows are filters, their columns output
# positions: an input element is loaded once per block of TILE filters for each of the $K_h K_w$
# taps that read it. Trading the halo for the generality of one product shape for all three
# directions, it makes as many loads of $x$ here as our halo kernel, and more of $w$, as the
# counter shows (run in the simulator, where the project itself runs its tiles only in its tests).

# %%
from kernels import conv2d                                            # noqa: E402
from kernels.conv2d import cuda as conv_cuda, tiles                  # noqa: E402
from kernels.options import ConvGeometry                              # noqa: E402

assert conv_cuda.TILED == (not SIMULATED) and tiles.VARIANT == "simple"
project = conv2d.conv2d_forward(X[None], WEIGHTS, None, backend="cuda")        # one thread per output here
np.testing.assert_allclose(project[0], reference, rtol=1e-12, atol=1e-12)
y_gemm = np.full((1, F, HO, WO), np.nan)
counted = counting(X[None]), counting(WEIGHTS)
with quick_threads():
    tiles.forward(*counted, np.zeros(F), ConvGeometry(), False, y_gemm)
np.testing.assert_allclose(y_gemm[0], reference, rtol=1e-12, atol=1e-12)
gemm_tile = tiles.TILE                 # kernels.dense.cuda's TILE: smaller in the simulator than on a GPU
conv_loads["implicit GEMM"] = loads_seen(counted, (-(-F // gemm_tile) * CH * KH * KW * HO * WO,   # once per
                                                   -(-(HO * WO) // gemm_tile) * F * CH * KH * KW))  # row, column
if SIMULATED:
    assert gemm_tile == TILE and conv_loads["implicit GEMM"] == (1152, 1152)
    assert conv_loads["implicit GEMM"][0] == x_tiled and conv_loads["implicit GEMM"][1] > w_tiled
print(f"{'kernel':14s} {'loads of x':>10s} {'loads of w':>10s}")
for name, (x_loads, w_loads) in conv_loads.items():
    print(f"{name:14s} {x_loads:10d} {w_loads:10d}")

# %% [markdown]
# ## 4. Exercises
#
# 1. **The tiled product, checked.** Write `matmul_tiled` yourself in the stub below (no peeking at
#    section 2), then run the check: `check_tiled_matmul` launches your kernel with
#    `launch_matmul` (blocks of `TILE x TILE` threads, x along the columns) in the simulator, on
#    three products, two of them not a multiple of TILE, and holds every element to `np.matmul`.
#    It also counts your kernel's global loads (they must be a tiled kernel's) and reads its source
#    for the barriers. Below the stub: the check on section 2's kernel (it passes), on the same
#    kernel without its bounds checks, and on the one-thread-per-output kernel (right, but not
#    tiled).
# 2. Give `conv_tiled` a stride of 2: how large is the window of a `TILE x TILE` output tile now,
#    and what happens to the ratio of loads?
# 3. In `matmul_tiled`, load the tile of $B$ transposed (`sb[tx, ty]`) and read it so: still right?
#    On a GPU, which one makes neighbouring threads read neighbouring words of shared memory?

# %%
@cuda.jit
def my_matmul_tiled(a, b, c):
    raise NotImplementedError  # your code here: sa, sb = cuda.shared.array((TILE, TILE), float64), ...


print(attempt(check_tiled_matmul, my_matmul_tiled))
assert attempt(check_tiled_matmul, my_matmul_tiled).status == "not attempted" or not SIMULATED
print(check_tiled_matmul(matmul_tiled))


# %% The checker on two wrong kernels: what it says.
@cuda.jit
def matmul_unguarded(a, b, c):
    """matmul_tiled without its bounds checks: right when the sizes are multiples of TILE only."""
    sa = cuda.shared.array((TILE, TILE), float64)
    sb = cuda.shared.array((TILE, TILE), float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i, j = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    acc = 0.0
    for t in range((a.shape[1] + TILE - 1) // TILE):
        sa[ty, tx] = a[i, t * TILE + tx]
        sb[ty, tx] = b[t * TILE + ty, j]
        cuda.syncthreads()
        for kk in range(TILE):
            acc += sa[ty, kk] * sb[kk, tx]
        cuda.syncthreads()
    c[i, j] = acc


np.testing.assert_allclose(launch_matmul(matmul_unguarded, A, B), A @ B, rtol=1e-12, atol=1e-12)  # 12x8 @ 8x16
verdicts = {}
for name, kernel in [("unguarded", matmul_unguarded), ("naive", matmul_naive)]:
    verdicts[name] = attempt(check_tiled_matmul, kernel)
    print(verdicts[name], end="\n\n")
if SIMULATED:        # on a GPU nothing checks the indices (a wrong value, or a crash) and nothing counts loads
    assert verdicts["unguarded"].status == "FAILED" and "outside an array" in verdicts["unguarded"].message
    naive_total = sum(naive_loads(*shape) for shape in ((8, 8, 8), (6, 5, 7), (9, 4, 5)))
    assert verdicts["naive"].status == "FAILED" and f"made {naive_total} global loads" in verdicts["naive"].message
print(f"done: tiled matmul {loads_naive} -> {loads_tiled} global loads; conv x loads {conv_loads['naive'][0]} "
      f"-> {conv_loads['tiled'][0]}")
