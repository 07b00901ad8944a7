"""Data augmentation (section 5.2.1): random flips, crops, rotations, shifts, scalings, shears, and
colour jittering (contrast, and AlexNet's PCA colour offsets) of NCHW image batches.

"Data augmentation is performed by making several copies from a single image using
straightforward operations such as rotations, cropping, flipping, scaling, translations and
shearing" (Figure 5.1); colour jittering, "random contrast jittering" or "a random offset along
the principal colour directions" found by PCA [Krizhevsky et al., 2012], adds colour and
illumination invariance.

Every augmentation is a function ``f(x, rng, ...)`` of a float batch ``x`` (N, C, H, W) and a
random source ``rng`` (a ``np.random.Generator``, or an int seed), and returns a new array of
``x``'s dtype; ``x`` is never modified. Each image gets its own random parameters. The classes
(``RandomFlip``, ``RandomCrop``, ...) hold the parameters and are called as ``t(x, rng)``;
``Compose`` chains them:

>>> import numpy as np
>>> augment = Compose([RandomFlip(p=0.5), RandomCrop(8, padding=1), RandomRotation(10)])
>>> x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
>>> out = augment(x, np.random.default_rng(1))
>>> out.shape, out.dtype
((4, 1, 8, 8), dtype('float32'))
>>> bool((augment(x, np.random.default_rng(1)) == out).all())   # same seed, same result
True

Rotations, shifts, scalings and shears are all one affine warp (:func:`affine_warp`: inverse
mapping, bilinear interpolation, zero fill; :func:`affine_matrix` builds its matrix);
:func:`random_affine` draws all four at once, so
that an image is interpolated once rather than once per operation. Coordinates are (row, col)
with row 0 at the top; rotations and scalings are about the image centre.
"""
from __future__ import annotations

import numbers

import numpy as np

from .data import as_generator

__all__ = ["affine_warp", "affine_matrix", "random_affine", "random_flip", "random_crop",
           "random_rotation", "random_shift", "random_scale", "random_shear", "contrast_jitter",
           "fit_colour_pca", "pca_colour_jitter", "Transform", "Compose", "RandomFlip", "RandomCrop",
           "RandomRotation", "RandomShift", "RandomScale", "RandomShear", "RandomAffine",
           "ContrastJitter", "PCAColourJitter"]


# --- argument checks ------------------------------------------------------------------------------

def _check_batch(x, name="x") -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-D NCHW batch (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    return x


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _pair(value, name: str) -> tuple:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(_is_number(v) for v in value) or value[0] > value[1]):
        raise ValueError(f"{name} must be a number or a (low, high) pair with low <= high, got {value!r}")
    return value[0], value[1]


def _symmetric_range(value, name: str, limit: float = np.inf) -> tuple:
    """A number d >= 0 means (-d, d); a pair (low, high) is taken as it is. |ends| < limit."""
    if _is_number(value):
        if value < 0:
            raise ValueError(f"{name} must be >= 0 (meaning the range (-{name}, {name})), got {value}")
        low, high = -value, value
    else:
        low, high = _pair(value, name)
    if max(abs(low), abs(high)) >= limit:
        raise ValueError(f"{name} must lie within (-{limit}, {limit}), got {value!r}")
    return low, high


def _factor_range(value, name: str) -> tuple:
    """A factor range around 1: a number z in [0, 1) means (1 - z, 1 + z); a pair (low, high)
    with 0 < low <= high is taken as it is."""
    if _is_number(value):
        if not 0 <= value < 1:
            raise ValueError(f"{name} as a number z means the range (1 - z, 1 + z) and must be in "
                             f"[0, 1), got {value}; pass a (low, high) pair for other ranges")
        return 1 - value, 1 + value
    low, high = _pair(value, name)
    if low <= 0:
        raise ValueError(f"{name} must be a range of positive factors, got {value!r}")
    return low, high


