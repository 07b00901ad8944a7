# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 6: write the backward pass, check it
#
# *Exercises on the layers of the source material: the activation functions of the slides "CNN
# Training 1" (sigmoid, tanh, ReLU, Leaky ReLU, ELU), soft-max and cross-entropy (the lecture on
# classification), a dense layer, 2x2 max-pooling (Tomasi's appendix), batch normalisation (the
# book's eqs. 5.8-5.11) and the convolution.*
#
# Every layer of a network needs a **backward pass**: given $\mathbf{g} = \partial L/\partial \mathbf{y}$,
# the gradient of the loss with respect to the layer's output, return
# $\partial L/\partial \mathbf{x} = \mathbf{g} J$ for each input $\mathbf{x}$, where
# $J = \partial \mathbf{y}/\partial \mathbf{x}$. This is the *vector-Jacobian product* (vjp) of
# lesson 4, and it is computed without ever forming $J$. Writing vjps by hand is where the bugs
# of deep learning code live: a missing factor, a transposed matrix, a forgotten path through a
# mean. So we check them.
#
# **How it works.** For each exercise, `chainrule.exercises` gives the forward function in NumPy
# and a checker. You write the vjp in the cell below its description (replace the
# `raise NotImplementedError`), then run the check cell. The checker draws inputs and a random
# $\mathbf{g}$, computes the reference vjp with the engine (a reverse sweep through the same
# function written with autodiff operations) and compares every element. It either passes, or
# prints a table of the wrong elements: which gradient, which index, what was expected, what you
# returned. The answers are in `chainrule/exercises/solutions/diff.py`: try first.
#
# Run as a script, this lesson reports every exercise as "not attempted", then shows the checker
# at work on the solutions (they pass) and on planted mistakes (they fail, with the table).
# Pictures go to `tutorials/_output/diff_06_gradcheck_exercises/` (or `$TUTORIAL_OUTPUT`).

# %%
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files, never open a window
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ROOT = HERE.parent if HERE.name == "tutorials" else HERE
sys.path.insert(0, str(ROOT))  # the repository: `autodiff` and `chainrule` import without installing
import autodiff as ad
import chainrule.exercises as ex
from chainrule.exercises import attempt
from chainrule.exercises.checking import index_text
from chainrule.exercises.diff import BN_EPS, ELU_ALPHA, LEAKY_SLOPE, softmax  # noqa: F401 (for your answers)

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "diff_06_gradcheck_exercises"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Part A: activation functions
#
# An activation acts element by element, so its Jacobian is diagonal and the vjp is
# $\mathbf{g} \odot f'(\mathbf{x})$. Each function receives the layer input `x` and `g` (same shape)
# and returns `dL/dx`.
#
# 1. **sigmoid** $\sigma(x) = 1/(1 + e^{-x})$. Hint: write $\sigma'$ in terms of $\sigma$.
# 2. **tanh**. Hint: the same trick works.
# 3. **ReLU** $\max(0, x)$. The inputs are never exactly 0.
# 4. **Leaky ReLU** $\max(0.1x, x)$, the slides' version (`LEAKY_SLOPE = 0.1`).
# 5. **ELU**: $x$ for $x \ge 0$, $\alpha(e^x - 1)$ otherwise, with $\alpha = 1$ (`ELU_ALPHA`).

# %%
def sigmoid_vjp(x, g):
    raise NotImplementedError  # your code here


def tanh_vjp(x, g):
    raise NotImplementedError  # your code here


def relu_vjp(x, g):
    raise NotImplementedError  # your code here


def leaky_relu_vjp(x, g):
    raise NotImplementedError  # your code here


def elu_vjp(x, g):
    raise NotImplementedError  # your code here


for check, answer in [(ex.check_sigmoid, sigmoid_vjp), (ex.check_tanh, tanh_vjp), (ex.check_relu, relu_vjp),
                      (ex.check_leaky_relu, leaky_relu_vjp), (ex.check_elu, elu_vjp)]:
    print(attempt(check, answer))

# %% [markdown]
# ## Part B: soft-max and cross-entropy
#
# 6. **soft-max** along the last axis of `z` (shape (2, 5): two independent rows). The Jacobian of
#    each row is $\operatorname{diag}(\mathbf{y}) - \mathbf{y}\mathbf{y}^\top$ (lesson 5); compute
#    $\mathbf{g} J$ without building it. `softmax` from the exercises module is imported above.
# 7. **soft-max + cross-entropy**, the mean over a batch:
#    $L = -\frac{1}{N}\sum_n \sum_c t_{nc} \log \mathrm{softmax}(\mathbf{z}_n)_c$. Here $L$ is a
#    scalar, so `g` is a scalar too: return `g * dL/dz`. Watch the $1/N$.

