"""The Module protocol: Parameter, Module, Layer (the build protocol), layer specs and naming.

The layers themselves live in :mod:`nn.layers` (by concern); this module holds what they share:

- ``Parameter``: a Tensor that a Module learns.
- ``Module``: registers the Parameters and sub-Modules assigned to it (as in PyTorch) and offers
  ``parameters()``, ``named_parameters()``, ``state_dict()``, ``load_state_dict()``, ``train()`` /
  ``eval()`` and ``zero_grad()``.
- ``Layer``: a Module that knows its shapes: ``build(input_shape)`` creates its parameters for an
  input of that shape (batch dimension left out) and returns the output shape, so a
  ``Sequential`` that starts with ``Input`` is built at once and can print its ``summary()``, like
  Keras. ``get_config()`` gives its constructor's arguments.
- ``Activated``: a layer followed by Keras's optional ``activation=``.
- ``ends_in_softmax(model)``: the one rule for "this model's output is a softmax", which ``fit``,
  ``evaluate``, ``Sequential.forward(logits=True)`` and ``nn.regularizers.Ensemble`` all follow.
- ``LAYERS``, ``register``, ``layer_spec`` and ``from_spec``: a layer as JSON-friendly data
  ``{"class", "name", "config"}`` and back, through a whitelist of classes (``nn.save``/``nn.load``).
- ``assign_names``: Keras's layer names (conv2d, conv2d_1, max_pool2d, ...); ``check_layer_name``:
  a layer's name becomes an attribute of its container, so it must be an identifier that shadows
  nothing (not ``forward``, ``eval``, ``layers``, ``__class__``).
- ``Layer.add_weight`` and ``parameter_budget``: every parameter is made in one place, where a
  loader can cap the values an architecture may allocate (``nn.load`` caps them at what the file
  holds) before the allocation happens; inside ``shapes_only()`` nothing is allocated at all.

>>> import nn
>>> model = nn.Sequential([nn.Input((1, 28, 28)), nn.Flatten(), nn.Dense(128, activation="relu"), nn.Dense(10)])
>>> model.count_params()
101770
>>> [name for name, _ in model.named_parameters()]
['dense.weight', 'dense.bias', 'dense_1.weight', 'dense_1.bias']
"""
from __future__ import annotations

import contextlib
import contextvars
import keyword
import math
import re
from collections import OrderedDict

import numpy as np

from autodiff import Tensor

from . import functional as F
from . import init as initialisers, utils

