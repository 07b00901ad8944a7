"""``nn.LiveView``: watch a training while ``fit`` runs, in one figure that a notebook updates in place.

Keras prints a progress bar and d2l.ai's ``ProgressBoard`` redraws its curves; this callback draws, in one
matplotlib figure, the loss and accuracy (per batch, per epoch, validation), every layer's weight gradient
norm (:func:`nn.diagnostics.weight_gradient_norms`, read from the ``.grad`` the step left: vanishing
gradients are a slope across the layers) and, given a ``sample`` of inputs, each layer's activation
histogram on it (:func:`nn.diagnostics.activation_stats`: the slides' activation-statistics experiment,
live). In Jupyter the figure is shown once, as the training starts (``display(..., display_id=True)``),
and replaced in place (``handle.update``): one output, whatever the number of epochs, with fit's progress
bar under it as one line, replaced in place too. Elsewhere it is that bar, on stderr. A refresh (read the
norms, draw) comes at each epoch end and, between them, at most every ``every`` seconds and only while the
view's time so far, its start included, stays under ``budget`` of the training's; the histograms, whose
sample costs a forward pass, are taken at the start and at epoch ends, and drawn apart.

>>> import numpy as np, nn
>>> x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32); y = (x[:, 0] > 0).astype(np.int64)
>>> model = nn.Sequential(nn.Input((4,)), nn.Dense(8, activation="tanh"), nn.Dense(2))
>>> view = nn.LiveView(mode="none", every=None, sample=x[:32])   # records only; "auto" shows
>>> history = nn.fit(model, (x, y), epochs=2, batch_size=16, callbacks=[view], verbose=0)
>>> view.refreshes, list(view.gradient_norms[-1]), [int(s.counts.sum()) for s in view.activations[-1]]
(2, ['dense', 'dense_1'], [256, 64])
"""
from __future__ import annotations

import io
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import device
from .callbacks import Callback
from .checks import number_in
from .diagnostics import activation_stats, weight_gradient_norms
from .layers import Input
from .plot import HAS_MATPLOTLIB
from .training import _as_model_dtype, _Progress

__all__ = ["LiveView", "MODES", "in_notebook"]

#: "auto": "notebook" in a Jupyter kernel (with matplotlib), else "bar"; "notebook": the figure shown and
#: updated in place; "png": the figure drawn off-screen (``view.png``); "bar": a progress bar on stderr;
#: "none": nothing shown, the data recorded.
MODES = ("auto", "notebook", "png", "bar", "none")
_TRAIN, _VAL = "#1f77b4", "#d62728"          # nn.plot's colours
_PROFILES = 4                                # gradient profiles drawn: the latest and the three before


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's shell with a kernel), where a display can be updated in place.
    IPython is not imported for the question: outside a kernel it need not be installed.

    >>> in_notebook()                 # a doctest runs in no kernel
    False
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _resolve(mode):
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"LiveView: mode must be one of {MODES}, got {mode!r}")
    if mode == "auto":
        return "notebook" if in_notebook() and HAS_MATPLOTLIB else "bar"
    if mode in ("notebook", "png") and not HAS_MATPLOTLIB:
        raise ImportError(f"LiveView: mode={mode!r} draws with matplotlib (pip install matplotlib); "
                          f"mode='bar' needs nothing")
    if mode == "notebook" and not in_notebook():
        raise ValueError("LiveView: mode='notebook' needs a Jupyter kernel to display in; mode='png' draws "
                         "off-screen, mode='auto' picks 'bar' outside a notebook")
    return mode


def _sample(sample):
    if sample is None:
        return None
    try:
        array = np.asarray(sample)
    except (TypeError, ValueError):             # ragged lists
        array = np.zeros(0, object)
    if array.dtype.kind != "f" or array.ndim < 2 or len(array) == 0:
        raise TypeError(f"LiveView: sample must be a float array (N, ...) of inputs, N >= 1, got dtype "
                        f"{array.dtype} and shape {array.shape}")
    return array


def _range(hist_range):
    if hist_range is None:
        return None
    try:
        low, high = (float(v) for v in hist_range)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"LiveView: hist_range must be (low, high), finite, low < high, got {hist_range!r}")
    return low, high


def _count(value, name, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"LiveView: {name} must be an int >= {low}, got {value!r}")
    return int(value)