# %%
def softmax_vjp(z, g):
    raise NotImplementedError  # your code here


def softmax_cross_entropy_vjp(z, t, g):
    raise NotImplementedError  # your code here


print(attempt(ex.check_softmax, softmax_vjp))
print(attempt(ex.check_softmax_cross_entropy, softmax_cross_entropy_vjp))

# %% [markdown]
# ## Part C: layers
#
# 8. **dense**: $\mathbf{y} = \mathbf{x} W + \mathbf{b}$ for a batch `x` of shape (N, D_in),
#    `W` (D_in, D_out), `b` (D_out,). Return `(dx, dW, db)`. Hint: each gradient has the shape of its
#    input; let the shapes tell you where the transposes go, and remember that `b` was broadcast
#    over the batch.
# 9. **2x2 max-pooling**, stride 2, on `x` of shape (N, C, H, W). Tomasi's appendix: each output's
#    gradient goes to the element that won its window. (There are no ties in the checker's inputs.)
# 10. **batch normalisation**, training mode (the book's eqs. 5.8-5.11) on `x` of shape (m, n):
#     $\hat{x} = (x - \mu)/\sqrt{\sigma^2 + \epsilon}$, $y = \gamma\hat{x} + \beta$, with $\mu$ and
#     $\sigma^2$ the batch mean and (biased) variance over axis 0 and $\epsilon$ = `BN_EPS`. Return
#     `(dx, dgamma, dbeta)`. The trap: $\mu$ and $\sigma^2$ depend on every $x$ of the batch.
# 11. **conv2d** (cross-correlation, stride 1, no padding):
#     $y_{n,o,i,j} = \sum_{c,p,q} w_{o,c,p,q}\, x_{n,c,i+p,j+q}$ with `x` (N, C, H, W) and `w`
#     (O, C, kh, kw). Return `(dx, dw)`. Read `ex.conv2d`: the forward is a loop over the kernel
#     offsets `(p, q)`, and the backward can be the same loop.

# %%
def dense_vjp(x, W, b, g):
    raise NotImplementedError  # your code here


def maxpool2x2_vjp(x, g):
    raise NotImplementedError  # your code here


def batchnorm_vjp(x, gamma, beta, g):
    raise NotImplementedError  # your code here


def conv2d_vjp(x, w, g):
    raise NotImplementedError  # your code here


for check, answer in [(ex.check_dense, dense_vjp), (ex.check_maxpool2x2, maxpool2x2_vjp),
                      (ex.check_batchnorm, batchnorm_vjp), (ex.check_conv2d, conv2d_vjp)]:
    print(attempt(check, answer))

# %% [markdown]
# ## Your scorecard
#
# Re-run this cell after each answer.

# %%
yours = {name: globals()[f"{name}_vjp"] for name in ex.EXERCISES}
scorecard = {name: attempt(ex.CHECKS[name], fn).status for name, fn in yours.items()}
print(f"{'exercise':24s} status")
for name, status in scorecard.items():
    print(f"{name:24s} {status}")
assert len(scorecard) == 11 and set(scorecard.values()) <= {"passed", "not attempted", "FAILED"}

# %% [markdown]
# ## What the checker does with a right answer...
#
# The solutions, imported from `chainrule/exercises/solutions/diff.py`, pass every check. (Skip this cell
# if you have not finished: it does not show the code, but the next one does.)

# %%
from chainrule.exercises.solutions.diff import SOLUTIONS

for name, solution in SOLUTIONS.items():
    report = ex.CHECKS[name](solution)
    assert report.passed
    print(report)

# %% [markdown]
# ## ... and with wrong ones
#
# Three planted mistakes, each a classic.
#
# **A forgotten path.** The batch-norm backward below treats $\mu$ and $\sigma^2$ as constants:
# it differentiates only $y = \gamma (x - \mu)/\sigma + \beta$ with respect to the explicit $x$. Its
# `dgamma` and `dbeta` are right, its `dx` is not, and the table says exactly which entries are off.

