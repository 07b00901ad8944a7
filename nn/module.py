"""Modules and layers: thin holders of parameters that call the functional ops (DESIGN.md).

A ``Module`` registers the Parameters and sub-Modules assigned to it (as in PyTorch) and offers
``parameters()``, ``named_parameters()``, ``state_dict()``, ``load_state_dict()``, ``train()`` /
``eval()`` and ``zero_grad()``. A ``Layer`` also knows its shapes: ``build(input_shape)`` creates
its parameters for an input of that shape (batch dimension left out) and returns the output shape,
so a ``Sequential`` that starts with ``Input`` is built at once and can print its ``summary()``,
like Keras.

>>> import nn
>>> model = nn.Sequential([nn.Input((1, 28, 28)), nn.Flatten(), nn.Dense(128, activation="relu"), nn.Dense(10)])
>>> model.count_params()
101770
>>> [name for name, _ in model.named_parameters()]
['dense.weight', 'dense.bias', 'dense_1.weight', 'dense_1.bias']
"""
from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np

from autodiff import Tensor

from . import functional as F
from . import init as initialisers
from . import utils

__all__ = ["Parameter", "Module", "Layer", "Sequential", "Input", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten",
           "Dense", "Dropout", "DropConnect", "BatchNorm", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU",
           "Swish", "Sigmoid", "Tanh", "Softmax", "Maxout", "Residual", "LAYERS"]


class Parameter(Tensor):
    """A Tensor that a Module learns: requires_grad=True, float32 unless given another float dtype."""

    __slots__ = ()

    def __init__(self, value, name=None):
        value = np.asarray(value)
        if value.dtype.kind != "f":
            value = value.astype(np.float32)
        super().__init__(value, requires_grad=True, name=name)


class Module:
    """Base class: registers Parameters, buffers (plain arrays in the state) and sub-Modules."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, key, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting {key!r}")
        for registry in (self._parameters, self._modules):
            registry.pop(key, None)
        if isinstance(value, Parameter):
            self._parameters[key] = value
        elif isinstance(value, Module):
            self._modules[key] = value
        object.__setattr__(self, key, value)

    def register_buffer(self, key, array):
        """A plain array that belongs to the state (saved, loaded) but is not learned (running stats)."""
        self._buffers[key] = array
        object.__setattr__(self, key, array)

    # --- traversal ---------------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) pairs, this module's first, then its sub-modules' in order."""
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for module_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                yield (f"{module_name}.{name}" if module_name else name), b

    def count_params(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    # --- modes and gradients -------------------------------------------------------------------------
    def train(self, mode: bool = True):
        """Training mode (dropout active, batch statistics); ``train(False)`` is ``eval()``."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    # --- state ------------------------------------------------------------------------------------
    def state_dict(self):
        """{name: a copy of the array} for every parameter and buffer, in a fixed order."""
        state = OrderedDict((name, p.value.copy()) for name, p in self.named_parameters())
        state.update((name, np.array(b, copy=True)) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state, strict: bool = True):
        """Copy arrays into the parameters and buffers, after checking every name, shape and dtype.

        Nothing is changed unless everything fits: a missing or unexpected name (with ``strict``),
        or a shape that differs, raises ValueError naming them all.
        """
        targets = OrderedDict((name, p.value) for name, p in self.named_parameters())
        targets.update(self.named_buffers())
        problems = []
        missing = [n for n in targets if n not in state]
        unexpected = [n for n in state if n not in targets]
        if strict and missing:
            problems.append(f"missing: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected: {unexpected}")
        for name, target in targets.items():
            if name in state:
                got = np.asarray(state[name])
                if got.shape != target.shape:
                    problems.append(f"{name}: expected shape {target.shape}, got {got.shape}")
                elif got.dtype.kind not in "fiu":
                    problems.append(f"{name}: expected a numeric array, got dtype {got.dtype}")
        if problems:
            raise ValueError("load_state_dict: the state does not fit this model; " + "; ".join(problems))
        for name, target in targets.items():
            if name in state:
                target[...] = np.asarray(state[name])

    # --- calling -------------------------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)


def _count(value, name):
    """A positive int (sizes: filters, units), refusing 2.7 or True rather than truncating them."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower().replace("2_d", "2d")


class Layer(Module):
    """A module with shapes: ``build(input_shape)`` makes its parameters and gives its output shape.

    Shapes leave out the batch dimension: (C, H, W) or (features,).
    """

    def __init__(self, name=None):
        super().__init__()
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "input_shape", None)
        object.__setattr__(self, "output_shape", None)

    @property
    def built(self):
        return self.output_shape is not None

    def build(self, input_shape):
        input_shape = tuple(int(s) for s in input_shape)
        object.__setattr__(self, "input_shape", input_shape)
        object.__setattr__(self, "output_shape", tuple(self._build(input_shape)))
        return self.output_shape

    def _build(self, input_shape):
        return input_shape

    def get_config(self):
        """The constructor's arguments (JSON-friendly), so ``type(layer)(**config)`` rebuilds it."""
        return {}

    def _check_input(self, x):
        shape = tuple(np.shape(x.value if isinstance(x, Tensor) else x))[1:]
        if self.built and shape != self.input_shape:
            raise ValueError(f"{self.name or type(self).__name__}: expected input of shape (N, "
                             f"{', '.join(map(str, self.input_shape))}), got (N, {', '.join(map(str, shape))})")
        if not self.built:
            self.build(shape)


