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
# # Lesson 1: activation functions
#
# *Follows the slides "CNN Training 1", part "Activation Functions": sigmoid, tanh, ReLU, Leaky
# ReLU, PReLU, Maxout, ELU and Swish, "What happens when x = -10? x = 0? x = 10?", tanh as a
# scaled sigmoid, the dying-ReLU problem, and the advice "Use ReLU. Be careful with your learning
# rates".*
#
# The non-linearity is what makes a network more than one big matrix. Training moves the weights
# along the gradient, and every gradient that reaches a weight has passed through the derivative
# of every activation on its way back from the loss (lesson 4 of the differentiation track:
# back-propagation multiplies local Jacobians, and an activation's Jacobian is the diagonal of
# its derivatives). So what matters about an activation for training is mostly its **derivative**:
# where it is close to 0, learning stops. We will
#
# 1. draw the eight functions of the slides with their derivatives, computed by the engine;
# 2. answer the slides' question about $x = -10, 0, 10$ with a table of derivatives: **saturation**;
# 3. check that tanh is a scaled sigmoid, $\tanh(x) = 2\sigma(2x) - 1$, and why being zero-centred helps;
# 4. see the ReLU family (Leaky ReLU, PReLU, Maxout, ELU, Swish) as repairs of ReLU's flat half;
# 5. kill ReLU units with one large gradient step on the 8x8 digits and watch them stay dead.
#
# Pictures go to `tutorials/_output/cnn_01_activations/` (or `$TUTORIAL_OUTPUT`).

# %%
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ROOT = HERE.parent if HERE.name == "tutorials" else HERE
sys.path.insert(0, str(ROOT))  # the repository: `autodiff`, `nn` and `chainrule` import without installing

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files, never open a window
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import autodiff as ad
import nn
from nn import functional as F

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "cnn_01_activations"
OUT.mkdir(parents=True, exist_ok=True)


# %% [markdown]
# ## 1. Eight activations and their derivatives
#
# The slides' list, written with `nn.functional` (the functions the layers use). Leaky ReLU's slope
# is the slides' $\alpha = 0.01$ (their overview slide writes $\max(0.1x, x)$: the same idea with a
# steeper slope). PReLU is Leaky ReLU with a *learned* slope, here at PyTorch's initial value 0.25.
# Maxout takes the larger of two affine functions of its input; we pick two pieces,
# $\max(-0.3x, x + 0.5)$. ELU has $\alpha = 1$ and Swish $\beta = 1$.
#
# Each is an elementwise function, so its derivative at every point of a grid is one gradient:
# the gradient of $\sum_i f(x_i)$ with respect to $\mathbf{x}$ is $f'(x_i)$ at position $i$. The
# engine gives it by a reverse sweep (`ad.grad`), and also by a forward sweep with the tangent
# $\mathbf{1}$ (`ad.jvp`): for a diagonal Jacobian, $J\mathbf{1}$ is the diagonal too.

# %%
PRELU_ALPHA = 0.25
MAXOUT_PIECES = ((-0.3, 0.0), (1.0, 0.5))          # (w, b) of max(w1 x + b1, w2 x + b2)


def prelu(x, alpha=PRELU_ALPHA):
    """PReLU on a vector: nn.functional.prelu wants a channel axis, so x becomes one column."""
    return ad.reshape(F.prelu(ad.reshape(x, (-1, 1)), np.array([alpha])), (-1,))


def maxout(x, pieces=MAXOUT_PIECES):
    """max over the pieces w x + b: the pieces stacked as channels, then nn.functional.maxout."""
    stacked = ad.stack([w * x + b for w, b in pieces], axis=1)          # (N, pieces)
    return ad.reshape(F.maxout(stacked, pieces=len(pieces)), (-1,))


ACTIVATIONS = {
    "sigmoid": F.sigmoid, "tanh": F.tanh, "ReLU": F.relu, "Leaky ReLU": F.leaky_relu,
    "PReLU": prelu, "Maxout": maxout, "ELU": F.elu, "Swish": F.swish,
}


def derivative(f, x):
    """f'(x), elementwise, by reverse mode: the gradient of sum(f(x))."""
    return ad.grad(lambda v: ad.sum(f(v)))(x)


def derivative_forward(f, x):
    """f'(x), elementwise, by forward mode: the Jacobian-vector product with the tangent 1."""
    return ad.jvp(f, (x,), (np.ones_like(x),))[1]


