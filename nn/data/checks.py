"""The argument checks the data modules share: seeds, and arrays of samples (axis 0)."""
from __future__ import annotations

import numpy as np

from .. import utils

__all__ = ["as_generator", "as_samples", "same_length"]


def as_generator(seed) -> np.random.Generator:
    """``seed`` as a ``np.random.Generator``: an int seeds a new one, a Generator is returned as it
    is (so drawing from the result advances it), None is nn's global one (``nn.set_seed``), the
    meaning ``rng=None`` has everywhere in nn (:func:`nn.utils.rng`).

    >>> int(as_generator(0).integers(100)) == int(as_generator(0).integers(100))
    True
    >>> g = np.random.default_rng(1)
    >>> as_generator(g) is g
    True
    """
    return utils.rng(seed, name="seed")


def as_samples(x, name: str) -> np.ndarray:
    """``x`` as an array with at least one axis (axis 0 indexes the samples)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{name} must have a sample axis (axis 0), got a 0-d array")
    return x


def same_length(x, y, x_name="x", y_name="y"):
    """``x`` and ``y`` as arrays of samples, refused unless they hold the same number."""
    x = as_samples(x, x_name)
    y = as_samples(y, y_name)
    if len(x) != len(y):
        raise ValueError(f"{x_name} and {y_name} must have the same number of samples (axis 0), "
                         f"got {x_name}.shape={x.shape} and {y_name}.shape={y.shape}")
    return x, y
