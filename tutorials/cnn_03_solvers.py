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
# # Lesson 3: solvers
#
# *Follows the book's sections 5.3 (batch, stochastic and mini-batch gradient descent, eqs.
# 5.15-5.16) and 5.4 (momentum, Nesterov, AdaGrad, AdaDelta, RMSprop and Adam, eqs. 5.17-5.33, Figs.
# 5.3-5.5), the lecture "Classification and Optimization in CNNs" (full-batch, SGD, mini-batch, the
# learning rate, momentum 0.9 or 0.99, RMSprop, Adam, the saddle-point animation) and Tomasi's
# notes on the learning rate and mini-batches.*
#
# A solver turns gradients into steps. To *see* what each one does we give it a problem with two
# parameters, so that its path can be drawn on the contour lines of the loss: the parameter is an
# `nn.Parameter` of shape (2,), the loss is written with the engine's operations, `loss.backward()`
# puts the gradient in `w.grad`, and an `nn.optim` optimiser takes the step, exactly as in the
# training of a CNN. We will
#
# 1. compare batch, stochastic and mini-batch gradient descent on a linear regression;
# 2. find the learning rate beyond which gradient descent diverges, from the Hessian;
# 3. run all seven solvers down a ravine, each with its best learning rate (Figs. 5.4 and 5.5);
# 4. compare momentum 0.9 and 0.99;
# 5. escape a saddle point (Fig. 5.3);
# 6. race the solvers on a real task, the 8x8 digits, with AMSGrad and AdamW beside Adam;
# 7. decay the learning rate with a schedule (`StepLR`, `ReduceLROnPlateau`), and see where AMSGrad
#    differs from Adam.
#
# Pictures go to `tutorials/_output/cnn_03_solvers/` (or `$TUTORIAL_OUTPUT`).

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

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "cnn_03_solvers"
OUT.mkdir(parents=True, exist_ok=True)


# %% [markdown]
# ## 0. One step, by hand and by the optimiser
#
# Gradient descent, eqs. 5.15-5.16: $\theta_t = \theta_{t-1} - \eta\,\delta_t$ with
# $\delta_t = \nabla_\theta \mathcal{F}$. The optimiser does exactly that with `lr` $= \eta$:

# %%
def run(optimiser, loss, start, steps):
    """The path of ``steps`` optimiser steps on ``loss(w)`` from ``start``: (steps + 1, 2) points."""
    w = nn.Parameter(np.array(start, dtype=np.float32))
    opt = optimiser([w])
    path = [w.value.copy()]
    for _ in range(steps):
        opt.zero_grad()
        loss(w).backward()
        opt.step()
        path.append(w.value.copy())
    return np.array(path)


def bowl(w):
    return w[0] ** 2 + 3 * w[1] ** 2


start = np.array([1.0, 1.0], np.float32)
path = run(lambda ps: nn.optim.SGD(ps, lr=0.1), bowl, start, 1)
by_hand = start - 0.1 * ad.grad(bowl)(start)                 # gradient (2, 6): one step to (0.8, 0.4)
np.testing.assert_allclose(path[1], by_hand, rtol=1e-6)
print(f"one step from {start}: {path[1]} (by hand: {by_hand})")

# %% [markdown]
# ## 1. Batch, stochastic and mini-batch gradient descent
#
# The loss of a training set is a mean over its examples, $L = \frac{1}{n}\sum_i \ell_i$, and so is
# its gradient. **Batch** gradient descent (5.3.1) computes it on all $n$ examples for every step;
# **stochastic** gradient descent (5.3.2) steps after each single example; **mini-batch** gradient
# descent (5.3.3) after each mini-batch of $B$ examples. The lecture: a single example's gradient
# is an unbiased estimate of the full one, $\mathbb{E}[\nabla \ell_i] = \nabla L$, so on average SGD
# takes the same step, but it takes $n$ of them per pass over the data (an *epoch*) instead of one,
# and each is noisy; mini-batches average $B$ estimates: less noise, still many steps.
#
# Our problem: a linear regression $y = \mathbf{x}^\top\mathbf{w} + \text{noise}$ with 256 examples
# of two correlated features, the mean squared error as the loss, and $\mathbf{w}$ to learn.

# %%
rng = np.random.default_rng(0)
N = 256
X = (rng.normal(size=(N, 2)) @ np.array([[1.0, 0.0], [0.8, 0.4]])).astype(np.float32)   # correlated features
y = (X @ np.array([1.5, -1.0]) + 0.3 * rng.normal(size=N)).astype(np.float32)
w_best = np.linalg.lstsq(X.astype(np.float64), y.astype(np.float64), rcond=None)[0]   # the minimum of L


def mse(w, xb, yb):
    residual = xb @ w - yb
    return ad.mean(residual * residual)


# The full gradient is the mean of the 256 single-example gradients (the engine computes both):
w0 = np.array([-1.0, 2.0])
full = ad.grad(lambda w: mse(w, X, y))(w0)
singles = np.array([ad.grad(lambda w: mse(w, X[i:i + 1], y[i:i + 1]))(w0) for i in range(N)])
np.testing.assert_allclose(singles.mean(axis=0), full, rtol=1e-6)

