"""nn's optimisers, training loop and the `chainrule train` main job (saving: tests/nn/test_io.py)."""
import io
import os

import numpy as np
import pytest

import nn
from chainrule.cli import main


def _param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


GRADS = [np.array([0.5, -1.0, 2.0]), np.array([-0.3, 0.2, 1.0]), np.array([1.5, 0.0, -0.7])]
P0 = np.array([1.0, -2.0, 0.5])


def _run(optimizer_class, **hyper):
    p = _param(P0)
    opt = optimizer_class([p], **hyper)
    out = []
    for g in GRADS:
        p.grad = g.copy()
        opt.step()
        out.append(p.value.copy())
    return out


def _sgd_nesterov(lr=0.1, momentum=0.9, weight_decay=0.01):
    p, buf, out = P0.copy(), None, []
    for g in GRADS:
        g = g + weight_decay * p
        buf = g if buf is None else momentum * buf + g
        p = p - lr * (g + momentum * buf)
        out.append(p)
    return out


def _adam(lr=0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False, amsgrad=False):
    p, m, v, vmax, out = P0.copy(), 0.0, 0.0, 0.0, []
    for t, g in enumerate(GRADS, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g                    # eq. 5.29
        v = b2 * v + (1 - b2) * g * g                # eq. 5.30
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - b1 ** t)                    # eq. 5.31
        v_hat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)  # eq. 5.33, eps outside the root as torch
        out.append(p)
    return out


def _rmsprop_centered(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.5):
    p, sq, avg, buf, out = P0.copy(), 0.0, 0.0, 0.0, []
    for g in GRADS:
        sq = alpha * sq + (1 - alpha) * g * g
        avg = alpha * avg + (1 - alpha) * g
        buf = momentum * buf + g / (np.sqrt(sq - avg * avg) + eps)
        p = p - lr * buf
        out.append(p)
    return out


def _adagrad(lr=0.1, lr_decay=0.01, eps=1e-10):
    p, s, out = P0.copy(), 0.0, []
    for t, g in enumerate(GRADS, start=1):
        s = s + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
        out.append(p)
    return out


def _adadelta(lr=1.0, rho=0.9, eps=1e-6):
    p, sq, acc, out = P0.copy(), 0.0, 0.0, []
    for g in GRADS:
        sq = rho * sq + (1 - rho) * g * g
        delta = np.sqrt(acc + eps) / np.sqrt(sq + eps) * g
        acc = rho * acc + (1 - rho) * delta * delta
        p = p - lr * delta
        out.append(p)
    return out


@pytest.mark.parametrize("optimizer, hyper, equations", [
    (nn.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), _sgd_nesterov),
    (nn.optim.Adam, dict(lr=0.01), _adam),
    (nn.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1),
     lambda: _adam(amsgrad=True, weight_decay=0.1)),
    (nn.optim.AdamW, dict(lr=0.01), lambda: _adam(weight_decay=0.01, decoupled=True)),
    (nn.optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True), _rmsprop_centered),
    (nn.optim.Adagrad, dict(lr=0.1, lr_decay=0.01), _adagrad),
    (nn.optim.Adadelta, dict(), _adadelta),
])
def test_first_steps_equal_the_update_equations(optimizer, hyper, equations):
    for got, expected in zip(_run(optimizer, **hyper), equations()):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_optimiser_defaults_are_torch_optims():
    p = [_param([1.0])]
    assert nn.optim.Adam(p).hyper == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)
    assert nn.optim.AdamW(p).hyper["weight_decay"] == 1e-2
    assert nn.optim.RMSprop(p).hyper["alpha"] == 0.99 and nn.optim.RMSprop(p).lr == 1e-2
    assert nn.optim.Adadelta(p).lr == 1.0 and nn.optim.Adagrad(p).lr == 1e-2


