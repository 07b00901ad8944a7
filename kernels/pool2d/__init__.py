"""2-D max and average pooling, layout NCHW, with the semantics of torch.nn.functional.max_pool2d and
avg_pool2d (dilation 1, floor mode).

Six entry points, each taking the window as a ``kernels.PoolGeometry`` built (and validated) once,
e.g. by a layer at construction, checking the arrays on every call, and running the function of the
same name and arguments in the backend's module (IMPLEMENTATIONS: "numpy" reference.py, "cpu"
Numba-parallel cpu.py, "cuda" cuda.py; see :mod:`kernels.backend`)::

    max_forward(x, geometry)                 -> (y, argmax)
    max_values(x, geometry)                  -> y (max_forward's y, without the argmax)
    max_backward(g, argmax, input_shape)     -> dx
    max_scatter(g, x, geometry)              -> dx (max_backward's, the argmax found again from x)
    avg_forward(x, geometry)                 -> y
    avg_backward(g, input_shape, geometry)   -> dx

and their keyword forms, which build the geometry and call them::

    max_pool2d_forward(x, kernel_size, stride=, padding=)   -> (y, argmax)
    max_pool2d(x, kernel_size, stride=, padding=)           -> y
    max_pool2d_backward(g, argmax, input_shape)             -> dx
    avg_pool2d_forward(x, kernel_size, stride=, padding=)   -> y
    avg_pool2d_backward(g, input_shape, kernel_size, stride=, padding=) -> dx

Output size, along each axis (H with kh, sh, ph; W with kw, sw, pw)::

    Ho = floor((H + 2 ph - kh) / sh) + 1

A window of output (oh, ow) covers input rows oh * sh - ph ... oh * sh - ph + kh - 1 and the matching
columns; positions outside the input are padding.

Max pooling and its gradient. The source material (Tomasi, "Training Convolutional Neural Networks",
Appendix "The Jacobians for Back-Propagation", ReLU followed by max-pooling) writes the pooled value as
p_i = max over the window P(i) and notes that "only one of the activations (the one with the highest
value) in the window is relevant to the output": the Jacobian row of output i has a single 1, at
q^ = argmax over P(i). So the backward pass sends each output's gradient to that one input element, and
an element chosen by several overlapping windows (stride < kernel) receives the sum. Where the maximum
is tied, max-pooling has no derivative: Sec. 2 of the notes counts "the possible use of max-pooling"
among the pointwise "exceptions to differentiability", "typically ignored" or handled with
sub-gradients, and the appendix's footnote 2 says "In case of a tie, we attribute the highest values in
P(i) to one of the highest inputs, say, chosen at random". Any one of the maxima is a valid choice (a
subgradient); this toolkit picks, deterministically and on every backend, **the first maximum in
row-major order** within the window. NaN counts as larger than every number, so a NaN in a window
propagates to y (as in torch; with several NaNs torch may point argmax at a later one than the first).

Conventions shared with torch: max-pooling pads with -inf (padding never wins); padding may be at most
kernel_size // 2 on each axis (torch's rule, which guarantees every window holds a real element);
average pooling pads with zeros that *count* in the divisor (torch's default ``count_include_pad=True``):
every window is divided by kh * kw, also at the borders.

On backend "cuda" the arrays may be host (NumPy) arrays or numba CUDA device arrays: device in, device
out; host in, host out.

>>> import numpy as np
>>> from kernels.pool2d import max_pool2d_forward, max_pool2d_backward
>>> x = np.array([[1, 3, 2, 0],
...               [4, 2, 9, 9],
...               [0, 1, 5, 6],
...               [7, 7, 8, 2]], dtype=np.float32).reshape(1, 1, 4, 4)
>>> y, argmax = max_pool2d_forward(x, 2, backend="numpy")
>>> y[0, 0]
array([[4., 9.],
       [7., 8.]], dtype=float32)
>>> argmax[0, 0]       # flat index h * 4 + w; the tied 9s and 7s go to the first in row-major order
array([[ 4,  6],
       [12, 14]])
>>> max_pool2d_backward(np.ones_like(y), argmax, x.shape, backend="numpy")[0, 0]
array([[0., 0., 0., 0.],
       [1., 0., 1., 0.],
       [0., 0., 0., 0.],
       [1., 0., 1., 0.]], dtype=float32)
"""
from __future__ import annotations

import numpy as np

from .._checks import argmax_range_error, float_array, is_device_array, shape4
from ..backend import implementation, implementations
from ..options import PoolGeometry

