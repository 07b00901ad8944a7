"""Preparing a data set for training: splits, centring and standardisation, mini-batches, one-hot labels.

Pure NumPy, independent of the layers and the training loop. One concern per module:

- ``splits``: ``train_test_split``, ``train_val_test_split``, ``kfold``;
- ``normalise``: ``MeanImage``, ``ChannelCentre``, ``Standardise`` (fitted on the training set only
  and applied unchanged to the validation and test sets);
- ``batching``: ``batches`` (one epoch), ``Batches`` (a re-iterable loader, with augmentation);
- ``labels``: ``one_hot``; ``checks``: ``as_generator`` and the sample-array checks they share.

Images are NCHW (axis 1 the channel axis); flat feature matrices (N, D) work too, each feature then
counting as a channel. Everything random takes ``seed``: an int (the same int gives the same
result), a ``np.random.Generator`` (which is advanced), or None for nn's global generator (the one
``nn.set_seed`` seeds, see :mod:`nn.utils`); NumPy's global random state is never used.

>>> import numpy as np
>>> x = np.arange(20, dtype=np.float32).reshape(10, 1, 1, 2)
>>> y = np.array([0, 1] * 5)
>>> x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, seed=0)
>>> x_train.shape, x_test.shape
((8, 1, 1, 2), (2, 1, 1, 2))
>>> centre = MeanImage().fit(x_train)
>>> bool(np.abs(centre.transform(x_train).mean(axis=0)).max() < 1e-6)
True
>>> [len(yb) for xb, yb in batches(x_train, y_train, batch_size=3)]
[3, 3, 2]
"""
from .batching import Batches, batches
from .checks import as_generator
from .labels import one_hot
from .normalise import ChannelCentre, MeanImage, Standardise
from .splits import kfold, train_test_split, train_val_test_split

__all__ = ["as_generator", "train_test_split", "train_val_test_split", "kfold", "MeanImage",
           "ChannelCentre", "Standardise", "batches", "Batches", "one_hot"]
