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
# # Lesson 4: preparing the data
#
# *Follows the slides "CNN Training 1", parts "Dataset Preparation" (train/test, k-fold
# validation, train/val/test with "roughly 10k or 10% whichever is less for val and test") and
# "Data Preprocessing" (zero-centred data, "in practice for images: only centering is preferred",
# mean image vs per-channel mean, and "always all positive or all negative: this is also why you
# want zero-mean data").*
#
# Before any training: which examples to learn from, which to choose hyperparameters on, which to
# report on, and what to subtract from the pixels. `nn.data` has the splits, k-fold and the two
# kinds of centring the slides name. We will
#
# 1. split the 1,797 digits into train, validation and test sets, stratified by class;
# 2. use 5-fold cross-validation to choose a hyperparameter;
# 3. compare mean-image and per-channel centring (AlexNet vs VGGNet and ResNet);
# 4. see why zero-mean data matters: the gradients of a neuron with all-positive inputs share one
#    sign, and its updates zig-zag.
#
# Pictures go to `tutorials/_output/cnn_04_data/` (or `$TUTORIAL_OUTPUT`).

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

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "cnn_04_data"
OUT.mkdir(parents=True, exist_ok=True)


# %% [markdown]
# ## 1. Train, validation and test sets
#
# "Choose hyperparameters that work best on test data" is the slides' example of what *not* to do:
# "BAD: no idea how algorithm will perform on new data". The better approach: "split data into
# train, val, and test; choose hyperparameters on val and evaluate on test", with "roughly 10k or
# 10% whichever is less for val and test". For our 1,797 digits that is 10% each.
#
# `nn.data.train_val_test_split` shuffles and splits; `stratify=True` keeps every class's share in
# every part. Splitting the *indices* `0..1796` instead of the images shows that the three parts
# are disjoint and cover everything.

# %%
x, y = nn.load_digits()
n = len(x)
train, val, test, y_train, y_val, y_test = nn.data.train_val_test_split(np.arange(n), y, val_size=0.1,
                                                                         test_size=0.1, stratify=True, seed=0)
print(f"{n} images: {len(train)} train, {len(val)} validation, {len(test)} test")
assert len(set(train) | set(val) | set(test)) == n == len(train) + len(val) + len(test)
np.testing.assert_array_equal(y[train], y_train)

print("class:      " + "".join(f"{c:5d}" for c in range(10)))
for name, labels in (("all", y), ("train", y_train), ("validation", y_val), ("test", y_test)):
    counts = np.bincount(labels, minlength=10)
    print(f"{name:12s}" + "".join(f"{c:5d}" for c in counts))
    share = np.bincount(y, minlength=10) * len(labels) / n
    assert np.all(np.abs(counts - share) < 1 + 1e-9)          # each class within one image of its share

# %% [markdown]
# ## 2. K-fold validation
#
# With few examples a single validation set is a noisy judge. "Split data into folds, try each
# fold as validation and average the results" (useful for small datasets, "but not used too
# frequently in deep learning": it costs k trainings). `nn.data.kfold` gives the indices of each
# fold. We use it on the training set to choose the width of a one-hidden-layer network, 4 or 32
# tanh units; the test set stays untouched.

# %%
folds = list(nn.data.kfold(len(train), k=5, seed=0))
in_validation = np.concatenate([val_index for _, val_index in folds])
assert sorted(in_validation) == list(range(len(train)))      # every training image is validated exactly once
x_train_flat = x[train].reshape(len(train), -1)


def fold_accuracies(hidden):
    accuracies = []
    for k, (fit_index, val_index) in enumerate(folds):
        nn.set_seed(k)
        model = nn.Sequential([nn.Input((64,)), nn.Dense(hidden, activation="tanh"), nn.Dense(10)])
        nn.fit(model, (x_train_flat[fit_index], y_train[fit_index]), optimizer="adam", lr=0.01, epochs=10,
               seed=k, verbose=0)
        accuracies.append(nn.evaluate(model, (x_train_flat[val_index], y_train[val_index]))["accuracy"])
    return np.array(accuracies)


cross_validation = {hidden: fold_accuracies(hidden) for hidden in (4, 32)}
for hidden, accuracies in cross_validation.items():
    print(f"{hidden:2d} hidden units: fold accuracies " + " ".join(f"{a:.3f}" for a in accuracies)
          + f"; mean {accuracies.mean():.3f} +- {accuracies.std():.3f}")