def test_parameters_without_gradient_are_skipped_and_state_round_trips():
    a, b = _param([1.0, 2.0]), _param([3.0])
    opt = nn.optim.Adam([a, b], lr=0.1)
    a.grad = np.array([1.0, 1.0])
    opt.step()
    assert b.value[0] == 3.0 and opt.steps == [1, 0]
    saved = opt.state_dict()
    twin_a, twin_b = _param(a.value), _param(b.value)
    twin = nn.optim.Adam([twin_a, twin_b], lr=0.5)
    twin.load_state_dict(saved)                     # hyper-parameters, step counts and moments
    assert twin.lr == 0.1 and twin.steps == [1, 0]
    for p in (a, twin_a):
        p.grad = np.array([0.5, -0.5])
    opt.step()
    twin.step()
    np.testing.assert_array_equal(twin_a.value, a.value)
    with pytest.raises(ValueError, match="state of a Adam, not a SGD"):
        nn.optim.SGD([a]).load_state_dict(saved)
    with pytest.raises(TypeError, match=r"Adam got unexpected arguments \['momentum'\]"):
        nn.optim.Adam([a], momentum=0.9)


def test_learning_rate_schedules():
    opt = nn.optim.SGD([_param([1.0])], lr=1.0)
    step = nn.optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        step.step()
        lrs.append(opt.lr)
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt.lr = 1.0
    plateau = nn.optim.ReduceLROnPlateau(opt, patience=2)
    for loss in (1.0, 0.9, 0.9, 0.9, 0.9):
        plateau.step(loss)
    assert opt.lr == pytest.approx(0.1)             # divided by 10 once progress stalled for > 2 epochs


# --- training -------------------------------------------------------------------------------------------

def _tiny_problem(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1, 4, 4)).astype(np.float32)
    y = (x[:, 0, :2].sum(axis=(1, 2)) > x[:, 0, 2:].sum(axis=(1, 2))).astype(np.int64)
    return x, y


def test_a_tiny_cnn_overfits_a_tiny_batch_to_almost_zero_loss():
    x, y = _tiny_problem(16)
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((1, 4, 4)), nn.Conv2D(8, 3, activation="relu"), nn.Flatten(),
                           nn.Dense(2, activation="softmax")])
    history = nn.fit(model, (x, y), loss="sparse_categorical_crossentropy", optimizer="adam", lr=0.03,
                     epochs=150, batch_size=16, verbose=0)
    assert history["loss"][-1] < 0.01 and history["accuracy"][-1] == 1.0
    assert history["loss"][0] > 0.3


def test_fit_history_validation_and_the_progress_line():
    x, y = _tiny_problem()
    out = io.StringIO()
    model = nn.Sequential([nn.Input((1, 4, 4)), nn.Flatten(), nn.Dense(2)])
    history = nn.fit(model, (x[:48], y[:48]), epochs=2, batch_size=16, validation=(x[48:], y[48:]), file=out)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert len(history["val_loss"]) == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("Epoch 2/2 - 3/3 - ") and "val_accuracy: " in lines[1]
    manual = nn.evaluate(model, (x[48:], y[48:]))
    assert manual["loss"] == pytest.approx(history["val_loss"][-1])
    with pytest.raises(ValueError, match="x has 64 samples but y has 63"):
        nn.fit(model, (x, y[:-1]))


def test_augmentation_is_applied_to_every_training_batch_only():
    x, y = _tiny_problem(32)
    seen = []

    def augment(xb, rng):
        seen.append(xb.shape[0])
        return xb[..., ::-1].copy()            # a horizontal flip

    model = nn.Sequential([nn.Input((1, 4, 4)), nn.Flatten(), nn.Dense(2)])
    nn.fit(model, (x, y), epochs=2, batch_size=10, validation=(x, y), augment=augment, verbose=0)
    assert seen == [10, 10, 10, 2] * 2
    flip = nn.augment.RandomFlip(p=1.0)                   # the transforms have the same signature
    np.testing.assert_array_equal(flip(x, np.random.default_rng(0)), x[..., ::-1])


def test_regression_with_mse_logs_no_accuracy():
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
    model = nn.Sequential([nn.Input((3,)), nn.Dense(1)])
    history = nn.fit(model, (x, y), loss="mse", lr=0.05, epochs=30, validation=(x, y), verbose=0)
    assert set(history.history) == {"loss", "val_loss", "lr"}
    assert history["val_loss"][-1] < 0.01 * history["val_loss"][0]


