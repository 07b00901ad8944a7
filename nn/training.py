"""The training loop: ``fit``, ``evaluate``, ``predict``, a History and Keras-style callbacks.

>>> import numpy as np, nn
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(64, 2)).astype(np.float32); y = (x[:, 0] > 0).astype(np.int64)
>>> nn.set_seed(0)
>>> model = nn.Sequential([nn.Input((2,)), nn.Dense(8, activation="relu"), nn.Dense(2, activation="softmax")])
>>> history = nn.fit(model, (x, y), loss="sparse_categorical_crossentropy", optimizer="adam", lr=0.05,
...                  epochs=20, batch_size=16, verbose=0)
>>> history["accuracy"][-1] > 0.9
True
"""
from __future__ import annotations

import contextlib
import math
import sys
import time

import numpy as np

import kernels
from autodiff import Tensor, no_grad

from . import device
from . import functional as F
from . import optim as optimisers
from . import utils
from .io import save
from .module import ends_in_softmax
from . import plot as plots

__all__ = ["fit", "evaluate", "predict", "History", "Callback", "EarlyStopping", "ModelCheckpoint",
           "LearningRateScheduler", "loss_function", "LOSSES"]

#: Loss names: the fused softmax cross-entropy on logits, Keras's cross-entropies, and MSE.
LOSSES = ("softmax_cross_entropy", "sparse_categorical_crossentropy", "categorical_crossentropy",
          "cross_entropy", "mse")


def loss_function(model, loss):
    """``(x, y) -> (scalar loss Tensor, output Tensor)`` for the loss called ``loss`` (or ``f(output, y)``).

    The cross-entropies of a model that ends in softmax (:func:`nn.module.ends_in_softmax`) are
    computed from its logits, ``model.forward(x, pre_activation=True)``, with the fused, stable
    ``softmax_cross_entropy`` (same value, gradient y - t): Keras does the same internally. The
    output returned is then the logits (their argmax is the prediction's). A model whose
    ``outputs_probabilities`` is true (an ``nn.regularizers.Ensemble`` averaging probabilities) gets
    the cross-entropy of its outputs, whichever cross-entropy is named: never a second softmax.
    """
    if callable(loss):
        def objective(x, y):
            out = model(x)
            return loss(out, y), out
        return objective
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES} or a function(output, y), got {loss!r}")
    softmax_output = ends_in_softmax(model)
    if loss == "mse":
        base = F.mse
    elif getattr(model, "outputs_probabilities", False):   # an Ensemble's averages: no softmax again
        base = F.cross_entropy
    elif loss == "softmax_cross_entropy" or softmax_output:
        base = F.softmax_cross_entropy
    else:
        base = F.cross_entropy
    on_logits = softmax_output and base is F.softmax_cross_entropy

    def objective(x, y):
        out = model.forward(x, pre_activation=True) if on_logits else model(x)
        return base(out, y), out
    return objective


class History:
    """Per-epoch metrics: ``history["loss"]``, ``"accuracy"``, ``"val_loss"``, ``"val_accuracy"``, ``"lr"``."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"

    def plot(self):
        """The loss and accuracy curves per epoch as a matplotlib Figure (:func:`nn.plot.history_figure`),
        as Keras users plot ``history.history``; ``fig.savefig(path)`` writes it."""
        return plots.history_figure(self)

    def _plottable(self):
        return any(key in self.history for key in ("loss", "val_loss", "accuracy", "val_accuracy"))

    def _repr_png_(self):
        """Jupyter shows a History as its plot: matplotlib's PNG where matplotlib is installed..."""
        return plots.history_png(self) if plots.HAS_MATPLOTLIB and self._plottable() else None

    def _repr_svg_(self):
        """... else the hand-drawn SVG (:func:`nn.plot.history_svg`); one of the two, never both."""
        return plots.history_svg(self) if not plots.HAS_MATPLOTLIB and self._plottable() else None


class Callback:
    """Hooks called by ``fit``; set ``self.stop_training = True`` to stop after this epoch."""

    stop_training = False

    def on_train_begin(self, model):
        pass

    def on_batch_end(self, model):
        pass

    def on_epoch_end(self, epoch, logs, model):
        pass

    def on_train_end(self, model):
        pass


def _monitor_mode(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs (Fig. 5.2's rule);
    with ``restore_best_weights`` the model ends with the weights of its best epoch."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False):
        self.monitor, self.patience, self.min_delta = monitor, int(patience), abs(float(min_delta))
        self.mode = _monitor_mode(monitor, mode)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, model):
        self.best, self.best_epoch, self.wait, self.best_state = None, None, 0, None
        self.stop_training, self.stopped_epoch = False, None

    def _improved(self, value):
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs, model):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, but the epoch's logs have {sorted(logs)}"
                           f" (validation metrics need fit(..., validation=(x, y)))")
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = model.state_dict()
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.stop_training, self.stopped_epoch = True, epoch

    def on_train_end(self, model):
        if self.restore_best_weights and self.best_state is not None:
            model.load_state_dict(self.best_state)


