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
# # Kernels, lesson 1: a parallel loop from scratch
#
# *Follows Numba's documentation, "Automatic parallelization with @jit" (`prange`, reductions, race
# conditions, the parallel diagnostics), and shows how the project's own CPU kernels use it.*
#
# `numba.prange` is `range` whose iterations Numba may hand out to several threads. It promises
# nothing about their order, so a loop written with it is right only if no iteration depends on
# another: each may read what it likes, but what it writes must be its own. We will
#
# 1. break that rule on purpose: a histogram whose threads add into shared bins loses counts, a
#    different number each run;
# 2. repair it with **per-chunk partials**: each chunk of the loop counts into its own row, and the
#    rows are added at the end;
# 3. sum float32 numbers: Numba's own reduction (`s += x[i]`) is right, but its split follows the
#    thread count, so its bits change with it; a **fixed** split into chunks gives the same bits at
#    1 and 2 threads, and we replay it in NumPy bit for bit;
# 4. read Numba's **parallel diagnostics**: which loops it made parallel, which it fused;
# 5. compare the errors of a float32 sum taken in order, in chunks, and NumPy's pairwise sum;
# 6. find the same ideas in `kernels/` (the convolution's backward weight, `WEIGHT_CHUNKS`);
# 7. write a parallel sum of squares yourself and have it checked.
#
# Pictures go to `tutorials/_output/kernels_01_prange/` (or `$TUTORIAL_OUTPUT`).

# %%
import contextlib
import io
import math
import os
import re
import sys
import time
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
from kernels import runtime
from kernels.conv2d import conv2d_backward_weight, cpu as conv_cpu

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "kernels_01_prange"
OUT.mkdir(parents=True, exist_ok=True)

runtime.ensure_configured()   # the threading layer the library's kernels use (TBB), chosen before our first loop
THREADS = numba.config.NUMBA_NUM_THREADS
print(f"Numba runs up to {THREADS} threads; threading layer: {runtime.status().threading_layer}")

# %% [markdown]
# ## 1. A race: chunks that share their bins
#
# A histogram of $n$ numbers in $[0, 1)$ into 4 bins. We split the numbers into 16 chunks and make
# the chunk the unit of `prange`: Numba's threads take whole chunks (a thread may run several). The
# tempting version keeps one set of bins for everyone: each chunk reads the shared bins, counts its
# numbers into that copy, and writes it back. Alone, that is exact. With two threads, chunk A can
# read the bins, then chunk B reads them too (A has not written yet), then both write: whichever
# writes last overwrites the other's counts. Numba does not see it (an element of an array is not a
# reduction variable it knows about): it compiles the loop as written.

# %%
N_BINS = 4
CHUNKS = 16


