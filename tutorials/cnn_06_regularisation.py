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
# # Lesson 6: regularisation
#
# *Follows the book's section 5.2: data augmentation (5.2.1, Fig. 5.1), dropout (5.2.2, eqs.
# 5.3-5.5), drop-connect (5.2.3, eqs. 5.6-5.7), batch normalisation (5.2.4, eqs. 5.8-5.11), ensemble
# model averaging (5.2.5), the L2, L1 and elastic-net penalties (5.2.6-5.2.8, eqs. 5.12-5.14),
# max-norm constraints (5.2.9) and early stopping (5.2.10, Fig. 5.2); and Tomasi's "early
# termination".*
#
# "Since deep neural networks have a large number of parameters, they tend to over-fit on the
# training data." To see regularisation work we need over-fitting first, so we make it happen on
# purpose: 150 training digits (15 of each class) and a network with about 85,000 parameters, two
# hidden layers of 256 ReLU units, trained with Adam for 30 epochs. 500 other digits are the
# validation set. Then we add one regulariser at a time and measure what changes: the validation
# accuracy and loss, and what each one does to the weights.
#
# A warning that is also a lesson: on a problem this small the differences in validation accuracy
# between the methods are a few of the 500 validation images, comparable to the differences between
# two runs that differ only in their random seed (the five members of the ensemble below show how
# large those are). The table reports them; the checks only assert what each method reliably does.
#
# Pictures go to `tutorials/_output/cnn_06_regularisation/` (or `$TUTORIAL_OUTPUT`).

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
from nn import augment, regularizers

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "cnn_06_regularisation"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## The over-fitting setting

# %%
x, y = nn.load_digits()
x_rest, x_small, y_rest, y_small = nn.data.train_test_split(x, y, test_size=150, stratify=True, seed=0)
_, x_val, _, y_val = nn.data.train_test_split(x_rest, y_rest, test_size=500, stratify=True, seed=1)
assert np.all(np.bincount(y_small) == 15)
flat_small, flat_val = x_small.reshape(150, -1), x_val.reshape(500, -1)
EPOCHS, WIDTH = 30, 256


def wide_mlp(hidden="dense", dropout=0.0):
    """64 -> 256 -> 256 -> 10, ReLU; hidden layers Dense, DropConnect or Dense + BatchNorm."""
    layers = [nn.Input((64,))]
    for _ in range(2):
        if hidden == "dropconnect":
            layers.append(nn.DropConnect(WIDTH, rate=0.5, activation="relu"))
        elif hidden == "batchnorm":              # "applied after the weight layers, before the non-linearity"
            layers += [nn.Dense(WIDTH), nn.BatchNorm(), nn.ReLU()]
        else:
            layers.append(nn.Dense(WIDTH, activation="relu"))
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(layers + [nn.Dense(10)])


def train(model, seed=0, epochs=EPOCHS, **options):
    """Adam, lr 3e-3, batches of 32; the validation set evaluated after every epoch."""
    return nn.fit(model, (flat_small, y_small), optimizer=nn.optim.Adam(model.parameters(), lr=3e-3), epochs=epochs,
                  batch_size=32, validation=(flat_val, y_val), seed=seed, verbose=0, **options)


def weights(model):
    return np.concatenate([p.value.ravel() for p in regularizers.penalised_parameters(model).values()])


results = {}


def record(name, model, history):
    w = weights(model)
    results[name] = dict(model=model, history=history, train_acc=nn.evaluate(model, (flat_small, y_small))["accuracy"],
                         val_acc=history["val_accuracy"][-1], val_loss=history["val_loss"][-1],
                         norm2=float(np.sum(w.astype(np.float64) ** 2)), zeros=float(np.mean(np.abs(w) < 1e-3)))


nn.set_seed(0)
baseline = wide_mlp()
print(f"{baseline.count_params():,} parameters, {len(y_small)} training images")
assert baseline.count_params() == (64 + 1) * WIDTH + (WIDTH + 1) * WIDTH + (WIDTH + 1) * 10   # weights and biases
record("none", baseline, train(baseline))
base = results["none"]
best_epoch = int(np.argmin(base["history"]["val_loss"]))
print(f"no regularisation: training accuracy {base['train_acc']:.3f}, validation accuracy {base['val_acc']:.3f}; "
      f"validation loss lowest at epoch {best_epoch + 1} ({min(base['history']['val_loss']):.3f}), "
      f"{base['val_loss']:.3f} at the end")
