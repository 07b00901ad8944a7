"""The CPU kernels recycle their outputs (kernels/_recycle.py): an output is handed out again only
once nothing refers to it, so no value a Tensor, a view or the caller holds ever changes; a training
loop stops allocating after its first steps; empty_cache gives back what is free; threads never
share a buffer."""
from __future__ import annotations

import concurrent.futures

import numpy as np

import autodiff as ad
import kernels
import nn
from kernels import _recycle

GEOMETRY = kernels.ConvGeometry(padding=1)


def _conv(x, w):
    return kernels.conv2d.forward(x, w, np.zeros(w.shape[0], np.float32), GEOMETRY, backend="cpu")


def _inputs(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(8, 3, 16, 16)).astype(np.float32), rng.normal(size=(8, 3, 3, 3)).astype(np.float32)


def test_a_dropped_output_is_handed_out_again_and_a_held_one_never_changes():
    x, w = _inputs(0)
    first = _conv(x, w)
    address = first.ctypes.data
    held = first.copy()
    view = first[:, :2]                                      # a view keeps its base taken
    del first
    second = _conv(*_inputs(1))
    assert second.ctypes.data != address
    np.testing.assert_array_equal(view, held[:, :2])
    free = {address, second.ctypes.data}
    del view, second
    third = _conv(*_inputs(2))
    assert third.ctypes.data in free                        # one of the two, now that nothing refers to them
    np.testing.assert_allclose(third, kernels.conv2d.forward(*_inputs(2), np.zeros(8, np.float32), GEOMETRY,
                                                             backend="numpy"), rtol=1e-4, atol=1e-4)


def test_the_same_memory_serves_call_after_call_once_released():
    x, w = _inputs(3)
    addresses = set()
    for _ in range(5):
        y = _conv(x, w)
        addresses.add(y.ctypes.data)
        del y
    assert len(addresses) == 1


def test_a_training_loop_allocates_no_new_outputs_after_its_first_steps():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((1, 12, 12)), nn.Conv2D(16, 3, activation="relu"), nn.MaxPool2D(2),
                           nn.Conv2D(32, 3, activation="relu"), nn.Flatten(), nn.Dense(10)])
    opt = nn.optim.Adam(model.parameters())
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 1, 12, 12), dtype=np.float32), rng.integers(0, 10, 64)

    def step():
        opt.zero_grad()
        loss = nn.functional.softmax_cross_entropy(model(ad.Tensor(x)), y)
        loss.backward()
        opt.step()
        return loss.item()

    step(), step()
    kept = kernels.runtime.status().outputs_kept_bytes
    assert kept > 0
    losses = [step() for _ in range(4)]
    assert kernels.runtime.status().outputs_kept_bytes == kept
    assert losses[-1] < losses[0]


def test_empty_cache_gives_back_the_free_outputs_only():
    x, w = _inputs(4)
    in_use = _conv(x, w)
    values = in_use.copy()
    _conv(x, w * 2)                                          # dropped at once: free
    assert kernels.runtime.empty_cache() >= in_use.nbytes    # that one (and any other free output)
    kept = _recycle.kept_bytes()
    assert kept >= in_use.nbytes                              # the one in use stays
    np.testing.assert_allclose(_conv(x, w * 3), 3 * _conv(x, w), rtol=1e-5, atol=1e-5)   # new memory meanwhile
    np.testing.assert_array_equal(in_use, values)
    del in_use
    assert kernels.runtime.empty_cache() >= values.nbytes
    assert _recycle.kept_bytes() <= kept - values.nbytes


def test_threads_never_share_an_output():
    x = np.random.default_rng(5).normal(size=(16, 4, 20, 20)).astype(np.float32)
    geometry = kernels.PoolGeometry(2)
    want = kernels.pool2d.max_forward(x, geometry, backend="numpy")[0]

    def run(k):
        for _ in range(30):
            y, _ = kernels.pool2d.max_forward(x * k, geometry, backend="cpu")
            np.testing.assert_array_equal(y, want * k)
        return k

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(run, [1.0, 2.0, 3.0, 4.0])) == [1.0, 2.0, 3.0, 4.0]


def test_kept_outputs_start_on_a_cache_line_with_the_shape_and_type_asked_for():
    for shape, dtype in [((_recycle.SMALLEST // 4 + 3,), np.float32), ((129, 67, 5), np.float64), ((300, 301), np.int64)]:
        a = _recycle.empty(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
        assert a.ctypes.data % _recycle.ALIGN == 0
        a[...] = 7
        assert (a == 7).all()
    assert _recycle.empty((2, 3), np.float32).shape == (2, 3)      # small ones: plain arrays


def test_aligned_temporaries_start_on_a_cache_line_and_are_not_kept():
    kept = _recycle.kept_bytes()
    for shape, dtype in [((16, 32, 64), np.float32), ((3, 1000), np.float64), ((7,), np.float32)]:
        a = _recycle.aligned(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
        assert a.ctypes.data % _recycle.ALIGN == 0
    assert _recycle.kept_bytes() == kept
