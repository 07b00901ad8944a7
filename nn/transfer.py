"""Pre-training and transfer: freezing, a new head, greedy layer-wise pre-training (sections 5.1.4, 5.1.8).

- ``freeze(*modules)`` / ``unfreeze(*modules)``: a frozen parameter has ``requires_grad=False``
  (PyTorch's ``requires_grad_(False)``, Keras's ``trainable = False``): the engine treats it as a
  constant, so no gradient reaches it, and optimisers (which accept it) skip it. ``freeze`` takes
  Modules, layers or Parameters; it changes no mode (a frozen BatchNorm in training mode still
  updates its running statistics, as in PyTorch: call ``eval()`` on it for Keras's behaviour).
- ``trainable_parameters(model)`` / ``frozen_parameters(model)``: Keras's ``trainable_weights`` and
  ``non_trainable_weights`` (without buffers).
- ``replace_head(model, head, drop=1)``: supervised pre-training's second step, "the learned model
  can be 'adapted' to a new task" (5.1.8): a Sequential of ``model``'s layers but the last ``drop``,
  with their learned values (and frozen flags), followed by the fresh ``head`` layers.
- ``pretrain_layerwise(model, x, ...)``: unsupervised greedy layer-wise pre-training (5.1.4; Bengio
  et al. 2007's stacked auto-encoders): each Dense or Conv2D layer in turn (the last, the
  classifier, aside) learns to reconstruct its own input, the output of the layers trained before
  it, through a linear decoder that is then thrown away; a supervised fine-tuning follows (``nn.fit``).

>>> import numpy as np, nn
>>> model = nn.Sequential([nn.Input((4,)), nn.Dense(3, activation="relu"), nn.Dense(2)])
>>> freeze(model.layers[1])
>>> [name for name, p in model.named_parameters() if p.requires_grad]
['dense_1.weight', 'dense_1.bias']
>>> before = model.layers[1].weight.value.copy()
>>> opt = nn.optim.SGD(model.parameters(), lr=0.1)          # frozen parameters are accepted and skipped
>>> nn.fit(model, (np.ones((8, 4), np.float32), np.zeros(8, np.int64)), optimizer=opt, verbose=0) and None
>>> bool(np.array_equal(model.layers[1].weight.value, before)), len(trainable_parameters(model))
(True, 2)
"""
from __future__ import annotations

import math

import numpy as np

import autodiff as ad
from autodiff import Tensor, value_of

from . import functional as F
from . import optim as optimisers
from .data import batches
from .layers import Conv2D, Dense, Sequential
from .module import Module, Parameter
from .utils import positive_int, rng as generator

__all__ = ["freeze", "unfreeze", "trainable_parameters", "frozen_parameters", "replace_head", "pretrain_layerwise"]


def _parameters(items, who):
    found = []
    for i, item in enumerate(items):
        if isinstance(item, Parameter):
            found.append(item)
        elif isinstance(item, Module):
            found.extend(item.parameters())
        else:
            raise TypeError(f"{who}: argument {i} must be a Module, a layer or a Parameter, got {type(item).__name__}")
    return found


def freeze(*modules):
    """Freeze every parameter of ``modules`` (Modules, layers or Parameters): requires_grad=False, grad None."""
    for p in _parameters(modules, "freeze"):
        p.requires_grad = False
        p.grad = None


def unfreeze(*modules):
    """Undo :func:`freeze`: every parameter of ``modules`` learns again."""
    for p in _parameters(modules, "unfreeze"):
        p.requires_grad = True


def trainable_parameters(model):
    """The parameters of ``model`` that learn (Keras's ``trainable_weights``), each once."""
    return [p for p in model.parameters() if p.requires_grad]


def frozen_parameters(model):
    """The parameters of ``model`` that are frozen (Keras's ``non_trainable_weights``, buffers aside)."""
    return [p for p in model.parameters() if not p.requires_grad]


def replace_head(model, head, drop=1, name=None):
    """A new Sequential: ``model``'s layers without the last ``drop``, then the layers ``head``.

    The kept layers are the same layer objects (shared with ``model``, as Keras's models share layers),
    built again for the new model with their values and frozen flags restored, so the new model starts
    from what ``model`` learned; an optimiser made for ``model`` before must be made again.
    """
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not getattr(model, "built", False):
        raise TypeError(f"replace_head: model must be a built Sequential, got {type(model).__name__}")
    drop = positive_int(drop, "drop")
    if drop >= len(layers):
        raise ValueError(f"replace_head: drop must be less than the model's {len(layers)} layers, got {drop}")
    head = list(head) if isinstance(head, (list, tuple)) else [head]
    body = layers[:-drop]
    kept = [(layer, layer.state_dict(), [p.requires_grad for p in layer.parameters()]) for layer in body]
    new = Sequential(body + head, name=name)
    for layer, state, flags in kept:
        layer.load_state_dict(state)
        for p, flag in zip(layer.parameters(), flags):
            p.requires_grad = flag
    return new


