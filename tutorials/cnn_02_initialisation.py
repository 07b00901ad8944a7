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
# # Lesson 2: weight initialisation
#
# *Follows the slides "CNN Training 1", part "Weight Initialization" (constant, small Gaussian,
# N(0, 1), Xavier and "XavierImproved", with their 10-layer x 500-unit experiment and its printed
# tables), and the book's section 5.1 (Gaussian, orthogonal, Xavier eq. 5.1, He eq. 5.2, LSUV).*
#
# "A correct weight initialization is the key to stably train very deep networks. An ill-suited
# initialization can lead to the vanishing or exploding gradient problem" (section 5.1). The slides
# make the point with one experiment, which we redo with the toolkit: a plain network of 10 layers
# of 500 units, no biases, fed 1,000 unit-Gaussian inputs; the mean and standard deviation of every
# layer's activations are printed and their histograms drawn, for four ways of drawing the weights.
# `nn.diagnostics.deep_mlp` builds the network and `nn.diagnostics.activation_stats` records the
# statistics layer by layer. Then:
#
# 1. the slides' four tables, ours beside theirs, and the one-line reason for each trend;
# 2. what the initialisation does to the **gradients** (the other half of the story);
# 3. the symmetry problem of a constant initialisation, shown on a trained network;
# 4. the book's orthogonal initialisation and LSUV (`nn.init.orthogonal`, `nn.init.lsuv`).
#
# Pictures go to `tutorials/_output/cnn_02_initialisation/` (or `$TUTORIAL_OUTPUT`).

# %%
import functools
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

import nn
from nn.diagnostics import activation_stats, deep_mlp, layer_gradient_norms

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "cnn_02_initialisation"
OUT.mkdir(parents=True, exist_ok=True)


# %% [markdown]
# ## 1. The slides' experiment
#
# The slides' code, `D = np.random.randn(1000, 500)` and for each layer
# `W = np.random.randn(fan_in, fan_out) * 0.01; H = np.tanh(np.dot(X, W))`, is
# `deep_mlp(depth=10, width=500, activation="tanh", init="normal", std=0.01)`. Their "Xavier",
# `randn(fan_in, fan_out) / sqrt(fan_in)`, is Glorot's eq. 5.1, $\mathrm{Var}(w) = 2/(n_{in} + n_{out})$,
# since here $n_{in} = n_{out} = 500$; their "XavierImproved", `* sqrt(2 / fan_in)`, is He's eq. 5.2.
#
# The slides' printed standard deviations are copied below (they are the source's numbers, our
# reference); the rest is computed.

# %%
SLIDES_STD = {  # "hidden layer k had mean ... and std ...", layers 1 to 10, from the slides
    "N(0, 0.01^2), tanh": [0.213081, 0.047551, 0.010630, 0.002378, 0.000532, 0.000119, 0.000026, 0.000006,
                           0.000001, 0.000000],
    "N(0, 1), tanh": [0.981879, 0.981649, 0.981601, 0.981755, 0.981614, 0.981560, 0.981520, 0.981913, 0.981728,
                      0.981736],
    "Xavier, tanh": [0.627953, 0.486051, 0.407723, 0.357108, 0.320917, 0.292116, 0.273307, 0.254935, 0.239266,
                     0.228008],
    "Xavier, ReLU": [0.582273, 0.403795, 0.276912, 0.198685, 0.140299, 0.103280, 0.072748, 0.051572, 0.038583,
                     0.026076],
    "He, ReLU": [0.825232, 0.827835, 0.813855, 0.826902, 0.834092, 0.860035, 0.870610, 0.889348, 0.845357,
                 0.844523],
}
SLIDES_MEAN_RELU = {"Xavier, ReLU": 0.398623, "He, ReLU": 0.562488}   # layer 1's mean: ReLU outputs are >= 0
CONFIGS = {  # name: (activation, init, std)
    "N(0, 0.01^2), tanh": ("tanh", "normal", 0.01),
    "N(0, 1), tanh": ("tanh", "normal", 1.0),
    "Xavier, tanh": ("tanh", "glorot_normal", None),
    "Xavier, ReLU": ("relu", "glorot_normal", None),
    "He, ReLU": ("relu", "he_normal", None),
}

