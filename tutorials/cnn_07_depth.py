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
# # Lesson 7: depth, vanishing gradients and residual connections
#
# *Follows the lecture "Classification and Optimization in CNNs", part "Classic CNN architectures":
# "the problem of very deep neural networks" (vanishing gradients, $0.9^{100} = 0.000026$, the
# 20-layer and 56-layer plain networks) and ResNet's residual learning ("the shortcut connections
# simply perform identity mapping, and their outputs are added to the outputs of the stacked
# layers"); with the book's section 5.1 ("an ill-suited initialization can lead to the vanishing or
# exploding gradient problem") and lesson 1's saturating sigmoid.*
#
# "One of the major benefits of a very deep network is that it can represent very complex
# functions. However, a huge barrier to training them is vanishing gradients." We measure it:
#
# 1. the lecture's arithmetic, $0.9^{100}$;
# 2. the gradient of every layer of a plain 30-layer sigmoid network, `nn.diagnostics.layer_gradient_norms`;
# 3. the reason, one layer's Jacobian at a time (lesson 4 of the differentiation track);
# 4. the repair: the same depth built from `nn.Residual` blocks, whose gradients stay the same size;
# 5. what this means for training: the plain network does not learn, the residual one does, watched
#    live with `nn.LiveView`.
#
# Pictures go to `tutorials/_output/cnn_07_depth/` (or `$TUTORIAL_OUTPUT`).

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
from nn.diagnostics import deep_mlp, layer_gradient_norms

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "cnn_07_depth"
OUT.mkdir(parents=True, exist_ok=True)


# %% [markdown]
# ## 1. The lecture's arithmetic
#
# "As we backprop from the final layer back to the first layer, we are multiplying by the weight
# matrix on each step. If the gradients are small, due to large number of multiplications, the
# gradient can decrease exponentially quickly to zero": $0.9^2 = 0.81$, $0.9^{100} = ?$

# %%
print(f"0.9^2 = {0.9 ** 2:.2f}, 0.9^100 = {0.9 ** 100:.3e}")
assert round(0.9 ** 2, 12) == 0.81 and abs(0.9 ** 100 - 0.000026) < 1e-6      # the lecture's 0.000026 (2.66e-5)

# %% [markdown]
# And a sigmoid layer multiplies by less than 0.9: its derivative is at most $1/4$ (lesson 1), so a
# gradient that crosses 30 sigmoid layers shrinks by a factor of order $(1/4)^{30} \approx 10^{-18}$,
# unless the weights make up for it.
#
# ## 2. A plain deep network
#
# 30 Dense layers of 64 sigmoid units on the 8x8 digits (64 pixels, standardised), Xavier weights
# (eq. 5.1) and zero biases, and a linear output layer of 10 logits: `nn.diagnostics.deep_mlp`.
# `layer_gradient_norms` runs one forward and backward pass of the soft-max cross-entropy on a
# batch of 256 digits and returns, for every layer, the norm of the loss's gradient with respect to
# its weights.

# %%
x, y = nn.load_digits()
x_flat = nn.data.Standardise(per_channel=False).fit_transform(x).reshape(len(x), -1)
batch_x, batch_y = x_flat[:256], y[:256]
DEPTH, WIDTH = 30, 64


def plain_network(depth=DEPTH):
    return deep_mlp(depth=depth, width=WIDTH, input_dim=64, activation="sigmoid", init="glorot_normal", classes=10,
                    use_bias=True)


nn.set_seed(0)
plain = plain_network()
plain_norms = np.array(list(layer_gradient_norms(plain, batch_x, batch_y).values()))[:-1]   # the 30 hidden layers
ratio = plain_norms[-1] / plain_norms[0]
per_layer = ratio ** (-1 / (DEPTH - 1))
print(f"plain: ||dL/dW|| is {plain_norms[-1]:.2e} in layer 30 and {plain_norms[0]:.2e} in layer 1: "
      f"a factor {ratio:.1e}, {per_layer:.3f} per layer (the sigmoid's bound: 0.25)")