@njit(parallel=True)
def racy_histogram(x, n_bins, n_chunks):
    hist = np.zeros(n_bins, dtype=np.int64)
    per = (x.size + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        bins = np.empty(n_bins, dtype=np.int64)
        for b in range(n_bins):
            bins[b] = hist[b]                            # read the shared bins...
        for i in range(c * per, min(x.size, (c + 1) * per)):
            bins[int(x[i] * n_bins)] += 1
        for b in range(n_bins):
            hist[b] = bins[b]                            # ...and write them back: the last writer wins
    return hist


rng = np.random.default_rng(0)
x = rng.uniform(0, 1, 4_000_000).astype(np.float32)
n = x.size
truth = np.bincount((x * N_BINS).astype(np.int64), minlength=N_BINS)
runs = [racy_histogram(x, N_BINS, CHUNKS) for _ in range(5)]
for k, hist in enumerate(runs):
    print(f"run {k}: {hist}  total {hist.sum():>9,}  lost {n - hist.sum():>9,}")
print(f"truth: {truth}  total {truth.sum():>9,}")
assert truth.sum() == n
assert all((hist <= truth).all() for hist in runs)   # a write-back can lose counts, never invent them
lost = [int(n - hist.sum()) for hist in runs]
print(f"{sum(k > 0 for k in lost)} of {len(runs)} runs lost counts")

# %% [markdown]
# What is certain is only that counts can be lost, never gained: each bin is at most its true
# count. How many are lost depends on how the threads happen to meet (the runs above; with one
# thread nothing is lost, and on a busy machine, where the two threads share a core, fewer runs
# lose). A test that asserted a wrong count would itself be flaky; a race is not a bug that shows
# every time.
#
# ## 2. The repair: one partial per chunk
#
# Give each chunk its own row of bins: `partial[c]` is written by chunk `c` alone, so no two threads
# ever write the same element, and the rows are added at the end. The loop is the same; only where
# it writes has changed.

# %%
@njit(parallel=True)
def chunked_histogram(x, n_bins, n_chunks):
    partial = np.zeros((n_chunks, n_bins), dtype=np.int64)
    per = (x.size + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        for i in range(c * per, min(x.size, (c + 1) * per)):
            partial[c, int(x[i] * n_bins)] += 1          # row c belongs to chunk c alone
    return partial


fixed = chunked_histogram(x, N_BINS, CHUNKS).sum(axis=0)     # the rows, added
print("per-chunk partials:", fixed)
assert np.array_equal(fixed, truth)

fig, ax = plt.subplots(figsize=(8.5, 3.2))
width = 0.14
for k, hist in enumerate(runs):
    ax.bar(np.arange(N_BINS) + (k - 2.5) * width, hist, width, label=f"shared bins, run {k}")
ax.bar(np.arange(N_BINS) + 2.5 * width, fixed, width, color="k", label="per-chunk partials (= truth)")
ax.set_xticks(range(N_BINS))
ax.set_xlabel("bin")
ax.set_ylabel("count")
ax.set_title(f"{n:,} numbers into {N_BINS} bins, {CHUNKS} chunks on {THREADS} threads", fontsize=10)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
fig.tight_layout()
show_figure(fig, OUT / "race.svg")

# %% [markdown]
# ## 3. A sum, and why its bits can follow the threads
#
# For a scalar, Numba *does* know the pattern: `s += x[i]` in a `prange` loop makes `s` a
# **reduction variable**. Each thread adds the iterations it runs into a private partial, and the
# partials are added at the end. That is right, and it is fast, but which iterations land in which
# partial is decided at run time, by the number of threads and by which thread is free. Float32
# addition is not associative, so the bits can change with them.
#
# An input that shows it: $x_0 = 2^{24}$ followed by 10,000 ones. Float32 has 24 bits of
# mantissa, so $2^{24} + 1$ is not representable and rounds back to $2^{24}$ (to even). Added in
# order, every 1 after $2^{24}$ is lost: one thread returns exactly $2^{24}$.

# %%
@njit(parallel=True)
def reduction_sum(x):
    s = np.float32(0.0)
    for i in prange(x.size):
        s += x[i]                    # Numba: a reduction, one private partial per thread
    return s


def at_threads(function, *args, threads, **kwargs):
    """function(*args, **kwargs) with ``threads`` Numba threads (given back after)."""
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return function(*args, **kwargs)
    finally:
        numba.set_num_threads(before)


COUNTS = list(range(1, min(THREADS, 2) + 1))   # the thread counts we compare: 1 and 2
ordered = np.ones(10_001, dtype=np.float32)
ordered[0] = 2.0 ** 24
exact = 2 ** 24 + 10_000
by_threads = {t: at_threads(reduction_sum, ordered, threads=t) for t in COUNTS}
for t, s in by_threads.items():
    print(f"Numba's reduction, {t} thread(s): {s:,.0f}   (exact: {exact:,})")
assert by_threads[1] == 2.0 ** 24          # in order: each 1 rounds away

# %% [markdown]
# With two threads, whatever the second thread added before meeting $2^{24}$ survives, so the
# result is $2^{24}$ plus the ones of its share: how many depends on how the loop was handed out in
# this run (on a busy machine the first thread may run it all, and nothing changes).
#
# We can write the same split by hand, to see it without the scheduler: **one chunk per thread**,
# each summed in order, the partials added in order. With `numba.get_num_threads()` chunks, one
# thread sums everything in order, two threads split the vector in halves. The second half's 5,000
# ones are summed before they meet $2^{24}$ and are kept: the result follows the thread count,
# certainly.
#
# **Fixed chunks.** The repair is the histogram's: the chunks are a fixed split of the *data*
# (16 here, whatever the number of threads), each chunk is summed in order into its own partial,
# and the partials are summed in chunk order. Which thread computed which chunk no longer matters,
# so the bits are the same at 1 and 2 threads. And since each chunk is a plain sum in order, NumPy
# can replay it: `np.cumsum` of float32 adds one element at a time, so its last element is the
# in-order sum, bit for bit.

# %%
@njit(parallel=True)
def chunked_sum(x, n_chunks):
    per = (x.size + n_chunks - 1) // n_chunks
    partial = np.zeros(n_chunks, dtype=np.float32)
    for c in prange(n_chunks):
        s = np.float32(0.0)
        for i in range(c * per, min(x.size, (c + 1) * per)):
            s += x[i]
        partial[c] = s
    total = np.float32(0.0)
    for c in range(n_chunks):        # in chunk order, on one thread
        total += partial[c]
    return total


def per_thread_sum(x):
    """One chunk per thread: the split follows the thread count."""
    return chunked_sum(x, numba.get_num_threads())


def replay_in_numpy(x, n_chunks):
    """The same additions in the same order, in NumPy: cumsum adds in order."""
    per = -(-x.size // n_chunks)
    partial = np.array([np.cumsum(x[c * per:(c + 1) * per], dtype=np.float32)[-1] for c in range(n_chunks)])
    return np.cumsum(partial, dtype=np.float32)[-1]


def bits(value):
    return np.float32(value).tobytes()


split_by_threads = {t: at_threads(per_thread_sum, ordered, threads=t) for t in COUNTS}
fixed_split = {t: at_threads(chunked_sum, ordered, CHUNKS, threads=t) for t in COUNTS}
for t in COUNTS:
    print(f"{t} thread(s): one chunk per thread {split_by_threads[t]:,.0f}, {CHUNKS} fixed chunks "
          f"{fixed_split[t]:,.0f}   (exact: {exact:,})")
assert split_by_threads[1] == 2.0 ** 24 and (THREADS < 2 or split_by_threads[2] == 2.0 ** 24 + 5_000)
assert len({bits(s) for s in fixed_split.values()}) == 1 and fixed_split[1] == replay_in_numpy(ordered, CHUNKS)

x = rng.uniform(0, 1, 1_000_000).astype(np.float32)
stable = {t: at_threads(chunked_sum, x, CHUNKS, threads=t) for t in COUNTS}
per_thread = {t: at_threads(per_thread_sum, x, threads=t) for t in COUNTS}
numba_reduction = {t: at_threads(reduction_sum, x, threads=t) for t in COUNTS}
for t in COUNTS:
    print(f"{t} thread(s): fixed chunks {stable[t]!r}, one chunk per thread {per_thread[t]!r}, "
          f"Numba's reduction {numba_reduction[t]!r}")
replayed = replay_in_numpy(x, CHUNKS)
print("NumPy's replay of the 16 chunks:", repr(float(replayed)))
assert len({bits(s) for s in stable.values()}) == 1            # the same bits at every thread count
assert bits(stable[1]) == replayed.tobytes()                   # and NumPy's, bit for bit
assert bits(per_thread[1]) == np.cumsum(x, dtype=np.float32)[-1].tobytes()   # 1 thread: in order
assert THREADS < 2 or bits(per_thread[2]) == bits(replay_in_numpy(x, 2))    # 2 threads: two halves

# %% [markdown]
# The three sums timed (the best of 5 calls each, this run, on this machine, which was possibly
# busy: printed, not checked; `benchmarks/` is where speed is measured). The in-order loops cannot
# be vectorised (that would reorder the additions); NumPy's pairwise sum can.

# %%
def best_of(function, *args, repeat=5):
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best


for t in COUNTS:
    numba.set_num_threads(t)
    print(f"{t} thread(s): fixed chunks {best_of(chunked_sum, x, CHUNKS) * 1e6:7.0f} us, "
          f"Numba's reduction {best_of(reduction_sum, x) * 1e6:7.0f} us, "
          f"NumPy's sum {best_of(np.sum, x) * 1e6:7.0f} us")
numba.set_num_threads(THREADS)

# %% [markdown]
# ## 4. What Numba did: the parallel diagnostics
#
# `parallel=True` does more than run `prange` loops: it turns NumPy's array expressions into
# parallel loops too, and **fuses** neighbouring loops over the same range into one, so the data
# is read once. `f.parallel_diagnostics(level=1)` reports it (levels 2-4 say more: hoisted
# instructions, allocation). Here `a * x + b` is one loop and `(y * y).sum()` two more (the
# product and the sum); the report shows them fused into one parallel region. Numba numbers its
# loops in the order it meets them in the whole process, so the numbers in the listing vary;
# what we check is the count.

# %%
@njit(parallel=True)
def fused(x, a, b):
    y = a * x + b
    return (y * y).sum()


fused(x, np.float32(2), np.float32(1))
buffer = io.StringIO()
with contextlib.redirect_stdout(buffer):
    fused.parallel_diagnostics(level=1)
report = buffer.getvalue()
listing = report[report.index("Parallel loop listing"):report.index("Parallel region 0 (loop")]
print(listing.strip())
merged = re.search(r"Parallel region 0 \(loop #\d+\) had (\d+) loop\(s\) fused", report)
print(merged.group(0))
assert merged and int(merged.group(1)) == 2 and "Parallel region 1" not in report   # 3 loops became 1

# %% [markdown]
# The diagnostics do not see races: `racy_histogram`'s report shows one parallel loop and no
# warning. Keeping each write to one iteration (or one chunk) is the programmer's job.
#
# ## 5. How accurate is a float32 sum?
#
# Against the exact sum (`math.fsum` of the same float32 values, in float64), three ways to sum
# $n$ uniform numbers in $[0, 1)$:
#
# - **in order** (what one thread of Numba's reduction does; `np.cumsum`'s last element): every
#   addition rounds at the size of the running sum, and the error is at most
#   $\gamma_{n-1} \sum |x_i|$, with $\gamma_k = ku/(1 - ku)$ and $u = 2^{-24}$ (Higham, *Accuracy and
#   Stability of Numerical Algorithms*, ch. 4);
# - **in 16 fixed chunks**: each chunk's running sum is 16 times shorter, and the bound is
#   $\gamma_{n/16 + 15} \sum |x_i|$;
# - **NumPy's `np.sum`**: pairwise summation (blocks of 128, added in a binary tree), whose bound
#   grows as $\log_2 n$.

# %%
U = kx.U32
sizes = [2 ** k for k in range(10, 22, 2)]
errors = {"in order": [], "16 fixed chunks": [], "NumPy (pairwise)": []}
for size in sizes:
    v = rng.uniform(0, 1, size).astype(np.float32)
    exact_v = math.fsum(v.astype(np.float64))
    got = {"in order": np.cumsum(v, dtype=np.float32)[-1], "16 fixed chunks": chunked_sum(v, CHUNKS),
           "NumPy (pairwise)": np.sum(v)}
    for name, value in got.items():
        errors[name].append(abs(float(value) - exact_v) / exact_v)
    for name, k in (("in order", size - 1), ("16 fixed chunks", -(-size // CHUNKS) + CHUNKS - 1)):
        assert errors[name][-1] <= k * U / (1 - k * U)                 # the bounds, relative (x >= 0)
print(f"{'n':>9s}" + "".join(f"{name:>20s}" for name in errors))
for k, size in enumerate(sizes):
    print(f"{size:9,d}" + "".join(f"{errors[name][k]:20.2e}" for name in errors))
ratio = errors["in order"][-1] / errors["NumPy (pairwise)"][-1]
print(f"at n = {sizes[-1]:,}: in order {ratio:.0f}x NumPy's error")
assert ratio > 10

fig, ax = plt.subplots(figsize=(6.5, 3.8))
for name, marker in zip(errors, "osd"):
    ax.loglog(sizes, np.maximum(errors[name], U / 100), marker=marker, label=name)
ax.loglog(sizes, [(s - 1) * U for s in sizes], "k:", lw=1, label="bound in order, (n-1)u")
ax.axhline(U, color="gray", lw=0.8, ls="--", label="u = 2^-24")
ax.set_xlabel("n")
ax.set_ylabel("relative error of the float32 sum")
ax.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "sum_errors.svg")

# %% [markdown]
# The chunks help accuracy as well as stability: the error of the chunked sum is the in-order
# error of a 16 times shorter sum. NumPy's pairwise sum is better still; it is also fixed by the
# data, not by threads (NumPy sums on one thread), which is why the project's tests can hold a
# kernel to it.
#
# ## 6. The same ideas in the project's kernels
#
# `kernels/conv2d/cpu.py` runs the convolution one image per Numba thread. Forward and backward
# input write each image's own output: no two iterations write the same element. The **backward
# weight** is a sum over the batch, $dw = \sum_n g_n\, \mathrm{cols}_n^\top$, a reduction like the
# histogram's. So it splits the batch into fixed chunks (`weight_chunks(n)`: about 8 images each,
# from 8 up to `WEIGHT_CHUNKS`, decided by the batch alone), each chunk adds its images into its own
# partial `dw_part[t]`, and the partials are added in chunk order at the end: the same bits at any
# thread count. (`kernels/_jit.py`'s `ZERO` is the float32 zero such partial sums start from: a
# literal `0.0` is a float64 in Numba, and a sum started from it would run in float64.)
# `kernels/runtime.py` chose the threading layer (TBB) that this lesson's loops
# ran on too.

# %%
print("WEIGHT_CHUNKS =", conv_cpu.WEIGHT_CHUNKS)
xb = rng.normal(size=(24, 3, 10, 10)).astype(np.float32)
gb = rng.normal(size=(24, 4, 8, 8)).astype(np.float32)
dw_at = {t: at_threads(conv2d_backward_weight, gb, xb, (4, 3, 3, 3), backend="cpu", threads=t)[0]
         for t in COUNTS}
dw_reference = conv2d_backward_weight(gb, xb, (4, 3, 3, 3), backend="numpy")[0]
assert len({dw.tobytes() for dw in dw_at.values()}) == 1                  # the same bits at 1 and 2 threads
np.testing.assert_allclose(dw_at[1], dw_reference, rtol=1e-4, atol=1e-4)  # and NumPy's dw, to float32 rounding
print(f"backward weight, batch 24 in {conv_cpu.weight_chunks(24)} chunks: the same bits at "
      f"{' and '.join(map(str, dw_at))} thread(s); max |cpu - numpy| = {np.abs(dw_at[1] - dw_reference).max():.1e}")

# %% [markdown]
# ## 7. Your turn: a parallel sum of squares
#
# Write `sum_of_squares(x)`: $\sum_i x_i^2$ of a float32 vector, with a `prange` loop over fixed
# chunks, one float32 partial each, summed in chunk order. The checker
# (`chainrule.exercises.kernels.check_sum_of_squares`) runs your function on four inputs (one of
# them $4096^2 = 2^{24}$ followed by ones) at 1 and 2 threads, holds each result to the exact sum
# within float32's error bound $\gamma_{2n} \sum x_i^2$, and requires the same bits at both thread
# counts. The answer is in `chainrule/exercises/solutions/kernels.py`: try first.

# %%
def sum_of_squares(x):
    raise NotImplementedError  # your code here


print(attempt(kx.check_sum_of_squares, sum_of_squares))

# %% [markdown]
# The solution passes:

# %%
from chainrule.exercises.solutions.kernels import SOLUTIONS

print(kx.check_sum_of_squares(SOLUTIONS["sum_of_squares"]))

# %% [markdown]
# One chunk per thread is accurate enough, but its bits follow the thread count, and the checker
# says so for each input where they differ (the $2^{24}$ input among them, as in section 3):

# %%
outcome = attempt(kx.check_sum_of_squares, lambda v: per_thread_sum(v * v))
print(outcome)
if THREADS >= 2:
    assert outcome.status == "FAILED" and "4096, then 100,000 ones gives" in outcome.message
    assert "lie outside" not in outcome.message      # every result within the bound: only the bits differ

# %% [markdown]
# ## Exercises
#
# 1. Make `racy_histogram` correct without partials by giving each thread its own bins:
#    `numba.get_thread_id()` and `numba.get_num_threads()`. Are its counts now right? Would a float
#    histogram (weights instead of counts) be the same bits at 1 and 2 threads?
# 2. Run `chunked_sum` with `CHUNKS` = 1, 2, 16, 256 and 4096 on $10^6$ numbers: how do its error
#    and its time change? Where does the error bound of section 5 say the best chunk count is?
# 3. Write the mean and the variance in one pass over fixed chunks (Welford's update per chunk,
#    Chan et al.'s formula to merge two chunks) and hold it to `np.var` of the float64 values.
# 4. Read `kernels/conv2d/cpu.py`'s `_backward`: which arrays does each chunk write, and why is
#    `dx` safe without partials?
