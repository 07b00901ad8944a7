"""The core layers: Input (declares the shape), Flatten, and the fully connected Dense.

>>> import nn
>>> model = nn.Sequential([nn.Input((1, 4, 4)), nn.Flatten(), nn.Dense(3, activation="softmax")])
>>> model.output_shape, model.layers[2].weight.shape          # Keras's layout: (in, units)
((3,), (16, 3))
"""
from __future__ import annotations

import numpy as np

from autodiff import Tensor

from .. import functional as F
from .. import init as initialisers
from ..module import Activated, Layer, register
from ..utils import positive_int

__all__ = ["Input", "Flatten", "Dense"]


@register
class Input(Layer):
    """Declares the input shape (batch dimension left out), e.g. ``Input((1, 28, 28))``."""

    def __init__(self, shape, name=None):
        super().__init__(name)
        if isinstance(shape, (int, np.integer)) or not hasattr(shape, "__iter__"):
            raise TypeError(f"Input: shape must be a tuple of ints without the batch axis (e.g. ({shape!r},)), "
                            f"got {shape!r}")
        self.shape = tuple(positive_int(s, "Input: each size of shape") for s in shape)

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


@register
class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W)."""

    def _build(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        self._check_input(x)
        return F.flatten(x)


@register
class Dense(Activated):
    """Fully connected: x @ weight + bias, weight (in, units) as in Keras; Glorot-uniform by default."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name=None, input_shape=None):
        super().__init__(activation, name, input_shape)
        units = positive_int(units, "units")
        initialisers.get(kernel_initializer), initialisers.get(bias_initializer)
        self.config = dict(units=units, activation=activation, use_bias=bool(use_bias),
                           kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    def _build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{type(self).__name__} needs flat input (features,), got {input_shape}: "
                             f"put a Flatten() before it")
        c = self.config
        self.add_weight("weight", (input_shape[0], c["units"]), c["kernel_initializer"])
        self.bias = self.add_weight("bias", (c["units"],), c["bias_initializer"]) if c["use_bias"] else None
        return (c["units"],)

    def _weight(self):
        return self.weight

    def _linear(self, x):
        return F.linear(x, self._weight(), self.bias)
