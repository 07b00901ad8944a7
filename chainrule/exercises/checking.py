"""How an exercise is checked: the student's vjp against the engine's, element by element.

A *vjp* (vector-Jacobian product) is what a layer's backward pass computes: given the cotangent
``g = dL/dy`` of the output, it returns ``dL/dx = g J`` for each input ``x``. An ``Exercise``
holds one function twice: as NumPy code (what the student differentiates by hand) and as a
composition of ``autodiff`` ops (whose reverse sweep gives the reference vjp). The checker

1. draws the exercise's inputs and a random cotangent ``g`` (seeded, float64);
2. checks that the two forward versions agree (a guard on the exercise itself);
3. calls the student's function on copies of the inputs and ``g``;
4. compares every element of every returned gradient with the reference, and either returns a
   passing ``ExerciseReport`` or raises ``ExerciseError`` whose message is a table of the wrong
   elements: which gradient, which index (``[1, 2]``), the expected and the returned value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import autodiff as ad

#: An element passes when |got - expected| <= ATOL + RTOL |expected|. Both sides are exact up to
#: round-off (the reference is the engine's reverse sweep, not a difference quotient), so the
#: tolerance can be tight: any correct formula passes, a wrong one does not.
ATOL = 1e-8
RTOL = 1e-6


class ExerciseError(AssertionError):
    """The student's gradient disagrees with the reference; ``.report`` holds the details."""

    def __init__(self, report: "ExerciseReport"):
        self.report = report
        super().__init__(str(report))


def index_text(shape, flat) -> str:
    """'[i, j]' for the flat position ``flat`` in an array of ``shape`` ('[]' for a scalar)."""
    if not shape:
        return "[]"
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


@dataclass
class ExerciseReport:
    """What a checker compared, and which elements were wrong."""

    exercise: str
    passed: bool
    compared: int = 0
    wrong: int = 0
    rows: list = field(default_factory=list)      # dicts: gradient, index, expected, got, abs err
    problems: list = field(default_factory=list)  # sentences: wrong type, wrong shape, NaN ...
    hints: list = field(default_factory=list)
    shown: int = 10

    def __str__(self):
        if self.passed:
            return (f"{self.exercise}: passed ({self.compared} elements agree with the reference, "
                    f"atol={ATOL:g}, rtol={RTOL:g})")
        lines = [f"{self.exercise}: FAILED"]
        lines += self.problems
        if self.rows:
            lines.append(f"{self.wrong} of {self.compared} elements are wrong "
                         f"(|got - expected| > {ATOL:g} + {RTOL:g} |expected|); the worst:")
            lines.append(_table(self.rows[: self.shown]))
            if self.wrong > self.shown:
                lines.append(f"... and {self.wrong - self.shown} more")
        lines += self.hints
        return "\n".join(lines)


def _table(rows):
    columns = ("gradient", "index", "expected", "got", "abs err")
    cells = [[r["gradient"], r["index"], f"{r['expected']:.6g}", f"{r['got']:.6g}", f"{r['abs err']:.3g}"]
             for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(columns)]

    def line(row):  # names left-aligned, numbers right-aligned
        return "  ".join(cell.ljust(w) if k < 2 else cell.rjust(w) for k, (cell, w) in enumerate(zip(row, widths)))

    head = line(columns)
    return "\n".join([head, "-" * len(head)] + [line(row) for row in cells])


