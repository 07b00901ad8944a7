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
# # Lesson 5: training a CNN
#
# *Follows the lecture "Classification and Optimization in CNNs", "Training a CNN on MNIST with
# Keras" (the 34,826-parameter network, Adam, batch size 128), with the book's section 5.3
# (mini-batch gradient descent) and section 5.2.2 (dropout) and Tomasi's early termination in
# the background.*
#
# The lecture's network, layer by layer: two 3x3 convolutions with ReLU, each followed by 2x2
# max-pooling, dropout, and a dense soft-max layer. We build it, count its parameters, see why it
# does not fit the 8x8 digits that ship with the toolkit, train the small `digits_cnn` instead and
# look at what it learned: the loss and accuracy curves, the confusion matrix, the digits it gets
# wrong, the filters of its first layer. Then we time the same training on two kernel backends,
# and, if you have MNIST, train the lecture's network on it.
#
# Runs in about half a minute. Environment variables:
#
# - `MNIST_DIR=/path/to/mnist`: a folder with MNIST's IDX files (`t10k-images-idx3-ubyte.gz`, ...).
#   With only the 10,000 test images there, the lecture's network trains on 8,000 of them and is
#   tested on the other 2,000 (3 epochs, about 20 s more);
# - `TUTORIAL_FULL=1`: train longer: the digits 30 epochs, MNIST 12 epochs (about a minute more on
#   8,000 images, several minutes on all 60,000).
#
# Pictures go to `tutorials/_output/cnn_05_training/` (or `$TUTORIAL_OUTPUT`).

# %%
import os
import sys
import time
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
from nn.plot import save_history_svg   # `import nn` does not load nn.plot

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "cnn_05_training"
OUT.mkdir(parents=True, exist_ok=True)
FULL = os.environ.get("TUTORIAL_FULL", "") not in ("", "0")
MNIST_DIR = os.environ.get("MNIST_DIR")

# %% [markdown]
# ## 1. The lecture's Keras CNN
#
# ```python
# model = keras.Sequential([keras.Input(shape=input_shape),
#     layers.Conv2D(32, kernel_size=(3, 3), activation="relu"), layers.MaxPooling2D(pool_size=(2, 2)),
#     layers.Conv2D(64, kernel_size=(3, 3), activation="relu"), layers.MaxPooling2D(pool_size=(2, 2)),
#     layers.Flatten(), layers.Dropout(0.5), layers.Dense(num_classes, activation="softmax")])
# ```
#
# is `nn.models.keras_mnist_cnn()`, with the same layer names and arguments; `nn` is channels-first
# (NCHW), so the lecture's output shape (None, 13, 13, 32) reads (None, 32, 13, 13) here.

# %%
cnn = nn.models.keras_mnist_cnn()
cnn.summary()

# Each convolution has (3 x 3 x C_in + 1) x C_out parameters (weights and one bias per filter);
# the dense layer (1600 + 1) x 10. The lecture's total: 34,826.
counts = [layer.count_params() for layer in cnn.layers if layer.count_params()]
assert counts == [(3 * 3 * 1 + 1) * 32, (3 * 3 * 32 + 1) * 64, (5 * 5 * 64 + 1) * 10] == [320, 18496, 16010]
assert cnn.count_params() == 34826
assert [layer.output_shape for layer in cnn.layers[1:5]] == [(32, 26, 26), (32, 13, 13), (64, 11, 11), (64, 5, 5)]

# %% [markdown]
# ## 2. The 8x8 digits: a network that fits
#
# The lecture trains on MNIST's 28x28 images; the toolkit ships the 1,797 8x8 digits, which train in
# seconds. Does the lecture's network fit them? Each unpadded 3x3 convolution removes 2 pixels and
# each pooling halves: $8 \to 6 \to 3 \to 1$, and the second pooling has nothing left to pool.

# %%
try:
    nn.models.keras_mnist_cnn(input_shape=(1, 8, 8))
    raise RuntimeError("the lecture's network should not fit 8x8 images")
except ValueError as err:
    print(f"keras_mnist_cnn(input_shape=(1, 8, 8)): {err}")
    assert "MaxPool2D" in str(err)

# %% [markdown]
# `nn.models.digits_cnn` is the same design with `padding="same"` (each convolution keeps the size:
# $8 \to 8 \to 4 \to 4 \to 2$), dropout 0.25 and He initialisation (eq. 5.2, lesson 2):

