"""Containers: ``Sequential`` (layers one after the other) and ``Residual`` (a block with a shortcut).

A container is a layer too: it builds its layers in turn, its ``get_config()`` holds their specs
(:func:`nn.module.layer_spec`) and ``from_config`` rebuilds them. A Sequential's final activation
is its last layer's (:func:`nn.module.final_activation`; a Residual has its own ``activation``), so
:func:`nn.module.ends_in_softmax` sees through it, and ``forward(x, pre_activation=True)`` leaves
that activation out.

>>> import nn
>>> model = nn.Sequential([nn.Input((4,)), nn.Dense(8, activation="relu"), nn.Dense(3, activation="softmax")])
>>> [layer.name for layer in model.layers], model.ends_in_softmax()
(['input', 'dense', 'dense_1'], True)
"""
from __future__ import annotations

import numpy as np

from autodiff import Tensor

from .. import functional as F
from ..module import Activated, Layer, assign_names, check_layer_name, final_activation, from_spec, layer_spec, register
from .core import Input
from .model import Model

__all__ = ["Sequential", "Residual"]


@register
class Sequential(Model):
    """Layers applied one after the other; built at once when the first layer is ``Input`` (or has
    Keras's ``input_shape=``). ``Sequential([a, b])`` and ``Sequential(a, b)`` are the same model.
    Keras's methods ``compile``/``fit``/``evaluate``/``predict``/``summary``/``save`` come from
    :class:`nn.Model` (:mod:`nn.layers.model`).

    Layers are named like Keras's (conv2d, conv2d_1, max_pool2d, ...) unless given a name;
    parameter names are "<layer name>.<parameter>" (e.g. "conv2d.weight").
    """

    def __init__(self, *layers, name=None):
        super().__init__(name)
        if len(layers) == 1 and not isinstance(layers[0], Layer):
            layers = layers[0]              # Sequential([a, b]), Keras's form
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layer {i} must be an nn layer, got {type(layer).__name__}")
        for layer in assign_names(layers):
            setattr(self, check_layer_name(self, layer.name), layer)
        self.layers = layers
        if layers and isinstance(layers[0], Input):
            self.build(layers[0].shape)
        elif layers and getattr(layers[0], "declared_input_shape", None) is not None:
            self.build(layers[0].declared_input_shape)

    def _build(self, input_shape):
        shape = input_shape
        for layer in self.layers:
            shape = layer.build(shape)
        return shape

    def get_config(self):
        return {"layers": [layer_spec(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config, name=None):
        return cls([from_spec(spec) for spec in config["layers"]], name=name)

    def forward(self, x, logits=False, pre_activation=False):
        """Run the layers. ``pre_activation=True`` leaves out the last layer's activation;
        ``logits=True`` leaves it out only when it is a softmax (:func:`nn.module.ends_in_softmax`),
        giving the logits the fused ``softmax_cross_entropy`` wants."""
        if not self.built:
            self.build(tuple(np.shape(x.value if isinstance(x, Tensor) else x))[1:])
        strip = pre_activation or (logits and self.ends_in_softmax())
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            x = layer.forward(x, pre_activation=True) if last and strip and final_activation(layer) else layer(x)
        return x

    def forward_until(self, x, target, pre_activation=False):
        """The output of layer ``target`` (before its activation with ``pre_activation``)."""
        for layer in self.layers:
            if layer is target:
                if pre_activation and isinstance(layer, Activated):
                    return layer.forward(x, pre_activation=True)
                return layer(x)
            x = layer(x)
        raise ValueError(f"forward_until: {getattr(target, 'name', target)!r} is not a layer of this model")


@register
class Residual(Layer):
    """A residual block: activation(body(x) + shortcut(x)) (He et al.); the shortcut is the identity
    unless layers are given (e.g. a 1x1 Conv2D with stride 2 when the body changes the shape)."""

    def __init__(self, layers, shortcut=None, activation="relu", name=None):
        super().__init__(name)
        F.activation(activation)
        self.body = layers if isinstance(layers, Sequential) else Sequential(list(layers), name="body")
        if shortcut is not None and not isinstance(shortcut, Sequential):
            shortcut = Sequential(list(shortcut), name="shortcut")
        self.shortcut = shortcut
        self.activation = activation

    def get_config(self):
        return {"layers": self.body.get_config()["layers"],
                "shortcut": None if self.shortcut is None else self.shortcut.get_config()["layers"],
                "activation": self.activation}

    @classmethod
    def from_config(cls, config, name=None):
        shortcut = config.get("shortcut")
        return cls([from_spec(s) for s in config["layers"]],
                   None if shortcut is None else [from_spec(s) for s in shortcut],
                   config.get("activation", "relu"), name=name)

    def _build(self, input_shape):
        out = self.body.build(input_shape)
        side = input_shape if self.shortcut is None else self.shortcut.build(input_shape)
        if tuple(out) != tuple(side):
            raise ValueError(f"Residual: the body gives {tuple(out)} but the shortcut {tuple(side)}; give a "
                             f"shortcut (e.g. [Conv2D(filters, 1, stride=...)]) that matches")
        return out

    def forward(self, x, pre_activation=False):
        self._check_input(x)
        side = x if self.shortcut is None else self.shortcut(x)
        y = self.body(x) + side
        return y if pre_activation else F.activation(self.activation)(y)