class _Activated(Layer):
    """A layer followed by an optional activation (Keras's ``activation=`` argument)."""

    def __init__(self, activation=None, name=None):
        super().__init__(name)
        F.activation(activation)  # checks the name now
        object.__setattr__(self, "activation", activation)

    def forward(self, x, pre_activation=False):
        self._check_input(x)
        y = self._linear(x)
        return y if pre_activation else F.activation(self.activation)(y)


# --- the layers -------------------------------------------------------------------------------------

class Input(Layer):
    """Declares the input shape (batch dimension left out), e.g. ``Input((1, 28, 28))``."""

    def __init__(self, shape, name=None):
        super().__init__(name)
        object.__setattr__(self, "shape", tuple(int(s) for s in shape))

    def _build(self, input_shape):
        return self.shape

    def get_config(self):
        return {"shape": list(self.shape)}

    def forward(self, x):
        shape = tuple(np.shape(x.value if isinstance(x, Tensor) else x))[1:]
        if shape != self.shape:
            raise ValueError(f"input: expected x of shape (N, {', '.join(map(str, self.shape))}), got "
                             f"(N, {', '.join(map(str, shape))})")
        return x


def _padding(padding, kernel):
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        if kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
            raise ValueError(f"padding='same' needs an odd kernel_size, got {kernel}")
        return (kernel[0] // 2, kernel[1] // 2)
    return F.pair(padding, "padding", minimum=0)


class Conv2D(_Activated):
    """2-D convolution, weight (filters, C/groups, kh, kw), bias (filters,); Keras's arguments.

    Default initialisation as in Keras: Glorot-uniform weights (eq. 5.1), zero bias; pass
    ``kernel_initializer="he_normal"`` for deep ReLU stacks (eq. 5.2). ``padding``: an int, a pair,
    "valid" (0) or "same" (kernel_size // 2, odd kernels, stride 1 keeps the size).
    """

    def __init__(self, filters, kernel_size, stride=1, padding=0, dilation=1, groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros", name=None):
        super().__init__(activation, name)
        filters = _count(filters, "filters")
        kernel = F.pair(kernel_size, "kernel_size")
        config = dict(filters=int(filters), kernel_size=list(kernel), stride=list(F.pair(stride, "stride")),
                      padding=padding if isinstance(padding, str) else list(_padding(padding, kernel)),
                      dilation=list(F.pair(dilation, "dilation")), groups=int(groups), activation=activation,
                      use_bias=bool(use_bias), kernel_initializer=kernel_initializer,
                      bias_initializer=bias_initializer)
        object.__setattr__(self, "config", config)
        initialisers.get(kernel_initializer), initialisers.get(bias_initializer)

    def get_config(self):
        return dict(self.config)

    def _options(self):
        c = self.config
        kernel = tuple(c["kernel_size"])
        return dict(stride=tuple(c["stride"]), padding=_padding(c["padding"] if isinstance(c["padding"], str)
                                                                 else tuple(c["padding"]), kernel),
                    dilation=tuple(c["dilation"]), groups=c["groups"])

    def _build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D needs input (C, H, W), got {input_shape}")
        c = self.config
        channels = input_shape[0]
        if channels % c["groups"] or c["filters"] % c["groups"]:
            raise ValueError(f"Conv2D: groups={c['groups']} must divide the input channels ({channels}) and "
                             f"filters ({c['filters']})")
        shape = (c["filters"], channels // c["groups"], *c["kernel_size"])
        self.weight = Parameter(initialisers.get(c["kernel_initializer"])(shape), name="weight")
        if c["use_bias"]:
            self.bias = Parameter(initialisers.get(c["bias_initializer"])((c["filters"],)), name="bias")
        else:
            object.__setattr__(self, "bias", None)
        o = self._options()
        out = [F.output_size(size, k, s, p, d, f"Conv2D over the input of shape {input_shape}")
               for size, k, s, p, d in zip(input_shape[1:], c["kernel_size"], o["stride"], o["padding"],
                                           o["dilation"])]
        return (c["filters"], *out)

    def _linear(self, x):
        return F.conv2d(x, self.weight, self.bias, **self._options())


class _Pool(Layer):
    def __init__(self, pool_size=2, stride=None, padding=0, name=None):
        super().__init__(name)
        kernel = F.pair(pool_size, "pool_size")
        object.__setattr__(self, "config", dict(pool_size=list(kernel),
                                                stride=None if stride is None else list(F.pair(stride, "stride")),
                                                padding=list(F.pair(padding, "padding", minimum=0))))

    def get_config(self):
        return dict(self.config)

    def _args(self):
        c = self.config
        return tuple(c["pool_size"]), None if c["stride"] is None else tuple(c["stride"]), tuple(c["padding"])

    def _build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} needs input (C, H, W), got {input_shape}")
        kernel, stride, padding = self._args()
        stride = stride or kernel
        out = [F.output_size(size, k, s, p, 1, f"{type(self).__name__} over the input of shape "
                                     f"{input_shape}") for size, k, s, p in zip(input_shape[1:], kernel, stride,
                                                                                padding)]
        return (input_shape[0], *out)


class MaxPool2D(_Pool):
    """Max-pooling (Keras's MaxPooling2D): pool_size windows, stride defaults to pool_size."""

    def forward(self, x):
        self._check_input(x)
        return F.max_pool2d(x, *self._args())


class AvgPool2D(_Pool):
    """Average pooling (Keras's AveragePooling2D)."""

    def forward(self, x):
        self._check_input(x)
        return F.avg_pool2d(x, *self._args())


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W)."""

    def _build(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        self._check_input(x)
        return F.flatten(x)


class Dense(_Activated):
    """Fully connected: x @ weight + bias, weight (in, units) as in Keras; Glorot-uniform by default."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name=None):
        super().__init__(activation, name)
        units = _count(units, "units")
        initialisers.get(kernel_initializer), initialisers.get(bias_initializer)
        object.__setattr__(self, "config", dict(units=int(units), activation=activation, use_bias=bool(use_bias),
                                                kernel_initializer=kernel_initializer,
                                                bias_initializer=bias_initializer))

    def get_config(self):
        return dict(self.config)

    def _build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{type(self).__name__} needs flat input (features,), got {input_shape}: "
                             f"put a Flatten() before it")
        c = self.config
        self.weight = Parameter(initialisers.get(c["kernel_initializer"])((input_shape[0], c["units"])), "weight")
        if c["use_bias"]:
            self.bias = Parameter(initialisers.get(c["bias_initializer"])((c["units"],)), "bias")
        else:
            object.__setattr__(self, "bias", None)
        return (c["units"],)

    def _weight(self):
        return self.weight

    def _linear(self, x):
        return F.linear(x, self._weight(), self.bias)


