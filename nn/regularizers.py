"""Regularisation (section 5.2 of the source material): weight penalties, max-norm and ensembles.

Weight penalties (5.2.6-5.2.8) are added to the loss; ``fit(..., regularizer=l2(1e-4))`` does it
at every step. Each penalty sums over the model's *weights*: the parameters called ``weight``
(Dense and Conv2D kernels). Biases, BatchNorm's gamma and beta and PReLU's slopes are left alone
by default, as is usual (they are few, and shrinking them does not make the model simpler);
``include_bias=True`` adds the biases.

==============  ============================================  ===========================
penalty         added to the loss                             its gradient
==============  ============================================  ===========================
``l1(lam)``     lam * sum |w|                 (eq. 5.13)      lam * sign(w)
``l2(lam)``     lam / 2 * sum w^2             (eq. 5.12)      lam * w
``elastic_net`` l1 * sum |w| + l2 / 2 * sum w^2  (eq. 5.14)   l1 * sign(w) + l2 * w
==============  ============================================  ===========================

The 1/2 in the L2 term is the source material's convention ("in practice half of the squared
magnitude times lambda is added ... the derivative of the regularizer term is lambda w"); eq. 5.12
itself prints the norm without its square. With it, ``l2(lam)`` is exactly PyTorch's
``weight_decay=lam`` of plain SGD (``g <- g + weight_decay * w``, also ``nn.optim.SGD``'s), except
that weight decay reaches every parameter, biases included. Keras's ``regularizers.L2(l2)`` and
``L1L2`` leave the 1/2 out (penalty l2 * sum w^2, gradient 2 l2 w): Keras's ``l2=0.01`` is
``l2(0.02)`` here. AdamW's decoupled weight decay is not a penalty at all and has no equivalent.
The loss ``fit`` minimises is a mean over the batch, where eqs. 5.12-5.14 sum over the M training
examples: the book's lambda is M times this one.

Constraints and model averaging:

- ``MaxNorm(c)`` (5.2.9): after every optimiser step, each unit's incoming weight vector is scaled
  back onto the ball ||w||_2 <= c; pass it to ``fit(..., callbacks=[MaxNorm(3.0)])``.
- ``Ensemble(models)`` (5.2.5): averages its members' predicted probabilities.

Dropout, drop-connect and batch normalisation (5.2.2-5.2.4) are layers (``nn.Dropout``,
``nn.DropConnect``, ``nn.BatchNorm``); early stopping (5.2.10, Fig. 5.2) is the callback
``nn.EarlyStopping``; data augmentation (5.2.1) is :mod:`nn.augment`.

>>> import numpy as np, nn
>>> model = nn.Sequential([nn.Input((2,)), nn.Dense(1, kernel_initializer="ones", bias_initializer="ones")])
>>> penalty = l2(0.1)
>>> penalty
l2(lam=0.1)
>>> round(penalty(model).item(), 6)        # 0.1 / 2 * (1 + 1): the bias is left out
0.1
>>> penalty(model).backward()
>>> model.layers[1].weight.grad.ravel(), model.layers[1].bias.grad
(array([0.1, 0.1], dtype=float32), None)
"""
from __future__ import annotations

import numpy as np

from autodiff import Tensor, abs as ad_abs, softmax, sum as ad_sum

from . import device
from .checks import number_in
from .module import Module, ends_in_softmax
from .training import Callback, evaluate as _evaluate, predict as _predict

__all__ = ["l1", "l2", "elastic_net", "l1_penalty", "l2_penalty", "elastic_net_penalty", "WeightPenalty",
           "penalised_parameters", "MaxNorm", "max_norm_", "Ensemble", "ensemble_accuracy"]


# --- checks -------------------------------------------------------------------------------------------

def _non_negative(value, name, owner):
    """``value`` as a float >= 0, or an error naming the argument, what was expected and what came."""
    return number_in(value, f"{owner}: {name}", 0)


def _tensors(params, owner):
    params = list(params.values() if isinstance(params, dict) else params)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: params must be autodiff Tensors (e.g. model.parameters()), but item {i} "
                            f"is a {type(p).__name__}")
    return params


def _on_device(params):
    """Whether the parameters live on the CUDA device: each penalty is then one op there (kernels.losses)."""
    return bool(params) and device.is_device(params[0])


def _total(terms):
    """The sum of scalar Tensors; a float32 zero for none."""
    total = None
    for term in terms:
        total = term if total is None else total + term
    return Tensor(np.zeros((), np.float32)) if total is None else total


# --- penalties ----------------------------------------------------------------------------------------

