"""The dropout mask's Numba CPU version against the NumPy reference (the hash of kernels.dropout), and nn's
host dropout made from it."""
import numpy as np
import pytest

import autodiff as ad
import kernels
import nn
from kernels.dropout import reference


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (3, 5, 7), (2, 1600)])
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 1.0])
def test_the_cpu_mask_has_the_references_bits(shape, rate, dtype):
    for seed in (0, 1, 12345, 2**30 - 1):
        got = kernels.dropout.dropout_mask(shape, rate, seed, dtype, backend="cpu")
        expected = reference.dropout_mask(shape, rate, seed, np.dtype(dtype))
        assert got.shape == shape and got.dtype == dtype
        assert got.tobytes() == expected.tobytes(), seed


def test_the_cpu_mask_keeps_about_one_minus_rate_and_depends_on_the_seed():
    mask = kernels.dropout.dropout_mask((200_000,), 0.3, 7, np.float32, backend="cpu")
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.7)} and abs((mask > 0).mean() - 0.7) < 0.005
    assert not np.array_equal(mask, kernels.dropout.dropout_mask((200_000,), 0.3, 8, np.float32, backend="cpu"))


def test_nn_dropout_on_the_host_is_x_times_the_mask_of_one_seed_drawn_from_its_generator():
    x = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    y = ad.value_of(nn.functional.dropout(ad.Tensor(x), 0.25, rng=np.random.default_rng(3)))
    seed = int(np.random.default_rng(3).integers(2**30))
    np.testing.assert_array_equal(y, x * reference.dropout_mask(x.shape, 0.25, seed, np.dtype(np.float32)))


@pytest.mark.parametrize("shape, dtype, error, message", [
    ((-1, 3), np.float32, ValueError, r"^shape must be a tuple of ints >= 0, got \(-1, 3\)$"),
    ("ab", np.float32, TypeError, r"^shape must be a tuple of ints >= 0, got 'ab'$"),
    ((2, 3), np.int32, TypeError, r"^dtype must be float32 or float64 \(.*\), got int32$"),
])
def test_a_bad_shape_or_dtype_is_refused_naming_it(shape, dtype, error, message):
    with pytest.raises(error, match=message):
        kernels.dropout.dropout_mask(shape, 0.3, 1, dtype)
