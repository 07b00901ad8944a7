"""Centring and standardisation, fitted on the training set and applied unchanged to any other.

The lecture's "Data Preprocessing" ("in practice for images only centring is preferred"):
subtract the *mean image* (``MeanImage``, AlexNet) or the *per-channel mean* (``ChannelCentre``,
VGGNet, ResNet), or standardise (``Standardise``). Images are NCHW (axis 1 the channel axis); flat
feature matrices (N, D) work too, each feature then counting as a channel. Each normaliser has
``fit``, ``transform``, ``fit_transform``, ``inverse_transform`` and ``state_dict`` /
``load_state_dict`` (plain float64 arrays).
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["MeanImage", "ChannelCentre", "Standardise"]


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