def _check_pretraining(model, x, epochs, batch_size, lr, noise):
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not getattr(model, "built", False):
        raise TypeError(f"pretrain_layerwise: model must be a built Sequential, got {type(model).__name__}")
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.ndim < 2 or tuple(x.shape[1:]) != tuple(model.input_shape):
        raise ValueError(f"pretrain_layerwise: x must be float samples of shape (N, "
                         f"{', '.join(map(str, model.input_shape))}), got shape {x.shape} and dtype {x.dtype}")
    if int(epochs) < 1 or int(batch_size) < 1 or not float(lr) > 0 or not float(noise) >= 0:
        raise ValueError(f"pretrain_layerwise: epochs and batch_size must be >= 1, lr > 0 and noise >= 0, got "
                         f"epochs={epochs!r}, batch_size={batch_size!r}, lr={lr!r}, noise={noise!r}")
    params = model.parameters()
    return layers, x.astype(params[0].value.dtype if params else np.float32, copy=False)


def pretrain_layerwise(model, x, epochs=5, batch_size=32, lr=1e-3, noise=0.0, seed=None, verbose=0):
    """Greedy layer-wise unsupervised pre-training of ``model`` (a built Sequential) on the samples ``x``.

    Each ``Dense`` or ``Conv2D`` layer that is not frozen, but the last (the classifier, left for the
    supervised fine-tuning), in order, is trained as the encoder of an auto-encoder: its input ``h``
    (``x`` passed through the layers before it, which stay as they are, in eval mode) is encoded,
    decoded by a fresh linear ``Dense`` to ``h``'s size, and the mean squared error to ``h`` minimised
    with Adam (``lr``) over ``epochs`` passes of mini-batches. ``noise`` > 0 adds Gaussian noise of that
    standard deviation to ``h`` before encoding (a denoising auto-encoder, Vincent et al. 2008); the
    target stays the clean ``h``. Returns one dict per pre-trained layer: its ``"layer"`` name and the
    mean reconstruction ``"loss"`` of every epoch.
    """
    layers, h = _check_pretraining(model, x, epochs, batch_size, lr, noise)
    rng = generator(seed)
    weighted = [i for i, layer in enumerate(layers)
                if isinstance(layer, (Dense, Conv2D)) and trainable_parameters(layer)]
    targets = set(weighted[:-1])
    modes = [(module, module.training) for _, module in model.named_modules()]
    model.eval()
    report = []
    try:
        for i, layer in enumerate(layers):
            if i in targets:
                losses = _train_stage(layer, h, int(epochs), int(batch_size), float(lr), float(noise), rng)
                report.append({"layer": layer.name, "loss": losses})
                if verbose:
                    print(f"pre-trained {layer.name}: reconstruction error {report[-1]['loss'][-1]:.4f}")
            with ad.no_grad():
                h = np.asarray(value_of(layer(h)))
            if i >= max(targets, default=-1):
                break
    finally:
        for module, mode in modes:
            module.training = mode
    return report


def _train_stage(layer, h, epochs, batch_size, lr, noise, rng):
    """One auto-encoder: ``layer`` encodes, a linear Dense decodes; returns the mean loss of every epoch."""
    flat = h.reshape(len(h), -1)
    with ad.no_grad():
        code_size = math.prod(np.shape(value_of(layer(h[:1])))[1:])
    decoder = Dense(flat.shape[1])
    decoder.build((code_size,))
    opt = optimisers.Adam(trainable_parameters(layer) + decoder.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        total = 0.0
        for index in batches(np.arange(len(h)), batch_size=batch_size, seed=int(rng.integers(2 ** 31))):
            inputs = h[index]
            if noise:
                inputs = inputs + rng.normal(0.0, noise, inputs.shape).astype(h.dtype)
            code = layer(Tensor(inputs))
            residual = decoder(F.flatten(code) if len(np.shape(code.value)) > 2 else code) - flat[index]
            loss = ad.mean(residual * residual)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.value) * len(index)
        losses.append(total / len(h))
    return losses
