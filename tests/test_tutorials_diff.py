"""The differentiation tutorials run headless, and their exercise checkers tell right answers from wrong ones.

Each lesson asserts its own teaching claims, so running it is the test of its content; here we run
each one as a user would (``python tutorials/diff_0N_*.py``), in a fresh process. The checkers are
held to two oracles: the solutions (hand-written NumPy) must pass, planted mistakes must fail with
a message that names the wrong element, and every reference vjp must agree with central differences
of the exercise's NumPy forward (not with autodiff, which the checkers use).
"""
import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

import autodiff as ad
import chainrule.exercises as ex
from chainrule.exercises import ExerciseError, attempt
from chainrule.exercises.checking import ATOL, RTOL, index_text
from chainrule.exercises.solutions.diff import SOLUTIONS

from _lessons import run_lesson  # tests/_lessons.py
from _requires import HAS_DOT  # tests/_requires.py

LESSONS = sorted((ROOT / "tutorials").glob("diff_0*.py"))
# Lessons that render graphs with Graphviz's `dot`. CI installs it (and sets CI=true), so there they
# always run; on a machine without `dot` they are skipped. The other lessons run with an empty PATH,
# which proves they do not need it.
NEEDS_DOT = {"diff_01_graphs", "diff_03_forward_reverse", "diff_05_softmax_cross_entropy", "diff_08_transformations"}
NO_DOT = not HAS_DOT


# --- the lessons -------------------------------------------------------------------------------------

def test_there_are_eight_lessons_and_a_readme_that_lists_them():
    assert [p.stem[:7] for p in LESSONS] == [f"diff_0{k}" for k in range(1, 9)]
    readme = (ROOT / "tutorials" / "README.md").read_text()
    for lesson in LESSONS:
        assert f"python tutorials/{lesson.name}" in readme or f"`{lesson.name}`" in readme, lesson.name
    assert "Training CNNs" in readme


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_as_a_script_and_writes_its_pictures(lesson, tmp_path):
    if lesson.stem in NEEDS_DOT and NO_DOT:
        pytest.skip("Graphviz 'dot' is not installed (apt-get install graphviz)")
    run_lesson(lesson, tmp_path, needs_dot=lesson.stem in NEEDS_DOT)


def test_a_graph_lesson_runs_without_dot_and_says_what_it_skipped(tmp_path):
    result = run_lesson(ROOT / "tutorials" / "diff_01_graphs.py", tmp_path, writes_svg=False)   # empty PATH
    skipped = [line for line in result.stdout.splitlines() if line.startswith("skipped ")]
    assert [line.split()[1] for line in skipped] == ["fig_5_8.svg", "reverse_steps.html", "fig_5_8_adjoints.svg"]
    assert all("apt-get install graphviz" in line for line in skipped)
    assert "forward: 9 operations; backward: 12 local derivatives" in result.stdout   # its last line: it finished
    assert (tmp_path / "out" / "diff_01_graphs" / "fig_5_8.dot").exists()           # the DOT source is kept


def test_lessons_are_jupytext_percent_scripts_that_end_with_exercises():
    for lesson in LESSONS:
        text = lesson.read_text()
        assert "format_name: percent" in text and "# %% [markdown]" in text, lesson.name
        assert 'matplotlib.use("Agg")' in text and "TUTORIAL_OUTPUT" in text, lesson.name
        last_markdown = text.rsplit("# %% [markdown]", 1)[1]
        assert "exercises" in last_markdown.splitlines()[1].lower(), lesson.name
        assert "eval(" not in text and "exec(" not in text, lesson.name


# --- the checkers on right answers -----------------------------------------------------------------

def test_there_are_at_least_nine_exercises_each_with_forward_stub_checker_and_solution():
    required = {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax", "softmax_cross_entropy", "dense",
                "maxpool2x2", "batchnorm", "conv2d"}
    assert required <= set(ex.EXERCISES) == set(ex.CHECKS) == set(ex.STUBS) == set(SOLUTIONS)
    for name in ex.EXERCISES:
        assert callable(getattr(ex, f"check_{name}")) and callable(getattr(ex, f"{name}_vjp"))


@pytest.mark.parametrize("name", sorted(ex.EXERCISES))
def test_the_solution_passes(name):
    report = ex.CHECKS[name](SOLUTIONS[name])
    assert report.passed and report.wrong == 0 and report.compared > 0
    assert str(report).startswith(f"{name}: passed")
    assert attempt(ex.CHECKS[name], SOLUTIONS[name]).status == "passed"


@pytest.mark.parametrize("name", sorted(ex.EXERCISES))
def test_the_stub_is_not_attempted(name):
    with pytest.raises(NotImplementedError):
        ex.CHECKS[name](ex.STUBS[name])
    assert attempt(ex.CHECKS[name], ex.STUBS[name]).status == "not attempted"