xs = np.linspace(-5, 5, 1001)
xs = xs[np.abs(xs) > 1e-9]                  # leave out x = 0 exactly: the kinks are section 2's business
values = {name: np.asarray(f(ad.Tensor(xs)).value) for name, f in ACTIVATIONS.items()}
slopes = {name: derivative(f, xs) for name, f in ACTIVATIONS.items()}
for name, f in ACTIVATIONS.items():
    np.testing.assert_allclose(derivative_forward(f, xs), slopes[name], rtol=1e-12, atol=1e-15)

# The engine agrees with the textbook formulas.
s = 1 / (1 + np.exp(-xs))
np.testing.assert_allclose(slopes["sigmoid"], s * (1 - s), rtol=1e-12)
np.testing.assert_allclose(slopes["tanh"], 1 - np.tanh(xs) ** 2, rtol=1e-12, atol=1e-15)
np.testing.assert_array_equal(slopes["ReLU"], (xs > 0).astype(float))
np.testing.assert_allclose(slopes["ELU"], np.where(xs > 0, 1, np.exp(xs)), rtol=1e-12)
np.testing.assert_allclose(slopes["Swish"], s + xs * s * (1 - s), rtol=1e-12, atol=1e-15)
print("reverse and forward mode agree for all eight; five checked against their formulas")

fig, axes = plt.subplots(2, 4, figsize=(13, 6), sharex=True)
for ax, name in zip(axes.ravel(), ACTIVATIONS):
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.plot(xs, values[name], lw=2, label="f(x)")
    ax.plot(xs, slopes[name], "--", lw=1.5, label="f'(x)")
    ax.set_title(name)
    ax.set_ylim(-1.6, 3)
axes[0, 0].legend(loc="upper left")
fig.suptitle("The slides' activation functions (solid) and their derivatives by the engine (dashed)")
fig.tight_layout()
show_figure(fig, OUT / "activations.svg")

# %% [markdown]
# ## 2. Saturation: what happens at x = -10, 0 and 10?
#
# The slides ask it of the sigmoid and of ReLU; here is the answer for all eight. A derivative near
# 0 means that whatever gradient arrives from above is multiplied by nearly 0 on its way down:
# "sigmoids saturate and kill gradients".

# %%
POINTS = np.array([-10.0, 0.0, 10.0])
table = {name: derivative(f, POINTS) for name, f in ACTIVATIONS.items()}
print(f"{'':12s}" + "".join(f"{head:>11s}" for head in ("f(-10)", "f(0)", "f(10)", "f'(-10)", "f'(0)", "f'(10)")))
for name, f in ACTIVATIONS.items():
    value = np.asarray(f(ad.Tensor(POINTS)).value)
    print(f"{name:12s}" + "".join(f"{v:11.4g}" for v in value) + "".join(f"{d:11.4g}" for d in table[name]))


def sig(v):
    return 1 / (1 + np.exp(-v))


np.testing.assert_allclose(table["sigmoid"], sig(POINTS) * (1 - sig(POINTS)), rtol=1e-12)
assert table["sigmoid"][1] == 0.25 and max(table["sigmoid"][[0, 2]]) < 5e-5      # saturated on both sides
assert table["tanh"][1] == 1.0 and max(table["tanh"][[0, 2]]) < 1e-8             # 4 e^-20 = 8.2e-9
assert list(table["ReLU"]) == [0.0, 0.0, 1.0]          # flat on the left; at 0 the engine takes 0 (a subgradient)
assert list(table["Leaky ReLU"]) == [0.01, 0.01, 1.0] and list(table["PReLU"]) == [PRELU_ALPHA, PRELU_ALPHA, 1.0]
np.testing.assert_allclose(table["ELU"][[0, 2]], [np.exp(-10.0), 1.0], rtol=1e-12)  # e^-10 = 4.5e-5: saturates
np.testing.assert_allclose(table["Swish"], sig(POINTS) + POINTS * sig(POINTS) * (1 - sig(POINTS)), rtol=1e-12)
assert table["Swish"][0] < 0                            # Swish < 0 for x < 0, its minimum -0.28 at x = -1.28
elu_sides = derivative(F.elu, np.array([-1e-9, 1e-9]))
np.testing.assert_allclose(elu_sides, [1.0, 1.0], rtol=1e-8)   # ELU (alpha = 1) has no kink at 0

