"""Activation layers: ``Activation(name)``, the fixed ReLU family and Softmax, PReLU (learned) and Maxout.

Each names its activation in ``layer.activation`` (a name of ``nn.functional.ACTIVATIONS``), the
attribute :func:`nn.module.ends_in_softmax` reads; ``forward(x, pre_activation=True)`` leaves the
activation out (the identity), as it does for ``Dense(..., activation=...)``.

>>> import numpy as np, nn
>>> x = np.array([[-2.0, 0.0, 3.0]], np.float32)
>>> nn.ReLU()(x), nn.LeakyReLU(alpha=0.5)(x)          # NumPy in, NumPy out (no graph recorded)
(array([[0., 0., 3.]], dtype=float32), array([[-1.,  0.,  3.]], dtype=float32))
>>> nn.Activation("relu").activation, nn.Softmax().activation
('relu', 'softmax')
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import utils
from ..module import Layer, register

__all__ = ["Activation", "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "Swish", "Softmax", "Maxout", "PReLU"]


class _Fixed(Layer):
    """A layer that only applies the activation ``activation``, with the fixed arguments ``defaults``
    (overridden by keyword: ``LeakyReLU(alpha=0.1)``)."""

    defaults = {}

    def __init__(self, name=None, **kwargs):
        super().__init__(name)
        unknown = set(kwargs) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(unknown)}")
        self.config = {**self.defaults, **{key: utils.number_in(value, f"{type(self).__name__}: {key}")
                                           for key, value in kwargs.items()}}

    def forward(self, x, pre_activation=False):
        self._check_input(x)
        return x if pre_activation else F.activation(self.activation)(x, **self.config)


@register
class Activation(_Fixed):
    """An activation by name: "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "swish"."""

    def __init__(self, activation, name=None):
        super().__init__(name)
        F.activation(activation)  # checks the name now
        self.activation = activation

    def get_config(self):
        return {"activation": self.activation}


@register
class ReLU(_Fixed):
    """max(x, 0): the rectified linear unit."""

    activation = "relu"


@register
class Sigmoid(_Fixed):
    """1 / (1 + exp(-x)), squashing into (0, 1)."""

    activation = "sigmoid"


@register
class Tanh(_Fixed):
    """tanh(x), squashing into (-1, 1), zero-centred."""

    activation = "tanh"


@register
class LeakyReLU(_Fixed):
    """x for x > 0, alpha x otherwise (alpha = 0.01: the slides' Leaky ReLU)."""

    activation = "leaky_relu"
    defaults = {"alpha": 0.01}


@register
class ELU(_Fixed):
    """x for x > 0, alpha (exp(x) - 1) otherwise."""

    activation = "elu"
    defaults = {"alpha": 1.0}


@register
class Swish(_Fixed):
    """x sigmoid(beta x) (beta = 1: SiLU)."""

    activation = "swish"
    defaults = {"beta": 1.0}


@register
class Softmax(_Fixed):
    """Softmax over axis 1 (the classes): a model that ends in it gives probabilities."""

    activation = "softmax"


@register
class Maxout(Layer):
    """Maxout over groups of ``pieces`` channels/units: C -> C / pieces."""

    def __init__(self, name=None, pieces=2):
        super().__init__(name)
        self.config = {"pieces": utils.positive_int(pieces, "Maxout: pieces")}

    def _build(self, input_shape):
        pieces = self.config["pieces"]
        if input_shape[0] % pieces:
            raise ValueError(f"Maxout: {input_shape[0]} channels do not split into groups of pieces={pieces}")
        return (input_shape[0] // pieces, *input_shape[1:])

    def forward(self, x):
        self._check_input(x)
        return F.maxout(x, **self.config)


@register
class PReLU(Layer):
    """Parametric ReLU with one learned slope per channel (initial value ``alpha``, 0.25 as in torch)."""

    def __init__(self, alpha=0.25, name=None):
        super().__init__(name)
        self.alpha_init = utils.number_in(alpha, "PReLU: alpha")

    def get_config(self):
        return {"alpha": self.alpha_init}

    def _build(self, input_shape):
        self.add_weight("alpha", (input_shape[0],), lambda shape: np.full(shape, self.alpha_init, np.float32))
        return input_shape

    def forward(self, x):
        self._check_input(x)
        return F.prelu(x, self.alpha)