assert base["train_acc"] == 1.0                                               # it learned the training set ...
assert base["val_loss"] > 1.05 * min(base["history"]["val_loss"])            # ... and over-fits it
assert best_epoch < EPOCHS // 2

# %% [markdown]
# The training accuracy reaches 100% while the validation loss, after falling for the first epochs,
# rises again: the network keeps making its training answers more confident, including the ones
# that do not generalise. That is the situation of Fig. 5.2.
#
# ## Penalties on the weights: L2, L1, elastic net
#
# A penalty is added to the loss (eqs. 5.12-5.14); `nn.fit(..., regularizer=...)` adds it at every
# step. With the source's convention (section 5.2.6: "half of the squared magnitude times
# $\lambda$ is added to the error function"):
#
# - L2, $\frac{\lambda}{2}\sum w^2$, gradient $\lambda w$: every step also shrinks each weight in
#   proportion to its size, "weight decay";
# - L1, $\lambda\sum |w|$, gradient $\lambda\,\mathrm{sign}(w)$: the same pull for every weight, so
#   small weights reach 0 and stay there, "sparse weight vectors";
# - elastic net, both at once.
#
# They act on the *weights* (`*.weight` parameters), not on the biases.
#
# ## Max-norm
#
# Section 5.2.9: "an upper bound on the norm of the incoming weights of each neuron",
# $\|\mathbf{w}\|_2 \le c$, enforced after every step by scaling back the columns that grew too long
# (`nn.regularizers.MaxNorm`, a callback).

# %%
PENALTIES = {"L2 (lam 0.01)": regularizers.l2(1e-2), "L1 (lam 0.001)": regularizers.l1(1e-3),
             "elastic net (1e-4, 1e-3)": regularizers.elastic_net(l1=1e-4, l2=1e-3)}
for name, penalty in PENALTIES.items():
    nn.set_seed(0)
    model = wide_mlp()
    record(name, model, train(model, regularizer=penalty))

MAX_NORM = 1.0
nn.set_seed(0)
model = wide_mlp()
record(f"max-norm (c = {MAX_NORM:g})", model, train(model, callbacks=[regularizers.MaxNorm(MAX_NORM)]))
column_norms = np.concatenate([np.linalg.norm(p.value, axis=0)
                               for p in regularizers.penalised_parameters(model).values()])
base_norms = np.concatenate([np.linalg.norm(p.value, axis=0)
                             for p in regularizers.penalised_parameters(baseline).values()])
print(f"largest incoming-weight norm of a unit: {base_norms.max():.2f} without, {column_norms.max():.4f} with "
      f"max-norm (c = {MAX_NORM:g})")
assert column_norms.max() <= MAX_NORM * (1 + 1e-6) < base_norms.max()

l2_run, l1_run, net_run = (results[name] for name in PENALTIES)
assert l2_run["norm2"] < 0.5 * base["norm2"]                         # L2: smaller weights
assert l1_run["zeros"] > 0.5 and l1_run["zeros"] > 10 * base["zeros"]   # L1: most weights at (nearly) 0
assert net_run["norm2"] < base["norm2"] and net_run["zeros"] > 10 * base["zeros"]

fig, ax = plt.subplots(figsize=(7, 3.6))
bins = np.linspace(-0.4, 0.4, 81)
for name in ("none", *PENALTIES):
    ax.hist(weights(results[name]["model"]), bins=bins, histtype="step", lw=1.5, label=name)
ax.set_yscale("log")
ax.set_xlabel("weight value")
ax.set_title("Weights after training: L2 shrinks them all, L1 sets most to 0")
ax.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "weight_histograms.svg")

# %% [markdown]
# ## Dropout and drop-connect
#
# **Dropout** (5.2.2): in training, each unit's output is multiplied by a random mask
# $m_i \sim \mathrm{Bernoulli}(p)$ (eq. 5.5), a new one for every mini-batch; "this random sampling
# of a sub-network within the full-scale network introduces an ensemble effect during the testing
# phase, where the full network is used". `nn.Dropout(rate)` drops with probability `rate` and
# scales the survivors by $1/(1 - \text{rate})$ ("inverted" dropout), so that nothing changes at
# test time. **Drop-connect** (5.2.3, eq. 5.6) masks the *weights* instead:
# `nn.DropConnect(units, rate)` is a Dense layer with a new random mask on $W$ for every batch.
#
# Both are random only in training mode; in evaluation mode (`nn.predict`, `nn.evaluate`) the
# network is deterministic.

