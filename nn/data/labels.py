"""Labels: one-hot encoding of integer classes."""
from __future__ import annotations

import numpy as np

from ..utils import positive_int

__all__ = ["one_hot"]


def one_hot(labels, num_classes, dtype=np.float32):
    """One-hot encode integer class labels: shape ``labels.shape + (num_classes,)``.

    >>> one_hot([2, 0], 3)
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    num_classes = positive_int(num_classes, "num_classes")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        where = tuple(int(i[0]) for i in np.nonzero(bad))
        raise ValueError(f"labels must be in [0, {num_classes - 1}] for num_classes={num_classes}, "
                         f"got {labels[where]} at index {where if labels.ndim != 1 else where[0]}")
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)
