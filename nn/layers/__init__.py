"""The layers, by concern; each is a thin holder of parameters that calls an ``nn.functional`` op.

==================  ==========================================================================
module              layers
==================  ==========================================================================
``core``            Input, Flatten, Dense
``conv``            Conv2D, MaxPool2D, AvgPool2D
``regularisation``  Dropout, DropConnect, BatchNorm (section 5.2)
``activations``     Activation, ReLU, Sigmoid, Tanh, LeakyReLU, ELU, Swish, Softmax, Maxout, PReLU
``containers``      Sequential, Residual
``summary``         the Keras-style table of ``Sequential.summary()``
``model``           Keras's compile / fit / evaluate / predict / save and torch's ``to``, on Sequential
==================  ==========================================================================

What they share (Module, Layer, the build protocol, the softmax rule, layer specs, naming) is
:mod:`nn.module`. Every class here is registered in ``nn.LAYERS`` (:func:`nn.module.register`),
the whitelist ``nn.load`` rebuilds saved models from. All are importable from ``nn`` itself.
"""
from ..module import LAYERS
from .activations import ELU, Activation, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Softmax, Swish, Tanh
from .containers import Residual, Sequential
from .conv import AvgPool2D, Conv2D, MaxPool2D
from .core import Dense, Flatten, Input
from .regularisation import BatchNorm, DropConnect, Dropout

__all__ = ["Input", "Flatten", "Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "Dropout", "DropConnect", "BatchNorm",
           "Activation", "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "Swish", "Softmax", "Maxout", "PReLU",
           "Sequential", "Residual", "LAYERS"]