EPOCHS, LR = 5, 0.05
descent = {}
for name, batch_size in (("batch", N), ("mini-batch (32)", 32), ("stochastic (1)", 1)):
    w = nn.Parameter(w0.astype(np.float32))
    opt = nn.optim.SGD([w], lr=LR)
    path, agreement, after_epoch = [w.value.copy()], [], []
    for epoch in range(EPOCHS):
        for index in nn.data.batches(np.arange(N), batch_size=batch_size, seed=epoch):
            true_gradient = ad.grad(lambda v: mse(v, X, y))(w.value.astype(np.float64))
            opt.zero_grad()
            mse(w, X[index], y[index]).backward()
            agreement.append(w.grad @ true_gradient / np.linalg.norm(w.grad) / np.linalg.norm(true_gradient))
            opt.step()
            path.append(w.value.copy())
        after_epoch.append(np.linalg.norm(w.value - w_best))
    descent[name] = dict(path=np.array(path), cosine=np.mean(agreement), distance=after_epoch)

print(f"{'':18s}{'steps/epoch':>12s}{'cos(step, true gradient)':>26s}   distance to the minimum after epoch 1..5")
for name, d in descent.items():
    print(f"{name:18s}{(len(d['path']) - 1) // EPOCHS:12d}{d['cosine']:26.3f}   "
          + " ".join(f"{v:6.3f}" for v in d["distance"]))

batch, mini, single = descent.values()
assert abs(batch["cosine"] - 1) < 1e-6 and single["cosine"] < mini["cosine"] < batch["cosine"]   # noisier
assert single["distance"][0] < mini["distance"][0] < batch["distance"][0]                         # but more steps

# %% [markdown]
# Per epoch all three compute the same 256 single-example gradients, but batch descent turns them
# into one step, mini-batch descent into 8, SGD into 256: after one epoch SGD is the closest to
# the minimum. Its steps, though, point on average only loosely along the true gradient (the mean
# cosine above), so it never settles: it jitters around the minimum ("its convergence behavior is
# usually unstable", 5.3.2) unless the learning rate is lowered. Mini-batches of 32 are the compromise
# "between convergence efficiency and convergence stability" (5.3.3); Tomasi: "values of B around
# a few dozen are common".

# %%
w_grid = np.meshgrid(np.linspace(-1.5, 2.5, 121), np.linspace(-2.2, 2.4, 121))
loss_grid = np.mean((X[:, 0, None, None] * w_grid[0] + X[:, 1, None, None] * w_grid[1] - y[:, None, None]) ** 2,
                    axis=0)
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharex=True, sharey=True)
for ax, (name, d) in zip(axes, descent.items()):
    ax.contour(*w_grid, loss_grid, levels=np.geomspace(loss_grid.min() * 1.05, loss_grid.max(), 14), colors="0.75",
               linewidths=0.8)
    ax.plot(*d["path"].T, ".-", ms=3, lw=0.8)
    ax.plot(*w_best, "k*", ms=10)
    ax.set_title(f"{name}: {len(d['path']) - 1} steps in {EPOCHS} epochs", fontsize=10)
    ax.set_xlabel("$w_1$")
axes[0].set_ylabel("$w_2$")
fig.suptitle("Linear regression, lr = 0.05: the same gradients, grouped into steps three ways")
fig.tight_layout()
show_figure(fig, OUT / "batch_stochastic_minibatch.svg")

# %% [markdown]
# ## 2. The learning rate: too small, too large
#
# The lecture: "it is generally very difficult (or impossible) to get a learning rate that would
# directly take us to the minimum"; Tomasi: "a rate that is too large leads to large steps that
# often overshoot minima, and a rate that is too small leads to very slow progress". For a
# quadratic loss we can say exactly where "too large" starts. Along an eigenvector of the Hessian
# with eigenvalue $\lambda$, a step multiplies the distance to the minimum by $1 - \eta\lambda$; it
# shrinks only if $|1 - \eta\lambda| < 1$, so batch gradient descent converges if and only if
# $\eta < 2/\lambda_{max}$. The engine gives the Hessian of the regression's loss:

# %%
H = ad.hessian(lambda w: mse(w, X.astype(np.float64), y.astype(np.float64)))(w0)
eigenvalues = np.linalg.eigvalsh(H)
np.testing.assert_allclose(H, 2 * X.T.astype(np.float64) @ X / N, rtol=1e-6)     # 2/n X^T X, as it should
limit = 2 / eigenvalues.max()
print(f"Hessian eigenvalues {eigenvalues.round(3)}: batch gradient descent diverges for lr > {limit:.3f}")

rates = {"too small (0.01 / L)": 0.01 / eigenvalues.max(), "1 / L": 1 / eigenvalues.max(),
         "0.95 x 2/L": 0.95 * limit, "1.05 x 2/L": 1.05 * limit}
curves = {}
for name, lr in rates.items():
    path = run(lambda ps, lr=lr: nn.optim.SGD(ps, lr=lr), lambda w: mse(w, X, y), w0, 100)
    curves[name] = np.array([float(np.mean((X @ p - y) ** 2)) for p in path])
    print(f"lr = {lr:.4f} ({name:20s}): loss {curves[name][0]:.3f} -> {curves[name][-1]:.4g} after 100 steps")
floor = float(np.mean((X @ w_best - y) ** 2))
assert curves["1.05 x 2/L"][-1] > 1e3 * curves["1.05 x 2/L"][0]                         # diverges
assert curves["0.95 x 2/L"][-1] < curves["0.95 x 2/L"][0]                                # converges, zig-zagging
assert curves["1 / L"][-1] - floor < 1e-3                                              # at the minimum
assert curves["too small (0.01 / L)"][-1] - floor > 1e3 * (curves["1 / L"][-1] - floor)  # still far from it

