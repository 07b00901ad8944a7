"""Colour augmentations: random contrast, and AlexNet's offsets along the principal colour directions."""
from __future__ import annotations

import numpy as np

from ..data import as_generator
from .checks import check_batch, factor_range, is_number, uniform

__all__ = ["contrast_jitter", "fit_colour_pca", "pca_colour_jitter"]


def contrast_jitter(x, rng, factor=(0.8, 1.2)):
    """Random contrast: each image's deviations from its mean (over all its pixels and channels)
    are multiplied by a factor uniform in ``factor`` (a number z means (1 - z, 1 + z)):
    x' = m + a (x - m). The mean stays, the standard deviation is multiplied by a.

    >>> x = np.array([0.0, 1.0], dtype=np.float32).reshape(1, 1, 1, 2)
    >>> contrast_jitter(x, 0, factor=(2, 2))[0, 0, 0]
    array([-0.5,  1.5], dtype=float32)
    """
    x = check_batch(x)
    rng = as_generator(rng)
    a = uniform(rng, factor_range(factor, "factor"), len(x)).astype(x.dtype)[:, None, None, None]
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return mean + a * (x - mean)


def _check_rgb(x, name="x"):
    x = check_batch(x, name)
    if x.shape[1] != 3:
        raise ValueError(f"PCA colour jitter needs RGB images with 3 channels, but {name} has "
                         f"{x.shape[1]} (shape {x.shape})")
    return x


def fit_colour_pca(x):
    """The principal colour directions of RGB images ``x``: ``(eigenvalues, eigenvectors)`` of
    the 3x3 covariance of the pixels' (R, G, B) values, eigenvalues descending, eigenvector i in
    column i. Eigenvalues below 1e-12 of the largest are round-off and set to 0.

    >>> t = np.linspace(0, 1, 16).reshape(1, 1, 4, 4)
    >>> x = np.concatenate([t, 2 * t, -2 * t], axis=1)              # colours along (1, 2, -2)
    >>> values, vectors = fit_colour_pca(x)
    >>> (vectors[:, 0] * np.sign(vectors[0, 0])).round(4), values[1:].round(12)
    (array([ 0.3333,  0.6667, -0.6667]), array([0., 0.]))
    """
    x = _check_rgb(x)
    if not np.isfinite(x).all():
        raise ValueError("x must be finite to fit the colour PCA: it holds NaN or inf")
    pixels = x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    if pixels.shape[1] < 2:
        raise ValueError(f"x must hold at least 2 pixels to fit a covariance, got shape {x.shape}")
    values, vectors = np.linalg.eigh(np.cov(pixels))
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    values[values <= 1e-12 * values[0]] = 0          # round-off (and negatives), not colour variance
    return values, vectors


def check_pca(eigenvalues, eigenvectors):
    values = np.asarray(eigenvalues, dtype=np.float64)
    vectors = np.asarray(eigenvectors, dtype=np.float64)
    if values.shape != (3,) or vectors.shape != (3, 3):
        raise ValueError(f"eigenvalues must have shape (3,) and eigenvectors (3, 3), got "
                         f"{values.shape} and {vectors.shape}")
    if not (np.isfinite(values).all() and np.isfinite(vectors).all()) or (values < 0).any():
        raise ValueError(f"eigenvalues must be finite and >= 0 and eigenvectors finite, got "
                         f"eigenvalues {values}")
    return values, vectors


def pca_colour_jitter(x, rng, eigenvalues, eigenvectors, std=0.1):
    """AlexNet's colour augmentation: add to every pixel of an image the same colour offset
    ``eigenvectors @ (alpha * sqrt(eigenvalues))``, alpha ~ N(0, std^2) drawn per image.

    The eigen-decomposition comes from :func:`fit_colour_pca` on the training set. Each
    direction's offset is scaled by that direction's standard deviation sqrt(lambda_i), so the
    offsets have covariance std^2 times the pixels' colour covariance (Krizhevsky et al. write
    alpha_i lambda_i).

    >>> x = np.zeros((2, 3, 1, 1), np.float32)
    >>> out = pca_colour_jitter(x, 0, [4.0, 0.0, 0.0], np.eye(3), std=0.1)
    >>> bool((out[:, 1:] == 0).all())        # only the first direction has any variance
    True
    """
    x = _check_rgb(x)
    rng = as_generator(rng)
    values, vectors = check_pca(eigenvalues, eigenvectors)
    if not is_number(std) or std < 0:
        raise ValueError(f"std must be a number >= 0, got {std!r}")
    alpha = rng.normal(0.0, std, size=(len(x), 3))
    offset = (alpha * np.sqrt(values)) @ vectors.T                           # (N, 3)
    return x + offset.astype(x.dtype)[:, :, None, None]
