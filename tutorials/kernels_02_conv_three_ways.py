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
# # Kernels, lesson 2: convolution three ways
#
# *Follows Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016) for
# Winograd's minimal filtering F(2, 3) and F(2x2, 3x3), and the roofline model of Williams,
# Waterman and Patterson (2009) for judging a kernel's speed.*
#
# A convolution layer computes, for every image $n$, filter $f$ and output position $(i, j)$,
#
# $$y_{n,f,i,j} = \sum_{c,p,q} w_{f,c,p,q}\, x_{n,c,i+p,j+q}$$
#
# (a cross-correlation, stride 1, no padding). The sum is the same whichever way it is computed;
# what changes is how many operations it takes, how well they use the machine, and how the
# float32 roundings add up. We compute one convolution three ways:
#
# 1. **direct loops**, seven nested loops compiled by Numba, one `(image, filter)` pair per
#    `prange` iteration;
# 2. **im2col + GEMM**: copy the input windows into a matrix, so that the convolution is one
#    matrix product, done here by BLAS (`kernels/conv2d/cpu.py` does the same with its own
#    product, section 7);
# 3. **Winograd F(2x2, 3x3)**: transform 4x4 input tiles and 3x3 filters so that each 2x2 output
#    tile takes 16 multiplications instead of 36.
#
# Then we compare their float32 errors against a float64 reference, time them, and place them on
# the machine's roofline. Pictures go to `tutorials/_output/kernels_02_conv_three_ways/` (or
# `$TUTORIAL_OUTPUT`).

# %%
import math
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ROOT = HERE.parent if HERE.name == "tutorials" else HERE
sys.path.insert(0, str(ROOT))  # the repository: `kernels` and `chainrule` import without installing

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files, never open a window
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numba
import numpy as np
from numba import njit, prange

import chainrule.exercises.kernels as kx
from chainrule.exercises import attempt
from chainrule.lessons import show_figure
from kernels import microkernel, roofline, runtime
from kernels.conv2d import conv2d_forward, cpu as conv_cpu, winograd
from kernels.options import ConvGeometry

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "kernels_02_conv_three_ways"
OUT.mkdir(parents=True, exist_ok=True)
runtime.ensure_configured()   # the library's threading layer, before our first parallel loop

# The problem: a small layer, 3x3 filters, float32 as in training.
N, C, H, W, F = 8, 16, 14, 14, 32
KH = KW = 3
HO, WO = H - KH + 1, W - KW + 1
rng = np.random.default_rng(0)
x = rng.normal(size=(N, C, H, W)).astype(np.float32)
w = (rng.normal(size=(F, C, KH, KW)) / math.sqrt(C * KH * KW)).astype(np.float32)
reference = conv2d_forward(x.astype(np.float64), w.astype(np.float64), backend="numpy")   # float64: the truth
FLOPS = 2 * N * F * HO * WO * C * KH * KW          # one multiply and one add per term of the sum
print(f"x {x.shape}, w {w.shape} -> y {reference.shape}: {FLOPS:,} FLOPs by the formula")

# %% [markdown]
# ## 1. Direct loops
#
# The formula as written, one output at a time. Each `prange` iteration owns one `(n, f)` pair
# and writes only `y[n, f]`: no two iterations write the same element (lesson 1), so the result is
# the same bits at any thread count. The sum runs over $(c, p, q)$ in that order, in float32.

# %%
@njit(parallel=True)
def conv_direct(x, w):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho, wo = h - kh + 1, wd - kw + 1
    y = np.empty((n, f, ho, wo), dtype=np.float32)
    for t in prange(n * f):
        b, k = t // f, t % f
        for i in range(ho):
            for j in range(wo):
                s = np.float32(0.0)
                for cc in range(c):
                    for p in range(kh):
                        for q in range(kw):
                            s += w[k, cc, p, q] * x[b, cc, i + p, j + q]
                y[b, k, i, j] = s
    return y


def at_threads(function, *args, threads):
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return function(*args)
    finally:
        numba.set_num_threads(before)


y_direct = conv_direct(x, w)
counts = range(1, min(numba.config.NUMBA_NUM_THREADS, 2) + 1)
assert len({at_threads(conv_direct, x, w, threads=t).tobytes() for t in counts}) == 1   # same bits, 1 and 2 threads
print("direct loops: max |y - reference| =", f"{np.abs(y_direct - reference).max():.2e}")