assert ratio > 1e12 and 0.15 < per_layer < 0.35
assert np.all(np.diff(np.log(plain_norms)) > 0)          # smaller at every step towards the input

# %% [markdown]
# The first layer's gradient is smaller than the last one's by more than twelve orders of magnitude
# (the factor printed above): whatever learning rate suits layer 30 leaves layer 1 where it was
# initialised. Each layer divides the gradient by about 4, the reciprocal of the sigmoid's largest
# slope.
#
# ## 3. Why: the Jacobian of one layer
#
# Back-propagation multiplies the gradient by each layer's Jacobian in turn (the differentiation
# track's lesson 4). For a layer $\mathbf{h}' = \sigma(\mathbf{h}W + \mathbf{b})$ the Jacobian is
# $\operatorname{diag}(\sigma'(\mathbf{z}))\,W^\top$: the weights, scaled by slopes of at most 1/4.
# A **residual block** (He et al.; the lecture: "instead of hoping each few stacked layers directly
# fit a desired underlying mapping, we explicitly let these layers fit a residual mapping")
# computes $\mathbf{h}' = \mathbf{h} + F(\mathbf{h})$, so its Jacobian is $I + \partial F/\partial\mathbf{h}$:
# the identity, plus something. Whatever $F$ does to the gradient, the identity carries it through.
# The engine gives both Jacobians for one image, at layer 15, and their singular values (how much
# they can stretch or shrink a vector):

