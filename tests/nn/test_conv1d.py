"""conv1d and the 1-D layers: against direct NumPy loops of the 1-D formulas, on every kernel backend
(cuda in Numba's simulator unless a GPU is asked for: tiny shapes); derivatives against central
differences (autodiff.gradcheck, orders 1 and 2); shapes, errors, save/load, the sequence model."""
import io

import numpy as np
import pytest

import autodiff as ad
import kernels
import nn
from kernels.backend import cuda_available
from nn import functional as F

BACKENDS = ["numpy", "cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not cuda_available(), reason="numba.cuda unavailable (no GPU and NUMBA_ENABLE_CUDASIM is off)"))]


def direct_conv1d(x, w, b, stride=1, padding=0, dilation=1, groups=1):
    """y[n, f, i] = b[f] + sum_{c, p} w[f, c, p] x[n, group(f) * C/groups + c, i s + p d - pad], term by term."""
    n_images, _, length = x.shape
    n_filters, cg, k = w.shape
    fg = n_filters // groups
    lo = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((n_images, n_filters, lo))
    for n in range(n_images):
        for f in range(n_filters):
            for i in range(lo):
                total = 0.0 if b is None else b[f]
                for c in range(cg):
                    for p in range(k):
                        t = i * stride + p * dilation - padding
                        if 0 <= t < length:
                            total += w[f, c, p] * x[n, (f // fg) * cg + c, t]
                y[n, f, i] = total
    return y


def direct_pool1d(x, size, stride, padding, reduce):
    """max (padding never wins) or mean (zero padding counted in the divisor) over each window."""
    fill = -np.inf if reduce is np.max else 0.0
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding)), constant_values=fill)
    lo = (x.shape[2] + 2 * padding - size) // stride + 1
    return np.stack([reduce(padded[:, :, i * stride:i * stride + size], axis=2) for i in range(lo)], axis=2)


# (x shape, w shape, stride, padding, dilation, groups)
CASES = {"plain": ((2, 3, 7), (4, 3, 3), 1, 0, 1, 1),
         "strided-padded": ((2, 2, 9), (3, 2, 4), 2, 2, 1, 1),
         "dilated-grouped": ((1, 4, 10), (6, 2, 3), 1, 1, 2, 2),
         "everything": ((2, 4, 11), (4, 1, 2), 3, 1, 3, 4)}


def _problem(case, seed=0, dtype=np.float64):
    x_shape, w_shape, stride, padding, dilation, groups = CASES[case]
    rng = np.random.default_rng(seed)
    x, w, b = (rng.uniform(-1, 1, s).astype(dtype) for s in (x_shape, w_shape, w_shape[0]))
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_conv1d_equals_the_direct_sum_on_every_backend(case, backend):
    x, w, b, options = _problem(case)
    want = direct_conv1d(x, w, b, **options)
    with kernels.use_backend(backend):
        y = F.conv1d(x, w, b, **options)
        fused = F.conv1d(x, w, b, **options, activation="relu")
        no_bias = F.conv1d(x, w, **options)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused, np.maximum(want, 0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(no_bias, direct_conv1d(x, w, None, **options), rtol=1e-12, atol=1e-12)
    assert (want < 0).any() and (want > 0).any()          # the ReLU has something to cut


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("case", ["strided-padded", "dilated-grouped"])
def test_conv1d_derivatives_equal_central_differences(case, backend):
    x, w, b, options = _problem(case, seed=1)
    with kernels.use_backend(backend):
        assert ad.gradcheck(lambda x, w, b: F.conv1d(x, w, b, **options), x, w, b).passed
        assert ad.gradcheck(lambda x, w, b: F.conv1d(x, w, b, **options), x, w, b, order=2).passed
        assert ad.gradcheck(lambda x, w, b: F.conv1d(x, w, b, **options, activation="relu"), x, w, b).passed


@pytest.mark.skipif(not cuda_available(), reason="numba.cuda unavailable (no GPU and NUMBA_ENABLE_CUDASIM is off)")
def test_conv1d_derivatives_on_cuda_equal_central_differences():
    rng = np.random.default_rng(2)
    x, w, b = rng.uniform(-1, 1, (1, 2, 5)), rng.uniform(-1, 1, (2, 1, 2)), rng.uniform(-1, 1, 2)
    with kernels.use_backend("cuda"):
        assert ad.gradcheck(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, groups=2), x, w, b,
                            modes=("reverse",)).passed


