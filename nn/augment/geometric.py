"""Geometric augmentations: one affine warp for rotations, shifts, scalings and shears; flips and crops.

Rotations, shifts, scalings and shears are all one affine warp (:func:`affine_warp`: inverse
mapping, bilinear interpolation, zero fill; :func:`affine_matrix` builds its matrix);
:func:`random_affine` draws all four at once, so that an image is interpolated once rather than
once per operation. Coordinates are (row, col) with row 0 at the top; rotations and scalings are
about the image centre. Flips and crops are exact index operations.
"""
from __future__ import annotations

import numpy as np

from ..data import as_generator
from .checks import (check_batch, factor_range, is_number, padding_pair, probability, shift_ranges, size_pair,
                     symmetric_range, uniform)

__all__ = ["affine_warp", "affine_matrix", "random_affine", "random_rotation", "random_shift", "random_scale",
           "random_shear", "random_flip", "random_crop"]


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
    x = check_batch(x)
    n, c, h, w = x.shape
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape not in ((2, 3), (n, 2, 3)):
        raise ValueError(f"matrix must have shape (2, 3) or (N, 2, 3) = ({n}, 2, 3), got {matrix.shape}")
    out_h, out_w = (h, w) if out_shape is None else size_pair(out_shape, "out_shape")
    if not is_number(fill):
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
    x = check_batch(x)
    rng = as_generator(rng)
    angle_range = symmetric_range(degrees, "degrees")
    scale_range = factor_range(scale, "scale")
    shear_range = symmetric_range(shear, "shear", limit=90)
    shift_bounds, integer_shift = shift_ranges(max_shift)
    n = len(x)

    angle = uniform(rng, angle_range, n)
    factor = uniform(rng, scale_range, n)
    slant = uniform(rng, shear_range, n)
    if integer_shift:
        shift = np.stack([rng.integers(low, high + 1, size=n) for low, high in shift_bounds], axis=1)
    else:
        shift = np.stack([uniform(rng, bounds, n) for bounds in shift_bounds], axis=1)
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
    symmetric_range(degrees, "degrees", limit=90)
    return random_affine(x, rng, shear=degrees, fill=fill)


def random_flip(x, rng, horizontal=True, vertical=False, p=0.5):
    """Flip each image left-right (``horizontal``) and/or upside down (``vertical``), each with
    probability ``p``, independently per image. (Mind the data: a flipped digit is no digit.)

    >>> x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    >>> random_flip(x, 0, p=1.0)[0, 0]
    array([[1., 0.],
           [3., 2.]], dtype=float32)
    """
    x = check_batch(x)
    rng = as_generator(rng)
    p = probability(p)
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
    x = check_batch(x)
    rng = as_generator(rng)
    out_h, out_w = size_pair(size, "size")
    pad = padding_pair(padding)
    if not is_number(fill):
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
