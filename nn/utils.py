"""Small helpers shared across nn: the one seeded generator, the positive-count check, the number check
(``number_in``, from :mod:`nn.checks`), and torch.nn.utils's gradient clipping (``clip_grad_norm_``,
``clip_grad_value_``, from :mod:`nn.clip`).

Random numbers. ``set_seed(s)`` makes initialisation, dropout, drop-connect, shuffling and
augmentation reproducible, as ``torch.manual_seed`` does (and, as in PyTorch and Keras, dropout
follows that seed). Everything in nn that draws random numbers takes ``rng=`` (or ``seed=``) with
one meaning, the one :func:`rng` gives it:

- ``None``: nn's global generator, the one ``set_seed`` seeds (it advances with every draw);
- an int: a new Generator seeded with it (the same int, the same numbers);
- a ``np.random.Generator``: that generator itself (drawing advances it).

NumPy's own global random state (``np.random.seed``) is never used. ``seeded(s)`` gives the calling
thread a generator of its own for a block (``nn.cross_validate`` runs each training in one), so that
trainings in threads side by side draw the same numbers as one after the other.

>>> set_seed(0); a = rng().random()
>>> set_seed(0); a == rng().random()
True
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import threading

import numpy as np

from .checks import number_in   # a number argument in an interval, or an error naming it (nn.checks)
from .clip import clip_grad_norm_, clip_grad_value_   # torch.nn.utils's names

__all__ = ["set_seed", "seeded", "rng", "positive_int", "clip_grad_norm_", "clip_grad_value_"]

_generator = np.random.default_rng(0)


class _Own(threading.local):
    generator = None            # this thread's generator inside seeded(), else None


_own = _Own()


def set_seed(seed: int) -> None:
    """Reseed nn's global generator (what ``rng=None`` means everywhere in nn); inside ``seeded``, the
    calling thread's own."""
    global _generator
    if _own.generator is not None:
        _own.generator = np.random.default_rng(seed)
    else:
        _generator = np.random.default_rng(seed)


@contextlib.contextmanager
def seeded(seed: int):
    """A block in which ``rng=None`` means a generator of this thread's own, seeded with ``seed``; the
    global one is neither read nor advanced.

    >>> with seeded(3):
    ...     a = rng().random()
    >>> with seeded(3):
    ...     a == rng().random()
    True
    """
    previous, _own.generator = _own.generator, np.random.default_rng(seed)
    try:
        yield                   # draw with rng() (set_seed inside the block replaces this thread's generator)
    finally:
        _own.generator = previous


def rng(seed=None, name: str = "rng") -> np.random.Generator:
    """``seed`` as a Generator: nn's global one for None, a new one for an int, a Generator itself.

    ``name`` is the argument's name in the error for anything else (a float, a negative int).
    """
    if seed is None:
        return _generator if _own.generator is None else _own.generator
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"{name} must be a non-negative int, got {seed}")
        return np.random.default_rng(int(seed))
    raise TypeError(f"{name} must be an int, None or a np.random.Generator, got {type(seed).__name__}")


def memory_bytes() -> float:
    """The machine's physical memory in bytes (unbounded where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return math.inf


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1 (sizes, counts), refusing 2.7 or True rather than truncating them."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)
