"""The dense (fully connected) layer in NumPy: the oracle of cuda.py, and the host implementation.

x (N, in), w (in, units) (Keras's layout), b (units,):  y = x w + b;  given g = dL/dy,
dL/dx = g w^T,  dL/dw = x^T g,  dL/db = sum over the rows of g.
"""
from __future__ import annotations

import numpy as np


def forward(x, w, b):
    """y = x @ w (+ b)."""
    y = x @ w
    return y if b is None else y + b


def backward_input(g, w):
    """dL/dx = g @ w^T."""
    return g @ w.T


def backward_weight(g, x, bias):
    """(dL/dw = x^T @ g, dL/db = g summed over rows, or None without bias)."""
    return x.T @ g, (g.sum(axis=0) if bias else None)