chosen = max(cross_validation, key=lambda h: cross_validation[h].mean())
assert chosen == 32 and cross_validation[32].min() > cross_validation[4].mean()

# %% [markdown]
# The spread between folds shows how much a single validation split could mislead; averaged over
# five folds, 32 units win clearly. Only now would the chosen model be trained on the whole
# training set and evaluated, once, on the test set.
#
# ## 3. Centring: the mean image or the mean of each channel
#
# "In practice for images: only centering is preferred", in one of two ways: subtract the **mean
# image** (AlexNet; for CIFAR-10 "a [32,32,3] array") or the **per-channel mean** (VGGNet, ResNet;
# "3 numbers"). Both are statistics of the *training* set, applied unchanged to the validation and
# test sets (computing them on all the data would leak the test set into training).
# `nn.data.MeanImage` and `nn.data.ChannelCentre` fit on the training images and transform any.

# %%
x_train, x_test = x[train], x[test]
mean_image = nn.data.MeanImage().fit(x_train)
channel_centre = nn.data.ChannelCentre().fit(x_train)
print("statistics kept: mean image", mean_image.state_dict()["mean"].shape,
      "; per-channel mean", channel_centre.state_dict()["mean"].shape)
cifar_like = np.random.default_rng(0).random((16, 3, 32, 32), dtype=np.float32)
assert nn.data.MeanImage().fit(cifar_like).state_dict()["mean"].shape == (3, 32, 32)   # the slides' CIFAR-10
assert nn.data.ChannelCentre().fit(cifar_like).state_dict()["mean"].shape == (3,)      # "3 numbers"

by_image, by_channel = mean_image.transform(x_train), channel_centre.transform(x_train)
pixel_means = {"raw": x_train.mean(axis=0), "mean image": by_image.mean(axis=0), "per channel": by_channel.mean(axis=0)}
for name, means in pixel_means.items():
    print(f"{name:12s}: mean of all training pixels {means.mean():+.4f}; per-pixel means from "
          f"{means.min():+.3f} to {means.max():+.3f}")
assert np.abs(pixel_means["mean image"]).max() < 1e-6      # every pixel centred
assert abs(pixel_means["per channel"].mean()) < 1e-5        # the channel centred (float32 round-off) ...
assert np.abs(pixel_means["per channel"]).max() > 0.2       # ... but not each pixel:
assert np.all(pixel_means["per channel"][0, :, 0] < 0)      # the left border stays negative,
assert pixel_means["per channel"][0, 2:6, 2:6].mean() > 0    # the centre positive
test_mean = mean_image.transform(x_test).mean()
print(f"test images centred with the training mean image: mean {test_mean:+.4f} (close to 0, not exactly)")
assert 0 < abs(test_mean) < 0.05

fig, axes = plt.subplots(2, 4, figsize=(9, 4.8))
panels = [(mean_image.state_dict()["mean"][0], "the mean image"), (x_train[0, 0], f"a training image ({y_train[0]})"),
          (by_image[0, 0], "minus the mean image"), (by_channel[0, 0], "minus the channel mean")]
for ax, (image, title) in zip(axes[0], panels):
    limit = np.abs(image).max()
    ax.imshow(image, cmap="gray" if image.min() >= 0 else "RdBu_r", vmin=-limit if image.min() < 0 else 0,
              vmax=limit)
    ax.set_title(title, fontsize=9)
for ax, (name, means) in zip(axes[1, 1:], pixel_means.items()):
    shown = ax.imshow(means[0], cmap="RdBu_r", vmin=-0.5, vmax=0.5)
    ax.set_title(f"per-pixel mean: {name}", fontsize=9)