D = np.random.default_rng(0).standard_normal((1000, 500)).astype(np.float32)   # unit-Gaussian data
models, stats = {}, {}
for k, (name, (activation, init, std)) in enumerate(CONFIGS.items()):
    models[name] = deep_mlp(depth=10, width=500, input_dim=500, activation=activation, init=init, std=std, rng=k + 1)
    stats[name] = activation_stats(models[name], D, bins=30, hist_range=(-1, 1) if activation == "tanh" else (0, 2))

print(f"input: mean {D.mean():+.6f}, std {D.std():.6f}\n")
for name, s in stats.items():
    print(f"{name}: std of each layer's output, ours and the slides'")
    print("layer " + "".join(f"{k:>10d}" for k in range(1, 11)))
    print("ours  " + "".join(f"{v:10.3g}" for v in s.stds))
    print("slides" + "".join(f"{v:10.3g}" for v in SLIDES_STD[name]) + "\n")

# %% [markdown]
# The same trends, and the same numbers to two or three digits. What we hold the toolkit to:

# %%
ours = {name: np.array(s.stds) for name, s in stats.items()}
slides = {name: np.array(v) for name, v in SLIDES_STD.items()}

# N(0, 0.01^2): every layer multiplies the spread by about 0.01 sqrt(500) = 0.224 (tanh is linear near 0),
# so layer 10 is at 3e-7: the slides print 0.000000. Agreement within the slides' 6 printed decimals or 10 %.
n = "N(0, 0.01^2), tanh"
assert np.all((np.abs(ours[n] - slides[n]) <= 5e-7) | (np.abs(ours[n] - slides[n]) < 0.1 * slides[n]))
np.testing.assert_allclose(ours[n][1:] / ours[n][:-1], 0.01 * np.sqrt(500), rtol=0.02)
# N(0, 1): the pre-activations have std sqrt(500) = 22, so tanh sits at -1 or 1: std 0.98 in every layer.
np.testing.assert_allclose(ours["N(0, 1), tanh"], slides["N(0, 1), tanh"], atol=0.01)
# Xavier with tanh: a slow decay, 0.63 to 0.23, within 3 % of the slides' layer by layer.
np.testing.assert_allclose(ours["Xavier, tanh"], slides["Xavier, tanh"], rtol=0.03)
# Xavier with ReLU: ReLU zeroes half of the pre-activations and halves their second moment, so the
# spread shrinks by about 1/sqrt(2) per layer. He's factor 2 repairs that: no trend over ten layers.
for name in ("Xavier, ReLU", "He, ReLU"):
    np.testing.assert_allclose(ours[name], slides[name], rtol=0.3)       # the same order of magnitude ...
    np.testing.assert_allclose(stats[name][0].mean, SLIDES_MEAN_RELU[name], rtol=0.05)
decay = ours["Xavier, ReLU"][1:] / ours["Xavier, ReLU"][:-1]
assert np.all((0.6 < decay) & (decay < 0.85)) and ours["Xavier, ReLU"][-1] < 0.1 * ours["Xavier, ReLU"][0]
assert 0.5 < ours["He, ReLU"][-1] / ours["He, ReLU"][0] < 2 and np.all(ours["He, ReLU"] > 0.6)
print("all five tables agree with the slides' trends and magnitudes")

# %% [markdown]
# Why each trend, in one line: a unit of layer $l$ computes $z = \sum_{i=1}^{n} w_i h_i$ over
# $n = 500$ inputs, so with independent zero-mean weights $\mathrm{Var}(z) = n\,\mathrm{Var}(w)\,E[h^2]$.
#
# - $\mathrm{Var}(w) = 10^{-4}$: $n\mathrm{Var}(w) = 0.05$, the spread shrinks by $\sqrt{0.05} = 0.224$
#   per layer: "almost all neurons will become zero";
# - $\mathrm{Var}(w) = 1$: $\mathrm{std}(z) = \sqrt{500} \approx 22$, and $\tanh(22)$ is 1: "almost all
#   neurons completely saturated, either -1 or 1";
# - $\mathrm{Var}(w) = 1/n$: the variance is kept through the linear part; only tanh's squashing
#   shrinks it, slowly ("the mathematical derivation assumes linear activations");
# - ReLU keeps the positive half: $E[\mathrm{relu}(z)^2] = \mathrm{Var}(z)/2$, so $1/n$ loses half per
#   layer and $2/n$ (He, eq. 5.2) keeps it: $E[h^2] = 1$ in every layer, hence std
#   $\sqrt{1 - 2/\pi} = 0.83$ and mean $\sqrt{2/\pi}\cdot\sqrt{2}/2 = 0.56$, the slides' numbers.

