"""What an assignment's test cell runs: a student's variant of an exercise, checked, and a rule property-tested.

- ``variant_seed(student, name)``: the seed of one student's inputs for one exercise, a stable hash
  (SHA-256) of both, so two students get different inputs and the grader regenerates the same ones.
- ``grade(set_name, name, answer, student)``: the exercise's checker on the student's variant; for
  a rule (a vjp), also a property test: hypothesis draws shapes and values, compares the answer with
  the engine's reverse sweep, and reports the smallest failing case it shrinks to. Raises
  ``AssertionError`` with the explanation when the answer is wrong (a grader gives the cell 0 points).

This runs inside the notebook's own kernel (nbgrader executes the submission there), never in the
process of ``chainrule assignment``. hypothesis is imported only for the property tests.
"""
from __future__ import annotations

import hashlib
import importlib

import numpy as np

from .checking import ATOL, RTOL, Exercise

#: The exercise sets an assignment can be built from, by name: the module holding EXERCISES and CHECKS.
SETS = {"diff": "chainrule.exercises.diff"}

#: Lesson names that are also accepted as the SOURCE of an assignment (the set their exercises come from).
LESSONS = {"diff_06_gradcheck_exercises": "diff"}

#: How many examples hypothesis tries per rule before it is satisfied (small: a grade cell stays ~1 s).
MAX_EXAMPLES = 60


def exercise_set(name: str):
    """The module of the exercise set ``name`` (a set's or a lesson's name); ValueError naming the known ones."""
    set_name = LESSONS.get(name, name)
    if set_name not in SETS:
        known = ", ".join(sorted(SETS) + sorted(LESSONS))
        raise ValueError(f"SOURCE: unknown exercise set or lesson {name!r} (known: {known})")
    return set_name, importlib.import_module(SETS[set_name])


def variant_seed(student: str, name: str) -> int:
    """The seed of ``student``'s inputs for exercise ``name``: stable across runs and machines."""
    digest = hashlib.sha256(f"chainrule-assignment\0{student}\0{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def variant_inputs(set_name: str, name: str, student: str) -> dict:
    """The inputs the checker gives ``student``'s answer to exercise ``name``, by argument name."""
    _, module = exercise_set(set_name)
    return module.EXERCISES[name].inputs(variant_seed(student, name))


# --- property tests of a rule: hypothesis strategies over shapes and values --------------------------------

def _strategies():
    """Per rule exercise, a hypothesis strategy drawing its inputs and the cotangent g (a dict)."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    def values(lo, hi):
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)

    away_from_zero = values(0.1, 4) | values(-4, -0.1)   # no input at relu's kink

    def elementwise(elements):
        @st.composite
        def draw(draw_):
            shape = draw_(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
            return {"x": draw_(hnp.arrays(np.float64, shape, elements=elements)),
                    "g": draw_(hnp.arrays(np.float64, shape, elements=values(-2, 2)))}
        return draw()

    @st.composite
    def softmax(draw_):
        shape = draw_(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=4))
        return {"z": draw_(hnp.arrays(np.float64, shape, elements=values(-5, 5))),
                "g": draw_(hnp.arrays(np.float64, shape, elements=values(-2, 2)))}

    @st.composite
    def dense(draw_):
        n, d_in, d_out = (draw_(st.integers(1, 4)) for _ in range(3))
        arrays = lambda shape: draw_(hnp.arrays(np.float64, shape, elements=values(-3, 3)))  # noqa: E731
        return {"x": arrays((n, d_in)), "W": arrays((d_in, d_out)), "b": arrays((d_out,)), "g": arrays((n, d_out))}

    smooth = values(-4, 4)
    return {"sigmoid": elementwise(smooth), "tanh": elementwise(smooth), "relu": elementwise(away_from_zero),
            "leaky_relu": elementwise(away_from_zero), "elu": elementwise(away_from_zero),
            "softmax": softmax(), "dense": dense()}


#: The exercises whose rule is property-tested (the rest are checked on the student's variant only).
RULES = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax", "dense")


def _disagreement(exercise: Exercise, answer, case: dict):
    """None when ``answer`` agrees with the engine on ``case``, else (expected, got or the error)."""
    inputs = {k: v for k, v in case.items() if k != "g"}
    expected = exercise.reference(inputs, case["g"])
    try:
        got = answer(*[inputs[k].copy() for k in exercise.args], case["g"].copy())
        got = got if isinstance(got, (tuple, list)) else (got,)
        got = tuple(np.asarray(a, dtype=np.float64) for a in got)
    except NotImplementedError:
        raise
    except Exception as exc:   # the student's code failing on a shape it should handle is a failing case
        return expected, f"{type(exc).__name__}: {exc}"
    if len(got) != len(expected) or any(a.shape != e.shape or not np.allclose(a, e, rtol=RTOL, atol=ATOL)
                                        for a, e in zip(got, expected)):
        return expected, got
    return None


def smallest_failing_case(exercise: Exercise, answer, strategy, max_examples: int = MAX_EXAMPLES):
    """The smallest inputs (hypothesis shrinks them) on which ``answer`` disagrees with the engine, or None."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    config = settings(max_examples=max_examples, database=None, deadline=None, derandomize=True,
                      phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    try:
        return find(strategy, lambda case: _disagreement(exercise, answer, case) is not None, settings=config)
    except NoSuchExample:
        return None


def _show(value) -> str:
    if isinstance(value, str):
        return value
    return np.array2string(np.asarray(value), precision=6, separator=", ", threshold=50)


def counterexample_text(exercise: Exercise, answer, case: dict) -> str:
    """The failing case as lines: each input, then each gradient expected and got."""
    expected, got = _disagreement(exercise, answer, case)
    lines = [f"{exercise.name}: the rule is wrong; the smallest failing case hypothesis found (shrunk):"]
    lines += [f"  {k} = {_show(v)}" for k, v in case.items()]
    if isinstance(got, str):
        return "\n".join(lines + [f"  your function raised {got}"])
    for k, (e, a) in enumerate(zip(expected, got)):
        lines.append(f"  d{exercise.wrt[k]}: expected {_show(e)}, got {_show(a)}")
    if len(got) != len(expected):
        lines.append(f"  expected {len(expected)} gradients, got {len(got)}")
    return "\n".join(lines)


def grade(set_name: str, name: str, answer, student: str | None) -> str:
    """Check ``answer`` to exercise ``name`` on ``student``'s variant (and property-test a rule).

    Prints and returns the explanation when it passes; raises ``AssertionError`` with it otherwise
    (``NotImplementedError`` from an untouched stub passes through: not attempted).
    """
    _, module = exercise_set(set_name)
    exercise = module.EXERCISES[name]
    seed = None if student is None else variant_seed(student, name)   # None: a notebook built without --student
    report = str(exercise.check(answer, seed=seed))   # ExerciseError is an AssertionError
    if name in RULES and isinstance(exercise, Exercise):
        case = smallest_failing_case(exercise, answer, _strategies()[name])
        if case is not None:
            raise AssertionError(f"{report}\nbut on other shapes and values:\n"
                                 f"{counterexample_text(exercise, answer, case)}")
        report += f"; and on {MAX_EXAMPLES} shapes and values hypothesis drew"
    print(report)
    return report
