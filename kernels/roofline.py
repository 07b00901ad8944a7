"""The roofline model (Williams, Waterman and Patterson, 2009) and the measurements it rests on.

A kernel that does ``flops`` floating-point operations while moving ``bytes`` to and from memory has
the arithmetic intensity ``AI = flops / bytes``; on a machine whose peak is ``peak`` FLOP/s and whose
memory bandwidth is ``bandwidth`` bytes/s it can run at most ``min(peak, AI * bandwidth)`` FLOP/s. Below
the ridge ``peak / bandwidth`` the memory limits it, above it the arithmetic. How close a kernel comes
to its bound says how much is left to gain, whatever the kernel is.

- ``peak_flops``: float32 FLOP/s of a loop of FMAs on the CPU's widest vectors, on Numba's threads
  (``fma_instructions`` counts them in its machine code: the loop must be vector FMAs of the widest
  kind, or it measures the compiler);
- ``sgemm_flops``: NumPy's float32 matmul of n x n matrices, on the BLAS threads given;
- every run is lengthened until its work, not a busy machine's wait for a core, fills it;
- ``triad_bandwidth``: STREAM's triad ``a = b + s c`` on Numba's threads. Bytes are counted as STREAM
  counts them, 3 arrays x 4 bytes per element: the write-allocate read of ``a`` (its cache lines are
  read before they are written) is not counted, so the traffic the memory sees is up to 4/3 of it;
- ``Roofline(peak, bandwidth)``: ``bound(ai)``, ``fraction(flops, bytes, seconds)``, ``plot(ax, points)``;
  ``Roofline.measure(seconds)`` measures all three quickly (a lesson's small figures).

Importing it loads Numba; ``import kernels`` does not import it.

>>> roof = Roofline(peak=100e9, bandwidth=10e9)
>>> roof.ridge                                   # FLOP per byte
10.0
>>> roof.bound(1.0) / 1e9, roof.bound(1000.0) / 1e9
(10.0, 100.0)
>>> roof.fraction(flops=5e9, bytes=1e9, seconds=1.0)   # AI 5: bound 50 GFLOP/s, 5 achieved
0.1
"""
from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass

import numba
import numpy as np
import threadpoolctl
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import runtime
from .microkernel import VECTOR_BYTES

#: The FMA loop: CHAINS independent sums, each a vector as wide as the CPU's (a zmm register with
#: AVX-512), one FMA per sum a step on registers only: enough chains in flight to hide the FMA latency on
#: both FMA pipes. Written in LLVM IR, as the micro-kernel's blocks are: Numba's vectoriser prefers
#: 256-bit vectors on AVX-512 CPUs, and a loop it vectorised would measure half the roof there.
_CHAINS = 16
_LANES = VECTOR_BYTES // 4
_CHUNKS_PER_THREAD = 4


@intrinsic
def _fma_chains(typingctx, n, a, b, start):
    """Lane 0 of the sum over k < CHAINS of s_k, each a float32 vector of LANES lanes starting at
    start + k, after ``n`` steps of s_k = s_k * a + b (one fused multiply-add)."""
    sig = types.float32(types.intp, types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        n, a, b, start = args
        vec = ir.VectorType(ir.FloatType(), _LANES)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                             f"llvm.fma.v{_LANES}f32")
        lane0 = ir.Constant(ir.IntType(32), 0)

        def splat(value):
            one = builder.insert_element(ir.Constant(vec, ir.Undefined), value, lane0)
            return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), _LANES), [0] * _LANES))

        va, vb = splat(a), splat(b)
        first = [splat(builder.fadd(start, ir.Constant(ir.FloatType(), float(k)))) for k in range(_CHAINS)]
        entry = builder.block
        loop, done = builder.append_basic_block("fma_loop"), builder.append_basic_block("fma_done")
        builder.cbranch(builder.icmp_signed(">", n, ir.Constant(n.type, 0)), loop, done)
        builder.position_at_end(loop)
        i = builder.phi(n.type)
        sums = [builder.phi(vec) for _ in range(_CHAINS)]
        steps = [builder.call(fma, [s, va, vb]) for s in sums]
        i_next = builder.add(i, ir.Constant(n.type, 1))
        i.add_incoming(ir.Constant(n.type, 0), entry)
        i.add_incoming(i_next, loop)
        for s, s0, s1 in zip(sums, first, steps):
            s.add_incoming(s0, entry)
            s.add_incoming(s1, loop)
        builder.cbranch(builder.icmp_signed("<", i_next, n), loop, done)
        builder.position_at_end(done)
        last = [builder.phi(vec) for _ in range(_CHAINS)]     # every phi first, then the sum
        for s, s0, s1 in zip(last, first, steps):
            s.add_incoming(s0, entry)
            s.add_incoming(s1, loop)
        total = last[0]
        for s in last[1:]:
            total = builder.fadd(total, s)
        return builder.extract_element(total, lane0)
    return sig, codegen


