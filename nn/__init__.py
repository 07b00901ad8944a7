"""nn: the CNN stack of the chainrule toolkit.

Layers and models (Keras's names, NCHW), functional ops as autodiff primitives (``nn.functional``),
initialisers (``nn.init``), optimisers and schedules (``nn.optim``), regularisers, data utilities,
a training loop (``nn.fit``) and ready models (``nn.models``). One concern per module:

- ``module``: Parameter, Module, Layer (the build protocol), the softmax rule, layer specs, naming;
- ``layers/``: the layers by concern (core, conv, regularisation, activations, containers, summary) and
  ``Model`` (Keras's model methods, the base of Sequential and of a user's own model);
- ``functional``: the ops the layers call; ``init``: initialisers; ``optim``: optimisers, schedules;
- ``training``: ``fit``, ``evaluate``, ``predict``, callbacks; ``io``: ``save`` / ``load``;
- ``data/``: splits, normalisers, batching, labels; ``augment``: augmentations; ``datasets``;
- ``regularizers``, ``diagnostics``, ``models``, ``plot``, ``live`` (LiveView); ``utils``: the seeded generator;
- ``transfer``: freezing, a new head, greedy layer-wise pre-training (sections 5.1.4, 5.1.8).

>>> import nn
>>> model = nn.models.keras_mnist_cnn()
>>> model.count_params()
34826
"""
import kernels  # noqa: F401

from . import augment, data, datasets, functional, init, utils
from . import batching  # noqa: F401  (vmap's rules for nn's primitives)
from .module import LAYERS, Layer, Module, Parameter
from . import layers
from .layers import (ELU, Activation, AvgPool2D, BatchNorm, Conv2D, Dense, DropConnect, Dropout, Flatten, Input,
                     LeakyReLU, MaxPool2D, Maxout, Model, PReLU, ReLU, Residual, Sequential, Sigmoid, Softmax, Swish, Tanh)
from .layers import AvgPool1D, Conv1D, GlobalAveragePooling1D, MaxPool1D
from .utils import set_seed
from . import optim
from .training import Callback, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint, evaluate, fit, predict
from .callbacks import CSVLogger, TerminateOnNaN
from .io import load, load_weights, save
from . import diagnostics, models, plot, regularizers, transfer
from .live import LiveView
from .transfer import freeze, unfreeze
from .datasets import load_digits, load_mnist
from .export import export_onnx
from .experiments import cross_validate, sweep
from .func import functional_call

__all__ = [
    "functional", "init", "utils", "layers", "optim", "models", "set_seed", "augment", "data", "datasets",
    "diagnostics", "regularizers", "plot", "load_digits", "load_mnist", "transfer", "freeze", "unfreeze",
    "Module", "Layer", "Parameter", "Model", "Sequential", "Input", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dense",
    "Dropout", "DropConnect", "BatchNorm", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Swish", "Sigmoid",
    "Tanh", "Softmax", "Maxout", "Residual", "LAYERS", "Conv1D", "MaxPool1D", "AvgPool1D", "GlobalAveragePooling1D",
    "fit", "evaluate", "predict", "History", "Callback", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler",
    "TerminateOnNaN", "CSVLogger", "LiveView",
    "save", "load", "load_weights", "export_onnx", "cross_validate", "sweep",
    "functional_call",
]