# %%
for name, options in (("dropout 0.5", dict(dropout=0.5)), ("drop-connect 0.5", dict(hidden="dropconnect"))):
    nn.set_seed(0)
    model = wide_mlp(**options)
    record(name, model, train(model))
    probe = flat_val[:5]
    model.train()
    with ad.no_grad():
        first, second = model(probe).value, model(probe).value             # two random sub-networks
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(nn.predict(model, probe), nn.predict(model, probe))   # the full network
    print(f"{name}: two training-mode passes differ by up to {np.abs(first - second).max():.2f}; "
          f"evaluation mode is deterministic")

# %% [markdown]
# ## Batch normalisation
#
# Section 5.2.4: normalise each unit's pre-activation over the mini-batch to zero mean and unit
# variance (eqs. 5.8-5.10), then scale and shift by learned $\gamma$ and $\beta$ (eq. 5.11). At test
# time there is no batch to take statistics from: the layer uses running averages of the training
# batches' means and variances instead (PyTorch's convention, `nn.BatchNorm`).

# %%
nn.set_seed(0)
model = wide_mlp(hidden="batchnorm")
record("batch norm", model, train(model))
bn = model.layers[2]                                              # after the first Dense layer
print(f"batch norm: running means from {bn.running_mean.min():.2f} to {bn.running_mean.max():.2f}, running "
      f"variances from {bn.running_var.min():.2f} to {bn.running_var.max():.2f} (they started at 0 and 1)")
assert isinstance(bn, nn.BatchNorm) and np.abs(bn.running_mean).max() > 0.01 and not np.allclose(bn.running_var, 1)
model.eval()                                                      # test time: the running statistics
with ad.no_grad():
    z = model.layers[1](flat_val).value                           # the first Dense layer's output, (500, 256)
    test_mode = bn.forward(z).value
    by_hand = (z - bn.running_mean) / np.sqrt(bn.running_var + 1e-5) * bn.gamma.value + bn.beta.value
    np.testing.assert_allclose(test_mode, by_hand, rtol=1e-4, atol=1e-4)
    batch_stats = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + 1e-5) * bn.gamma.value + bn.beta.value
    model.train()                                                 # training mode: eqs. 5.8-5.11 on this batch
    np.testing.assert_allclose(bn.forward(z).value, batch_stats, rtol=1e-3, atol=1e-3)
    model.eval()

# %% [markdown]
# ## Ensembles
#
# Section 5.2.5: "a number of models are learned instead of just a single model. Each model has
# different parameters due to different random initializations ... The output from these multiple
# models is then combined". `nn.regularizers.Ensemble` averages the members' predicted
# probabilities. Five networks that differ only in their random initialisation and mini-batch order:

# %%
members = [baseline]
for seed in range(1, 5):
    nn.set_seed(seed)
    member = wide_mlp()
    train(member, seed=seed)
    members.append(member)
ensemble = regularizers.Ensemble(members)
member_accuracy = [nn.evaluate(m, (flat_val, y_val))["accuracy"] for m in members]
ensemble_result = ensemble.evaluate(flat_val, y_val)
results["ensemble of 5"] = dict(train_acc=ensemble.evaluate(flat_small, y_small)["accuracy"],
                                val_acc=ensemble_result["accuracy"], val_loss=ensemble_result["loss"],
                                norm2=np.nan, zeros=np.nan)
print("members' validation accuracy: " + " ".join(f"{a:.3f}" for a in member_accuracy)
      + f"; the ensemble's: {ensemble_result['accuracy']:.3f}")
assert ensemble_result["accuracy"] >= np.mean(member_accuracy) - 0.01
assert ensemble_result["loss"] < np.mean([nn.evaluate(m, (flat_val, y_val))["loss"] for m in members])

# %% [markdown]
# The averaged probabilities are less over-confident than any single member's, so the ensemble's
# validation *loss* is below the members' average (a consequence of the convexity of $-\log$);
# the accuracy is at least that of a typical member.
#
# ## Early stopping (Fig. 5.2)
#
# Section 5.2.10: evaluate the validation set during training, and stop when it stops improving;
# Tomasi: "one monitors the [error] on a validation set ... and stops when the validation-set error
# bottoms out, even if the training-set risk would continue to decrease". `nn.EarlyStopping` watches
# `val_loss`, stops after `patience` epochs without improvement, and with
# `restore_best_weights=True` returns the weights of the best epoch.

