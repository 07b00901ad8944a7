"""The Tensor: one value in the computational graph, and the machinery that records the graph.

A Tensor wraps a NumPy array. Operations on Tensors that depend on a Tensor with
``requires_grad=True`` are *recorded* as they run (eager, like micrograd and PyTorch): the result
remembers the primitive that made it (``op``), its inputs and the primitive's static parameters.
That record is the computational graph of the source material's Fig. 5.8; the sweeps in
:mod:`autodiff.sweep` walk it backwards (reverse mode) and forwards (forward mode).

This module is the bottom rung of the engine (ARCHITECTURE.md): at run time it imports nothing of
autodiff. Tensor's arithmetic (``x + y``, ``x @ w``, ``x[i]``, ``x.sum()``) and ``backward()`` are the
ops and the sweep of the rungs above; :mod:`autodiff.operators` writes them in one class,
``TensorSyntax``, and binds them to this class when autodiff is imported. For static tools (an IDE,
a type checker) Tensor derives from ``TensorSyntax`` (a ``TYPE_CHECKING`` import, never run), so they
see every operator and method where it is written; tests/test_operators.py keeps the two views equal.

Operations whose arguments are plain numbers or arrays are *not* recorded: they return plain NumPy
values. The derivative rules rely on this: written once with the engine's own ops, they run on
plain arrays when no derivative of a derivative is wanted, and build a graph when one is.
"""
from __future__ import annotations

import functools
import itertools
import reprlib
import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:      # what static tools read: the operators and backward() of autodiff.operators
    from .operators import TensorSyntax as _Syntax
else:                  # at run time, autodiff.operators.bind() gives Tensor the same members
    _Syntax = object

_creation = itertools.count()  # creation order: inputs are always created before their results


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()

#: Anomaly mode's check ``_anomaly(result, prim, args)`` of every Tensor an op returns, set by
#: autodiff.anomaly while ``detect_anomaly`` is on; None otherwise (then one test per op is its cost).
_anomaly = None


class _GradSwitch:
    """Recording switched to ``_enabled`` inside ``with``, and around each call of a decorated function."""

    _enabled = False

    def __enter__(self):
        self._previous = _grad_mode.enabled
        _grad_mode.enabled = self._enabled
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous
        return False

    def __call__(self, func):
        enabled = self._enabled

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            previous, _grad_mode.enabled = _grad_mode.enabled, enabled
            try:
                return func(*args, **kwargs)
            finally:
                _grad_mode.enabled = previous

        return wrapper


class no_grad(_GradSwitch):
    """Context manager (and decorator) in which operations are not recorded.

    Inside ``with no_grad():`` results are plain Tensors with ``requires_grad=False``, as in
    ``torch.no_grad``. Use it for evaluation and for in-place parameter updates. ``enable_grad``
    (autodiff.grad_mode) switches recording back on inside it.

    >>> from autodiff import Tensor, no_grad, sin
    >>> x = Tensor(1.0, requires_grad=True)
    >>> with no_grad():
    ...     y = sin(x)
    >>> y.requires_grad
    False
    """


def is_grad_enabled() -> bool:
    """Whether operations on tracked Tensors are being recorded (False inside ``no_grad``)."""
    return _grad_mode.enabled


def _foreign(value) -> bool:
    """An array of another library that says which device it lives on (DLPack's ``__dlpack_device__``:
    a ``kernels.device.DeviceArray``, a CuPy or PyTorch array): kept as it is, where it is, never
    converted to NumPy (that would copy it off its device). The engine asks of it only ``shape``,
    ``dtype``, ``+`` (the sweep's accumulation) and what the primitives applied to it ask."""
    return not isinstance(value, np.ndarray) and (type(value) is Batched or hasattr(type(value), "__dlpack_device__"))