# %%
def batchnorm_vjp_without_statistics(x, gamma, beta, g):
    mu = x.mean(axis=0)
    inv_std = 1 / np.sqrt(((x - mu) ** 2).mean(axis=0) + BN_EPS)
    return g * gamma * inv_std, (g * (x - mu) * inv_std).sum(axis=0), g.sum(axis=0)


outcome = attempt(ex.check_batchnorm, batchnorm_vjp_without_statistics)
print(outcome)
assert outcome.status == "FAILED"
assert "dgamma" not in outcome.message and "dbeta" not in outcome.message   # those two are right

# %% [markdown]
# **The wrong element of the window.** This max-pooling backward sends each window's gradient to
# its top-left element instead of its maximum. We recompute independently which element is the
# worst and check that the table's first row names it. The picture shows the error over one
# channel: it lives exactly on the windows whose maximum was not in the top-left corner.

# %%
def maxpool2x2_vjp_top_left(x, g):
    dx = np.zeros_like(x)
    dx[:, :, ::2, ::2] = g
    return dx


exercise = ex.EXERCISES["maxpool2x2"]
inputs = exercise.inputs()            # the checker's own inputs and cotangent
g = exercise.cotangent(inputs)
difference = maxpool2x2_vjp_top_left(inputs["x"], g) - SOLUTIONS["maxpool2x2"](inputs["x"], g)
# Each mistake comes as a pair of equal size: g missing at the maximum, g added at the top-left, where
# 0 was expected. The checker ranks the top-left one first (no relative tolerance on 0); so does argmax,
# which returns the first of equal values, and the top-left comes first in its window.
worst = index_text(difference.shape, int(np.abs(difference).argmax()))

try:
    ex.check_maxpool2x2(maxpool2x2_vjp_top_left)
    raise RuntimeError("the planted mistake was not caught")
except ex.ExerciseError as err:
    print(err)
    assert err.report.rows[0]["index"] == worst and worst in str(err)
    assert err.report.wrong == np.count_nonzero(difference)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