# %% [markdown]
# ## 2. im2col + GEMM
#
# For one image, write each input window that the filters see as a column: row $(c, p, q)$ of
# `cols` holds $x_{c, i+p, j+q}$ for every output position $(i, j)$. Then the convolution of all
# $F$ filters is one matrix product, $(F, C k_h k_w) \times (C k_h k_w, H_o W_o)$, and BLAS does
# it near the machine's peak. The price: `cols` holds each input value up to $k_h k_w = 9$ times.
# The picture shows it for one channel of a 5x5 image: each column of `cols` is one 3x3 window
# (read row by row), each row one kernel entry $(p, q)$.

# %%
def im2col(image, kh, kw):
    """cols (C*kh*kw, Ho*Wo) of one image (C, H, W): cols[(c*kh + p)*kw + q, i*Wo + j] = image[c, i+p, j+q]."""
    c, h, wd = image.shape
    ho, wo = h - kh + 1, wd - kw + 1
    cols = np.empty((c, kh, kw, ho, wo), dtype=image.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, p, q] = image[:, p:p + ho, q:q + wo]     # the window that kernel entry (p, q) multiplies
    return cols.reshape(c * kh * kw, ho * wo)


def conv_im2col(x, w):
    f = w.shape[0]
    w_mat = w.reshape(f, -1)                                 # (F, C*kh*kw): the filters as rows
    return np.stack([(w_mat @ im2col(image, KH, KW)).reshape(f, HO, WO) for image in x])


y_im2col = conv_im2col(x, w)
small = np.arange(25, dtype=np.float32).reshape(1, 5, 5)
small_cols = im2col(small, 3, 3)
assert small_cols.shape == (9, 9) and (small_cols[:, 0] == small[0, :3, :3].ravel()).all()
copies = np.bincount(small_cols.astype(int).ravel(), minlength=25).reshape(5, 5)
assert copies[2, 2] == 9 and copies[0, 0] == 1         # the centre pixel is in all 9 windows, a corner in 1
print("im2col: max |y - reference| =", f"{np.abs(y_im2col - reference).max():.2e}",
      f"; cols of one image {im2col(x[0], KH, KW).shape}, {KH * KW}x the values of the image (less the borders)")

fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.7, 1]})
for ax, (data, title) in zip(axes, [(small[0], "image (5x5)"), (small_cols, "cols (9 x 9): one window a column"),
                                    (copies, "copies of each pixel in cols")]):
    ax.imshow(data, cmap="viridis")
    for (r, s), v in np.ndenumerate(data):
        ax.text(s, r, f"{v:.0f}", ha="center", va="center", fontsize=7, color="w")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
axes[1].set_xlabel("output position i*3 + j")
axes[1].set_ylabel("kernel entry p*3 + q")
fig.tight_layout()
show_figure(fig, OUT / "im2col.svg")

# %% [markdown]
# ## 3. Winograd F(2, 3): two outputs of a 3-tap filter with 4 multiplications
#
# Start in one dimension, as Lavin and Gray do. Two outputs of a 3-tap correlation of
# the inputs $d_0 \dots d_3$ with the filter $g_0, g_1, g_2$ take 6 multiplications written out:
# $y_0 = d_0 g_0 + d_1 g_1 + d_2 g_2$ and $y_1 = d_1 g_0 + d_2 g_1 + d_3 g_2$. Winograd's
# minimal algorithm F(2, 3) takes 4:
#
# $$m_1 = (d_0 - d_2)\, g_0, \quad m_2 = (d_1 + d_2)\, \tfrac{g_0 + g_1 + g_2}{2}, \quad
#   m_3 = (d_2 - d_1)\, \tfrac{g_0 - g_1 + g_2}{2}, \quad m_4 = (d_1 - d_3)\, g_2,$$
# $$y_0 = m_1 + m_2 + m_3, \qquad y_1 = m_2 - m_3 - m_4.$$
#
# In matrices, $y = A^\top [(G g) \odot (B^\top d)]$: $B^\top$ transforms the inputs, $G$ the
# filter (once, however many inputs it meets), $\odot$ is the 4 multiplications, $A^\top$ the
# output transform. The filter's transform has halves in it, so we check the identity in exact
# arithmetic, with fractions.

# %%
print("B^T =\n", kx.BT, "\nG =\n", kx.G, "\nA^T =\n", kx.AT)


def exact(matrix):
    return np.array([[Fraction(v).limit_denominator() for v in row] for row in matrix], dtype=object)


