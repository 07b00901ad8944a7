"""``summary(model)``: the Keras-style table of a built Sequential (``model.summary()`` prints it).

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

from .core import Input

__all__ = ["summary"]

_HEADINGS = ("Layer (type)", "Output Shape", "Param #")


def summary(model, file=None):
    """Print ``model``'s layers (name and type, output shape, parameter count) and the totals;
    buffers (BatchNorm's running statistics) count as non-trainable parameters, as in Keras."""
    file = file or sys.stdout
    if not model.built:
        raise ValueError("summary: the model is not built; start it with nn.Input(shape) or call it once")
    rows = [(f"{layer.name} ({type(layer).__name__})", "(None, " + ", ".join(map(str, layer.output_shape)) + ")",
             f"{layer.count_params():,}") for layer in model.layers if not isinstance(layer, Input)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(_HEADINGS)]
    line = "_" * sum(widths)
    print(f'Model: "{model.name or "sequential"}"', file=file)
    print(line, file=file)
    print("".join(h.ljust(w) for h, w in zip(_HEADINGS, widths)), file=file)
    print("=" * sum(widths), file=file)
    for i, row in enumerate(rows):
        print("".join(c.ljust(w) for c, w in zip(row, widths)), file=file)
        print(line if i == len(rows) - 1 else "", file=file)
    buffers = int(sum(np.size(b) for _, b in model.named_buffers()))
    print(f"Total params: {model.count_params() + buffers:,}", file=file)
    print(f"Trainable params: {model.count_params():,}", file=file)
    print(f"Non-trainable params: {buffers:,}", file=file)
    print(line, file=file)