# %%
model = nn.models.digits_cnn()
model.summary()
assert model.count_params() == 21386 and model.layers[-1].input_shape == (64 * 2 * 2,)

# %% [markdown]
# ## 3. Training
#
# The digits are split once, stratified (lesson 4): 70% to learn from, 10% to watch during training
# (validation), 20% held out for the end. `nn.fit` runs mini-batch gradient descent (section 5.3.3)
# with Adam (section 5.4.6, the lecture's optimiser; lesson 3), the fused soft-max cross-entropy on
# the network's logits, and evaluates the validation set after every epoch.

# %%
x, y = nn.load_digits()
x_train, x_val, x_test, y_train, y_val, y_test = nn.data.train_val_test_split(x, y, val_size=0.1, test_size=0.2,
                                                                               stratify=True, seed=0)
print(f"train {len(x_train)}, validation {len(x_val)}, test {len(x_test)} images of shape {x.shape[1:]}")

EPOCHS = 30 if FULL else 15
nn.set_seed(0)
model = nn.models.digits_cnn()
initial = {name: p.value.copy() for name, p in model.named_parameters() if name.endswith("weight")}
initial_filters = initial["conv2d.weight"]
start = time.perf_counter()
history = nn.fit(model, (x_train, y_train), optimizer=nn.optim.Adam(model.parameters(), lr=1e-3), epochs=EPOCHS,
                 batch_size=32, validation=(x_val, y_val), seed=0, verbose=2)
print(f"{EPOCHS} epochs in {time.perf_counter() - start:.1f} s")
test = nn.evaluate(model, (x_test, y_test))
print(f"held-out test set: loss {test['loss']:.4f}, accuracy {test['accuracy']:.4f}")
assert test["accuracy"] >= 0.97
assert history["loss"][-1] < 0.2 * history["loss"][0]

# %% [markdown]
# The training accuracy of each epoch is a running mean over its mini-batches, with dropout
# active (as Keras reports it); the validation accuracy is measured after the epoch, in evaluation
# mode (no dropout). That is why validation can be *higher* than training early on.
#
# `nn.plot.save_history_svg` draws the curves without matplotlib (the `chainrule train` command
# writes the same picture); here both:

# %%
save_history_svg(history, OUT / "history_nn_plot.svg")
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
epochs = np.arange(1, len(history["loss"]) + 1)
left.plot(epochs, history["loss"], "o-", ms=3, label="training")
left.plot(epochs, history["val_loss"], "o-", ms=3, label="validation")
left.set_yscale("log")
left.set_title("loss (soft-max cross-entropy)")
right.plot(epochs, history["accuracy"], "o-", ms=3, label="training (dropout on)")
right.plot(epochs, history["val_accuracy"], "o-", ms=3, label="validation")
right.axhline(test["accuracy"], color="k", ls=":", lw=1, label=f"test: {test['accuracy']:.3f}")
right.set_title("accuracy")
for ax in (left, right):
    ax.set_xlabel("epoch")
    ax.legend(fontsize=9)
fig.tight_layout()
show_figure(fig, OUT / "history.svg")

# %% [markdown]
# ## 4. Which digits does it confuse?
#
# A confusion matrix counts, for every true class (row) and predicted class (column), the test
# images with that pair; the diagonal holds the correct ones, so its sum over the total is the
# accuracy. (Writing it is this lesson's exercise.)

# %%
probabilities = nn.predict(model, x_test)
predicted = probabilities.argmax(axis=1)
confusion = np.zeros((10, 10), dtype=np.int64)
np.add.at(confusion, (y_test, predicted), 1)
assert confusion.sum() == len(y_test) and np.isclose(np.trace(confusion) / len(y_test), test["accuracy"])
errors = confusion - np.diag(np.diag(confusion))
worst = np.unravel_index(errors.argmax(), errors.shape)
print("rows: true class, columns: predicted class")
print("     " + "".join(f"{c:4d}" for c in range(10)))
for c, row in enumerate(confusion):
    print(f"{c:4d} " + "".join(f"{v:4d}" for v in row))
print(f"the most frequent confusion: {worst[0]} taken for {worst[1]}, {errors[worst]} of the "
      f"{confusion[worst[0]].sum()} test images of {worst[0]}")

fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(np.log1p(confusion), cmap="Blues")
for (i, j), v in np.ndenumerate(confusion):
    if v:
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > 20 else "black")
ax.set_xticks(range(10))
ax.set_yticks(range(10))
ax.set_xlabel("predicted")
ax.set_ylabel("true")
ax.set_title(f"Confusion matrix of the {len(y_test)} test digits")
fig.tight_layout()
show_figure(fig, OUT / "confusion_matrix.svg")

# %% [markdown]
# And the misclassified images themselves, with the network's probability for its wrong answer
# and for the right one: some are digits a person would hesitate over too.

# %%
wrong = np.flatnonzero(predicted != y_test)
assert len(wrong) == len(y_test) - np.trace(confusion)
shown = wrong[:12]
fig, axes = plt.subplots(1, max(len(shown), 4), figsize=(1.5 * max(len(shown), 4), 2.2), squeeze=False)
for ax, i in zip(axes[0], shown):
    ax.imshow(x_test[i, 0], cmap="gray_r")
    ax.set_title(f"{y_test[i]} -> {predicted[i]}\n{probabilities[i, predicted[i]]:.2f} vs "
                 f"{probabilities[i, y_test[i]]:.2f}", fontsize=8)
for ax in axes[0]:
    ax.axis("off")
fig.suptitle(f"{len(wrong)} misclassified test digits\ntrue -> predicted, p(predicted) vs p(true)", fontsize=9)
fig.tight_layout()
show_figure(fig, OUT / "misclassified.svg")

# %% [markdown]
# ## 5. What the first layer learned
#
# The first convolution has 32 filters of 3x3 pixels, each a small pattern the layer looks for
# everywhere in the image; its output for one image is 32 *feature maps*, one per filter. Before
# training the filters are He-initialised noise; training moves them, but they keep much of their
# random start: of the three weight layers the first changes least (the relative changes printed
# below), and most of the learning happens in the layers above it.

# %%
filters = model.layers[1].weight.value                        # (32, 1, 3, 3)
change = {name: np.linalg.norm(p.value - initial[name]) / np.linalg.norm(initial[name])
          for name, p in model.named_parameters() if name in initial}
print("relative change of each layer's weights during training: "
      + ", ".join(f"{name} {c:.2f}" for name, c in change.items()))
assert change["conv2d.weight"] > 0.1 and change["conv2d.weight"] == min(change.values())

