"""Constructors: eye, zeros, ones, full, zeros_like, ones_like, full_like.

Each returns a Tensor that does not require grad, a constant of the graph (as ``jnp.zeros`` and
``torch.zeros``), so JAX's functional update works on it: ``a = ad.zeros(5); a = a.at[2].set(t)``
records the update and the gradient flows into t. A constant costs the sweeps nothing: they visit
only Tensors that require grad. ``requires_grad=True`` (PyTorch's keyword, on eye, zeros, ones and
full) makes a leaf instead. dtypes: float64 by default for eye, zeros and ones, NumPy's rule for
full (from fill_value), x's for the ``*_like``. Engine code that wants a plain array calls NumPy.
"""
from __future__ import annotations

import operator
import reprlib

import numpy as np

from ..primitives import broadcast_to, shape_of
from ..tensor import Tensor, value_of
from .arrays import astype


def _shape(shape, name, what="shape"):
    """A tuple of non-negative ints from an int or a sequence of ints (as NumPy), or a one-line error."""
    one = not isinstance(shape, (tuple, list)) and not (isinstance(shape, np.ndarray) and shape.ndim == 1)
    items = (shape,) if one else tuple(shape)
    try:
        if any(isinstance(n, (bool, np.bool_)) for n in items):
            raise TypeError
        dims = tuple(operator.index(n) for n in items)
    except TypeError:
        raise TypeError(f"{name}: {what} must be a non-negative int or a tuple of them, "
                        f"got {reprlib.repr(shape)}") from None
    if any(n < 0 for n in dims):
        raise ValueError(f"{name}: {what} must not be negative, got {reprlib.repr(shape)}")
    return dims