# %%
relu_std, relu_mean = np.sqrt(1 - 1 / np.pi), 1 / np.sqrt(np.pi)     # relu(z), z ~ N(0, 2): E[h^2] = 1
print(f"He + ReLU in theory: mean {relu_mean:.3f}, std {relu_std:.3f}; measured in layer 1: "
      f"mean {stats['He, ReLU'][0].mean:.3f}, std {stats['He, ReLU'][0].std:.3f}")
assert abs(stats["He, ReLU"][0].std - relu_std) < 0.01 and abs(stats["He, ReLU"][0].mean - relu_mean) < 0.01
saturated = np.mean(np.abs(np.tanh(D @ models["N(0, 1), tanh"].layers[1].weight.value)) > 0.99)
print(f"N(0, 1): {saturated:.0%} of layer 1's units have |tanh(z)| > 0.99, where tanh'(z) < 0.02")
assert saturated > 0.9

# %% [markdown]
# The slides' pictures: each layer's mean and standard deviation, and the histogram of each layer's
# activations (30 bins, as in the slides' `plt.hist(H.ravel(), 30, range=(-1, 1))`; ReLU layers on
# $[0, 2]$, with the bar of the zeros cut off).

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
layers = np.arange(1, 11)
for name, s in stats.items():
    left.plot(layers, s.means, "o-", ms=4, label=name)
    right.semilogy(layers, s.stds, "o-", ms=4, label=name)
left.set_title("layer mean")
right.set_title("layer std (log scale)")
for ax in (left, right):
    ax.set_xlabel("hidden layer")
    ax.set_xticks(layers)
right.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "layer_mean_std.svg")

fig, axes = plt.subplots(len(stats), 10, figsize=(15, 1.6 * len(stats)), sharey="row")
for row, (name, s) in zip(axes, stats.items()):
    for ax, layer in zip(row, s):
        ax.stairs(layer.counts, layer.edges, fill=True)
        ax.set_xticks([])
        ax.set_yticks([])
    if "ReLU" in name:      # half of the outputs are exactly 0: cut that bar to show the rest
        row[0].set_ylim(0, 1.3 * max(layer.counts[1:].max() for layer in s))
    row[0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
for ax, k in zip(axes[0], layers):
    ax.set_title(f"layer {k}", fontsize=9)
fig.suptitle("Histograms of each layer's activations (the slides' 10 x 500 network)")
fig.tight_layout()
show_figure(fig, OUT / "histograms.svg")

# %% [markdown]
# ## 2. The gradients
#
# The slides' conclusion for both Gaussian tries is "gradient diminishing problem". The forward
# statistics are half of it; `nn.diagnostics.layer_gradient_norms` gives the other half, the norm of
# the loss's gradient with respect to each layer's weights (one backward pass of a softmax
# cross-entropy on 10 random classes, through a linear output layer added on top).

# %%
labels = np.random.default_rng(1).integers(0, 10, len(D))
gradient_norms = {}
for k, (name, (activation, init, std)) in enumerate(CONFIGS.items()):
    model = deep_mlp(depth=10, width=500, input_dim=500, activation=activation, init=init, std=std, rng=k + 1,
                     classes=10)
    gradient_norms[name] = np.array(list(layer_gradient_norms(model, D, labels).values()))
print("norm of dL/dW per layer (1-10, then the output layer)")
for name, g in gradient_norms.items():
    print(f"{name:20s}" + "".join(f"{v:9.2g}" for v in g))

small, big, xavier = (gradient_norms[n] for n in ("N(0, 0.01^2), tanh", "N(0, 1), tanh", "Xavier, tanh"))
assert small.max() < 1e-5 * xavier.min()               # N(0, 0.01^2): vanished, everywhere
assert big[0] > 1e4 * big[-2]                          # N(0, 1): grows 3-4x per layer towards the input
assert xavier[:-1].max() < 3 * xavier[:-1].min()       # Xavier: about the same in every layer

fig, ax = plt.subplots(figsize=(7, 4))
for name, g in gradient_norms.items():
    ax.semilogy(np.arange(1, 12), g, "o-", ms=4, label=name)
ax.set_xticks(np.arange(1, 12), [str(k) for k in range(1, 11)] + ["out"])
ax.set_xlabel("layer")
ax.set_ylabel("||dL/dW||")
ax.set_title("Gradient norms per layer at initialisation")
ax.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "gradient_norms.svg")