@pytest.mark.parametrize("name", sorted(ex.EXERCISES))
def test_the_reference_agrees_with_central_differences_of_the_numpy_forward(name):
    exercise = ex.EXERCISES[name]
    inputs = exercise.inputs()
    g = exercise.cotangent(inputs)
    reference = exercise.reference(inputs, g)
    for wrt, expected in zip(exercise.wrt, reference):
        def f(v, wrt=wrt):
            return exercise.forward(*[v if k == wrt else inputs[k] for k in exercise.args])

        jac = ad.numerical_jacobian(f, inputs[wrt], method="central")   # shape out.shape + in.shape
        numeric = np.tensordot(g, jac, axes=g.ndim)                       # g J
        np.testing.assert_allclose(expected, numeric, rtol=1e-6, atol=1e-7, err_msg=f"{name}: d{wrt}")


def test_a_mismatch_between_the_two_forwards_is_the_exercise_s_fault():
    broken = ex.Exercise("broken", ("x",), ("x",), np.sin, lambda x: ad.cos(x), lambda rng: {"x": rng.normal(size=3)})
    with pytest.raises(RuntimeError, match="NumPy and autodiff forwards disagree"):
        broken.check(lambda x, g: g * np.cos(x))


# --- the checkers on wrong answers -------------------------------------------------------------------

def _as_tuple(answer):
    return answer if isinstance(answer, tuple) else (answer,)


def _with_one_wrong_element(name, which, flat):
    """The solution, with element ``flat`` of its ``which``-th gradient changed by 1."""
    def answer(*args):
        grads = [np.array(a, dtype=np.float64) for a in _as_tuple(SOLUTIONS[name](*args))]
        grads[which].flat[flat] += 1.0
        return tuple(grads) if len(grads) > 1 else grads[0]
    return answer


CASES = [(name, k) for name, e in sorted(ex.EXERCISES.items()) for k in range(len(e.wrt))]


@pytest.mark.parametrize("name, which", CASES, ids=[f"{n}-d{ex.EXERCISES[n].wrt[k]}" for n, k in CASES])
def test_one_wrong_element_is_named(name, which):
    exercise = ex.EXERCISES[name]
    shape = exercise.inputs()[exercise.wrt[which]].shape
    flat = (7 * int(np.prod(shape))) // 11  # somewhere inside, not the first element
    index = index_text(shape, flat)
    with pytest.raises(ExerciseError) as info:
        ex.CHECKS[name](_with_one_wrong_element(name, which, flat))
    report, message = info.value.report, str(info.value)
    assert report.wrong == 1 and len(report.rows) == 1
    row = report.rows[0]
    assert (row["gradient"], row["index"]) == (f"d{exercise.wrt[which]}", index)
    assert row["got"] == pytest.approx(row["expected"] + 1.0, abs=1e-9)
    assert re.search(rf"^d{exercise.wrt[which]} +{re.escape(index)} ", message, flags=re.M), message
    assert f"{name}: FAILED" in message
    assert f"{row['expected']:.6g}" in message and f"{row['got']:.6g}" in message


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _maxpool_top_left(x, g):
    dx = np.zeros_like(x)
    dx[:, :, ::2, ::2] = g
    return dx


def _batchnorm_without_statistics(x, gamma, beta, g):
    mu = x.mean(axis=0)
    inv_std = 1 / np.sqrt(x.var(axis=0) + ex.BN_EPS)
    return g * gamma * inv_std, (g * (x - mu) * inv_std).sum(axis=0), g.sum(axis=0)


def _conv2d_flipped_dx(x, w, g):
    """The classic: dx correlates g with the kernel flipped the wrong way round."""
    _, dw = SOLUTIONS["conv2d"](x, w, g)
    kh, kw = w.shape[2:]
    ho, wo = g.shape[2:]
    dx = np.zeros_like(x)
    for p in range(kh):
        for q in range(kw):
            dx[:, :, p:p + ho, q:q + wo] += np.einsum("nohw,oc->nchw", g, w[:, :, kh - 1 - p, kw - 1 - q])
    return dx, dw


MISTAKES = {  # a classic mistake for each exercise
    "sigmoid": lambda x, g: g * _sigmoid(x),                                   # forgot (1 - sigma)
    "tanh": lambda x, g: g * (1 - np.tanh(x)),                                 # forgot the square
    "relu": lambda x, g: (x > 0).astype(float),                                # forgot g
    "leaky_relu": lambda x, g: g * (x > 0),                                    # forgot the 0.1 slope
    "elu": lambda x, g: g * np.where(x >= 0, 1.0, ex.elu(x)),                  # f instead of f' = f + alpha
    "softmax": lambda z, g: g * ex.softmax(z) * (1 - ex.softmax(z)),           # the diagonal of J only
    "softmax_cross_entropy": lambda z, t, g: g * (ex.softmax(z) - t),          # forgot the 1/N of the mean
    "dense": lambda x, W, b, g: (g @ W.T, x.T @ g, g.mean(axis=0)),            # mean instead of sum for db
    "maxpool2x2": _maxpool_top_left,                                           # the wrong element of the window
    "batchnorm": _batchnorm_without_statistics,                                # mu and sigma held constant
    "conv2d": _conv2d_flipped_dx,                                              # the kernel flipped
}