__all__ = ["max_forward", "max_values", "max_backward", "max_scatter", "avg_forward", "avg_backward",
           "max_pool2d_forward", "max_pool2d", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"]


# --- the static dispatch table: backend name -> the module with this family's verbs there ------------

IMPLEMENTATIONS = implementations(__name__)


# --- array checks (every call): each error names the argument, what was expected and what came ------

def _geometry(geometry):
    if not isinstance(geometry, PoolGeometry):
        raise TypeError(f"geometry must be a kernels.PoolGeometry (built once, e.g. PoolGeometry(2)), "
                        f"got {type(geometry).__name__}")
    return geometry


def _checked_input(x, geometry, backend):
    """(the backend's module, x) for a forward pass: x a 4-D float array that the window fits."""
    geometry = _geometry(geometry)
    x = float_array(x, "x", 4)
    _output_shape(x.shape, geometry, "x")
    return implementation(IMPLEMENTATIONS, backend, x=x), x


def _output_shape(input_shape, geometry, of):
    """(N, C, Ho, Wo), each side floor((size + 2 padding - kernel) / stride) + 1, which must be >= 1."""
    n, c, h, w = input_shape
    return (n, c, *geometry.output_hw(h, w, of=of, channels=c))


def _argmax(argmax, g, input_shape, module):
    """argmax: int64, g's shape; on the host also every index inside the plane (0 <= i < H * W),
    checked here, except where the backend's ``module`` checks it itself while it reads argmax
    (``CHECKS_ARGMAX``: cpu.py)."""
    on_device = is_device_array(argmax)
    if not on_device:
        if not isinstance(argmax, np.ndarray):
            raise TypeError(f"argmax must be the int64 array max_pool2d_forward returned, got "
                            f"{type(argmax).__name__}")
        argmax = np.ascontiguousarray(argmax)
    if np.dtype(argmax.dtype) != np.int64:
        raise TypeError(f"argmax must be int64 (as max_pool2d_forward returns it), got {np.dtype(argmax.dtype)}")
    if tuple(argmax.shape) != tuple(g.shape):
        raise ValueError(f"argmax must have g's shape {tuple(g.shape)}, got {tuple(argmax.shape)}")
    plane = input_shape[2] * input_shape[3]
    checked_by_kernel = getattr(module, "CHECKS_ARGMAX", False)
    if not checked_by_kernel and not on_device and argmax.size and (argmax.min() < 0 or argmax.max() >= plane):
        raise argmax_range_error(argmax, input_shape)
    return argmax


# --- the entry points: a geometry built once ----------------------------------------------------------

def max_forward(x, geometry: PoolGeometry, *, backend=None):
    """Max pooling: ``(y, argmax)``; see max_pool2d_forward."""
    module, x = _checked_input(x, geometry, backend)
    return module.max_forward(x, geometry)


def max_values(x, geometry: PoolGeometry, *, backend=None):
    """Max pooling's ``y`` alone, the same bits as max_forward's (a forward pass that needs no argmax
    is spared writing it); see max_pool2d."""
    module, x = _checked_input(x, geometry, backend)
    return module.max_values(x, geometry)


def max_backward(g, argmax, input_shape, *, backend=None):
    """Gradient of max pooling: ``dx`` of shape ``input_shape``; see max_pool2d_backward."""
    g = float_array(g, "g", 4)
    input_shape = shape4(input_shape, "input_shape")
    if tuple(g.shape[:2]) != input_shape[:2]:
        raise ValueError(f"g must have the batch size and channels of input_shape {input_shape[:2]}, "
                         f"got g of shape {tuple(g.shape)}")
    module = implementation(IMPLEMENTATIONS, backend, g=g, argmax=argmax)
    return module.max_backward(g, _argmax(argmax, g, input_shape, module), input_shape)


def max_scatter(g, x, geometry: PoolGeometry, *, backend=None):
    """Gradient of max pooling from x itself: ``max_backward(g, max_forward(x, geometry)[1], x.shape)``, bit
    for bit, the argmax found again from x and never stored (as XLA's select-and-scatter). For the
    common 2x2 windows of stride 2 the "cpu" backend makes it in one pass over x and g.

    >>> import numpy as np
    >>> x = np.array([[[[1, 5], [5, 2]]]], np.float32)          # a tie: the first 5 wins
    >>> max_scatter(np.array([[[[3]]]], np.float32), x, PoolGeometry(2), backend="numpy")[0, 0]
    array([[0., 3.],
           [0., 0.]], dtype=float32)
    """
    geometry = _geometry(geometry)
    x = float_array(x, "x", 4)
    expected = _output_shape(x.shape, geometry, "x")
    g = float_array(g, "g", 4, dtype=x.dtype, like="x")
    if tuple(g.shape) != expected:
        raise ValueError(f"g must have the pooled shape {expected} of x, got {tuple(g.shape)}")
    return implementation(IMPLEMENTATIONS, backend, g=g, x=x).max_scatter(g, x, geometry)


def avg_forward(x, geometry: PoolGeometry, *, backend=None):
    """Average pooling (zero padding counted in the divisor); see avg_pool2d_forward."""
    module, x = _checked_input(x, geometry, backend)
    return module.avg_forward(x, geometry)


def avg_backward(g, input_shape, geometry: PoolGeometry, *, backend=None):
    """Gradient of average pooling: ``dx`` of shape ``input_shape``; see avg_pool2d_backward."""
    geometry = _geometry(geometry)
    g = float_array(g, "g", 4)
    input_shape = shape4(input_shape, "input_shape")
    expected = _output_shape(input_shape, geometry, "input_shape")
    if tuple(g.shape) != expected:
        raise ValueError(f"g must have the shape of the forward output {expected}, got {tuple(g.shape)}")
    return implementation(IMPLEMENTATIONS, backend, g=g).avg_backward(g, input_shape, geometry)


# --- the keyword functions: build the geometry, call the entry point -------------------------------

def max_pool2d_forward(x, kernel_size, *, stride=None, padding=0, backend=None):
    """Max pooling over kh x kw windows: ``(y, argmax)``, like torch's max_pool2d(return_indices=True).

    ``x`` (N, C, H, W) float32 or float64; ``kernel_size``, ``stride`` (default: kernel_size) and
    ``padding`` are ints or (h, w) pairs, padding <= kernel_size // 2 and implicitly -inf.
    ``y`` has shape (N, C, Ho, Wo) with Ho = floor((H + 2 ph - kh) / sh) + 1 (likewise Wo) and x's dtype;
    ``argmax`` (int64, same shape) holds the flat index h * W + w, inside its (n, c) plane of x, of the
    element each window chose. Ties: the first maximum in row-major order within the window (the
    source material's footnote allows any one of the maxima; see the module docstring).

    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, argmax = max_pool2d_forward(x, 3, stride=2, padding=1, backend="numpy")
    >>> y[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    return max_forward(x, PoolGeometry(kernel_size, stride, padding), backend=backend)


def max_pool2d(x, kernel_size, *, stride=None, padding=0, backend=None):
    """Max pooling's ``y`` alone, like torch's max_pool2d: max_pool2d_forward's first result.

    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> max_pool2d(x, 2, backend="numpy")[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    return max_values(x, PoolGeometry(kernel_size, stride, padding), backend=backend)


def max_pool2d_backward(g, argmax, input_shape, *, backend=None):
    """Gradient of max pooling with respect to its input: ``dx`` of shape ``input_shape``.

    ``g`` is the gradient of the loss with respect to y, ``argmax`` the indices max_pool2d_forward
    returned (int64, g's shape). Each g element is added to dx at the input element its window chose
    (dx[n, c].flat[argmax[n, c, oh, ow]] += g[n, c, oh, ow]); an element chosen by several overlapping
    windows gets the sum, and every other element gets 0. dx has g's dtype.

    >>> import numpy as np
    >>> x = np.array([[[[1, 5, 2],
    ...                 [3, 4, 0]]]], dtype=np.float32)
    >>> y, argmax = max_pool2d_forward(x, 2, stride=1, backend="numpy")   # two overlapping windows
    >>> y, argmax
    (array([[[[5., 5.]]]], dtype=float32), array([[[[1, 1]]]]))
    >>> max_pool2d_backward(np.array([[[[10, 1]]]], dtype=np.float32), argmax, x.shape, backend="numpy")
    array([[[[ 0., 11.,  0.],
             [ 0.,  0.,  0.]]]], dtype=float32)
    """
    return max_backward(g, argmax, input_shape, backend=backend)


def avg_pool2d_forward(x, kernel_size, *, stride=None, padding=0, backend=None):
    """Average pooling over kh x kw windows, like torch's avg_pool2d (count_include_pad=True).

    ``x`` (N, C, H, W) float32 or float64; ``kernel_size``, ``stride`` (default: kernel_size) and
    ``padding`` (zeros, at most kernel_size // 2) are ints or (h, w) pairs. ``y`` has shape
    (N, C, Ho, Wo), Ho = floor((H + 2 ph - kh) / sh) + 1 (likewise Wo): each window's sum divided by
    kh * kw, the padded zeros counted in the divisor (so border windows average in zeros).

    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    >>> avg_pool2d_forward(x, 2, backend="numpy")[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> avg_pool2d_forward(np.ones((1, 1, 2, 2)), 3, padding=1, stride=1, backend="numpy")[0, 0]
    array([[0.44444444, 0.44444444],
           [0.44444444, 0.44444444]])
    """
    return avg_forward(x, PoolGeometry(kernel_size, stride, padding), backend=backend)


def avg_pool2d_backward(g, input_shape, kernel_size, *, stride=None, padding=0, backend=None):
    """Gradient of average pooling with respect to its input: ``dx`` of shape ``input_shape``.

    Each window hands g / (kh * kw) to every one of its kh * kw positions (the padding's share is
    dropped); an input element in several overlapping windows gets the sum. ``g`` must have the forward
    output's shape (N, C, Ho, Wo), Ho = floor((H + 2 ph - kh) / sh) + 1. dx has g's dtype.

    >>> import numpy as np
    >>> g = np.array([[[[4., 8.]]]])
    >>> avg_pool2d_backward(g, (1, 1, 2, 4), 2, backend="numpy")
    array([[[[1., 1., 2., 2.],
             [1., 1., 2., 2.]]]])
    """
    return avg_backward(g, input_shape, PoolGeometry(kernel_size, stride, padding), backend=backend)