d = np.array([Fraction(v) for v in (3, -1, 4, 1)], dtype=object)
g = np.array([Fraction(v) for v in (5, 9, -2)], dtype=object)
products = exact(kx.G) @ g * (exact(kx.BT) @ d)              # the 4 multiplications
y_winograd_1d = exact(kx.AT) @ products
y_direct_1d = np.array([d[0:3] @ g, d[1:4] @ g])            # the 6 multiplications
print("F(2, 3):", [str(v) for v in y_winograd_1d], " direct:", [str(v) for v in y_direct_1d])
assert (y_winograd_1d == y_direct_1d).all() and products.size == 4

# %% [markdown]
# ## 4. F(2x2, 3x3): the 2-D nesting
#
# Nest the 1-D algorithm in both directions: a 2x2 output tile $Y$ from a 4x4 input tile $d$ and
# a 3x3 filter $g$ is
#
# $$Y = A^\top \left[ (G g G^\top) \odot (B^\top d B) \right] A,$$
#
# 16 multiplications (the 4x4 elementwise product) instead of $2 \cdot 2 \cdot 9 = 36$: a factor
# **2.25** (Lavin and Gray). Neighbouring output tiles overlap their input tiles by
# two rows or columns. In a layer the channels add up *in the transformed domain*: for each of
# the 16 entries $k$ of the 4x4 tile, $M_k = U_k V_k$ with $U_k$ the transformed filters
# $(F, C)$ and $V_k$ the transformed input tiles $(C, \text{tiles})$: 16 matrix products, then
# one output transform per tile. Below, the whole layer in NumPy, in float32 (the transforms'
# entries, 0, 1, -1 and 1/2, are exact in float32).

# %%
BT32, G32, AT32 = (m.astype(np.float32) for m in (kx.BT, kx.G, kx.AT))


def conv_winograd(x, w):
    n, c, h, wd = x.shape
    f = w.shape[0]
    th, tw = (h - 2) // 2, (wd - 2) // 2                           # 2x2 output tiles (h - 2, wd - 2 even)
    u = G32 @ w @ G32.T                                            # (F, C, 4, 4): each filter transformed once
    tiles = np.lib.stride_tricks.sliding_window_view(x, (4, 4), axis=(2, 3))[:, :, ::2, ::2]  # (N, C, th, tw, 4, 4)
    v = BT32 @ tiles @ BT32.T                                      # (N, C, th, tw, 4, 4)
    u_k = u.reshape(f, c, 16).transpose(2, 0, 1)                   # (16, F, C)
    v_k = v.reshape(n, c, th * tw, 16).transpose(3, 1, 0, 2).reshape(16, c, n * th * tw)   # (16, C, tiles)
    m = u_k @ v_k                                                  # 16 products: (16, F, tiles)
    m = m.reshape(4, 4, f, n, th, tw).transpose(3, 2, 4, 5, 0, 1)  # (N, F, th, tw, 4, 4)
    y = AT32 @ m @ AT32.T                                          # (N, F, th, tw, 2, 2)
    return y.transpose(0, 1, 2, 4, 3, 5).reshape(n, f, 2 * th, 2 * tw), u_k.shape, v_k.shape


y_winograd, u_shape, v_shape = conv_winograd(x, w)
multiplications = {"direct": N * F * HO * WO * C * KH * KW,
                   "Winograd": u_shape[0] * u_shape[1] * u_shape[2] * v_shape[2]}   # 16 x F x C x tiles
ratio = multiplications["direct"] / multiplications["Winograd"]
print(f"multiplications: direct {multiplications['direct']:,}, Winograd {multiplications['Winograd']:,}: "
      f"{ratio}x fewer")
assert ratio == 2.25
print("Winograd: max |y - reference| =", f"{np.abs(y_winograd - reference).max():.2e}")

# %% [markdown]
# The transforms are not free: $B^\top d B$ is 32 additions per tile and channel, $A^\top M A$
# 24 per tile and filter, which is why Winograd pays off when $C$ and $F$ are large enough that the
# 16 products dominate. And only for 3x3, stride 1: `kernels/conv2d/winograd.py`, the library's
# version, says where it applies (`eligible`).
#
# ## 5. Their float32 errors
#
# All three compute the same sum in float32, in different orders, with different intermediate
# values; so do the library's CPU paths, `kernels/conv2d/cpu.py`'s im2col (Numba threads over
# the images, one product each by the micro-kernel of section 7) and `kernels/conv2d/winograd.py`'s
# F(2x2, 3x3), which the cpu backend picks for this layer, and its F(4x4, 3x3). The largest
# difference between each pair, and the error of each against the float64 reference, all relative
# to the largest output:

# %%
def library_im2col(x, w):
    """The cpu backend's im2col path (kernels/conv2d/cpu.py), its Winograd rule switched off."""
    conv_cpu.WINOGRAD = False
    try:
        return conv2d_forward(x, w, backend="cpu")
    finally:
        conv_cpu.WINOGRAD = None


def library_winograd(x, w):
    """kernels/conv2d/winograd.py: the transforms compiled, the 16 products by its micro-kernel, blocks of tiles."""
    return winograd.forward(x, w, None, ConvGeometry())


def library_winograd4(x, w):
    """The same with 4x4 output tiles, F(4x4, 3x3): an opt-in of the library (``tile=4``)."""
    return winograd.forward(x, w, None, ConvGeometry(), tile=4)


print("the cpu backend's own choice for this layer: Winograd" if conv_cpu.use_winograd(w.shape, ConvGeometry())
      else "the cpu backend's own choice for this layer: im2col")
results = {"direct": y_direct, "im2col": y_im2col, "Winograd": y_winograd, "lib im2col": library_im2col(x, w),
           "lib Winograd": library_winograd(x, w), "lib F(4x4)": library_winograd4(x, w)}
scale = np.abs(reference).max()
errors = {name: float(np.abs(y - reference).max() / scale) for name, y in results.items()}
print(f"{'':14s}" + "".join(f"{name:>14s}" for name in results) + "    vs float64")
for name, y in results.items():
    row = "".join(f"{np.abs(y - other).max() / scale:14.1e}" for other in results.values())
    print(f"{name:14s}{row}  {errors[name]:12.1e}")
winograd_ratio = errors["Winograd"] / max(errors["direct"], errors["im2col"])
library_ratio = errors["lib Winograd"] / errors["lib im2col"]
f4_ratio = errors["lib F(4x4)"] / errors["lib im2col"]
print(f"Winograd's error: {winograd_ratio:.2f}x the larger of the direct and im2col errors; "
      f"the library's: {library_ratio:.2f}x its im2col's; with 4x4 tiles: {f4_ratio:.1f}x")
u32 = kx.U32
for name, err in errors.items():
    assert err < (1000 if name == "lib F(4x4)" else 100) * u32, name    # a few dozen roundings (hundreds for F(4x4))
assert max(winograd_ratio, library_ratio) < winograd.FLOAT32_ERROR_FACTOR    # the library tests' bound: 4
assert errors["lib Winograd"] < errors["lib F(4x4)"] and f4_ratio < winograd.FLOAT32_ERROR_FACTOR_F4

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1.4, 1]})
bins = np.linspace(-12, 12, 97)
for (name, y), style in zip(results.items(), ["-", "--", "-", ":", "--", "-."]):
    left.hist(((y - reference) / (u32 * scale)).ravel(), bins=bins, histtype="step", ls=style, lw=1.2, label=name)
left.set_yscale("log")
left.set_xlabel("error of each output, in units of u max|y|  (u = 2^-24)")
left.set_ylabel("outputs")
left.legend(fontsize=8)
names = list(results)
right.barh(names, [errors[k] / u32 for k in names], label="max")
right.barh(names, [float(np.sqrt(np.mean((results[k] - reference) ** 2)) / scale / u32) for k in names],
           label="root mean square")
right.invert_yaxis()
right.set_xlabel("error / (u max|y|)")
right.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "errors.svg")

# %% [markdown]
# Which order is the most accurate depends on the sizes. The direct loops add the 144 terms of
# each output one after another, so the last additions round at the size of the whole sum;
# im2col's BLAS adds them in its own blocked order; Winograd's transforms make intermediate values
# up to 4 times the inputs' size (after $B^\top d B$) that round at a larger scale, but each of its
# 16 products sums only the 16 channels. F(2x2, 3x3) keeps its error within a few times the
# others' (the ratio printed above). The larger tile F(4x4, 3x3) saves more multiplications (36
# for 16 outputs instead of 64), but its transforms have larger entries (5 and 8 in $B^\top$, twelfths
# in $G$, from Toom-Cook's evaluation points 0, 1, -1, 1/2, -1/2: `kernels/conv2d/winograd_f4.py`
# builds them exactly), and its float32 error is an order of magnitude larger: the last row above,
# and the widest histogram. That is why the library computes F(2x2, 3x3) unless asked for the larger
# tile (`tile=4`): a trade of accuracy for speed that the user makes, not the library.
#
# ## 6. On the roofline
#
# How fast is fast? The roofline model (`kernels/roofline.py`) bounds a kernel's FLOP/s by the
# machine's peak (measured with a loop of FMAs on the CPU's widest vectors, written in LLVM IR:
# Numba's own vectoriser prefers 256-bit vectors even on AVX-512 CPUs, and a loop it vectorised
# would measure half the peak there) and by its memory bandwidth times the
# kernel's **arithmetic intensity**, FLOPs per byte moved. We count the convolution's FLOPs by the
# formula for all three (for Winograd that is its *effective* rate: it does fewer multiplications)
# and its bytes as the least any of them must move: read $x$ and $w$, write $y$. The times are
# the best of a few runs, on this machine, this run (printed and drawn, never checked).