def test_early_stopping_restores_the_best_weights():
    x, y = _tiny_problem()
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((1, 4, 4)), nn.Flatten(), nn.Dense(2)])
    snapshots = []

    class Spy(nn.Callback):
        def on_epoch_end(self, epoch, logs, model):
            snapshots.append((logs["val_loss"], model.state_dict()))

    stop = nn.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    # validated on the opposite labels: the better it learns, the worse the validation loss, so the
    # best epoch is an early one and training stops `patience` epochs after it
    nn.fit(model, (x, y), optimizer="sgd", lr=0.5, epochs=30, validation=(x, 1 - y), callbacks=[Spy(), stop],
           verbose=0)
    assert stop.stopped_epoch is not None and len(snapshots) == stop.best_epoch + 3
    best_loss, best_state = min(snapshots, key=lambda s: s[0])
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, best_state[name])


def test_backends_numpy_and_cpu_train_the_same_model():
    x, y = _tiny_problem(32)
    losses = {}
    for backend in ("numpy", "cpu"):
        nn.set_seed(1)
        model = nn.Sequential([nn.Input((1, 4, 4)), nn.Conv2D(3, 2, activation="relu"), nn.MaxPool2D(2),
                               nn.Flatten(), nn.Dense(2)])
        losses[backend] = nn.fit(model, (x, y), epochs=3, batch_size=8, backend=backend, seed=0, verbose=0)["loss"]
    np.testing.assert_allclose(losses["numpy"], losses["cpu"], rtol=1e-5)


def test_cuda_backend_trains_in_the_simulator():
    import kernels
    if not kernels.cuda_available():
        pytest.skip("numba.cuda is not available")
    x, y = _tiny_problem(4)
    losses = {}
    for backend in ("numpy", "cuda"):
        nn.set_seed(2)
        model = nn.Sequential([nn.Input((1, 4, 4)), nn.Conv2D(2, 3), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(2)])
        losses[backend] = nn.fit(model, (x, y), epochs=1, batch_size=4, backend=backend, seed=0, verbose=0)["loss"]
    np.testing.assert_allclose(losses["cuda"], losses["numpy"], rtol=1e-5)


# --- the main job --------------------------------------------------------------------------------------

def test_chainrule_train_reaches_97_percent_on_held_out_digits(tmp_path, capsys):
    code = main(["train", "--model", "digits-cnn", "--dataset", "digits", "--epochs", "10", "--optimizer", "adam",
                 "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "Total params: 21,386" in out and "Epoch 10/10" in out
    accuracy = float(out.split("Test accuracy: ")[1].split()[0])
    assert accuracy >= 0.97
    assert sorted(os.listdir(tmp_path)) == ["history.svg", "model.safetensors"]
    model = nn.load(tmp_path / "model")
    assert abs(nn.io.read_metadata(tmp_path / "model")["test_accuracy"] - accuracy) < 1e-4
    assert model.count_params() == 21_386


def _write_idx(path, magic, array):
    import gzip

    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_chainrule_train_on_a_full_mnist_folder_tests_on_the_test_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 50)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 30, (n, 28, 28))
        images[np.arange(n), 2 * labels + 4] = 255                # one bright row per class
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", 2051, images)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", 2049, labels)
    code = main(["train", "--model", "keras-mnist-mlp", "--dataset", "mnist", "--data-dir", str(tmp_path),
                 "--epochs", "3", "--output", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    assert "180 train, 20 validation, 50 test" in out and "(50 held-out images)" in out
    assert float(out.split("Test accuracy: ")[1].split()[0]) > 0.5


def test_chainrule_train_mnist_needs_a_folder(capsys):
    assert main(["train", "--dataset", "mnist"]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_chainrule_train_without_a_gpu_says_so(monkeypatch, capsys):
    import kernels.backend
    monkeypatch.setattr(kernels.backend, "cuda_available", lambda: False)
    assert main(["train", "--backend", "cuda", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "--backend cuda: numba.cuda.is_available() is False" in err and "use --backend cpu" in err