# %% [markdown]
# With $N(0, 0.01^2)$ every layer's gradient is about $2 \cdot 10^{-7}$, a million times smaller than
# with Xavier's: a gradient step changes nothing. With $N(0, 1)$ the story is subtler than "all
# zero": the *local* derivatives $\tanh'(z)$ are nearly 0 (saturation), but each layer's backward
# pass also multiplies by the huge weights ($\|W\| \sim \sqrt{500}$), and here the second effect
# wins: the gradient grows towards the input, **exploding**, by a factor $> 10^4$ over ten layers.
# Either way the steps are useless: "the forward and back-ward propagated activations can either
# diminish or explode" (section 5.1.2). With Xavier the gradient has the same size in every layer.
#
# ## 3. Constant initialisation: the symmetry problem
#
# "Q: what happens when W = constant init is used? Every neuron will compute the same output and
# undergo the exact same parameter updates." We train a small network on the 8x8 digits with every
# weight set to 0.05: 16 tanh units, then 10 outputs, five epochs of SGD.

# %%
x_digits, y_digits = nn.load_digits()
x_flat = x_digits.reshape(len(x_digits), -1)
constant = functools.partial(nn.init.constant, value=0.05)


def small_mlp(kernel_initializer):
    return nn.Sequential([nn.Input((64,)), nn.Dense(16, activation="tanh", kernel_initializer=kernel_initializer),
                          nn.Dense(10, kernel_initializer=kernel_initializer)])


results = {}
for name, initializer in (("constant 0.05", constant), ("Glorot uniform", "glorot_uniform")):
    nn.set_seed(0)
    model = small_mlp(initializer)
    history = nn.fit(model, (x_flat, y_digits), optimizer=nn.optim.SGD(model.parameters(), lr=0.1), epochs=5,
                     seed=0, verbose=0)
    W1, W2 = model.layers[1].weight.value, model.layers[2].weight.value
    results[name] = dict(spread=np.ptp(W1, axis=1).max(), moved=np.abs(W1 - 0.05).max(),
                         accuracy=history["accuracy"][-1], W1=W1.copy())
    print(f"{name:15s}: largest difference between two hidden units' weights from one input "
          f"{results[name]['spread']:.2g}; training accuracy {results[name]['accuracy']:.3f}")

symmetric = results["constant 0.05"]
assert symmetric["moved"] > 1e-3           # the weights did change ...
assert symmetric["spread"] < 1e-5          # ... but all 16 units changed alike (up to float32 round-off)
assert symmetric["accuracy"] < 0.15 < 0.8 < results["Glorot uniform"]["accuracy"]

# %% [markdown]
# After five epochs the weights have moved, yet the 16 hidden units still have the same weights up
# to float32 round-off in the matrix products (the numbers printed above): they are one unit, 16
# times, and the network is stuck near chance (10 classes: 10%). "There is no source of asymmetry
# between neurons if their weights are initialized to be the same." Random weights break the
# symmetry; their *scale* is what section 1 was about.
#
# ## 4. Orthogonal initialisation and LSUV
#
# Section 5.1.3: "Orthogonal random initialization has also been shown to perform well in deep
# neural networks [Saxe et al., 2013]. Note that the Gaussian random initialization is only
# approximately orthogonal." `nn.init.orthogonal` takes Q of the QR decomposition of a Gaussian
# matrix (the book mentions the SVD; either gives an orthogonal matrix). An orthogonal $W$ keeps
# the length of every vector, $\|\mathbf{x}W\| = \|\mathbf{x}\|$, so a stack of linear layers keeps
# every example's norm exactly, where Gaussian $1/\sqrt{n}$ weights keep it only on average.

# %%
W = nn.init.orthogonal((500, 500), rng=0)
np.testing.assert_allclose(W.T @ W, np.eye(500), atol=2e-5)
G = nn.init.normal((500, 500), std=1 / np.sqrt(500), rng=0)
print(f"max |W^T W - I|: orthogonal {np.abs(W.T @ W - np.eye(500)).max():.1e}, "
      f"Gaussian N(0, 1/500) {np.abs(G.T @ G - np.eye(500)).max():.2f}")

