"""The CNN-training tutorials run headless, and their exercise checkers tell right answers from wrong ones.

Each lesson asserts its own teaching claims, so running it is the test of its content; here we run
each one as a user would (``python tutorials/cnn_0N_*.py``), in a fresh process. The checkers are
held to the solutions (which must pass), to one planted wrong element per output and to a classic
mistake per exercise (which must fail, the table naming the wrong element), and the references of
the derivative exercises to central differences of a NumPy forward.
"""
import doctest
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

import autodiff as ad
import chainrule.exercises.cnn as ex
from chainrule.exercises import ExerciseError, attempt
from chainrule.exercises.checking import ATOL, RTOL, index_text
from chainrule.exercises.solutions.cnn import SOLUTIONS

from _lessons import run_lesson  # tests/_lessons.py

LESSONS = sorted((ROOT / "tutorials").glob("cnn_0*.py"))
# Seconds a lesson may take before the run is stopped: lesson 5 trains a CNN (about half a minute
# alone on 2 cores), the others run in seconds; generous, for a loaded CI machine.
TIMEOUT = {"cnn_05_training": 300, "cnn_06_regularisation": 240}


# --- the lessons -------------------------------------------------------------------------------------

def test_there_are_nine_lessons_and_a_readme_that_lists_them():
    assert [p.stem[:6] for p in LESSONS] == [f"cnn_0{k}" for k in range(1, 10)]
    assert [p.stem for p in LESSONS] == list(ex.LESSONS)
    readme = (ROOT / "tutorials" / "README.md").read_text()
    section = readme.split("## Training CNNs", 1)[1]
    for lesson in LESSONS:
        assert f"`{lesson.name}`" in section, lesson.name
    assert "MNIST_DIR" in section and "TUTORIAL_FULL" in section and "(coming" not in section


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_as_a_script_and_writes_its_pictures(lesson, tmp_path):
    result = run_lesson(lesson, tmp_path, timeout=TIMEOUT.get(lesson.stem, 120),
                        unset=("MNIST_DIR", "TUTORIAL_FULL"))
    for name in ex.LESSONS[lesson.stem]:      # each exercise is reported, unattempted, by the script
        assert f"{name}: not attempted" in result.stdout, name


def test_lessons_are_jupytext_percent_scripts_that_end_with_exercises():
    for lesson in LESSONS:
        text = lesson.read_text()
        assert "format_name: percent" in text and "# %% [markdown]" in text, lesson.name
        assert 'matplotlib.use("Agg")' in text and "TUTORIAL_OUTPUT" in text, lesson.name
        last_markdown = text.rsplit("# %% [markdown]", 1)[1]
        assert "exercises" in last_markdown.splitlines()[1].lower(), lesson.name
        for name in ex.LESSONS[lesson.stem]:
            assert f"check_{name}" in last_markdown, (lesson.name, name)
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), lesson.name     # model.eval() is fine


# --- the checkers on right answers -----------------------------------------------------------------

def test_every_exercise_has_a_stub_a_checker_a_solution_and_a_lesson():
    assert set(ex.EXERCISES) == set(ex.CHECKS) == set(ex.STUBS) == set(SOLUTIONS)
    assert sorted(sum(ex.LESSONS.values(), [])) == sorted(ex.EXERCISES)
    assert all(ex.LESSONS.values())                    # at least one per lesson


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


def _elu(x):
    return np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1)


def _swish(x):
    return x / (1 + np.exp(-x))