fig, ax = plt.subplots(figsize=(7, 4))
for name, curve in curves.items():
    ax.semilogy(np.minimum(curve - floor + 1e-12, 1e6), label=f"lr = {name}")
ax.set_xlabel("step")
ax.set_ylabel("loss - minimum")
ax.set_ylim(1e-6, 1e6)
ax.set_title("Batch gradient descent with four learning rates")
ax.legend(fontsize=9)
fig.tight_layout()
show_figure(fig, OUT / "learning_rates.svg")

# %% [markdown]
# At $0.95 \cdot 2/L$ the steep direction overshoots at every step, landing on the other side a
# little closer; at $1.05 \cdot 2/L$ a little farther, and after 100 steps the loss has exploded.
# And the *slow* direction limits the speed: with $\eta < 2/\lambda_{max}$ it shrinks by at best
# $1 - 2\lambda_{min}/\lambda_{max}$ per step. The ratio $\lambda_{max}/\lambda_{min}$ (the
# condition number) is what makes a loss a ravine.
#
# ## 3. Down a ravine: the seven solvers
#
# The ravine $\mathcal{F}(w_1, w_2) = w_1^2/100 + w_2^2$ has condition number 100: steep across,
# nearly flat along. "SGD has trouble navigating ravines. In these scenarios, SGD oscillates across
# the slopes of the ravine while only making hesitant progress along the bottom" (the lecture,
# and the book's Fig. 5.4). With $\eta = 0.9$, close to the limit $2/\lambda_{max} = 1$:

# %%
def ravine(w):
    return w[0] ** 2 / 100 + w[1] ** 2


def ravine_value(path):
    return path[:, 0] ** 2 / 100 + path[:, 1] ** 2


START = (-9.0, 1.5)
zigzag = run(lambda ps: nn.optim.SGD(ps, lr=0.9), ravine, START, 100)
heavy = run(lambda ps: nn.optim.SGD(ps, lr=0.9, momentum=0.9), ravine, START, 100)
flips = np.sum(np.diff(np.sign(zigzag[:, 1])) != 0)
print(f"SGD, lr 0.9: w2 changes sign {flips} times in 100 steps; w1 goes from {START[0]} to {zigzag[-1, 0]:.2f}")
print(f"the same with momentum 0.9: loss {ravine_value(heavy)[-1]:.1e} after 100 steps "
      f"(SGD: {ravine_value(zigzag)[-1]:.1e})")
assert flips == 100 and np.all(np.diff(zigzag[:, 0]) > 0)      # across: every step; along: hesitantly
assert ravine_value(heavy)[-1] < 1e-2 * ravine_value(zigzag)[-1]

# %% [markdown]
# **Momentum** (5.4.1, eqs. 5.17-5.18) adds a fraction $\gamma$ of the previous step to the current
# one: along the bottom the gradients all point the same way and the steps grow (up to
# $1/(1 - \gamma) = 10$ times); across, they alternate and cancel. **Nesterov** (5.4.2, eqs.
# 5.19-5.20) takes the gradient at the point the momentum is about to carry us to, and corrects
# sooner. **AdaGrad** (5.4.3, eq. 5.21) divides each parameter's learning rate by the root of its
# accumulated squared gradients, **AdaDelta** (5.4.4) and **RMSprop** (5.4.5) by a running average
# instead, and **Adam** (5.4.6) does so with a running average of the gradient too (momentum).
# `nn.optim` has them all, with `torch.optim`'s formulas and defaults.
#
# A fair race gives each solver its best learning rate: "try a bunch of values on a log-scale and
# then use the best one" (the lecture). We try 0.003 to 3 and keep the one with the lowest loss
# after 100 steps.

# %%
SOLVERS = {
    "SGD": lambda lr: lambda ps: nn.optim.SGD(ps, lr=lr),
    "momentum 0.9": lambda lr: lambda ps: nn.optim.SGD(ps, lr=lr, momentum=0.9),
    "Nesterov 0.9": lambda lr: lambda ps: nn.optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True),
    "AdaGrad": lambda lr: lambda ps: nn.optim.Adagrad(ps, lr=lr),
    "AdaDelta": lambda lr: lambda ps: nn.optim.Adadelta(ps, lr=lr),
    "RMSprop": lambda lr: lambda ps: nn.optim.RMSprop(ps, lr=lr, alpha=0.9),     # the book's gamma = 0.9
    "Adam": lambda lr: lambda ps: nn.optim.Adam(ps, lr=lr),
}
GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
race = {}
with np.errstate(over="ignore", invalid="ignore"):         # the largest rates diverge, on purpose
    for name, solver in SOLVERS.items():
        tries = {lr: run(solver(lr), ravine, START, 100) for lr in GRID}
        finals = {lr: ravine_value(p)[-1] if np.isfinite(p).all() else np.inf for lr, p in tries.items()}
        best = min(finals, key=finals.get)
        race[name] = dict(lr=best, path=tries[best], loss=finals[best])
print(f"{'solver':14s}{'best lr':>9s}{'loss after 100 steps':>22s}")
for name, r in race.items():
    print(f"{name:14s}{r['lr']:9g}{r['loss']:22.2e}")