def test_padding_same_keeps_the_length_and_valid_is_zero():
    x, w, b, _ = _problem("plain")
    np.testing.assert_allclose(F.conv1d(x, w, b, padding="valid"), direct_conv1d(x, w, b))
    w5 = np.random.default_rng(3).uniform(-1, 1, (4, 3, 5))
    y = F.conv1d(x, w5, b, padding="same", dilation=2)         # pad 2 * (5 - 1) / 2 = 4
    assert y.shape == (2, 4, 7)
    np.testing.assert_allclose(y, direct_conv1d(x, w5, b, padding=4, dilation=2), rtol=1e-12)
    assert F.conv1d(x, w5, b, padding="same", stride=2).shape == (2, 4, 4)   # ceil(7 / 2)


@pytest.mark.parametrize("call, message", [
    (lambda x, w: F.conv1d(x[0], w), r"conv1d: x must be \(N, C, L\)"),
    (lambda x, w: F.conv1d(x, w[..., None]), r"conv1d: w must be \(F, C/groups, k\)"),
    (lambda x, w: F.conv1d(x, w, stride=(1, 2)), "stride must be an int"),
    (lambda x, w: F.conv1d(x, w, dilation=0), "dilation must be >= 1"),
    (lambda x, w: F.conv1d(x, w, padding="full"), "padding must be an int, 'valid' or 'same'"),
    (lambda x, w: F.conv1d(x, np.ones((4, 3, 2)), padding="same"), "padding='same' needs"),
    (lambda x, w: F.conv1d(x, w, stride=2, geometry=nn.convolution.conv1d_geometry(3)), "either geometry="),
    (lambda x, w: F.conv1d(x, w, geometry=kernels.ConvGeometry(2)), "geometry must be a conv1d_geometry"),
    (lambda x, w: nn.Conv1D(4, 3, dilation=2, dilation_rate=2), "dilation= or Keras's dilation_rate="),
    (lambda x, w: nn.Conv1D(4, 3, groups=2)(x), "groups=2 must divide the input channels"),
    (lambda x, w: nn.Conv1D(4, 3)(x[..., None]), r"Conv1D needs input \(C, L\)"),
    (lambda x, w: nn.MaxPool1D(2, padding=-1), "padding must be >= 0"),
    (lambda x, w: nn.Conv1D(4, 5, dilation=2)(x), r"Conv1D over the length of its input of shape \(3, 7\).*kernel 9"),
    (lambda x, w: nn.AvgPool1D(8)(x), r"AvgPool1D over the length of its input of shape \(3, 7\)"),
])
def test_bad_arguments_are_refused_by_name(call, message):
    x, w, _, _ = _problem("plain")
    with pytest.raises((TypeError, ValueError), match=message):
        call(x, w)


def test_conv1d_layer_is_f_conv1d_with_its_weights_and_keras_names():
    nn.set_seed(0)
    layer = nn.Conv1D(6, 3, strides=2, padding="same", dilation_rate=2, groups=3, activation="relu",
                      input_shape=(3, 9))
    model = nn.Sequential(layer)
    assert layer.weight.shape == (6, 1, 3) and model.output_shape == (6, 5)
    layer.bias.value[...] = np.random.default_rng(4).normal(0, 0.5, 6)
    x = np.random.default_rng(5).normal(size=(2, 3, 9)).astype(np.float32)
    want = np.maximum(direct_conv1d(x.astype(np.float64), layer.weight.value.astype(np.float64),
                                    layer.bias.value.astype(np.float64), 2, 2, 2, 3), 0)
    np.testing.assert_allclose(nn.predict(model, x), want, rtol=1e-5, atol=1e-6)
    assert layer.get_config()["padding"] == "same" and layer.geometry.padding == (0, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pooling_layers_equal_direct_loops(backend):
    x = np.random.default_rng(6).normal(size=(2, 3, 9))
    with kernels.use_backend(backend):
        for layer, want in [(nn.MaxPool1D(3, strides=2, padding=1), direct_pool1d(x, 3, 2, 1, np.max)),
                            (nn.AvgPool1D(2), direct_pool1d(x, 2, 2, 0, np.mean)),
                            (nn.AvgPool1D(3, stride=1, padding=1), direct_pool1d(x, 3, 1, 1, np.mean)),
                            (nn.GlobalAveragePooling1D(), x.mean(axis=2))]:
            model = nn.Sequential(nn.Input((3, 9)), layer)
            assert model.output_shape == want.shape[1:]
            np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-12, err_msg=type(layer).__name__)