def penalised_parameters(model, include_bias=False):
    """{name: Parameter} of the parameters a penalty reaches: every ``*.weight`` (and ``*.bias``).

    >>> import nn
    >>> model = nn.Sequential([nn.Input((3,)), nn.Dense(4), nn.BatchNorm(), nn.PReLU(), nn.Dense(2)])
    >>> list(penalised_parameters(model))
    ['dense.weight', 'dense_1.weight']
    >>> list(penalised_parameters(model, include_bias=True))
    ['dense.weight', 'dense.bias', 'dense_1.weight', 'dense_1.bias']
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nn Module (e.g. nn.Sequential), got {type(model).__name__}")
    kinds = ("weight", "bias") if include_bias else ("weight",)
    return {name: p for name, p in model.named_parameters() if name.rsplit(".", 1)[-1] in kinds}


def l1_penalty(params, lam):
    """lam * sum |w| over the Tensors ``params`` (eq. 5.13); gradient lam * sign(w), 0 at w = 0.

    >>> import numpy as np, autodiff as ad
    >>> w = ad.Tensor(np.array([1.0, -2.0, 0.0], np.float32), requires_grad=True)
    >>> p = l1_penalty([w], 0.5); p.backward()
    >>> p.item(), w.grad
    (1.5, array([ 0.5, -0.5,  0. ], dtype=float32))
    """
    lam = _non_negative(lam, "lam", "l1_penalty")
    params = _tensors(params, "l1_penalty")
    if _on_device(params):
        return _total(device.weight_penalty(p, l1=lam) for p in params)
    return lam * _total(ad_sum(ad_abs(p)) for p in params)


def l2_penalty(params, lam):
    """lam / 2 * sum w^2 over the Tensors ``params`` (eq. 5.12, the source's 1/2); gradient lam * w.

    >>> import numpy as np, autodiff as ad
    >>> w = ad.Tensor(np.array([1.0, -2.0, 0.0], np.float32), requires_grad=True)
    >>> p = l2_penalty([w], 0.5); p.backward()
    >>> p.item(), w.grad
    (1.25, array([ 0.5, -1. ,  0. ], dtype=float32))
    """
    lam = _non_negative(lam, "lam", "l2_penalty")
    params = _tensors(params, "l2_penalty")
    if _on_device(params):
        return _total(device.weight_penalty(p, l2=lam) for p in params)
    return (0.5 * lam) * _total(ad_sum(p * p) for p in params)


def elastic_net_penalty(params, l1=0.0, l2=0.0):
    """l1 * sum |w| + l2 / 2 * sum w^2 (eq. 5.14): ``l1_penalty(params, l1) + l2_penalty(params, l2)``.

    The book writes the per-weight term as lambda_1 |w| + lambda_2 w^2; the 1/2 of section 5.2.6 is
    kept here so that ``elastic_net_penalty(params, 0, lam)`` is ``l2_penalty(params, lam)``.
    """
    l1 = _non_negative(l1, "l1", "elastic_net_penalty")
    l2 = _non_negative(l2, "l2", "elastic_net_penalty")
    params = _tensors(params, "elastic_net_penalty")
    return l1_penalty(params, l1) + l2_penalty(params, l2)


class WeightPenalty:
    """``penalty(model) -> scalar Tensor``: l1 * sum |w| + l2 / 2 * sum w^2 over the model's weights.

    Made by :func:`l1`, :func:`l2` and :func:`elastic_net`; pass it as ``fit(..., regularizer=...)``.
    """

    def __init__(self, l1=0.0, l2=0.0, include_bias=False, name="elastic_net"):
        self.l1 = _non_negative(l1, "l1", name)
        self.l2 = _non_negative(l2, "l2", name)
        self.include_bias = bool(include_bias)
        self.name = name

    def __call__(self, model):
        params = list(penalised_parameters(model, self.include_bias).values())
        if _on_device(params):            # both terms of a parameter in one op there
            return _total(device.weight_penalty(p, self.l1, self.l2) for p in params)
        terms = []
        if self.l1:
            terms.append(l1_penalty(params, self.l1))
        if self.l2:
            terms.append(l2_penalty(params, self.l2))
        return _total(terms)

    def __repr__(self):
        args = {"l1": f"lam={self.l1}", "l2": f"lam={self.l2}"}.get(self.name, f"l1={self.l1}, l2={self.l2}")
        return f"{self.name}({args}{', include_bias=True' if self.include_bias else ''})"


def l1(lam, include_bias=False):
    """The L1 penalty lam * sum |w| of a model's weights (eq. 5.13), as ``f(model) -> Tensor``.

    Its gradient lam * sign(w) pulls every weight towards 0 by the same amount, so small weights
    reach 0 and stay there: sparse weight vectors.
    """
    return WeightPenalty(l1=_non_negative(lam, "lam", "l1"), include_bias=include_bias, name="l1")


def l2(lam, include_bias=False):
    """The L2 penalty lam / 2 * sum w^2 of a model's weights (eq. 5.12), as ``f(model) -> Tensor``.

    Its gradient lam * w makes a gradient step shrink each weight by the factor (1 - lr lam) before
    the loss's own step: "weight decay". See the module docstring for Keras's and PyTorch's factors.
    """
    return WeightPenalty(l2=_non_negative(lam, "lam", "l2"), include_bias=include_bias, name="l2")


def elastic_net(l1=0.0, l2=0.0, include_bias=False):
    """The elastic net l1 * sum |w| + l2 / 2 * sum w^2 (eq. 5.14), as ``f(model) -> Tensor``.

    ``elastic_net(l1=a)`` is ``l1(a)`` and ``elastic_net(l2=b)`` is ``l2(b)``.
    """
    return WeightPenalty(l1=l1, l2=l2, include_bias=include_bias, name="elastic_net")


# --- max-norm ----------------------------------------------------------------------------------------

def _norm_axes(shape, axis, owner):
    """The axes over which a unit's incoming weights lie, checked against ``shape``."""
    ndim = len(shape)
    if axis is None:                       # Dense (in, units): columns; Conv2D (F, C, kh, kw): per filter
        return (0,) if ndim == 2 else tuple(range(1, ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(f"{owner}: axis must be axes of the weight of shape {shape}, got axis={axis!r}")
    return tuple(sorted({int(a) % ndim for a in axes}))


def max_norm_(weight, max_value=3.0, axis=None):
    """Scale, in place, every unit's incoming weight vector whose L2 norm exceeds ``max_value`` back to it.

    ``weight``: a Parameter or array. ``axis``: the axes summed in the norm; by default a Dense
    weight (in, units) is constrained column by column and a Conv2D weight (F, C, kh, kw) filter by
    filter. Vectors already inside the ball are left exactly as they are (Keras's MaxNorm shrinks
    them a little). Returns how many vectors were rescaled.

    >>> import numpy as np
    >>> w = np.array([[3.0, 0.3], [4.0, 0.4]], np.float32)      # column norms 5 and 0.5
    >>> max_norm_(w, 1.0)
    1
    >>> w
    array([[0.6, 0.3],
           [0.8, 0.4]], dtype=float32)
    """
    max_value = _non_negative(max_value, "max_value", "max_norm_")
    if max_value == 0:
        raise ValueError("max_norm_: max_value must be > 0, got 0")
    array = weight.value if isinstance(weight, Tensor) else weight
    if not (isinstance(array, np.ndarray) and array.dtype.kind == "f"):
        raise TypeError(f"max_norm_: weight must be a Parameter or a float array, got {type(weight).__name__}")
    axes = _norm_axes(array.shape, axis, "max_norm_")
    norms = np.sqrt(np.sum(np.square(array, dtype=np.float64), axis=axes, keepdims=True))
    over = norms > max_value
    if over.any():
        array *= np.where(over, max_value / np.where(over, norms, 1.0), 1.0).astype(array.dtype)
    return int(over.sum())


class MaxNorm(Callback):
    """The max-norm constraint (section 5.2.9): ||w||_2 <= c for the incoming weights of every unit.

    A callback: after each optimiser step (``on_batch_end``) every ``*.weight`` parameter of at least
    two dimensions is passed to :func:`max_norm_`, in place. Use it as
    ``fit(..., callbacks=[MaxNorm(3.0)])`` (Srivastava et al. use c of 3 to 4 with dropout), or call
    ``constraint.apply(model)`` yourself.

    >>> import numpy as np, nn
    >>> model = nn.Sequential([nn.Input((2,)), nn.Dense(2, kernel_initializer="ones")])
    >>> MaxNorm(1.0).apply(model)                   # each column (1, 1) has norm sqrt(2)
    {'dense.weight': 2}
    >>> np.linalg.norm(model.layers[1].weight.value, axis=0).round(6)
    array([1., 1.], dtype=float32)
    """

    def __init__(self, max_value=3.0, axis=None):
        max_value = _non_negative(max_value, "max_value", "MaxNorm")
        if max_value == 0:
            raise ValueError("MaxNorm: max_value must be > 0, got 0")
        if axis is not None and not isinstance(axis, (int, np.integer, tuple, list)):
            raise TypeError(f"MaxNorm: axis must be None, an int or a tuple of ints, got {axis!r}")
        self.max_value = max_value
        self.axis = axis

    def _weights(self, model):
        weights = {name: p for name, p in penalised_parameters(model).items() if p.value.ndim >= 2}
        for name, p in weights.items():           # check every weight before changing any
            _norm_axes(p.value.shape, self.axis, f"MaxNorm ({name})")
        return weights

    def apply(self, model):
        """Constrain every weight of ``model`` now; returns {parameter name: vectors rescaled}."""
        return {name: max_norm_(p, self.max_value, self.axis) for name, p in self._weights(model).items()}

    def on_train_begin(self, model):
        self._weights(model)                      # a bad axis fails before the first step

    def on_batch_end(self, model):
        self.apply(model)

    def __repr__(self):
        return f"MaxNorm(max_value={self.max_value}{'' if self.axis is None else f', axis={self.axis!r}'})"


# --- ensembles ----------------------------------------------------------------------------------------

class Ensemble(Module):
    """Ensemble model averaging (section 5.2.5): the (weighted) mean of the members' probabilities.

    ``models``: trained models with the same output shape. A member that ends in softmax
    (:func:`nn.module.ends_in_softmax`) gives probabilities; any other member's outputs are taken as
    logits and passed through softmax first.
    ``average="outputs"`` averages the raw outputs instead (regression). ``weights``: one
    non-negative number per member for a weighted combination (normalised to sum 1).

    An Ensemble is a Module: ``nn.predict(ensemble, x)`` works, and so does
    ``nn.evaluate(ensemble, (x, y))`` with any cross-entropy, the default too (its outputs are
    probabilities, ``outputs_probabilities``, so no second softmax is applied); the
    methods ``predict`` and ``evaluate`` do just that.

    >>> import numpy as np, nn
    >>> a = nn.Sequential([nn.Input((2,)), nn.Dense(2, kernel_initializer="zeros")])   # logits 0: p = 1/2
    >>> b = nn.Sequential([nn.Input((2,)), nn.Dense(2, kernel_initializer="zeros", activation="softmax")])
    >>> b.layers[1].bias.value[:] = [np.log(3.0), 0.0]                                # p = (3/4, 1/4)
    >>> Ensemble([a, b]).predict(np.zeros((1, 2), np.float32))
    array([[0.625, 0.375]], dtype=float32)
    """

    def __init__(self, models, weights=None, average="probabilities"):
        super().__init__()
        models = list(models) if not isinstance(models, Module) else [models]
        if not models:
            raise ValueError("Ensemble: models must hold at least one model, got none")
        for i, m in enumerate(models):
            if not isinstance(m, Module):
                raise TypeError(f"Ensemble: models[{i}] must be an nn Module, got {type(m).__name__}")
        if average not in ("probabilities", "outputs"):
            raise ValueError(f"Ensemble: average must be 'probabilities' or 'outputs', got {average!r}")
        if weights is None:
            weights = [1.0] * len(models)
        weights = [_non_negative(w, f"weights[{i}]", "Ensemble") for i, w in enumerate(weights)]
        if len(weights) != len(models):
            raise ValueError(f"Ensemble: weights must have one entry per model ({len(models)}), got {len(weights)}")
        if sum(weights) == 0:
            raise ValueError(f"Ensemble: weights must not all be 0, got {weights}")
        for i, m in enumerate(models):
            setattr(self, f"member_{i}", m)      # registered: parameters(), train() and eval() reach them
        self.members = models
        self.weights = [w / sum(weights) for w in weights]
        self.average = average

    @property
    def outputs_probabilities(self) -> bool:
        """True when averaging probabilities: ``fit``/``evaluate`` then take the cross-entropy of the outputs
        as they are, whatever cross-entropy is named (the default ``softmax_cross_entropy`` would apply a
        second softmax)."""
        return self.average == "probabilities"

    def _member_output(self, model, x):
        if self.average == "outputs" or ends_in_softmax(model):
            return model(x)
        return softmax(model(x), axis=1)

    def forward(self, x):
        outputs = [self._member_output(m, x) for m in self.members]
        shapes = {tuple(o.shape) for o in outputs}
        if len(shapes) > 1:
            raise ValueError(f"Ensemble: the members' outputs differ in shape: {[tuple(o.shape) for o in outputs]}")
        return _total(w * o for w, o in zip(self.weights, outputs))

    def predict(self, x, batch_size=256):
        """The averaged probabilities (or outputs) for ``x``, in evaluation mode, as an array."""
        return _predict(self, x, batch_size=batch_size)

    def evaluate(self, x, y, batch_size=256):
        """{"loss", "accuracy"} on (x, y): cross-entropy of the averaged probabilities (MSE for outputs)."""
        return _evaluate(self, (x, y), loss="cross_entropy" if self.average == "probabilities" else "mse",
                         batch_size=batch_size)

    def __repr__(self):
        return f"Ensemble({len(self.members)} models, average={self.average!r})"


def ensemble_accuracy(models, x, y, batch_size=256):
    """The accuracy of the ensemble that averages the probabilities of ``models`` on (x, y)."""
    return Ensemble(models).evaluate(x, y, batch_size=batch_size)["accuracy"]