assert race["SGD"]["loss"] > 0.1                                           # hesitant progress along the bottom
assert max(race["momentum 0.9"]["loss"], race["Nesterov 0.9"]["loss"]) < 1e-3 * race["SGD"]["loss"]
assert race["Adam"]["loss"] < race["RMSprop"]["loss"] < race["SGD"]["loss"]
assert race["AdaDelta"]["loss"] > 0.1                                      # still on its way (see below)
assert race["AdaGrad"]["loss"] == min(r["loss"] for r in race.values())   # the winner on this ravine

# %%
w1, w2 = np.meshgrid(np.linspace(-10, 10, 201), np.linspace(-2.2, 2.2, 121))
fig, axes = plt.subplots(4, 2, figsize=(11, 10), sharex=True, sharey=True)
for ax, (name, r) in zip(axes.ravel(), race.items()):
    ax.contour(w1, w2, w1 ** 2 / 100 + w2 ** 2, levels=np.geomspace(0.01, 3.5, 10), colors="0.75", linewidths=0.8)
    ax.plot(*np.clip(r["path"], -10, 10).T, ".-", ms=3, lw=0.8)
    ax.plot(0, 0, "k*", ms=9)
    ax.set_title(f"{name}, lr = {r['lr']:g}: loss {r['loss']:.1e} after 100 steps", fontsize=9)
ax = axes.ravel()[-1]
ax.contour(w1, w2, w1 ** 2 / 100 + w2 ** 2, levels=np.geomspace(0.01, 3.5, 10), colors="0.75", linewidths=0.8)
ax.plot(*zigzag.T, ".-", ms=3, lw=0.8, color="C3")
ax.set_title("Fig. 5.4: SGD at lr = 0.9 zig-zags across the ravine", fontsize=9)
fig.suptitle("The ravine $w_1^2/100 + w_2^2$ from (-9, 1.5): 100 steps of each solver at its best learning rate")
fig.tight_layout()
show_figure(fig, OUT / "ravine.svg")

# %% [markdown]
# What the race shows:
#
# - **SGD** is limited by the steep direction ($\eta < 1$) and then crawls along the flat one:
#   after 100 steps it is still far from the minimum. Momentum and Nesterov get a thousand times
#   closer with the same kind of steps.
# - **AdaGrad** wins outright here, and that is a property of this ravine: it runs along a
#   coordinate axis, and a separate learning rate per parameter is exactly the rescaling it needs.
#   (Exercise 3 turns the ravine by 45 degrees.)
# - **RMSprop** "bounces around the optimum significantly once it's close" (the lecture); Adam,
#   "RMSprop plus momentum", settles closer.
# - **AdaDelta** replaces the learning rate by the ratio of two running averages (eq. 5.26). The
#   numerator starts at 0, so its first step is $\sqrt{\epsilon}/\sqrt{(1 - \rho)\delta^2}\cdot\delta$:
#   $\sqrt{\epsilon/(1 - \rho)} \approx 0.003$ in each coordinate with torch's $\epsilon = 10^{-6}$,
#   $\rho = 0.9$. It starts very slowly on a problem of this scale.

# %%
first_step = np.abs(run(SOLVERS["AdaDelta"](1.0), ravine, START, 1)[1] - START)
adam_step = np.abs(run(SOLVERS["Adam"](0.1), ravine, START, 1)[1] - START)
print(f"first step of AdaDelta (lr 1): {first_step}; of Adam (lr 0.1): {adam_step}")
np.testing.assert_allclose(first_step, np.sqrt(1e-6 / (1 - 0.9)), rtol=1e-3)
np.testing.assert_allclose(adam_step, 0.1, rtol=1e-4)    # Adam's first step: lr, in every coordinate

# %% [markdown]
# Adam's first step moves every coordinate by exactly the learning rate, whatever the size of its
# gradient: the bias-corrected ratio $\hat{E}[\delta]/\sqrt{\hat{E}[\delta^2]}$ is $\pm 1$ at $t = 1$
# (eqs. 5.31-5.33).
#
# **Momentum and Nesterov** (Fig. 5.5): "while momentum update can carry the solver quickly towards a
# local optima, it can overshoot and miss the optimum point. A solver with Nesterov update corrects
# its update by looking ahead". With the same learning rate (0.3) and $\gamma = 0.9$, we measure the
# overshoot: how far past the minimum ($w_1 = 0$) each one runs.

# %%
momentum_path = run(SOLVERS["momentum 0.9"](0.3), ravine, START, 300)
nesterov_path = run(SOLVERS["Nesterov 0.9"](0.3), ravine, START, 300)
overshoot = {"momentum": momentum_path[:, 0].max(), "Nesterov": nesterov_path[:, 0].max()}
print(f"overshoot past w1 = 0: momentum {overshoot['momentum']:.2f}, Nesterov {overshoot['Nesterov']:.2f}")
assert 0 < overshoot["Nesterov"] < overshoot["momentum"]

fig, ax = plt.subplots(figsize=(8, 3.4))
ax.contour(w1, w2, w1 ** 2 / 100 + w2 ** 2, levels=np.geomspace(0.01, 3.5, 10), colors="0.8", linewidths=0.8)
ax.plot(*momentum_path[:60].T, ".-", ms=3, lw=0.8, label="momentum")
ax.plot(*nesterov_path[:60].T, ".-", ms=3, lw=0.8, label="Nesterov")
ax.plot(0, 0, "k*", ms=9)
ax.legend()
ax.set_title("Fig. 5.5: momentum overshoots, Nesterov looks ahead (lr 0.3, 60 steps)")
fig.tight_layout()
show_figure(fig, OUT / "momentum_nesterov.svg")