norm_ratio = {}
for name, init in (("orthogonal", "orthogonal"), ("Xavier", "glorot_normal")):
    linear = deep_mlp(depth=10, width=500, input_dim=500, activation="linear", init=init, rng=3)
    out = nn.predict(linear, D)
    norm_ratio[name] = np.linalg.norm(out, axis=1) / np.linalg.norm(D, axis=1)
    print(f"10 linear layers, {name:10s}: ||output|| / ||input|| per example from {norm_ratio[name].min():.4f} "
          f"to {norm_ratio[name].max():.4f}")
np.testing.assert_allclose(norm_ratio["orthogonal"], 1.0, rtol=1e-4)
assert np.ptp(norm_ratio["Xavier"]) > 100 * np.ptp(norm_ratio["orthogonal"])

# %% [markdown]
# **LSUV** (layer-sequential unit variance, section 5.1.7, Mishkin and Matas): first make every
# weight matrix orthogonal, then, from the first layer to the last, divide each layer's weights by
# the standard deviation of its output on a batch of data until that variance is 1. It does once,
# at initialisation, what batch normalisation does at every step. We start from the worst of the
# slides' networks, $N(0, 0.01^2)$ with tanh, whose layer 10 was at $3 \cdot 10^{-7}$:

# %%
network = deep_mlp(depth=10, width=500, input_dim=500, activation="tanh", init="normal", std=0.01, rng=1)
variances = nn.init.lsuv(network, D[:500], rng=4)             # the data batch: 500 of the inputs
after = activation_stats(network, D, pre_activation=True)     # measured on all 1,000
print("LSUV: variance of each layer's pre-activation on its batch:",
      " ".join(f"{v:.3f}" for v in variances.values()))
print("      std on all the data:                                 ", " ".join(f"{v:.3f}" for v in after.stds))
assert all(abs(v - 1) < 0.1 for v in variances.values())
np.testing.assert_allclose(after.stds, 1.0, atol=0.05)
tanh_stds = activation_stats(network, D).stds
print("      std of the tanh outputs:                             ", " ".join(f"{v:.3f}" for v in tanh_stds))
np.testing.assert_allclose(tanh_stds, stats["Xavier, tanh"][0].std, rtol=0.02)   # all like Xavier's layer 1

# %% [markdown]
# Every layer's pre-activation now has unit variance, on the batch LSUV saw and on data it did not
# see; the tanh outputs all have the spread of the first Xavier layer instead of decaying.
# The slides' advice for ReLU networks stands: He's "XavierImproved" works well, and it is what
# `nn.models.digits_cnn` uses.

# %% [markdown]
# ## Exercises
#
# Checked (`chainrule/exercises/cnn.py`; answers in `chainrule/exercises/solutions/cnn.py`):
#
# 1. **Xavier and He for a convolution.** `init_std(shape)` returns `(xavier_std, he_std)` for a
#    weight of shape `(F, C, kh, kw)`: $F$ filters over $C$ input channels. Each output of the
#    convolution sums over $C\,k_h k_w$ inputs (its fan-in); each input feeds $F\,k_h k_w$ outputs
#    (its fan-out). Then eqs. 5.1 and 5.2.
#
# Without a checker:
#
# 2. Redo section 1 with `init="he_uniform"` and `init="glorot_uniform"`: do the tables change?
#    (The variance is what matters, not the shape of the distribution.)
# 3. Run the slides' experiment with 50 layers. How far does Xavier + tanh decay, and He + ReLU drift?
# 4. Break the symmetry of section 3 with a bias initialised at random but weights still constant.
#    Does the network learn now?
# 5. Apply `nn.init.lsuv` to `nn.models.digits_cnn()` on a batch of digits, and compare its
#    training curve with He's (lesson 5 trains that network).

# %%
from chainrule.exercises import attempt
from chainrule.exercises.cnn import check_init_std


def init_std(shape):
    raise NotImplementedError  # your code here


print(attempt(check_init_std, init_std))

# %% The answer passes the same check (chainrule/exercises/solutions/cnn.py: read it after trying).
from chainrule.exercises.solutions.cnn import SOLUTIONS

assert check_init_std(SOLUTIONS["init_std"]).passed