# %%
peak = roofline.peak_flops(seconds=0.2)
bandwidth = roofline.triad_bandwidth(1 << 22, seconds=0.2)
roof = roofline.Roofline(peak, bandwidth)
print(f"peak {peak / 1e9:.0f} GFLOP/s (FMA loop), triad {bandwidth / 1e9:.1f} GB/s: ridge at {roof.ridge:.1f} "
      f"FLOP/byte")

BYTES = 4 * (x.size + w.size + reference.size)


def best_of(function, *args, repeat=5):
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best


timed = {"direct loops": best_of(conv_direct, x, w), "im2col + GEMM": best_of(conv_im2col, x, w),
         "Winograd (NumPy)": best_of(conv_winograd, x, w), "library im2col": best_of(library_im2col, x, w),
         "library Winograd": best_of(library_winograd, x, w), "library F(4x4)": best_of(library_winograd4, x, w)}
ai = FLOPS / BYTES
assert round(ai, 1) == 39.9
print(f"arithmetic intensity {ai:.1f} FLOP/byte: bound {roof.bound(ai) / 1e9:.0f} GFLOP/s "
      f"({'compute' if ai > roof.ridge else 'memory'}-bound)")
for name, seconds in timed.items():
    print(f"{name:22s} {seconds * 1e3:7.2f} ms  {FLOPS / seconds / 1e9:6.1f} GFLOP/s  "
          f"{roof.fraction(FLOPS, BYTES, seconds):6.1%} of the bound")

fig, ax = plt.subplots(figsize=(9, 4.2))
roof.plot(ax, [(name, FLOPS, BYTES, seconds) for name, seconds in timed.items()])   # the legend beside the axes
ax.set_ylim(bottom=min(FLOPS / t for t in timed.values()) / 1e9 / 3)
ax.set_title(f"conv {x.shape} * {w.shape}: the same FLOPs and bytes, six speeds", fontsize=9)
fig.tight_layout()
show_figure(fig, OUT / "roofline.svg")

# %% [markdown]
# All six do the same work on the same data, so they sit at one arithmetic intensity, 39.9
# FLOP/byte: right of the ridge on any machine whose ridge is lower (this one's is printed above),
# where a kernel is compute-bound and the height of its dot says how much of the machine it uses.
# The direct loops are scalar float32 sums in a fixed order, which LLVM may not vectorise (that
# would reorder the additions); im2col hands the work to BLAS, which is vectorised and blocked for
# the caches; our NumPy Winograd does 2.25x fewer multiplications but pays for its transforms in
# NumPy's temporaries. The library's Winograd (`kernels/conv2d/winograd.py`) computes the
# transforms in compiled loops and keeps each block of tiles in the L2 cache between the
# transforms and the products.
#
# Two cautions when reading such a plot. A fraction is only as good as the measurements under it:
# on a busy machine the peak is measured low (the FMA loop waited for a core), and a kernel timed
# in a quieter moment can then show more than 100% of its bound. And Winograd's *effective* rate
# counts FLOPs it never does: doing 2.25x fewer multiplications, it could in principle pass the
# roof.
#
# ## 7. The product itself: a register-blocked micro-kernel
#
# Both im2col and Winograd end in matrix products, and so far BLAS made them. But which BLAS, and
# which of its kernels, is the user's machine's choice (OpenBLAS picks one per CPU, and a variable
# such as `OPENBLAS_CORETYPE` can make it pick another, slower one). So the library makes its
# products itself, `kernels.microkernel.gemm(a, b, c, accumulate)`, with the idea at the heart of
# every fast BLAS: cut `c` into blocks of a few rows by a few SIMD vectors, and keep a block's sums
# in **registers** for the whole inner dimension. Each step $k$ loads one row of `b`'s block (a few
# vectors), broadcasts one value of `a` per row, and does rows x vectors fused multiply-adds: every
# value loaded from memory feeds several of them.
#
# Numba will not produce this from Python loops: its vectoriser makes vectors along $k$ instead
# (gathers down `b`'s columns). So the block is a Numba `@intrinsic`, its loop written in LLVM IR
# with llvmlite (Numba's own code generator) on `<16 x float>` vectors with AVX-512 (`<8 x float>`
# with AVX2) and `llvm.fma`. The loop over blocks is compiled once into a C function (a Numba
# `cfunc`) that the kernels call by name: Numba compiles a jitted function that a kernel calls into
# that kernel and optimises it again there, so with a dozen kernels the blocks would be compiled a
# dozen times on a first run. Below: a plain Numba triple loop, the micro-kernel and BLAS on one
# product of conv2's Winograd shape, on one thread.