class ModelCheckpoint(Callback):
    """Save the model (``nn.save``: one .safetensors file, written atomically) after each epoch, or only when
    ``monitor`` improves with ``save_best_only``. ``path`` may contain ``{epoch}``."""

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        self.path, self.monitor, self.save_best_only = str(path), monitor, save_best_only
        self.mode = _monitor_mode(monitor, mode)
        self.best = None

    def on_epoch_end(self, epoch, logs, model):
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise KeyError(f"ModelCheckpoint monitors {self.monitor!r}, but the logs have {sorted(logs)}")
            better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
            if not better:
                return
            self.best = value
        save(model, self.path.format(epoch=epoch + 1), metadata={"epoch": epoch + 1, **logs})


class LearningRateScheduler(Callback):
    """Step a schedule (nn.optim.StepLR, ReduceLROnPlateau) at the end of every epoch."""

    def __init__(self, schedule, monitor="val_loss"):
        self.schedule, self.monitor = schedule, monitor

    def on_epoch_end(self, epoch, logs, model):
        if isinstance(self.schedule, optimisers.ReduceLROnPlateau):
            self.schedule.step(logs[self.monitor])
        else:
            self.schedule.step()


def _accuracy(output, y):
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.argmax(axis=1)
    return float(np.mean(np.argmax(output, axis=1) == y))


def _has_accuracy(y, loss):
    """Whether accuracy means something: class labels, or target distributions of a cross-entropy."""
    return (y.ndim == 1 and y.dtype.kind in "iu") or (y.ndim == 2 and loss != "mse")


def _as_model_dtype(model, x):
    """Float input cast to the dtype of the model's parameters (float64 data, float32 model: Keras's rule)."""
    x = np.asarray(x)
    params = model.parameters()
    if params and x.dtype.kind == "f" and x.dtype != params[0].value.dtype:
        return x.astype(params[0].value.dtype)
    return x


def _check_data(data, what, model=None):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{what} must be a pair (x, y) of arrays")
    x = np.asarray(data[0]) if model is None else _as_model_dtype(model, data[0])
    y = np.asarray(data[1])
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: x has {x.shape[0]} samples but y has {y.shape[0]}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: no samples")
    if x.dtype.kind != "f":
        raise TypeError(f"{what}: x must be a float array, got dtype {x.dtype}")
    return x, y


class _Progress:
    """Keras-style progress: a live bar on a terminal, one line per epoch otherwise."""

    def __init__(self, epochs, steps, verbose, file):
        self.epochs, self.steps, self.verbose, self.file = epochs, steps, verbose, file or sys.stdout
        self.live = verbose == 1 and getattr(self.file, "isatty", lambda: False)()

    def step(self, epoch, step, loss, seconds):
        if self.live:
            done = int(30 * step / self.steps)
            bar = "=" * max(done - 1, 0) + (">" if done < 30 else "=") + "." * (30 - done)
            print(f"\rEpoch {epoch + 1}/{self.epochs} {step}/{self.steps} [{bar}] - loss: {loss:.4f}", end="",
                  file=self.file, flush=True)

    def epoch_end(self, epoch, logs, seconds):
        if not self.verbose:
            return
        metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if k != "lr")
        per_step = 1e3 * seconds / max(self.steps, 1)
        head = "\r" if self.live else ""
        print(f"{head}Epoch {epoch + 1}/{self.epochs} - {self.steps}/{self.steps} - {seconds:.1f}s "
              f"{per_step:.0f}ms/step - {metrics}", file=self.file, flush=True)


@contextlib.contextmanager
def _running(backend):
    """The kernels backend for a run (the process-wide tuning is the kernels' own: kernels.runtime)."""
    with kernels.use_backend(backend) if backend is not None else contextlib.nullcontext():
        yield


