"""Regularising layers (section 5.2.2-5.2.4): Dropout, DropConnect and batch normalisation.

Dropout and DropConnect draw their masks from nn's global generator (``nn.set_seed`` makes them
reproducible, see :mod:`nn.utils`) in training mode and are the identity in evaluation mode.

>>> import numpy as np, nn
>>> layer = nn.Dropout(0.5)
>>> x = np.ones((1, 4), np.float32)
>>> nn.set_seed(0); a = layer(x)
>>> nn.set_seed(0); bool((layer(x) == a).all()), set(a.ravel().tolist()) <= {0.0, 2.0}
(True, True)
>>> bool((layer.eval()(x) == x).all())
True
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import utils
from ..module import Layer, register
from .core import Dense

__all__ = ["Dropout", "DropConnect", "BatchNorm"]


@register
class Dropout(Layer):
    """Inverted dropout with probability ``rate`` in training; the identity in evaluation."""

    def __init__(self, rate, name=None):
        super().__init__(name)
        self.rate = F._check_rate(rate)

    def get_config(self):
        return {"rate": self.rate}

    def forward(self, x):
        self._check_input(x)
        return F.dropout(x, self.rate, self.training)


@register
class DropConnect(Dense):
    """A Dense layer whose weights (not activations) are dropped with probability ``rate`` in training."""

    def __init__(self, units, rate=0.5, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name=None):
        super().__init__(units, activation, use_bias, kernel_initializer, bias_initializer, name)
        self.config["rate"] = F._check_rate(rate)

    def _weight(self):
        return F.drop_connect(self.weight, self.config["rate"], self.training)


@register
class BatchNorm(Layer):
    """Batch normalisation per channel (axis 1) of (C, H, W) or (features,) inputs, torch's defaults."""

    def __init__(self, momentum=0.1, eps=1e-5, name=None):
        super().__init__(name)
        self.config = {"momentum": utils.number_in(momentum, "BatchNorm: momentum", 0, 1),
                       "eps": utils.number_in(eps, "BatchNorm: eps", 0, open_low=True)}

    def _build(self, input_shape):
        c = input_shape[0]
        self.add_weight("gamma", (c,), "ones")
        self.add_weight("beta", (c,), "zeros")
        self.register_buffer("running_mean", np.zeros(c, np.float32))
        self.register_buffer("running_var", np.ones(c, np.float32))
        return input_shape

    def forward(self, x):
        self._check_input(x)
        return F.batch_norm(x, self.gamma, self.beta, self.running_mean, self.running_var, self.training,
                            **self.config)