# %% [markdown]
# ## 4. Momentum 0.9 or 0.99?
#
# The lecture: "$\beta$ = 0.9 or 0.99 are empirically selected", and "learning rate usually needs to
# be decreased when the momentum parameter is increased to maintain convergence. e.g. If $\beta$
# changes from 0.9 to 0.99, learning rate must be decreased by a factor of 10." The step can grow to
# $\eta/(1 - \beta)$: 10 times $\eta$ for 0.9, 100 times for 0.99.

# %%
momentum_runs = {(0.3, 0.9): None, (0.3, 0.99): None, (0.03, 0.99): None}
print(f"{'lr':>5s}{'beta':>6s}{'overshoot':>11s}{'loss after 100':>16s}{'after 300':>11s}")
for lr, beta in momentum_runs:
    path = run(lambda ps, lr=lr, beta=beta: nn.optim.SGD(ps, lr=lr, momentum=beta), ravine, START, 300)
    momentum_runs[lr, beta] = path
    print(f"{lr:5g}{beta:6g}{path[:, 0].max():11.2f}{ravine_value(path)[100]:16.2e}{ravine_value(path)[-1]:11.2e}")
over = {key: path[:, 0].max() for key, path in momentum_runs.items()}
assert over[0.3, 0.99] > 5 * over[0.3, 0.9]               # 0.99 at the same rate: a wild overshoot
assert over[0.03, 0.99] < over[0.3, 0.99]                 # a 10x smaller rate tames it ...
assert ravine_value(momentum_runs[0.03, 0.99])[100] > ravine_value(momentum_runs[0.3, 0.99])[100]   # ... starts slower
assert ravine_value(momentum_runs[0.3, 0.99])[-1] > 1e-3                  # 0.99: still swinging after 300 steps
assert ravine_value(momentum_runs[0.3, 0.9])[-1] < 1e-3 * ravine_value(momentum_runs[0.3, 0.99])[-1]

fig, ax = plt.subplots(figsize=(7, 3.6))
for (lr, beta), path in momentum_runs.items():
    ax.plot(path[:, 0], label=f"lr {lr:g}, beta {beta:g}")
ax.axhline(0, color="k", lw=0.8)
ax.set_xlabel("step")
ax.set_ylabel("$w_1$ (minimum at 0)")
ax.set_title("Momentum 0.9 vs 0.99 along the ravine")
ax.legend()
fig.tight_layout()
show_figure(fig, OUT / "momentum_099.svg")

# %% [markdown]
# With 0.99 the heavy ball swings far past the minimum and is still oscillating after 300 steps;
# dividing the learning rate by 10 shortens the swings but makes the start slower. On this small
# problem 0.9 is the better choice; 0.99 is meant for long, noisy trainings, where averaging over
# about 100 past gradients smooths the noise of the mini-batches.
#
# ## 5. A saddle point
#
# Fig. 5.3: "the saddle points (also called the 'minmax points') are those stationary points on the
# surface of the function, where the partial derivative with respect to its dimensions becomes
# zero", neither a minimum nor a maximum. Our saddle is $\mathcal{F} = w_1^2 + w_2^4/4 - w_2^2/2$: at
# the origin the gradient is 0 and the Hessian is $\operatorname{diag}(2, -1)$; the minima are at
# $(0, \pm 1)$, where $\mathcal{F} = -1/4$. We start at $(1, 10^{-3})$, almost exactly on the ridge
# that leads into the saddle: the gradient towards the way out is tiny, $-w_2 \approx -10^{-3}$.
# The lecture's animation: "the adaptive learning-rate methods are most suitable and provide the
# best convergence for these scenarios". All solvers get the same learning rate, 0.1 (AdaDelta its
# default 1).

# %%
def saddle(w):
    return w[0] ** 2 + w[1] ** 4 / 4 - w[1] ** 2 / 2


def saddle_value(path):
    return path[:, 0] ** 2 + path[:, 1] ** 4 / 4 - path[:, 1] ** 2 / 2


np.testing.assert_allclose(ad.hessian(saddle)(np.zeros(2)), np.diag([2.0, -1.0]))
assert not np.any(ad.grad(saddle)(np.zeros(2)))
escape = {}
saddle_paths = {}
for name, solver in SOLVERS.items():
    path = run(solver(1.0 if name == "AdaDelta" else 0.1), saddle, (1.0, 1e-3), 300)
    saddle_paths[name] = path
    below = np.flatnonzero(saddle_value(path) < -0.2)
    escape[name] = int(below[0]) if len(below) else None
print("steps until the loss is below -0.2 (the saddle is at 0, the minima at -0.25):")
for name, steps in escape.items():
    print(f"  {name:14s}{steps}")
assert max(escape["RMSprop"], escape["Adam"]) * 5 < escape["SGD"]
assert 60 <= escape["SGD"] <= 90                      # ln(1000) / ln(1.1) = 72 steps to grow w2 a thousandfold
assert escape["momentum 0.9"] < escape["SGD"]

w1s, w2s = np.meshgrid(np.linspace(-1.2, 1.2, 121), np.linspace(-1.5, 1.5, 121))
fig, axes = plt.subplots(2, 4, figsize=(14, 6.5), sharex=True, sharey=True)
for ax, (name, path) in zip(axes.ravel(), saddle_paths.items()):
    ax.contour(w1s, w2s, w1s ** 2 + w2s ** 4 / 4 - w2s ** 2 / 2, levels=20, colors="0.8", linewidths=0.8)
    ax.plot(*path[:80].T, ".-", ms=2.5, lw=0.8)
    ax.plot(0, 0, "rx", ms=8)
    ax.set_title(f"{name}: out in {escape[name]} steps", fontsize=9)
