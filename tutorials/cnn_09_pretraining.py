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
# # Lesson 9: pre-training and fine-tuning
#
# *Follows the book's sections 5.1.4 (unsupervised pre-training), 5.1.8 (supervised pre-training)
# and 5.1.6 (ReLU-aware initialisation), with Bengio et al. (2007) for the greedy layer-wise
# auto-encoders.*
#
# "One approach to avoid the gradient diminishing or exploding problem is to use layer-wise
# pre-training in an unsupervised fashion" (5.1.4), and when "we do not have a large amount of data
# available for a specific problem setting", "first train the network on a related problem, where
# a large amount of training data is available", then fine-tune it (5.1.8). We measure both on one
# small problem, with the tools of `nn.transfer`:
#
# 1. the problem: a deep sigmoid network, 50 labelled digits (ten each of 5 to 9); the gradient
#    shrinks layer by layer towards the input, and trained from scratch the network stays at chance;
# 2. unsupervised greedy layer-wise pre-training (`pretrain_layerwise`) on the unlabelled images,
#    then supervised fine-tuning: from chance to well over 80% held-out accuracy;
# 3. supervised pre-training on a related problem (the digits 0 to 4, with all their labels), a new
#    head (`replace_head`) and fine-tuning; and with the body frozen (`freeze`), the head alone;
# 4. what replaced pre-training: ReLU and He's initialisation (eq. 5.2), trained from scratch.
#
# Pictures go to `tutorials/_output/cnn_09_pretraining/` (or `$TUTORIAL_OUTPUT`).

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

import nn
from nn.transfer import freeze, pretrain_layerwise, replace_head, trainable_parameters

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "cnn_09_pretraining"
OUT.mkdir(parents=True, exist_ok=True)
SEED = 0          # the claims below hold for seeds 0, 1 and 2 (checked when the lesson was written)

# %% [markdown]
# ## 1. The problem: a deep sigmoid network and 50 labels
#
# The digits 5 to 9 are our task, with ten labelled images of each (50 in all); the other 846
# images of 5 to 9 are held out to measure the accuracy. The network has four hidden layers of 64
# sigmoid units (Glorot's initialisation) and a soft-max output, and is trained with SGD and
# momentum 0.9 at learning rate 0.1, 30 epochs of mini-batches of 16: the setting of the years
# before ReLU.

# %%
x, y = nn.load_digits()
x = ((x - x.mean()) / x.std()).astype(np.float32).reshape(len(x), -1)     # 1,797 images of 64 pixels
source, target = np.flatnonzero(y < 5), np.flatnonzero(y >= 5)
rng = np.random.default_rng(SEED)
labelled = np.concatenate([rng.choice(target[y[target] == c], 10, replace=False) for c in range(5, 10)])
held = np.setdiff1d(target, labelled)
few = (x[labelled], y[labelled] - 5)               # classes 5..9 as 0..4
held_out = (x[held], y[held] - 5)
print(f"{len(labelled)} labelled images of 5-9, {len(held)} held out; {len(source)} images of 0-4")


def deep(activation="sigmoid", initializer="glorot_uniform"):
    nn.set_seed(SEED)
    return nn.Sequential([nn.Input((64,))] +
                         [nn.Dense(64, activation=activation, kernel_initializer=initializer) for _ in range(4)] +
                         [nn.Dense(5, activation="softmax")])


def fine_tune(model, lr=0.1):
    """30 epochs of SGD with momentum 0.9 on the 50 labels; the held-out accuracy after each epoch."""
    optimizer = nn.optim.SGD(trainable_parameters(model), lr=lr, momentum=0.9)
    history = nn.fit(model, few, optimizer=optimizer, epochs=30, batch_size=16, validation=held_out, verbose=0,
                     seed=SEED)
    return history["val_accuracy"]


scratch_model = deep()
loss = nn.functional.softmax_cross_entropy(scratch_model.forward(few[0], logits=True), few[1])
loss.backward()
gradients = [float(np.linalg.norm(layer.weight.grad)) for layer in scratch_model.layers[1:]]
scratch_model.zero_grad()
print("gradient norm of each layer's weights at initialisation, input side first:",
      " ".join(f"{g:.4f}" for g in gradients))
assert all(a < b for a, b in zip(gradients, gradients[1:]))      # smaller and smaller towards the input
assert gradients[0] < gradients[-1] / 30

curves = {"from scratch": fine_tune(scratch_model)}
print(f"from scratch: held-out accuracy {curves['from scratch'][-1]:.3f} after 30 epochs (chance: 0.2)")
assert curves["from scratch"][-1] < 0.3

