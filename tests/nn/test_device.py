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


def test_what_a_device_step_cannot_do_yet_is_refused_before_the_first_step():
    model = device.to_device(_cnn(), "cuda")
    before = [p.value.copy_to_host() for p in model.parameters()]
    with pytest.raises(NotImplementedError, match="regularizer= is not supported there yet"):
        nn.fit(model, (X, Y), epochs=1, verbose=0, regularizer=nn.regularizers.l2(1e-3))
    with pytest.raises(NotImplementedError, match="loss 'mse' is not supported there yet"):
        nn.fit(model, (X, np.ones((8, 3), np.float32)), loss="mse", epochs=1, verbose=0)
    assert all(np.array_equal(p.value.copy_to_host(), b) for p, b in zip(model.parameters(), before))
    with pytest.raises(TypeError, match=r"np.multiply of a DeviceArray and a host array of shape \(8, 3\)"):
        np.ones((8, 3), np.float32) * kernels.device.zeros((8, 3))


def test_target_distributions_train_on_the_device_as_on_the_cpu():
    def model():
        nn.set_seed(0)
        return nn.Sequential([nn.Input((4,)), nn.Dense(3, activation="softmax")])
    x, targets = X[:, 0, 0, :4].copy(), np.eye(3)[Y]                      # float64 one-hot rows, a float32 model
    runs = [nn.fit(m, (x, targets), loss="categorical_crossentropy", epochs=2, batch_size=4, verbose=0,
                   shuffle=False) for m in (model(), model().to("cuda"))]
    np.testing.assert_allclose(runs[1]["loss"], runs[0]["loss"], rtol=1e-5)
    assert runs[1]["accuracy"] == runs[0]["accuracy"]
