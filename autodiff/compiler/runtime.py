"""What generated drivers call between their loops: the primitives' NumPy implementations, and
the moves of arrays in and out of the loops (flat views, reductions)."""
from __future__ import annotations

import numpy as np

from ..primitives import REGISTRY


class _Implementations:
    """``impl.matmul(a, b)`` is the ``matmul`` primitive's own NumPy implementation."""

    def __getattr__(self, name):
        try:
            return REGISTRY[name].impl
        except KeyError:
            raise AttributeError(f"no primitive named {name!r}") from None


impl = _Implementations()


def flat(v):
    """``v`` as a 1-D C-ordered array (a view when it already is one): what a loop indexes."""
    return np.ascontiguousarray(v).reshape(-1)


def reduced(value, shape, dtype):
    """A loop's accumulated sum as the reduction's value: its shape and dtype."""
    return np.full(shape, value, dtype=dtype) if shape else dtype(value)
