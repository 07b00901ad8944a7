"""Keras-style callbacks for ``nn.fit``: EarlyStopping, ModelCheckpoint, LearningRateScheduler,
TerminateOnNaN and CSVLogger (``nn.training`` re-exports them).

>>> import numpy as np, nn
>>> x = np.zeros((8, 2), np.float32); x[5] = np.nan; y = np.zeros(8, np.int64)
>>> model = nn.Sequential(nn.Input((2,)), nn.Dense(2))
>>> history = nn.fit(model, (x, y), epochs=3, batch_size=4, shuffle=False, callbacks=[nn.TerminateOnNaN()],
...                  verbose=0, terminate_on_nan=False)      # fit's own stop (the default) off: the callback's
Batch 1: Invalid loss, terminating training
>>> len(history.epoch)
1
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from . import optim as optimisers
from .io import _save_target, save

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler", "TerminateOnNaN", "CSVLogger"]


class Callback:
    """Hooks called by ``fit``; ``self.stop_training = True`` stops training after this batch (set in a
    batch hook, as Keras) or this epoch. ``on_train_batch_end`` (Keras's name) gets ``{"loss": ...}``, and
    the batch's ``"accuracy"`` where fit logs one (on the host). Before ``on_train_begin``, ``set_params``
    gets Keras's ``{"epochs", "steps", "verbose"}`` (steps: batches per epoch), kept in ``self.params``."""

    stop_training = False
    params = {}

    def set_params(self, params):
        self.params = dict(params)

    def on_train_begin(self, model):
        pass

    def on_batch_end(self, model):
        pass

    def on_train_batch_end(self, batch, logs, model):
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


def _writable_folder(target):
    """The folder ``target`` will be saved in exists and is writable, or can be made where its nearest
    existing parent is a writable folder: else a one-line error now, before any training."""
    folder = Path(target).parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a folder" if existing is not None and not existing.is_dir() else "is not writable"
        raise ValueError(f"ModelCheckpoint: path {str(target)!r} cannot be written: {str(existing)!r} {what}")


class ModelCheckpoint(Callback):
    """Save the model (``nn.save``: one .safetensors file, written atomically) after each epoch, or only when
    ``monitor`` improves with ``save_best_only``. ``path`` may contain ``{epoch}``."""

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        _writable_folder(_save_target(str(path).format(epoch=1)))  # refused now, not after an epoch
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


class TerminateOnNaN(Callback):
    """Keras's TerminateOnNaN: stop training after the first batch whose loss is NaN or infinite (that
    batch's update done). ``nn.fit`` stops by itself before such a batch's update (``terminate_on_nan``)."""

    def on_train_begin(self, model):
        self.stop_training = False

    def on_train_batch_end(self, batch, logs, model):
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.stop_training = True


class CSVLogger(Callback):
    """Keras's CSVLogger: one row per epoch (``epoch`` from 0, then every logged metric, sorted) in
    ``filename``, opened when training begins and closed when it ends; ``append=True`` adds to the
    file (a header only if it is empty)."""

    def __init__(self, filename, separator=",", append=False):
        if not (isinstance(separator, str) and len(separator) == 1):
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.file = self.writer = self.keys = None

    def on_train_begin(self, model):
        self.stop_training = False
        self._header = not (self.append and os.path.exists(self.filename) and os.path.getsize(self.filename))
        self.file = open(self.filename, "a" if self.append else "w", newline="")
        self.keys = self.writer = None

    def on_epoch_end(self, epoch, logs, model):
        if self.writer is None:
            self.keys = sorted(logs)
            self.writer = csv.writer(self.file, delimiter=self.sep)
            if self._header:
                self.writer.writerow(["epoch", *self.keys])
        self.writer.writerow([epoch, *(logs.get(key, "NA") for key in self.keys)])
        self.file.flush()

    def on_train_end(self, model):
        if self.file is not None:
            self.file.close()
        self.file = self.writer = None
