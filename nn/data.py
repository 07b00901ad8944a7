"""Preparing a data set for training: splits, centring and standardisation, mini-batches, one-hot labels.

Pure NumPy, independent of the rest of ``nn``. Images are NCHW (axis 1 the channel axis); flat
feature matrices (N, D) work too, each feature then counting as a channel.

Splits (the lecture's "Train/Val/Test sets" and "K-Fold Validation"): choose hyperparameters on
the validation set, report on the test set once. Centring (the lecture's "Data Preprocessing": "in
practice for images only centring is preferred"): subtract the *mean image* (AlexNet) or the
*per-channel mean* (VGGNet, ResNet), with statistics fitted on the training set only and applied
unchanged to the validation and test sets.

Everything random takes ``seed``: an int (the same int gives the same result) or a
``np.random.Generator`` (which is advanced); NumPy's global random state is never used.

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
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["as_generator", "train_test_split", "train_val_test_split", "kfold", "MeanImage",
           "ChannelCentre", "Standardise", "batches", "Batches", "one_hot"]


# --- randomness and argument checks ---------------------------------------------------------------

def as_generator(seed) -> np.random.Generator:
    """``seed`` as a ``np.random.Generator``: an int (or None, for fresh entropy) seeds a new one;
    a Generator is returned as it is, so drawing from the result advances it.

    >>> int(as_generator(0).integers(100)) == int(as_generator(0).integers(100))
    True
    >>> g = np.random.default_rng(1)
    >>> as_generator(g) is g
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, None or a np.random.Generator, got {type(seed).__name__}")