curves = axes.ravel()[-1]
curves.remove()
curves = fig.add_subplot(2, 4, 8)
for name, path in saddle_paths.items():
    curves.plot(saddle_value(path)[:120], lw=1, label=name)
curves.set_xlabel("step")
curves.set_title("loss (saddle 0, minima -0.25)", fontsize=9)
curves.legend(fontsize=7)
fig.suptitle("Fig. 5.3: escaping the saddle at the origin from (1, 0.001), lr 0.1 (first 80 steps drawn)")
fig.tight_layout()
show_figure(fig, OUT / "saddle.svg")

# %% [markdown]
# SGD's way out grows by a factor $1 + \eta = 1.1$ per step, from $10^{-3}$: about 70 steps before
# it leaves the saddle. RMSprop and Adam divide each gradient by its own running size, so the tiny
# $w_2$ component is scaled up to a full step at once: they leave in a handful of steps. Momentum
# helps too, by accumulating the small, consistent push.

# %% [markdown]
# ## 6. The race on a real task
#
# Two-parameter surfaces exaggerate the differences. On a real task the solvers, each at its best
# learning rate, end close together. The task: the 8x8 digits (1,400 to train on, 397 held out), a
# network with one hidden layer of 64 ReLU units, 6 epochs of mini-batches of 32, the same
# initial weights and batch order for every solver. Each solver tries three learning rates; we
# keep the one with the lowest validation loss. Beside Adam: **AMSGrad** (Adam that divides by
# the largest $\hat v$ seen so far, so that a step can never grow because $v$ shrank) and
# **AdamW** (the weight decay taken out of the gradient and applied to the weights directly,
# $\theta \leftarrow \theta - \eta\lambda\theta$, here $\lambda = 0.1$).

# %%
digits_x, digits_y = nn.load_digits()
digits_x = nn.data.Standardise(per_channel=False).fit_transform(digits_x).reshape(len(digits_x), -1)
digits_x = digits_x.astype(np.float32)
train, held_out = (digits_x[:1400], digits_y[:1400]), (digits_x[1400:], digits_y[1400:])


def race(make, lr):
    """Train the same small network with ``make(params, lr)``; returns (history, weight norm)."""
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((64,)), nn.Dense(64, activation="relu"), nn.Dense(10, activation="softmax")])
    history = nn.fit(model, train, optimizer=make(model.parameters(), lr), epochs=6, batch_size=32,
                     validation=held_out, verbose=0, seed=0)
    return history, float(np.sqrt(sum((p.value.astype(np.float64) ** 2).sum() for p in model.parameters())))


RACE = {"SGD": (lambda p, lr: nn.optim.SGD(p, lr=lr), (0.03, 0.1, 0.3)),
        "momentum 0.9": (lambda p, lr: nn.optim.SGD(p, lr=lr, momentum=0.9), (0.01, 0.03, 0.1)),
        "RMSprop": (lambda p, lr: nn.optim.RMSprop(p, lr=lr), (1e-3, 3e-3, 1e-2)),
        "Adam": (lambda p, lr: nn.optim.Adam(p, lr=lr), (1e-3, 3e-3, 1e-2)),
        "AMSGrad": (lambda p, lr: nn.optim.Adam(p, lr=lr, amsgrad=True), (1e-3, 3e-3, 1e-2)),
        "AdamW": (lambda p, lr: nn.optim.AdamW(p, lr=lr, weight_decay=0.1), (1e-3, 3e-3, 1e-2))}
runs = {(name, lr): race(make, lr) for name, (make, lrs) in RACE.items() for lr in lrs}
best = {name: min(lrs, key=lambda lr: runs[name, lr][0]["val_loss"][-1]) for name, (_, lrs) in RACE.items()}
for name, lr in best.items():
    history = runs[name, lr][0]
    print(f"{name:13s} best lr {lr:<6g} training loss {history['loss'][-1]:.4f}, "
          f"held-out loss {history['val_loss'][-1]:.4f}, accuracy {history['val_accuracy'][-1]:.3f}")
accuracies = [runs[name, lr][0]["val_accuracy"][-1] for name, lr in best.items()]
assert min(accuracies) > 0.88 and max(accuracies) - min(accuracies) < 0.05     # close together

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
for name, lr in best.items():
    history = runs[name, lr][0]
    epochs = np.arange(1, len(history["loss"]) + 1)
    left.plot(epochs, history["loss"], "o-", ms=3, label=f"{name} (lr {lr:g})")
    right.plot(epochs, history["val_accuracy"], "o-", ms=3, label=name)
left.set_yscale("log")
left.set(xlabel="epoch", ylabel="training loss", title="digits, each solver at its best lr")
right.set(xlabel="epoch", ylabel="held-out accuracy")
left.legend(fontsize=7)
fig.tight_layout()
show_figure(fig, OUT / "digits_race.svg")

