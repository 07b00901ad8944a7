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
import warnings

import numpy as np

import kernels
from autodiff import Tensor, no_grad, value_of
from autodiff.anomaly import detect_anomaly as anomaly_mode
from autodiff.primitives import as_array

from . import device
from . import functional as F
from . import optim as optimisers
from . import utils
from .callbacks import (Callback, CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint,
                        TerminateOnNaN)
from .module import ends_in_softmax
from . import plot as plots

__all__ = ["fit", "evaluate", "predict", "History", "Callback", "EarlyStopping", "ModelCheckpoint",
           "LearningRateScheduler", "TerminateOnNaN", "CSVLogger", "loss_function", "LOSSES"]

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
        def objective(x, y, weights=None):     # fit refuses weights with a loss function of the caller's
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

    def objective(x, y, weights=None):
        out = model.forward(x, pre_activation=True) if on_logits else model(x)
        return (base(out, y) if weights is None else base(out, y, sample_weight=weights)), out
    return objective


def sample_weights(y, class_weight=None, sample_weight=None):
    """Per-example weights (N,) from Keras's ``class_weight`` ({class: weight}, others 1) or
    ``sample_weight`` (N,); None for neither. Both at once is refused, as Keras 3 does."""
    if class_weight is not None and sample_weight is not None:
        raise ValueError("fit: give class_weight or sample_weight, not both (as Keras)")
    y = np.asarray(y)
    if class_weight is not None:
        if not (isinstance(class_weight, dict) and all(isinstance(k, (int, np.integer)) for k in class_weight)):
            raise TypeError(f"fit: class_weight must be a dict {{class index: weight}}, got {class_weight!r}")
        if not (y.ndim == 1 and y.dtype.kind in "iu" or y.ndim == 2):
            raise ValueError(f"fit: class_weight needs class labels (N,) or one-hot targets (N, K), got y of "
                             f"shape {y.shape} and dtype {y.dtype}")
        labels = y.argmax(axis=1) if y.ndim == 2 else y
        return np.array([float(class_weight.get(int(c), 1.0)) for c in labels])
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim == 2 and w.shape[1:] == (1,):
        w = w[:, 0]
    if w.shape != (y.shape[0],) or w.dtype.kind not in "iuf" or not np.all(np.isfinite(w)):
        raise ValueError(f"fit: sample_weight must be {y.shape[0]} finite numbers (one per example), got "
                         f"shape {w.shape} and dtype {w.dtype}")
    return w.astype(np.float64)


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


def _accuracy(output, y):
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.argmax(axis=1)
    return float(np.mean(np.argmax(output, axis=1) == y))


def _has_accuracy(y, loss):
    """Whether accuracy means something: class labels, or target distributions of a cross-entropy."""
    return (y.ndim == 1 and y.dtype.kind in "iu") or (y.ndim == 2 and loss != "mse")


def _as_model_dtype(model, x):
    """Numeric input cast to the dtype of the model's parameters (float32 without any), as Keras does:
    float64 data or uint8 images into a float32 model (values kept: no scaling)."""
    x = np.asarray(x)
    params = model.parameters()
    dtype = params[0].value.dtype if params else np.dtype(np.float32)
    if x.dtype.kind in "fiub" and x.dtype != dtype:
        return x.astype(dtype)
    return x


def check_batch_size(batch_size):
    """Keras's batch_size: a positive int, or None for its default 32."""
    if batch_size is None:
        return 32
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None (32), got {batch_size!r}")
    return int(batch_size)


def _check_verbose(verbose):
    if verbose == "auto":
        return 1
    if isinstance(verbose, str) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _report(steps, seconds, metrics, file):
    """The one line Keras's evaluate and predict print with verbose=1: steps, time, metrics."""
    tail = "".join(f" - {k}: {v:.4f}" for k, v in metrics.items())
    print(f"{steps}/{steps} - {seconds:.1f}s {1e3 * seconds / max(steps, 1):.0f}ms/step{tail}",
          file=file or sys.stdout, flush=True)


def _check_data(data, what, model=None):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{what} must be a pair (x, y) of arrays")
    for name, part in zip("xy", data):
        as_array(part, f"{what}: {name}")
        if np.ndim(part) == 0 or np.asarray(part).dtype == object:
            raise TypeError(f"{what}: {name} must be an array with one row per sample, got "
                            f"{type(part).__name__} {np.shape(part)}")
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

    def __init__(self, epochs, steps, verbose, file, live=None):
        self.epochs, self.steps, self.verbose, self.file = epochs, steps, verbose, file or sys.stdout
        self.live = verbose == 1 and getattr(self.file, "isatty", lambda: False)() if live is None else live

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


def check_backend(backend, where):
    """A run's ``backend``: None or one of kernels.BACKENDS that can run here (``kernels.BackendUnavailable``
    without a GPU), checked before anything changes."""
    if backend is not None:
        if backend not in kernels.BACKENDS:
            raise ValueError(f"{where}: backend must be one of {kernels.BACKENDS}, got {backend!r}")
        with kernels.use_backend(backend):
            pass


