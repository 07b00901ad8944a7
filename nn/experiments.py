"""Trainings side by side: ``cross_validate`` (k-fold), ``sweep`` (a grid of hyper-parameters) and
the ``Ensemble`` of their models, on any executor.

Each training is one task: build the model, ``nn.fit`` it with the validation data, keep its best
weights (``nn.EarlyStopping(restore_best_weights=True)`` on ``monitor``, never stopping early
unless you add your own) and ``nn.evaluate`` them. The tasks run on

- nothing given: one after the other, in this process;
- a ``concurrent.futures.Executor``: e.g. ``process_pool(2)`` (a ``ProcessPoolExecutor`` with the
  spawn start method, which is safe whatever the process ran before);
- Dask: ``distributed.Client(...).get_executor()`` (or the ``Client`` itself: anything with
  ``submit(fn, task)`` whose futures have ``result()``), on a laptop's ``LocalCluster`` or a cluster.
  Dask is the scheduler; nothing here schedules.

Every task is seeded (a generator of its own, ``nn.utils.seeded(seed)``, around the whole training, so
initialisation, dropout and shuffling follow it), so the same call gives the same models wherever it
runs, a ``ThreadPoolExecutor`` included. The seeds come
from ``seed`` by NumPy's ``SeedSequence.spawn``; a sweep gives fold i the same seed for every
combination (the comparison is between hyper-parameters, not luck). A task run in this process
leaves nn's global generator as it found it.

Threads: each task sets Numba's thread count to ``threads`` (by default the cores divided by the
executor's workers: ``max_workers`` of the standard pools, and 1 for any other executor, which suits
Dask's one-thread workers; pass ``threads=`` for Dask workers that each own several cores) and puts
it back after (``numba.set_num_threads``: NUMBA_NUM_THREADS, read when Numba loads, is the ceiling); each
training step runs BLAS on one thread (``kernels.runtime.single_threaded_blas``), so two workers never
fight over the cores.

``build_model`` is called as ``build_model(**params)`` in the worker, so on another process it must be
picklable: a module-level function (``nn.models.digits_cnn``) or a ``functools.partial`` of one, not a
lambda or a function defined inside another; one that is not is refused with a clear error.

>>> import functools, numpy as np, nn
>>> x, y = nn.load_digits()
>>> build = functools.partial(nn.models.digits_cnn)
>>> cv = nn.cross_validate(build, (x[:90], y[:90]), folds=3, epochs=1, batch_size=30, seed=0)
>>> [run.fold for run in cv.runs], sorted(cv.runs[0].metrics)
([0, 1, 2], ['val_accuracy', 'val_loss'])
>>> print(cv.table().splitlines()[0])
fold  seed        epochs  best_epoch  val_loss  val_accuracy  seconds
>>> nn.predict(cv.ensemble(), x[:2]).shape
(2, 10)
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import inspect
import itertools
import multiprocessing
import os
import pickle
import time

import numpy as np

import kernels

from . import utils
from .data import kfold
from .regularizers import Ensemble
from .training import EarlyStopping, History, evaluate, fit

__all__ = ["cross_validate", "sweep", "process_pool", "Run", "Results"]

#: fit's arguments that a task sets itself.
_RESERVED = ("validation", "seed")


def process_pool(workers):
    """A ``ProcessPoolExecutor`` of ``workers`` processes started with spawn (never fork)."""
    workers = utils.positive_int(workers, "workers")
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


@dataclasses.dataclass
class _Task:
    build_model: object
    params: dict            # all of the run's hyper-parameters (for the table)
    build_params: dict      # those that go to build_model
    fit_options: dict       # the rest, with the call's own options, go to nn.fit
    train: tuple
    validation: tuple
    fold: int | None
    seed: int
    threads: int | None
    monitor: str


@dataclasses.dataclass
class Run:
    """One training's outcome: its hyper-parameters ``params``, ``fold`` (None without folds),
    ``seed``, the ``history``, the validation ``metrics`` of its best weights ("val_loss", and
    "val_accuracy" for class labels), ``best_epoch`` (1-based), the best weights as a ``state``
    dict (``model.load_state_dict(run.state)``) and the training's wall ``seconds``."""

    params: dict
    fold: int | None
    seed: int
    history: History
    metrics: dict
    best_epoch: int
    state: dict
    seconds: float


