"""nn.cross_validate and nn.sweep: the same seeded trainings wherever they run (in this process, a
spawn process pool, a Dask LocalCluster), folds and seeds as documented, best weights kept, the
Ensemble of the folds, the summary table; and clear errors."""
from __future__ import annotations

import functools
import os

import distributed
import numpy as np
import pytest

import nn
from nn.experiments import Results, _threads, process_pool

X, Y = nn.load_digits()
DATA = (X[:240], Y[:240])
BUILD = functools.partial(nn.models.digits_cnn)      # picklable: a partial of a module-level function
OPTIONS = dict(epochs=2, batch_size=32, lr=0.003)


@pytest.fixture(autouse=True, scope="module")
def _environment_restored():
    """Dask's LocalCluster writes OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_...
    into this process's environment (for its workers) and leaves them: every later test that starts
    a Python would inherit them. Put the environment back after this file's tests."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def in_process():
    return nn.cross_validate(BUILD, DATA, folds=3, seed=11, **OPTIONS)


def _same_runs(a: Results, b: Results):
    assert [r.fold for r in a.runs] == [r.fold for r in b.runs] == [0, 1, 2]
    for r, s in zip(a.runs, b.runs):
        assert r.seed == s.seed and r.best_epoch == s.best_epoch
        assert r.metrics == s.metrics                             # bit for bit: the same seeded arithmetic
        assert r.history.history == s.history.history
        assert r.state.keys() == s.state.keys()
        assert all(np.array_equal(r.state[k], s.state[k]) for k in r.state)


def test_on_a_dask_local_cluster_the_folds_equal_the_in_process_ones(in_process):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        on_dask = nn.cross_validate(BUILD, DATA, folds=3, seed=11, executor=client.get_executor(), **OPTIONS)
        assert len(client.scheduler_info()["workers"]) == 2
        via_client = nn.cross_validate(BUILD, DATA, folds=3, seed=11, executor=client, **OPTIONS)   # client.submit
    _same_runs(in_process, on_dask)
    _same_runs(in_process, via_client)
    accuracies = [run.metrics["val_accuracy"] for run in on_dask.runs]
    assert min(accuracies) > 0.3                                  # they learned something (chance: 0.1)


def test_a_spawn_process_pool_gives_the_same_folds(in_process):
    with process_pool(2) as pool:
        assert pool._mp_context.get_start_method() == "spawn"
        _same_runs(in_process, nn.cross_validate(BUILD, DATA, folds=3, seed=11, executor=pool, **OPTIONS))


def test_each_fold_is_the_documented_training(in_process):
    """The oracle: kfold's split, nn.set_seed(the run's seed), build, fit, keep the best epoch, evaluate."""
    assert len({run.seed for run in in_process.runs}) == 3
    for run, (train, val) in zip(in_process.runs, nn.data.kfold(len(DATA[0]), 3, seed=11)):
        nn.set_seed(run.seed)
        model = BUILD()
        best = nn.EarlyStopping("val_loss", patience=10, restore_best_weights=True)
        history = nn.fit(model, (DATA[0][train], DATA[1][train]), validation=(DATA[0][val], DATA[1][val]),
                         callbacks=[best], verbose=0, **OPTIONS)
        assert history.history == run.history.history
        expected = nn.evaluate(model, (DATA[0][val], DATA[1][val]))
        assert run.metrics == {"val_loss": expected["loss"], "val_accuracy": expected["accuracy"]}
        losses = history["val_loss"]
        assert run.best_epoch == int(np.argmin(losses)) + 1
        np.testing.assert_allclose(run.metrics["val_loss"], min(losses), rtol=1e-6)


def test_another_seed_gives_other_models_and_this_process_keeps_its_generator(in_process):
    nn.set_seed(123)
    expected = nn.utils.rng().random()
    nn.set_seed(123)
    other = nn.cross_validate(BUILD, DATA, folds=3, seed=12, **OPTIONS)
    assert nn.utils.rng().random() == expected                  # the user's global generator is untouched
    assert [r.seed for r in other.runs] != [r.seed for r in in_process.runs]
    assert other.runs[0].metrics != in_process.runs[0].metrics


def test_the_ensemble_of_the_folds_averages_their_probabilities(in_process):
    x = X[240:300]
    members = in_process.models()
    assert len(members) == 3
    expected = np.mean([nn.predict(m, x) for m in members], axis=0)
    np.testing.assert_allclose(nn.predict(in_process.ensemble(), x), expected, rtol=1e-5, atol=1e-7)
    for member, run in zip(members, in_process.runs):           # the members carry the folds' best weights
        np.testing.assert_allclose(nn.evaluate(member, (X[:240], Y[:240]))["loss"],
                                   nn.evaluate(in_process.model(run), (X[:240], Y[:240]))["loss"])


def test_the_table_lists_the_runs_and_their_mean_and_std(in_process):
    lines = in_process.table().splitlines()
    assert lines[0].split() == ["fold", "seed", "epochs", "best_epoch", "val_loss", "val_accuracy", "seconds"]
    assert [line.split()[0] for line in lines[1:]] == ["0", "1", "2", "mean", "std"]
    losses = [run.metrics["val_loss"] for run in in_process.runs]
    assert lines[4].split()[1:] == [f"{np.mean(losses):.4f}",
                                    f"{np.mean([r.metrics['val_accuracy'] for r in in_process.runs]):.4f}"]
    assert lines[5].split()[1] == f"{np.std(losses):.4f}"


def test_the_plot_draws_one_curve_per_run(in_process):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    ax = in_process.plot("val_accuracy")
    assert [line.get_label() for line in ax.get_lines()] == ["fold 0", "fold 1", "fold 2"]
    for line, run in zip(ax.get_lines(), in_process.runs):
        assert list(line.get_ydata()) == run.history["val_accuracy"] and list(line.get_xdata()) == [1, 2]
    with pytest.raises(KeyError, match="no 'val_auc'"):
        in_process.plot("val_auc")
    matplotlib.pyplot.close("all")


_SEEN_THREADS = []


def small_cnn(filters=4):
    import numba
    _SEEN_THREADS.append(numba.get_num_threads())
    return nn.Sequential([nn.Input((1, 8, 8)), nn.Conv2D(filters, 3, padding=1, activation="relu"), nn.MaxPool2D(2),
                          nn.Flatten(), nn.Dense(10, activation="softmax")])


def test_a_sweep_sends_fit_arguments_to_fit_and_the_rest_to_build_model():
    import numba

    import kernels
    kernels.runtime.ensure_configured()       # Numba's threads start only after the kernels chose their layer
    before = numba.get_num_threads()
    _SEEN_THREADS.clear()
    grid = {"filters": [2, 5], "lr": [0.001, 0.02]}
    results = nn.sweep(small_cnn, grid, DATA, validation=(X[240:300], Y[240:300]), epochs=2, batch_size=40,
                       threads=1)
    assert _SEEN_THREADS == [1] * 4 and numba.get_num_threads() == before   # set for the task, then put back
    assert [run.params for run in results.runs] == [{"filters": 2, "lr": 0.001}, {"filters": 2, "lr": 0.02},
                                                    {"filters": 5, "lr": 0.001}, {"filters": 5, "lr": 0.02}]
    for run in results.runs:
        assert run.state["conv2d.weight"].shape[0] == run.params["filters"]
        assert run.history["lr"] == [run.params["lr"]] * 2
        assert run.fold is None
    assert len({run.seed for run in results.runs}) == 1          # the same luck for every combination
    summary = results.summary()
    assert summary[(("filters", 5), ("lr", 0.02))] == (results.runs[3].metrics["val_loss"], 0.0)
    assert results.best() == results.runs[int(np.argmin([r.metrics["val_loss"] for r in results.runs]))].params
    assert results.best("val_accuracy", mode="max") in [r.params for r in results.runs]


def test_a_sweep_with_folds_cross_validates_each_combination():
    results = nn.sweep(small_cnn, [{"filters": 3}, {"filters": 6}], DATA, folds=2, epochs=1, batch_size=40)
    assert [(r.params["filters"], r.fold) for r in results.runs] == [(3, 0), (3, 1), (6, 0), (6, 1)]
    assert results.runs[0].seed == results.runs[2].seed != results.runs[1].seed
    mean, std = results.summary()[(("filters", 6),)]
    losses = [r.metrics["val_loss"] for r in results.runs[2:]]
    assert (mean, std) == pytest.approx((np.mean(losses), np.std(losses)))
    ensemble = results.ensemble({"filters": 6})
    assert len(ensemble.members) == 2 and ensemble.members[0].layers[1].weight.shape[0] == 6


def test_threads_per_worker_divide_the_cores():
    with process_pool(2) as pool:
        assert _threads(pool, None) == max(1, __import__("os").cpu_count() // 2)
        assert _threads(pool, 3) == 3
    assert _threads(None, None) is None and _threads(object(), None) == 1


def test_bad_calls_are_refused_clearly():
    with process_pool(1) as pool:
        with pytest.raises(TypeError, match=r"build_model must be picklable .*module-level function or a "
                                            r"functools.partial.*got '.*<lambda>'"):
            nn.cross_validate(lambda: nn.models.digits_cnn(), DATA, folds=3, executor=pool)
    with pytest.raises(TypeError, match=r"\['seed'\] are set per training"):
        nn.sweep(BUILD, {"seed": [1, 2]}, DATA, folds=2)
    with pytest.raises(TypeError, match=r"\['validation'\] are set per training"):
        nn.cross_validate(BUILD, DATA, folds=3, validation=DATA)
    with pytest.raises(ValueError, match=r"k must be in \[2, n=240\]"):
        nn.cross_validate(BUILD, DATA, folds=1)
    with pytest.raises(ValueError, match="give either validation=.* or folds=k"):
        nn.sweep(BUILD, {"lr": [0.1]}, DATA)
    with pytest.raises(TypeError, match=r"grid\['lr'\] must be a list of values, got 0.1"):
        nn.sweep(BUILD, {"lr": 0.1}, DATA, folds=2)
    with pytest.raises(TypeError, match="executor must have submit"):
        nn.cross_validate(BUILD, DATA, folds=2, executor="dask")
    with pytest.raises(ValueError, match="threads must be a positive int, got 0"):
        nn.cross_validate(BUILD, DATA, folds=2, threads=0)
    with pytest.raises(TypeError, match="data must be a pair"):
        nn.cross_validate(BUILD, X, folds=2)