class Batched:
    """A value that ``vmap`` maps over: every example's value in ``data``, stacked along axis ``bdim``.

    To the engine it is one example's value (``shape`` leaves the batch axis out), kept in a Tensor like
    any other. ``apply`` runs a primitive on it by the primitive's batching rule, once for the whole
    batch (:mod:`autodiff.batching`, which also gives it operators and NumPy's protocols). ``level``
    numbers the map it belongs to, so that nested maps (``vmap(vmap(f))``) keep their axes apart: the
    data of an inner map's value may itself be an outer map's value.
    """

    __slots__ = ("data", "bdim", "level")

    def __init__(self, data, bdim: int, level: int):
        global batching_used
        self.data, self.bdim, self.level, batching_used = data, bdim, level, True

    @property
    def shape(self) -> tuple:
        s = self.data.shape
        return s[:self.bdim] + s[self.bdim + 1:]

    @property
    def batch_size(self) -> int:
        return self.data.shape[self.bdim]

    @property
    def dtype(self):
        return self.data.dtype

    # ndim, size, copy, repr, its operators and NumPy's protocols: bound by autodiff.batching


#: ``batch_apply(prim, values, params)``: the batching interpreter, set by autodiff.batching when imported.
batch_apply = None
#: Set when the process first makes a Batched value (vmap, jacobian): until then apply looks for none.
batching_used = False
#: True while autodiff.compile records f: a map's data are then Tensors of the recorded program, and the
#: batching rules record the whole batch's operations into it (see autodiff.batching); custom rules record
#: their forward pass into it, and a checkpoint is inlined (autodiff.custom, autodiff.remat).
compiling = False


