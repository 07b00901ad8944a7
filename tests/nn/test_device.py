"""A model on the CUDA device (the simulator unless a GPU is asked for; tiny shapes): the training step
stays there (transfers counted), equals the CPU's to float32 round-off, saves the same file, and can
be checked on the host."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from numba import cuda

import autodiff as ad
import kernels
import nn
from _requires import IN_CI  # tests/_requires.py (in CI, where the test extra holds numba-cuda, these run)
from kernels.backend import cuda_available
from nn import device

pytestmark = pytest.mark.skipif(not cuda_available() and not IN_CI, reason="numba.cuda is not available (no GPU, simulator off)")
RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 1, 6, 6)).astype(np.float32)
Y = RNG.integers(0, 3, 8)


def _cnn(dropout=True):
    """conv (fused relu), batch norm, max pool, flatten, dropout, dense: every kind of op of the ready models."""
    nn.set_seed(0)
    layers = [nn.Input((1, 6, 6)), nn.Conv2D(2, 3, activation="relu"), nn.BatchNorm(), nn.MaxPool2D(2), nn.Flatten()]
    return nn.Sequential(layers + ([nn.Dropout(0.25)] if dropout else []) + [nn.Dense(3, activation="softmax")])


class _Transfers:
    """Wraps numba.cuda.to_device and the device arrays' copy_to_host / copy_to_device, counting each."""

    def __init__(self, monkeypatch):
        self.into, self.out, self.out_sizes, self.inside = 0, 0, [], False
        to_device, array_type = cuda.to_device, type(cuda.device_array(1))
        copy_to_host, copy_to_device = array_type.copy_to_host, array_type.copy_to_device

        def counted_to_device(a, *args, **kwargs):
            self.into += 1
            self.inside = True                              # (on a GPU, to_device calls copy_to_device)
            try:
                return to_device(a, *args, **kwargs)
            finally:
                self.inside = False

        def counted_copy_to_host(array, *args, **kwargs):
            self.out += 1
            self.out_sizes.append(int(np.prod(array.shape)))
            return copy_to_host(array, *args, **kwargs)

        def counted_copy_to_device(array, *args, **kwargs):
            self.into += 0 if self.inside else 1
            return copy_to_device(array, *args, **kwargs)

        monkeypatch.setattr(cuda, "to_device", counted_to_device)
        monkeypatch.setattr(array_type, "copy_to_host", counted_copy_to_host)
        monkeypatch.setattr(array_type, "copy_to_device", counted_copy_to_device)


def test_a_training_step_moves_only_the_batch_in_and_the_loss_out(monkeypatch):
    model = _cnn().to("cuda")                                   # PyTorch's way (nn.device.to_device)
    optimizer = nn.optim.Adam(model.parameters(), lr=0.01)
    transfers = _Transfers(monkeypatch)
    with kernels.use_backend("cpu"):            # the data decides where the kernels run, not the context
        history = nn.fit(model, (X, Y), optimizer=optimizer, epochs=2, batch_size=4, verbose=0, shuffle=False)
    steps, epochs = 4, 2
    assert transfers.into == 2 * steps                         # x and the labels of each batch
    assert transfers.out == steps + epochs                     # the loss per step, the accuracy count per epoch
    assert set(transfers.out_sizes) == {1}                     # one number each time
    assert all(isinstance(p.value, kernels.device.DeviceArray) for p in model.parameters())
    assert all(isinstance(s, kernels.device.DeviceArray) for state in optimizer.state for s in state.values())
    assert isinstance(model.layers[2].running_mean, kernels.device.DeviceArray)
    assert np.isfinite(history["loss"]).all() and 0 <= history["accuracy"][-1] <= 1


@pytest.mark.parametrize("optimizer", [lambda ps: nn.optim.SGD(ps, lr=0.1, momentum=0.9),
                                       lambda ps: nn.optim.Adam(ps, lr=0.01)], ids=["sgd-momentum", "adam"])