@pytest.mark.parametrize("name", sorted(ex.EXERCISES))
def test_a_classic_mistake_fails_and_the_worst_element_is_named_first(name):
    exercise = ex.EXERCISES[name]
    inputs = exercise.inputs()
    g = exercise.cotangent(inputs)
    args = [inputs[k] for k in exercise.args] + [g]
    right, wrong = _as_tuple(SOLUTIONS[name](*args)), _as_tuple(MISTAKES[name](*args))
    # The worst element, found independently: largest excess of |wrong - right| over the tolerance.
    worst = max(((np.abs(w - r) - ATOL - RTOL * np.abs(r)).max(), f"d{wrt}",
                 index_text(r.shape, int(np.argmax(np.abs(w - r) - ATOL - RTOL * np.abs(r)))))
                for wrt, r, w in zip(exercise.wrt, right, wrong))
    assert worst[0] > 0, "the planted mistake must actually be wrong at the checker's inputs"
    with pytest.raises(ExerciseError) as info:
        ex.CHECKS[name](MISTAKES[name])
    first = info.value.report.rows[0]
    assert (first["gradient"], first["index"]) == worst[1:]
    assert re.search(rf"^{worst[1]} +{re.escape(worst[2])} ", str(info.value), flags=re.M), str(info.value)
    wrong_count = sum(int(np.count_nonzero(~np.isclose(w, r, rtol=RTOL, atol=ATOL))) for r, w in zip(right, wrong))
    assert info.value.report.wrong == wrong_count


def test_answers_of_the_wrong_form_are_explained():
    dense = ex.check_dense
    with pytest.raises(ExerciseError, match=r"dW has shape \(5, 3\), expected \(3, 5\)"):
        dense(lambda x, W, b, g: (g @ W.T, g.T @ x, g.sum(axis=0)))                 # dW transposed
    with pytest.raises(ExerciseError, match="expected a tuple of 3 arrays, got ndarray"):
        dense(lambda x, W, b, g: g @ W.T)
    with pytest.raises(ExerciseError, match="a gradient is None"):
        dense(lambda x, W, b, g: (g @ W.T, None, g.sum(axis=0)))
    with pytest.raises(ExerciseError, match="NaN or infinite"):
        ex.check_relu(lambda x, g: np.where(x > 0, g, np.nan))


def test_hints_name_a_sign_flip_and_a_constant_factor():
    with pytest.raises(ExerciseError, match="opposite sign"):
        ex.check_tanh(lambda x, g: -SOLUTIONS["tanh"](x, g))
    with pytest.raises(ExerciseError, match="3 times the expected one"):
        ex.check_softmax_cross_entropy(lambda z, t, g: 3 * SOLUTIONS["softmax_cross_entropy"](z, t, g))


def test_the_examples_in_the_exercise_module_and_the_tutorials_readme_run():
    import chainrule.exercises.diff as diff

    for result in (doctest.testmod(diff, optionflags=doctest.NORMALIZE_WHITESPACE),
                   doctest.testfile(str(ROOT / "tutorials" / "README.md"), module_relative=False,
                                    optionflags=doctest.NORMALIZE_WHITESPACE)):
        assert result.attempted > 0 and result.failed == 0


def test_the_checkers_import_from_anywhere_once_the_package_is_installed(tmp_path):
    # A student's own script, in a folder of its own, with no PYTHONPATH: `chainrule.exercises` is
    # part of the installed package (pip install -e .), under the package's own name.
    script = tmp_path / "my_answers.py"
    script.write_text("import numpy as np\n"
                      "from chainrule.exercises import check_relu\n"
                      "from chainrule.exercises.cnn import check_confusion_matrix\n"
                      "print(check_relu(lambda x, g: g * (x > 0)))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("relu: passed")


def test_a_lesson_copied_out_of_the_repository_runs_there(tmp_path):
    # A teacher's copy of lesson 6 in a folder of its own: it imports the installed checkers and
    # solutions (no `tutorials` package, no PYTHONPATH) and writes its pictures under that folder.
    copy = tmp_path / "class" / "diff_06_gradcheck_exercises.py"
    copy.parent.mkdir()
    copy.write_text((ROOT / "tutorials" / copy.name).read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TUTORIAL_OUTPUT")} | {"MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, copy.name], cwd=copy.parent, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sigmoid: passed" in result.stdout
    assert list((copy.parent / "tutorials" / "_output" / "diff_06_gradcheck_exercises").glob("*.svg"))
