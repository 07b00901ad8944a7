"""Mini-batches: ``batches`` for one epoch, ``Batches`` a re-iterable loader (one epoch per loop).

``batches(...)`` returns a ``Batches`` too, so looping over it a second time gives the next epoch.

An int ``seed`` and the epoch number together fix the order (same seed and epoch, same order);
a Generator (or None: nn's global one) is drawn from, and advanced.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..utils import positive_int
from .checks import as_generator, as_samples, same_length

__all__ = ["batches", "Batches"]


def _check_batching(x, y, batch_size, drop_last):
    x = as_samples(x, "x")
    if y is not None:
        x, y = same_length(x, y)
    batch_size = positive_int(batch_size, "batch_size")
    if not isinstance(drop_last, bool):
        raise TypeError(f"drop_last must be True or False, got {drop_last!r}")
    if drop_last and batch_size > len(x):
        raise ValueError(f"drop_last=True with batch_size={batch_size} > {len(x)} samples "
                         f"would give no batches at all")
    return x, y, batch_size


def _epoch_generator(seed, epoch) -> np.random.Generator:
    """The Generator of one epoch: an int seed is mixed with the epoch number (so each epoch has
    its own reproducible order); a Generator, or nn's global one for None, is used as it is (and
    ``epoch`` plays no part)."""
    if not isinstance(epoch, numbers.Integral) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
    rng = as_generator(seed)  # also checks seed
    if isinstance(seed, np.random.Generator) or seed is None:
        return rng
    return np.random.default_rng([seed, epoch])


def _generate(x, y, batch_size, drop_last, order):
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    for start in range(0, stop, batch_size):
        index = order[start:start + batch_size]
        yield x[index] if y is None else (x[index], y[index])


def batches(x, y=None, batch_size=32, shuffle=True, seed=0, drop_last=False, epoch=0):
    """Iterate over mini-batches of ``x`` (or of ``(x, y)`` pairs) for one epoch.

    With ``shuffle`` the order is a random permutation drawn from ``seed``: an int seed and the
    ``epoch`` number together fix it (same seed and epoch, same order; next epoch, a different
    one); a Generator is drawn from (and advanced), so successive calls differ. The last batch is
    smaller unless ``drop_last``. Batches are copies.

    What it returns is a :class:`Batches` starting at ``epoch``: made once outside an epoch loop
    and looped over again, it gives the next epoch's batches (never silently nothing, as a
    one-shot generator would), the same as calling ``batches(..., epoch=e)`` in epoch e.

    >>> x = np.arange(5)
    >>> [b.tolist() for b in batches(x, batch_size=2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    >>> [b.tolist() for b in batches(x, batch_size=2, shuffle=False, drop_last=True)]
    [[0, 1], [2, 3]]
    >>> first = [b.tolist() for b in batches(x, batch_size=5, seed=3, epoch=0)]
    >>> first == [b.tolist() for b in batches(x, batch_size=5, seed=3, epoch=0)]
    True
    """
    _epoch_generator(seed, epoch)  # the checks, now
    loader = Batches(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
    loader.epoch = epoch
    return loader


class Batches:
    """A re-iterable mini-batch loader: each ``for`` loop over it is one epoch, in a new order.

    Epoch e uses the order ``batches(..., seed=seed, epoch=e)`` would give (for an int seed), so a
    run is reproducible and can be resumed by setting ``epoch``. ``augment``, if given, is called
    as ``augment(x_batch, rng)`` on every batch (e.g. an ``nn.augment.Compose``), with the epoch's
    Generator. ``len()`` is the number of batches per epoch.

    >>> loader = Batches(np.arange(10), batch_size=4, seed=0)
    >>> len(loader)
    3
    >>> epoch0 = [b.tolist() for b in loader]
    >>> epoch1 = [b.tolist() for b in loader]
    >>> sorted(sum(epoch0, [])) == list(range(10)), epoch0 != epoch1, loader.epoch
    (True, True, 2)
    """

    def __init__(self, x, y=None, batch_size=32, shuffle=True, seed=0, drop_last=False, augment=None):
        self.x, self.y, self.batch_size = _check_batching(x, y, batch_size, drop_last)
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be callable as augment(x, rng), got {type(augment).__name__}")
        _epoch_generator(seed, 0)  # the checks
        self.shuffle, self.seed, self.drop_last, self.augment = shuffle, seed, drop_last, augment
        self.epoch = 0

    def __len__(self):
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        rng = _epoch_generator(self.seed, self.epoch)
        self.epoch += 1
        order = rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))
        batches_ = _generate(self.x, self.y, self.batch_size, self.drop_last, order)
        if self.augment is None:
            return batches_
        return self._augmented(batches_, rng)

    def _augmented(self, batches_, rng):
        for batch in batches_:
            if self.y is None:
                yield self.augment(batch, rng)
            else:
                yield self.augment(batch[0], rng), batch[1]

    def __repr__(self):
        return (f"Batches({len(self.x)} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, epoch={self.epoch})")