fig, axes = plt.subplots(4, 17, figsize=(12, 3.2))
for k in range(32):
    for column, weights in ((k % 8, initial_filters), (9 + k % 8, filters)):
        ax = axes[k // 8, column]
        limit = np.abs(weights[k, 0]).max()
        ax.imshow(weights[k, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
for ax in axes.ravel():
    ax.axis("off")
axes[0, 3].set_title("before training", fontsize=10, loc="left")
axes[0, 12].set_title("after training", fontsize=10, loc="left")
fig.suptitle("The 32 first-layer filters (3x3, blue negative, red positive)")
show_figure(fig, OUT / "filters.svg")

digit = x_test[:1]
feature_maps = np.asarray(model.forward_until(digit, model.layers[1]).value)[0]     # after ReLU: (32, 8, 8)
assert feature_maps.shape == (32, 8, 8) and feature_maps.min() >= 0
fig, axes = plt.subplots(4, 9, figsize=(10, 4.6))
axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
axes[0, 0].set_title(f"input ({y_test[0]})", fontsize=8)
for k in range(32):
    axes[k // 8, 1 + k % 8].imshow(feature_maps[k], cmap="viridis")
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle("The first layer's 32 feature maps (after ReLU) for one test digit")
fig.tight_layout()
show_figure(fig, OUT / "feature_maps.svg")

# %% [markdown]
# ## 6. Two backends, one result
#
# Every convolution, pooling and optimiser step runs in `kernels`, in one of three versions with one
# signature: the NumPy reference, Numba CPU-parallel loops (`"cpu"`, the default) and numba.cuda
# (`"cuda"`, on a GPU). `nn.fit(..., backend=...)` picks one for a whole run. The same short run
# (same initial weights, same mini-batches, same dropout masks) on the reference and on the CPU
# kernels must give the same losses, up to float32 round-off; the times tell what the Numba
# kernels buy on this machine.

# %%
def short_run(backend):
    nn.set_seed(1)
    net = nn.models.digits_cnn()
    begin = time.perf_counter()
    run = nn.fit(net, (x_train[:512], y_train[:512]), optimizer=nn.optim.Adam(net.parameters(), lr=1e-3), epochs=2,
                 batch_size=32, seed=1, backend=backend, verbose=0)
    return np.array(run["loss"]), time.perf_counter() - begin


losses, seconds = {}, {}
for backend in ("numpy", "cpu"):
    losses[backend], seconds[backend] = short_run(backend)
    print(f"backend {backend!r:8s}: losses {losses[backend]}, {seconds[backend]:.2f} s")
np.testing.assert_allclose(losses["cpu"], losses["numpy"], rtol=1e-5)
print(f"the same losses to {np.max(np.abs(losses['cpu'] / losses['numpy'] - 1)):.1e} (relative); "
      f"the Numba CPU kernels were {seconds['numpy'] / seconds['cpu']:.1f} times as fast as the NumPy reference")

# %% [markdown]
# (The ratio depends on the machine and on what else runs on it; `benchmarks/kernels.py` measures
# each kernel separately. With a GPU and `numba-cuda`, `backend="cuda"` runs the same training on
# it: the model moves to the device once, before the first step, and stays there.)
#
# ## 7. MNIST, if you have it
#
# Set `MNIST_DIR` to a folder with MNIST's files. With the whole data set (`train-*` and `t10k-*`)
# the lecture's network learns from the training images (8,000 of them, or all 60,000 with
# `TUTORIAL_FULL=1`) and is tested on the 10,000 test images; with the test files only, it learns
# from 8,000 of those and is tested on the other 2,000. Adam, batch size 128, as in the lecture.

# %%
if MNIST_DIR:
    try:
        (xm_train, ym_train), (xm_test, ym_test) = nn.load_mnist(MNIST_DIR, "train"), nn.load_mnist(MNIST_DIR, "test")
        if not FULL:
            xm_train, ym_train = xm_train[:8000], ym_train[:8000]
    except FileNotFoundError:               # only the 10,000 test images: 8,000 to learn from, 2,000 to test
        xm, ym = nn.load_mnist(MNIST_DIR, "test")
        xm_train, xm_test, ym_train, ym_test = nn.data.train_test_split(xm, ym, test_size=2000, stratify=True, seed=0)
    mnist_epochs = 12 if FULL else 3
    print(f"MNIST from {MNIST_DIR}: {len(xm_train):,} training and {len(xm_test):,} test images, "
          f"{mnist_epochs} epochs")
    nn.set_seed(0)
    lecture_cnn = nn.models.keras_mnist_cnn()
    mnist_history = nn.fit(lecture_cnn, (xm_train, ym_train), optimizer="adam", epochs=mnist_epochs, batch_size=128,
                           seed=0, verbose=2)
    mnist_test = nn.evaluate(lecture_cnn, (xm_test, ym_test))
    print(f"MNIST test accuracy: {mnist_test['accuracy']:.4f}")
    assert mnist_test["accuracy"] >= (0.97 if FULL else 0.94)
    save_history_svg(mnist_history, OUT / "mnist_history.svg")
else:
    print("MNIST_DIR is not set: skipping the MNIST training")

# %% [markdown]
# ## Exercises
#
# Checked (`chainrule/exercises/cnn.py`; answers in `chainrule/exercises/solutions/cnn.py`):
#
# 1. **A confusion matrix.** `confusion_matrix(y_true, y_pred, classes)` returns the
#    `(classes, classes)` counts, rows the true class and columns the predicted one. Try it without
#    a Python loop (hint: `np.bincount` of one number per pair).
#
# Without a checker:
#
# 2. Train `digits_cnn` with plain SGD (lr 0.01, then 0.1) instead of Adam and compare the curves.
# 3. Remove the dropout layer (build the network yourself from the `summary()` above). Does the
#    gap between training and validation accuracy change?
# 4. Show the feature maps of the *second* convolution for the same digit.
# 5. Which test digits is the network least sure about (lowest top probability), even when right?

# %%
from chainrule.exercises import attempt
from chainrule.exercises.cnn import check_confusion_matrix


def confusion_matrix(y_true, y_pred, classes):
    raise NotImplementedError  # your code here


print(attempt(check_confusion_matrix, confusion_matrix))

# %% The answer passes the same check, and agrees with the matrix above.
from chainrule.exercises.solutions.cnn import SOLUTIONS

assert check_confusion_matrix(SOLUTIONS["confusion_matrix"]).passed
np.testing.assert_array_equal(SOLUTIONS["confusion_matrix"](y_test, predicted, 10), confusion)