def place(model, backend, where):
    """Put ``model`` where ``backend`` runs, once, before a run: "cuda" moves a host model to the device (it
    stays there, as after ``model.to("cuda")``), "cpu" and "numpy" bring a device model back; None leaves
    it where it is. So no kernel call copies the model's arrays in and out. Raises before anything moves
    (``kernels.BackendUnavailable`` without a GPU); returns whether the model is on the device."""
    check_backend(backend, where)
    if backend is not None:
        wanted = "cuda" if backend == "cuda" else "cpu"
        if device.device_of(model) != wanted:
            device.to_device(model, wanted)
    return device.device_of(model) == "cuda"


def _warn_nonfinite(loss, epoch, step, optimizer):
    warnings.warn(f"fit: the loss is {loss} at epoch {epoch + 1}, batch {step + 1}: training stopped before that "
                  f"batch's update (the weights are the batch before's); look for NaN or Inf in x and y, or try a "
                  f"smaller learning rate than {optimizer.lr:g}; terminate_on_nan=False trains on", RuntimeWarning,
                  stacklevel=3)


@contextlib.contextmanager
def _running(backend):
    """The kernels backend for a run's host kernels (the process-wide tuning is the kernels' own:
    kernels.runtime); a model on the device runs there whatever it says (the device follows the data)."""
    with kernels.use_backend(backend) if backend not in (None, "cuda") else contextlib.nullcontext():
        yield


def fit(model, data, loss="softmax_cross_entropy", optimizer="adam", epochs=1, batch_size=32, validation=None,
        callbacks=(), backend=None, seed=None, shuffle=True, verbose=1, lr=None, regularizer=None, augment=None,
        file=None, class_weight=None, sample_weight=None, terminate_on_nan=True, detect_anomaly=False):
    """Train ``model`` on ``data = (x, y)`` for ``epochs`` passes of mini-batches; returns a History.

    ``loss``: one of LOSSES or ``f(output, y)``. ``optimizer``: an ``nn.optim`` optimiser or its name
    (``lr`` sets its learning rate). ``validation``: (x_val, y_val), evaluated after every epoch.
    ``regularizer``: ``f(model) -> scalar Tensor`` added to the loss (e.g. ``nn.regularizers.l2(1e-4)``);
    as in Keras, the logged training ``loss`` includes it, ``val_loss`` does not. ``augment``:
    ``f(x_batch, rng) -> x_batch`` applied to every training batch (``nn.augment``'s transforms).
    ``backend``: where the run happens ("cpu", "numpy", "cuda"; None: where the model is): "cuda" moves the
    model to the device once, before the first step, and it stays there (``model.to("cpu")`` brings it
    back); "cpu" or "numpy" bring a model on the device back to the host. fit changes nothing
    process-wide: each step (forward, backward, update) runs with every BLAS on one thread and gives
    the counts back after (``kernels.runtime.single_threaded_blas``, as the kernels' own calls do), so
    the dense layers' NumPy products wake no BLAS thread to spin against the kernels'. ``seed``: shuffling (default: nn's global generator). ``verbose``: 0 silent, 1 progress,
    2 one line per epoch; a callback that shows the progress itself (``nn.LiveView``) replaces both. "accuracy" is
    logged when y holds class labels (or, with a cross-entropy,
    target distributions). ``class_weight`` ({class: weight}) or ``sample_weight`` (one per example):
    Keras's weighted loss, sum_i w_i l_i / N per batch (the logged loss too; validation unweighted).
    ``terminate_on_nan``: a batch whose loss is NaN or infinite stops the training before its update (the
    weights stay those of the batch before), with a warning naming the epoch and batch (Keras's
    TerminateOnNaN, on by default); False trains on. ``detect_anomaly=True`` trains under
    ``autodiff.detect_anomaly``: the first NaN or infinity, in a forward op or a rule of the backward, raises
    ``autodiff.AnomalyError`` naming the op, its node and the line that recorded it (slower: debugging only).
    """
    batch_size = check_batch_size(batch_size)
    verbose = _check_verbose(verbose)
    x, y = _check_data(data, "data", model)
    if validation is not None:
        validation = _check_data(validation, "validation", model)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
    for flag, given in (("terminate_on_nan", terminate_on_nan), ("detect_anomaly", detect_anomaly)):
        if not isinstance(given, (bool, np.bool_)):
            raise TypeError(f"fit: {flag} must be True or False, got {given!r}")
    weights = sample_weights(y, class_weight, sample_weight)
    if weights is not None and callable(loss):
        raise ValueError("fit: class_weight/sample_weight need a named loss (one of LOSSES), got a function")
    objective = loss_function(model, loss)
    check_backend(backend, "fit")
    if isinstance(optimizer, str):                  # the optimiser last: nothing of the caller's changes before
        optimizer = optimisers.get(optimizer, model.parameters(), **({} if lr is None else {"lr": lr}))
    else:
        optimisers.adopt(optimizer, model.parameters(), "fit")   # Keras's Adam(learning_rate=...) made first
        if lr is not None:
            optimizer.lr = lr
    on_device = place(model, backend, "fit")        # on the device: batches in, the loss out; nothing else moves
    optimizer.follow_parameters()                   # state made before a move goes where the model went
    rng = utils.rng(seed)
    if isinstance(callbacks, (Callback, str)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"fit: callbacks must be a list of callbacks (e.g. [nn.EarlyStopping()]), got "
                        f"{type(callbacks).__name__}")
    callbacks = list(callbacks)
    history = History()
    n = x.shape[0]
    steps = math.ceil(n / batch_size)
    # a callback that shows the progress itself (nn.LiveView) replaces fit's, as a ProgbarLogger does Keras's
    progress = _Progress(epochs, steps, 0 if any(getattr(cb, "shows_progress", False) for cb in callbacks)
                         else verbose, file)
    with _running(backend), anomaly_mode() if detect_anomaly else contextlib.nullcontext():
        for cb in callbacks:
            getattr(cb, "set_params", lambda params: None)({"epochs": int(epochs), "steps": steps, "verbose": verbose})
            cb.on_train_begin(model)
        for epoch in range(int(epochs)):
            model.train()
            order = rng.permutation(n) if shuffle else np.arange(n)
            start = time.perf_counter()
            total_loss = total_correct = 0.0
            seen, diverged = 0, False
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
                    value, out = objective(xb, targets, None if weights is None else weights[index])
                    total = value + regularizer(model) if regularizer is not None else value
                    total.backward()
                    batch_loss = float(total.value)
                    diverged = terminate_on_nan and not math.isfinite(batch_loss)
                    if not diverged:
                        optimizer.step()
                if diverged:
                    _warn_nonfinite(batch_loss, epoch, step, optimizer)
                batch_logs = {"loss": batch_loss}
                if track_accuracy:              # on the device: a device sum, read once per epoch
                    correct = device.correct(out, targets) if on_device else _accuracy(out.value, yb) * len(index)
                    total_correct += correct
                    if not on_device:
                        batch_logs["accuracy"] = correct / len(index)
                for cb in callbacks:
                    cb.on_batch_end(model)
                    getattr(cb, "on_train_batch_end", lambda *a: None)(step, batch_logs, model)
                total_loss += batch_loss * len(index)
                seen += len(index)
                progress.step(epoch, step + 1, total_loss / seen, time.perf_counter() - start)
                if diverged or any(getattr(cb, "stop_training", False) for cb in callbacks):
                    break                           # Keras: a batch hook's stop ends the epoch here
            seconds = time.perf_counter() - start
            logs = {"loss": total_loss / seen}
            if track_accuracy:                      # running, over the epoch's batches (as Keras)
                logs["accuracy"] = float(total_correct) / seen
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
            if diverged or any(getattr(cb, "stop_training", False) for cb in callbacks):
                break
        for cb in callbacks:
            cb.on_train_end(model)
    return history


