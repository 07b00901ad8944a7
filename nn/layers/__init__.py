"""The layers, by concern; each is a thin holder of parameters that calls an ``nn.functional`` op.

==================  ==========================================================================
module              layers
==================  ==========================================================================
``core``            Input, Flatten, Dense
``conv``            Conv2D, MaxPool2D, AvgPool2D
``conv1d``          Conv1D, MaxPool1D, AvgPool1D, GlobalAveragePooling1D (NCL sequences)
``regularisation``  Dropout, DropConnect, BatchNorm (section 5.2)
``activations``     Activation, ReLU, Sigmoid, Tanh, LeakyReLU, ELU, Swish, Softmax, Maxout, PReLU
``containers``      Sequential, Residual
``summary``         the Keras-style table of ``Sequential.summary()``
``model``           ``Model`` (Keras's): compile / fit / evaluate / predict / summary / save and torch's
                    ``to``; Sequential and a user's own model derive from it
==================  ==========================================================================

What they share (Module, Layer, the build protocol, the softmax rule, layer specs, naming) is
:mod:`nn.module`. Every class here is registered in ``nn.LAYERS`` (:func:`nn.module.register`),
the whitelist ``nn.load`` rebuilds saved models from. All are importable from ``nn`` itself, and so is
``Model``, the base that is no layer of its own (not in ``LAYERS``: a user's subclass registers itself).
"""
from ..module import LAYERS
from .activations import ELU, Activation, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Softmax, Swish, Tanh
from .containers import Residual, Sequential
from .conv import AvgPool2D, Conv2D, MaxPool2D
from .conv1d import AvgPool1D, Conv1D, GlobalAveragePooling1D, MaxPool1D
from .core import Dense, Flatten, Input
from .model import Model
from .regularisation import BatchNorm, DropConnect, Dropout

__all__ = ["Input", "Flatten", "Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "Dropout", "DropConnect", "BatchNorm",
           "Activation", "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "Swish", "Softmax", "Maxout", "PReLU",
           "Sequential", "Residual", "LAYERS", "Conv1D", "MaxPool1D", "AvgPool1D",
           "GlobalAveragePooling1D"]