n, c = 0, 0                                    # the first image's first channel
assert difference[n, c].any()
for ax, (image, title) in zip(axes, [(inputs["x"][n, c], f"input x[{n}, {c}] (2x2 windows)"),
                                     (np.abs(difference[n, c]), "|got - expected| of dL/dx")]):
    shown = ax.imshow(image, cmap="viridis")
    for k in range(1, image.shape[0] // 2):
        ax.axhline(2 * k - 0.5, color="w", lw=2)
    for k in range(1, image.shape[1] // 2):
        ax.axvline(2 * k - 0.5, color="w", lw=2)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(shown, ax=ax, shrink=0.8)
fig.suptitle("A planted max-pooling mistake: gradient sent to the top-left of each window")
fig.tight_layout()
show_figure(fig, OUT / "planted_maxpool_error.svg")

# %% [markdown]
# **A typo in one element.** The smallest possible mistake: the conv2d answer is right except for one
# entry of `dw`. The checker finds it among 252 numbers.

# %%
def conv2d_vjp_one_typo(x, w, g):
    dx, dw = SOLUTIONS["conv2d"](x, w, g)
    dw[2, 1, 0, 1] += 0.5
    return dx, dw


try:
    ex.check_conv2d(conv2d_vjp_one_typo)
    raise RuntimeError("the planted mistake was not caught")
except ex.ExerciseError as err:
    print(err)
    assert err.report.wrong == 1 and err.report.compared == 252
    assert (err.report.rows[0]["gradient"], err.report.rows[0]["index"]) == ("dw", "[2, 1, 0, 1]")

# %% [markdown]
# ## Your vjp as a primitive of the engine
#
# A vjp that passes can become part of the engine. `ad.primitive` declares an operation from its
# NumPy value and its rules; the engine then uses your rule in every reverse sweep. It also needs a
# forward rule (the jvp, $J\mathbf{u}$). For an elementwise function $J$ is diagonal, hence
# symmetric, so $J\mathbf{u} = \mathbf{u}J$ and the same function serves for both (the engine's
# own soft-max does the same: its Jacobian is symmetric too). `ad.check_primitive` then holds both
# rules to central differences, and `ad.gradcheck` checks any function built with it, naming the
# primitive at fault when one is wrong.

# %%
sigmoid_answer = SOLUTIONS["sigmoid"]   # yours, once it passes: sigmoid_answer = sigmoid_vjp


@ad.primitive(vjp=[lambda g, out, x: sigmoid_answer(x, g)], jvp=[lambda t, out, x: sigmoid_answer(x, t)])
def student_sigmoid(x):
    return ex.sigmoid(x)


x = np.random.default_rng(1).normal(size=(2, 3))
print(ad.check_primitive(student_sigmoid, samples=[((x,), {})])[0])
print(ad.gradcheck(lambda v: ad.sum(student_sigmoid(v) * ad.sin(v)), x))

# %% [markdown]
# And a wrong rule: a tanh whose backward forgot to square. `gradcheck` fails, shows the worst
# entries of the Jacobian, and names the first primitive whose own rule disagrees with the
# differences: ours, node #1.

# %%
def tanh_vjp_not_squared(x, g):
    return g * (1 - np.tanh(x))


@ad.primitive(vjp=[lambda g, out, x: tanh_vjp_not_squared(x, g)], jvp=[lambda t, out, x: tanh_vjp_not_squared(x, t)])
def planted_tanh(x):
    return np.tanh(x)


try:
    ad.gradcheck(lambda v: ad.sum(planted_tanh(v) ** 2), x)
    raise RuntimeError("the planted rule was not caught")
except ad.GradcheckError as err:
    print(err)
    assert "First wrong rule: node #1 = planted_tanh((2, 3))" in str(err)

# %% [markdown]
# ## A NaN where every rule is right: `where(v > 0, sqrt(v), 0)`
#
# Guarding a function that is not differentiable everywhere with `where` looks safe:
# $f(v) = \sqrt{v}$ for $v > 0$, else $0$. Its value is right at $v = 0$, but its gradient there is
# NaN, in this engine as in PyTorch and JAX. The reverse sweep runs *both* branches: `where` sends
# the cotangent $g$ to the branch it selected and $0$ to the other, and the unselected `sqrt` turns
# that $0$ into $0 \cdot \tfrac{1}{2\sqrt{0}} = 0 \cdot \infty = $ NaN, which the sum of eq. 5.39
# then carries into $v$. No rule is wrong, so `gradcheck` names no culprit; it points at the
# `where` instead. The safe pattern is a **second `where`**, inside, that keeps `sqrt` away from
# the bad point: `where(v > 0, sqrt(where(v > 0, v, 1.0)), 0)`. Where $v \le 0$ the inner branch
# now sees $1$, whose derivative is finite, and the outer `where` still discards it.

# %%
v = np.array([0.0, 1.0, 4.0])


def guarded(v):
    return ad.where(v > 0, ad.sqrt(v), 0.0)


def safe(v):
    return ad.where(v > 0, ad.sqrt(ad.where(v > 0, v, 1.0)), 0.0)


with np.errstate(divide="ignore", invalid="ignore"):
    nan_gradient = ad.grad(lambda v: ad.sum(guarded(v)))(v)
    report = ad.gradcheck(guarded, v, raise_exception=False)
print("where(v > 0, sqrt(v), 0):                   gradient", nan_gradient)
print(report.notes[-1])
assert np.isnan(nan_gradient[0]) and np.allclose(nan_gradient[1:], [0.5, 0.25])
assert not report.passed and "where(c, f(where(c, x, 1.0)), y)" in report.notes[-1]

safe_gradient = ad.grad(lambda v: ad.sum(safe(v)))(v)
print("where(v > 0, sqrt(where(v > 0, v, 1)), 0): gradient", safe_gradient)
np.testing.assert_array_equal(safe_gradient, [0.0, 0.5, 0.25])
assert ad.gradcheck(safe, np.array([-1.0, 0.5, 4.0])).passed   # away from 0, where differences straddle the switch

# %% [markdown]
# ## More exercises
#
# No checkers for these: build your own with `ex.Exercise(name, args, wrt, forward, ad_forward,
# sample)` (see `chainrule/exercises/checking.py`), or declare a primitive and use `ad.check_primitive`.
#
# 1. **PReLU**: $\max(\alpha x, x)$ with a learnable $\alpha$ shared by all elements. Return `(dx, dalpha)`.
# 2. **Swish**: $x\,\sigma(x)$.
# 3. **Maxout** over pairs: $\max(\mathbf{w}_1^\top\mathbf{x} + b_1, \mathbf{w}_2^\top\mathbf{x} + b_2)$.
# 4. **Average pooling** 2x2: where does each output's gradient go now?
# 5. **Strided convolution**: conv2d with stride 2. Which elements of `x` receive no gradient?
# 6. **Batch norm at test time**: $\mu$ and $\sigma^2$ are running averages, constants. Which of the
#    planted mistakes above is then no longer a mistake?
