"""Exercises for the kernel lessons (``tutorials/kernels_0N_*.py``): write a kernel, have it checked.

A kernel's answer is held to a NumPy reference, as the other exercises are: lesson 2's im2col,
Winograd input transform and blocked matrix product element by element, with the tables of
:mod:`chainrule.exercises.values`.
A parallel kernel is also held to what the library's kernels promise: lesson 1's sum of squares is
run on several inputs at 1 and 2 Numba threads, each result must lie within the float32 error bound
of the exact sum, and the results at the two thread counts must be the same bits. Its checker
passes, or raises ``ExerciseError`` with a table of the wrong results and a sentence per unstable input.

For each exercise this module gives a stub with the signature your answer must have (it raises
``NotImplementedError``) and a checker ``check_<name>(your_function)``; ``LESSONS`` says which
lesson asks for which. The answers are in :mod:`chainrule.exercises.solutions.kernels`: try first.

>>> import numpy as np
>>> from chainrule.exercises.kernels import check_sum_of_squares, sum_of_squares
>>> from chainrule.exercises import attempt
>>> attempt(check_sum_of_squares, sum_of_squares).status
'not attempted'
>>> check_sum_of_squares(lambda x: np.float32(np.sum(x.astype(np.float64) ** 2))).passed   # not parallel, but right
True
>>> try:
...     check_sum_of_squares(lambda x: np.sum(x))                  # forgot to square
... except AssertionError as err:
...     print(str(err).splitlines()[0])
sum_of_squares: FAILED
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from .checking import ExerciseError
from .values import ValueExercise

#: float32's unit roundoff u = 2^-24: a float32 operation's result is within a factor (1 +- u) of the exact one.
U32 = float(np.finfo(np.float32).eps) / 2

#: The thread counts a kernel is run at (those above Numba's NUMBA_NUM_THREADS are left out).
THREADS = (1, 2)


# --- lesson 1: a parallel sum of squares -------------------------------------------------------------

def sum_of_squares(x):
    """Return sum(x[i]**2) of a float32 vector x, in parallel (prange), in fixed chunks: the same bits
    at every thread count."""
    raise NotImplementedError("write a prange loop over fixed chunks, one partial sum each, summed in order")


def sum_of_squares_inputs() -> list:
    """The checker's inputs: (label, float32 vector). The last one shows the order of the additions:
    4096^2 = 2^24, after which a float32 sum taken in order drops every 1 (2^24 + 1 rounds to 2^24)."""
    rng = np.random.default_rng(0)
    ordered = np.ones(100_001, dtype=np.float32)
    ordered[0] = 4096
    return [("1 element", rng.normal(size=1).astype(np.float32)),
            ("1,000 normal values", rng.normal(size=1000).astype(np.float32)),
            ("100,003 uniform values", rng.uniform(-1, 1, 100_003).astype(np.float32)),
            ("4096, then 100,000 ones", ordered)]


def exact_sum_of_squares(x) -> float:
    """The exact sum of squares of a float32 vector, rounded once to float64 (each square of a float32 is
    exact in float64; math.fsum adds them without rounding error)."""
    return math.fsum(np.asarray(x, dtype=np.float64) ** 2)


def float32_bound(x) -> float:
    """How far any float32 sum of squares may lie from the exact one, whatever the order of its
    additions: each of the n squares and n - 1 additions rounds once, so |error| <= gamma_2n sum(x^2),
    gamma_k = k u / (1 - k u) (Higham, Accuracy and Stability of Numerical Algorithms, ch. 4)."""
    k = 2 * np.asarray(x).size
    return k * U32 / (1 - k * U32) * exact_sum_of_squares(x)


@dataclass
class KernelReport:
    """What a kernel checker ran, and what was wrong: rows of wrong results, sentences about the rest."""

    exercise: str
    passed: bool
    inputs: int = 0
    threads: tuple = ()
    rows: list = field(default_factory=list)      # dicts: input, threads, expected, got, abs err, bound
    problems: list = field(default_factory=list)

    def __str__(self):
        counts = " and ".join(str(t) for t in self.threads)
        if self.passed:
            return (f"{self.exercise}: passed ({self.inputs} inputs at {counts} threads: within the float32 bound, "
                    f"the same bits at every thread count)")
        lines = [f"{self.exercise}: FAILED"]
        if self.rows:
            lines.append(f"{len(self.rows)} of {self.inputs * len(self.threads)} results lie outside the float32 "
                         f"bound of the exact sum; the worst:")
            lines.append(_table(self.rows))
        return "\n".join(lines + self.problems)


def _table(rows):
    columns = ("input", "threads", "expected", "got", "abs err", "bound")
    cells = [[r["input"], str(r["threads"]), f"{r['expected']:.9g}", f"{r['got']:.9g}", f"{r['abs err']:.3g}",
              f"{r['bound']:.3g}"] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(columns)]

    def line(row):
        return "  ".join(cell.ljust(w) if k == 0 else cell.rjust(w) for k, (cell, w) in enumerate(zip(row, widths)))

    head = line(columns)
    return "\n".join([head, "-" * len(head)] + [line(row) for row in cells])


def _at_threads(function, x, threads):
    """function(x) run with ``threads`` Numba threads, as a float (the thread count given back after)."""
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        answer = np.asarray(function(x.copy()))
    finally:
        numba.set_num_threads(before)
    if answer.size != 1:
        raise ExerciseError(KernelReport("sum_of_squares", passed=False, problems=[
            f"expected one number, got an array of shape {answer.shape}"]))
    return float(answer.reshape(()))


def check_sum_of_squares(student):
    """Check ``student(x) -> sum(x**2)`` (x float32) on every input of ``sum_of_squares_inputs()`` at 1 and 2
    threads: within ``float32_bound`` of the exact sum, and the same bits at both thread counts."""
    threads = tuple(t for t in THREADS if t <= numba.config.NUMBA_NUM_THREADS)
    inputs = sum_of_squares_inputs()
    report = KernelReport("sum_of_squares", passed=True, inputs=len(inputs), threads=threads)
    for label, x in inputs:
        expected, bound = exact_sum_of_squares(x), float32_bound(x)
        got = {t: _at_threads(student, x, t) for t in threads}
        for t, value in got.items():
            if not abs(value - expected) <= bound:              # NaN is wrong too
                report.rows.append({"input": label, "threads": t, "expected": expected, "got": value,
                                    "abs err": abs(value - expected), "bound": bound})
        values = list(got.values())
        if any(np.float64(v).tobytes() != np.float64(values[0]).tobytes() for v in values[1:]):
            report.problems.append(f"not the same bits at every thread count: {label} gives "
                                   + ", ".join(f"{v!r} with {t}" for t, v in got.items())
                                   + " threads (do the chunks depend on the number of threads?)")
    report.rows.sort(key=lambda r: r["abs err"] / r["bound"] if r["bound"] else math.inf, reverse=True)
    report.passed = not report.rows and not report.problems
    if not report.passed:
        raise ExerciseError(report)
    return report


# --- lesson 2: convolution three ways ------------------------------------------------------------------

def im2col(x, kh, kw):
    """Return cols (C*kh*kw, Ho*Wo) for one image x (C, H, W), stride 1, no padding (Ho = H - kh + 1):
    cols[(c*kh + p)*kw + q, i*Wo + j] = x[c, i + p, j + q], the layout of kernels/conv2d/cpu.py."""
    raise NotImplementedError("one row per kernel entry (c, p, q): the window of x it multiplies, flattened")


def _im2col_reference(x, kh, kw):
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))   # (C, Ho, Wo, kh, kw)
    c, ho, wo = windows.shape[:3]
    return (windows.transpose(0, 3, 4, 1, 2).reshape(c * kh * kw, ho * wo),)


IM2COL = ValueExercise(
    "im2col", ("x", "kh", "kw"), ("cols",), _im2col_reference,
    lambda rng: {"x": rng.normal(size=(3, 6, 5)), "kh": 3, "kw": 2})


def check_im2col(student):
    """Check ``student(x, kh, kw) -> cols`` against sliding windows of x (NumPy's sliding_window_view)."""
    return IM2COL.check(student)


#: Winograd F(2, 3) (Lavin and Gray, 2016): two outputs of a 3-tap correlation from four inputs d and
#: the filter g as y = AT [(G g) * (BT d)], with 4 multiplications instead of 6.
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def winograd_input_transform(d):
    """Return V = B^T d B for a stack of 4x4 input tiles d (..., 4, 4), B^T = ``BT``."""
    raise NotImplementedError("two products with BT: one on the left, one (transposed) on the right")


WINOGRAD_INPUT_TRANSFORM = ValueExercise(
    "winograd_input_transform", ("d",), ("V",), lambda d: (BT @ d @ BT.T,),
    lambda rng: {"d": rng.normal(size=(2, 3, 4, 4))})


def check_winograd_input_transform(student):
    """Check ``student(d) -> B^T d B`` for tiles d (2, 3, 4, 4) against two matrix products."""
    return WINOGRAD_INPUT_TRANSFORM.check(student)


def matmul_blocked(a, b):
    """Return c = a @ b (a (M, K), b (K, N)) computed by 2 x 2 blocks of c: for each block, four sums kept
    in local variables (registers) over the whole k loop, each loaded value of a and b used twice; then the
    last row and column when M or N is odd (the micro-kernel's idea, kernels/microkernel.py, in scalars)."""
    raise NotImplementedError("four running sums per 2x2 block of c over k; then the odd row and column")


MATMUL_BLOCKED = ValueExercise(
    "matmul_blocked", ("a", "b"), ("c",), lambda a, b: (a @ b,),
    lambda rng: {"a": rng.normal(size=(5, 6)), "b": rng.normal(size=(6, 7))})      # odd M and N: the edges


def check_matmul_blocked(student):
    """Check ``student(a, b) -> a @ b`` on a (5, 6) @ (6, 7) product (odd sizes: the blocks' edges)."""
    return MATMUL_BLOCKED.check(student)


# --- the index -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ThreadsExercise:
    """A parallel kernel's exercise: the inputs its checker runs it on, at each of ``THREADS``."""

    name: str
    inputs: Callable


#: Every exercise, in the order of the lessons.
EXERCISES = {"sum_of_squares": ThreadsExercise("sum_of_squares", sum_of_squares_inputs), "im2col": IM2COL,
             "winograd_input_transform": WINOGRAD_INPUT_TRANSFORM, "matmul_blocked": MATMUL_BLOCKED}

#: The checker of each exercise, by name.
CHECKS = {"sum_of_squares": check_sum_of_squares, "im2col": check_im2col,
          "winograd_input_transform": check_winograd_input_transform, "matmul_blocked": check_matmul_blocked}

#: The stub of each exercise (raises NotImplementedError), by name.
STUBS = {"sum_of_squares": sum_of_squares, "im2col": im2col, "winograd_input_transform": winograd_input_transform,
         "matmul_blocked": matmul_blocked}

#: Which lesson asks for which exercises.
LESSONS = {"kernels_01_prange": ["sum_of_squares"],
           "kernels_02_conv_three_ways": ["im2col", "winograd_input_transform", "matmul_blocked"]}

__all__ = ["EXERCISES", "CHECKS", "STUBS", "LESSONS", "KernelReport", "ThreadsExercise", "U32", "THREADS", "BT", "G",
           "AT", "sum_of_squares",
           "check_sum_of_squares", "sum_of_squares_inputs", "exact_sum_of_squares", "float32_bound", "im2col",
           "check_im2col", "winograd_input_transform", "check_winograd_input_transform", "matmul_blocked",
           "check_matmul_blocked"]