class DropConnect(Dense):
    """A Dense layer whose weights (not activations) are dropped with probability ``rate`` in training."""

    def __init__(self, units, rate=0.5, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name=None):
        super().__init__(units, activation, use_bias, kernel_initializer, bias_initializer, name)
        self.config["rate"] = F._check_rate(rate)

    def _weight(self):
        return F.drop_connect(self.weight, self.config["rate"], self.training, utils.rng())


class Dropout(Layer):
    """Inverted dropout with probability ``rate`` in training; the identity in evaluation."""

    def __init__(self, rate, name=None):
        super().__init__(name)
        object.__setattr__(self, "rate", F._check_rate(rate))

    def get_config(self):
        return {"rate": self.rate}

    def forward(self, x):
        self._check_input(x)
        return F.dropout(x, self.rate, self.training, utils.rng())


class BatchNorm(Layer):
    """Batch normalisation per channel (axis 1) of (C, H, W) or (features,) inputs, torch's defaults."""

    def __init__(self, momentum=0.1, eps=1e-5, name=None):
        super().__init__(name)
        object.__setattr__(self, "config", {"momentum": float(momentum), "eps": float(eps)})

    def get_config(self):
        return dict(self.config)

    def _build(self, input_shape):
        c = input_shape[0]
        self.gamma = Parameter(np.ones(c, np.float32), "gamma")
        self.beta = Parameter(np.zeros(c, np.float32), "beta")
        self.register_buffer("running_mean", np.zeros(c, np.float32))
        self.register_buffer("running_var", np.ones(c, np.float32))
        return input_shape

    def forward(self, x):
        self._check_input(x)
        return F.batch_norm(x, self.gamma, self.beta, self.running_mean, self.running_var, self.training,
                            **self.config)


