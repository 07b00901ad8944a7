"""Looking inside a network: activation statistics per layer and gradient norms (section 5.1).

The "CNN Training" slides make the case for careful initialisation with one experiment: a 10-layer
network of 500 tanh units, fed unit-Gaussian data, initialised three ways, with the mean and
standard deviation of every layer's activations printed and their histograms drawn:

- N(0, 0.01^2) weights: each layer multiplies the spread by about 0.01 sqrt(500) ~ 0.2, so the
  activations shrink to 0 (layer 10: std ~ 1e-7) and so do the gradients of the weights;
- N(0, 1) weights: every tanh saturates at -1 or 1 and its derivative is 0;
- Xavier, N(0, 1/fan_in): the std decays slowly (0.63 to 0.23 over ten layers); with ReLU it halves
  at every layer, which He's N(0, 2/fan_in) repairs (eq. 5.2).

``deep_mlp`` builds that network, ``activation_stats`` reproduces the tables (and histograms), and
``layer_gradient_norms`` shows the other side: in a deep sigmoid or tanh network the weight gradients
shrink layer after layer towards the input, like the lecture's 0.9^100 = 0.000026 (vanishing
gradients).

>>> import numpy as np, nn
>>> nn.set_seed(0)
>>> model = deep_mlp(depth=10, width=200, input_dim=200, activation="tanh", init="normal", std=0.01)
>>> x = np.random.default_rng(0).standard_normal((200, 200)).astype(np.float32)
>>> stats = activation_stats(model, x)
>>> [round(b / a, 2) for a, b in zip(stats.stds, stats.stds[1:])]    # each layer: 0.01 sqrt(200) = 0.14
[0.14, 0.14, 0.14, 0.14, 0.14, 0.14, 0.14, 0.14, 0.14]
>>> stats.stds[-1] < 1e-8
True
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

import kernels
from autodiff import no_grad

from . import functional as F
from . import init as initialisers
from . import utils
from .layers import Dense, Input, Sequential
from .module import Activated, Module
from .training import _check_data, loss_function

__all__ = ["LayerStats", "ActivationStats", "activation_stats", "gradient_norms", "layer_gradient_norms",
           "weight_gradient_norms", "deep_mlp"]


# --- activation statistics ---------------------------------------------------------------------------

@dataclass(eq=False, repr=False)
class LayerStats:
    """Statistics of one layer's output on a batch: ``mean``, ``std`` and a histogram.

    ``index`` counts from 1 (the slides' "hidden layer 1"); 0 is the input. ``counts`` and ``edges``
    are ``np.histogram``'s: ``plt.stairs(s.counts, s.edges)`` draws it.
    """

    index: int
    name: str
    layer: str                   # the layer's class name ("Dense", "ReLU", ...)
    shape: tuple                 # the output's shape, batch dimension included
    mean: float
    std: float
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    edges: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __repr__(self):
        return (f"LayerStats({self.index}: {self.name} ({self.layer}), shape={self.shape}, mean={self.mean:.6g}, "
                f"std={self.std:.6g})")


class ActivationStats(list):
    """The :class:`LayerStats` of every layer in order, with the input's in ``.input``.

    ``print(stats)`` (or ``stats.table()``) gives a table like the slides' printout; ``.means``,
    ``.stds`` and ``.names`` are the columns, ready to plot.
    """

    def __init__(self, records, input=None, pre_activation=False):
        super().__init__(records)
        self.input = input
        self.pre_activation = pre_activation

    @property
    def names(self):
        return [s.name for s in self]

    @property
    def means(self):
        return [s.mean for s in self]

    @property
    def stds(self):
        return [s.std for s in self]

    def table(self):
        """One line per layer: index, name (class), output shape, mean and std."""
        rows = [(str(s.index), f"{s.name} ({s.layer})", str(s.shape), f"{s.mean:.6f}", f"{s.std:.6f}")
                for s in ([self.input] if self.input is not None else []) + list(self)]
        what = "pre-activation" if self.pre_activation else "output"
        header = ("#", "layer", f"{what} shape", "mean", "std")
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        align = ("rjust", "ljust", "ljust", "rjust", "rjust")
        lines = ["  ".join(getattr(c, a)(w) for c, a, w in zip(row, align, widths)).rstrip()
                 for row in [header, *rows]]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"ActivationStats({len(self)} layers, stds={[float(f'{s:.3g}') for s in self.stds]})"


def _stats(index, name, layer, value, bins, hist_range):
    value = np.asarray(value)
    finite = value[np.isfinite(value)]
    counts, edges = np.histogram(finite, bins=bins, range=hist_range)
    return LayerStats(index, name, layer, tuple(value.shape), float(np.mean(value, dtype=np.float64)),
                      float(np.std(value, dtype=np.float64)), counts, edges)


def _sequential(model, owner):
    if not (isinstance(model, Module) and isinstance(getattr(model, "layers", None), list)):
        raise TypeError(f"{owner}: model must be an nn.Sequential (a Module with .layers), got {type(model).__name__}")
    return model.layers


def activation_stats(model, x, bins=50, pre_activation=False, hist_range=None):
    """Run ``model`` layer by layer on ``x`` and record each layer's output statistics.

    Evaluation mode (no dropout, running statistics) and no graph recorded; the model's mode is
    restored afterwards. ``pre_activation=True`` records a layer's value before its own activation
    (the ``z`` of a ``Dense(..., activation="tanh")``), while the next layer still gets the activated
    value. ``bins`` and ``hist_range`` go to ``np.histogram`` (the slides use 30 bins on (-1, 1)).
    ``nn.Input`` layers are skipped. Returns an :class:`ActivationStats` list.

    >>> import numpy as np, nn
    >>> model = nn.Sequential([nn.Input((2,)), nn.Dense(3, activation="relu", kernel_initializer="ones"),
    ...                        nn.Dense(1, kernel_initializer="ones")])
    >>> stats = activation_stats(model, np.array([[1, 2], [-1, 0]], np.float32), bins=3)
    >>> print(stats)
    #  layer            output shape      mean       std
    ----------------------------------------------------
    0  input (input)    (2, 2)        0.500000  1.118034
    1  dense (Dense)    (2, 3)        1.500000  1.500000
    2  dense_1 (Dense)  (2, 1)        4.500000  4.500000
    >>> stats[0].counts, stats[0].edges
    (array([3, 0, 3]), array([0., 1., 2., 3.], dtype=float32))
    >>> activation_stats(model, np.array([[1, 2], [-1, 0]], np.float32), pre_activation=True).means
    [1.0, 4.5]
    """
    layers = _sequential(model, "activation_stats")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"activation_stats: bins must be an int >= 1, got {bins!r}")
    if hist_range is not None and not (len(hist_range) == 2 and hist_range[0] < hist_range[1]):
        raise ValueError(f"activation_stats: hist_range must be (low, high) with low < high, got {hist_range!r}")
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.ndim < 2:
        raise TypeError(f"activation_stats: x must be a float array (N, ...) with a batch dimension, got dtype "
                        f"{x.dtype} and shape {x.shape}")
    records = []
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            h = x
            for layer in layers:
                if isinstance(layer, Input):
                    h = layer(h)
                    continue
                if pre_activation and isinstance(layer, Activated):
                    z = layer.forward(h, pre_activation=True)
                    h = F.activation(layer.activation)(z)
                else:
                    z = h = layer(h)
                records.append(_stats(len(records) + 1, layer.name, type(layer).__name__, getattr(z, "value", z),
                                      bins, hist_range))
    finally:
        model.train(was_training)
    return ActivationStats(records, _stats(0, "input", "input", x, bins, hist_range), pre_activation)


# --- gradient norms ----------------------------------------------------------------------------------

def _norm(array):
    if kernels.is_device_array(array):          # a model on the GPU: the squares summed there, one number read
        return math.sqrt(float((array * array).sum()))
    return math.sqrt(float(np.sum(np.square(array, dtype=np.float64))))


def gradient_norms(model):
    """{parameter name: L2 norm of its ``.grad``} after a backward pass (0.0 where it has none).

    >>> import numpy as np, nn
    >>> model = nn.Sequential([nn.Input((2,)), nn.Dense(1, kernel_initializer="ones")])
    >>> model(np.array([[3.0, 4.0]], np.float32)).sum().backward()     # d/dw = x = (3, 4), d/db = 1
    >>> gradient_norms(model)
    {'dense.weight': 5.0, 'dense.bias': 1.0}
    """
    if not isinstance(model, Module):
        raise TypeError(f"gradient_norms: model must be an nn Module, got {type(model).__name__}")
    params = list(model.named_parameters())
    if params and all(p.grad is None for _, p in params):
        raise ValueError("gradient_norms: no parameter has a gradient; call loss.backward() first")
    return {name: 0.0 if p.grad is None else _norm(p.grad) for name, p in params}


def layer_gradient_norms(model, x, y, loss="softmax_cross_entropy", training=True):
    """{layer name: L2 norm of the loss's gradient with respect to its weights}, in layer order.

    One forward and backward pass of ``loss`` (a name from ``nn.training.LOSSES`` or
    ``f(output, y)``) on the batch (x, y), in training mode unless ``training=False``. Nothing is
    left changed: the gradients are zeroed before the pass and the previous ones put back after it,
    and parameters, BatchNorm's running statistics and the train/eval mode are as they were (dropout
    does draw from nn's random generator). Layers without a ``weight`` are left out; a layer holding
    several (a ``Residual`` block) gives the norm of all its weights' gradients together.

    >>> import numpy as np, nn
    >>> model = nn.Sequential([nn.Input((2,)), nn.Dense(1, kernel_initializer="ones")])
    >>> x, y = np.array([[3.0, 4.0]], np.float32), np.array([[0.0]], np.float32)
    >>> layer_gradient_norms(model, x, y, loss="mse")          # d (w.x)^2 / dw = 2 (w.x) x = 14 (3, 4)
    {'dense': 70.0}
    """
    _sequential(model, "layer_gradient_norms")            # a Sequential: norms per layer, in order
    objective = loss_function(model, loss)
    x, y = _check_data((x, y), "layer_gradient_norms: (x, y)")
    params = [p for _, p in model.named_parameters()]
    grads = [p.grad for p in params]
    buffers = [(b, np.array(b, copy=True)) for _, b in model.named_buffers()]
    was_training = model.training
    try:
        model.train(training)
        model.zero_grad()
        value, _ = objective(x, y)
        value.backward()
        norms = weight_gradient_norms(model)
    finally:
        for p, g in zip(params, grads):
            p.grad = g
        for array, saved in buffers:
            array[...] = saved
        model.train(was_training)
    return norms


def weight_gradient_norms(model):
    """{layer name: L2 norm of the gradient its weights hold now}, in layer order, read from the ``.grad``
    that the last backward pass (a step of ``fit``) left, without a pass of its own: what
    :func:`layer_gradient_norms` reports after its pass, and what ``nn.LiveView`` draws while ``fit`` runs.
    Layers without a ``weight`` are left out; a block holding several (a ``Residual``) gives them together;
    a weight without a gradient counts 0. A model without ``.layers`` (a subclassed ``nn.Model``): one
    entry per module that holds a ``weight`` itself.

    >>> import numpy as np, nn
    >>> model = nn.Sequential([nn.Input((2,)), nn.Dense(1, kernel_initializer="ones")])
    >>> model(np.array([[3.0, 4.0]], np.float32)).sum().backward()     # d/dw = x = (3, 4)
    >>> weight_gradient_norms(model)
    {'dense': 5.0}
    """
    if not isinstance(model, Module):
        raise TypeError(f"weight_gradient_norms: model must be an nn Module, got {type(model).__name__}")
    if isinstance(getattr(model, "layers", None), list):
        groups = [(layer.name, [p for name, p in layer.named_parameters() if name.rsplit(".", 1)[-1] == "weight"])
                  for layer in model.layers]
    else:
        groups = [(name, [p for own, p in module.named_parameters() if own == "weight"])
                  for name, module in model.named_modules() if name]
    return {name: math.sqrt(sum(0.0 if p.grad is None else _norm(p.grad) ** 2 for p in weights))
            for name, weights in groups if weights}


# --- the slides' experiment ---------------------------------------------------------------------------

def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"deep_mlp: {name} must be an int >= 1, got {value!r}")
    return int(value)


def deep_mlp(depth=10, width=500, activation="tanh", init="normal", std=None, input_dim=500, classes=None,
             use_bias=False, rng=None):
    """The slides' deep plain network: ``depth`` Dense layers of ``width`` units, all initialised alike.

    ``init``: an ``nn.init`` name ("normal", "glorot_normal", "he_normal", ...) or a function of the
    shape. ``std``: the standard deviation for ``init="normal"`` (default 0.01, the slides' first
    try; 1.0 is their second). The slides' "Xavier" ``randn(fan_in, fan_out) / sqrt(fan_in)`` is
    ``"glorot_normal"`` here when ``width == input_dim`` (then 2 / (fan_in + fan_out) = 1 / fan_in);
    their "XavierImproved" is ``"he_normal"``. No biases, as in the slides' ``H = X W`` (pass
    ``use_bias=True`` for zero biases). ``classes``: append a linear Dense layer of that many
    logits (for a loss and its gradients). ``rng``: a Generator or int seed for the weights
    (default: nn's global generator, see ``nn.set_seed``).

    >>> model = deep_mlp(depth=3, width=4, input_dim=5, classes=2)
    >>> [layer.output_shape for layer in model.layers]
    [(5,), (4,), (4,), (4,), (2,)]
    """
    depth, width, input_dim = (_positive_int(v, n) for v, n in ((depth, "depth"), (width, "width"),
                                                                 (input_dim, "input_dim")))
    if classes is not None:
        classes = _positive_int(classes, "classes")
    F.activation(activation)                     # an unknown name fails here, with the list of names
    initialiser = initialisers.get(init)
    options = {}
    if std is not None:
        if initialiser is not initialisers.normal:
            raise ValueError(f"deep_mlp: std is the standard deviation of init='normal', but init={init!r}")
        if not (math.isfinite(std) and std > 0):
            raise ValueError(f"deep_mlp: std must be a finite number > 0, got {std!r}")
        options["std"] = float(std)
    if rng is not None:
        options["rng"] = utils.rng(rng)          # one generator for every layer, so they all differ
    kernel = functools.partial(initialiser, **options) if options else init
    layers = [Input((input_dim,))]
    layers += [Dense(width, activation=activation, use_bias=use_bias, kernel_initializer=kernel)
               for _ in range(depth)]
    if classes is not None:
        layers.append(Dense(classes, use_bias=use_bias, kernel_initializer=kernel))
    return Sequential(layers, name="deep_mlp")