# %%
def residual_network(blocks=DEPTH // 2):
    """A Dense layer, then `blocks` residual blocks of two Dense layers (sigmoid, then linear) around
    an identity shortcut, then 10 logits: as many weight layers as the plain network, plus two."""
    layers = [nn.Input((64,)), nn.Dense(WIDTH)]
    layers += [nn.Residual([nn.Dense(WIDTH, activation="sigmoid"), nn.Dense(WIDTH)], activation=None)
               for _ in range(blocks)]
    return nn.Sequential(layers + [nn.Dense(10)])


nn.set_seed(0)
residual = residual_network()
image = batch_x[:1].astype(np.float64)


def layer_input(model, layer):
    with ad.no_grad():
        return np.asarray(model.forward_until(image, layer).value, dtype=np.float64) if layer is not None else image


def jacobian_of(layer, h):
    """d layer(h) / d h for one example: (64, 64), by the engine, as a NumPy array."""
    with_params = lambda v: ad.reshape(layer(ad.reshape(v, (1, -1))), (-1,))       # noqa: E731
    jacobian = ad.jacobian(with_params)(h[0])   # a Tensor: it depends on the layer's parameters too
    return np.asarray(jacobian.value if isinstance(jacobian, ad.Tensor) else jacobian)


plain_layer = plain.layers[15]
residual_block = residual.layers[8]
J_plain = jacobian_of(plain_layer, layer_input(plain, plain.layers[14]))
J_residual = jacobian_of(residual_block, layer_input(residual, residual.layers[7]))
s_plain, s_residual = np.linalg.svd(J_plain, compute_uv=False), np.linalg.svd(J_residual, compute_uv=False)
print(f"singular values of one layer's Jacobian: plain sigmoid layer {s_plain.min():.3f} to {s_plain.max():.3f}; "
      f"residual block {s_residual.min():.3f} to {s_residual.max():.3f}")
assert s_plain.max() < 1                                  # every direction shrinks, at every layer
assert s_residual.min() > 0.3 and s_residual.max() > 1    # around 1: the identity dominates

# %% [markdown]
# No direction survives a plain sigmoid layer at full size: even the largest singular value is
# below 1, and thirty such factors in a row shrink every gradient by orders of magnitude. The
# residual block's singular values sit around 1.
#
# ## 4. The same depth with residual connections
#
# `nn.Residual(layers, activation=None)` adds its input to the output of `layers` (an identity
# shortcut; pass `shortcut=[...]` when the shapes differ, as `nn.models.resnet_small` does for its
# strided convolutions). Fifteen blocks of two Dense layers make the same 30 hidden weight layers.
# `layer_gradient_norms` reports a block's two weight matrices together.

# %%
residual_norms = np.array(list(layer_gradient_norms(residual, batch_x, batch_y).values()))[1:-1]   # the 15 blocks
spread = residual_norms.max() / residual_norms.min()
print(f"residual: the blocks' gradient norms range from {residual_norms.min():.2f} to {residual_norms.max():.2f} "
      f"(a factor {spread:.2f}); plain: a factor {plain_norms.max() / plain_norms.min():.1e}")
assert spread < 10                                       # within an order of magnitude, 30 layers deep

fig, ax = plt.subplots(figsize=(7.5, 4))
ax.semilogy(np.arange(1, DEPTH + 1), plain_norms, "o-", ms=3, label="plain: 30 sigmoid layers")
ax.semilogy(np.arange(2, DEPTH + 1, 2), residual_norms, "s-", ms=4, label="residual: 15 blocks of 2 layers")
ax.semilogy(np.arange(1, DEPTH + 1), plain_norms[-1] * 0.25 ** (DEPTH - np.arange(1, DEPTH + 1)), ":", color="0.5",
            label="(1/4) per layer")
ax.set_xlabel("layer (1 = next to the input)")
ax.set_ylabel("||dL/dW||")
ax.set_title("Vanishing gradients, and residual connections")
ax.legend(fontsize=9)
fig.tight_layout()
show_figure(fig, OUT / "gradient_norms.svg")

# %% [markdown]
# ## 5. Training them
#
# The lecture's ResNet slides show deeper *plain* networks with a higher training error than
# shallower ones ("the degradation problem"), and residual networks without it. Five epochs of plain
# SGD (learning rate 0.03, mini-batches of 32) on all 1,797 digits, for the plain 30-layer network,
# the residual one, and a plain network with a single sigmoid layer.
#
# The two deep ones are watched while they train: `nn.LiveView` is a callback of `fit` that, in a
# notebook, draws one figure and updates it in place (at every epoch's end, and in between as often as
# 2% of the training's time allows): the loss and accuracy per batch and per epoch, each layer's
# $\|\partial L/\partial W\|$ as the last training step left it (section 2's measurement, taken during
# the training) and the histograms of the layers' activations on the 256 digits of section 2 (lesson
# 2's experiment). Run as a script, it is a progress bar. Watch the plain network's gradient panel: a
# straight line on the log scale, epoch after epoch, layer 1 some eighteen orders of magnitude below
# layer 30; the residual network's stays flat.

# %%
def train(model, callbacks=()):
    return nn.fit(model, (x_flat, y), optimizer=nn.optim.SGD(model.parameters(), lr=0.03), epochs=5, batch_size=32,
                  seed=0, verbose=0, callbacks=list(callbacks))


runs, views = {}, {}
for name, build in (("plain, 30 layers", plain_network), ("residual, 15 blocks", residual_network),
                    ("plain, 1 layer", lambda: plain_network(depth=1))):
    nn.set_seed(0)
    watched = name != "plain, 1 layer"
    views[name] = nn.LiveView(sample=batch_x) if watched else None      # a figure in a notebook, a bar in a script
    runs[name] = train(build(), [views[name]] if watched else [])
    print(f"{name:20s}: training loss per epoch " + " ".join(f"{v:.3f}" for v in runs[name]["loss"])
          + f"; accuracy {runs[name]['accuracy'][-1]:.3f}")
chance = np.log(10)                                       # the loss of a uniform guess over 10 classes
assert runs["plain, 30 layers"]["loss"][-1] > 0.95 * chance            # stuck at guessing
assert runs["residual, 15 blocks"]["loss"][-1] < 0.5 * chance          # learns
assert runs["plain, 1 layer"]["loss"][-1] < 0.8 * chance               # depth, not the sigmoid, is the problem
assert runs["residual, 15 blocks"]["loss"][-1] < runs["plain, 1 layer"]["loss"][-1]

# what the live views recorded at each refresh: the 30 hidden layers' norms, and the 15 blocks'
plain_live = np.array([list(norms.values())[:DEPTH] for norms in views["plain, 30 layers"].gradient_norms])
residual_live = np.array([list(norms.values())[1:-1] for norms in views["residual, 15 blocks"].gradient_norms])
print(f"during training ({len(plain_live)} refreshes): layer 1 / layer 30 in the plain network from "
      f"{(plain_live[:, 0] / plain_live[:, -1]).min():.1e} to {(plain_live[:, 0] / plain_live[:, -1]).max():.1e}; "
      f"the residual blocks' spread at most {(residual_live.max(axis=1) / residual_live.min(axis=1)).max():.2f}")
assert len(plain_live) >= 5 and np.all(plain_live[:, 0] / plain_live[:, -1] < 1e-12)   # vanishing, all along
assert np.all(residual_live.max(axis=1) / residual_live.min(axis=1) < 10)              # flat, all along

fig, ax = plt.subplots(figsize=(6.5, 3.8))
for name, history in runs.items():
    ax.plot(np.arange(1, 6), history["loss"], "o-", label=name)
ax.axhline(chance, color="0.5", ls=":", lw=1)
ax.text(1, chance * 1.03, "ln 10: guessing", color="0.4", fontsize=8)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.set_title("SGD, lr 0.03: depth without shortcuts does not train")
ax.legend(fontsize=9)
fig.tight_layout()
show_figure(fig, OUT / "training.svg")

# %% [markdown]
# The plain 30-layer network stays at the loss of a uniform guess, $\ln 10 = 2.30$: its first
# layers receive no gradient to speak of. The residual network with as many weight layers learns,
# faster even than the shallow one: the shortcuts make the deep network behave at first like a
# shallow one, and the blocks add what is missing. This is why ResNet could go to 152 layers;
# `nn.models.resnet_small` is a small one for 28x28 images, with convolutions and batch
# normalisation (section 5.2.4) in its blocks:

# %%
resnet = nn.models.resnet_small()
blocks = [layer for layer in resnet.layers if isinstance(layer, nn.Residual)]
print(f"nn.models.resnet_small: {resnet.count_params():,} parameters, {len(blocks)} residual blocks, "
      f"{sum(b.shortcut is not None for b in blocks)} with a strided 1x1 convolution as shortcut")
assert len(blocks) == 3 and resnet.layers[-1].output_shape == (10,)

# %% [markdown]
# ## Exercises
#
# Checked (`chainrule/exercises/cnn.py`; answers in `chainrule/exercises/solutions/cnn.py`):
#
# 1. **The backward pass of a residual block.** $\mathbf{y} = \mathbf{x} + \mathrm{relu}(\mathbf{x}W_1)W_2$
#    for a batch `x` (N, D), `W1` (D, H), `W2` (H, D): write `residual_block_vjp(x, W1, W2, g)`
#    returning `(dx, dW1, dW2)` given $\mathbf{g} = \partial L/\partial\mathbf{y}$. Where does the
#    shortcut appear in `dx`? (The forward is `residual_block` in the exercises module; the checker
#    compares with the engine's reverse sweep, as in the differentiation lessons.)
#
# Without a checker:
#
# 2. Repeat section 2 with `activation="tanh"`. Do the gradients vanish at initialisation? (Lesson
#    2's Xavier experiment has the answer.) And with `activation="relu", init="he_normal"`?
# 3. Put a `nn.BatchNorm()` after each Dense layer of the plain 30-layer network (build it with
#    `nn.Sequential`). Does it train now?
# 4. Train the residual network with SGD and momentum 0.9 at learning rate 0.1. What happens, and
#    why does the sum of 15 blocks' outputs make it likely? (A common remedy: initialise the last
#    layer of each block at 0, so that every block starts as the identity.)

# %%
from chainrule.exercises import attempt
from chainrule.exercises.cnn import check_residual_block, residual_block  # noqa: F401 (the forward, for you)


def residual_block_vjp(x, W1, W2, g):
    raise NotImplementedError  # your code here


print(attempt(check_residual_block, residual_block_vjp))

# %% The answer passes the same check (chainrule/exercises/solutions/cnn.py: read it after trying).
from chainrule.exercises.solutions.cnn import SOLUTIONS

assert check_residual_block(SOLUTIONS["residual_block"]).passed