class Activation(Layer):
    """An activation by name: "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "swish"."""

    def __init__(self, activation, name=None):
        super().__init__(name)
        F.activation(activation)
        object.__setattr__(self, "activation", activation)

    def get_config(self):
        return {"activation": self.activation}

    def forward(self, x):
        self._check_input(x)
        return F.activation(self.activation)(x)


class _Fixed(Layer):
    """An activation layer with fixed arguments (ReLU(), LeakyReLU(alpha), ...)."""

    function = None
    defaults = {}

    def __init__(self, name=None, **kwargs):
        super().__init__(name)
        unknown = set(kwargs) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(unknown)}")
        object.__setattr__(self, "config", {**self.defaults, **kwargs})

    def get_config(self):
        return dict(self.config)

    def forward(self, x):
        self._check_input(x)
        return type(self).function(x, **self.config)


class ReLU(_Fixed):
    function = staticmethod(F.relu)


class Sigmoid(_Fixed):
    function = staticmethod(F.sigmoid)


class Tanh(_Fixed):
    function = staticmethod(F.tanh)


class LeakyReLU(_Fixed):
    function = staticmethod(F.leaky_relu)
    defaults = {"alpha": 0.01}


class ELU(_Fixed):
    function = staticmethod(F.elu)
    defaults = {"alpha": 1.0}


class Swish(_Fixed):
    function = staticmethod(F.swish)
    defaults = {"beta": 1.0}