def test_pooling_layers_derivatives_equal_central_differences():
    x = np.random.default_rng(7).normal(size=(1, 2, 7))
    for layer in (nn.MaxPool1D(3, strides=2, padding=1), nn.AvgPool1D(2, strides=1), nn.GlobalAveragePooling1D()):
        nn.Sequential(nn.Input((2, 7)), layer)
        assert ad.gradcheck(layer, x).passed, type(layer).__name__


def test_summary_save_and_load_round_trip(tmp_path):
    nn.set_seed(1)
    model = nn.Sequential(nn.Input((2, 16)), nn.Conv1D(4, 3, padding=1, dilation=2, activation="tanh"),
                          nn.MaxPool1D(2), nn.Conv1D(4, 2, strides=2, groups=2, use_bias=False), nn.AvgPool1D(2),
                          nn.GlobalAveragePooling1D(), nn.Dense(3, activation="softmax"))
    shapes = [layer.output_shape for layer in model.layers]
    assert shapes == [(2, 16), (4, 14), (4, 7), (4, 3), (4, 1), (4,), (3,)]
    table = io.StringIO()
    model.summary(file=table)
    for shape in ("(None, 4, 14)", "(None, 4, 7)", "(None, 4, 3)", "(None, 4, 1)", "(None, 4)", "(None, 3)"):
        assert shape in table.getvalue()
    assert f"Total params: {model.count_params()}" in table.getvalue() and model.count_params() == 28 + 16 + 15
    x = np.random.default_rng(8).normal(size=(5, 2, 16)).astype(np.float32)
    nn.save(model, tmp_path / "seq.model")
    loaded = nn.load(tmp_path / "seq.model")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in model.layers]
    np.testing.assert_array_equal(nn.predict(loaded, x), nn.predict(model, x))


def test_sequence_cnn_learns_to_tell_slow_from_fast_waves():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 2, 256)
    t = np.arange(64)
    x = np.sin(t * np.where(labels, 0.9, 0.2)[:, None] + rng.uniform(0, 2 * np.pi, (256, 1)))
    x = (x + rng.normal(0, 0.3, x.shape))[:, None, :].astype(np.float32)
    nn.set_seed(2)
    model = nn.models.sequence_cnn()
    assert model.output_shape == (2,) and nn.models.sequence_cnn not in nn.models.MODELS.values()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(x[192:], labels[192:])[1]
    model.fit(x[:192], labels[:192], epochs=3, batch_size=32, verbose=0)
    after = model.evaluate(x[192:], labels[192:])[1]
    assert after > 0.9 and after > before


@pytest.mark.skipif(not cuda_available(), reason="numba.cuda unavailable (no GPU and NUMBA_ENABLE_CUDASIM is off)")
def test_a_sequence_model_on_the_device_predicts_and_trains_as_on_the_host():
    x = np.random.default_rng(10).normal(size=(4, 2, 12)).astype(np.float32)
    labels = np.array([0, 1, 2, 1])

    def build():
        nn.set_seed(3)
        return nn.Sequential(nn.Input((2, 12)), nn.Conv1D(3, 3, padding="same", activation="relu"), nn.MaxPool1D(2),
                             nn.Conv1D(4, 2, strides=2, groups=1), nn.AvgPool1D(2, strides=1),
                             nn.GlobalAveragePooling1D(), nn.Dense(3, activation="softmax"))

    host, gpu = build(), build().to("cuda")
    np.testing.assert_allclose(nn.predict(gpu, x), nn.predict(host, x), rtol=1e-5, atol=1e-6)
    for model in (host, gpu):
        model.compile(optimizer=nn.optim.SGD(model.parameters(), lr=0.5), loss="sparse_categorical_crossentropy")
        model.fit(x, labels, epochs=1, batch_size=4, verbose=0)
    assert kernels.is_device_array(gpu.layers[1].weight.value)            # trained where it lives
    after = nn.predict(host, x)
    assert np.abs(after - nn.predict(build(), x)).max() > 1e-3              # the step changed something
    np.testing.assert_allclose(nn.predict(gpu, x), after, rtol=1e-4, atol=1e-5)


def test_unnamed_1d_layers_are_named_as_their_2d_counterparts():
    model = nn.Sequential([nn.Input((2, 16)), nn.Conv1D(4, 3), nn.MaxPool1D(2), nn.Conv1D(4, 3), nn.Flatten()])
    assert [layer.name for layer in model.layers[1:4]] == ["conv1d", "max_pool1d", "conv1d_1"]   # as conv2d, max_pool2d
