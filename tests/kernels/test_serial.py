"""Small work runs on the calling thread (kernels._cache.serial / sized): a parallel loop wakes
the other threads, which costs more than such a loop. The serial twin is the same function compiled
without ``parallel``: it must give the parallel kernel's bits, and the entry points must pick it only
below their thresholds."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import _cache
from kernels.conv2d import cpu as conv_cpu, winograd
from kernels.dropout import cpu as dropout_cpu
from kernels.pool2d import cpu as pool_cpu

RNG = np.random.default_rng(11)
X = RNG.standard_normal((6, 10, 10)).astype(np.float32)
X[0, 0, :2] = np.nan                                   # the max's NaN rule, in both
G = RNG.standard_normal((6, 5, 5)).astype(np.float32)
FLAT = RNG.standard_normal(999).astype(np.float32)
OUT = np.maximum(RNG.standard_normal(999).astype(np.float32), 0)
PARTS = RNG.standard_normal((3, 1, 9, 4)).astype(np.float32)

CASES = {
    "relu_grad": (winograd._relu_grad, lambda: (FLAT, OUT, np.empty(999, np.float32))),
    "max_values_2x2": (pool_cpu._max_values_2x2, lambda: (X, np.empty((6, 5, 5), np.float32))),
    "max_scatter_2x2": (pool_cpu._max_scatter_2x2, lambda: (G, X, np.empty_like(X))),
    "dropout": (dropout_cpu._dropout_kernel, lambda: (np.int64(5), 0.3, np.float32(1 / 0.7), np.empty(999, np.float32))),
    "sum_parts": (conv_cpu._sum_parts, lambda: (PARTS.copy(), RNG.standard_normal((3, 4)).astype(np.float32),
                                                 np.empty((4, 9), np.float32), np.empty(4, np.float32))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_serial_twin_writes_the_parallel_kernels_bits(name):
    kernel, make = CASES[name]
    twin = _cache.serial(kernel)
    assert twin is _cache.serial(kernel) and kernel.targetoptions["parallel"] and "parallel" not in twin.targetoptions
    args = make()
    parallel_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    kernel(*parallel_args)
    twin(*args)
    written = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    for i in written:
        np.testing.assert_array_equal(args[i], parallel_args[i])


def test_sized_picks_the_twin_only_below_its_threshold():
    kernel = winograd._relu_grad
    twin = _cache.serial(kernel)
    below = _cache.SERIAL_BELOW
    assert _cache.sized(kernel, below - 1) is twin and _cache.sized(kernel, below) is kernel
    assert _cache.sized(kernel, 10, below=10) is kernel and _cache.sized(kernel, 9, below=10) is twin