# %%
nn.set_seed(0)
model = wide_mlp()
stopper = nn.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
history = train(model, callbacks=[stopper])
restored = nn.evaluate(model, (flat_val, y_val))
print(f"early stopping: stopped after epoch {stopper.stopped_epoch + 1}, restored epoch {stopper.best_epoch + 1}: "
      f"validation loss {restored['loss']:.4f} (the lowest of the run: {min(history['val_loss']):.4f})")
assert stopper.stopped_epoch is not None and len(history["loss"]) < EPOCHS
assert stopper.best_epoch == int(np.argmin(history["val_loss"]))
np.testing.assert_allclose(restored["loss"], min(history["val_loss"]), rtol=1e-6)
results["early stopping"] = dict(train_acc=nn.evaluate(model, (flat_small, y_small))["accuracy"],
                                 val_acc=restored["accuracy"], val_loss=restored["loss"],
                                 norm2=float(np.sum(weights(model).astype(np.float64) ** 2)),
                                 zeros=float(np.mean(np.abs(weights(model)) < 1e-3)))

fig, ax = plt.subplots(figsize=(7, 4))
epochs = np.arange(1, EPOCHS + 1)
ax.plot(epochs, base["history"]["loss"], label="training loss")
ax.plot(epochs, base["history"]["val_loss"], label="validation loss")
ax.axvline(stopper.best_epoch + 1, color="k", ls=":", lw=1)
ax.axvline(stopper.stopped_epoch + 1, color="C3", ls="--", lw=1)
ax.text(stopper.best_epoch + 2, 1.0, "best epoch\n(restored)", fontsize=8)
ax.text(stopper.stopped_epoch + 2, 0.5, f"stopped\n(patience {stopper.patience})", fontsize=8, color="C3")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_title("Fig. 5.2: stop when the validation loss stops improving")
ax.legend()
fig.tight_layout()
show_figure(fig, OUT / "early_stopping.svg")

# %% [markdown]
# ## Data augmentation
#
# Section 5.2.1: "making several copies from a single image using straightforward operations such
# as rotations, cropping, flipping, scaling, translations and shearing" (Fig. 5.1). `nn.augment`
# has each as a transform `t(x, rng)` of a batch, with its own random parameters per image. Not
# every one suits every data set: a flipped 2 is no digit.