# %% [markdown]
# The $f'(0)$ column is where the functions with a kink show a *convention*: ReLU's derivative at
# 0 is taken as 0 and Leaky ReLU's as $\alpha$, both valid subgradients (PyTorch and JAX choose
# the same). ELU with $\alpha = 1$ has no kink at all: both one-sided derivatives are 1, as the
# last check shows. The 0.5 the engine reports at exactly 0 comes from how `nn.functional.elu` is
# written, with `minimum(x, 0)` inside the exponential (so that large $x$ never overflows): at the
# tie $x = 0$ the engine splits the gradient of `minimum` evenly between its two arguments.
#
# Sigmoid and tanh saturate on **both** sides: at $|x| = 10$ their derivatives are $4.5 \cdot 10^{-5}$
# and $8 \cdot 10^{-9}$. ReLU does not saturate for $x > 0$, which is why it trains faster
# (Krizhevsky et al.'s "6 times faster" on the slides), but it is exactly flat for $x < 0$; its
# relatives keep some slope there (Leaky ReLU, PReLU, Maxout) or saturate gently (ELU, Swish,
# whose small negative region "adds some robustness to noise").
#
# Even unsaturated, the sigmoid's derivative is at most $1/4$ (at 0). A gradient that crosses ten
# sigmoid layers is multiplied by at most $(1/4)^{10} \approx 10^{-6}$: lesson 7 measures this
# vanishing gradient in a deep network. On a log scale the saturation is plain to see: the
# derivatives of sigmoid, tanh and ELU fall off exponentially.

# %%
wide = np.linspace(-12, 12, 961)
fig, ax = plt.subplots(figsize=(7.5, 4))
for name in ("sigmoid", "tanh", "ELU", "Swish", "Leaky ReLU"):
    ax.semilogy(wide, np.abs(derivative(ACTIVATIONS[name], wide)) + 1e-20, label=name)
ax.axhline(0.25 ** 10, color="0.5", ls=":", lw=1)
ax.text(-11.5, 0.25 ** 10 * 1.8, "(1/4)^10", color="0.4")
ax.set_ylim(1e-11, 3)
ax.set_xlabel("x")
ax.set_ylabel("|f'(x)|")
ax.set_title("Saturation: the derivative far from 0 (log scale)")
ax.legend(fontsize=9)
fig.tight_layout()
show_figure(fig, OUT / "saturation.svg")
assert 0.25 ** 10 < 1e-6 and np.max(derivative(F.sigmoid, wide)) == 0.25

# %% [markdown]
# ## 3. tanh is a scaled sigmoid, and it is zero-centred
#
# The slides: "tanh neuron is simply a scaled sigmoid neuron", $\tanh(x) = 2\sigma(2x) - 1$.
# Multiply numerator and denominator of $\sigma(2x) = 1/(1 + e^{-2x})$ by $e^{x}$:
# $2\sigma(2x) - 1 = (2e^{x} - e^{x} - e^{-x})/(e^{x} + e^{-x}) = \tanh(x)$. Numerically the two
# sides agree to the last bits of a float64, and so do their derivatives,
# $\tanh'(x) = 4\sigma'(2x)$: the chain rule, done by the engine on both sides.

# %%
grid = np.linspace(-8, 8, 2001)
scaled_sigmoid = lambda v: 2 * F.sigmoid(2 * v) - 1          # noqa: E731
gap = np.max(np.abs(np.tanh(grid) - np.asarray(scaled_sigmoid(ad.Tensor(grid)).value)))
slope_gap = np.max(np.abs(derivative(F.tanh, grid) - derivative(scaled_sigmoid, grid)))
print(f"max |tanh(x) - (2 sigma(2x) - 1)| on [-8, 8] = {gap:.1e}; of the derivatives: {slope_gap:.1e}")
assert gap < 1e-15 and slope_gap < 1e-14