# %%
@njit
def naive_matmul(a, b, c):
    """c = a @ b, the textbook loops: each c[i, j] a dot product along k."""
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            total = np.float32(0)
            for k in range(a.shape[1]):
                total += a[i, k] * b[k, j]
            c[i, j] = total


@njit
def by_microkernel(a, b, c):
    microkernel.gemm(a, b, c, False)


@njit
def by_blas(a, b, c):
    np.dot(a, b, c)


print(f"this machine: {microkernel.VECTOR_BYTES}-byte vectors, {microkernel.SUMS} sums kept in registers "
      f"per block ({microkernel.ROWS_WIDE} rows x {microkernel.VECTORS} vectors where c is wide enough)")
assert microkernel.SUMS == microkernel.ROWS_WIDE * microkernel.VECTORS
pa = rng.normal(size=(72, 32)).astype(np.float32)        # V[k] of a block of tiles (tiles, channels)
pb = rng.normal(size=(32, 64)).astype(np.float32)        # U[k]^T (channels, filters)
product_flops = 2 * pa.shape[0] * pa.shape[1] * pb.shape[1]
speeds = {}
with runtime.single_threaded_blas():
    for name, function in [("naive Numba loops", naive_matmul), ("micro-kernel", by_microkernel), ("BLAS", by_blas)]:
        out = np.empty((72, 64), np.float32)
        function(pa, pb, out)
        assert np.allclose(out, pa.astype(np.float64) @ pb, atol=1e-4)
        speeds[name] = product_flops / best_of(lambda: [function(pa, pb, out) for _ in range(200)]) * 200 / 1e9
for name, gflops in speeds.items():
    print(f"{name:18s} {gflops:6.1f} GFLOP/s (one thread)")

# %% [markdown]
# The micro-kernel also fixes the *order* of the sums: each entry of `c` is its start plus
# $a_{ik} b_{kj}$ for $k = 0, 1, \dots$, one fused multiply-add (one rounding) at a time, whichever
# block or padded edge it falls in. So it can be checked bit for bit: a float32 FMA is the exact
# $a b + c$ rounded once, which NumPy can reproduce in float64 for float32 inputs (the product of
# two float32 is exact in float64). A BLAS is free to sum in any order (and its kernels differ from
# CPU to CPU), so its bits may differ from both.

# %%
def fma_in_order(a, b):
    c = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for k in range(a.shape[1]):
        c = (np.outer(a[:, k].astype(np.float64), b[k]) + c).astype(np.float32)   # exact, then rounded once
    return c


ours = np.empty((72, 64), np.float32)
microkernel.gemm(pa, pb, ours, False)
assert np.array_equal(ours, fma_in_order(pa, pb))
blas_product = pa @ pb
print(f"micro-kernel == the FMAs in order, bit for bit; BLAS differs in {np.count_nonzero(blas_product != ours)} "
      f"of {ours.size} entries (by at most {np.abs(blas_product - ours).max():.1e})")

fig, ax = plt.subplots(figsize=(6.5, 2.4))
ax.barh(list(speeds), list(speeds.values()), color=["#999999", "#1f77b4", "#ff7f0e"])
core_peak = peak / 1e9 / numba.get_num_threads()
ax.axvline(core_peak, color="k", ls="--", lw=1)
ax.text(core_peak, 2.35, " one core's peak", fontsize=8, va="center")
ax.set_xlim(0, 1.35 * max(core_peak, *speeds.values()))
ax.set_xlabel("GFLOP/s, (72 x 32) @ (32 x 64), one thread")
ax.invert_yaxis()
fig.tight_layout()
show_figure(fig, OUT / "microkernel.svg")