axes[1, 0].axis("off")
fig.colorbar(shown, ax=axes[1, 0], location="left", shrink=0.8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Mean-image vs per-channel centring of the 8x8 digits (one channel)")
fig.tight_layout()
show_figure(fig, OUT / "centring.svg")

# %% [markdown]
# The digits have one channel, so per-channel centring subtracts one number: the overall mean is
# 0, but the border pixels, almost always blank, stay negative and the centre stays positive. The
# mean image makes *every* pixel's mean 0. For photographs, whose mean image is nearly uniform in
# each channel, the two are close, and the per-channel mean has the advantage of working for any
# image size.
#
# ## 4. Why zero-mean data matters
#
# The slides' argument, made about sigmoid outputs and repeated for data: "Consider what happens
# when the input to a neuron (x) is always positive: $f(\sum_i w_i x_i + b)$. What can we say about
# the gradients on $\mathbf{w}$? Always all positive or all negative." By the chain rule,
# $\partial L/\partial w_i = \partial L/\partial z \cdot x_i$ with $z = \sum_i w_i x_i + b$: one
# number, $\partial L/\partial z$, times $x_i \ge 0$. The engine agrees, for a sigmoid neuron on each
# of 200 raw digits (pixels in $[0, 1]$):

# %%
rng = np.random.default_rng(1)
w, b = rng.normal(0, 0.1, 64), 0.0


def neuron_loss(w, image, target):
    z = ad.sum(w * image) + b
    p = ad.sigmoid(z)
    return -(target * ad.log(p) + (1 - target) * ad.log(1 - p))     # is it a zero? (binary cross-entropy)


def sign_pattern(images, targets):
    """For each image: do the nonzero components of dL/dw all have the same sign?"""
    same = []
    for image, target in zip(images, targets):
        g = ad.grad(neuron_loss)(w, image.astype(np.float64), target)
        nonzero = g[g != 0]
        same.append(bool(np.all(nonzero > 0) or np.all(nonzero < 0)))
    return np.array(same)


raw_images = x_train[:200].reshape(200, -1)
centred_images = mean_image.transform(x_train[:200]).reshape(200, -1)
targets = (y_train[:200] == 0).astype(float)
raw_same, centred_same = sign_pattern(raw_images, targets), sign_pattern(centred_images, targets)
print(f"raw pixels:     dL/dw has one sign for {raw_same.mean():.0%} of the images")
print(f"centred pixels: dL/dw has one sign for {centred_same.mean():.0%} of the images")
assert raw_same.all() and centred_same.mean() < 0.05

# %% [markdown]
# Always, for raw pixels; almost never, once they are centred. Why it hurts: every update of
# $\mathbf{w}$ then points into the all-positive or the all-negative orthant. If the best weights
# need some components to grow and others to shrink, gradient descent can only get there by
# zig-zagging. A two-input example shows it: inputs uniform in $[0.5, 1.5]^2$ (all positive, mean
# 1), targets $y = x_1 - x_2$, so the answer is $\mathbf{w}^* = (1, -1)$, one component up and one
# down from the start $(-1, 1)$. Stochastic gradient descent, one example at a time, on the raw
# inputs and on the centred ones (for which $\mathbf{w}^*$ is the answer too, since
# $\mathbf{w}^{*\top}\bar{\mathbf{x}} = 0$), each with the best learning rate of a small grid:

# %%
inputs = rng.uniform(0.5, 1.5, (200, 2)).astype(np.float32)
w_star = np.array([1.0, -1.0], np.float32)
datasets = {"raw": inputs, "centred": inputs - inputs.mean(axis=0)}


def sgd_path(data, lr, epochs=5):
    targets = data @ w_star
    w = nn.Parameter(np.array([-1.0, 1.0], np.float32))
    opt = nn.optim.SGD([w], lr=lr)
    path = [w.value.copy()]
    for epoch in range(epochs):
        for i in nn.data.as_generator(epoch).permutation(len(data)):
            opt.zero_grad()
            residual = ad.sum(data[i] * w) - targets[i]
            (residual * residual).backward()
            opt.step()
            path.append(w.value.copy())
    return np.array(path)


def steps_to_answer(path, tol=0.05):
    close = np.linalg.norm(path - w_star, axis=1) < tol
    return int(np.argmax(close)) if close.any() else None


best = {}
with np.errstate(over="ignore", invalid="ignore"):            # the largest rates diverge on raw inputs
    for name, data in datasets.items():
        runs = {lr: sgd_path(data, lr) for lr in (0.1, 0.3, 0.5, 1.0)}
        converged = {lr: steps_to_answer(p) for lr, p in runs.items() if steps_to_answer(p) is not None}
        lr = min(converged, key=converged.get)
        best[name] = dict(lr=lr, path=runs[lr], steps=converged[lr], diverged=[r for r in runs if r not in converged],
                          condition=np.linalg.cond(data.T @ data))
for name, r in best.items():
    steps = np.diff(r["path"][: r["steps"] + 1], axis=0)          # the updates on the way to w*
    same_orthant = np.mean(steps[:, 0] * steps[:, 1] >= 0)
    r["same_orthant"] = same_orthant
    print(f"{name:8s}: condition number of X^T X {r['condition']:6.1f}; best lr {r['lr']:g} (diverged: "
          f"{r['diverged'] or 'none'}); {r['steps']} steps to within 0.05 of w*; "
          f"{same_orthant:.0%} of those updates in the (+,+) or (-,-) orthant")
assert best["raw"]["same_orthant"] == 1.0                        # every update all positive or all negative
assert best["centred"]["same_orthant"] < 0.8                     # centred: updates of mixed signs
assert best["raw"]["condition"] > 10 * best["centred"]["condition"] and best["centred"]["condition"] < 2
assert best["centred"]["steps"] * 3 < best["raw"]["steps"]

fig, axes = plt.subplots(1, 2, figsize=(10, 4.3), sharex=True, sharey=True)
g1, g2 = np.meshgrid(np.linspace(-1.3, 1.6, 121), np.linspace(-1.6, 1.3, 121))
for ax, (name, r) in zip(axes, best.items()):
    data = datasets[name]
    error = np.mean((data[:, 0, None, None] * (g1 - 1) + data[:, 1, None, None] * (g2 + 1)) ** 2, axis=0)
    ax.contour(g1, g2, error, levels=np.geomspace(1e-3, error.max(), 12), colors="0.8", linewidths=0.8)
    shown = r["path"][: r["steps"] + 1]
    ax.plot(*shown.T, ".-", ms=3, lw=0.8)
    ax.plot(*w_star, "k*", ms=10)
    ax.set_title(f"{name} inputs: {r['steps']} steps (lr {r['lr']:g})", fontsize=10)
    ax.set_xlabel("$w_1$")
axes[0].set_ylabel("$w_2$")
fig.suptitle("SGD from (-1, 1) to w* = (1, -1): all-positive inputs zig-zag")
fig.tight_layout()
show_figure(fig, OUT / "zero_mean.svg")

# %% [markdown]
# On raw inputs every single update lies in the $(+,+)$ or $(-,-)$ orthant, exactly as the slides
# say, while the way to $\mathbf{w}^*$ is along $(+,-)$: the path zig-zags down the narrow valley.
# In the language of lesson 3: the all-positive mean makes $X^\top X$ ill-conditioned (its largest
# eigenvalue belongs to the direction of the mean), so the learning rate must stay small, and the
# larger rates diverge. Centring removes the mean, the condition number drops close to 1, and the
# same solver gets there several times faster.

# %% [markdown]
# ## Exercises
#
# Checked (`chainrule/exercises/cnn.py`; answers in `chainrule/exercises/solutions/cnn.py`):
#
# 1. **Per-channel centring by hand.** `channel_centre(x_train, x)` returns `x` minus the
#    per-channel mean of `x_train`, for images (N, C, H, W): one number per channel, averaged over
#    the training images *and* their pixels. The checker compares with `nn.data.ChannelCentre` on
#    three-channel images.
#
# Without a checker:
#
# 2. Choose the learning rate of section 2's network (0.001, 0.01 or 0.1) by 5-fold
#    cross-validation instead of the width.
# 3. Standardise the digits as well (`nn.data.Standardise(per_channel=False)`) and train the small
#    network of section 2 with plain SGD (lr 0.1) on raw, centred and standardised pixels. Which
#    change makes the difference, and why (think of lesson 3's learning rates)?
# 4. In section 4, shift the inputs to $[1.5, 2.5]^2$. What happens to the condition number and to
#    the number of steps?

# %%
from chainrule.exercises import attempt
from chainrule.exercises.cnn import check_channel_centre


def channel_centre(x_train, x):
    raise NotImplementedError  # your code here


print(attempt(check_channel_centre, channel_centre))

# %% The answer passes the same check (chainrule/exercises/solutions/cnn.py: read it after trying).
from chainrule.exercises.solutions.cnn import SOLUTIONS

assert check_channel_centre(SOLUTIONS["channel_centre"]).passed