class LiveView(Callback):
    """A ``fit`` callback that shows the training live (see the module's text): ``callbacks=[nn.LiveView()]``.

    ``mode``: one of :data:`MODES`. ``every``: the least seconds between two refreshes inside an epoch
    (None: at epoch ends only). ``budget``: the largest fraction of the training's time the view may have
    taken for a refresh inside an epoch to come (epoch ends always refresh). ``sample``: inputs whose
    activation histograms (``bins``, ``hist_range`` as in ``activation_stats``) are drawn for up to
    ``histograms`` layers; it needs an ``nn.Sequential`` on the host. The view replaces fit's own progress
    output where it shows one. After a run: ``batches`` ({"epoch", "loss", "accuracy"} per batch, "epoch"
    the position in epochs), ``history`` (per-epoch logs), ``gradient_norms`` (one per refresh, at
    ``refresh_at``, each taking ``refresh_seconds``), ``activations`` (at the start and at each epoch end:
    ``activations_at``), ``refreshes``, ``updates`` (in-place display updates), ``png`` (the last drawing),
    ``seconds`` (the view's own time, ``setup_seconds`` of it at the start); ``save(path)`` writes the PNG.
    """

    def __init__(self, mode="auto", every=1.0, sample=None, bins=30, hist_range=None, histograms=10,
                 budget=0.02, file=None):
        resolved = _resolve(mode)
        if every is not None:
            every = number_in(every, "LiveView: every (seconds, or None for epoch ends only)", 0, open_low=True)
        budget = number_in(budget, "LiveView: budget", 0, 1, open_low=True)
        bins, histograms = _count(bins, "bins", 1), _count(histograms, "histograms", 1)
        hist_range, sample = _range(hist_range), _sample(sample)
        self.sample = sample
        self.mode, self.every, self.budget, self.bins, self.histograms = resolved, every, budget, bins, histograms
        self.hist_range, self.file = hist_range, file
        self._board = self._x = None
        self._reset()

    @property
    def shows_progress(self):
        """Whether the view shows the progress itself (then fit prints none of its own)."""
        return self.mode in ("notebook", "bar")

    def _reset(self):
        self.batches = {"epoch": [], "loss": [], "accuracy": []}
        self.history, self.gradient_norms, self.refresh_at, self.refresh_seconds = {}, [], [], []
        self.activations, self.activations_at = [], []
        self.refreshes = self.updates = 0
        self.png = self._handle = self._progress = self._line = None
        self.seconds = self.setup_seconds = self._cost = 0.0
        self._epoch, self._epoch_losses = 0, []
        self._start = self._last = self._epoch_start = self._bar_time = time.perf_counter()

    # --- the hooks ---------------------------------------------------------------------------------
    def on_train_begin(self, model):
        begin = time.perf_counter()
        sample = self.sample
        if sample is not None:                  # refused here, before the first step
            if not isinstance(getattr(model, "layers", None), list):
                raise TypeError(f"LiveView: sample's histograms need an nn.Sequential (a model with .layers), "
                                f"got {type(model).__name__}")
            if device.device_of(model) == "cuda":
                raise ValueError("LiveView: sample's histograms run on the host; the model is on the GPU "
                                 "(leave sample=None there)")
            sample = _as_model_dtype(model, sample)
        self._reset()
        self.stop_training, self._x, self._start = False, sample, begin
        if sample is not None:                  # the slides' experiment: the network as initialised
            self._stats(model, 0.0)
        if self.mode in ("notebook", "png"):    # the figure made and drawn (the curves empty), shown in a notebook
            self._board_for(model)
            self.png = self._board.draw(self, True)
            if self.mode == "notebook":
                self._show(self.png)
        if self.mode in ("notebook", "bar"):    # fit's bar: on stderr, or one line under the figure
            self._line = _Line() if self.mode == "notebook" else None
            self._progress = _Progress(int(self.params.get("epochs", 0)), max(int(self.params.get("steps", 1)), 1),
                                       1, self._line or self.file or sys.stderr, live=True)
        self._last = self._epoch_start = time.perf_counter()
        self.seconds = self.setup_seconds = self._last - begin

    def on_train_batch_end(self, batch, logs, model):
        now = time.perf_counter()
        steps = max(int(self.params.get("steps", 0)), batch + 1)
        position = self._epoch + (batch + 1) / steps
        self.batches["epoch"].append(position)
        self.batches["loss"].append(logs["loss"])
        self.batches["accuracy"].append(logs.get("accuracy", math.nan))
        self._epoch_losses.append(logs["loss"])
        if self._progress is not None and (now - self._bar_time >= 0.1 or batch + 1 == steps):
            self._bar_time = now
            self._progress.step(self._epoch, batch + 1, float(np.mean(self._epoch_losses)), now - self._epoch_start)
        if self._due(now):
            self._refresh(model, position, epoch_end=False)
        self.seconds += time.perf_counter() - now

    def _due(self, now):
        """Whether a refresh inside an epoch fits: ``every`` seconds since the last one, and the view's time
        with it (at the last refresh's cost) within ``budget`` of the training's time so far."""
        return self.every is not None and now - self._last >= self.every and \
            self.seconds + self._cost <= self.budget * (now - self._start)

    def on_epoch_end(self, epoch, logs, model):
        now = time.perf_counter()
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if self._progress is not None:
            self._progress.epoch_end(epoch, logs, now - self._epoch_start)
        self._refresh(model, epoch + 1, epoch_end=True)
        self._epoch, self._epoch_losses = epoch + 1, []
        self._epoch_start = end = time.perf_counter()
        self.seconds += end - now

    # --- a refresh: read, draw, show -------------------------------------------------------------------
    def _refresh(self, model, position, epoch_end):
        start = time.perf_counter()
        self.gradient_norms.append(weight_gradient_norms(model))
        self.refresh_at.append(position)
        histograms = self._x is not None and epoch_end
        if histograms:
            self._stats(model, position)
        self.refreshes += 1
        if self.mode in ("notebook", "png"):
            self.png = self._board.draw(self, histograms)
            if self.mode == "notebook":
                self._show(self.png)
        self._last = time.perf_counter()
        self._cost = self._last - start
        self.refresh_seconds.append(self._cost)

    def _stats(self, model, position):
        self.activations.append(activation_stats(model, self._x, bins=self.bins, hist_range=self.hist_range))
        self.activations_at.append(position)

    def _show(self, png):
        from IPython.display import Image, display   # here: IPython is there whenever a kernel is

        image = Image(data=png, format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
            self.updates += 1

    def _board_for(self, model):
        """The figures for this model's panels (made again only for a model with other panels)."""
        shown = [layer for layer in model.layers if not isinstance(layer, Input)] if self._x is not None else []
        panels = (min(len(shown), self.histograms), len(weight_gradient_norms(model)))
        if self._board is None or self._board.panels != panels:
            self._board = _Board(*panels)

    def save(self, path):
        """Write the view as of its last refresh to ``path`` as PNG (in any mode, after a run); the path."""
        if not self.refreshes:
            raise ValueError("LiveView.save: nothing recorded yet; pass the view to fit(..., callbacks=[view])")
        if self.png is None:
            if not HAS_MATPLOTLIB:
                raise ImportError("LiveView.save needs matplotlib (pip install matplotlib)")
            histograms = len(self.activations[-1]) if self.activations else 0
            board = _Board(min(histograms, self.histograms), len(self.gradient_norms[-1]))
            self.png = board.draw(self, bool(histograms))
        Path(path).write_bytes(self.png)
        return str(path)


class _Line:
    """A file for fit's progress bar that shows its last line in a notebook, one display replaced in place."""

    def __init__(self):
        from IPython.display import display

        self.text = ""
        self.handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, text):
        self.text += text

    def flush(self):
        lines = [line for line in self.text.replace("\r", "\n").split("\n") if line.strip()]
        if lines:
            self.handle.update({"text/plain": lines[-1]}, raw=True)
        self.text = ""


