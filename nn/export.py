"""``export_onnx(model, path)``: a trained model as an ONNX graph, in inference form.

The graph is built with the ``onnx`` package's own helpers (``onnx.helper``, ``onnx.numpy_helper``)
and checked with ``onnx.checker.check_model`` before it is written; ``onnx`` is an optional extra
(``pip install 'chainrule[onnx]'``), imported only when a model is exported. One input
``"input"`` of shape (N, *model.input_shape) with a free batch dimension ``"N"``, one output
``"output"``: what ``nn.predict(model, x)`` gives (evaluation mode).

Each layer becomes the ONNX operators that compute what its ``forward`` computes in evaluation:

==========================  ================================================================
layer                       ONNX (opset ``DEFAULT_OPSET`` = 17 unless ``opset=`` says)
==========================  ================================================================
Conv2D (+ activation)       Conv (strides, pads, dilations, group) then the activation; the
                            fused conv + ReLU is Conv then Relu
MaxPool2D / AvgPool2D       MaxPool (padding never wins, as -inf) / AveragePool with
                            ``count_include_pad=1`` (the divisor is always kh * kw)
Conv1D, MaxPool1D,          the same operators with a 1-D ``kernel_shape`` (their geometry's
AvgPool1D                   width part); GlobalAveragePooling1D: GlobalAveragePool, Flatten
Dense, DropConnect          Gemm (x @ W + b, W stored (in, units) as in Keras) + activation
Dropout                     nothing: the identity in evaluation
BatchNorm                   BatchNormalization with the running statistics and ``eps``
Flatten                     Flatten (axis 1)
activations                 Relu, Sigmoid, Tanh, Softmax (axis 1), LeakyRelu, Elu, PRelu;
                            Swish as x * Sigmoid(beta x); Maxout as Reshape + ReduceMax
Sequential, Residual        their layers in turn; Residual: body + shortcut, Add, activation
==========================  ================================================================

A layer not in this table (a user's own, or an activation given as a Python function) is refused
with an error naming it, before anything is written. The weights keep their dtype (float32 by
default); a model whose parameters mix dtypes is refused.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from . import functional as F
from .layers import (ELU, Activation, AvgPool2D, BatchNorm, Conv2D, Dense, DropConnect, Dropout, Flatten, Input,
                     LeakyReLU, MaxPool2D, Maxout, PReLU, ReLU, Residual, Sequential, Sigmoid, Softmax, Swish, Tanh)
from .layers import AvgPool1D, Conv1D, GlobalAveragePooling1D, MaxPool1D

__all__ = ["export_onnx", "DEFAULT_OPSET", "MIN_OPSET", "SUPPORTED"]

#: The opset written by default (ONNX 1.12, 2022: every runtime of the last years reads it).
DEFAULT_OPSET = 17
#: The oldest opset whose operators mean what the layers compute (Softmax over one axis since 13).
MIN_OPSET = 13

_INSTALL = "pip install 'chainrule[onnx]'"


def _onnx():
    """The onnx package, or a one-line ImportError saying how to install it."""
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError:
        raise ImportError(f"export_onnx needs the onnx package: {_INSTALL}") from None
    return onnx


class _Graph:
    """The nodes and initialisers of the graph being built, with unique names."""

    def __init__(self, onnx, dtype, opset):
        self.onnx, self.dtype, self.opset = onnx, dtype, opset
        self.nodes, self.initializers, self.count = [], [], 0

    def fresh(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def constant(self, base, array, dtype=None):
        name = self.fresh(base)
        value = np.asarray(array, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def node(self, op, inputs, base, **attributes):
        out = self.fresh(base)
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out, **attributes))
        return out


def _default(function, argument):
    """The default of ``argument`` in ``function`` (so alpha and beta come from nn.functional itself)."""
    return inspect.signature(function).parameters[argument].default


def _activation(g, name, config, x, where):
    """The ONNX nodes of the activation ``name`` (with ``config``: alpha, beta) applied to ``x``."""
    if name is None or name == "linear":
        return x
    if not isinstance(name, str):
        raise ValueError(f"export_onnx: {where} has an activation given as a function ({name!r}), which has no "
                         f"ONNX form; use one of {sorted(F.ACTIVATIONS)}")
    if name in ("relu", "sigmoid", "tanh"):
        return g.node(name.capitalize(), [x], name)
    if name == "softmax":
        return g.node("Softmax", [x], name, axis=1)
    if name == "leaky_relu":
        return g.node("LeakyRelu", [x], name, alpha=float(config.get("alpha", _default(F.leaky_relu, "alpha"))))
    if name == "elu":
        return g.node("Elu", [x], name, alpha=float(config.get("alpha", _default(F.elu, "alpha"))))
    if name == "swish":
        beta = g.constant("beta", config.get("beta", _default(F.swish, "beta")))
        return g.node("Mul", [x, g.node("Sigmoid", [g.node("Mul", [x, beta], "scaled")], "sigmoid")], name)
    raise ValueError(f"export_onnx: {where} has the activation {name!r}, which has no ONNX form here")


def _where(layer):
    return f"layer {layer.name!r} ({type(layer).__name__})"


def _conv(g, layer, x):
    geometry, (kh, kw) = layer.geometry, layer.weight.shape[2:]
    inputs = [x, g.constant(f"{layer.name}.weight", layer.weight.value)]
    if layer.bias is not None:
        inputs.append(g.constant(f"{layer.name}.bias", layer.bias.value))
    ph, pw = geometry.padding
    y = g.node("Conv", inputs, layer.name, kernel_shape=[kh, kw], strides=list(geometry.stride),
               pads=[ph, pw, ph, pw], dilations=list(geometry.dilation), group=geometry.groups)
    return _activation(g, layer.activation, {}, y, _where(layer))


def _conv1d(g, layer, x):
    geometry = layer.geometry                       # conv1d's: the width part is the 1-D geometry
    inputs = [x, g.constant(f"{layer.name}.weight", layer.weight.value)]
    if layer.bias is not None:
        inputs.append(g.constant(f"{layer.name}.bias", layer.bias.value))
    pad = geometry.padding[1]
    y = g.node("Conv", inputs, layer.name, kernel_shape=[layer.weight.shape[2]], strides=[geometry.stride[1]],
               pads=[pad, pad], dilations=[geometry.dilation[1]], group=geometry.groups)
    return _activation(g, layer.activation, {}, y, _where(layer))


def _pool1d(op, **extra):
    def emit(g, layer, x):
        geometry, pad = layer.geometry, layer.geometry.padding[1]
        return g.node(op, [x], layer.name, kernel_shape=[geometry.kernel_size[1]], strides=[geometry.stride[1]],
                      pads=[pad, pad], **extra)
    return emit


def _global_average1d(g, layer, x):
    return g.node("Flatten", [g.node("GlobalAveragePool", [x], f"{layer.name}_pooled")], layer.name, axis=1)


def _pool(op, **extra):
    def emit(g, layer, x):
        geometry = layer.geometry
        ph, pw = geometry.padding
        return g.node(op, [x], layer.name, kernel_shape=list(geometry.kernel_size), strides=list(geometry.stride),
                      pads=[ph, pw, ph, pw], **extra)
    return emit


def _dense(g, layer, x):
    inputs = [x, g.constant(f"{layer.name}.weight", layer.weight.value)]
    if layer.bias is not None:
        inputs.append(g.constant(f"{layer.name}.bias", layer.bias.value))
    return _activation(g, layer.activation, {}, g.node("Gemm", inputs, layer.name), _where(layer))


def _batch_norm(g, layer, x):
    inputs = [x] + [g.constant(f"{layer.name}.{part}", value) for part, value in
                    (("gamma", layer.gamma.value), ("beta", layer.beta.value),
                     ("running_mean", layer.running_mean), ("running_var", layer.running_var))]
    return g.node("BatchNormalization", inputs, layer.name, epsilon=float(layer.config["eps"]))


def _fixed(g, layer, x):
    return _activation(g, layer.activation, getattr(layer, "config", {}), x, _where(layer))


def _prelu(g, layer, x):
    channels = layer.alpha.shape[0]
    slope = np.reshape(layer.alpha.value, (channels,) + (1,) * (len(layer.input_shape) - 1))
    return g.node("PRelu", [x, g.constant(f"{layer.name}.alpha", slope)], layer.name)


def _maxout(g, layer, x):
    pieces, (channels, *rest) = layer.config["pieces"], layer.input_shape
    shape = g.constant("shape", [0, channels // pieces, pieces, *rest], np.int64)
    grouped = g.node("Reshape", [x, shape], f"{layer.name}_grouped")
    if g.opset >= 18:                       # ReduceMax takes its axes as an input from opset 18 on
        return g.node("ReduceMax", [grouped, g.constant("axes", [2], np.int64)], layer.name, keepdims=0)
    return g.node("ReduceMax", [grouped], layer.name, axes=[2], keepdims=0)


def _identity(g, layer, x):
    return x


def _flatten(g, layer, x):
    return g.node("Flatten", [x], layer.name, axis=1)


def _sequential(g, layer, x):
    for inner in layer.layers:
        x = _emit(g, inner, x)
    return x


def _residual(g, layer, x):
    body = _sequential(g, layer.body, x)
    side = x if layer.shortcut is None else _sequential(g, layer.shortcut, x)
    return _activation(g, layer.activation, {}, g.node("Add", [body, side], layer.name or "residual"), _where(layer))


#: The layer classes export_onnx knows, each with the function that writes its nodes. Looked up by
#: exact class: a subclass may compute something else, so it is refused rather than guessed at.
SUPPORTED = {
    Input: _identity, Dropout: _identity, Flatten: _flatten,
    Conv2D: _conv, MaxPool2D: _pool("MaxPool"), AvgPool2D: _pool("AveragePool", count_include_pad=1),
    Dense: _dense, DropConnect: _dense, BatchNorm: _batch_norm,
    Activation: _fixed, ReLU: _fixed, Sigmoid: _fixed, Tanh: _fixed, Softmax: _fixed, LeakyReLU: _fixed,
    ELU: _fixed, Swish: _fixed, PReLU: _prelu, Maxout: _maxout,
    Sequential: _sequential, Residual: _residual,
    Conv1D: _conv1d, MaxPool1D: _pool1d("MaxPool"), AvgPool1D: _pool1d("AveragePool", count_include_pad=1),
    GlobalAveragePooling1D: _global_average1d,
}


def _emit(g, layer, x):
    try:
        write = SUPPORTED[type(layer)]
    except KeyError:
        raise ValueError(f"export_onnx: {_where(layer)} has no ONNX form; supported layers: "
                         f"{sorted(cls.__name__ for cls in SUPPORTED)}") from None
    return write(g, layer, x)


def _dtype(model):
    dtypes = sorted({np.dtype(value.dtype).name for _, value in model.state_dict().items()})
    if len(dtypes) > 1:
        raise ValueError(f"export_onnx: the model's parameters mix dtypes {dtypes}; cast them to one first")
    return np.dtype(dtypes[0] if dtypes else np.float32)


def _check(model, opset, latest):
    if type(model) not in SUPPORTED:
        raise TypeError(f"export_onnx: model must be an nn layer such as nn.Sequential, got {type(model).__name__}")
    if not model.built:
        raise ValueError("export_onnx: the model is not built; start it with nn.Input(shape) or call it once")
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= latest:
        raise ValueError(f"export_onnx: opset must be an int in [{MIN_OPSET}, {latest}] (the onnx package's "
                         f"newest), got {opset!r}")


def export_onnx(model, path, opset=DEFAULT_OPSET):
    """Write ``model`` (built, e.g. any of ``nn.models``) to ``path`` as an ONNX model; returns the path.

    ``opset``: the ONNX operator set version of the default domain, MIN_OPSET (13) up to the newest
    the installed onnx knows (default DEFAULT_OPSET = 17). The graph computes ``nn.predict(model, x)``
    (dropout off, batch norm with its running statistics) and passes ``onnx.checker.check_model``
    before the file is written. Run it with onnxruntime::

        session = onnxruntime.InferenceSession(path)
        probabilities = session.run(None, {"input": x})[0]
    """
    onnx = _onnx()
    _check(model, opset, onnx.defs.onnx_opset_version())
    dtype = _dtype(model)
    g = _Graph(onnx, dtype, opset)
    output = _emit(g, model, "input")
    if output == "input":                           # a model that is the identity still needs a node
        output = g.node("Identity", [output], "identity")
    for node in g.nodes:                            # the last node's result is the graph's output
        if node.output[0] == output:
            node.output[0] = "output"
    element = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    graph = onnx.helper.make_graph(
        g.nodes, model.name or "model",
        [onnx.helper.make_tensor_value_info("input", element, ["N", *model.input_shape])],
        [onnx.helper.make_tensor_value_info("output", element, ["N", *model.output_shape])],
        initializer=g.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, producer_name="chainrule", opset_imports=opsets,
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    target = Path(path)
    target.write_bytes(proto.SerializeToString())
    return str(target)