def _run_task(task: _Task) -> Run:
    """Train one model (in whatever process or thread the executor chose) and return its Run. The seed
    is the task's own (``utils.seeded``): trainings in threads side by side do not share nn's generator,
    and the caller's is left as it was."""
    import numba                                 # here: importing nn does not load Numba (kernels load it late too)

    kernels.runtime.ensure_configured()          # the threading layer is chosen before Numba's threads start
    threads_before = numba.get_num_threads()     # Numba's thread count is the calling thread's own
    if task.threads is not None:
        numba.set_num_threads(max(1, min(task.threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        with utils.seeded(task.seed):
            return _train(task)
    finally:
        numba.set_num_threads(threads_before)


def _train(task: _Task) -> Run:
    """Build, fit (keeping the best epoch's weights) and evaluate one task's model."""
    start = time.perf_counter()
    model = task.build_model(**task.build_params)
    options = dict(task.fit_options)
    epochs = int(options.get("epochs", 1))
    best = EarlyStopping(task.monitor, patience=epochs, restore_best_weights=True)
    options["callbacks"] = [*options.get("callbacks", ()), best]
    options.setdefault("verbose", 0)
    history = fit(model, task.train, validation=task.validation, **options)
    result = evaluate(model, task.validation, loss=options.get("loss", "softmax_cross_entropy"))
    metrics = {f"val_{name}": value for name, value in result.items()}
    best_epoch = 0 if best.best_epoch is None else best.best_epoch + 1
    return Run(task.params, task.fold, task.seed, history, metrics, best_epoch, model.state_dict(),
               time.perf_counter() - start)


class Results:
    """The runs of a ``cross_validate`` or ``sweep``, in the order they were asked for."""

    def __init__(self, build_model, runs):
        self.build_model = build_model
        self.runs = list(runs)

    def __repr__(self):
        return f"Results({len(self.runs)} runs)"

    def _names(self):
        params = list(dict.fromkeys(k for run in self.runs for k in run.params))
        metrics = list(dict.fromkeys(k for run in self.runs for k in run.metrics))
        return params, metrics

    def table(self) -> str:
        """One line per run (its hyper-parameters, fold, seed, epochs, best epoch, the validation
        metrics, seconds), then the mean and standard deviation of each metric over the runs."""
        params, metrics = self._names()
        heads = params + ["fold", "seed", "epochs", "best_epoch"] + metrics + ["seconds"]
        rows = [[repr(run.params.get(p)) for p in params]
                + ["-" if run.fold is None else str(run.fold), str(run.seed), str(len(run.history.epoch)),
                   str(run.best_epoch)] + [f"{run.metrics.get(m, float('nan')):.4f}" for m in metrics]
                + [f"{run.seconds:.1f}"] for run in self.runs]
        for label, reduce in (("mean", np.mean), ("std", np.std)):
            values = [reduce([run.metrics[m] for run in self.runs if m in run.metrics]) for m in metrics]
            rows.append([label] + [""] * (len(params) + 3) + [f"{v:.4f}" for v in values] + [""])
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [heads] + rows)

    def _label(self, run):
        parts = [f"{k}={v!r}" for k, v in run.params.items()] + ([] if run.fold is None else [f"fold {run.fold}"])
        return ", ".join(parts) or "run"

    def plot(self, metric="val_loss", ax=None):
        """``metric`` per epoch, one curve per run, on matplotlib's ``ax`` (a new figure's by default;
        matplotlib is needed, as for the lessons' figures); returns the axes."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("Results.plot needs matplotlib: pip install matplotlib") from None
        if ax is None:
            ax = plt.figure(figsize=(6, 4)).add_subplot()
        for run in self.runs:
            if metric not in run.history:
                raise KeyError(f"plot: the runs' histories have no {metric!r}; they have {sorted(run.history.history)}")
            ax.plot(np.arange(1, len(run.history[metric]) + 1), run.history[metric], marker="o", label=self._label(run))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend(fontsize="small")
        return ax

    def summary(self, metric="val_loss"):
        """{params as a sorted tuple of items: (mean, std) of ``metric`` over that combination's runs}."""
        groups = {}
        for run in self.runs:
            groups.setdefault(tuple(sorted(run.params.items())), []).append(run.metrics[metric])
        return {key: (float(np.mean(v)), float(np.std(v))) for key, v in groups.items()}

    def best(self, metric="val_loss", mode="min"):
        """The hyper-parameters (a dict) whose mean ``metric`` is lowest (``mode="max"``: highest)."""
        if mode not in ("min", "max"):
            raise ValueError(f"best: mode must be 'min' or 'max', got {mode!r}")
        summary = self.summary(metric)
        choose = min if mode == "min" else max
        return dict(choose(summary, key=lambda key: summary[key][0]))

    def model(self, run: Run):
        """The model of ``run``: ``build_model(**its parameters)`` with its best weights loaded."""
        model = self.build_model(**_split(self.build_model, run.params)[0])
        model.load_state_dict(run.state)
        return model.eval()

    def models(self, params=None):
        """The runs' models (only those of the combination ``params``, a dict, if given)."""
        return [self.model(run) for run in self.runs if params is None or run.params == dict(params)]

    def ensemble(self, params=None, weights=None):
        """An ``nn.regularizers.Ensemble`` of the runs' models (the folds of ``params`` in a sweep)."""
        models = self.models(params)
        if not models:
            raise ValueError(f"ensemble: no run has the parameters {params!r}")
        return Ensemble(models, weights=weights)


def _split(build_model, params):
    """(build_model's parameters, fit's): a name of one of nn.fit's arguments goes to fit."""
    fit_names = set(inspect.signature(fit).parameters) - {"model", "data"}
    return ({k: v for k, v in params.items() if k not in fit_names},
            {k: v for k, v in params.items() if k in fit_names})


def _check_picklable(build_model, executor, where):
    if not callable(build_model):
        raise TypeError(f"{where}: build_model must be a function returning a model, got {type(build_model).__name__}")
    if executor is None:
        return
    try:
        pickle.dumps(build_model)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        name = getattr(build_model, "__qualname__", repr(build_model))
        raise TypeError(f"{where}: build_model must be picklable to run on an executor (a module-level function or "
                        f"a functools.partial of one), got {name!r} ({error})") from None


def _threads(executor, threads):
    if threads is not None:
        return utils.positive_int(threads, "threads")
    if executor is None:
        return None
    workers = getattr(executor, "_max_workers", None)
    return max(1, (os.cpu_count() or 1) // workers) if workers else 1


def _check_options(options, where):
    taken = [k for k in _RESERVED if k in options]
    if taken:
        raise TypeError(f"{where}: {taken} are set per training (by seed=, and by folds= or validation=); do not "
                        f"pass them as fit options or in the grid")


def _gather(executor, tasks):
    if executor is None:
        return [_run_task(task) for task in tasks]
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must have submit() (a concurrent.futures.Executor or a Dask Client), got "
                        f"{type(executor).__name__}")
    futures = [executor.submit(_run_task, task) for task in tasks]
    return [future.result() for future in futures]


def _seeds(seed, count):
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(count)]


def _folds(data, folds, seed, where):
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{where}: x has {x.shape[0]} samples but y has {y.shape[0]}")
    return [((x[train], y[train]), (x[val], y[val])) for train, val in kfold(x.shape[0], folds, seed=seed)]


def _check_data(data, where):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{where}: data must be a pair (x, y) of arrays, got {type(data).__name__}")
    return data


def _tasks(build_model, combos, splits, seed, threads, monitor, options):
    seeds = _seeds(seed, len(splits))
    tasks = []
    for params in combos:
        build_params, fit_params = _split(build_model, params)
        for i, (train, val) in enumerate(splits):
            tasks.append(_Task(build_model, dict(params), build_params, {**options, **fit_params}, train, val,
                               i if len(splits) > 1 else None, seeds[i], threads, monitor))
    return tasks


def cross_validate(build_model, data, folds=5, seed=0, executor=None, threads=None, monitor="val_loss",
                   **fit_options):
    """K-fold cross-validation: train ``build_model()`` on each of the ``folds`` splits of ``data = (x, y)``
    (``nn.data.kfold(len(x), folds, seed=seed)``), each fold validating on the part it left out.

    ``fit_options`` go to ``nn.fit`` (epochs, batch_size, optimizer, lr, loss, ...; verbose defaults to 0).
    ``executor``, ``threads``: where the trainings run and on how many Numba threads each (module
    docstring). ``monitor``: the validation metric whose best epoch's weights each fold keeps.
    Returns :class:`Results`: ``table()``, ``runs[i].metrics``, ``ensemble()`` of the k models.
    """
    where = "cross_validate"
    _check_picklable(build_model, executor, where)
    _check_options(fit_options, where)
    splits = _folds(_check_data(data, where), folds, seed, where)
    tasks = _tasks(build_model, [{}], splits, seed, _threads(executor, threads), monitor, fit_options)
    return Results(build_model, _gather(executor, tasks))


def _combinations(grid, where):
    """A dict of lists as its cartesian product (scikit-learn's ParameterGrid), or a list of dicts as it is."""
    if isinstance(grid, dict):
        for name, values in grid.items():
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise TypeError(f"{where}: grid[{name!r}] must be a list of values, got {values!r}")
        names = list(grid)
        return [dict(zip(names, combo)) for combo in itertools.product(*(list(grid[n]) for n in names))]
    combos = [dict(c) for c in grid]
    if not combos:
        raise ValueError(f"{where}: grid holds no combination")
    return combos


def sweep(build_model, grid, data, validation=None, folds=None, seed=0, executor=None, threads=None,
          monitor="val_loss", **fit_options):
    """Train one model per combination of ``grid`` (a dict of lists: their cartesian product; or a list
    of dicts), validated on ``validation = (x_val, y_val)`` or, with ``folds=k``, by k-fold
    cross-validation of ``data`` (k trainings per combination).

    A hyper-parameter named like one of ``nn.fit``'s arguments (lr, batch_size, optimizer, epochs...)
    goes to fit, any other to ``build_model``. The other arguments are as for :func:`cross_validate`.
    ``Results.best()`` names the best combination, ``Results.summary()`` gives each one's mean and std.
    """
    where = "sweep"
    _check_picklable(build_model, executor, where)
    _check_options(fit_options, where)
    data = _check_data(data, where)
    if (validation is None) == (folds is None):
        raise ValueError(f"{where}: give either validation=(x_val, y_val) or folds=k, got "
                         f"validation={'None' if validation is None else 'data'}, folds={folds!r}")
    splits = _folds(data, folds, seed, where) if folds is not None else [(tuple(data), tuple(validation))]
    combos = _combinations(grid, where)
    for combo in combos:
        _check_options(combo, where)
    tasks = _tasks(build_model, combos, splits, seed, _threads(executor, threads), monitor, fit_options)
    return Results(build_model, _gather(executor, tasks))