def _int(n, name, what, low=0):
    """An int (at least ``low`` unless None), or a one-line error naming the argument."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name}: {what} must be an int, got {reprlib.repr(n)}")
    if low is not None and n < low:
        raise ValueError(f"{name}: {what} must not be negative, got {n}")
    return int(n)


def _dtype(dtype, name):
    """``np.dtype(dtype)`` of a numeric dtype (what a Tensor holds), or a one-line error."""
    try:
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: dtype {reprlib.repr(dtype)} is not a NumPy dtype") from None
    if dtype.kind not in "biufc":
        raise TypeError(f"{name}: dtype must be numeric (bool, int, float or complex), got {dtype}")
    return dtype


def _dtype_of(x, name):
    """x's dtype (a Tensor's, an array's, a number's), without converting a value vmap maps."""
    v = value_of(x)
    dtype = v.dtype if hasattr(v, "dtype") else np.asarray(v).dtype
    if dtype.kind not in "biufc":
        raise TypeError(f"{name}: x must be a numeric array or Tensor, got dtype {dtype}")
    return dtype


def _made(name, make, requires_grad, blame):
    """The Tensor holding ``make()``: a constant, or a leaf with ``requires_grad=True``; NumPy's refusal
    (too big to address, 300 into an int8) in one line that names ``blame``, the arguments at fault."""
    if not isinstance(requires_grad, (bool, np.bool_)):
        raise TypeError(f"{name}: requires_grad must be True or False, got {reprlib.repr(requires_grad)}")
    try:
        value = make()
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{name}: {blame}: {exc}") from None
    if value.dtype.kind not in "biufc":         # an int past int64 without a dtype: NumPy makes objects
        raise ValueError(f"{name}: {blame}: does not fit a numeric dtype (got {value.dtype}); give a dtype")
    if requires_grad and value.dtype.kind not in "fc":
        raise TypeError(f"{name}: requires_grad=True needs a floating-point dtype, got {value.dtype}")
    return Tensor._make(value, requires_grad=bool(requires_grad))


def eye(n, m=None, k=0, dtype=np.float64, requires_grad=False):
    """The n x m identity (ones on the ``k``-th diagonal) as a Tensor, a constant (see the module).

    >>> import autodiff as ad
    >>> ad.eye(2, k=1)
    Tensor([[0., 1.],
            [0., 0.]])
    """
    n = _int(n, "eye", "n")
    m = n if m is None else _int(m, "eye", "m")
    k, dtype = _int(k, "eye", "k (the diagonal)", low=None), _dtype(dtype, "eye")
    return _made("eye", lambda: np.eye(n, m, k, dtype=dtype), requires_grad, f"n={n}, m={m}")


def zeros(shape, dtype=np.float64, requires_grad=False):
    """A Tensor of zeros, a constant (see the module): ``a = a.at[i].set(t)`` then records an update.

    >>> import autodiff as ad
    >>> ad.grad(lambda t: ad.sum(ad.zeros(3).at[1].set(t) * ad.Tensor([1.0, 5.0, 1.0])))(2.0)
    5.0
    """
    shape, dtype = _shape(shape, "zeros"), _dtype(dtype, "zeros")
    return _made("zeros", lambda: np.zeros(shape, dtype), requires_grad, f"shape {shape}")


def ones(shape, dtype=np.float64, requires_grad=False):
    """A Tensor of ones, a constant (see the module); ``requires_grad=True`` makes a leaf.

    >>> import autodiff as ad
    >>> w = ad.ones(2, requires_grad=True)
    >>> ad.sum(w * ad.Tensor([3.0, 4.0])).backward(); w.grad
    array([3., 4.])
    """
    shape, dtype = _shape(shape, "ones"), _dtype(dtype, "ones")
    return _made("ones", lambda: np.ones(shape, dtype), requires_grad, f"shape {shape}")


def _fill(fill_value, shape, name):
    """Check a number (or a numeric array that broadcasts to ``shape``, as in NumPy) to fill with."""
    try:
        value = np.asarray(fill_value)
    except (TypeError, ValueError):     # a ragged list
        value = np.asarray(None)
    if value.dtype.kind not in "biufc" and not isinstance(fill_value, int):     # (an int past int64: a number)
        raise TypeError(f"{name}: fill_value must be a number, got {reprlib.repr(fill_value)}")
    try:
        fits = np.broadcast_shapes(value.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: a fill_value of shape {value.shape} does not broadcast to {shape}")


def _blame(fill_value, shape, dtype):
    return f"fill_value {reprlib.repr(fill_value)} with shape {shape} and dtype {dtype}"


def full(shape, fill_value, dtype=None, requires_grad=False):
    """A Tensor of ``shape`` filled with ``fill_value``, a constant (see the module); its dtype is NumPy's
    (``full(2, 3)`` holds int64s). A Tensor fill_value is broadcast, so its gradient is the cotangent's sum.

    >>> import autodiff as ad
    >>> ad.full(2, 1.5), ad.full(2, 3).dtype
    (Tensor([1.5, 1.5]), dtype('int64'))
    """
    shape = _shape(shape, "full")
    dtype = None if dtype is None else _dtype(dtype, "full")
    if isinstance(fill_value, Tensor):
        if requires_grad:
            raise ValueError("full: requires_grad=True makes a new leaf; a Tensor fill_value keeps its own graph "
                             "(fill with a number for a leaf)")
        return _broadcast(fill_value, shape, dtype, "full")
    _fill(fill_value, shape, "full")
    return _made("full", lambda: np.full(shape, fill_value, dtype), requires_grad, _blame(fill_value, shape, dtype))


def _broadcast(fill_value, shape, dtype, name):
    """A Tensor fill_value in ``dtype`` broadcast to ``shape``: differentiable, the sum as gradient."""
    if dtype is not None and value_of(fill_value).dtype != dtype:
        fill_value = astype(fill_value, dtype)
    try:
        return broadcast_to(fill_value, shape=shape)
    except ValueError:
        raise ValueError(f"{name}: a fill_value of shape {shape_of(fill_value)} does not broadcast "
                         f"to {shape}") from None


def zeros_like(x, dtype=None):
    """Zeros of x's shape and dtype (x: a Tensor, an array, a number), a constant: its derivative
    with respect to x is 0.

    >>> import autodiff as ad
    >>> ad.zeros_like(ad.Tensor([1, 2]))
    Tensor([0, 0], dtype=int64)
    """
    dtype = _dtype_of(x, "zeros_like") if dtype is None else _dtype(dtype, "zeros_like")
    return _made("zeros_like", lambda: np.zeros(shape_of(x), dtype), False, f"shape {shape_of(x)}")


def ones_like(x, dtype=None):
    """Ones of x's shape and dtype (x: a Tensor, an array, a number), a constant.

    >>> import autodiff as ad
    >>> ad.ones_like(np.zeros(2, np.float32))
    Tensor([1., 1.], dtype=float32)
    """
    dtype = _dtype_of(x, "ones_like") if dtype is None else _dtype(dtype, "ones_like")
    return _made("ones_like", lambda: np.ones(shape_of(x), dtype), False, f"shape {shape_of(x)}")


def full_like(x, fill_value, dtype=None, shape=None):
    """An array of x's shape and dtype (or ``shape``/``dtype``) filled with ``fill_value``. Its derivative
    with respect to x is 0; a Tensor fill_value is broadcast, so its gradient is the sum of the cotangent.
    With a number: a Tensor that does not require grad, a constant.

    >>> import autodiff as ad
    >>> ad.grad(lambda c: ad.sum(ad.full_like(np.zeros((2, 3)), c)))(0.5)     # six copies of c
    6.0
    >>> ad.full_like(ad.Tensor([1.0, 2.0], requires_grad=True), 7.0)
    Tensor([7., 7.])
    """
    shape = shape_of(x) if shape is None else _shape(shape, "full_like")
    dtype = _dtype_of(x, "full_like") if dtype is None else _dtype(dtype, "full_like")
    if isinstance(fill_value, Tensor):
        return _broadcast(fill_value, shape, dtype, "full_like")
    _fill(fill_value, shape, "full_like")
    return _made("full_like", lambda: np.full(shape, fill_value, dtype), False, _blame(fill_value, shape, dtype))
