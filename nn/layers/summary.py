"""``summary(model)``: the Keras-style table of a built model (``model.summary()`` prints it): a
Sequential's layers, or the layers a subclass of ``nn.Model`` holds, in the order it assigned them.

>>> import nn
>>> nn.Sequential([nn.Input((4,)), nn.Dense(3), nn.BatchNorm()], name="tiny").summary()
Model: "tiny"
_______________________________________________
Layer (type)            Output Shape  Param #
===============================================
dense (Dense)           (None, 3)     15
<BLANKLINE>
batch_norm (BatchNorm)  (None, 3)     6
_______________________________________________
Total params: 27
Trainable params: 21
Non-trainable params: 6
_______________________________________________
"""
from __future__ import annotations

import sys

import numpy as np

from ..module import _snake
from .core import Input

__all__ = ["summary"]

_HEADINGS = ("Layer (type)", "Output Shape", "Param #")


def _shape_text(shape):
    return "?" if shape is None else "(None, " + ", ".join(map(str, shape)) + ")"


def summary(model, file=None):
    """Print ``model``'s layers (name and type, output shape, parameter count) and the totals, split
    as in Keras: trainable params are those with ``requires_grad``; frozen ones (``nn.freeze``) and
    buffers (BatchNorm's running statistics) are the non-trainable params."""
    file = file or sys.stdout
    if not model.built:
        raise ValueError("summary: the model is not built; start it with nn.Input(shape) or call it once")
    if isinstance(getattr(model, "layers", None), list):
        named = [(layer.name, layer) for layer in model.layers]
    else:                                   # a subclass's layers, by attribute name unless named
        named = [(getattr(layer, "name", None) or key, layer) for key, layer in model._modules.items()]
    rows = [(f"{name} ({type(layer).__name__})", _shape_text(getattr(layer, "output_shape", None)),
             f"{layer.count_params():,}") for name, layer in named if not isinstance(layer, Input)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(_HEADINGS)]
    line = "_" * sum(widths)
    print(f'Model: "{model.name or _snake(type(model).__name__)}"', file=file)
    print(line, file=file)
    print("".join(h.ljust(w) for h, w in zip(_HEADINGS, widths)), file=file)
    print("=" * sum(widths), file=file)
    for i, row in enumerate(rows):
        print("".join(c.ljust(w) for c, w in zip(row, widths)), file=file)
        print(line if i == len(rows) - 1 else "", file=file)
    buffers = int(sum(np.size(b) for _, b in model.named_buffers()))
    trainable = int(sum(p.size for p in model.parameters() if p.requires_grad))
    print(f"Total params: {model.count_params() + buffers:,}", file=file)
    print(f"Trainable params: {trainable:,}", file=file)
    print(f"Non-trainable params: {model.count_params() - trainable + buffers:,}", file=file)
    print(line, file=file)