__all__ = ["Parameter", "Module", "Layer", "Activated", "final_activation", "ends_in_softmax", "LAYERS", "register",
           "layer_spec", "from_spec", "assign_names", "check_layer_name", "parameter_budget", "shapes_only"]


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
        # The registries go straight into __dict__: __setattr__ (below) files attributes into them.
        self.__dict__.update(_parameters=OrderedDict(), _buffers=OrderedDict(), _modules=OrderedDict())
        self.training = True

    def __setattr__(self, key, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting {key!r}")
        for registry in (self._parameters, self._modules):
            registry.pop(key, None)
        if isinstance(value, Parameter):
            self._parameters[key] = value
        elif isinstance(value, Module):
            self._modules[key] = value
        super().__setattr__(key, value)

    def register_buffer(self, key, array):
        """A plain array that belongs to the state (saved, loaded) but is not learned (running stats)."""
        self._buffers[key] = array
        setattr(self, key, array)

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
        """The Parameters, each once (a layer shared by two containers too), as torch's ``parameters()``."""
        unique = {}
        for _, p in self.named_parameters():
            unique.setdefault(id(p), p)
        return list(unique.values())

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
            module.training = bool(mode)
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
        a shape that differs, a non-numeric array, or values that the cast to the parameter's dtype
        would change (an int64 2**62 into float32, a float64 1e300 into float32's inf) raise
        ValueError naming them all.
        """
        targets = OrderedDict((name, p.value) for name, p in self.named_parameters())
        targets.update(self.named_buffers())
        problems, cast = [], {}
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
                else:
                    cast[name] = _exact_cast(name, got, target.dtype, problems)
        if problems:
            raise ValueError("load_state_dict: the state does not fit this model; " + "; ".join(problems))
        for name, target in targets.items():
            if name in cast:
                target[...] = cast[name]

    # --- calling -------------------------------------------------------------------------------------
    def ends_in_softmax(self) -> bool:
        """Whether this module's output is a softmax over axis 1 (see :func:`ends_in_softmax`)."""
        return ends_in_softmax(self)

    def forward(self, x):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)


def _exact_cast(name, got, dtype, problems):
    """``got`` as ``dtype``, or None with a problem noted when the cast would change a value: an
    integer beyond the float's exact range (2**24 for float32), or a finite float that overflows."""
    with np.errstate(all="ignore"):
        cast = got.astype(dtype)
        if got.dtype.kind in "iu" and dtype.kind == "f":
            changed = np.abs(got.astype(np.float64)) > 2.0 ** (np.finfo(dtype).nmant + 1)
        elif got.dtype.kind == "f":
            changed = np.isfinite(got) & ~np.isfinite(cast)
        else:
            changed = cast.astype(got.dtype) != got
    if np.any(changed):
        index = int(np.flatnonzero(changed)[0])
        problems.append(f"{name}: the value {got.ravel()[index].item()!r} (dtype {got.dtype}) does not fit "
                        f"{dtype} exactly")
        return None
    return cast


def final_activation(model):
    """The activation ``model`` applies last: a container's (a Module with a list ``layers``) is its
    last layer's, any other's its ``activation`` attribute; None for none."""
    layers = getattr(model, "layers", None)
    if isinstance(layers, list):
        return final_activation(layers[-1]) if layers else None
    return getattr(model, "activation", None)


def ends_in_softmax(model) -> bool:
    """The one rule: ``model``'s output is softmax(logits) over axis 1 when the activation it applies
    last (:func:`final_activation`) is "softmax".

    That covers ``Softmax()``, ``Activation("softmax")``, ``Dense(..., activation="softmax")``
    (and Conv2D's), a ``Residual`` with ``activation="softmax"``, and a ``Sequential`` whose last
    layer is one of these. Such a model computes its logits with ``forward(x, pre_activation=True)``
    (a Sequential also with ``forward(x, logits=True)``); ``fit`` and ``evaluate`` then take the
    cross-entropies from the logits with the fused ``softmax_cross_entropy``, and ``Ensemble``
    averages its outputs as probabilities. Any other module (such as an ``Ensemble``) does not end
    in softmax.
    """
    return final_activation(model) == "softmax"


class Layer(Module):
    """A module with shapes: ``build(input_shape)`` makes its parameters and gives its output shape.

    Shapes leave out the batch dimension: (C, H, W) or (features,). ``activation`` names the
    activation the layer applies last (None for none); a layer that has one (a container: whose
    last layer has one) also accepts ``forward(x, pre_activation=True)``, which leaves it out.
    """

    activation = None
    #: Keras's ``input_shape=`` (C, H, W) or (features,) of a first layer: a Sequential starting with
    #: it is built at once, as with an ``Input``. Not part of the config (a saved model keeps its Input).
    declared_input_shape = None
    #: Whether the input must have the weights' dtype (the convolution kernels need it; NumPy's
    #: products in Dense promote instead): checked first, with the fix named, by ``_check_input``.
    same_dtype = False

    def __init__(self, name=None, input_shape=None):
        super().__init__()
        self.name = name
        self.input_shape = None
        self.output_shape = None
        if input_shape is not None:
            self.declared_input_shape = tuple(int(s) for s in input_shape)

    @property
    def built(self):
        return self.output_shape is not None

    def build(self, input_shape):
        input_shape = tuple(int(s) for s in input_shape)
        self.input_shape = input_shape
        self.output_shape = tuple(self._build(input_shape))
        return self.output_shape

    def _build(self, input_shape):
        return input_shape

    def add_weight(self, name, shape, initializer):
        """Make the Parameter ``name`` of ``shape`` (Keras's ``add_weight``), set it as an attribute and
        return it. ``initializer`` is a name of ``nn.init`` or a function of the shape. Inside a
        :func:`parameter_budget` the values are counted against the budget before they are made."""
        shape = tuple(int(s) for s in shape)
        _charge(self, name, shape)
        if _SHAPES_ONLY.get():      # one read-only zero seen in every position: no memory, no time
            parameter = Parameter._make(np.broadcast_to(np.float32(0), shape), requires_grad=True, name=name)
        else:
            parameter = Parameter(initialisers.get(initializer)(shape), name)
        setattr(self, name, parameter)
        return parameter

    def get_config(self):
        """The constructor's arguments (JSON-friendly), so ``type(layer)(**config)`` rebuilds it.

        A layer that keeps them in ``self.config`` (a dict) gets a copy of it; others override this.
        """
        return dict(getattr(self, "config", {}))

    @classmethod
    def from_config(cls, config, name=None):
        """The layer that ``get_config()`` describes (containers rebuild their layers' specs first)."""
        return cls(**config, name=name)

    def _check_input(self, x):
        shape = tuple(np.shape(x.value if isinstance(x, Tensor) else x))[1:]
        if self.built and shape != self.input_shape:
            raise ValueError(f"{self.name or type(self).__name__}: expected input of shape (N, "
                             f"{', '.join(map(str, self.input_shape))}), got (N, {', '.join(map(str, shape))})")
        if not self.built:
            self.build(shape)
        dtype = (x.value if isinstance(x, Tensor) else np.asarray(x)).dtype
        first = next(iter(self._parameters), None)     # read as an attribute: what forward will use
        weight = None if first is None else getattr(self, first)
        if self.same_dtype and isinstance(weight, Tensor) and dtype.kind == "f" and dtype != weight.value.dtype:
            raise TypeError(f"{self.name or type(self).__name__}: the input has dtype {dtype} but the layer's weights "
                            f"{weight.value.dtype}; cast it first (x.astype(np.{weight.value.dtype})); fit, "
                            f"evaluate, predict and the model methods cast float input to the model's dtype for you")


class Activated(Layer):
    """A layer followed by an optional activation (Keras's ``activation=``): a subclass defines ``_linear``."""

    def __init__(self, activation=None, name=None, input_shape=None):
        super().__init__(name, input_shape)
        F.activation(activation)  # checks the name now
        self.activation = activation

    def forward(self, x, pre_activation=False):
        self._check_input(x)
        y = self._linear(x)
        return y if pre_activation else F.activation(self.activation)(y)


# --- layers as data ----------------------------------------------------------------------------------

#: The layer classes a saved model may name, by class name: the whitelist :func:`from_spec` (and so
#: ``nn.load``) looks classes up in; nothing is ever evaluated. ``nn.layers`` fills it with :func:`register`.
LAYERS = {}


def register(cls):
    """Class decorator: let :func:`from_spec` rebuild ``cls`` by its name (a user's own layer too)."""
    LAYERS[cls.__name__] = cls
    return cls


def layer_spec(layer):
    """``layer`` as JSON-friendly data: {"class": its class name, "name": its name, "config": get_config()}."""
    return {"class": type(layer).__name__, "name": layer.name, "config": layer.get_config()}


def from_spec(spec):
    """The layer a :func:`layer_spec` describes, its class looked up in ``LAYERS``."""
    try:
        cls = LAYERS[spec["class"]]
    except KeyError:
        raise ValueError(f"unknown layer class {spec.get('class')!r}; known: {sorted(LAYERS)}") from None
    return cls.from_config(dict(spec.get("config", {})), name=spec.get("name"))


# --- the parameter budget ------------------------------------------------------------------------------

_BUDGET = contextvars.ContextVar("nn_parameter_budget", default=None)


@contextlib.contextmanager
def parameter_budget(values: int, of: str = "the budget"):
    """Within the block, refuse any :meth:`Layer.add_weight` that would take the parameters made so far
    past ``values`` in all, before it allocates (``nn.load`` builds a saved architecture inside the
    budget of the values its file holds, so a spec asking for 7 GiB fails at once).

    >>> import nn
    >>> with parameter_budget(100, of="the file"):
    ...     nn.Sequential([nn.Input((64,)), nn.Dense(4000)])
    Traceback (most recent call last):
    ...
    ValueError: dense: parameter 'weight' of shape (64, 4000) needs 256,000 values, more than the 100 left of the file
    """
    token = _BUDGET.set([int(values), of])
    try:
        yield
    finally:
        _BUDGET.reset(token)


_SHAPES_ONLY = contextvars.ContextVar("nn_shapes_only", default=False)


@contextlib.contextmanager
def shapes_only():
    """Within the block, layers are built without values (PyTorch's "meta" device): each parameter is
    a read-only view of a single zero, so ``summary()`` and ``count_params()`` of VGG16's 138 million
    parameters cost neither memory nor time. Such a model cannot be trained (its weights refuse writes)."""
    token = _SHAPES_ONLY.set(True)
    try:
        yield
    finally:
        _SHAPES_ONLY.reset(token)


def _charge(layer, name, shape):
    needed = math.prod(shape)
    budget = _BUDGET.get()
    if budget is None:
        if needed * 4 > (memory := utils.memory_bytes()):    # NumPy said only "Unable to allocate 21.8 TiB"
            raise ValueError(f"{layer.name or type(layer).__name__}: parameter {name!r} of shape {shape} needs "
                             f"{needed:,} values ({needed * 4 / 2**30:,.1f} GiB in float32), more than this "
                             f"machine's memory ({memory / 2**30:,.1f} GiB)")
        return
    if needed > budget[0]:
        raise ValueError(f"{layer.name or type(layer).__name__}: parameter {name!r} of shape {shape} needs "
                         f"{needed:,} values, more than the {budget[0]:,} left of {budget[1]}")
    budget[0] -= needed


# --- naming ------------------------------------------------------------------------------------------

#: Attributes a container sets after its layers (so ``hasattr`` cannot see them yet).
_CONTAINER_ATTRIBUTES = frozenset({"layers", "body", "shortcut", "config", "geometry"})


def _shadows(owner, name):
    """Whether ``owner.<name> = layer`` would hide a method, property or attribute that ``owner`` uses.
    A plain class-level default (``Layer.activation = None``, which a container never reads: its
    final activation is its last layer's) may be shadowed, so Keras's name "activation" stays usable."""
    if name in vars(owner) or name in _CONTAINER_ATTRIBUTES:
        return True
    for klass in type(owner).__mro__:
        if name in vars(klass):
            value = vars(klass)[name]
            return callable(value) or hasattr(value, "__get__")
    return False
MAX_NAME_LENGTH = 64


def check_layer_name(owner, name):
    """Refuse ``name`` for a layer of the container ``owner``: it becomes ``owner.<name>``, so it must be
    an identifier (not a keyword, not starting with "_", at most 64 characters) that shadows no
    attribute or method of ``owner`` (``forward``, ``eval``, ``parameters``, ``layers``, ...)."""
    kind = type(owner).__name__
    if (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_")
            or len(name) > MAX_NAME_LENGTH):
        raise ValueError(f"{kind}: a layer name must be a Python identifier of at most {MAX_NAME_LENGTH} characters "
                         f"not starting with '_' (it becomes an attribute), got {name!r}")
    if _shadows(owner, name):
        raise ValueError(f"{kind}: a layer may not be named {name!r}: that would shadow {kind}.{name} "
                         f"(layer names become attributes; choose another)")
    return name


def _snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower().replace("1_d", "1d").replace("2_d", "2d")


def assign_names(layers, owner="Sequential"):
    """Name the unnamed layers like Keras (conv2d, conv2d_1, ...), in place; refuse a name used twice."""
    counts, names = {}, set()
    for layer in layers:
        if layer.name is None:
            base = _snake(type(layer).__name__)
            k = counts.get(base, 0)
            while (f"{base}_{k}" if k else base) in names:
                k += 1
            counts[base] = k + 1
            layer.name = f"{base}_{k}" if k else base
        if layer.name in names:
            raise ValueError(f"{owner}: two layers are named {layer.name!r}")
        names.add(layer.name)
    return layers