# %% [markdown]
# So why does it matter? "Sigmoid outputs are not zero-centered": fed unit-Gaussian inputs, a
# sigmoid layer outputs numbers around 0.5, all positive, and the *next* layer then sees only
# positive inputs. For a neuron $f(\sum_i w_i x_i + b)$ with all $x_i > 0$, every
# $\partial L/\partial w_i = \partial L/\partial z \cdot x_i$ has the sign of $\partial L/\partial z$:
# the gradients on $\mathbf{w}$ are "always all positive or all negative" (lesson 4 shows the
# zig-zag this causes, and why the same argument asks for zero-mean *data*). tanh's outputs are
# centred on 0: "in practice the tanh non-linearity is always preferred to the sigmoid".

# %%
z = np.random.default_rng(0).standard_normal(100_000)
mean_sigmoid, mean_tanh = float(np.mean(F.sigmoid(z))), float(np.mean(F.tanh(z)))
print(f"mean output on N(0, 1) inputs: sigmoid {mean_sigmoid:.4f}, tanh {mean_tanh:+.4f}")
assert abs(mean_sigmoid - 0.5) < 0.01 and abs(mean_tanh) < 0.01 and np.all(F.sigmoid(z) > 0)

# %% [markdown]
# ## 4. Repairs of ReLU's flat half
#
# **PReLU** learns the slope $\alpha$ of the negative part, "as a parameter of each neuron": the
# engine differentiates with respect to $\alpha$ as easily as with respect to $x$, and
# $\partial f/\partial\alpha = x$ where $x < 0$, 0 elsewhere.
#
# **Maxout** "generalizes the ReLU and its leaky version": with pieces $(w_1, b_1) = (0, 0)$ and
# $(w_2, b_2) = (1, 0)$ it *is* ReLU, with $(\alpha, 0)$ and $(1, 0)$ it is Leaky ReLU; the price is
# two sets of weights per unit ("it doubles the number of parameters"), as `nn.Maxout` after a
# Dense layer of twice the width shows.
#
# **Swish** $x\,\sigma(\beta x)$: "ReLU is special case of Swish", in the limit $\beta \to \infty$;
# the largest gap, $\max_x |x|\sigma(-\beta|x|)$, is about $0.28/\beta$.

# %%
alpha_grad = ad.grad(lambda a: ad.sum(F.prelu(ad.reshape(ad.Tensor(xs), (-1, 1)), a)))(np.array([PRELU_ALPHA]))
assert alpha_grad[0] == np.sum(np.minimum(xs, 0))                 # sum over the grid of x where x < 0
print(f"PReLU: d sum(f) / d alpha = {alpha_grad[0]:.2f} = sum of the negative x's")

relu_as_maxout = np.asarray(maxout(ad.Tensor(xs), pieces=((0.0, 0.0), (1.0, 0.0))).value)
leaky_as_maxout = np.asarray(maxout(ad.Tensor(xs), pieces=((0.01, 0.0), (1.0, 0.0))).value)
np.testing.assert_array_equal(relu_as_maxout, F.relu(xs))
np.testing.assert_allclose(leaky_as_maxout, F.leaky_relu(xs), rtol=1e-15)

dense_relu = nn.Sequential([nn.Input((64,)), nn.Dense(100, activation="relu")])
dense_maxout = nn.Sequential([nn.Input((64,)), nn.Dense(200), nn.Maxout(pieces=2)])
print(f"100 ReLU units on 64 inputs: {dense_relu.count_params():,} parameters; "
      f"100 maxout units: {dense_maxout.count_params():,}")
assert dense_maxout.layers[-1].output_shape == (100,)
assert dense_maxout.count_params() == 2 * dense_relu.count_params()

for beta in (1.0, 10.0, 50.0):
    gap = np.max(np.abs(F.swish(grid, beta) - F.relu(grid)))
    print(f"Swish with beta = {beta:4g}: max |swish - relu| = {gap:.4f}  (0.28 / beta = {0.28 / beta:.4f})")
    assert gap < 0.28 / beta

# %% [markdown]
# ## 5. The dying ReLU
#
# The slides: "a large gradient flowing through a ReLU neuron could cause the weights to update in
# such a way that the neuron will never activate on any datapoint again". Such a unit's
# pre-activation $z = \mathbf{w}^\top\mathbf{x} + b$ is negative for *every* input, so its output
# and its derivative are 0 everywhere, so no gradient ever reaches $\mathbf{w}$ and $b$ again: the
# unit is dead for good.
#
# The experiment: a network with one hidden layer of 100 ReLU units (He initialisation, eq. 5.2)
# on the 1,797 digits of 8x8 pixels (flattened to 64 inputs), trained for two epochs of SGD; then
# **one** step with a learning rate of 50 on one mini-batch (a large gradient), then ten more
# epochs of ordinary training. We count the units whose pre-activation is $\le 0$ on all 1,797
# images. The same with Leaky ReLU: its units keep the slope 0.01, so none can be left with a
# gradient of exactly 0.