# %% [markdown]
# The naive loops are a dot product per entry: one scalar multiply-add per step, each waiting for
# the one before. The micro-kernel keeps 16 independent vector sums going (16 x 16 floats with
# AVX-512) and gets a long way towards a core's peak, beside BLAS (on some machines and BLAS
# settings ahead of it, on others behind; the benchmark `benchmarks/kernels.py` prints both).
# What a full BLAS adds on top is mostly for large matrices: packing `a` and `b` into contiguous
# panels and blocking for every cache level.
#
# ## 8. Between kernels: the bytes a fusion saves
#
# In a training step a convolution is followed by its ReLU and a 2x2 max pooling, and its backward
# pass starts from the pooling's gradient $g$, a quarter of the convolution's output in size. Made one
# kernel after the other, the pooling's backward scatters $g$ to each window's maximum (three zeros of
# four) into a full-size array $dy$, and the convolution's backward reads $dy$ back, with the ReLU's
# output again for its mask. The first convolution of a CNN is memory-bound (its arithmetic intensity
# is a few FLOPs per byte: one input channel), so those bytes are its time: $dy$ is written once and
# read once for nothing. Fused, the convolution's own pass scatters each image's $g$ into its
# scratch, in cache, just before multiplying with it; the mask goes on $g$ itself (where the pooled
# value is positive: that is the value the mask reads at the window's maximum).
#
# The reverse sweep does this for a max pooling over a `conv2d(..., activation="relu")` by itself: a
# *fused rule* (`autodiff.primitives.fuse_vjp`) runs where the convolution's output feeds the pooling
# alone and nothing (a hook, a retained grad) asks for its adjoint; it calls
# `kernels.conv2d.backward_pooled`, which gives the two kernels' bits exactly. The bytes below are
# the least each way must move (every array read or written once); the times are this machine's.

# %%
from kernels import conv2d as conv_kernels, pool2d as pool_kernels
from kernels.options import PoolGeometry

x1 = rng.normal(size=(64, 1, 28, 28)).astype(np.float32)          # the Keras CNN's first layer
w1 = (rng.normal(size=(32, 1, 3, 3)) / 3).astype(np.float32)
geometry, pool = ConvGeometry(), PoolGeometry(2)
relu_out = conv_kernels.forward(x1, w1, None, geometry, relu=True).copy()
pooled = pool_kernels.max_values(relu_out, pool).copy()
g1 = rng.normal(size=pooled.shape).astype(np.float32)


def two_kernels():
    dy = pool_kernels.max_scatter(g1, relu_out, pool)                  # the full-size gradient, stored
    return conv_kernels.backward(dy, x1, w1, geometry, input_grad=False, relu_out=relu_out)


def fused():
    return conv_kernels.backward_pooled(g1, pooled, x1, w1, relu_out, geometry, pool, input_grad=False)


assert all(a is b is None or np.array_equal(a, b) for a, b in zip(two_kernels(), fused()))   # the same bits
P, Y = g1.nbytes, relu_out.nbytes
moved = {"two kernels": (P + Y + Y) + (Y + Y + x1.nbytes), "fused": (P + P + Y + x1.nbytes)}
assert moved["two kernels"] - moved["fused"] == 3 * Y - P              # dy written and read, relu_out read again
times = {"two kernels": best_of(two_kernels), "fused": best_of(fused)}
for name in moved:
    print(f"{name:12s} {moved[name] / 1e6:6.1f} MB moved at least, {times[name] * 1e3:6.2f} ms")

fig, axes = plt.subplots(1, 2, figsize=(7.5, 2.2))
for ax, values, label in [(axes[0], {k: v / 1e6 for k, v in moved.items()}, "MB moved (least)"),
                          (axes[1], {k: v * 1e3 for k, v in times.items()}, "ms, this machine")]:
    ax.barh(list(values), list(values.values()), color=["#999999", "#1f77b4"])
    ax.set_xlabel(label)
    ax.invert_yaxis()
axes[1].set_yticks([])
fig.suptitle("conv1's backward weight from the pooling's gradient (64 images)", fontsize=9)
fig.tight_layout()
show_figure(fig, OUT / "fusion.svg")

# %% [markdown]
# The fused pass moves about a third of the bytes. It cannot help a compute-bound kernel as much
# (conv2's backward, Winograd's, still takes the scatter, masked, as its input); it is the memory-bound
# kernels, on the left of the roofline, that fusion moves up.
#
# ## 9. Your turn: im2col, Winograd's input transform, a blocked product
#
# Three exercises, checked against NumPy (`chainrule.exercises.kernels`; answers in
# `chainrule/exercises/solutions/kernels.py`, try first):
#
# - `im2col(x, kh, kw)`: one image `x` (C, H, W) to `cols` (C kh kw, Ho Wo), rows in the order
#   $(c, p, q)$, held to NumPy's `sliding_window_view`;
# - `winograd_input_transform(d)`: $B^\top d B$ for a stack of 4x4 tiles `d` (..., 4, 4) (`kx.BT`
#   is $B^\top$);
# - `matmul_blocked(a, b)`: $a b$ by 2x2 blocks of $c$, the micro-kernel's idea in scalars: four
#   running sums per block, kept in local variables over the whole $k$ loop (in Numba, `@njit`),
#   then the last row and column when $M$ or $N$ is odd. The checker's product is (5, 6) @ (6, 7).

