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
    assert (list(kx.EXERCISES) == list(kx.CHECKS) == list(kx.STUBS)
            == [n for names in kx.LESSONS.values() for n in names])
    assert set(SOLUTIONS) == set(kx.EXERCISES) and all(e.name == n for n, e in kx.EXERCISES.items())
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


# --- lesson 2: im2col and Winograd's input transform ------------------------------------------------

def test_im2col_s_reference_times_the_filters_is_the_library_s_convolution():
    from kernels.conv2d import conv2d_forward

    x = kx.IM2COL.inputs()["x"]
    w = np.random.default_rng(1).normal(size=(4, 3, 3, 2))
    (cols,) = kx.IM2COL.expected({"x": x, "kh": 3, "kw": 2})
    y = (w.reshape(4, -1) @ cols).reshape(4, 4, 4)
    np.testing.assert_allclose(y, conv2d_forward(x[None], w, backend="numpy")[0], rtol=1e-12, atol=1e-12)


def test_winograd_s_matrices_compute_the_correlation_in_1d_and_2d():
    rng = np.random.default_rng(2)
    d, g = rng.normal(size=4), rng.normal(size=3)
    np.testing.assert_allclose(kx.AT @ ((kx.G @ g) * (kx.BT @ d)), [d[:3] @ g, d[1:] @ g], rtol=1e-13)
    d, g = rng.normal(size=(4, 4)), rng.normal(size=(3, 3))
    direct = [[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(2)] for i in range(2)]
    winograd = kx.AT @ ((kx.G @ g @ kx.G.T) * (kx.BT @ d @ kx.BT.T)) @ kx.AT.T
    np.testing.assert_allclose(winograd, direct, rtol=1e-12, atol=1e-12)


def test_im2col_with_the_kernel_entries_in_the_wrong_order_fails_naming_the_rows():
    def q_before_p(x, kh, kw):                     # rows (c, q, p) instead of (c, p, q)
        c, h, w = x.shape
        ho, wo = h - kh + 1, w - kw + 1
        return np.stack([x[k, p:p + ho, q:q + wo].ravel() for k in range(c) for q in range(kw) for p in range(kh)])

    with pytest.raises(ExerciseError) as info:
        kx.check_im2col(q_before_p)
    rows = {int(r["index"].strip("[]").split(",")[0]) for r in info.value.report.rows}
    assert rows == {1, 2, 3, 4, 7, 8, 9, 10, 13, 14, 15, 16}      # rows 0 and 5 of each channel agree: (0,0), (2,1)
    assert str(info.value).startswith("im2col: FAILED")


def test_im2col_of_the_wrong_shape_and_a_half_transform_fail():
    with pytest.raises(ExerciseError, match=r"cols has shape \(16, 18\), expected \(18, 16\)"):
        kx.check_im2col(lambda x, kh, kw: SOLUTIONS["im2col"](x, kh, kw).T)
    with pytest.raises(ExerciseError, match="winograd_input_transform: FAILED"):
        kx.check_winograd_input_transform(lambda d: kx.BT @ d)    # the right-hand B forgotten


def test_the_blocked_product_s_checker_names_the_edges_a_whole_blocks_only_answer_leaves_out():
    def whole_blocks_only(a, b):
        c = np.zeros((a.shape[0], b.shape[1]))
        for i in range(0, a.shape[0] - 1, 2):
            for j in range(0, b.shape[1] - 1, 2):
                c[i:i + 2, j:j + 2] = a[i:i + 2] @ b[:, j:j + 2]
        return c

    with pytest.raises(ExerciseError, match="matmul_blocked: FAILED") as caught:
        kx.check_matmul_blocked(whole_blocks_only)
    message = str(caught.value)
    assert "11 of 35 elements are wrong" in message          # row 4 (7 entries) and column 6 (4 more)
    rows = [line for line in message.splitlines() if line.startswith("c ")]
    assert rows and all(("[4," in line) or (", 6]" in line) for line in rows)