# %%
x_digits, y_digits = nn.load_digits()
x_flat = x_digits.reshape(len(x_digits), -1)              # (1797, 64), pixels in [0, 1]


def hidden_mlp(activation):
    return nn.Sequential([nn.Input((64,)), nn.Dense(100, activation=activation, kernel_initializer="he_normal"),
                          nn.Dense(10)])


def negative_everywhere(model):
    """Which hidden units have pre-activation <= 0 on every image (ReLU: the dead ones)."""
    with ad.no_grad():
        z = model.layers[1].forward(x_flat, pre_activation=True).value
    return (z <= 0).all(axis=0)


def zero_gradient(model):
    """Which hidden units get a gradient of exactly 0 for their weights from the whole data set."""
    objective = nn.training.loss_function(model, "softmax_cross_entropy")
    model.zero_grad()
    loss, _ = objective(x_flat, y_digits)
    loss.backward()
    gradient = model.layers[1].weight.grad
    model.zero_grad()
    return ~gradient.any(axis=0)


def sgd_epochs(model, lr, epochs, seed):
    return nn.fit(model, (x_flat, y_digits), optimizer=nn.optim.SGD(model.parameters(), lr=lr), epochs=epochs,
                  batch_size=32, seed=seed, verbose=0)


BIG_LR = 50.0
dying = {}
for activation in ("relu", "leaky_relu"):
    nn.set_seed(0)
    model = hidden_mlp(activation)
    sgd_epochs(model, lr=0.1, epochs=2, seed=0)
    before = negative_everywhere(model)
    big_step = nn.optim.SGD(model.parameters(), lr=BIG_LR)    # one large gradient step
    objective = nn.training.loss_function(model, "softmax_cross_entropy")
    big_step.zero_grad()
    objective(x_flat[:32], y_digits[:32])[0].backward()
    big_step.step()
    after = negative_everywhere(model)
    frozen = model.layers[1].weight.value[:, after].copy()
    no_gradient = zero_gradient(model)
    history = sgd_epochs(model, lr=0.1, epochs=10, seed=1)
    dying[activation] = dict(before=before.mean(), after=after.mean(), later=negative_everywhere(model).mean(),
                             no_gradient=no_gradient.mean(), accuracy=history["accuracy"][-1],
                             unchanged=np.array_equal(frozen, model.layers[1].weight.value[:, after]))

print("fraction of the 100 hidden units that are negative on every image, and that get no gradient:")
print(f"{'':11s}{'before':>8s}{'after the big step':>20s}{'10 epochs later':>17s}{'no gradient':>13s}"
      f"{'train acc':>11s}")
for activation, r in dying.items():
    print(f"{activation:11s}{r['before']:8.0%}{r['after']:20.0%}{r['later']:17.0%}{r['no_gradient']:13.0%}"
          f"{r['accuracy']:11.3f}")

relu, leaky = dying["relu"], dying["leaky_relu"]
assert relu["after"] > 0.15 and relu["after"] > 2 * relu["before"]     # one step killed many units ...
assert relu["no_gradient"] == relu["after"]           # ... which get no gradient at all ...
assert relu["unchanged"] and relu["later"] >= relu["after"]             # ... so they never move again
assert leaky["no_gradient"] == 0 and not leaky["unchanged"]             # every leaky unit still learns ...
assert leaky["later"] > 0.5 * leaky["after"]                           # ... slowly: most are still negative
assert relu["before"] > 0                                              # a few ReLU units were dead already

# %% [markdown]
# One step was enough to put a large fraction of the ReLU units below zero on every image; ten
# epochs later their weights are *bitwise* the ones the big step left, because their gradient is
# exactly 0. Leaky ReLU units pushed just as far are not dead: their gradient is small (the slope
# 0.01) but not zero, so their weights keep moving, and given time and a reason they can come back.
# (In ten epochs most did not: a small slope is a slow road back.) Note the few units dead before
# the big step: some units of a ReLU layer start dead or die early, which the slides' advice "be
# careful with your learning rates" is about.
#
# How the learning rate decides it, training from scratch for three epochs with plain SGD:

