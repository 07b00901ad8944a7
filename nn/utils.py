"""Random numbers for nn: one seeded generator unless a call passes its own.

``set_seed(s)`` makes initialisation, dropout and shuffling reproducible, as ``torch.manual_seed``
does. Functions that draw random numbers take ``rng=`` (a ``np.random.Generator`` or an int seed)
and fall back to this generator.

>>> set_seed(0); a = rng().random()
>>> set_seed(0); a == rng().random()
True
"""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def set_seed(seed: int) -> None:
    """Reseed nn's global generator."""
    global _generator
    _generator = np.random.default_rng(seed)


def rng(rng=None) -> np.random.Generator:
    """``rng`` as a Generator: itself, a new one seeded with an int, or nn's global one for None."""
    if rng is None:
        return _generator
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")