def _positive_int(value, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _as_samples(x, name: str) -> np.ndarray:
    """``x`` as an array with at least one axis (axis 0 indexes the samples)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{name} must have a sample axis (axis 0), got a 0-d array")
    return x


def _same_length(x, y, x_name="x", y_name="y"):
    x = _as_samples(x, x_name)
    y = _as_samples(y, y_name)
    if len(x) != len(y):
        raise ValueError(f"{x_name} and {y_name} must have the same number of samples (axis 0), "
                         f"got {x_name}.shape={x.shape} and {y_name}.shape={y.shape}")
    return x, y


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


# --- splits ---------------------------------------------------------------------------------------

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
    x, y = _same_length(x, y)
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
    x, y = _same_length(x, y)
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
    n = _positive_int(n, "n")
    k = _positive_int(k, "k")
    if not 2 <= k <= n:
        raise ValueError(f"k must be in [2, n={n}] (each fold needs a sample), got k={k}")
    order = as_generator(seed).permutation(n) if shuffle else np.arange(n)
    folds = [np.sort(fold) for fold in np.array_split(order, k)]

    def generate():
        for i, val in enumerate(folds):
            yield np.sort(np.concatenate(folds[:i] + folds[i + 1:])), val
    return generate()


# --- centring and standardisation -----------------------------------------------------------------

def _float_samples(x, name: str = "x") -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype} "
                        f"(convert first, e.g. {name}.astype(np.float32) / 255)")
    if x.ndim < 2:
        raise ValueError(f"{name} must be (N, C, ...) with axis 0 the samples and axis 1 the "
                         f"channels, got shape {x.shape}")
    return x


class _Fitted:
    """Shared machinery: statistics fitted on training data, then applied to any data.

    A subclass names its statistics in ``_state_names`` and defines ``_fit(x) -> dict`` (float64
    statistics), ``_check_shape(x, state)``, ``_apply(x)`` and ``_invert(x)``.
    """

    _state_names: tuple = ()

    def __init__(self):
        self._state = None

    @property
    def fitted(self) -> bool:
        return self._state is not None

    def fit(self, x):
        """Fit the statistics on ``x`` (the training set only); returns self."""
        x = _float_samples(x)
        if len(x) == 0:
            raise ValueError(f"x must hold at least one sample to fit {type(self).__name__}, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"x must be finite to fit {type(self).__name__}: it holds NaN or inf")
        self._state = self._fit(x)
        return self

    def transform(self, x):
        """A new array, ``x`` with the fitted statistics applied; same dtype as ``x``."""
        x = self._checked(x, "transform")
        return self._apply(x).astype(x.dtype, copy=False)

    def fit_transform(self, x):
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def inverse_transform(self, x):
        """Undo ``transform`` (e.g. to look at centred images); same dtype as ``x``."""
        x = self._checked(x, "inverse_transform")
        return self._invert(x).astype(x.dtype, copy=False)

    def state_dict(self) -> dict:
        """The fitted statistics as plain float64 arrays (copies)."""
        self._require_fitted("state_dict")
        return {key: value.copy() for key, value in self._state.items()}

    def load_state_dict(self, state: dict):
        """Set the statistics from ``state_dict()``'s output; returns self."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        missing = sorted(set(self._state_names) - set(state))
        unexpected = sorted(set(state) - set(self._state_names))
        if missing or unexpected:
            raise KeyError(f"state for {type(self).__name__} must have keys {list(self._state_names)}; "
                           f"missing {missing}, unexpected {unexpected}")
        new = {key: np.array(state[key], dtype=np.float64) for key in self._state_names}
        for key, value in new.items():
            if not np.isfinite(value).all():
                raise ValueError(f"state[{key!r}] must be finite")
        self._check_state(new)
        self._state = new
        return self

    def __repr__(self):
        status = "fitted" if self.fitted else "not fitted"
        return f"{type(self).__name__}({self._config()}) [{status}]"

    # --- helpers for subclasses
    def _config(self) -> str:
        return ""

    def _check_state(self, state: dict) -> None:
        pass

    def _require_fitted(self, what: str):
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(x_train) (or "
                               f"load_state_dict) before {what}")

    def _checked(self, x, what: str):
        self._require_fitted(what)
        x = _float_samples(x)
        self._check_shape(x, self._state)
        return x


def _channel_axes(x) -> tuple:
    """Every axis but the channel axis 1: the axes a per-channel statistic reduces over."""
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(values, ndim: int) -> np.ndarray:
    """A (C,) vector shaped (C, 1, 1, ...) to broadcast against (N, C, ...) data of ``ndim`` axes."""
    return values.reshape((-1,) + (1,) * (ndim - 2))


def _check_channels(x, channels: int, who: str):
    if x.shape[1] != channels:
        raise ValueError(f"x has {x.shape[1]} channels (shape {x.shape}) but {who} was fitted on "
                         f"{channels} channels")


class MeanImage(_Fitted):
    """Mean-image centring (AlexNet): subtract the mean of the training images, pixel by pixel.

    ``fit`` stores ``mean`` of shape (C, H, W) (for CIFAR-10, the lecture's "[32,32,3] array");
    data to transform must have that image shape.

    >>> x = np.array([[[[0.0, 2.0]]], [[[2.0, 6.0]]]], dtype=np.float32)   # (2, 1, 1, 2)
    >>> centre = MeanImage().fit(x)
    >>> centre.state_dict()["mean"]
    array([[[1., 4.]]])
    >>> centre.transform(x)[:, 0, 0]
    array([[-1., -2.],
           [ 1.,  2.]], dtype=float32)
    """

    _state_names = ("mean",)

    def _fit(self, x):
        return {"mean": x.mean(axis=0, dtype=np.float64)}

    def _check_shape(self, x, state):
        if x.shape[1:] != state["mean"].shape:
            raise ValueError(f"x has images of shape {x.shape[1:]} (x.shape={x.shape}) but "
                             f"MeanImage was fitted on images of shape {state['mean'].shape}")

    def _check_state(self, state):
        if state["mean"].ndim < 1:
            raise ValueError(f"state['mean'] must be an image (C, ...), got shape {state['mean'].shape}")

    def _apply(self, x):
        return x - self._state["mean"].astype(x.dtype)

    def _invert(self, x):
        return x + self._state["mean"].astype(x.dtype)


class ChannelCentre(_Fitted):
    """Per-channel centring (VGGNet, ResNet): subtract each channel's mean over all training
    pixels (the lecture's "mean along each channel = 3 numbers" for RGB).

    ``fit`` stores ``mean`` of shape (C,); any image size can then be transformed.

    >>> x = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 5.0)])[None].astype(np.float32)
    >>> ChannelCentre().fit(x).state_dict()["mean"]
    array([1., 5.])
    >>> ChannelCentre().fit_transform(x).max()
    np.float32(0.0)
    """

    _state_names = ("mean",)

    def _fit(self, x):
        return {"mean": x.mean(axis=_channel_axes(x), dtype=np.float64)}

    def _check_shape(self, x, state):
        _check_channels(x, len(state["mean"]), "ChannelCentre")

    def _check_state(self, state):
        if state["mean"].ndim != 1:
            raise ValueError(f"state['mean'] must be a (C,) vector, got shape {state['mean'].shape}")

    def _apply(self, x):
        return x - _per_channel(self._state["mean"], x.ndim).astype(x.dtype)

    def _invert(self, x):
        return x + _per_channel(self._state["mean"], x.ndim).astype(x.dtype)


class Standardise(_Fitted):
    """Standardisation: ``(x - mean) / std`` with mean and std fitted on the training set.

    ``per_channel=True``: one mean and std per channel (shape (C,)); ``per_channel=False``: one
    of each over all values (shape ()). Guard against division by ~0: a std below ``eps`` (a
    constant channel) is replaced by 1, so that channel is only centred.

    >>> x = np.array([[[[1.0, 3.0]], [[10.0, 10.0]]]], dtype=np.float32)   # (1, 2, 1, 2)
    >>> s = Standardise().fit(x)
    >>> s.state_dict()["std"]            # the second channel is constant
    array([1., 0.])
    >>> s.transform(x)[0, :, 0]
    array([[-1.,  1.],
           [ 0.,  0.]], dtype=float32)
    """

    _state_names = ("mean", "std")

    def __init__(self, per_channel=True, eps=1e-8):
        if not isinstance(per_channel, bool):
            raise TypeError(f"per_channel must be True or False, got {per_channel!r}")
        if not (isinstance(eps, numbers.Real) and eps >= 0):
            raise ValueError(f"eps must be a number >= 0, got {eps!r}")
        super().__init__()
        self.per_channel, self.eps = per_channel, float(eps)

    def _config(self):
        return f"per_channel={self.per_channel}"

    def _fit(self, x):
        axes = _channel_axes(x) if self.per_channel else None
        return {"mean": np.asarray(x.mean(axis=axes, dtype=np.float64)),
                "std": np.asarray(x.std(axis=axes, dtype=np.float64))}

    def _check_shape(self, x, state):
        if self.per_channel:
            _check_channels(x, len(state["mean"]), "Standardise(per_channel=True)")

    def _check_state(self, state):
        expected = "a (C,) vector" if self.per_channel else "a scalar (shape ())"
        for key in self._state_names:
            if state[key].ndim != (1 if self.per_channel else 0):
                raise ValueError(f"state[{key!r}] for Standardise(per_channel={self.per_channel}) "
                                 f"must be {expected}, got shape {state[key].shape}")
        if state["mean"].shape != state["std"].shape:
            raise ValueError(f"state['mean'] and state['std'] must have the same shape, got "
                             f"{state['mean'].shape} and {state['std'].shape}")
        if (state["std"] < 0).any():
            raise ValueError("state['std'] must be >= 0")

    def _mean_scale(self, x):
        mean, std = self._state["mean"], self._state["std"]
        scale = np.where(std < self.eps, 1.0, std)
        if self.per_channel:
            mean, scale = _per_channel(mean, x.ndim), _per_channel(scale, x.ndim)
        return mean.astype(x.dtype), scale.astype(x.dtype)

    def _apply(self, x):
        mean, scale = self._mean_scale(x)
        return (x - mean) / scale

    def _invert(self, x):
        mean, scale = self._mean_scale(x)
        return x * scale + mean


# --- mini-batches ---------------------------------------------------------------------------------

def _check_batching(x, y, batch_size, drop_last):
    x = _as_samples(x, "x")
    if y is not None:
        x, y = _same_length(x, y)
    batch_size = _positive_int(batch_size, "batch_size")
    if not isinstance(drop_last, bool):
        raise TypeError(f"drop_last must be True or False, got {drop_last!r}")
    if drop_last and batch_size > len(x):
        raise ValueError(f"drop_last=True with batch_size={batch_size} > {len(x)} samples "
                         f"would give no batches at all")
    return x, y, batch_size


def _epoch_generator(seed, epoch) -> np.random.Generator:
    """The Generator of one epoch: an int seed is mixed with the epoch number (so each epoch has
    its own reproducible order); a Generator is used as it is (and ``epoch`` plays no part)."""
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

    >>> x = np.arange(5)
    >>> [b.tolist() for b in batches(x, batch_size=2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    >>> [b.tolist() for b in batches(x, batch_size=2, shuffle=False, drop_last=True)]
    [[0, 1], [2, 3]]
    >>> first = [b.tolist() for b in batches(x, batch_size=5, seed=3, epoch=0)]
    >>> first == [b.tolist() for b in batches(x, batch_size=5, seed=3, epoch=0)]
    True
    """
    x, y, batch_size = _check_batching(x, y, batch_size, drop_last)
    rng = _epoch_generator(seed, epoch)
    order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
    return _generate(x, y, batch_size, drop_last, order)


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


# --- labels ---------------------------------------------------------------------------------------

def one_hot(labels, num_classes, dtype=np.float32):
    """One-hot encode integer class labels: shape ``labels.shape + (num_classes,)``.

    >>> one_hot([2, 0], 3)
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    num_classes = _positive_int(num_classes, "num_classes")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        where = tuple(int(i[0]) for i in np.nonzero(bad))
        raise ValueError(f"labels must be in [0, {num_classes - 1}] for num_classes={num_classes}, "
                         f"got {labels[where]} at index {where if labels.ndim != 1 else where[0]}")
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)
