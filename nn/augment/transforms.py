"""Transforms: an augmentation function with its parameters fixed, called as ``t(x, rng)``.

:class:`Transform` is the one generic transform; each named one (``RandomFlip``, ``RandomCrop``, ...)
only names its function and the checks of its arguments. ``Compose`` chains transforms.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..data import as_generator
from .checks import (check_batch, factor_range, is_number, padding_pair, probability, shift_ranges, size_pair,
                     symmetric_range)
from .colour import check_pca, contrast_jitter, fit_colour_pca, pca_colour_jitter
from .geometric import (random_affine, random_crop, random_flip, random_rotation, random_scale, random_shear,
                        random_shift)

__all__ = ["Transform", "Compose", "RandomFlip", "RandomCrop", "RandomAffine", "RandomRotation", "RandomShift",
           "RandomScale", "RandomShear", "ContrastJitter", "PCAColourJitter"]


class Transform:
    """An augmentation function with its parameters fixed: ``t(x, rng)`` is ``function(x, rng, **params)``.

    A transform is a subclass naming ``function`` (``f(x, rng, ...)``, as a staticmethod) and,
    optionally, ``checks`` ({parameter: check(value) -> the value to keep}). Its constructor takes
    the function's own parameters after ``(x, rng)``, with the function's defaults:
    ``RandomCrop(8, padding=1)(x, rng)`` is ``random_crop(x, rng, 8, padding=1, fill=0.0)``. The
    checks run when the transform is made, so a bad argument fails at once rather than at the
    first batch. ``rng`` (an int seed, a Generator, or None for nn's global one) reaches the function
    as a Generator. The parameters are attributes (``t.padding``), listed by ``t.params``:

    >>> class Negate(Transform):                     # a transform of one's own
    ...     function = staticmethod(lambda x, rng, scale=1.0: -scale * x)
    >>> t = Negate(scale=2.0)
    >>> t, t.params, t(np.ones((1, 1, 1, 2), np.float32), 0)[0, 0]
    (Negate(scale=2.0), {'scale': 2.0}, array([[-2., -2.]], dtype=float32))
    """

    function = None
    checks = {}

    def __init__(self, *args, **kwargs):
        if self.function is None:
            raise TypeError(f"{type(self).__name__} names no function: set function = staticmethod(f), "
                            f"f(x, rng, ...)")
        try:
            bound = inspect.signature(self.function).bind(None, None, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}: {exc}") from None
        bound.apply_defaults()
        self._names = list(bound.arguments)[2:]
        for name in self._names:
            check = self.checks.get(name)
            value = bound.arguments[name]
            setattr(self, name, value if check is None else check(value))

    @property
    def params(self) -> dict:
        """{parameter: value}: what ``function`` gets after ``(x, rng)``."""
        return {name: getattr(self, name) for name in self._names}

    def __call__(self, x, rng):
        return self.function(x, as_generator(rng), **self.params)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _kept(check, *args):
    """A ``Transform.checks`` entry: run ``check(value, *args)``, keep the value as it was given."""
    def run(value):
        check(value, *args)
        return value
    return run


_DEGREES = _kept(symmetric_range, "degrees")
_SHEAR_DEGREES = _kept(symmetric_range, "degrees", 90)
_MAX_SHIFT = _kept(shift_ranges)
_SCALE = _kept(factor_range, "scale")


class Compose(Transform):
    """Apply transforms one after the other, all drawing from the same Generator.

    >>> x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    >>> Compose([RandomFlip(p=1.0), RandomFlip(vertical=True, horizontal=False, p=1.0)])(x, 0)[0, 0]
    array([[3., 2.],
           [1., 0.]], dtype=float32)
    """

    def __init__(self, transforms):
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}] must be callable as t(x, rng), got {type(t).__name__}")
        self.transforms = transforms
        self._names = ["transforms"]

    def __call__(self, x, rng):
        x = check_batch(x)
        rng = as_generator(rng)
        out = x
        for t in self.transforms:
            out = t(out, rng)
        return x.copy() if out is x else out

    def __repr__(self):
        inner = ",\n".join(f"    {t!r}" for t in self.transforms)
        return f"Compose([\n{inner}\n])" if inner else "Compose([])"


class RandomFlip(Transform):
    """:func:`random_flip` as a transform."""

    function = staticmethod(random_flip)
    checks = {"horizontal": bool, "vertical": bool, "p": probability}


class RandomCrop(Transform):
    """:func:`random_crop` as a transform: pad by ``padding``, cut a random ``size`` window."""

    function = staticmethod(random_crop)
    checks = {"size": _kept(size_pair, "size"), "padding": _kept(padding_pair)}


class RandomAffine(Transform):
    """:func:`random_affine` as a transform: rotation, scaling, shear and shift in one warp."""

    function = staticmethod(random_affine)
    checks = {"degrees": _DEGREES, "max_shift": _MAX_SHIFT, "scale": _SCALE,
              "shear": _kept(symmetric_range, "shear", 90)}


class RandomRotation(Transform):
    """:func:`random_rotation` as a transform."""

    function = staticmethod(random_rotation)
    checks = {"degrees": _DEGREES}


class RandomShift(Transform):
    """:func:`random_shift` as a transform."""

    function = staticmethod(random_shift)
    checks = {"max_shift": _MAX_SHIFT}


class RandomScale(Transform):
    """:func:`random_scale` as a transform."""

    function = staticmethod(random_scale)
    checks = {"scale": _SCALE}


class RandomShear(Transform):
    """:func:`random_shear` as a transform."""

    function = staticmethod(random_shear)
    checks = {"degrees": _SHEAR_DEGREES}


class ContrastJitter(Transform):
    """:func:`contrast_jitter` as a transform."""

    function = staticmethod(contrast_jitter)
    checks = {"factor": _kept(factor_range, "factor")}


class PCAColourJitter(Transform):
    """:func:`pca_colour_jitter` as a transform; ``fit(x_train)`` finds the colour directions
    (or pass ``eigenvalues`` and ``eigenvectors``). RGB (3-channel) images only.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((8, 3, 4, 4), dtype=np.float32)
    >>> jitter = PCAColourJitter(std=0.1).fit(x)
    >>> jitter(x, rng).shape
    (8, 3, 4, 4)
    """

    function = staticmethod(pca_colour_jitter)

    def __init__(self, std=0.1, eigenvalues=None, eigenvectors=None):
        if not is_number(std) or std < 0:
            raise ValueError(f"std must be a number >= 0, got {std!r}")
        if (eigenvalues is None) != (eigenvectors is None):
            raise ValueError("pass both eigenvalues and eigenvectors, or neither (then call fit)")
        self.std = std
        self.eigenvalues = self.eigenvectors = None
        if eigenvalues is not None:
            self.eigenvalues, self.eigenvectors = check_pca(eigenvalues, eigenvectors)
        self._names = ["eigenvalues", "eigenvectors", "std"]

    def fit(self, x):
        """Fit the colour directions on training images ``x`` (N, 3, H, W); returns self."""
        self.eigenvalues, self.eigenvectors = fit_colour_pca(x)
        return self

    def state_dict(self) -> dict:
        self._require_fitted("state_dict")
        return {"eigenvalues": self.eigenvalues.copy(), "eigenvectors": self.eigenvectors.copy()}

    def load_state_dict(self, state: dict):
        if not isinstance(state, dict) or set(state) != {"eigenvalues", "eigenvectors"}:
            raise KeyError(f"state must be a dict with keys ['eigenvalues', 'eigenvectors'], got "
                           f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        self.eigenvalues, self.eigenvectors = check_pca(state["eigenvalues"], state["eigenvectors"])
        return self

    def _require_fitted(self, what):
        if self.eigenvalues is None:
            raise RuntimeError(f"PCAColourJitter is not fitted: call fit(x_train) (or pass eigenvalues "
                               f"and eigenvectors) before {what}")

    def __call__(self, x, rng):
        self._require_fitted("calling it")
        return super().__call__(x, rng)

    def __repr__(self):
        return f"PCAColourJitter(std={self.std!r}) [{'fitted' if self.eigenvalues is not None else 'not fitted'}]"