class Softmax(_Fixed):
    function = staticmethod(lambda x: F.softmax(x, axis=1))


class Maxout(_Fixed):
    """Maxout over groups of ``pieces`` channels/units: C -> C / pieces."""

    function = staticmethod(F.maxout)
    defaults = {"pieces": 2}

    def _build(self, input_shape):
        pieces = self.config["pieces"]
        if input_shape[0] % pieces:
            raise ValueError(f"Maxout: {input_shape[0]} channels do not split into groups of pieces={pieces}")
        return (input_shape[0] // pieces, *input_shape[1:])


class PReLU(Layer):
    """Parametric ReLU with one learned slope per channel (initial value ``alpha``, 0.25 as in torch)."""

    def __init__(self, alpha=0.25, name=None):
        super().__init__(name)
        object.__setattr__(self, "alpha_init", float(alpha))

    def get_config(self):
        return {"alpha": self.alpha_init}

    def _build(self, input_shape):
        self.alpha = Parameter(np.full(input_shape[0], self.alpha_init, np.float32), "alpha")
        return input_shape

    def forward(self, x):
        self._check_input(x)
        return F.prelu(x, self.alpha)


# --- containers ---------------------------------------------------------------------------------------

def _from_config(spec):
    """A layer from {"class": name, "config": {...}} (a whitelist: LAYERS; never evaluated)."""
    try:
        cls = LAYERS[spec["class"]]
    except KeyError:
        raise ValueError(f"unknown layer class {spec.get('class')!r}; known: {sorted(LAYERS)}") from None
    config = dict(spec.get("config", {}))
    if cls in (Sequential, Residual):
        return cls.from_config(config, name=spec.get("name"))
    return cls(**config, name=spec.get("name"))


class Sequential(Layer):
    """Layers applied one after the other; built at once when the first layer is ``Input``.

    Layers are named like Keras's (conv2d, conv2d_1, max_pool2d, ...) unless given a name;
    parameter names are "<layer name>.<parameter>" (e.g. "conv2d.weight").
    """

    def __init__(self, layers, name=None):
        super().__init__(name)
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layer {i} must be an nn layer, got {type(layer).__name__}")
        counts = {}
        names = set()
        for layer in layers:
            if layer.name is None:
                base = _snake(type(layer).__name__)
                k = counts.get(base, 0)
                while (f"{base}_{k}" if k else base) in names:
                    k += 1
                counts[base] = k + 1
                object.__setattr__(layer, "name", f"{base}_{k}" if k else base)
            if layer.name in names:
                raise ValueError(f"Sequential: two layers are named {layer.name!r}")
            names.add(layer.name)
            setattr(self, layer.name, layer)
        object.__setattr__(self, "layers", layers)
        if layers and isinstance(layers[0], Input):
            self.build(layers[0].shape)

    def _build(self, input_shape):
        shape = input_shape
        for layer in self.layers:
            shape = layer.build(shape)
        return shape

    def get_config(self):
        return {"layers": [{"class": type(layer).__name__, "name": layer.name, "config": layer.get_config()}
                           for layer in self.layers]}

    @classmethod
    def from_config(cls, config, name=None):
        return cls([_from_config(spec) for spec in config["layers"]], name=name)

    def forward(self, x, logits=False):
        """Run the layers; ``logits=True`` leaves out a final softmax (for the fused loss)."""
        if not self.built:
            self.build(tuple(np.shape(x.value if isinstance(x, Tensor) else x))[1:])
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last and logits:
                if isinstance(layer, Softmax) or (isinstance(layer, Activation) and layer.activation == "softmax"):
                    break
                if isinstance(layer, _Activated) and layer.activation == "softmax":
                    x = layer.forward(x, pre_activation=True)
                    break
            x = layer(x)
        return x

    def ends_in_softmax(self):
        last = self.layers[-1] if self.layers else None
        return isinstance(last, Softmax) or getattr(last, "activation", None) == "softmax"

    def forward_until(self, x, target, pre_activation=False):
        """The output of layer ``target`` (before its activation with ``pre_activation``)."""
        for layer in self.layers:
            if layer is target:
                if pre_activation and isinstance(layer, _Activated):
                    return layer.forward(x, pre_activation=True)
                return layer(x)
            x = layer(x)
        raise ValueError(f"forward_until: {getattr(target, 'name', target)!r} is not a layer of this model")

    def summary(self, file=None):
        """Print a Keras-style table: layer (type), output shape, parameter count, and the totals."""
        import sys

        file = file or sys.stdout
        if not self.built:
            raise ValueError("summary: the model is not built; start it with nn.Input(shape) or call it once")
        rows = [(f"{layer.name} ({type(layer).__name__})", "(None, " + ", ".join(map(str, layer.output_shape)) + ")",
                 f"{layer.count_params():,}") for layer in self.layers if not isinstance(layer, Input)]
        widths = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in
                  enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "_" * sum(widths)
        print(f'Model: "{self.name or "sequential"}"', file=file)
        print(line, file=file)
        print("".join(h.ljust(w) for h, w in zip(("Layer (type)", "Output Shape", "Param #"), widths)), file=file)
        print("=" * sum(widths), file=file)
        for i, row in enumerate(rows):
            print("".join(c.ljust(w) for c, w in zip(row, widths)), file=file)
            print(line if i == len(rows) - 1 else "", file=file)
        buffers = int(sum(np.size(b) for _, b in self.named_buffers()))
        print(f"Total params: {self.count_params() + buffers:,}", file=file)
        print(f"Trainable params: {self.count_params():,}", file=file)
        print(f"Non-trainable params: {buffers:,}", file=file)
        print(line, file=file)


class Residual(Layer):
    """A residual block: activation(body(x) + shortcut(x)) (He et al.); the shortcut is the identity
    unless layers are given (e.g. a 1x1 Conv2D with stride 2 when the body changes the shape)."""

    def __init__(self, layers, shortcut=None, activation="relu", name=None):
        super().__init__(name)
        F.activation(activation)
        self.body = layers if isinstance(layers, Sequential) else Sequential(list(layers), name="body")
        if shortcut is not None:
            self.shortcut = shortcut if isinstance(shortcut, Sequential) else Sequential(list(shortcut),
                                                                                         name="shortcut")
        else:
            object.__setattr__(self, "shortcut", None)
        object.__setattr__(self, "activation", activation)

    def get_config(self):
        return {"layers": self.body.get_config()["layers"],
                "shortcut": None if self.shortcut is None else self.shortcut.get_config()["layers"],
                "activation": self.activation}

    @classmethod
    def from_config(cls, config, name=None):
        shortcut = config.get("shortcut")
        return cls([_from_config(s) for s in config["layers"]],
                   None if shortcut is None else [_from_config(s) for s in shortcut],
                   config.get("activation", "relu"), name=name)

    def _build(self, input_shape):
        out = self.body.build(input_shape)
        side = input_shape if self.shortcut is None else self.shortcut.build(input_shape)
        if tuple(out) != tuple(side):
            raise ValueError(f"Residual: the body gives {tuple(out)} but the shortcut {tuple(side)}; give a "
                             f"shortcut (e.g. [Conv2D(filters, 1, stride=...)]) that matches")
        return out

    def forward(self, x):
        self._check_input(x)
        side = x if self.shortcut is None else self.shortcut(x)
        return F.activation(self.activation)(self.body(x) + side)


LAYERS = {cls.__name__: cls for cls in (Sequential, Input, Conv2D, MaxPool2D, AvgPool2D, Flatten, Dense,
                                        DropConnect, Dropout, BatchNorm, Activation, ReLU, Sigmoid, Tanh,
                                        LeakyReLU, ELU, Swish, Softmax, Maxout, PReLU, Residual)}
