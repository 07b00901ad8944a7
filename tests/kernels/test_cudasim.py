"""kernels._cudasim: in Numba's CUDA simulator a block's shared array is one array, whichever thread asks."""
from __future__ import annotations

import threading
import types

import numpy as np
import pytest

from _requires import IN_CI  # tests/_requires.py (in CI, where the test extra holds numba-cuda, these run)
from kernels.backend import cuda_available

pytestmark = pytest.mark.skipif(not cuda_available() and not IN_CI,
                                reason="numba.cuda unavailable (needs the cuda extra)")


@pytest.fixture
def shared():
    from numba import config

    if not config.ENABLE_CUDASIM and not IN_CI:      # CI runs the simulator (tests/conftest.py): never skipped there
        pytest.skip("the fix is for the simulator (NUMBA_ENABLE_CUDASIM=1)")
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    from kernels import _cudasim, device  # noqa: F401  (importing kernels.device installs the fix)

    assert FakeCUDAShared.array is _cudasim._shared_array
    return FakeCUDAShared(0)


def test_threads_asking_at_once_get_one_array(shared, monkeypatch):
    """Eight threads reach the same line together while an allocation is slow (as when the simulator's
    threads switch mid-lookup): all get the one array, allocated once."""
    from kernels import _cudasim

    made = []

    def slow_empty(shape, dtype):
        threading.Event().wait(0.01)           # another thread runs meanwhile
        made.append(np.empty(shape, dtype))
        return made[-1]

    monkeypatch.setattr(_cudasim, "np", types.SimpleNamespace(empty=slow_empty))
    start, got = threading.Barrier(8), [None] * 8

    def thread(t):
        start.wait()
        got[t] = shared.array((4, 4), np.float64)

    threads = [threading.Thread(target=thread, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and all(a is made[0] for a in got)


def test_each_line_has_its_own_array_and_a_line_asked_again_the_same(shared):
    first = [shared.array((2, 3), np.float32) for _ in range(2)]
    second = shared.array((2, 3), np.float32)
    assert first[0] is first[1] and second is not first[0]
    assert first[0].shape == (2, 3) and first[0].dtype == np.float32


def test_a_numba_type_is_taken_as_its_dtype_and_alignment_is_refused_as_the_simulator_does(shared):
    from numba import float64

    assert shared.array(5, float64).dtype == np.float64
    with pytest.raises(RuntimeError, match="alignment"):
        shared.array(4, np.float64, alignment=16)
