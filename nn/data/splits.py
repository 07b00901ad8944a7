"""Splitting a data set: train/test, train/validation/test, and k-fold cross-validation.

The lecture's "Train/Val/Test sets" and "K-Fold Validation": choose hyperparameters on the
validation set, report on the test set once. Every split shuffles with ``seed`` (an int, the same
int giving the same split, or a Generator) and can keep the class proportions (``stratify=True``).

>>> import numpy as np
>>> x_train, x_test, y_train, y_test = train_test_split(np.arange(10), np.arange(10) % 2, test_size=0.2)
>>> len(x_train), len(x_test)
(8, 2)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..utils import positive_int
from .checks import as_generator, same_length

__all__ = ["train_test_split", "train_val_test_split", "kfold"]


def _count(size, n: int, name: str) -> int:
    """A split size as a sample count: a float in (0, 1) is a fraction of n (rounded up, as
    scikit-learn does for the test set), an int >= 1 a count."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        count = int(size)
        if not 1 <= count < n:
            raise ValueError(f"{name} as a count must be in [1, {n - 1}] for {n} samples, got {size}")
        return count
    if isinstance(size, numbers.Real) and 0 < size < 1:
        count = max(1, math.ceil(size * n))
        if count >= n:
            raise ValueError(f"{name}={size} of {n} samples is {count} samples, which leaves none "
                             f"for training")
        return count
    raise ValueError(f"{name} must be a fraction in (0, 1) or a count >= 1, got {size!r}")


def _stratified_take(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``count`` samples drawn so that each class gets its share, rounded down or up.

    Class c of n_c samples has the quota n_c * count / n; every class gets the floor of its quota
    and the samples still missing go to the classes with the largest remainders (largest
    remainder method; ties broken at random), so each class is within one sample of its quota.
    """
    classes, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    quota = sizes * count / len(labels)
    take = np.floor(quota).astype(np.int64)
    remainder = quota - take
    tie_break = rng.permutation(len(classes))
    order = tie_break[np.argsort(-remainder[tie_break], kind="stable")]
    take[order[:count - take.sum()]] += 1
    chosen = [rng.permutation(np.flatnonzero(inverse == c))[:take[c]] for c in range(len(classes))]
    return rng.permutation(np.concatenate(chosen))


def _split_off(n: int, count: int, rng: np.random.Generator, labels=None):
    """Shuffle indices 0..n-1 into (rest, taken) with ``len(taken) == count``, stratified by
    ``labels`` if given."""
    taken = rng.permutation(n)[:count] if labels is None else _stratified_take(labels, count, rng)
    keep = np.ones(n, dtype=bool)
    keep[taken] = False
    return rng.permutation(np.flatnonzero(keep)), taken


def _check_stratify(y, stratify):
    if not isinstance(stratify, bool):
        raise TypeError(f"stratify must be True or False, got {stratify!r}")
    if stratify and y.ndim != 1:
        raise ValueError(f"stratify=True needs 1-D class labels y, got y.shape={y.shape}")


def train_test_split(x, y, test_size=0.2, seed=0, stratify=False):
    """Shuffle and split into ``(x_train, x_test, y_train, y_test)`` (scikit-learn's order).

    ``test_size`` is a fraction of the samples (rounded up) or a count. ``stratify=True`` keeps
    the class proportions of ``y`` in both parts: each class's test count is within one sample of
    its share (largest remainder method).

    >>> x = np.arange(10).reshape(10, 1); y = np.array([0] * 6 + [1] * 4)
    >>> x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, stratify=True)
    >>> sorted(y_test.tolist())
    [0, 0, 0, 1, 1]
    >>> sorted(np.concatenate([x_train, x_test]).ravel().tolist()) == list(range(10))
    True
    """
    x, y = same_length(x, y)
    _check_stratify(y, stratify)
    n_test = _count(test_size, len(x), "test_size")
    rng = as_generator(seed)
    train, test = _split_off(len(x), n_test, rng, y if stratify else None)
    return x[train], x[test], y[train], y[test]


def train_val_test_split(x, y, val_size=0.1, test_size=0.2, seed=0, stratify=False):
    """Shuffle and split into ``(x_train, x_val, x_test, y_train, y_val, y_test)``.

    Both sizes are fractions of *all* samples (rounded up) or counts; the rest is the training
    set. The lecture's rule of thumb is "roughly 10k or 10% whichever is less for val and test".
    With ``stratify=True`` the test set is taken first (each class within one sample of its
    share), then the validation set from the rest (within one sample of its share of the rest).

    >>> x = np.zeros((100, 1, 2, 2), np.float32); y = np.arange(100) % 4
    >>> parts = train_val_test_split(x, y, val_size=0.1, test_size=0.2)
    >>> [len(p) for p in parts]
    [70, 10, 20, 70, 10, 20]
    """
    x, y = same_length(x, y)
    _check_stratify(y, stratify)
    n = len(x)
    n_val, n_test = _count(val_size, n, "val_size"), _count(test_size, n, "test_size")
    if n_val + n_test >= n:
        raise ValueError(f"val_size and test_size leave no training samples: {n_val} + {n_test} "
                         f"of {n} samples (val_size={val_size!r}, test_size={test_size!r})")
    rng = as_generator(seed)
    rest, test = _split_off(n, n_test, rng, y if stratify else None)
    train, val = _split_off(len(rest), n_val, rng, y[rest] if stratify else None)
    train, val = rest[train], rest[val]
    return x[train], x[val], x[test], y[train], y[val], y[test]


def kfold(n, k=5, seed=0, shuffle=True):
    """K-fold cross-validation: yield ``(train_idx, val_idx)`` for each of the ``k`` folds.

    The indices 0..n-1 (shuffled if ``shuffle``) are cut into k folds whose sizes differ by at
    most one; each fold is the validation set once, the other k - 1 folds are the training set.
    Both index arrays are sorted. (The lecture: "useful for small datasets, but not used too
    frequently in deep learning".)

    >>> [val.tolist() for train, val in kfold(6, k=3, shuffle=False)]
    [[0, 1], [2, 3], [4, 5]]
    >>> [train.tolist() for train, val in kfold(6, k=3, shuffle=False)][0]
    [2, 3, 4, 5]
    """
    n = positive_int(n, "n")
    k = positive_int(k, "k")
    if not 2 <= k <= n:
        raise ValueError(f"k must be in [2, n={n}] (each fold needs a sample), got k={k}")
    order = as_generator(seed).permutation(n) if shuffle else np.arange(n)
    folds = [np.sort(fold) for fold in np.array_split(order, k)]

    def generate():
        for i, val in enumerate(folds):
            yield np.sort(np.concatenate(folds[:i] + folds[i + 1:])), val
    return generate()