def _numeric_elementwise_derivative(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("name, forward", [("elu_derivative", _elu), ("swish_derivative", _swish)])
def test_derivative_references_agree_with_central_differences(name, forward):
    exercise = ex.EXERCISES[name]
    inputs = exercise.inputs()
    (expected,) = exercise.expected(inputs)
    np.testing.assert_allclose(expected, _numeric_elementwise_derivative(forward, inputs["x"]), rtol=1e-7, atol=1e-9)


def test_the_penalty_gradient_reference_agrees_with_central_differences():
    exercise = ex.EXERCISES["elastic_net_grad"]
    inputs = exercise.inputs()
    l1, l2 = inputs["l1"], inputs["l2"]
    (expected,) = exercise.expected(inputs)
    numeric = ad.numerical_gradient(lambda w: l1 * np.sum(np.abs(w)) + l2 / 2 * np.sum(w ** 2), inputs["w"],
                                    method="central")
    np.testing.assert_allclose(expected, numeric, rtol=1e-6, atol=1e-9)


def test_the_residual_reference_agrees_with_central_differences():
    exercise = ex.EXERCISES["residual_block"]
    inputs = exercise.inputs()
    g = exercise.cotangent(inputs)
    for wrt, expected in zip(exercise.wrt, exercise.reference(inputs, g)):
        def f(v, wrt=wrt):
            return ex.residual_block(*[v if k == wrt else inputs[k] for k in exercise.args])

        jac = ad.numerical_jacobian(f, inputs[wrt], method="central")
        np.testing.assert_allclose(expected, np.tensordot(g, jac, axes=g.ndim), rtol=1e-6, atol=1e-7,
                                   err_msg=f"d{wrt}")


def test_the_optimiser_references_start_from_the_given_state():
    """The reference is nn.optim resumed mid-run: a first step (buffer = gradient, no bias correction
    yet) would give other numbers, so the exercise really tests the general step."""
    inputs = ex.EXERCISES["momentum_step"].inputs()
    param, buf = ex.EXERCISES["momentum_step"].expected(inputs)
    np.testing.assert_allclose(buf, inputs["momentum"] * inputs["momentum_buffer"] + inputs["grad"], rtol=1e-12)
    inputs = ex.EXERCISES["adam_step"].inputs()
    _, m, v = ex.EXERCISES["adam_step"].expected(inputs)
    beta1, beta2 = inputs["betas"]
    np.testing.assert_allclose(m, beta1 * inputs["exp_avg"] + (1 - beta1) * inputs["grad"], rtol=1e-12)
    np.testing.assert_allclose(v, beta2 * inputs["exp_avg_sq"] + (1 - beta2) * inputs["grad"] ** 2, rtol=1e-12)


# --- the checkers on wrong answers -------------------------------------------------------------------

def _outputs(name):
    exercise = ex.EXERCISES[name]
    return [f"d{w}" for w in exercise.wrt] if isinstance(exercise, ex.Exercise) else list(exercise.outputs)


def _arguments(name):
    exercise = ex.EXERCISES[name]
    if isinstance(exercise, ex.Exercise):
        inputs = exercise.inputs()
        return [inputs[k] for k in exercise.args] + [exercise.cotangent(inputs)]
    inputs = exercise.inputs()
    return [inputs[k] for k in exercise.args]


def _as_arrays(answer):
    return [np.array(a, dtype=np.float64) for a in (answer if isinstance(answer, tuple) else (answer,))]


def _with_one_wrong_element(name, which, flat):
    """The solution, with element ``flat`` of its ``which``-th output changed by 1."""
    def answer(*args):
        outputs = _as_arrays(SOLUTIONS[name](*args))
        outputs[which].flat[flat] += 1.0
        return tuple(outputs) if len(outputs) > 1 else outputs[0]
    return answer


CASES = [(name, k) for name in sorted(ex.EXERCISES) for k in range(len(_outputs(name)))]


@pytest.mark.parametrize("name, which", CASES, ids=[f"{n}-{_outputs(n)[k]}" for n, k in CASES])
def test_one_wrong_element_is_named(name, which):
    shape = _as_arrays(SOLUTIONS[name](*_arguments(name)))[which].shape
    flat = (7 * int(np.prod(shape))) // 11  # somewhere inside, not the first element
    index = index_text(shape, flat)
    output = _outputs(name)[which]
    with pytest.raises(ExerciseError) as info:
        ex.CHECKS[name](_with_one_wrong_element(name, which, flat))
    report, message = info.value.report, str(info.value)
    assert report.wrong == 1 and len(report.rows) == 1
    row = report.rows[0]
    assert (row["gradient"], row["index"]) == (output, index)
    assert row["got"] == pytest.approx(row["expected"] + 1.0, abs=1e-9)
    assert re.search(rf"^{re.escape(output)} +{re.escape(index)} ", message, flags=re.M), message
    assert f"{name}: FAILED" in message
    header = "gradient" if isinstance(ex.EXERCISES[name], ex.Exercise) else "output"
    assert re.search(rf"^{header} +index +expected +got +abs err$", message, flags=re.M), message


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _adam_without_bias_correction(param, grad, exp_avg, exp_avg_sq, step, lr, betas):
    m = betas[0] * exp_avg + (1 - betas[0]) * grad
    v = betas[1] * exp_avg_sq + (1 - betas[1]) * grad ** 2
    return param - lr * m / (np.sqrt(v) + ex.ADAM_EPS), m, v


def _residual_without_shortcut(x, W1, W2, g):
    dx, dW1, dW2 = SOLUTIONS["residual_block"](x, W1, W2, g)
    return dx - g, dW1, dW2


def _dense_counts_without_biases(widths, classes, frozen):
    sizes = [a * b for a, b in zip(widths, widths[1:] + [classes])]
    return sum(sizes[frozen:]), sum(sizes[:frozen])


def _layerwise_input_without_the_last_sigmoid(x, weights, biases, k):
    h = SOLUTIONS["layerwise_input"](x, weights, biases, k - 1)
    return h @ weights[k - 1] + biases[k - 1]


MISTAKES = {  # a classic mistake for each exercise
    "elu_derivative": lambda x: np.where(x > 0, 1.0, np.exp(x) - 1),               # f instead of f'
    "swish_derivative": lambda x: _sigmoid(x),                                     # forgot x sigma'(x)
    "init_std": lambda shape: (np.sqrt(2 / (shape[1] + shape[0])), np.sqrt(2 / shape[1])),   # forgot kh kw
    "momentum_step": lambda p, g, b, lr, mu: (p - lr * (mu * b + (1 - mu) * g), mu * b + (1 - mu) * g),  # EMA
    "adam_step": _adam_without_bias_correction,                                    # forgot eqs. 5.31-5.32
    "channel_centre": lambda x_train, x: x - x_train.mean(axis=0),                 # the mean image instead
    "confusion_matrix": lambda t, p, k: SOLUTIONS["confusion_matrix"](p, t, k),    # rows and columns swapped
    "elastic_net_grad": lambda w, l1, l2: l1 * np.sign(w) + 2 * l2 * w,           # Keras's convention: no 1/2
    "max_norm": lambda w, c: w * c / np.linalg.norm(w, axis=0),                   # every column set to norm c
    "residual_block": _residual_without_shortcut,                                  # forgot the identity's g
    "conv_params": lambda f, c, k, g: (f * c * k * k, f),                          # forgot the groups
    "transfer_params": _dense_counts_without_biases,                               # forgot the biases
    "layerwise_input": _layerwise_input_without_the_last_sigmoid,                  # the pre-activation
}


@pytest.mark.parametrize("name", sorted(ex.EXERCISES))
def test_a_classic_mistake_fails_and_the_worst_element_is_named_first(name):
    args = _arguments(name)
    right, wrong = _as_arrays(SOLUTIONS[name](*args)), _as_arrays(MISTAKES[name](*args))
    # The worst element, found independently: largest excess of |wrong - right| over the tolerance.
    worst = max(((np.abs(w - r) - ATOL - RTOL * np.abs(r)).max(), output,
                 index_text(r.shape, int(np.argmax(np.abs(w - r) - ATOL - RTOL * np.abs(r)))))
                for output, r, w in zip(_outputs(name), right, wrong))
    assert worst[0] > 0, "the planted mistake must actually be wrong at the checker's inputs"
    with pytest.raises(ExerciseError) as info:
        ex.CHECKS[name](MISTAKES[name])
    first = info.value.report.rows[0]
    assert (first["gradient"], first["index"]) == worst[1:]
    assert re.search(rf"^{re.escape(worst[1])} +{re.escape(worst[2])} ", str(info.value), flags=re.M)
    wrong_count = sum(int(np.count_nonzero(~np.isclose(w, r, rtol=RTOL, atol=ATOL))) for r, w in zip(right, wrong))
    assert info.value.report.wrong == wrong_count


def test_answers_of_the_wrong_form_are_explained():
    with pytest.raises(ExerciseError, match=r"constrained w has shape \(6, 5\), expected \(5, 6\)"):
        ex.check_max_norm(lambda w, c: SOLUTIONS["max_norm"](w, c).T)
    with pytest.raises(ExerciseError, match="expected a tuple of 2 arrays, got ndarray"):
        ex.check_momentum_step(lambda p, g, b, lr, mu: p - lr * (mu * b + g))        # forgot the buffer
    with pytest.raises(ExerciseError, match="an output is None"):
        ex.check_init_std(lambda shape: (None, 1.0))
    with pytest.raises(ExerciseError, match="transpose of the expected one"):
        ex.check_confusion_matrix(MISTAKES["confusion_matrix"])
    with pytest.raises(ExerciseError, match="opposite sign"):
        ex.check_elastic_net_grad(lambda w, l1, l2: -SOLUTIONS["elastic_net_grad"](w, l1, l2))


def test_the_pretraining_checkers_refuse_other_plausible_answers():
    """Lesson 9: the Input counted as a frozen layer, the old head kept instead of the new one, and
    layer k's own output (k + 1 layers) instead of its input all fail."""
    solution = SOLUTIONS["transfer_params"]
    for wrong in (lambda w, c, f: solution(w, c, f - 1), lambda w, c, f: solution(w, 2, f)):
        with pytest.raises(ExerciseError, match="transfer_params: FAILED"):
            ex.check_transfer_params(wrong)
    with pytest.raises(ExerciseError, match=r"input of layer k has shape \(4, 3\), expected \(4, 4\)"):
        ex.check_layerwise_input(lambda x, w, b, k: SOLUTIONS["layerwise_input"](x, w, b, k + 1))


def test_the_examples_in_the_exercise_module_run():
    result = doctest.testmod(ex, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