# %% [markdown]
# The gradient reaching the first layer is a hundred times smaller than the last layer's: each
# sigmoid multiplies it by its derivative, at most 1/4 (lesson 7 measures the same factor in a
# 30-layer network). With 50 examples and these small steps the network does not get going: after
# 30 epochs it still guesses.
#
# ## 2. Unsupervised greedy layer-wise pre-training (5.1.4)
#
# Labels are scarce, images are not: all 1,797 images may be used *without* their labels. Greedy
# layer-wise pre-training trains one layer at a time as an auto-encoder: the first hidden layer
# learns to encode the 64 pixels so that a linear decoder can rebuild them (the mean squared error
# is minimised); the second layer then learns to encode the first layer's output, and so on. Each
# layer starts the supervised training from weights that already describe the data, instead of
# from noise. `pretrain_layerwise(model, x)` does it for every hidden layer (the classifier is left
# to the fine-tuning), five epochs each with Adam, and returns each layer's reconstruction errors.

# %%
pretrained = deep()
report = pretrain_layerwise(pretrained, x, epochs=5, lr=3e-3, seed=SEED)
for stage in report:
    print(f"{stage['layer']:8s} reconstruction error per epoch: " + " ".join(f"{v:.4f}" for v in stage["loss"]))
assert [stage["layer"] for stage in report] == ["dense", "dense_1", "dense_2", "dense_3"]
assert all(stage["loss"][-1] < stage["loss"][0] for stage in report)
first_layer = pretrained.layers[1].weight.value.copy()

curves["unsupervised pre-training"] = fine_tune(pretrained)
print(f"after unsupervised pre-training: held-out accuracy {curves['unsupervised pre-training'][-1]:.3f}")
assert curves["unsupervised pre-training"][-1] > 0.8
assert curves["unsupervised pre-training"][-1] > curves["from scratch"][-1] + 0.5

# %% [markdown]
# The same network, the same 50 labels, the same optimiser: from chance to more than 80%. What the
# first layer learnt without labels can be looked at: each unit's 64 weights, drawn as an 8x8
# image, are a pattern of strokes it responds to.

# %%
fig, axes = plt.subplots(2, 8, figsize=(8, 2.3))
for k, ax in enumerate(axes.ravel()):
    ax.imshow(first_layer[:, k].reshape(8, 8), cmap="RdBu_r")
    ax.set_axis_off()
fig.suptitle("First-layer weights of 16 units after the auto-encoder pre-training (no labels used)")
fig.tight_layout()
show_figure(fig, OUT / "pretrained_filters.svg")

# %% [markdown]
# ## 3. Supervised pre-training and fine-tuning (5.1.8)
#
# The related problem with plenty of labels: the digits 0 to 4, all 901 of them labelled. We train
# the same network on it (with Adam, to its best), replace its head, the soft-max layer of the
# classes 0 to 4, by a new one for 5 to 9 (`replace_head`), and fine-tune the whole network on our
# 50 labels exactly as before.

# %%
source_model = deep()
nn.fit(source_model, (x[source], y[source]), optimizer=nn.optim.Adam(source_model.parameters(), lr=3e-3),
       epochs=10, batch_size=32, verbose=0, seed=SEED)
source_accuracy = nn.evaluate(source_model, (x[source], y[source]))["accuracy"]
learnt = source_model.state_dict()
print(f"trained on 0-4: accuracy {source_accuracy:.3f} on its own training set")
assert source_accuracy > 0.95

fine_tuned = replace_head(source_model, nn.Dense(5, activation="softmax"))
curves["supervised pre-training"] = fine_tune(fine_tuned)
print(f"pre-trained on 0-4, fine-tuned on 50 labels of 5-9: held-out accuracy "
      f"{curves['supervised pre-training'][-1]:.3f}")
assert curves["supervised pre-training"][-1] > curves["from scratch"][-1] + 0.5

# %% [markdown]
# Fine-tuning changed every layer. The other way keeps what was learnt and trains only the new
# head: `freeze(layers)` sets `requires_grad=False` on their parameters (PyTorch's
# `requires_grad_(False)`, Keras's `trainable = False`), so that the engine treats them as constants
# and the optimiser skips them.

# %%
source_model.load_state_dict(learnt, strict=False)        # the weights learnt on 0-4 again
head_only = replace_head(source_model, nn.Dense(5, activation="softmax"))
freeze(*head_only.layers[:-1])
head_only.summary()                       # Keras's split: frozen parameters count as non-trainable
assert sum(p.size for p in trainable_parameters(head_only)) == 64 * 5 + 5
curves["frozen body, new head"] = fine_tune(head_only)
assert all(np.array_equal(head_only.state_dict()[name], learnt[name]) for name in learnt
           if not name.startswith("dense_4"))                            # the body did not move
print(f"frozen body, head trained alone: held-out accuracy {curves['frozen body, new head'][-1]:.3f}")
assert curves["frozen body, new head"][-1] < curves["supervised pre-training"][-1] - 0.2