def _shift_ranges(value, name: str = "max_shift"):
    """max_shift m (both axes) or (m_rows, m_cols), in pixels: ((low, high) per axis, integer?)."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(_is_number(v) and v >= 0 for v in values):
        raise ValueError(f"{name} must be a number >= 0 or a pair (rows, cols) of them, got {value!r}")
    integer = all(isinstance(v, numbers.Integral) for v in values)
    return tuple((-v, v) for v in values), integer


def _probability(p, name="p") -> float:
    if not _is_number(p) or not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def _size_pair(value, name: str) -> tuple:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                   for v in values):
        raise ValueError(f"{name} must be an int or a pair (rows, cols) of ints, got {value!r}")
    return tuple(int(v) for v in values)


def _uniform(rng, low_high, n):
    low, high = low_high
    return rng.uniform(low, high, size=n)


# --- the shared affine warp -----------------------------------------------------------------------

def affine_warp(x, matrix, fill=0.0, out_shape=None):
    """Warp every image of ``x`` by an affine map: inverse mapping with bilinear interpolation.

    ``matrix`` is (2, 3), or (N, 2, 3) for one per image: output pixel (row, col) takes the value
    of the input at position ``matrix @ (row, col, 1)``, interpolated bilinearly between the four
    pixels around it; positions outside the image read ``fill``. (Mapping each *output* pixel
    back to the input leaves no holes, which pushing input pixels forward would.)
    ``out_shape`` (rows, cols) defaults to the input's.

    >>> x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    >>> affine_warp(x, [[1, 0, 0], [0, 1, 0.5]])[0, 0]     # each pixel reads the input half a pixel to its right
    array([[0.5, 1.5, 1. ],
           [3.5, 4.5, 2.5],
           [6.5, 7.5, 4. ]], dtype=float32)
    """
    x = _check_batch(x)
    n, c, h, w = x.shape
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape not in ((2, 3), (n, 2, 3)):
        raise ValueError(f"matrix must have shape (2, 3) or (N, 2, 3) = ({n}, 2, 3), got {matrix.shape}")
    out_h, out_w = (h, w) if out_shape is None else _size_pair(out_shape, "out_shape")
    if not _is_number(fill):
        raise ValueError(f"fill must be a number, got {fill!r}")
    matrix = np.broadcast_to(matrix, (n, 2, 3))

    rows, cols = np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
    grid = np.stack([rows.ravel(), cols.ravel(), np.ones(out_h * out_w)])     # (3, P)
    source = matrix @ grid                                                     # (N, 2, P)
    top, left = np.floor(source[:, 0]), np.floor(source[:, 1])
    down, right = source[:, 0] - top, source[:, 1] - left                     # in [0, 1)

    flat = x.reshape(n, c, h * w)
    out = np.zeros((n, c, out_h * out_w), dtype=x.dtype)
    outside = np.zeros((n, out_h * out_w))                   # weight of the corners off the image
    for r, weight_r in ((top, 1 - down), (top + 1, down)):
        for q, weight_q in ((left, 1 - right), (left + 1, right)):
            weight = weight_r * weight_q
            inside = (r >= 0) & (r < h) & (q >= 0) & (q < w)
            index = (np.clip(r, 0, h - 1) * w + np.clip(q, 0, w - 1)).astype(np.intp)
            values = np.take_along_axis(flat, index[:, None, :], axis=2)       # (N, C, P)
            out += np.where(inside, weight, 0).astype(x.dtype)[:, None, :] * values
            outside += np.where(inside, 0, weight)
    if fill != 0:
        out += (fill * outside).astype(x.dtype)[:, None, :]
    return out.reshape(n, c, out_h, out_w)


def affine_matrix(shape, degrees=0.0, shift=(0.0, 0.0), scale=1.0, shear=0.0):
    """The :func:`affine_warp` matrix that rotates, scales, shears and shifts images of ``shape``.

    The forward map of a pixel p = (row, col) is p' = R S H (p - c) + c + t: a horizontal shear
    H by ``shear`` degrees (col' = col + tan(shear) * row, rows below the centre moving right),
    a scaling S by ``scale`` (> 1 zooms in) and a rotation R by ``degrees`` (counter-clockwise as
    displayed), all about the centre c = ((H - 1) / 2, (W - 1) / 2), then a shift t = ``shift``
    = (rows, cols) (positive: down, right). The result is its inverse, output -> input, shape
    (2, 3); or (N, 2, 3) when the arguments are arrays of N values (``shift`` of shape (N, 2)).

    >>> affine_matrix((3, 3), shift=(1, 0))          # output row r reads input row r - 1
    array([[ 1.,  0., -1.],
           [ 0.,  1.,  0.]])
    >>> affine_matrix((3, 3), degrees=90).round(12)  # output (r, c) reads input (c, 2 - r)
    array([[ 0.,  1.,  0.],
           [-1.,  0.,  2.]])
    """
    h, w = shape
    angle, factor, slant = (np.asarray(v, dtype=np.float64) for v in (degrees, scale, shear))
    shift = np.asarray(shift, dtype=np.float64)
    n = np.broadcast_shapes(angle.shape, factor.shape, slant.shape, shift.shape[:-1])
    angle, factor, slant = (np.broadcast_to(v, n) for v in (np.deg2rad(angle), factor, np.tan(np.deg2rad(slant))))
    cos, sin, zero, one = np.cos(angle), np.sin(angle), np.zeros(n), np.ones(n)
    rotate = np.moveaxis(np.array([[cos, -sin], [sin, cos]]), (0, 1), (-2, -1))      # (..., 2, 2)
    shear_ = np.moveaxis(np.array([[one, zero], [slant, one]]), (0, 1), (-2, -1))
    forward = rotate @ (factor[..., None, None] * shear_)
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    inverse = np.linalg.inv(forward)
    offset = centre[:, None] - inverse @ (centre + shift)[..., None]                 # (..., 2, 1)
    return np.concatenate([inverse, offset], axis=-1)


def random_affine(x, rng, degrees=0, max_shift=0, scale=(1, 1), shear=0, fill=0.0):
    """Rotate, scale, shear and shift every image at random, in one bilinear warp.

    Per image: a rotation by an angle uniform in ``degrees`` (a number d means (-d, d)), a
    scaling by a factor uniform in ``scale`` (a number z means (1 - z, 1 + z)), a horizontal
    shear by an angle uniform in ``shear`` (degrees), and a shift of (rows, cols) each uniform in
    [-max_shift, max_shift] pixels (whole pixels when ``max_shift`` is an int); see
    :func:`affine_matrix` for the conventions.

    >>> x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    >>> random_affine(x, 0, degrees=(90, 90)).round(6)[0, 0]       # a quarter turn, as np.rot90
    array([[2., 5., 8.],
           [1., 4., 7.],
           [0., 3., 6.]], dtype=float32)
    """
    x = _check_batch(x)
    rng = as_generator(rng)
    angle_range = _symmetric_range(degrees, "degrees")
    scale_range = _factor_range(scale, "scale")
    shear_range = _symmetric_range(shear, "shear", limit=90)
    shift_ranges, integer_shift = _shift_ranges(max_shift)
    n = len(x)

    angle = _uniform(rng, angle_range, n)
    factor = _uniform(rng, scale_range, n)
    slant = _uniform(rng, shear_range, n)
    if integer_shift:
        shift = np.stack([rng.integers(low, high + 1, size=n) for low, high in shift_ranges], axis=1)
    else:
        shift = np.stack([_uniform(rng, bounds, n) for bounds in shift_ranges], axis=1)
    return affine_warp(x, affine_matrix(x.shape[2:], angle, shift, factor, slant), fill)


def random_rotation(x, rng, degrees, fill=0.0):
    """Rotate each image by an angle uniform in ``degrees`` (a number d: (-d, d)), about its
    centre, counter-clockwise as displayed; bilinear, corners filled with ``fill``.

    >>> x = np.eye(3, dtype=np.float32)[None, None]
    >>> random_rotation(x, 0, degrees=(180, 180)).round(6)[0, 0]   # a half turn: x[..., ::-1, ::-1]
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    return random_affine(x, rng, degrees=degrees, fill=fill)


def random_shift(x, rng, max_shift, fill=0.0):
    """Translate each image by (rows, cols), each uniform in [-max_shift, max_shift] pixels
    (``max_shift`` a number or a pair (rows, cols); whole pixels when ints); positive moves the
    content down/right and the uncovered border reads ``fill``.

    >>> x = np.zeros((4, 1, 5, 5), np.float32); x[:, 0, 2, 2] = 1        # a dot in the middle
    >>> out = random_shift(x, 0, max_shift=2)
    >>> [tuple(np.argwhere(image[0] == 1)[0].tolist()) for image in out]  # where each dot went
    [(1, 3), (4, 3), (2, 4), (0, 0)]
    """
    return random_affine(x, rng, max_shift=max_shift, fill=fill)


def random_scale(x, rng, scale=(0.9, 1.1), fill=0.0):
    """Zoom each image about its centre by a factor uniform in ``scale`` (> 1 enlarges the
    content; a number z means (1 - z, 1 + z)); uncovered pixels read ``fill``.

    >>> x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 1, 5)
    >>> random_scale(x, 0, scale=(2, 2))[0, 0, 0]        # zoom in: the middle half fills the row
    array([2. , 2.5, 3. , 3.5, 4. ], dtype=float32)
    >>> random_scale(x, 0, scale=(0.5, 0.5))[0, 0, 0]    # zoom out: every other pixel, zero fill
    array([0., 1., 3., 5., 0.], dtype=float32)

    Shrinking samples without smoothing first (no anti-aliasing): fine for the small factors
    augmentation uses.
    """
    return random_affine(x, rng, scale=scale, fill=fill)


def random_shear(x, rng, degrees=10, fill=0.0):
    """Shear each image horizontally by an angle uniform in ``degrees`` (a number d: (-d, d)):
    col' = col + tan(angle) * (row - centre row), rows below the centre moving right.

    >>> x = np.zeros((1, 1, 3, 3), np.float32); x[0, 0, :, 1] = 1     # a vertical bar
    >>> random_shear(x, 0, degrees=(45, 45)).round(6)[0, 0]           # leans: bottom to the right
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    _symmetric_range(degrees, "degrees", limit=90)
    return random_affine(x, rng, shear=degrees, fill=fill)


# --- flips and crops (exact index operations) -----------------------------------------------------

def random_flip(x, rng, horizontal=True, vertical=False, p=0.5):
    """Flip each image left-right (``horizontal``) and/or upside down (``vertical``), each with
    probability ``p``, independently per image. (Mind the data: a flipped digit is no digit.)

    >>> x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    >>> random_flip(x, 0, p=1.0)[0, 0]
    array([[1., 0.],
           [3., 2.]], dtype=float32)
    """
    x = _check_batch(x)
    rng = as_generator(rng)
    p = _probability(p)
    out = x.copy()
    for enabled, axis in ((horizontal, 3), (vertical, 2)):
        if enabled:
            chosen = rng.random(len(x)) < p
            out[chosen] = np.flip(out[chosen], axis=axis)
    return out


def random_crop(x, rng, size, padding=0, fill=0.0):
    """Pad each image by ``padding`` pixels of ``fill`` on every side, then cut out a ``size``
    window (an int or (rows, cols)) at a random position, per image: the CIFAR practice
    ``RandomCrop(32, padding=4)`` shifts images by up to 4 pixels.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> random_crop(x, 0, size=4, padding=0)[0, 0, 0]       # full size, no padding: x itself
    array([0., 1., 2., 3.], dtype=float32)
    >>> random_crop(x, 0, size=2).shape
    (1, 1, 2, 2)
    """
    x = _check_batch(x)
    rng = as_generator(rng)
    out_h, out_w = _size_pair(size, "size")
    pad = _size_pair(padding, "padding")
    if min(pad) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    if not _is_number(fill):
        raise ValueError(f"fill must be a number, got {fill!r}")
    n, c, h, w = x.shape
    padded_h, padded_w = h + 2 * pad[0], w + 2 * pad[1]
    if not (1 <= out_h <= padded_h and 1 <= out_w <= padded_w):
        raise ValueError(f"size must be between 1 and the padded image size {padded_h} x {padded_w} "
                         f"(image {h} x {w}, padding {padding}), got {size!r}")
    padded = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])), constant_values=fill)
    top = rng.integers(0, padded_h - out_h + 1, size=n)
    left = rng.integers(0, padded_w - out_w + 1, size=n)
    rows = (top[:, None] + np.arange(out_h))[:, None, :, None]               # (N, 1, h', 1)
    cols = (left[:, None] + np.arange(out_w))[:, None, None, :]              # (N, 1, 1, w')
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]


# --- colour ---------------------------------------------------------------------------------------

def contrast_jitter(x, rng, factor=(0.8, 1.2)):
    """Random contrast: each image's deviations from its mean (over all its pixels and channels)
    are multiplied by a factor uniform in ``factor`` (a number z means (1 - z, 1 + z)):
    x' = m + a (x - m). The mean stays, the standard deviation is multiplied by a.

    >>> x = np.array([0.0, 1.0], dtype=np.float32).reshape(1, 1, 1, 2)
    >>> contrast_jitter(x, 0, factor=(2, 2))[0, 0, 0]
    array([-0.5,  1.5], dtype=float32)
    """
    x = _check_batch(x)
    rng = as_generator(rng)
    a = _uniform(rng, _factor_range(factor, "factor"), len(x)).astype(x.dtype)[:, None, None, None]
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return mean + a * (x - mean)


def _check_rgb(x, name="x"):
    x = _check_batch(x, name)
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


def _check_pca(eigenvalues, eigenvectors):
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
    values, vectors = _check_pca(eigenvalues, eigenvectors)
    if not _is_number(std) or std < 0:
        raise ValueError(f"std must be a number >= 0, got {std!r}")
    alpha = rng.normal(0.0, std, size=(len(x), 3))
    offset = (alpha * np.sqrt(values)) @ vectors.T                           # (N, 3)
    return x + offset.astype(x.dtype)[:, :, None, None]


# --- the composable classes -----------------------------------------------------------------------

class Transform:
    """Base of the augmentation classes: ``t(x, rng)`` returns an augmented copy of ``x``."""

    def __call__(self, x, rng):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


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

    def __call__(self, x, rng):
        x = _check_batch(x)
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

    def __init__(self, horizontal=True, vertical=False, p=0.5):
        self.horizontal, self.vertical, self.p = bool(horizontal), bool(vertical), _probability(p)

    def __call__(self, x, rng):
        return random_flip(x, rng, self.horizontal, self.vertical, self.p)


class RandomCrop(Transform):
    """:func:`random_crop` as a transform: pad by ``padding``, cut a random ``size`` window."""

    def __init__(self, size, padding=0, fill=0.0):
        _size_pair(size, "size")
        if min(_size_pair(padding, "padding")) < 0:
            raise ValueError(f"padding must be >= 0, got {padding!r}")
        self.size, self.padding, self.fill = size, padding, fill

    def __call__(self, x, rng):
        return random_crop(x, rng, self.size, self.padding, self.fill)


class RandomAffine(Transform):
    """:func:`random_affine` as a transform: rotation, scaling, shear and shift in one warp."""

    def __init__(self, degrees=0, max_shift=0, scale=(1, 1), shear=0, fill=0.0):
        _symmetric_range(degrees, "degrees")
        _shift_ranges(max_shift)
        _factor_range(scale, "scale")
        _symmetric_range(shear, "shear", limit=90)
        self.degrees, self.max_shift, self.scale, self.shear, self.fill = degrees, max_shift, scale, shear, fill

    def __call__(self, x, rng):
        return random_affine(x, rng, self.degrees, self.max_shift, self.scale, self.shear, self.fill)


class RandomRotation(Transform):
    """:func:`random_rotation` as a transform."""

    def __init__(self, degrees, fill=0.0):
        _symmetric_range(degrees, "degrees")
        self.degrees, self.fill = degrees, fill

    def __call__(self, x, rng):
        return random_rotation(x, rng, self.degrees, self.fill)


class RandomShift(Transform):
    """:func:`random_shift` as a transform."""

    def __init__(self, max_shift, fill=0.0):
        _shift_ranges(max_shift)
        self.max_shift, self.fill = max_shift, fill

    def __call__(self, x, rng):
        return random_shift(x, rng, self.max_shift, self.fill)


class RandomScale(Transform):
    """:func:`random_scale` as a transform."""

    def __init__(self, scale=(0.9, 1.1), fill=0.0):
        _factor_range(scale, "scale")
        self.scale, self.fill = scale, fill

    def __call__(self, x, rng):
        return random_scale(x, rng, self.scale, self.fill)


class RandomShear(Transform):
    """:func:`random_shear` as a transform."""

    def __init__(self, degrees=10, fill=0.0):
        _symmetric_range(degrees, "degrees", limit=90)
        self.degrees, self.fill = degrees, fill

    def __call__(self, x, rng):
        return random_shear(x, rng, self.degrees, self.fill)


class ContrastJitter(Transform):
    """:func:`contrast_jitter` as a transform."""

    def __init__(self, factor=(0.8, 1.2)):
        _factor_range(factor, "factor")
        self.factor = factor

    def __call__(self, x, rng):
        return contrast_jitter(x, rng, self.factor)


class PCAColourJitter(Transform):
    """:func:`pca_colour_jitter` as a transform; ``fit(x_train)`` finds the colour directions
    (or pass ``eigenvalues`` and ``eigenvectors``). RGB (3-channel) images only.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((8, 3, 4, 4), dtype=np.float32)
    >>> jitter = PCAColourJitter(std=0.1).fit(x)
    >>> jitter(x, rng).shape
    (8, 3, 4, 4)
    """

    def __init__(self, std=0.1, eigenvalues=None, eigenvectors=None):
        if not _is_number(std) or std < 0:
            raise ValueError(f"std must be a number >= 0, got {std!r}")
        if (eigenvalues is None) != (eigenvectors is None):
            raise ValueError("pass both eigenvalues and eigenvectors, or neither (then call fit)")
        self.std = std
        self.eigenvalues = self.eigenvectors = None
        if eigenvalues is not None:
            self.eigenvalues, self.eigenvectors = _check_pca(eigenvalues, eigenvectors)

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
        self.eigenvalues, self.eigenvectors = _check_pca(state["eigenvalues"], state["eigenvectors"])
        return self

    def _require_fitted(self, what):
        if self.eigenvalues is None:
            raise RuntimeError(f"PCAColourJitter is not fitted: call fit(x_train) (or pass eigenvalues "
                               f"and eigenvectors) before {what}")

    def __call__(self, x, rng):
        self._require_fitted("calling it")
        return pca_colour_jitter(x, rng, self.eigenvalues, self.eigenvectors, self.std)

    def __repr__(self):
        return f"PCAColourJitter(std={self.std!r}) [{'fitted' if self.eigenvalues is not None else 'not fitted'}]"