# %%
rng = np.random.default_rng(0)
sample = x_small[:8]
TRANSFORMS = {
    "original": None,
    "crop (pad 1)": augment.RandomCrop(8, padding=1),
    "rotate 15": augment.RandomRotation(15),
    "flip": augment.RandomFlip(p=1.0),
    "shift 1": augment.RandomShift(1),
    "scale 0.15": augment.RandomScale(0.15),
    "shear 15": augment.RandomShear(15),
}
fig, axes = plt.subplots(len(TRANSFORMS), len(sample), figsize=(8, 7.5))
for row, (name, transform) in zip(axes, TRANSFORMS.items()):
    images = sample if transform is None else transform(sample, rng)
    assert images.shape == sample.shape and images.dtype == sample.dtype
    for ax, image in zip(row, images):
        ax.imshow(image[0], cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(name, fontsize=9, rotation=0, ha="right", va="center")
fig.suptitle("nn.augment on eight training digits (Fig. 5.1's operations)")
fig.tight_layout()
show_figure(fig, OUT / "augmentation.svg")
flipped = augment.random_flip(sample, 0, p=1.0)
np.testing.assert_array_equal(flipped, sample[..., ::-1])

# %% [markdown]
# Shifting and rotating change *where* the strokes are, which a convolutional network is built to
# cope with, so we use the CNN of lesson 5 (`nn.models.digits_cnn`) for this one: trained on the
# same 150 images, once as they are and once with a new random rotation (up to 10 degrees) and
# shift (up to one pixel) of every image in every epoch. `nn.fit` takes arrays, so the loop over
# epochs is ours; the optimiser, passed as an object, keeps its state from one call to the next.

# %%
def train_cnn(transform, epochs=60, seed=0):
    nn.set_seed(seed)
    cnn = nn.models.digits_cnn()
    optimiser = nn.optim.Adam(cnn.parameters(), lr=1e-3)
    generator = np.random.default_rng(seed)
    for _ in range(epochs):
        images = x_small if transform is None else transform(x_small, generator)
        nn.fit(cnn, (images, y_small), optimizer=optimiser, epochs=1, batch_size=32, seed=generator, verbose=0)
    return nn.evaluate(cnn, (x_small, y_small))["accuracy"], nn.evaluate(cnn, (x_val, y_val))


cnn_plain = train_cnn(None)
cnn_augmented = train_cnn(augment.RandomAffine(degrees=10, max_shift=1))
for name, (train_acc, val) in (("CNN", cnn_plain), ("CNN + augmentation", cnn_augmented)):
    results[name] = dict(train_acc=train_acc, val_acc=val["accuracy"], val_loss=val["loss"], norm2=np.nan, zeros=np.nan)
    print(f"{name:19s}: training accuracy {train_acc:.3f}, validation accuracy {val['accuracy']:.3f}")
assert cnn_augmented[1]["accuracy"] >= cnn_plain[1]["accuracy"] - 0.03
assert cnn_augmented[0] <= cnn_plain[0]               # the augmented task is harder to fit
assert cnn_plain[1]["accuracy"] >= max(r["val_acc"] for r in results.values()) - 0.01

# %% [markdown]
# Every epoch the augmented network sees a new, harder version of the training set, so it fits the
# originals less perfectly; in 60 epochs it has not overtaken the plain CNN on the validation set
# (exercise 5 trains longer). The CNN itself, with a quarter of the parameters (21,000, shared
# across image positions), does as well as the best-regularised dense network: the architecture is
# a regulariser too.

# %% [markdown]
# ## All of it in one table

# %%
print(f"{'regularisation':26s}{'train acc':>10s}{'val acc':>9s}{'val loss':>10s}{'sum w^2':>10s}{'|w| < 1e-3':>12s}")
for name, r in results.items():
    extra = "" if np.isnan(r["norm2"]) else f"{r['norm2']:10.1f}{r['zeros']:12.1%}"
    print(f"{name:26s}{r['train_acc']:10.3f}{r['val_acc']:9.3f}{r['val_loss']:10.3f}{extra}")

# %% [markdown]
# What to read in it: every method fits the 150 training images (nearly) perfectly; the penalties
# change the weights profoundly (a fraction of the squared norm with L2, most weights at 0 with L1),
# while the validation accuracy moves by a few images either way, within the noise of this setting.
# The validation *loss* is where the over-fitting showed, and most methods lower it, batch
# normalisation clearly; drop-connect, which drops half of every unit's weights at every step,
# learns more slowly and would need more than 30 epochs. With 150 images there is only so much to
# generalise from: more data is the regulariser that no method replaces. The book's list is a
# toolbox, to be tried on the validation set, not a recipe.

# %%
lower = [name for name, r in results.items() if r["val_loss"] < base["val_loss"]]
print(f"validation loss below the unregularised network's: {len(lower)} of {len(results) - 1} ({', '.join(lower)})")
assert len(lower) > (len(results) - 1) / 2 and results["batch norm"]["val_loss"] < 0.9 * base["val_loss"]
assert min(r["train_acc"] for r in results.values()) > 0.95

# %% [markdown]
# ## Exercises
#
# Checked (`chainrule/exercises/cnn.py`; answers in `chainrule/exercises/solutions/cnn.py`):
#
# 1. **The elastic-net gradient.** `elastic_net_grad(w, l1, l2)`: the gradient of
#    $l_1\sum|w| + \frac{l_2}{2}\sum w^2$ with respect to `w` (no weight is exactly 0). The checker
#    compares it with the engine's gradient of `nn.regularizers.elastic_net_penalty`.
# 2. **Max-norm by hand.** `max_norm(w, c)` returns a copy of the dense weight `w` (inputs x units)
#    whose columns longer than `c` are scaled back to length `c`; the others stay exactly as they
#    are. The checker compares with `nn.regularizers.max_norm_`.
#
# Without a checker:
#
# 3. Repeat the table with `seed=1` and `seed=2`. Which differences survive?
# 4. Combine dropout with max-norm (Srivastava et al. use $c$ between 3 and 4). Does the
#    validation loss improve over either alone?
# 5. Train the CNN with augmentation for 150 epochs instead of 60. Does it now beat the plain CNN?

# %%
from chainrule.exercises import attempt
from chainrule.exercises.cnn import check_elastic_net_grad, check_max_norm


def elastic_net_grad(w, l1, l2):
    raise NotImplementedError  # your code here


def max_norm(w, c):
    raise NotImplementedError  # your code here


for check, answer in [(check_elastic_net_grad, elastic_net_grad), (check_max_norm, max_norm)]:
    print(attempt(check, answer))

# %% The answers pass the same checks (chainrule/exercises/solutions/cnn.py: read them after trying).
from chainrule.exercises.solutions.cnn import SOLUTIONS

assert check_elastic_net_grad(SOLUTIONS["elastic_net_grad"]).passed and check_max_norm(SOLUTIONS["max_norm"]).passed