def predict(model, x, batch_size=256, backend=None, verbose=0, file=None):
    """The model's outputs for ``x`` in evaluation mode (no dropout, running statistics), as an array.
    ``batch_size=None``: Keras's 32; ``verbose=1`` prints Keras's one line (steps, time)."""
    batch_size, verbose = check_batch_size(batch_size), _check_verbose(verbose)
    x = _as_model_dtype(model, x)
    if np.ndim(x) == 0 or len(x) == 0:
        raise ValueError(f"predict: x must hold at least one sample, got shape {np.shape(x)}")
    on_device = place(model, backend, "predict")
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with _running(backend), no_grad(), kernels.runtime.single_threaded_blas():
            # value_of: a model without parameters (pooling, dropout alone) gives arrays, not Tensors
            outs = [device.to_host(value_of(model(device.input_to_device(x[i:i + batch_size]) if on_device else
                                                  x[i:i + batch_size]))) for i in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    if verbose:
        _report(len(outs), time.perf_counter() - start, {}, file)
    return np.concatenate(outs)


def evaluate(model, data, loss="softmax_cross_entropy", batch_size=256, backend=None, verbose=0, file=None):
    """{"loss", "accuracy"} of ``model`` on ``data = (x, y)`` in evaluation mode. ``batch_size=None``:
    Keras's 32; ``verbose=1`` prints Keras's one line (steps, time, metrics)."""
    batch_size, verbose = check_batch_size(batch_size), _check_verbose(verbose)
    x, y = _check_data(data, "data", model)
    objective = loss_function(model, loss)
    on_device = place(model, backend, "evaluate")
    was_training = model.training
    model.eval()
    total, outputs = 0.0, []
    start = time.perf_counter()
    try:
        with _running(backend), no_grad(), kernels.runtime.single_threaded_blas():
            for i in range(0, x.shape[0], batch_size):
                xb, yb = x[i:i + batch_size], y[i:i + batch_size]
                value, out = objective(*(device.batch_to_device(xb, yb) if on_device else (xb, yb)))
                total += float(value.value) * xb.shape[0]
                outputs.append(device.to_host(out.value))
    finally:
        model.train(was_training)
    result = {"loss": total / x.shape[0]}
    if _has_accuracy(y, loss):
        result["accuracy"] = _accuracy(np.concatenate(outputs), y)
    if verbose:
        _report(len(outputs), time.perf_counter() - start, result, file)
    return result
