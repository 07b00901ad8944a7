"""A value computed by hand, checked against the toolkit's: :class:`ValueExercise` and its report.

The CNN lessons' exercises (:mod:`chainrule.exercises.cnn`) mostly ask for a value, not a backward
pass: the answer is compared with what ``nn`` computes for the same inputs, element by element,
with the tolerances and the report of :mod:`chainrule.exercises.checking`.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .checking import ATOL, RTOL, ExerciseError, ExerciseReport, _as_tuple, _compare, _hints

__all__ = ["ValueExercise", "ValueReport"]


class ValueReport(ExerciseReport):
    """An :class:`ExerciseReport` that speaks of the answer's *outputs*, not of gradients.

    (Its rows keep the key "gradient" for the output's name, as the reports of the vjp exercises.)
    """

    def __str__(self):
        text = super().__str__().replace("a gradient is None", "an output is None")
        return re.sub(r"^gradient", "output  ", text, count=1, flags=re.M)


@dataclass
class ValueExercise:
    """A computation to write by hand, and the toolkit's reference for it.

    ``args`` names the student's arguments in order; ``outputs`` the arrays the answer returns, in
    order (one array, or a tuple of them). ``sample(rng)`` draws the inputs as a dict (arrays,
    numbers, shapes: passed as they are, copied); ``reference(**inputs)`` returns the expected
    outputs as a tuple, computed with the toolkit.
    """

    name: str
    args: tuple
    outputs: tuple
    reference: Callable
    sample: Callable
    seed: int = 0

    def inputs(self, seed: int | None = None) -> dict:
        """The inputs the checker uses, by argument name."""
        return self.sample(np.random.default_rng(self.seed if seed is None else seed))

    def expected(self, inputs: dict) -> tuple:
        """The reference outputs (float64 arrays) for these inputs."""
        result = self.reference(**copy.deepcopy(inputs))
        return tuple(np.asarray(r, dtype=np.float64) for r in result)

    def check(self, student: Callable, seed: int | None = None) -> ValueReport:
        """Run ``student(*args)`` and compare with the reference; raise ``ExerciseError`` if wrong.

        A stub that raises ``NotImplementedError`` lets it through: see ``attempt``.
        """
        inputs = self.inputs(seed)
        expected = self.expected(inputs)
        answer = student(*[copy.deepcopy(inputs[k]) for k in self.args])
        report = ValueReport(self.name, passed=True)
        transposed = []
        got = _as_tuple(answer, len(self.outputs), report)
        if got is not None:
            for name, e, a in zip(self.outputs, expected, got):
                if a.shape != e.shape:
                    report.problems.append(f"{name} has shape {a.shape}, expected {e.shape}")
                    continue
                wrong_before = report.wrong
                _compare(report, name, e, a)
                if report.wrong > wrong_before and a.T.shape == e.shape and np.allclose(a.T, e, rtol=RTOL, atol=ATOL):
                    transposed.append(name)
        report.passed = not report.problems and not report.wrong
        if not report.passed:
            report.rows.sort(key=lambda r: r["abs err"] - ATOL - RTOL * abs(r["expected"]), reverse=True)
            report.hints = [f"Hint: {name} is the transpose of the expected one: rows and columns swapped?"
                            for name in transposed] or _hints(report.rows)
            raise ExerciseError(report)
        return report
