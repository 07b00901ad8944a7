"""nn.export_onnx: the exported graph, run by onnxruntime, gives what nn.predict gives.

The oracle is the model itself (nn.predict in evaluation mode) on random inputs; onnxruntime is an
independent implementation of every operator. Probabilities are compared, and the logits too (a
copy of the model without its final softmax), so that a saturated softmax cannot hide an error.
"""
from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime
import pytest

import nn
from nn.export import DEFAULT_OPSET, MIN_OPSET, export_onnx
from nn.module import from_spec, layer_spec


def _run(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _perturb(model, rng):
    """Non-trivial batch-norm statistics and affine parameters (a fresh model's are 0 and 1)."""
    for name, buffer in model.named_buffers():
        buffer[...] = rng.uniform(0.5, 1.5, buffer.shape) if name.endswith("var") else rng.normal(0, 0.3, buffer.shape)
    for name, p in model.named_parameters():
        if name.endswith(("gamma", "beta", "bias")):
            p.value[...] = rng.normal(1.0 if name.endswith("gamma") else 0.0, 0.2, p.shape)
    return model


def _without_softmax(model):
    """The same network and weights, its last layer's softmax left out: its output is the logits."""
    spec = layer_spec(model)
    layers = spec["config"]["layers"]
    if layers[-1]["class"] == "Softmax":
        layers.pop()
    else:
        layers[-1]["config"]["activation"] = None
    logits = from_spec(spec)
    logits.load_state_dict(model.state_dict())
    return logits


def _assert_same(path, model, x):
    got, want = _run(path, x), nn.predict(model, x)
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


READY = [nn.models.keras_mnist_cnn, nn.models.lenet5, nn.models.digits_cnn, nn.models.resnet_small,
         nn.models.keras_mnist_mlp, nn.models.sequence_cnn]


@pytest.mark.parametrize("build", READY, ids=lambda f: f.__name__)
def test_ready_models_equal_predict_in_onnxruntime(build, tmp_path):
    rng = np.random.default_rng(3)
    nn.set_seed(5)
    model = _perturb(build(), rng)
    x = rng.normal(size=(6, *model.input_shape)).astype(np.float32)
    path = export_onnx(model, tmp_path / "model.onnx")
    _assert_same(path, model, x)
    probabilities = _run(path, x)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    logits = _without_softmax(model)
    _assert_same(export_onnx(logits, tmp_path / "logits.onnx"), logits, x)
    assert np.std(nn.predict(logits, x)) > 1e-2           # the logits are not all alike: the test means something


def test_the_file_is_a_checked_model_with_the_opset_stated_and_a_free_batch(tmp_path):
    model = nn.models.digits_cnn()
    path = export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", DEFAULT_OPSET)]
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["output"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [1, 8, 8]
    ops = [node.op_type for node in proto.graph.node]
    assert ops == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Softmax"]
    rng = np.random.default_rng(0)
    for n in (1, 7):                                        # any batch size
        _assert_same(path, model, rng.normal(size=(n, 1, 8, 8)).astype(np.float32))


def _everything():
    """Every exportable layer, with geometry that is not the default (stride, padding, dilation, groups)."""
    return nn.Sequential([
        nn.Input((4, 13, 11)),
        nn.Conv2D(6, 3, stride=2, padding=(1, 2), dilation=(2, 1), groups=2, activation="relu"),
        nn.BatchNorm(), nn.LeakyReLU(alpha=0.2),
        nn.Conv2D(8, (3, 2), padding=1, activation="elu", use_bias=False), nn.PReLU(alpha=0.1),
        nn.MaxPool2D(3, stride=2, padding=1), nn.Swish(beta=1.5),
        nn.Residual([nn.Conv2D(8, 3, padding="same"), nn.BatchNorm(), nn.Tanh(), nn.Conv2D(8, 1)], activation="swish"),
        nn.Residual([nn.Conv2D(6, 3, stride=2, padding=1)], shortcut=[nn.Conv2D(6, 1, stride=2)], activation="sigmoid"),
        nn.AvgPool2D(2, stride=1, padding=1), nn.Maxout(pieces=2), nn.Activation("elu"), nn.ELU(alpha=0.5),
        nn.Dropout(0.3), nn.Flatten(), nn.DropConnect(12, rate=0.4, activation="tanh"), nn.BatchNorm(),
        nn.Dense(9, activation="leaky_relu"), nn.Sigmoid(), nn.Maxout(pieces=3), nn.ReLU(), nn.Dense(5), nn.Softmax(),
    ])


@pytest.mark.parametrize("opset", [MIN_OPSET, DEFAULT_OPSET, onnx.defs.onnx_opset_version()])
def test_every_layer_and_geometry_equals_predict(opset, tmp_path):
    rng = np.random.default_rng(opset)
    nn.set_seed(opset)
    model = _perturb(_everything(), rng)
    x = rng.normal(size=(5, 4, 13, 11)).astype(np.float32)
    path = export_onnx(model, tmp_path / "all.onnx", opset=opset)
    assert onnx.load(path).opset_import[0].version == opset
    _assert_same(path, model, x)
    logits = _without_softmax(model)
    _assert_same(export_onnx(logits, tmp_path / "logits.onnx", opset=opset), logits, x)


def _sequence_layers():
    """Every 1-D layer, with geometry that is not the default (stride, padding, dilation, groups)."""
    return nn.Sequential([
        nn.Input((4, 23)),
        nn.Conv1D(6, 3, strides=2, padding=2, dilation_rate=2, groups=2, activation="relu"),
        nn.Conv1D(8, 3, padding="same", dilation=2, use_bias=False, activation="elu"),
        nn.MaxPool1D(3, strides=2, padding=1), nn.AvgPool1D(2, stride=1, padding=1),
        nn.Conv1D(8, 2, groups=8, activation="tanh"), nn.GlobalAveragePooling1D(), nn.Dense(5, activation="softmax"),
    ])


@pytest.mark.parametrize("opset", [MIN_OPSET, DEFAULT_OPSET])
def test_every_1d_layer_and_geometry_equals_predict(opset, tmp_path):
    rng = np.random.default_rng(opset)
    nn.set_seed(opset)
    model = _perturb(_sequence_layers(), rng)
    x = rng.normal(size=(5, 4, 23)).astype(np.float32)
    path = export_onnx(model, tmp_path / "seq.onnx", opset=opset)
    kernels = [list(a.ints) for node in onnx.load(path).graph.node for a in node.attribute if a.name == "kernel_shape"]
    assert kernels == [[3], [3], [3], [2], [2]]                  # Conv, Conv, MaxPool, AveragePool, Conv: all 1-D
    _assert_same(path, model, x)
    logits = _without_softmax(model)
    _assert_same(export_onnx(logits, tmp_path / "logits.onnx", opset=opset), logits, x)
    assert np.std(nn.predict(logits, x)) > 1e-2


def test_a_float64_model_stays_float64(tmp_path):
    model = nn.Sequential([nn.Input((3,)), nn.Dense(4, activation="tanh"), nn.Dense(2)])
    for layer in model.layers[1:]:
        layer.weight = nn.Parameter(layer.weight.value.astype(np.float64), "weight")
        layer.bias = nn.Parameter(layer.bias.value.astype(np.float64), "bias")
    x = np.random.default_rng(0).normal(size=(4, 3))
    got = _run(export_onnx(model, tmp_path / "m.onnx"), x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, nn.predict(model, x), rtol=1e-12)


class _Custom(nn.Layer):
    def forward(self, x):
        return x


@pytest.mark.parametrize("layers, message", [
    ([nn.Input((3,)), _Custom(name="mine")], r"layer 'mine' \(_Custom\) has no ONNX form; supported layers: \["),
    ([nn.Input((3,)), nn.Dense(2, activation=lambda x: x, name="odd")], r"layer 'odd' \(Dense\) has an activation "
                                                                         r"given as a function"),
])
def test_a_layer_without_an_onnx_form_is_refused_by_name(layers, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        export_onnx(nn.Sequential(layers), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_bad_arguments_are_refused(tmp_path):
    built = nn.models.digits_cnn()
    for opset in (12, onnx.defs.onnx_opset_version() + 1, "17", True):
        with pytest.raises(ValueError, match=rf"opset must be an int in \[13, \d+\].*got {opset!r}"):
            export_onnx(built, tmp_path / "m.onnx", opset=opset)
    with pytest.raises(ValueError, match="the model is not built"):
        export_onnx(nn.Sequential([nn.Dense(3)]), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="model must be an nn layer such as nn.Sequential, got Ensemble"):
        export_onnx(nn.regularizers.Ensemble([built]), tmp_path / "m.onnx")
    mixed = nn.Sequential([nn.Input((3,)), nn.Dense(2)])
    mixed.layers[1].bias = nn.Parameter(np.zeros(2, np.float64), "bias")
    with pytest.raises(ValueError, match=r"mix dtypes \['float32', 'float64'\]"):
        export_onnx(mixed, tmp_path / "m.onnx")


def test_without_onnx_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)          # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"^export_onnx needs the onnx package: pip install 'chainrule\[onnx\]'$"):
        export_onnx(nn.models.digits_cnn(), tmp_path / "m.onnx")