# %% [markdown]
# The frozen body is far worse than the fine-tuned one: its top layers were trained to tell 0 to 4
# apart, and what separates a 3 from a 4 is not what separates an 8 from a 9. Fine-tuning adapts
# them, starting from weights that already see digits. (On a large network trained on a large,
# varied source, ImageNet, the frozen features are general enough to be used as they are; the
# book's example is scene classification on MIT-67 from ImageNet's weights.)
#
# ## 4. What replaced pre-training
#
# "Due to the new hyper-parameters, the considerable amount of effort involved in such an approach
# and the availability of better initialization techniques, layer-wise pre-training is seldom used
# now" (5.1.4). The same four hidden layers with ReLU and He's initialisation (eq. 5.2, lesson 2),
# trained from scratch on the same 50 labels (at learning rate 0.01: ReLU's larger gradients
# diverge at 0.1):

# %%
curves["ReLU + He, from scratch"] = fine_tune(deep("relu", "he_normal"), lr=0.01)
for name, curve in curves.items():
    print(f"{name:28s} held-out accuracy after 30 epochs: {curve[-1]:.3f}")
assert curves["ReLU + He, from scratch"][-1] > curves["unsupervised pre-training"][-1] - 0.03

fig, ax = plt.subplots(figsize=(7.5, 4))
for name, curve in curves.items():
    ax.plot(np.arange(1, len(curve) + 1), curve, "o-", ms=2.5, label=name)
ax.axhline(0.2, color="0.6", lw=0.8, ls="--")
ax.set(xlabel="epoch of supervised training (50 labels)", ylabel="held-out accuracy (digits 5-9)",
       title="A deep sigmoid network: pre-trained or not", ylim=(0, 1))
ax.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "pretraining_curves.svg")

# %% [markdown]
# ReLU does not saturate and He's initialisation keeps the signal's variance from layer to layer,
# so the gradient reaches the first layer and no pre-training is needed: as good, with one
# training instead of five. Pre-training remains the tool of 5.1.8: when the data of the task
# are few and a related task has many, start from its weights.

# %% [markdown]
# ## Exercises
#
# Checked (`chainrule.exercises.cnn`; answers in `chainrule/exercises/solutions/cnn.py`):
#
# 1. **What freezing leaves to learn.** Write `transfer_params(widths, classes, frozen)` returning
#    `(trainable, non_trainable)`: the parameter counts of a stack of Dense layers (input width
#    `widths[0]`, hidden widths `widths[1:]`) whose head is replaced by `Dense(classes)`
#    (`replace_head`) and whose first `frozen` layers are frozen (`freeze`). Check it against
#    section 3's head-only network: `transfer_params([64] * 5, 5, 4)`. `check_transfer_params`
#    compares your numbers with what `nn.transfer` leaves trainable.
# 2. **The input of a pre-training stage.** Greedy layer-wise pre-training trains layer `k` on
#    what the layers before it, already trained, make of the data. Write
#    `layerwise_input(x, weights, biases, k)` for sigmoid Dense layers (`weights[i]` of shape
#    (in, units), as `nn.Dense` keeps it). `check_layerwise_input` compares it with `nn.Dense`.
#
# Without a checker:
#
# 3. Pre-train with `noise=0.3` (a *denoising* auto-encoder, Vincent et al. 2008: the layer sees a
#    corrupted input and must rebuild the clean one). Does the fine-tuned accuracy change?
# 4. Freeze only the first hidden layer of the network pre-trained on 0-4 (`freeze(model.layers[1])`)
#    and fine-tune the rest. Where between "frozen body" and "fine-tuned" does it land, and why?
# 5. Train the sigmoid network from scratch with Adam (lr 3e-3) instead of SGD. How much of the gap
#    of section 2 was the optimiser's?
# 6. Give the task 5 or 50 labels per class instead of 10: when does pre-training stop paying?

# %%
from chainrule.exercises import attempt
from chainrule.exercises.cnn import check_layerwise_input, check_transfer_params


def transfer_params(widths, classes, frozen):
    raise NotImplementedError  # your code here


def layerwise_input(x, weights, biases, k):
    raise NotImplementedError  # your code here


print(attempt(check_transfer_params, transfer_params))
print(attempt(check_layerwise_input, layerwise_input))

# %% The answers pass the same checks (chainrule/exercises/solutions/cnn.py: read them after trying).
from chainrule.exercises.solutions.cnn import SOLUTIONS

assert check_transfer_params(SOLUTIONS["transfer_params"]).passed
assert check_layerwise_input(SOLUTIONS["layerwise_input"]).passed
assert SOLUTIONS["transfer_params"]([64] * 5, 5, 4) == (64 * 5 + 5, head_only.count_params() - (64 * 5 + 5))