# %%
def im2col_answer(x, kh, kw):
    raise NotImplementedError  # your code here


def winograd_input_transform_answer(d):
    raise NotImplementedError  # your code here


def matmul_blocked_answer(a, b):
    raise NotImplementedError  # your code here


for check, answer in [(kx.check_im2col, im2col_answer),
                      (kx.check_winograd_input_transform, winograd_input_transform_answer),
                      (kx.check_matmul_blocked, matmul_blocked_answer)]:
    print(attempt(check, answer))

# %% [markdown]
# The solutions pass, and so does this lesson's own `im2col` of section 2:

# %%
from chainrule.exercises.solutions.kernels import SOLUTIONS

for name in ("im2col", "winograd_input_transform", "matmul_blocked"):
    print(kx.CHECKS[name](SOLUTIONS[name]))
print(kx.check_im2col(im2col))

# %% [markdown]
# A classic mistake: the rows in the order $(c, q, p)$ instead of $(c, p, q)$. The product with
# the filters would then pair weights with the wrong windows. The checker's kernel is 3x2, so row
# $2p + q$ of a channel should hold entry $(p, q)$ but holds entry $(p', q')$ with $3q' + p' = 2p + q$:
# the two agree only where $p = 2q$, at $(0, 0)$ and $(2, 1)$, rows 0 and 5 of each channel. The
# table names wrong rows only.

# %%
def im2col_q_before_p(x, kh, kw):
    c, h, wd = x.shape
    ho, wo = h - kh + 1, wd - kw + 1
    return np.stack([x[k, p:p + ho, q:q + wo].ravel() for k in range(c) for q in range(kw) for p in range(kh)])


outcome = attempt(kx.check_im2col, im2col_q_before_p)
print("\n".join(outcome.message.splitlines()[:8]))
assert outcome.status == "FAILED"
wrong_rows = sorted({int(line.split("[")[1].split(",")[0]) for line in outcome.message.splitlines()
                     if line.startswith("cols ")})
print("wrong rows among those shown:", wrong_rows)
assert 0 not in wrong_rows and 5 not in wrong_rows       # (p, q) = (0, 0) and (2, 1): row 0 and row 5 in both orders

# %% [markdown]
# The blocked product's classic mistake: the loops step over whole blocks only, and with odd sizes
# the last row and column of $c$ are never written. The checker names exactly those entries.

# %%
def matmul_whole_blocks_only(a, b):
    c = np.zeros((a.shape[0], b.shape[1]))
    for i in range(0, a.shape[0] - 1, 2):
        for j in range(0, b.shape[1] - 1, 2):
            c[i:i + 2, j:j + 2] = a[i:i + 2] @ b[:, j:j + 2]
    return c


outcome = attempt(kx.check_matmul_blocked, matmul_whole_blocks_only)
print("\n".join(outcome.message.splitlines()[:6]))
wrong = [tuple(int(v) for v in line.split("[")[1].split("]")[0].split(","))
         for line in outcome.message.splitlines() if line.startswith("c ")]
assert outcome.status == "FAILED" and wrong and all(i == 4 or j == 6 for i, j in wrong)   # the last row or column

# %% [markdown]
# ## Exercises
#
# 1. Make `conv_direct` vectorisable: accumulate a whole output row at once (a vector of `WO`
#    float32 sums). How much faster is it, and is it still the same bits at 1 and 2 threads?
# 2. Count the additions of Winograd's transforms per output tile and compare with the 36 - 4 = 32
#    additions the direct method makes for one channel. At what $C$ and $F$ does it pay off?
# 3. Derive F(2, 3)'s matrices from the Chinese remainder theorem with the points 0, 1, -1 and
#    infinity (Winograd's construction, which Lavin and Gray follow); then F(4, 3) with the points
#    0, 1, -1, 2, -2 and infinity, and measure its float32 error.
# 4. Write im2col with padding 1 (zeros around the image) and check it against
#    `kernels.conv2d.conv2d_forward(..., padding=1, backend="numpy")`.
