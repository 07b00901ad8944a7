"""Data augmentation (section 5.2.1): random flips, crops, rotations, shifts, scalings, shears, and
colour jittering (contrast, and AlexNet's PCA colour offsets) of NCHW image batches.

"Data augmentation is performed by making several copies from a single image using
straightforward operations such as rotations, cropping, flipping, scaling, translations and
shearing" (Figure 5.1); colour jittering, "random contrast jittering" or "a random offset along
the principal colour directions" found by PCA [Krizhevsky et al., 2012], adds colour and
illumination invariance.

Every augmentation is a function ``f(x, rng, ...)`` of a float batch ``x`` (N, C, H, W) and a
random source ``rng`` (a ``np.random.Generator``, an int seed, or None for nn's global generator,
the one ``nn.set_seed`` seeds), and returns a new array of
``x``'s dtype; ``x`` is never modified. Each image gets its own random parameters. A
:class:`Transform` fixes a function's parameters and is called as ``t(x, rng)``: ``RandomFlip``,
``RandomCrop``, ... are each a function and the checks of its arguments, nothing more; ``Compose``
chains them (``fit(..., augment=...)`` and ``nn.data.Batches`` take any of them):

>>> import numpy as np
>>> augment = Compose([RandomFlip(p=0.5), RandomCrop(8, padding=1), RandomRotation(10)])
>>> x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
>>> out = augment(x, np.random.default_rng(1))
>>> out.shape, out.dtype
((4, 1, 8, 8), dtype('float32'))
>>> bool((augment(x, np.random.default_rng(1)) == out).all())   # same seed, same result
True

One concern per module: ``geometric`` (the affine warp, rotations, shifts, scalings, shears,
flips, crops), ``colour`` (contrast and PCA colour jitter), ``transforms`` (``Transform`` and the
named transforms) and ``checks`` (the argument checks they share).
"""
from .colour import contrast_jitter, fit_colour_pca, pca_colour_jitter
from .geometric import (affine_matrix, affine_warp, random_affine, random_crop, random_flip, random_rotation,
                        random_scale, random_shear, random_shift)
from .transforms import (Compose, ContrastJitter, PCAColourJitter, RandomAffine, RandomCrop, RandomFlip,
                         RandomRotation, RandomScale, RandomShear, RandomShift, Transform)

__all__ = ["affine_warp", "affine_matrix", "random_affine", "random_flip", "random_crop",
           "random_rotation", "random_shift", "random_scale", "random_shear", "contrast_jitter",
           "fit_colour_pca", "pca_colour_jitter", "Transform", "Compose", "RandomFlip", "RandomCrop",
           "RandomRotation", "RandomShift", "RandomScale", "RandomShear", "RandomAffine",
           "ContrastJitter", "PCAColourJitter"]