# %% [markdown]
# Three lessons of the race, each checked:
#
# - **Momentum 0.9 is SGD with a ten times larger step.** With a constant gradient the buffer
#   sums to $\mathbf{g}/(1 - \mu)$, so momentum 0.9 at learning rate $\eta$ ends where SGD at
#   $10\eta$ does: 0.03 with momentum against 0.3 without.
# - **AMSGrad changes nothing here.** Its denominator differs from Adam's only where $v$ shrank,
#   and on this short run the two curves agree within a few percent.
# - **AdamW keeps the weights smaller** at every learning rate, the decay acting on the weights
#   whatever the gradients do (with Adam, an L2 term in the loss would be divided by $\sqrt{\hat v}$
#   like every gradient, and decay the weights with large gradients least).

# %%
sgd_10x, momentum = runs["SGD", 0.3][0]["loss"][-1], runs["momentum 0.9", 0.03][0]["loss"][-1]
print(f"training loss after 6 epochs: SGD at lr 0.3 {sgd_10x:.4f}, momentum 0.9 at lr 0.03 {momentum:.4f}")
assert abs(momentum / sgd_10x - 1) < 0.25 and momentum < 0.5 * runs["SGD", 0.03][0]["loss"][-1]
for lr in RACE["Adam"][1]:
    adam, amsgrad, adamw = (runs[name, lr] for name in ("Adam", "AMSGrad", "AdamW"))
    assert abs(amsgrad[0]["loss"][-1] / adam[0]["loss"][-1] - 1) < 0.05
    print(f"lr {lr:g}: weight norm Adam {adam[1]:.2f}, AdamW {adamw[1]:.2f}")
    assert adamw[1] < adam[1]

# %% [markdown]
# ## 7. Learning-rate schedules, and AMSGrad's memory
#
# Back to the stochastic gradient descent of section 1: at a constant learning rate it reaches the
# minimum's neighbourhood in one epoch and then jitters there for ever, each single-example step
# pushing it off again. The lecture's remedy is to lower the learning rate as training goes on.
# `nn.optim.StepLR(opt, step_size, gamma)` multiplies it by `gamma` every `step_size` epochs;
# `nn.optim.ReduceLROnPlateau(opt, factor, patience)` does so only when the monitored loss has not
# improved for `patience` epochs ("divide the learning rate by 10 when the validation error stops
# improving"; here by 2, watching the training loss). Each is stepped once per epoch (in `nn.fit`
# by the `nn.LearningRateScheduler` callback). Eight epochs of SGD on single examples, lr 0.05 at
# first; we measure the mean distance to the minimum over each epoch's 256 steps.

# %%
def stochastic_run(schedule=None, epochs=8):
    """SGD on single examples of section 1's regression; (mean distance to the minimum, lr) per epoch."""
    w = nn.Parameter(w0.astype(np.float32))
    opt = nn.optim.SGD([w], lr=0.05)
    scheduler = schedule(opt) if schedule else None
    distances, rates = [], []
    for epoch in range(epochs):
        rates.append(opt.lr)
        steps = []
        for index in nn.data.batches(np.arange(N), batch_size=1, seed=epoch):
            opt.zero_grad()
            mse(w, X[index], y[index]).backward()
            opt.step()
            steps.append(np.linalg.norm(w.value - w_best))
        distances.append(float(np.mean(steps)))
        if isinstance(scheduler, nn.optim.ReduceLROnPlateau):
            scheduler.step(float(np.mean((X @ w.value - y) ** 2)))
        elif scheduler is not None:
            scheduler.step()
    return np.array(distances), rates


schedules = {"constant lr": stochastic_run(),
             "StepLR (x0.5 every epoch)": stochastic_run(lambda opt: nn.optim.StepLR(opt, step_size=1, gamma=0.5)),
             "ReduceLROnPlateau (x0.5)": stochastic_run(lambda opt: nn.optim.ReduceLROnPlateau(opt, factor=0.5,
                                                                                               patience=0))}
for name, (distances, rates) in schedules.items():
    print(f"{name:27s} distance per epoch " + " ".join(f"{d:.3f}" for d in distances)
          + "   lr " + " ".join(f"{r:g}" for r in rates))
constant, step, plateau = (distances for distances, _ in schedules.values())
np.testing.assert_allclose(schedules["StepLR (x0.5 every epoch)"][1], 0.05 * 0.5 ** np.arange(8))
assert constant[2:].min() > 0.06                      # the constant rate jitters around the minimum ...
assert step[-1] < 0.5 * constant[-1]                  # ... the decayed one settles closer
plateau_rates = schedules["ReduceLROnPlateau (x0.5)"][1]
assert plateau_rates[0] == 0.05 and plateau_rates[-1] < 0.05 and plateau[-1] < constant[-1]

# %% [markdown]
# The schedule trades speed for precision: halving every epoch slowed the second epoch (its steps
# were already half as long) but ended two and a half times closer than the constant rate; the plateau rule
# waited until the loss stopped improving and cut the rate only then. (A rate that shrinks too fast
# stops the descent before it arrives; exercise 5.)
#
# **AMSGrad.** Adam divides by $\sqrt{\hat v}$, a running average of squared gradients that forgets
# with $\beta_2$: after a burst of large gradients, $v$ decays again and the steps grow back.
# Reddi et al. (2018) showed that this can make Adam fail to converge, and AMSGrad divides instead
# by the largest $v$ seen so far: $v^{max}_t = \max(v^{max}_{t-1}, v_t)$, then
# $\theta_t = \theta_{t-1} - \eta\,\hat m_t / (\sqrt{v^{max}_t / (1 - \beta_2^t)} + \epsilon)$ (PyTorch's
# form: the maximum of the uncorrected $v$, bias-corrected afterwards). Ten gradients of 10, then
# 2,000 of 0.1, with `Adam(lr=0.01)` and `Adam(lr=0.01, amsgrad=True)`, against the formulas written
# out in NumPy:

# %%
gradients = np.r_[np.full(10, 10.0), np.full(2000, 0.1)]


def step_sizes(amsgrad):
    w = nn.Parameter(np.zeros(1, np.float32))
    opt = nn.optim.Adam([w], lr=0.01, amsgrad=amsgrad)
    sizes = []
    for g in gradients:
        before = w.value.copy()
        w.grad = np.array([g], np.float32)
        opt.step()
        sizes.append(abs(float(w.value[0] - before[0])))
    return np.array(sizes)


def step_sizes_by_hand(amsgrad, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
    m = v = v_max = 0.0
    sizes = []
    for t, g in enumerate(gradients, start=1):
        m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g           # eqs. 5.29-5.30
        v_max = max(v_max, v)
        second = v_max if amsgrad else v
        sizes.append(lr * (m / (1 - beta1 ** t)) / (np.sqrt(second / (1 - beta2 ** t)) + eps))   # 5.31-5.33
    return np.array(sizes)


adam_sizes, amsgrad_sizes = step_sizes(False), step_sizes(True)
np.testing.assert_allclose(adam_sizes, step_sizes_by_hand(False), rtol=2e-3)
np.testing.assert_allclose(amsgrad_sizes, step_sizes_by_hand(True), rtol=2e-3)
print(f"step after the burst (t = 11): Adam {adam_sizes[10]:.2e}, AMSGrad {amsgrad_sizes[10]:.2e}; "
      f"at t = 2010: Adam {adam_sizes[-1]:.2e}, AMSGrad {amsgrad_sizes[-1]:.2e}")
assert np.allclose(adam_sizes[:10], amsgrad_sizes[:10])          # the same while v only grows
assert adam_sizes[-1] > 2.5 * amsgrad_sizes[-1]                  # Adam forgot the burst, AMSGrad did not

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
for name, (distances, _) in schedules.items():
    left.plot(np.arange(1, 9), distances, "o-", ms=3, label=name)
left.set(yscale="log", xlabel="epoch", ylabel="mean distance to the minimum",
         title="SGD on single examples: schedules")
left.legend(fontsize=8)
right.semilogy(adam_sizes, label="Adam")
right.semilogy(amsgrad_sizes, label="AMSGrad")
right.set(xlabel="step", ylabel="|step|", title="after 10 gradients of 10, gradients of 0.1")
right.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "schedules_amsgrad.svg")

# %% [markdown]
# During the burst both step by the learning rate (a constant gradient gives $\hat m/\sqrt{\hat v} = 1$),
# and right after it by very little: the gradient fell a hundredfold, $v$ still remembers the burst.
# Then Adam's average $v$ forgets the burst (by a factor $\beta_2 = 0.999$ a step) and its steps grow back
# towards the learning rate; AMSGrad keeps dividing by the burst's $v$, and its steps stay smaller,
# which is what its convergence proof needs. On the digits race (section 6), where no such burst
# happens, the two were within a few percent.

# %% [markdown]
# ## Exercises
#
# Checked (`chainrule/exercises/cnn.py`; answers in `chainrule/exercises/solutions/cnn.py`). The checker
# runs `nn.optim` from the same state on the same gradient and compares every element:
#
# 1. **One step of momentum** `momentum_step(param, grad, momentum_buffer, lr, momentum)`, in
#    `torch.optim.SGD`'s form: $\mathbf{b} \leftarrow \mu\mathbf{b} + \mathbf{g}$,
#    $\theta \leftarrow \theta - \eta\mathbf{b}$ (the book's eq. 5.18 with $a_t = \eta\mathbf{b}_t$).
#    Return new arrays `(param, momentum_buffer)`.
# 2. **One step of Adam** `adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, betas)`: eqs.
#    5.29-5.33 with `step` = $t$, and $\epsilon$ = `ADAM_EPS` added *outside* the square root, as
#    PyTorch does. Return `(param, exp_avg, exp_avg_sq)`.
#
# Without a checker:
#
# 3. Turn the ravine by 45 degrees ($\mathcal{F}(R\mathbf{w})$ with a rotation $R$) and rerun the
#    race. What happens to AdaGrad's lead?
# 4. Add noise to the ravine's gradient (`w.grad += ...` before `opt.step()`) and compare momentum
#    0.9 and 0.99 again.
# 5. Rerun section 7's `StepLR` with gamma 0.1 and with gamma 0.9. Which ends closest to the
#    minimum after 8 epochs, and why does the fastest decay stop short?

# %%
from chainrule.exercises import attempt
from chainrule.exercises.cnn import ADAM_EPS, check_adam_step, check_momentum_step  # noqa: F401 (ADAM_EPS: yours)


def momentum_step(param, grad, momentum_buffer, lr, momentum):
    raise NotImplementedError  # your code here


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, betas):
    raise NotImplementedError  # your code here


for check, answer in [(check_momentum_step, momentum_step), (check_adam_step, adam_step)]:
    print(attempt(check, answer))

# %% The answers pass the same checks (chainrule/exercises/solutions/cnn.py: read them after trying).
from chainrule.exercises.solutions.cnn import SOLUTIONS

assert check_momentum_step(SOLUTIONS["momentum_step"]).passed and check_adam_step(SOLUTIONS["adam_step"]).passed
