"""kernels.roofline: the model's arithmetic held to hand-computed values, the measuring loops held to
what they compute (the work counted is the work done), the thread counts given back. No timings."""
from pathlib import Path

import matplotlib
import numba
import numpy as np
import pytest
import threadpoolctl

from kernels import roofline
from kernels.roofline import Roofline

matplotlib.use("Agg")


def test_the_bound_is_the_memory_slope_below_the_ridge_and_the_peak_above():
    roof = Roofline(peak=200e9, bandwidth=25e9)
    assert roof.ridge == 8.0
    assert roof.bound(2.0) == 50e9 and roof.bound(8.0) == 200e9 and roof.bound(100.0) == 200e9


def test_fraction_is_the_achieved_rate_over_the_bound_that_limits_the_kernel():
    roof = Roofline(peak=200e9, bandwidth=25e9)
    # memory-bound: 1 GFLOP over 1 GB (AI 1, bound 25 GFLOP/s) in 0.1 s = 10 GFLOP/s -> 0.4
    assert roof.fraction(1e9, 1e9, 0.1) == pytest.approx(0.4)
    # compute-bound: 100 GFLOP over 1 GB (AI 100, bound 200 GFLOP/s) in 1 s -> 0.5
    assert roof.fraction(100e9, 1e9, 1.0) == pytest.approx(0.5)
    # no arithmetic: held to the bandwidth, 5 GB in 1 s -> 0.2
    assert roof.fraction(0, 5e9, 1.0) == pytest.approx(0.2)


@pytest.mark.parametrize("kwargs, name", [(dict(peak=0, bandwidth=1), "peak"),
                                          (dict(peak=1, bandwidth=-1), "bandwidth")])
def test_a_roofline_refuses_a_non_positive_roof_naming_it(kwargs, name):
    with pytest.raises(ValueError, match=f"Roofline: {name} must be positive"):
        Roofline(**kwargs)


def test_fraction_refuses_zero_bytes_or_time_in_one_line():
    with pytest.raises(ValueError, match=r"bytes and seconds must be positive.*bytes=0"):
        Roofline(1e9, 1e9).fraction(1e6, 0, 1.0)


@pytest.mark.parametrize("call, name", [(lambda: roofline.sgemm_flops(0), "n"),
                                        (lambda: roofline.triad_bandwidth(2.5), "n"),
                                        (lambda: roofline.peak_flops(seconds=0), "seconds")])
def test_the_measurements_refuse_bad_sizes_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        call()


@pytest.mark.parametrize("steps", [0, 1, 5])
def test_the_fma_loop_does_the_work_peak_flops_counts(steps):
    # peak_flops counts 2 x CHAINS x LANES FLOPs a step per chunk: each chunk t's CHAINS sums start at t + k
    # and take one s * a + b a step; with a = 1 the sum of their lane 0 is CHAINS (t + steps b) + sum(k)
    out = np.zeros(3, np.float32)
    roofline._fma_loop(steps, np.float32(1.0), np.float32(0.5), out)
    chains = roofline._CHAINS
    expected = [chains * (t + 0.5 * steps) + chains * (chains - 1) / 2 for t in range(3)]
    np.testing.assert_array_equal(out, expected)
    assert chains >= 16 and roofline._LANES == roofline.VECTOR_BYTES // 4


def test_the_fma_loop_is_vector_fmas_where_the_cpu_has_them():
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " fma " not in flags and " avx512f " not in flags:
        pytest.skip("no x86 FMA on this CPU")
    found = roofline.fma_instructions()
    widest = "zmm" if roofline.VECTOR_BYTES == 64 else "ymm"
    assert found.get(widest, 0) >= roofline._CHAINS, found              # the chains, on the widest vectors
    assert set(found) == {widest}, found                                 # and nothing narrower: not half the roof


def test_the_triad_writes_b_plus_s_c_over_every_part_whatever_the_split():
    n = 1001                                      # not a multiple of the parts
    a, b, c = np.zeros(n, np.float32), np.arange(n, dtype=np.float32), np.full(n, 2.0, np.float32)
    roofline._triad(a, b, c, np.float32(3.0), 3, 2)
    np.testing.assert_array_equal(a, b + 6.0)


def test_the_measurements_give_back_numbas_and_blass_thread_counts():
    blas = lambda: [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    numba_before, blas_before = numba.get_num_threads(), blas()
    assert roofline.peak_flops(seconds=0.02, threads=1) > 0
    assert roofline.triad_bandwidth(1 << 12, threads=1, seconds=0.02) > 0
    assert roofline.sgemm_flops(32, threads=1, seconds=0.02) > 0
    assert numba.get_num_threads() == numba_before and blas() == blas_before


def test_the_plot_draws_the_roof_the_extra_slopes_and_each_point_with_flops():
    import matplotlib.pyplot as plt

    roof = Roofline(100e9, 10e9)
    ax = roof.plot(plt.figure().add_subplot(), [("a", 2e9, 1e9, 0.1), ("b", 2e9, 1e9, 0.1), ("scatter", 0, 1e9, 0.1)],
                   roofs=[("cache", 50e9)])
    texts = {t.get_text(): t for t in ax.texts}
    assert set(texts) == {"1", "2"}                          # the point without FLOPs is left out
    assert texts["1"].xyann != texts["2"].xyann               # the same place: the numbers do not overlap
    assert [t.get_text() for t in ax.get_legend().get_texts()][-2:] == ["1: a", "2: b"]
    roof_line = ax.lines[0]
    x, y = roof_line.get_data()
    np.testing.assert_allclose(y, np.minimum(100, x * 10))   # GFLOP/s: min(peak, AI x bandwidth)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert len(ax.lines) == 2 + 2                             # the roof, the cache's slope, two points
    plt.close("all")


def test_measure_takes_the_better_of_the_fma_loop_and_sgemm_and_the_triad(monkeypatch):
    monkeypatch.setattr(roofline, "peak_flops", lambda seconds: 50e9)
    monkeypatch.setattr(roofline, "sgemm_flops", lambda n, threads=None, seconds=0: 80e9 if threads == 1 else 70e9)
    monkeypatch.setattr(roofline, "triad_bandwidth", lambda n, seconds=0: 12e9 if n == 1 << 20 else 0)
    assert Roofline.measure(triad_n=1 << 20) == Roofline(80e9, 12e9)
    monkeypatch.setattr(roofline, "peak_flops", lambda seconds: 90e9)
    assert Roofline.measure(triad_n=1 << 20).peak == 90e9