def fit(model, data, loss="softmax_cross_entropy", optimizer="adam", epochs=1, batch_size=32, validation=None,
        callbacks=(), backend=None, seed=None, shuffle=True, verbose=1, lr=None, regularizer=None, augment=None,
        file=None):
    """Train ``model`` on ``data = (x, y)`` for ``epochs`` passes of mini-batches; returns a History.

    ``loss``: one of LOSSES or ``f(output, y)``. ``optimizer``: an ``nn.optim`` optimiser or its name
    (``lr`` sets its learning rate). ``validation``: (x_val, y_val), evaluated after every epoch.
    ``regularizer``: ``f(model) -> scalar Tensor`` added to the loss (e.g. ``nn.regularizers.l2(1e-4)``);
    as in Keras, the logged training ``loss`` includes it, ``val_loss`` does not. ``augment``:
    ``f(x_batch, rng) -> x_batch`` applied to every training batch (``nn.augment``'s transforms).
    ``backend``: the kernels backend for the whole run ("cpu", "numpy", "cuda"). fit changes nothing
    process-wide: each step (forward, backward, update) runs with every BLAS on one thread and gives
    the counts back after (``kernels.runtime.single_threaded_blas``, as the kernels' own calls do), so
    the dense layers' NumPy products wake no BLAS thread to spin against the kernels'. ``seed``: shuffling (default: nn's global generator). ``verbose``: 0 silent, 1 progress,
    2 one line per epoch. "accuracy" is logged when y holds class labels (or, with a cross-entropy,
    target distributions).
    """
    x, y = _check_data(data, "data", model)
    if validation is not None:
        validation = _check_data(validation, "validation", model)
    if int(epochs) < 0 or int(batch_size) < 1:
        raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got epochs={epochs!r}, batch_size={batch_size!r}")
    if isinstance(optimizer, str):
        optimizer = optimisers.get(optimizer, model.parameters(), **({} if lr is None else {"lr": lr}))
    elif lr is not None:
        optimizer.lr = lr
    objective = loss_function(model, loss)
    rng = utils.rng(seed)
    callbacks = list(callbacks)
    history = History()
    n = x.shape[0]
    steps = math.ceil(n / batch_size)
    progress = _Progress(epochs, steps, verbose, file)
    on_device = device.device_of(model) == "cuda"   # batches in, the loss out; nothing else moves
    if on_device:
        device.check_fit(loss, regularizer, fused=loss == "softmax_cross_entropy" or (
            loss in LOSSES[1:4] and ends_in_softmax(model) and not getattr(model, "outputs_probabilities", False)))
    with _running(backend):
        for cb in callbacks:
            cb.on_train_begin(model)
        for epoch in range(int(epochs)):
            model.train()
            order = rng.permutation(n) if shuffle else np.arange(n)
            start = time.perf_counter()
            total_loss = total_correct = 0.0
            track_accuracy = _has_accuracy(y, loss)
            for step in range(steps):
                index = np.sort(order[step * batch_size:(step + 1) * batch_size])
                xb, yb = x[index], y[index]
                if augment is not None:
                    xb = augment(xb, rng)
                optimizer.zero_grad()
                targets = yb
                if on_device:
                    xb, targets = device.batch_to_device(xb, yb)
                with kernels.runtime.single_threaded_blas():   # the step's own products too (dense layers)
                    value, out = objective(xb, targets)
                    total = value + regularizer(model) if regularizer is not None else value
                    total.backward()
                    optimizer.step()
                for cb in callbacks:
                    cb.on_batch_end(model)
                total_loss += float(total.value) * len(index)
                if track_accuracy:              # on the device: a device sum, read once per epoch
                    total_correct += (device.correct(out, targets) if on_device else
                                      _accuracy(out.value, yb) * len(index))
                progress.step(epoch, step + 1, total_loss / min(n, (step + 1) * batch_size),
                              time.perf_counter() - start)
            seconds = time.perf_counter() - start
            logs = {"loss": total_loss / n}
            if track_accuracy:                      # running, over the epoch's batches (as Keras)
                logs["accuracy"] = float(total_correct) / n
            if validation is not None:
                metrics = evaluate(model, validation, loss=loss, batch_size=max(batch_size, 256))
                logs["val_loss"] = metrics["loss"]
                if "accuracy" in metrics:
                    logs["val_accuracy"] = metrics["accuracy"]
            logs["lr"] = optimizer.lr
            history.append(epoch, logs)
            progress.epoch_end(epoch, logs, seconds)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs, model)
            if any(getattr(cb, "stop_training", False) for cb in callbacks):
                break
        for cb in callbacks:
            cb.on_train_end(model)
    return history


def predict(model, x, batch_size=256, backend=None):
    """The model's outputs for ``x`` in evaluation mode (no dropout, running statistics), as an array."""
    x = _as_model_dtype(model, x)
    was_training = model.training
    model.eval()
    try:
        with _running(backend), no_grad(), kernels.runtime.single_threaded_blas():
            outs = [device.to_host(model(x[i:i + batch_size]).value) for i in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs)


def evaluate(model, data, loss="softmax_cross_entropy", batch_size=256, backend=None):
    """{"loss", "accuracy"} of ``model`` on ``data = (x, y)`` in evaluation mode."""
    x, y = _check_data(data, "data", model)
    objective = loss_function(model, loss)
    was_training = model.training
    model.eval()
    total, outputs = 0.0, []
    try:
        with _running(backend), no_grad(), kernels.runtime.single_threaded_blas():
            for i in range(0, x.shape[0], batch_size):
                xb, yb = x[i:i + batch_size], y[i:i + batch_size]
                value, out = objective(xb, yb)
                total += float(value.value) * xb.shape[0]
                outputs.append(device.to_host(out.value))
    finally:
        model.train(was_training)
    result = {"loss": total / x.shape[0]}
    if _has_accuracy(y, loss):
        result["accuracy"] = _accuracy(np.concatenate(outputs), y)
    return result
