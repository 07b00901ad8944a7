"""The kernel lessons' checkers tell right answers from wrong ones (chainrule/exercises/kernels.py).

The sum of squares is held to the exact sum (math.fsum) within float32's error bound and to the same
bits at 1 and 2 Numba threads. The right answers are the solution (a prange over fixed chunks) and a
plain float64 NumPy sum; the wrong ones are a forgotten square, a shared accumulator that keeps one
chunk only, and one chunk per thread (right values, bits that follow the thread count).
"""
import doctest

import numba
import numpy as np
import pytest
from numba import njit, prange

import chainrule.exercises.kernels as kx
from chainrule.exercises import ExerciseError, attempt
from chainrule.exercises.solutions.kernels import SOLUTIONS

TWO_THREADS = numba.config.NUMBA_NUM_THREADS >= 2


@njit(parallel=True, cache=True)
def _chunks_of_squares(x, n_chunks):
    per = (x.size + n_chunks - 1) // n_chunks
    partial = np.zeros(n_chunks, dtype=np.float32)
    for c in prange(n_chunks):
        s = np.float32(0.0)
        for i in range(c * per, min(x.size, (c + 1) * per)):
            s += x[i] * x[i]
        partial[c] = s
    return partial


def _one_chunk_per_thread(x):
    total = np.float32(0.0)
    for p in _chunks_of_squares(x, numba.get_num_threads()):
        total += p
    return total


def test_every_exercise_has_a_stub_a_checker_and_a_solution():
    assert set(kx.CHECKS) == set(kx.STUBS) == set(SOLUTIONS) == {n for names in kx.LESSONS.values() for n in names}
    for name in kx.CHECKS:
        assert attempt(kx.CHECKS[name], kx.STUBS[name]).status == "not attempted"


@pytest.mark.parametrize("name", sorted(kx.CHECKS))
def test_the_solution_passes_and_leaves_the_thread_count_as_it_was(name):
    before = numba.get_num_threads()
    report = kx.CHECKS[name](SOLUTIONS[name])
    assert report.passed and str(report).startswith(f"{name}: passed")
    assert numba.get_num_threads() == before


def test_the_solution_adds_the_fixed_chunks_in_order():
    # Independent of the checker: NumPy's cumsum adds float32 in order, so it replays the chunks bit for bit.
    for _, x in kx.sum_of_squares_inputs():
        squares = x * x
        per = -(-x.size // min(16, x.size))
        partial = [np.cumsum(squares[k:k + per], dtype=np.float32)[-1] for k in range(0, x.size, per)]
        assert np.float32(SOLUTIONS["sum_of_squares"](x)) == np.cumsum(np.array(partial), dtype=np.float32)[-1]


def test_the_bound_holds_for_an_in_order_sum_and_is_tight_enough_to_catch_a_lost_chunk():
    for label, x in kx.sum_of_squares_inputs():
        in_order = float(np.cumsum(x * x, dtype=np.float32)[-1])
        exact = kx.exact_sum_of_squares(x)
        assert abs(in_order - exact) <= kx.float32_bound(x), label
        if x.size > 1000:
            lost_chunk = float(np.sum(x[x.size // 16:].astype(np.float64) ** 2))
            assert abs(lost_chunk - exact) > kx.float32_bound(x), label
    ordered = kx.sum_of_squares_inputs()[-1][1]
    assert np.cumsum(ordered * ordered, dtype=np.float32)[-1] == 2.0 ** 24      # the ones are lost, in order


def test_a_plain_numpy_answer_passes():
    assert kx.check_sum_of_squares(lambda x: np.sum(x.astype(np.float64) ** 2)).passed


def test_a_forgotten_square_fails_with_a_table_of_every_result():
    with pytest.raises(ExerciseError) as info:
        kx.check_sum_of_squares(lambda x: np.float32(np.sum(x.astype(np.float64))))
    report, message = info.value.report, str(info.value)
    runs = len(kx.sum_of_squares_inputs()) * len(report.threads)
    assert len(report.rows) == runs and f"{runs} of {runs} results lie outside" in message
    assert message.startswith("sum_of_squares: FAILED")
    first = report.rows[0]
    assert first["abs err"] > first["bound"] and f"{first['expected']:.9g}" in message


def test_a_shared_accumulator_that_keeps_one_chunk_fails():
    def last_writer_wins(x):                       # what a race can leave: one chunk's sum, the others lost
        per = -(-x.size // 16)
        return np.float32(np.sum(x[-per:].astype(np.float64) ** 2))

    with pytest.raises(ExerciseError) as info:
        kx.check_sum_of_squares(last_writer_wins)
    labels = {row["input"] for row in info.value.report.rows}
    assert {"1,000 normal values", "100,003 uniform values", "4096, then 100,000 ones"} <= labels
    assert "1 element" not in labels               # one element is its own only chunk: right
    assert not info.value.report.problems           # the same (wrong) bits at both thread counts


@pytest.mark.skipif(not TWO_THREADS, reason="needs 2 Numba threads")
def test_one_chunk_per_thread_is_right_but_its_bits_follow_the_thread_count():
    with pytest.raises(ExerciseError) as info:
        kx.check_sum_of_squares(_one_chunk_per_thread)
    report, message = info.value.report, str(info.value)
    assert not report.rows                          # every value within the float32 bound
    assert "4096, then 100,000 ones gives 16777216.0 with 1, 16827216.0 with 2 threads" in message
    assert "1 element" not in message               # one element: one chunk at any count, the same bits
    assert attempt(kx.check_sum_of_squares, _one_chunk_per_thread).status == "FAILED"


def test_nan_is_wrong():
    with pytest.raises(ExerciseError, match="lie outside"):
        kx.check_sum_of_squares(lambda x: np.float32("nan"))


def test_the_module_s_examples_run():
    result = doctest.testmod(kx, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_an_array_instead_of_a_number_is_explained():
    with pytest.raises(ExerciseError, match=r"expected one number, got an array of shape \(1000,\)"):
        kx.check_sum_of_squares(lambda x: x * x)