@njit(parallel=True)    # not cached: fma_instructions reads its machine code
def _fma_loop(n, a, b, out):
    for t in prange(out.shape[0]):
        out[t] = _fma_chains(n, a, b, np.float32(t))


@njit(parallel=True, cache=True)
def _triad(a, b, c, s, chunks, times):
    n = a.shape[0]
    for k in prange(chunks):                 # each thread its own part, ``times`` over (in its cache if small)
        lo, hi = k * n // chunks, (k + 1) * n // chunks
        ak, bk, ck = a[lo:hi], b[lo:hi], c[lo:hi]
        for _ in range(times):
            for i in range(ak.shape[0]):     # indices from 0: known non-negative, so LLVM vectorises
                ak[i] = bk[i] + s * ck[i]


@contextlib.contextmanager
def _numba_threads(threads):
    runtime.configure()                # the kernels' threading layer, fixed by the first parallel loop
    before = numba.get_num_threads()
    numba.set_num_threads(threads or before)
    try:
        yield numba.get_num_threads()
    finally:
        numba.set_num_threads(before)


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _calibrated(run, seconds, repeat):
    """(best seconds, k) of ``run(k)``, k doubled until a run takes ``seconds / repeat`` and half again
    as long as with k / 2: a parallel loop can wait milliseconds for a core on a busy machine, so the
    work, not the wait, must fill the time."""
    run(1)                                                       # compile (or load), warm up
    k, before = 1, _best(lambda: run(1), 2)
    if before >= max(seconds / repeat, 0.05):                    # long already: a wait is lost in it
        return min(before, _best(lambda: run(1), max(1, repeat - 2))), 1
    while True:
        k *= 2
        took = _best(lambda: run(k), 2)
        if took >= seconds / repeat and took >= 1.5 * before:
            return _best(lambda: run(k), repeat), k
        before = took


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def peak_flops(seconds: float = 0.3, threads: int | None = None, repeat: int = 3) -> float:
    """Float32 FLOP/s of the vector-FMA loop on ``threads`` Numba threads (default: all), best of
    ``repeat`` runs of about ``seconds / repeat`` each (an FMA counts 2).

    >>> peak_flops(seconds=0.1) > 1e8
    True
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    with _numba_threads(threads) as used:
        out = np.zeros(used * _CHUNKS_PER_THREAD, np.float32)
        steps = 4096
        best, n = _calibrated(lambda k: _fma_loop(steps * k, np.float32(0.999), np.float32(1e-3), out), seconds,
                              repeat)
    return 2.0 * _CHAINS * _LANES * steps * n * out.size / best


def fma_instructions() -> dict:
    """{register kind: count} of the FMA instructions in the peak loop's machine code (x86: ``zmm``,
    ``ymm``, ``xmm`` for 512-, 256- and 128-bit vectors, ``scalar``); empty where there are none.

    >>> set(fma_instructions()) <= {"scalar", "xmm", "ymm", "zmm"}
    True
    """
    _fma_loop(1, np.float32(1.0), np.float32(1.0), np.zeros(1, np.float32))
    asm = "\n".join(_fma_loop.inspect_asm().values())
    found = {kind: len(re.findall(rf"\bvfn?m(?:add|sub)\w*ps\s[^\n]*%{kind}", asm)) for kind in ("zmm", "ymm", "xmm")}
    found["scalar"] = len(re.findall(r"\bvfn?m(?:add|sub)\w*ss\s", asm))
    return {kind: n for kind, n in found.items() if n}


def sgemm_flops(n: int, threads: int | None = None, seconds: float = 0.3, repeat: int = 3) -> float:
    """FLOP/s (2 n^3 per product) of NumPy's float32 ``a @ b`` for n x n matrices, with every BLAS
    library on ``threads`` threads (default: as they are); products repeated to about ``seconds /
    repeat`` a run, best of ``repeat``.

    >>> sgemm_flops(64, threads=1, seconds=0.05) > 1e7
    True
    """
    _positive_int(n, "n")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)

    def products(k):
        for _ in range(k):
            np.matmul(a, b, out=out)

    limits = threadpoolctl.threadpool_limits(threads, user_api="blas") if threads else contextlib.nullcontext()
    with limits:
        best, k = _calibrated(products, seconds, repeat)
    return 2.0 * n ** 3 * k / best


def triad_bandwidth(n: int, threads: int | None = None, seconds: float = 0.3, repeat: int = 3) -> float:
    """Bytes/s of the triad ``a = b + s c`` over float32 arrays of ``n`` elements (12 n bytes a pass:
    STREAM's count, write-allocate not counted), each thread over its own part, passes repeated to
    about ``seconds / repeat`` a run, best of ``repeat``. For the memory's bandwidth, take n far
    beyond the last-level cache (12 n bytes several times its size); small n measures the caches.

    >>> triad_bandwidth(1 << 12, seconds=0.1) > 1e8
    True
    """
    _positive_int(n, "n")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    a, b, c = np.zeros(n, np.float32), np.ones(n, np.float32), np.full(n, 2.0, np.float32)
    with _numba_threads(threads) as used:
        best, times = _calibrated(lambda k: _triad(a, b, c, np.float32(3.0), used, k), seconds, repeat)
    return 12.0 * n * times / best


@dataclass(frozen=True)
class Roofline:
    """A machine's compute roof (FLOP/s) and memory bandwidth (bytes/s)."""
    peak: float
    bandwidth: float

    def __post_init__(self):
        for name in ("peak", "bandwidth"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Roofline: {name} must be positive, got {getattr(self, name)!r}")

    @classmethod
    def measure(cls, seconds: float = 0.2, sgemm_n: int = 1024, triad_n: int = 1 << 24) -> "Roofline":
        """This machine's roofline, quickly: the better of ``peak_flops`` and ``sgemm_flops(sgemm_n)``
        for the peak (sgemm on one BLAS thread and on all), ``triad_bandwidth(triad_n)`` for the
        bandwidth (the default, 3 x 64 MiB, is beyond most last-level caches).

        >>> roof = Roofline.measure(seconds=0.05, sgemm_n=128, triad_n=1 << 16)
        >>> roof.peak > 1e8 and roof.bandwidth > 1e8
        True
        """
        peak = max(peak_flops(seconds), sgemm_flops(sgemm_n, threads=1, seconds=seconds),
                   sgemm_flops(sgemm_n, seconds=seconds))
        return cls(peak, triad_bandwidth(triad_n, seconds=seconds))

    @property
    def ridge(self) -> float:
        """The arithmetic intensity (FLOP/byte) where the memory's slope meets the compute roof."""
        return self.peak / self.bandwidth

    def bound(self, ai: float) -> float:
        """The most FLOP/s a kernel of arithmetic intensity ``ai`` can reach: min(peak, ai x bandwidth)."""
        return min(self.peak, ai * self.bandwidth)

    def fraction(self, flops: float, bytes: float, seconds: float) -> float:
        """The achieved share of the bound that limits a kernel doing ``flops`` and moving ``bytes`` in
        ``seconds``. A kernel without arithmetic (flops 0: a copy, a scatter) is held to the bandwidth.

        >>> Roofline(100e9, 10e9).fraction(flops=0, bytes=5e9, seconds=1.0)
        0.5
        """
        if not bytes > 0 or not seconds > 0 or flops < 0:
            raise ValueError(f"fraction: bytes and seconds must be positive and flops >= 0, got "
                             f"flops={flops!r}, bytes={bytes!r}, seconds={seconds!r}")
        if flops == 0:
            return bytes / seconds / self.bandwidth
        return flops / seconds / self.bound(flops / bytes)

    def plot(self, ax, points, *, roofs=()):
        """Draw the roofline on a matplotlib ``ax`` (log-log) and each of ``points``, (label, flops,
        bytes, seconds), as a numbered dot at its (AI, FLOP/s), its label in the legend beside the
        number (clusters stay readable); a point without FLOPs is left out.
        ``roofs``: more (label, bandwidth) slopes, dashed (a cache's bandwidth, say). Returns ``ax``.

        >>> import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
        >>> ax = Roofline(100e9, 10e9).plot(plt.figure().add_subplot(), [("k", 2e9, 1e9, 0.1)])
        >>> [t.get_text() for t in ax.texts], ax.get_legend().get_texts()[-1].get_text()
        (['1'], '1: k')
        """
        shown = [p for p in points if p[1] > 0]
        ais = [flops / nbytes for _, flops, nbytes, _ in shown] + [self.ridge]
        x = np.geomspace(min(ais) / 4, max(ais) * 4, 200)
        ax.loglog(x, np.minimum(self.peak, x * self.bandwidth) / 1e9, "k-",
                  label=f"roof: {self.peak / 1e9:.0f} GFLOP/s, {self.bandwidth / 1e9:.1f} GB/s")
        for label, bandwidth in roofs:
            ax.loglog(x, np.minimum(self.peak, x * bandwidth) / 1e9, "k--", lw=0.8,
                      label=f"{label}: {bandwidth / 1e9:.0f} GB/s")
        placed = []
        for number, (label, flops, nbytes, seconds) in enumerate(shown, 1):
            ai, rate = flops / nbytes, flops / seconds / 1e9
            near = sum(abs(np.log(ai / a)) < 0.15 and abs(np.log(rate / r)) < 0.15 for a, r in placed)
            placed.append((ai, rate))
            ax.plot([ai], [rate], "osD^v"[(number - 1) // 10 % 5], label=f"{number}: {label}")   # 10 colours a shape
            ax.annotate(str(number), (ai, rate), textcoords="offset points", xytext=(4 + 8 * near, 3), fontsize=7)
        ax.set_xlabel("arithmetic intensity (FLOP/byte)")
        ax.set_ylabel("GFLOP/s")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return ax