@dataclass
class Exercise:
    """One function to differentiate by hand, with everything needed to check the answer.

    ``args`` names the student's arguments in order (the cotangent ``g`` comes last); ``wrt`` the
    ones to return gradients for, in that order. ``forward`` is the NumPy version, ``ad_forward``
    the same function written with autodiff ops, ``sample(rng)`` draws valid inputs as a dict.
    """

    name: str
    args: tuple
    wrt: tuple
    forward: Callable
    ad_forward: Callable
    sample: Callable
    seed: int = 0

    def inputs(self, seed: int | None = None) -> dict:
        """The inputs the checker uses (float64), by argument name."""
        rng = np.random.default_rng(self.seed if seed is None else seed)
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.sample(rng).items()}

    def cotangent(self, inputs: dict, seed: int | None = None) -> np.ndarray:
        """The random cotangent g = dL/dy, shaped like the output."""
        rng = np.random.default_rng((self.seed if seed is None else seed) + 1000)
        out = np.asarray(self.forward(*[inputs[k] for k in self.args]))
        return rng.normal(size=out.shape)

    def reference(self, inputs: dict, g) -> tuple:
        """The engine's vjp: one cotangent per name in ``wrt``, by a reverse sweep."""
        constants = {k: v for k, v in inputs.items() if k not in self.wrt}

        def f(*diff):
            values = dict(constants, **dict(zip(self.wrt, diff)))
            return self.ad_forward(*[values[k] for k in self.args])

        out, vjp_fn = ad.vjp(f, *[inputs[k] for k in self.wrt])
        expected = np.asarray(self.forward(*[inputs[k] for k in self.args]))
        if not np.allclose(out, expected, rtol=1e-12, atol=1e-12):  # the exercise's own two versions
            raise RuntimeError(f"exercise {self.name!r}: the NumPy and autodiff forwards disagree")
        return tuple(np.asarray(c, dtype=np.float64) for c in vjp_fn(g))

    def check(self, student: Callable, seed: int | None = None) -> ExerciseReport:
        """Run ``student(*args, g)`` and compare with the reference; raise ``ExerciseError`` if wrong.

        A stub that raises ``NotImplementedError`` lets it through: see ``attempt``.
        """
        inputs = self.inputs(seed)
        g = self.cotangent(inputs, seed)
        expected = self.reference(inputs, g)
        answer = student(*[inputs[k].copy() for k in self.args], g.copy())
        report = ExerciseReport(self.name, passed=True)
        got = _as_tuple(answer, len(self.wrt), report)
        if got is not None:
            for name, e, a in zip(self.wrt, expected, got):
                _compare(report, f"d{name}", e, a)
        report.passed = not report.problems and not report.wrong
        if not report.passed:
            report.rows.sort(key=lambda r: r["abs err"] - ATOL - RTOL * abs(r["expected"]), reverse=True)
            report.hints = _hints(report.rows)
            raise ExerciseError(report)
        return report


def _as_tuple(answer, n, report):
    """The student's answer as a tuple of n arrays, or None (with a problem noted)."""
    expected_form = "one array" if n == 1 else f"a tuple of {n} arrays"
    if n == 1 and not isinstance(answer, (tuple, list)):
        answer = (answer,)
    if not isinstance(answer, (tuple, list)) or len(answer) != n:
        got = type(answer).__name__ + (f" of length {len(answer)}" if isinstance(answer, (tuple, list)) else "")
        report.problems.append(f"expected {expected_form}, got {got}")
        return None
    if any(a is None for a in answer):
        report.problems.append("a gradient is None: did the function forget to return it?")
        return None
    return tuple(np.asarray(a, dtype=np.float64) for a in answer)


def _compare(report, name, expected, got):
    if got.shape != expected.shape:
        report.problems.append(f"{name} has shape {got.shape}, expected {expected.shape} "
                               f"(a gradient has the shape of its input)")
        return
    report.compared += expected.size
    bad = ~np.isclose(got, expected, rtol=RTOL, atol=ATOL)  # NaN counts as wrong
    report.wrong += int(bad.sum())
    for flat in np.flatnonzero(bad):
        e, a = float(expected.flat[flat]) + 0.0, float(got.flat[flat]) + 0.0  # + 0.0: no "-0" in the table
        report.rows.append({"gradient": name, "index": index_text(expected.shape, flat), "expected": e,
                            "got": a, "abs err": abs(a - e)})


def _hints(rows):
    """A sentence about a common pattern in the wrong elements, if there is one."""
    if not rows:
        return []
    finite = [r for r in rows if np.isfinite(r["got"])]
    if len(finite) < len(rows):
        return ["Hint: some returned values are NaN or infinite."]
    if len(rows) >= 2 and all(np.isclose(r["got"], -r["expected"], rtol=1e-6, atol=1e-12) for r in rows):
        return ["Hint: every wrong element has the right size and the opposite sign."]
    ratios = [r["got"] / r["expected"] for r in rows if abs(r["expected"]) > 1e-12]
    if len(rows) >= 2 and len(ratios) == len(rows) and np.allclose(ratios, ratios[0], rtol=1e-6):
        return [f"Hint: every wrong element is {ratios[0]:.6g} times the expected one: a missing or extra factor?"]
    if all(r["got"] == 0 for r in rows):
        return ["Hint: the wrong elements are all zero: is a path through the function missing?"]
    return []


@dataclass
class Attempt:
    """The outcome of checking one answer: 'passed', 'not attempted' or 'FAILED' (with the table)."""

    exercise: str
    status: str
    message: str

    def __str__(self):
        return self.message


def attempt(check: Callable, student: Callable) -> Attempt:
    """Run ``check(student)`` without raising: for a notebook's status table."""
    name = getattr(check, "__name__", "check").removeprefix("check_")
    try:
        report = check(student)
    except NotImplementedError:
        return Attempt(name, "not attempted", f"{name}: not attempted (the stub raises NotImplementedError)")
    except ExerciseError as err:
        return Attempt(name, "FAILED", str(err))
    return Attempt(name, "passed", str(report))
