"""The engine's pool of large buffers (autodiff.buffers): reused only when nothing holds them.

What must never happen: an array the user holds (a gradient, a value, a view of one) is handed out
again and overwritten by a later call. What the pool is for: a second call of the same computation
reuses the first call's temporaries.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import autodiff as ad
from autodiff import buffers

N = 200_000      # 1.6 MB of float64: above buffers.MIN_BYTES


@pytest.fixture(autouse=True)
def fresh_pool():
    buffers.empty_cache()
    yield
    buffers.set_pool_limit(buffers.DEFAULT_LIMIT)
    buffers.empty_cache()


def test_a_dropped_buffer_is_reused_and_a_held_one_is_not():
    a = buffers.empty((N,), np.float64)
    address = a.ctypes.data
    view = a[::2]
    del a
    b = buffers.empty((N,), np.float64)          # the first is still seen through `view`
    assert b.ctypes.data != address and not np.shares_memory(b, view)
    del view
    c = buffers.empty((N // 2, 2), np.float64)   # same bytes, another shape: the first buffer again
    assert c.ctypes.data == address and c.shape == (N // 2, 2) and c.flags.c_contiguous


def test_small_arrays_are_not_pooled():
    small = buffers.empty((10,), np.float32)
    assert small.base is None and buffers.pool_stats()["buffers"] == 0


def test_gradients_the_user_keeps_are_not_overwritten_by_the_next_call():
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal(N), rng.standard_normal(N)
    grad = ad.grad(lambda x: ad.sum(ad.exp(ad.sin(x) * 2.0) + x * x))

    def expected(x):
        return np.exp(np.sin(x) * 2.0) * 2.0 * np.cos(x) + 2 * x

    g1 = grad(x1)
    kept = g1.copy()
    g2 = grad(x2)
    np.testing.assert_array_equal(g1, kept)                 # not written over by the second call
    np.testing.assert_allclose(g1, expected(x1), rtol=1e-13)
    np.testing.assert_allclose(g2, expected(x2), rtol=1e-13)
    assert not np.shares_memory(g1, g2)


def test_a_second_call_reuses_the_first_calls_temporaries():
    x = np.random.default_rng(1).standard_normal(N)
    grad = ad.grad(lambda x: ad.sum(ad.exp(x - ad.max(x))))
    grad(x)
    held = buffers.pool_stats()["held_bytes"]
    for _ in range(3):
        grad(x)
    assert held > 0 and buffers.pool_stats()["held_bytes"] == held


def test_the_limit_bounds_the_pool_and_zero_turns_it_off():
    buffers.set_pool_limit(3 * N * 8)
    keep = [buffers.empty((N,), np.float64) for _ in range(5)]
    assert buffers.pool_stats()["held_bytes"] <= 3 * N * 8 and all(k.shape == (N,) for k in keep)
    del keep
    buffers.set_pool_limit(0)
    assert buffers.pool_stats()["held_bytes"] == 0
    assert buffers.empty((N,), np.float64).base is None
    for bad in (-1, 1.5, True, "1GB"):
        with pytest.raises(ValueError, match=r"set_pool_limit: nbytes must be a whole number of bytes"):
            buffers.set_pool_limit(bad)


def test_empty_cache_hands_back_idle_buffers_only():
    busy = buffers.empty((N,), np.float64)
    idle = buffers.empty((N,), np.float64)
    del idle
    assert buffers.empty_cache() == N * 8
    assert buffers.pool_stats() == {"held_bytes": N * 8, "buffers": 1, "in_use": 1,
                                    "limit_bytes": buffers.DEFAULT_LIMIT}
    busy[:] = 1.0                                            # still its own memory
    del busy
    assert buffers.empty_cache() == N * 8


@pytest.mark.parametrize("args", [
    (np.ones((N,)), np.ones((1, 1))),                        # broadcasts to (1, N): NumPy's result
    (np.ones((N,), np.float32), 2.0),                        # a Python float keeps float32
    (np.ones((N,), np.float32), np.float64(2.0)),            # a NumPy float64 promotes
    (np.arange(N), 2),                                       # integers: not pooled
    (np.ones((N,)), np.ones((N,), np.float32)),
    (np.ones((2, N // 2)), np.ones((N // 2,))),
    (np.ones((N // 2, 2)), np.ones((N // 2, 1))),          # broadcasts into the larger: pooled
    (np.ones((N, 1)), np.ones((1, 3))),                    # an outer sum, larger than either: NumPy's
    (np.ones((N // 2, 2)), np.ones((3, N // 2, 1))),       # a new leading axis: NumPy's
])
def test_pooled_ufuncs_give_numpys_shape_dtype_and_values(args):
    got, want = buffers.ufunc(np.add, *args), np.add(*args)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_threads_computing_gradients_at_once_get_their_own_results():
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal(N) for _ in range(4)]
    grad = ad.grad(lambda x: ad.sum(ad.tanh(x) * x))
    results = [None] * len(xs)

    def work(k):
        for _ in range(5):
            results[k] = grad(xs[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for x, g in zip(xs, results):
        np.testing.assert_allclose(g, (1 - np.tanh(x) ** 2) * x + np.tanh(x), rtol=1e-13)


def test_the_docs_state_the_pools_threshold_and_limit_as_the_code_has_them():
    root = Path(__file__).resolve().parents[1]
    for doc in ("README.md", "ARCHITECTURE.md"):
        text = root.joinpath(doc).read_text()
        assert f"{buffers.MIN_BYTES // 1024} KiB" in text and f"{buffers.DEFAULT_LIMIT >> 20} MiB" in text, doc
