"""Dropout masks for nn's dropout and DropConnect, on the host and the device: counter-based, so that the host and
the device give the same mask for the same seed and nothing random is copied. The hash in
reference.py (NumPy, the oracle), the same in a Numba-parallel loop in cpu.py (nn's host dropout) and in a
numba.cuda kernel in cuda.py.

    dropout_mask(shape, rate, seed, dtype, device=False) -> mask (0 or 1/(1-rate)); device=True: on the device
    rate in [0, 1]; rate 1 (torch's p=1) gives an all-zero mask

>>> import numpy as np
>>> dropout_mask((2, 4), 0.5, seed=1, dtype=np.float32, backend="numpy")
array([[2., 0., 2., 0.],
       [0., 2., 0., 2.]], dtype=float32)
"""
from __future__ import annotations

import numpy as np

from .._checks import FLOAT_DTYPES
from ..backend import implementation, implementations

__all__ = ["dropout_mask"]

IMPLEMENTATIONS = implementations(__name__)

#: Seeds are ints in [0, SEEDS): every product of the hash then fits in an int64 (reference.py).
SEEDS = 2**30


def dropout_mask(shape, rate, seed, dtype=np.float32, *, device=False, backend=None):
    """The inverted-dropout mask of ``shape`` for ``seed`` (an int in [0, 2^30)): the same values on
    the host and on the device (``device=True``, or backend "cuda": made there, nothing copied)."""
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate!r}")
    if not 0 <= int(seed) < SEEDS:
        raise ValueError(f"seed must be an int in [0, {SEEDS}), got {seed!r}")
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a tuple of ints >= 0, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must be a tuple of ints >= 0, got {shape}")
    if np.dtype(dtype) not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64 (the mask holds 0 and 1 / (1 - rate)), "
                        f"got {np.dtype(dtype)}")
    module = implementation(IMPLEMENTATIONS, "cuda" if device else backend)
    return module.dropout_mask(shape, float(rate), int(seed), np.dtype(dtype))