def test_device_losses_and_parameters_equal_the_cpus(optimizer):
    host, gpu = _cnn(dropout=False), device.to_device(_cnn(dropout=False), "cuda")
    runs = [nn.fit(m, (X, Y), optimizer=optimizer(m.parameters()), epochs=3, batch_size=4, verbose=0,
                   shuffle=False) for m in (host, gpu)]
    np.testing.assert_allclose(runs[1]["loss"], runs[0]["loss"], rtol=1e-5)
    assert runs[1]["accuracy"] == runs[0]["accuracy"]
    back = device.host_copy(gpu).state_dict()
    for name, expected in host.state_dict().items():
        np.testing.assert_allclose(back[name], expected, rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(nn.predict(gpu, X[:3]), nn.predict(host, X[:3]), rtol=1e-4, atol=1e-6)


def test_save_writes_the_cpus_file_and_load_puts_it_back_on_the_device(tmp_path):
    gpu = device.to_device(_cnn(), "cuda")
    nn.fit(gpu, (X, Y), optimizer="sgd", lr=0.1, epochs=1, batch_size=8, verbose=0)
    on_host = device.host_copy(gpu)
    a, b = nn.save(gpu, tmp_path / "gpu"), nn.save(on_host, tmp_path / "cpu")
    stored = [safetensors.numpy.load_file(path) for path in (a, b)]     # the header's key order may vary
    assert stored[0].keys() == stored[1].keys() and all(np.array_equal(stored[0][k], stored[1][k]) for k in stored[0])
    assert nn.io.read_metadata(a) == nn.io.read_metadata(b)
    with safetensors.safe_open(a, "np") as fa, safetensors.safe_open(b, "np") as fb:
        assert fa.metadata() == fb.metadata()
    again = nn.load(a, backend="cuda")
    assert device.device_of(again) == "cuda" and device.device_of(nn.load(a)) == "cpu"
    for (name, p), q in zip(again.named_parameters(), on_host.parameters()):
        assert np.array_equal(p.value.copy_to_host(), q.value), name
    assert device.device_of(again.to("cpu")) == "cpu"
    assert np.array_equal(again.layers[2].running_var, on_host.layers[2].running_var)
    assert device.device_of(again.to("cuda")) == "cuda"


def test_device_gradients_are_checked_on_a_host_copy():
    gpu = device.to_device(_cnn(dropout=False), "cuda")
    loss = nn.functional.softmax_cross_entropy(gpu.forward(device.batch_to_device(X, Y)[0], logits=True),
                                               kernels.device.to_device(Y.astype(np.int64)))
    loss.backward()
    host = device.host_copy(gpu)
    device_norms = nn.diagnostics.gradient_norms(host)               # a teaching view, of the device's gradients
    for p in host.parameters():
        p.grad = None
    nn.functional.softmax_cross_entropy(host.forward(X, logits=True), Y).backward()
    for p, q in zip(gpu.parameters(), host.parameters()):
        np.testing.assert_allclose(p.grad.copy_to_host(), q.grad, rtol=1e-4, atol=1e-6)
    for name, norm in nn.diagnostics.gradient_norms(host).items():
        assert device_norms[name] == pytest.approx(norm, rel=1e-4), name
    dense = host.layers[-1]
    features = host.forward_until(X, host.layers[-2]).value.astype(np.float64)        # the flattened features
    weight = dense.weight.value.astype(np.float64)
    assert ad.gradcheck(lambda w: nn.functional.softmax_cross_entropy(features @ w, Y), weight).passed
    features_on_device = device.batch_to_device(features.astype(np.float32), Y)[0]
    second_order = ad.sum(nn.functional.linear(features_on_device, gpu.layers[-1].weight))
    with pytest.raises(NotImplementedError, match="derivatives of derivatives .* copy the model to the host"):
        second_order.backward(create_graph=True)


def test_without_a_gpu_the_move_is_refused_with_the_backends_message(monkeypatch):
    monkeypatch.setattr(kernels.backend, "cuda_available", lambda: False)
    model = _cnn()
    with pytest.raises(kernels.BackendUnavailable, match=r"numba.cuda.is_available\(\) is False"):
        device.to_device(model, "cuda")
    assert device.device_of(model) == "cpu"
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda', got 'tpu'"):
        device.to_device(model, "tpu")


def test_residual_blocks_average_pooling_and_the_other_activations_run_on_the_device_as_on_the_cpu():
    def model():
        nn.set_seed(1)
        return nn.Sequential([nn.Input((1, 4, 4)), nn.Conv2D(2, 3, padding=1, use_bias=False), nn.BatchNorm(), nn.ReLU(),
                              nn.Residual([nn.Conv2D(2, 3, padding=1, use_bias=False), nn.BatchNorm()]),
                              nn.AvgPool2D(2), nn.Flatten(), nn.Dense(4, activation="tanh"),
                              nn.Dense(4, activation="elu"), nn.Dense(3, activation="softmax")])
    x = X[:4, :, :4, :4].copy()
    host, gpu = model(), device.to_device(model(), "cuda")
    runs = [nn.fit(m, (x, Y[:4]), optimizer="adam", lr=0.01, epochs=2, batch_size=4, verbose=0, shuffle=False)
            for m in (host, gpu)]
    np.testing.assert_allclose(runs[1]["loss"], runs[0]["loss"], rtol=1e-5)
    np.testing.assert_allclose(nn.predict(gpu, x), nn.predict(host, x), rtol=1e-4, atol=1e-6)


def test_an_adjoint_reaching_a_node_twice_is_summed_on_the_device():
    w = nn.Parameter(RNG.normal(size=(5, 3)).astype(np.float32))
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    losses = []
    for on_device in (False, True):
        if on_device:
            w._value, w.grad = kernels.device.to_device(w.value), None
        xs = device.batch_to_device(x, Y[:4])[0] if on_device else x
        labels = kernels.device.to_device(Y[:4].astype(np.int64)) if on_device else Y[:4]
        y = nn.functional.linear(xs, w)                       # y feeds two losses: its adjoint is a sum
        loss = nn.functional.softmax_cross_entropy(y, labels) + nn.functional.softmax_cross_entropy(y, labels)
        loss.backward()
        losses.append((float(loss.value), w.grad.copy_to_host() if on_device else w.grad.copy()))
        assert ("DeviceArray" in repr(loss)) == on_device
    assert losses[1][0] == pytest.approx(losses[0][0], rel=1e-6)
    np.testing.assert_allclose(losses[1][1], losses[0][1], rtol=1e-5, atol=1e-7)


def test_the_gpu_benchmark_runs_in_the_simulator_and_reports_the_traffic(capsys):
    spec = importlib.util.spec_from_file_location("gpu_benchmark", Path(__file__).parents[2] / "benchmarks" / "gpu.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    assert benchmark.main(["--sim"]) == 0
    out = capsys.readouterr().out
    assert "batch     4: ours" in out and "backward weight  ours" in out
    assert "in 2 copies, 816 bytes (x 800 + labels 16); out 1 copies, 4 bytes" in out


def _regressor():
    nn.set_seed(2)
    return nn.Sequential([nn.Input((1, 6, 6)), nn.Conv2D(2, 3, activation="relu"), nn.Flatten(), nn.Dense(3)])


def _probabilities_loss(output, y):              # a function of the caller's: the cross-entropy of probabilities
    return nn.functional.cross_entropy(output, y)


TARGETS = RNG.normal(size=(8, 3)).astype(np.float32)
DEVICE_RUNS = {   # (model, y, fit's options): regularisers, the non-fused losses, the weighted losses
    "mse+l2": (_regressor, TARGETS, dict(loss="mse", regularizer=nn.regularizers.l2(0.1))),
    "mse+sample_weight+l1": (_regressor, TARGETS, dict(loss="mse", regularizer=nn.regularizers.l1(0.01),
                                                       sample_weight=np.linspace(0.5, 2, 8))),
    "cross_entropy+elastic_net": (lambda: _cnn(dropout=False), Y, dict(
        loss=_probabilities_loss, regularizer=nn.regularizers.elastic_net(0.01, 0.1, include_bias=True))),
    "class_weight": (lambda: _cnn(dropout=False), Y, dict(loss="sparse_categorical_crossentropy",
                                                           class_weight={0: 1.0, 1: 3.0, 2: 0.5})),
}


def _as_on_the_cpu(build, x, y, rtol=2e-5, atol=1e-5, optimizer="sgd", **options):
    """Train ``build()`` (which seeds itself) on the CPU and, from the same start, on the device (fit's
    backend="cuda"); assert their losses (``rtol``) and final parameters agree; return the device model and
    the CPU's losses. ``optimizer``: a name, or a function of the parameters (one optimiser per model)."""
    runs, models = [], []
    for backend in ("cpu", "cuda"):
        models.append(build())
        made = optimizer(models[-1].parameters()) if callable(optimizer) else optimizer
        runs.append(nn.fit(models[-1], (x, y), optimizer=made, batch_size=4, verbose=0, shuffle=False,
                           backend=backend, **options)["loss"])
    np.testing.assert_allclose(runs[1], runs[0], rtol=rtol)
    for (key, expected), got in zip(models[0].state_dict().items(), device.host_copy(models[1]).state_dict().values()):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=atol, err_msg=key)
    return models[1], runs[0]


@pytest.mark.parametrize("name", list(DEVICE_RUNS))
def test_regularisers_and_every_loss_train_on_the_device_as_on_the_cpu(name):
    build, y, options = DEVICE_RUNS[name]
    _as_on_the_cpu(build, X, y, rtol=1e-5, atol=1e-6, optimizer="adam", lr=0.01, epochs=3, **options)


def test_fit_with_backend_cuda_moves_a_host_model_once_then_only_the_batches_and_losses(monkeypatch):
    """The one way to the device: fit(backend="cuda") on a host model moves its arrays in once and then
    makes the transfers of model.to("cuda") (two in and one out per step): no copy per kernel call."""
    arrays = len(_cnn().parameters()) + 2                             # the batch norm's running statistics
    counts = []
    for how in ("model.to", "backend="):
        model = _cnn()
        if how == "model.to":
            model.to("cuda")
        transfers = _Transfers(monkeypatch)
        nn.fit(model, (X, Y), optimizer="adam", epochs=2, batch_size=4, verbose=0, shuffle=False,
               backend="cuda" if how == "backend=" else None)
        counts.append((transfers.into, transfers.out))
        monkeypatch.undo()
        assert device.device_of(model) == "cuda"                     # it stays there, as after model.to("cuda")
    assert counts[0] == (2 * 4, 4 + 2)
    assert counts[1] == (counts[0][0] + arrays, counts[0][1])


def test_evaluate_predict_and_an_optimiser_with_state_follow_the_backend():
    """backend= puts the model where the run happens (and back); an optimiser's state made on the host
    follows the model: the same losses as a run that never left the host."""
    host, moved = _cnn(dropout=False), _cnn(dropout=False)
    opt_host, opt_moved = nn.optim.Adam(host.parameters(), lr=0.01), nn.optim.Adam(moved.parameters(), lr=0.01)
    first = [nn.fit(m, (X, Y), optimizer=o, epochs=1, batch_size=4, verbose=0, shuffle=False)["loss"]
             for m, o in ((host, opt_host), (moved, opt_moved))]
    second = [nn.fit(host, (X, Y), optimizer=opt_host, epochs=1, batch_size=4, verbose=0, shuffle=False)["loss"],
              nn.fit(moved, (X, Y), optimizer=opt_moved, epochs=1, batch_size=4, verbose=0, shuffle=False,
                     backend="cuda")["loss"]]
    assert first[0] == first[1]
    np.testing.assert_allclose(second[1], second[0], rtol=1e-5)
    assert all(isinstance(a, kernels.device.DeviceArray) for s in opt_moved.state for a in s.values())
    on_cpu = nn.predict(host, X)
    again = _cnn(dropout=False)
    again.load_state_dict(host.state_dict())
    np.testing.assert_allclose(nn.predict(again, X, backend="cuda"), on_cpu, rtol=1e-4, atol=1e-6)
    assert device.device_of(again) == "cuda"
    metrics = nn.evaluate(again, (X, Y), backend="cpu")
    assert device.device_of(again) == "cpu" and metrics == nn.evaluate(host, (X, Y))
    with pytest.raises(ValueError, match=r"fit: backend must be one of \('numpy', 'cpu', 'cuda'\), got 'gpu'"):
        nn.fit(again, (X, Y), backend="gpu", verbose=0)


def test_without_a_gpu_fit_and_the_command_line_refuse_before_any_output(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(kernels.backend, "cuda_available", lambda: False)
    model = _cnn()
    optimizer = nn.optim.Adam(lr=0.01)                                 # Keras's way: parameters given by fit
    with pytest.raises(kernels.BackendUnavailable, match="numba.cuda.is_available"):
        nn.fit(model, (X, Y), optimizer=optimizer, backend="cuda", verbose=0)
    assert device.device_of(model) == "cpu" and not optimizer.param_groups        # nothing changed
    from chainrule import cli
    status = cli.main(["train", "--backend", "cuda", "--epochs", "1", "--output", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert status != 0 and out == "" and not (tmp_path / "run").exists()
    assert err.count("\n") == 1
    assert err.startswith("chainrule train: --backend cuda: numba.cuda.is_available() is False")
    assert "use --backend cpu" in err and "backend='cpu'" not in err


def test_the_command_line_trains_on_the_device_moving_the_model_once(monkeypatch, tmp_path):
    """chainrule train --backend cuda: the model's arrays in once, then the batches; every kernel call runs
    on data already there (a copy per call would show as thousands of transfers)."""
    from chainrule import cli
    images, labels = nn.datasets.load_digits()
    keep = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(10)])     # 100 images, 10 a class
    monkeypatch.setitem(nn.datasets.DATASETS, "digits", lambda: (images[keep], labels[keep]))
    model_arrays = len(nn.models.keras_mnist_mlp(input_shape=(1, 8, 8)).parameters())
    transfers = _Transfers(monkeypatch)
    out = tmp_path / "run"
    assert cli.main(["train", "--backend", "cuda", "--model", "keras-mnist-mlp", "--epochs", "1", "--batch-size", "32",
                     "--output", str(out)]) == 0
    train_steps, evaluations = 3, 2                     # 70 training images; validation and test: one batch each
    assert transfers.into == model_arrays + 2 * train_steps + 2 * evaluations
    assert (out / "model.safetensors").exists()


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_the_device_dropout_mask_keeps_the_right_share_scaled_by_one_over_the_keep_rate(rate):
    n = 40_000
    rng = np.random.default_rng(7)
    masks = [device.dropout_mask((n,), rate, rng, np.float32).copy_to_host() for _ in range(2)]
    for mask in masks:
        kept = mask != 0
        assert set(np.unique(mask)) == {0.0, np.float32(1 / (1 - rate))}   # inverted dropout: E[mask] = 1
        sigma = np.sqrt(rate * (1 - rate) / n)
        assert abs(kept.mean() - (1 - rate)) < 5 * sigma, kept.mean()
        assert abs(mask.mean() - 1) < 5 * sigma / (1 - rate)
        lag = np.corrcoef(kept[:-1], kept[1:])[0, 1]                     # neighbours independent
        assert abs(lag) < 5 / np.sqrt(n), lag
    assert abs(np.corrcoef(masks[0] != 0, masks[1] != 0)[0, 1]) < 5 / np.sqrt(n)   # a new mask each step


def test_dropout_on_the_device_and_on_the_host_draw_the_same_mask_from_the_same_generator():
    x = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(np.float32)
    host = ad.value_of(nn.functional.dropout(ad.Tensor(x), 0.4, rng=np.random.default_rng(9)))
    on_device = nn.functional.dropout(ad.Tensor(kernels.device.to_device(x)), 0.4, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(ad.value_of(on_device).copy_to_host(), host)
    assert 0 < np.count_nonzero(host) < host.size


LAYERS = {   # every kind of layer of nn (the convolutions, pooling, dropout and batch norm: the tests above)
    "prelu": lambda: [nn.Input((1, 3, 3)), nn.Conv2D(2, 2), nn.PReLU(), nn.Flatten(), nn.Dense(4), nn.PReLU(0.1)],
    "maxout": lambda: [nn.Input((1, 3, 3)), nn.Conv2D(4, 2), nn.Maxout(pieces=2), nn.Flatten(), nn.Dense(4),
                       nn.Maxout(pieces=2)],
    "activation layers": lambda: [nn.Input((4,)), nn.Dense(3), nn.LeakyReLU(), nn.Dense(3), nn.ELU(), nn.Dense(3),
                                  nn.Swish(), nn.Dense(3), nn.Sigmoid(), nn.Dense(3), nn.Tanh(), nn.Dense(3),
                                  nn.Activation("relu"), nn.BatchNorm()],
    "conv1d": lambda: [nn.Input((1, 8)), nn.Conv1D(2, 3), nn.MaxPool1D(2), nn.AvgPool1D(1),
                       nn.GlobalAveragePooling1D()],
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_trains_on_the_device_as_on_the_cpu(name):
    def build():
        nn.set_seed(0)
        return nn.Sequential(LAYERS[name]() + [nn.Dense(2, activation="softmax")])
    x = RNG.random((4, *LAYERS[name]()[0].shape), dtype=np.float32)
    _as_on_the_cpu(build, x, Y[:4] % 2, lr=0.1, epochs=2)


def test_drop_connect_trains_on_the_device():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((4,)), nn.DropConnect(3, rate=0.5), nn.Dense(2, activation="softmax")])
    before = [p.value.copy() for p in model.parameters()]
    history = nn.fit(model, (X[:, 0, 0, :4], Y % 2), epochs=2, batch_size=4, verbose=0, backend="cuda")
    assert np.isfinite(history["loss"]).all()
    assert all(not np.array_equal(p.value.copy_to_host(), b) for p, b in zip(model.parameters(), before))


SHAPES = {"keras-mnist-mlp": (1, 2, 2), "keras-mnist-cnn": (1, 10, 10), "lenet5": (1, 12, 12),
          "resnet-small": (1, 1, 1), "digits-cnn": (1, 4, 4)}


@pytest.mark.parametrize("name", list(nn.models.MODELS))
def test_every_ready_model_trains_on_the_device_as_on_the_cpu(name, monkeypatch):
    """Two SGD steps of each model of nn.models (tiny images, two classes) on the device equal the CPU's;
    dropout's masks differ between the two (as in PyTorch), so it is switched off for the comparison. (Adam
    would turn a gradient that is zero up to round-off into a step of +-lr.)"""
    assert set(SHAPES) == set(nn.models.MODELS)
    x = RNG.random((4, *SHAPES[name]), dtype=np.float32)
    y = np.array([0, 1, 1, 0])
    monkeypatch.setattr(nn.Dropout, "forward", lambda self, x: x)

    def build():
        nn.set_seed(0)
        return nn.models.MODELS[name](input_shape=SHAPES[name], classes=2)
    on_device, _ = _as_on_the_cpu(build, x, y, lr=0.01, epochs=2)
    assert device.device_of(on_device) == "cuda"


def test_target_distributions_train_on_the_device_as_on_the_cpu():
    def model():
        nn.set_seed(0)
        return nn.Sequential([nn.Input((4,)), nn.Dense(3, activation="softmax")])
    x, targets = X[:, 0, 0, :4].copy(), np.eye(3)[Y]                      # float64 one-hot rows, a float32 model
    runs = [nn.fit(m, (x, targets), loss="categorical_crossentropy", epochs=2, batch_size=4, verbose=0,
                   shuffle=False) for m in (model(), model().to("cuda"))]
    np.testing.assert_allclose(runs[1]["loss"], runs[0]["loss"], rtol=1e-5)
    assert runs[1]["accuracy"] == runs[0]["accuracy"]


@pytest.mark.parametrize("clip", [dict(clipnorm=0.05), dict(clipvalue=0.01), dict(global_clipnorm=0.05)],
                         ids=["clipnorm", "clipvalue", "global_clipnorm"])
def test_an_optimisers_gradient_clipping_runs_on_the_device_as_on_the_cpu(clip):
    _, clipped = _as_on_the_cpu(lambda: _cnn(dropout=False), X, Y, rtol=1e-5, atol=1e-6,
                                optimizer=lambda params: nn.optim.SGD(params, lr=0.5, **clip), epochs=2)
    unclipped = nn.fit(_cnn(dropout=False), (X, Y), optimizer=nn.optim.SGD(lr=0.5), epochs=2, batch_size=4,
                       verbose=0, shuffle=False)["loss"]
    assert abs(unclipped[1] - clipped[1]) > 1e-3                     # the clipping changed the training


def test_torchs_clipping_functions_take_device_gradients():
    grads = [RNG.normal(size=(3, 4)).astype(np.float32), RNG.normal(size=(5,)).astype(np.float32)]
    host = [nn.Parameter(np.zeros_like(g)) for g in grads]
    gpu = [nn.Parameter(np.zeros_like(g)) for g in grads]
    for h, d, g in zip(host, gpu, grads):
        h.grad, d.grad = g.copy(), kernels.device.to_device(g)
    total = nn.utils.clip_grad_norm_(gpu, 1.0)
    assert total == pytest.approx(nn.utils.clip_grad_norm_(host, 1.0), rel=1e-6)
    nn.utils.clip_grad_value_(gpu, 0.1), nn.utils.clip_grad_value_(host, 0.1)
    for h, d in zip(host, gpu):
        assert isinstance(d.grad, kernels.device.DeviceArray)
        np.testing.assert_allclose(d.grad.copy_to_host(), h.grad, rtol=1e-6)
    with pytest.raises(ValueError, match="norm_type must be 2 for gradients on the CUDA device, got 1.0"):
        nn.utils.clip_grad_norm_(gpu, 1.0, norm_type=1)


def test_mse_on_the_device_matches_n_by_1_against_n_as_on_the_host():
    prediction, target = RNG.normal(size=(4, 1)).astype(np.float32), RNG.normal(size=4).astype(np.float32)
    on_device = nn.functional.mse(ad.Tensor(kernels.device.to_device(prediction)), target)
    assert float(on_device.value) == pytest.approx(float(ad.value_of(nn.functional.mse(prediction, target))), rel=1e-6)
    with pytest.raises(ValueError, match=r"mse: the target's shape \(4,\) does not match the prediction's \(4, 2\)"):
        nn.functional.mse(ad.Tensor(kernels.device.zeros((4, 2))), target)