def _check_numeric(arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{what} must be numeric (bool, int, float or complex); got dtype {arr.dtype}")


class Tensor(_Syntax):
    """A value in the computational graph.

    ``Tensor(value, requires_grad=False, name=None)`` copies ``value`` (a NumPy array or a Python or
    NumPy scalar) and keeps its dtype: Python floats become float64, Python ints int64, float32
    arrays stay float32. ``requires_grad=True`` makes it a leaf whose gradient ``backward()``
    accumulates into ``.grad``; only floating or complex dtypes can require gradients.
    ``Tensor(t)`` of a Tensor that is being recorded is refused (the copy would be cut from t's
    graph): ``t.detach()`` says that a constant is meant.

    >>> import numpy as np
    >>> from autodiff import Tensor
    >>> x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True, name="x")
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    array([2., 4.], dtype=float32)
    """

    __slots__ = ("_value", "requires_grad", "grad", "name", "op", "inputs", "params", "_retains_grad",
                 "_seq", "_hooks", "__weakref__")

    # NumPy functions and ufuncs on Tensors run the engine's ops: autodiff.operators binds
    # __array_ufunc__ and __array_function__ (from autodiff.interop), as it binds the operators.

    def __init__(self, value, requires_grad: bool = False, name: str | None = None):
        if not isinstance(requires_grad, (bool, np.bool_)):   # 'no' is truthy: it asked for gradients
            raise TypeError(f"Tensor: requires_grad must be True or False, got {requires_grad!r}")
        if isinstance(value, Tensor):
            _refuse_detaching(value, "Tensor()")  # a new leaf would be cut from value's graph
            value = value._value
        # a copy: later changes to the caller's array do not reach the graph
        try:
            arr = value.copy() if _foreign(value) else np.array(value)
        except ValueError as exc:         # a ragged nested list: NumPy's words do not say which argument
            raise ValueError(f"Tensor value must be a number or a (rectangular) array: {exc}") from None
        _check_numeric(arr, "Tensor value")
        if requires_grad and arr.dtype.kind not in "fc":
            raise TypeError(
                f"requires_grad=True needs a floating-point dtype; got {arr.dtype}. "
                f"Pass a float (e.g. 3.0 instead of 3) or convert with .astype(np.float64)."
            )
        self._value = arr
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.name = name
        self.op = None
        self.inputs = ()
        self.params = {}
        self._retains_grad = False
        self._seq = next(_creation)
        self._hooks = None      # register_hook's functions (autodiff.operators), run by the reverse sweep

    # --- construction without copies, used by the engine -------------------------------------
    @classmethod
    def _make(cls, value, op=None, inputs=(), params=None, requires_grad=False, name=None):
        t = object.__new__(cls)
        t._value = value if type(value) is np.ndarray or (not isinstance(value, np.generic) and _foreign(value)) \
            else np.asarray(value)
        t.requires_grad = requires_grad
        t.grad = None
        t.name = name
        t.op = op
        t.inputs = inputs
        t.params = params if params is not None else {}
        t._retains_grad = False
        t._seq = next(_creation)
        t._hooks = None
        return t

    # --- the value ---------------------------------------------------------------------------
    @property
    def value(self) -> np.ndarray:
        """The NumPy array this Tensor holds (not a copy: do not modify it in place)."""
        return self._value

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    @property
    def is_leaf(self) -> bool:
        """True for Tensors the user created (and constants); False for recorded results."""
        return self.op is None

    def item(self):
        """The value of a one-element Tensor as a Python number: an explicit way out of the graph
        (as PyTorch's ``.item()``), for printing a loss or logging it."""
        return self._value.item()

    def numpy(self) -> np.ndarray:
        """The value as a NumPy array; refused on a Tensor being recorded, as PyTorch's ``numpy()``."""
        _refuse_detaching(self, "numpy()")
        return self._value

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)``. Refused on a Tensor that requires grad while recording (PyTorch's rule):
        the array would be a constant and every gradient through it silently zero. ``t.detach()``
        or ``t.value`` say that a constant is meant."""
        _refuse_detaching(self, "np.asarray()")
        if type(self._value) is Batched:     # under vmap: refused, with vmap's words
            return self._value.__array__()
        if copy:
            return np.array(self._value, dtype=dtype, copy=True)
        return self._value if dtype is None else self._value.astype(dtype, copy=False)

    def __len__(self):
        if self._value.ndim == 0:
            raise TypeError("len() of a 0-d Tensor")
        return len(self._value)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __float__(self):
        """``float(t)``, and with it ``math.sin(t)``, ``math.exp(t)``...: refused (a TypeError, not a
        warning) on a Tensor being recorded. Python's ``math`` functions convert their argument with
        ``float()``, so the result would be a constant and the gradient silently zero; a warning is
        easy to miss, and a wrong gradient is the worst result a checking toolkit can give. Use
        ``autodiff.sin(t)`` to stay in the graph, ``t.item()`` for the number. ``int()`` and
        ``bool()`` are allowed: their results have no derivative to lose."""
        _refuse_detaching(self, "float()")
        return float(self._value)

    def __format__(self, spec):
        """``f"{loss:.4f}"`` formats the value (a string carries no gradient, so nothing is lost)."""
        if spec and self._value.ndim == 0:
            return format(self._value.item(), spec)
        return format(str(self), spec)

    def __int__(self):
        return int(self._value)

    def __bool__(self):
        return bool(self._value)

    __hash__ = object.__hash__

    def __repr__(self):
        body = repr(self._value) if _foreign(self._value) else np.array2string(self._value, separator=", ",
                                                                               prefix="Tensor(")
        extras = []
        if self.op is not None:
            extras.append(f"op={self.op.name!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name is not None:
            extras.append(f"name={self.name!r}")
        if self._value.dtype != np.float64:
            extras.append(f"dtype={self._value.dtype}")
        return "Tensor(" + ", ".join([body] + extras) + ")"

    # --- graph utilities ---------------------------------------------------------------------
    def detach(self) -> "Tensor":
        """A new leaf with the same value (shared, not copied) that is cut from the graph."""
        return Tensor._make(self._value, name=self.name)

    def retain_grad(self) -> "Tensor":
        """Make ``backward()`` also store this non-leaf's adjoint in ``.grad`` (as in PyTorch)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad(): this Tensor does not require grad, so it has no adjoint")
        self._retains_grad = True
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (sets ``.grad`` to None)."""
        self.grad = None

    # --- comparisons: plain boolean arrays, not differentiable -------------------------------
    # (the differentiable operators and backward() are bound by autodiff.operators)
    def __lt__(self, other):
        return self._value < value_of(other)

    def __le__(self, other):
        return self._value <= value_of(other)

    def __gt__(self, other):
        return self._value > value_of(other)

    def __ge__(self, other):
        return self._value >= value_of(other)

    def __eq__(self, other):
        return self._value == value_of(other)

    def __ne__(self, other):
        return self._value != value_of(other)


def _refuse_detaching(t: "Tensor", what: str) -> None:
    """Raise when converting ``t`` would cut a recorded Tensor out of the graph without saying so."""
    if t.requires_grad and _grad_mode.enabled:
        raise TypeError(
            f"Can't call {what} on a Tensor that requires grad: the result would be a constant, every gradient "
            f"through it silently zero (math.* call float(); a[...] = t into a NumPy array writes a constant: use a "
            f"Tensor and .at[...].set(t): b = ad.Tensor(a).at[rows, cols].set(t)). Use t.detach(), t.value or t.item() "
            f"for a constant, or the autodiff op (autodiff.sin, autodiff.logsumexp, ...) to stay in the graph.")


def value_of(x):
    """The NumPy value behind ``x``: ``x.value`` for a Tensor, ``x`` itself otherwise.

    Derivative rules use it for quantities that are constants of the rule (masks, signs, counts).
    """
    return x._value if isinstance(x, Tensor) else x


def every_example(x):
    """The array behind ``x`` with every example of every vmap level in it (Batched data unwrapped)."""
    v = value_of(x)
    while type(v) is Batched:
        v = v.data
    return v


def apply(prim, args, params):
    """Run primitive ``prim`` on ``args``; record a graph node when a tracked Tensor is among them.

    - no Tensor among ``args``: the value, a plain NumPy array or scalar (nothing recorded);
    - Tensors, none tracked (or inside ``no_grad``): an untracked Tensor;
    - a tracked Tensor: a new node whose ``op`` is ``prim``. Plain arguments become constant
      leaves; a Python scalar takes the result's dtype, so float32 stays float32.
    """
    values, has_tensor, tracked, all_tensors = [], False, False, True
    for a in args:
        if isinstance(a, Tensor):
            has_tensor, tracked = True, tracked or a.requires_grad
            values.append(a._value)
        else:
            all_tensors = False
            values.append(a)
    if batching_used and _batched(prim, values, params):    # under vmap: the primitive's batching rule, once
        return _apply_batched(prim, args, values, params, has_tensor, tracked, all_tensors)
    if not has_tensor:
        return prim.impl(*values, **params)
    try:
        out = prim.impl(*values, **params) if params else prim.impl(*values)
    except (ValueError, TypeError, OverflowError) as exc:  # NumPy's words, re-raised with the op, shapes, options
        if str(exc).startswith(prim.name):     # the op's own words already name it
            raise
        shapes = " and ".join(str(np.shape(v)) for v in values)
        options = ", ".join(f"{k}={reprlib.repr(v)}" for k, v in params.items())   # the argument at fault too
        message = f"{prim.name}: cannot apply to shapes {shapes}{f' with {options}' if options else ''}: {exc}"
        kind = ValueError if isinstance(exc, OverflowError) else type(exc)   # an int past C's long: a value
        try:
            new = kind(message)
        except TypeError:              # a class with its own constructor (NumPy's _UFuncNoLoopError): its base
            new = (TypeError if isinstance(exc, TypeError) else ValueError)(message)
        raise new from None
    if not tracked and _anomaly is None:      # Tensors, none tracked: no node to record
        return Tensor._make(out)
    return _record(prim, args, params, out, tracked, all_tensors)


def _batched(prim, values, params):
    """Whether a value (or, for getitem's index, a parameter: x[labels]) is vmap's."""
    return any(type(v) is Batched for v in values) or prim.batched_params and any(type(v) is Batched or (type(v) is tuple and Batched in map(type, v))
                                       for v in params.values())


def _record(prim, args, params, out, tracked, all_tensors):
    if not (tracked and _grad_mode.enabled):
        result = Tensor._make(out)
    else:
        if not all_tensors:
            args = tuple([a if isinstance(a, Tensor) else _constant(a, out.dtype) for a in args])
        result = Tensor._make(out, prim, args, params, requires_grad=True)
    if _anomaly is not None:    # detect_anomaly: a non-finite value stops here; a node notes the user's line
        _anomaly(result, prim, args)
    return result


def _apply_batched(prim, args, values, params, has_tensor, tracked, all_tensors):
    if compiling:      # the same value for every example enters the recorded program as its node
        values = [a if isinstance(a, Tensor) and type(v) is not Batched else v for a, v in zip(args, values)]
    out = batch_apply(prim, values, params)
    return _record(prim, args, params, out, tracked, all_tensors) if has_tensor else out


def _constant(x, dtype) -> Tensor:
    """A constant leaf for a plain argument. Python scalars take the result's dtype (weak typing)."""
    if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
        if dtype.kind in "fc":
            return Tensor._make(np.asarray(x, dtype=dtype))
    return Tensor._make(x)  # _make keeps a foreign (device) array where it is, and np.asarray's the rest