class _Board:
    """Two figures, made once and updated in place (cheaper than drawing anew): the curves and gradients,
    drawn at every refresh, and the histograms, drawn only when new ones come; stacked into one PNG."""

    def __init__(self, histograms, layers):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure    # here: matplotlib is optional, and 0.3 s to import
        from matplotlib.ticker import MaxNLocator

        self.panels = (histograms, layers)
        self.top = Figure(figsize=(11, 3.6), dpi=72)
        FigureCanvasAgg(self.top)
        self.loss, self.accuracy, self.grads = self.top.subplots(1, 3)
        self.top.subplots_adjust(left=0.06, right=0.98, bottom=0.15, top=0.86, wspace=0.3)
        self.lines = {}
        for ax, name in ((self.loss, "loss"), (self.accuracy, "accuracy")):
            self.lines[name] = ax.plot([], [], color=_TRAIN, alpha=0.3, lw=1, label=f"{name} (batch)")[0]
            self.lines[f"epoch {name}"] = ax.plot([], [], "o-", color=_TRAIN, ms=4, label=name)[0]
            self.lines[f"val_{name}"] = ax.plot([], [], "o-", color=_VAL, ms=4, label=f"val_{name}")[0]
            ax.set(title=name, xlabel="epoch")
            ax.grid(alpha=0.3)
        self.legends = {}
        self.profiles = [self.grads.plot([], [], "o-", ms=3, lw=1.5)[0] for _ in range(_PROFILES)]
        self.grads.set_yscale("log")
        self.grads.set(xlabel="layer (1 = next to the input)")
        self.grads.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.grads.grid(alpha=0.3, which="both")
        self.bottom, self.hists, self.steps, self.pixels = None, [], [], None
        if histograms:
            self.bottom = Figure(figsize=(11, 2.8), dpi=72)
            FigureCanvasAgg(self.bottom)
            self.hists = list(np.atleast_1d(self.bottom.subplots(1, histograms)))
            self.bottom.subplots_adjust(left=0.04, right=0.99, bottom=0.1, top=0.76, wspace=0.35)
            self.bottom.suptitle("activations on the sample, per layer", fontsize=10)
            self.steps = [ax.stairs([0.0], [0.0, 1.0], fill=True, color=_TRAIN, alpha=0.7) for ax in self.hists]
            for ax in self.hists:
                ax.tick_params(labelsize=7)
                ax.xaxis.set_major_locator(MaxNLocator(3))
                ax.set_yticks([])

    def draw(self, view, histograms):
        """The PNG of the view's data: the top figure drawn again, the histograms too when new ones came."""
        from matplotlib.image import imsave

        self._curves(view)
        self._gradients(view)
        self.top.canvas.draw()
        image = np.asarray(self.top.canvas.buffer_rgba())
        if self.bottom is not None and view.activations and (histograms or self.pixels is None):
            self._histograms(view.activations[-1], view.activations_at[-1])
            self.bottom.canvas.draw()
            self.pixels = np.array(self.bottom.canvas.buffer_rgba())
        if self.pixels is not None:
            image = np.concatenate([image, self.pixels])
        buffer = io.BytesIO()
        imsave(buffer, image, format="png")
        return buffer.getvalue()

    def _curves(self, view):
        batches, history = view.batches, view.history
        epochs = np.arange(1, len(history.get("loss", [])) + 1)
        for name, ax in (("loss", self.loss), ("accuracy", self.accuracy)):
            self.lines[name].set_data(batches["epoch"], batches[name])
            for key in (f"epoch {name}", f"val_{name}"):
                values = history.get(key.replace("epoch ", ""), [])
                self.lines[key].set_data(epochs[:len(values)], values)
            ax.relim()
            ax.autoscale_view()
            drawn = [line for key, line in self.lines.items() if name in key and len(line.get_xdata())]
            if drawn and self.legends.get(name) != len(drawn):     # only the curves there are (no val_ without it)
                self.legends[name] = len(drawn)
                ax.legend(handles=drawn, fontsize=8, loc="lower right" if name == "accuracy" else "upper right")

    def _gradients(self, view):
        recent = view.gradient_norms[-_PROFILES:]
        if not recent:                          # the start: no step yet
            self.grads.set_title("||dL/dW|| per layer: after the first refresh", fontsize=10)
            return
        for k, line in enumerate(self.profiles):
            age = len(recent) - 1 - k            # 0: the latest
            if age < 0:
                line.set_data([], [])
                continue
            norms = list(recent[k].values())
            line.set_data(np.arange(1, len(norms) + 1), norms)
            line.set(color=_TRAIN if age == 0 else "0.6", alpha=1.0 if age == 0 else 0.7 - 0.15 * age)
        latest = list(recent[-1].values())
        ratio = latest[0] / latest[-1] if len(latest) > 1 and latest[-1] > 0 else math.nan
        self.grads.set_title(f"||dL/dW|| at epoch {view.refresh_at[-1]:.2f} (grey: earlier)\n"
                             f"layer 1 / last layer: {ratio:.1e}", fontsize=10)
        positive = [v for norms in recent for v in norms.values() if v > 0]
        if positive:                            # set by hand: a log axis refuses zeros (no gradient yet)
            self.grads.set_ylim(min(positive) / 2, max(positive) * 2)
            self.grads.set_xlim(0.5, len(latest) + 0.5)

    def _histograms(self, stats, position):
        self.bottom.suptitle(f"activations on the sample, per layer, at epoch {position:.2f}", fontsize=10)
        chosen = np.unique(np.linspace(0, len(stats) - 1, len(self.hists)).round().astype(int))
        for ax, patch, index in zip(self.hists, self.steps, chosen):
            s = stats[int(index)]
            patch.set_data(s.counts.astype(float), s.edges)
            ax.set_xlim(float(s.edges[0]), float(s.edges[-1]))
            ax.set_ylim(0, max(1.0, 1.05 * float(s.counts.max(initial=0))))
            ax.set_title(f"{s.index} {s.name}\nstd {s.std:.2g}", fontsize=8)