# %%
print(f"{'lr':>5s}{'dead ReLU units':>17s}{'ReLU acc':>10s}{'leaky units < 0 everywhere':>28s}{'leaky acc':>11s}")
sweep = {}
for lr in (0.1, 0.5, 1.0, 2.0):
    row = []
    for activation in ("relu", "leaky_relu"):
        nn.set_seed(0)
        model = hidden_mlp(activation)
        history = sgd_epochs(model, lr=lr, epochs=3, seed=0)
        row += [negative_everywhere(model).mean(), history["accuracy"][-1]]
    sweep[lr] = row
    print(f"{lr:5g}{row[0]:17.0%}{row[1]:10.3f}{row[2]:28.0%}{row[3]:11.3f}")
assert sweep[2.0][0] > 0.5 > sweep[0.1][0]           # too large a learning rate kills most ReLU units
assert sweep[2.0][1] < 0.5 < sweep[0.5][1]           # and with them the network
assert sweep[2.0][2] > 0.5 and sweep[2.0][3] > sweep[2.0][1]   # leaky units suffer too, but the network learns more

fig, ax = plt.subplots(figsize=(6.5, 3.6))
lrs = list(sweep)
ax.bar(np.arange(len(lrs)) - 0.2, [sweep[lr][0] for lr in lrs], width=0.4, label="ReLU: dead units")
ax.bar(np.arange(len(lrs)) + 0.2, [sweep[lr][2] for lr in lrs], width=0.4,
       label="Leaky ReLU: units < 0 on every image")
ax.set_xticks(np.arange(len(lrs)), [f"lr = {lr:g}" for lr in lrs])
ax.set_ylabel("fraction of the 100 hidden units")
ax.set_title("Dying ReLU: three epochs of SGD on the digits")
ax.legend(fontsize=9)
fig.tight_layout()
show_figure(fig, OUT / "dying_relu.svg")

# %% [markdown]
# With a learning rate of 2 most ReLU units die within three epochs and the network is left
# guessing; Leaky ReLU units suffer too (most end up negative everywhere) but still carry a
# gradient and the network still learns something. The slides' summary: "Use ReLU. Be careful with
# your learning rates. Try out Swish / Leaky ReLU / Maxout / ELU. Try out tanh but don't expect
# much. Don't use sigmoid."

# %% [markdown]
# ## Exercises
#
# Checked exercises (`chainrule/exercises/cnn.py`; answers in `chainrule/exercises/solutions/cnn.py`): write
# the function in the cell below, then run it. The checker compares your values with the engine's
# derivative of the toolkit's function at twelve points and names every wrong element.
#
# 1. **ELU's derivative** `elu_derivative(x)` ($\alpha = 1$). Hint: for $x < 0$, write it with
#    $\mathrm{elu}(x)$ itself.
# 2. **Swish's derivative** `swish_derivative(x)` ($\beta = 1$). Hint: $\sigma' = \sigma(1 - \sigma)$.
#
# And without a checker:
#
# 3. Add `"softplus"`, $\log(1 + e^x)$, to the table of section 2 (write it with `ad.log` and
#    `ad.exp`). Whose derivative is it?
# 4. Repeat the dying-ReLU experiment with a bias initialised to 0.1 instead of 0. Do fewer units die?
# 5. Use the slides' Leaky ReLU $\max(0.1x, x)$ (`functools.partial(F.leaky_relu, alpha=0.1)` as the
#    Dense layer's activation) and train for 50 epochs after the big step: do the units come back?

# %%
from chainrule.exercises import attempt
from chainrule.exercises.cnn import check_elu_derivative, check_swish_derivative


def elu_derivative(x):
    raise NotImplementedError  # your code here


def swish_derivative(x):
    raise NotImplementedError  # your code here


for check, answer in [(check_elu_derivative, elu_derivative), (check_swish_derivative, swish_derivative)]:
    print(attempt(check, answer))

# %% The answers pass the same checks (chainrule/exercises/solutions/cnn.py: read it after trying).
from chainrule.exercises.solutions.cnn import SOLUTIONS

for name, check in [("elu_derivative", check_elu_derivative), ("swish_derivative", check_swish_derivative)]:
    assert check(SOLUTIONS[name]).passed
