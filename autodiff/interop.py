"""NumPy on Tensors: ``np.sin(t)``, ``np.sum(t)``, ``np.linalg.det(t)`` run the engine's ops, so a
NumPy call never cuts a Tensor out of the graph without saying so.

NumPy hands a call whose arguments include a Tensor to the Tensor (NEP 13 for ufuncs, NEP 18 for
the other functions). ``array_ufunc`` and ``array_function`` below answer it, and
:mod:`autodiff.operators` binds them as ``Tensor.__array_ufunc__`` and ``Tensor.__array_function__``:

- a function with an engine equivalent runs that op (``np.sin`` -> ``sin``, ``np.einsum`` ->
  ``einsum``, ``np.linalg.norm`` -> ``norm``), with NumPy's arguments where the op supports them
  and a TypeError naming the argument where it does not (``out=``: a Tensor is never written into);
- a function whose result has no derivative (comparisons, ``np.shape``, ``np.argmax``,
  ``np.floor``...) runs on the values and returns a plain array: nothing is lost;
- any other function raises a TypeError naming the way out when a Tensor in its arguments is being
  recorded (it requires grad, outside ``no_grad``): computed on the values, its result would be a
  constant and every gradient through it silently zero. On Tensors that are not being recorded it
  runs on the values (there is no gradient to lose) and returns a plain array.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .tensor import Tensor, is_grad_enabled


def recording(x) -> bool:
    """Whether ``x`` is a Tensor whose operations are being recorded (requires grad, grad mode on)."""
    return isinstance(x, Tensor) and x.requires_grad and is_grad_enabled()


def _any_recording(obj) -> bool:
    if isinstance(obj, (list, tuple)):
        return any(_any_recording(o) for o in obj)
    if isinstance(obj, dict):
        return any(_any_recording(o) for o in obj.values())
    return recording(obj)


def _values(obj):
    """``obj`` with every Tensor replaced by its value (inside lists, tuples and dicts too)."""
    if isinstance(obj, Tensor):
        return obj._value
    if isinstance(obj, list):
        return [_values(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_values(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _values(o) for k, o in obj.items()}
    return obj


def _name(func) -> str:
    """'np.sort', 'np.linalg.svd', 'np.fft.fft': the public spelling of a NumPy function."""
    module = getattr(func, "__module__", None) or "numpy"
    parts = ["np"] + [p for p in module.split(".")[1:] if not p.startswith("_")]
    return ".".join(parts + [getattr(func, "__name__", repr(func))])


def _no_equivalent(name, hint=None):
    return TypeError(f"{name} has no autodiff equivalent, and on a Tensor that requires grad it would return a "
                     f"constant: every gradient through it would be silently zero. "
                     + (hint or "Write it with autodiff's ops (or declare it with autodiff.primitive), or pass "
                                "t.detach() (or t.value) if you mean its value as a constant."))


# --------------------------------------------------------------------------------------------
# ufuncs (np.sin, np.add, ndarray + Tensor, ...)

def _power(x, y):
    if not isinstance(y, Tensor) and np.ndim(y) == 0:
        return ops.pow_const(x, p=y.item() if isinstance(y, np.generic) else y)
    return ops.pow(x, y)


UFUNCS = {
    np.add: ops.add, np.subtract: ops.sub, np.multiply: ops.mul, np.divide: ops.div, np.negative: ops.neg,
    np.positive: lambda x: x, np.power: _power, np.exp: ops.exp, np.log: ops.log, np.sin: ops.sin,
    np.cos: ops.cos, np.tan: ops.tan, np.tanh: ops.tanh, np.sqrt: ops.sqrt, np.absolute: ops.abs,
    np.fabs: ops.abs, np.maximum: ops.maximum, np.minimum: ops.minimum, np.matmul: ops.matmul,
    np.sign: ops.sign, np.square: lambda x: ops.pow_const(x, p=2),
    np.reciprocal: lambda x: ops.div(1, x),
    np.log1p: ops.log1p, np.expm1: ops.expm1, np.arctan2: ops.arctan2, np.hypot: ops.hypot,
    np.logaddexp: ops.logaddexp,
    np.vecdot: lambda a, b: ops.sum(a * b, axis=-1),  # real vectors along the last axis
}

#: ufunc methods with an engine equivalent: np.add.reduce(t, axis=0) is sum(t, axis=0), ...
UFUNC_METHODS = {
    (np.add, "reduce"): ops.sum, (np.multiply, "reduce"): ops.prod, (np.maximum, "reduce"): ops.max,
    (np.minimum, "reduce"): ops.min, (np.add, "accumulate"): ops.cumsum, (np.multiply, "accumulate"): ops.cumprod,
}

#: Float-valued ufuncs that are piecewise constant: their derivative is 0 wherever it exists.
PIECEWISE_CONSTANT = {np.floor, np.ceil, np.trunc, np.rint, np.floor_divide}


#: Set by autodiff.compiler.guards while compile records f: ``hook(func, name, args)`` answers a NumPy call on
#: a traced value that has no engine equivalent (a comparison is recorded; a function reading values refused),
#: or gives NotImplemented in a thread that is not recording.
compile_hook = None

#: Functions of shapes and dtypes only: they read no value, so compile lets them see a traced one.
STATIC = {np.shape, np.ndim, np.size, np.iscomplexobj, np.isrealobj, np.zeros_like, np.ones_like, np.empty_like,
          np.result_type, np.can_cast, np.min_scalar_type, np.array_repr, np.array_str, np.array2string}


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """``Tensor.__array_ufunc__``: a NumPy ufunc applied to Tensors (see the module's docstring)."""
    if not kwargs and method == "__call__":      # np.tanh(t): the engine's op, straight away
        op = UFUNCS.get(ufunc)
        if op is not None:
            return op(*inputs)
    name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    tracked = _any_recording(inputs)
    out = kwargs.get("out")
    if out is not None and (tracked or _any_recording(out) or any(isinstance(o, Tensor) for o in out)):
        raise TypeError(f"{name}(..., out=...): a Tensor is never written into (the graph keeps the values it "
                        f"saved), and writing a recorded result into an array would cut it from the graph; "
                        f"assign the result instead: y = {name}(...)")
    if tracked and kwargs and kwargs.keys() - {"axis", "keepdims"}:
        raise TypeError(f"{name}: the arguments {sorted(kwargs.keys() - {'axis', 'keepdims'})} are not supported "
                        f"on a Tensor that requires grad")
    if (ufunc, method) in UFUNC_METHODS and out is None and not kwargs.keys() - {"axis", "keepdims"}:
        params = {"axis": kwargs.get("axis", 0)}
        if method == "reduce" and "keepdims" in kwargs:
            params["keepdims"] = kwargs["keepdims"]
        return UFUNC_METHODS[(ufunc, method)](*inputs, **params)
    if compile_hook is not None and tracked:
        answer = compile_hook(ufunc if method == "__call__" and not kwargs else None, name, inputs)
        if answer is not NotImplemented:       # (NotImplemented: not the thread that records)
            return answer
    if not tracked or ufunc in PIECEWISE_CONSTANT:
        return getattr(ufunc, method)(*_values(inputs), **_values(kwargs))
    with np.errstate(all="ignore"):  # computed only to see whether it has a derivative at all
        result = getattr(ufunc, method)(*_values(inputs), **_values(kwargs))
    if _no_derivative(result):
        return result
    raise _no_equivalent(name)


def _no_derivative(result) -> bool:
    """A bool or integer result (a comparison, a test, an index) has no derivative to lose."""
    results = result if isinstance(result, tuple) else (result,)
    return all(np.asarray(r).dtype.kind in "biu" for r in results)


# --------------------------------------------------------------------------------------------
# other NumPy functions (np.sum, np.einsum, np.linalg.det, ...)

_NO_VALUE = getattr(np, "_NoValue", None)


def _refuse(name, **given):
    """TypeError for NumPy arguments the engine's op does not take: ``key=(value, default)``."""
    for key, (value, default) in given.items():
        if value is _NO_VALUE or value is default or (isinstance(default, str) and value == default):
            continue
        if key == "out":
            raise TypeError(f"{name}(..., out=...): a Tensor's result is a new Tensor, never written into an "
                            f"array; assign it instead: y = {name}(...)")
        raise TypeError(f"{name}: the argument {key}={value!r} is not supported on Tensors "
                        f"(autodiff's {name.rsplit('.', 1)[-1]} takes the others)")


def _cast(x, dtype):
    return x if dtype is None else ops.astype(x, dtype)


def _reduction(op, name, with_dtype=True):
    def handler(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NO_VALUE, where=_NO_VALUE):
        _refuse(name, out=(out, None), initial=(initial, _NO_VALUE), where=(where, _NO_VALUE))
        if keepdims is _NO_VALUE:
            keepdims = False
        return op(_cast(a, dtype), axis=axis, keepdims=bool(keepdims))

    def handler_without_dtype(a, axis=None, out=None, keepdims=False, initial=_NO_VALUE, where=_NO_VALUE):
        return handler(a, axis, None, out, keepdims, initial, where)

    return handler if with_dtype else handler_without_dtype


def _mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=_NO_VALUE):
    _refuse("np.mean", out=(out, None), where=(where, _NO_VALUE))
    return ops.mean(_cast(a, dtype), axis=axis, keepdims=bool(keepdims is not _NO_VALUE and keepdims))


def _spread(op, name):
    def handler(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=_NO_VALUE, **kwargs):
        _refuse(name, out=(out, None), where=(where, _NO_VALUE))
        if kwargs:
            raise TypeError(f"{name}: the arguments {sorted(kwargs)} are not supported on Tensors")
        return op(_cast(a, dtype), axis=axis, ddof=ddof, keepdims=bool(keepdims is not _NO_VALUE and keepdims))
    return handler


def _running(op, name):
    def handler(a, axis=None, dtype=None, out=None):
        _refuse(name, out=(out, None))
        return op(_cast(a, dtype), axis=axis)
    return handler


def _einsum(*operands, out=None, dtype=None, order="K", casting="safe", optimize="greedy"):
    _refuse("np.einsum", out=(out, None), dtype=(dtype, None))
    if not operands or not isinstance(operands[0], str):
        raise TypeError("np.einsum on Tensors takes the subscripts string first ('ij,jk->ik', a, b), "
                        "not the interleaved (operand, sublist) form")
    return ops.einsum(*operands, optimize=optimize)


def _where(condition, *xy):
    if not xy:  # np.where(cond): the indices of the true entries, no derivative
        return np.where(_values(condition))
    if len(xy) != 2:
        raise TypeError("np.where takes a condition alone, or a condition with x and y")
    return ops.where(condition, *xy)


def _joining(op, name):
    def handler(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
        _refuse(name, out=(out, None), dtype=(dtype, None))
        arrays = list(arrays)
        if axis is None:
            return op([ops.ravel(a) for a in arrays], axis=0)
        return op(arrays, axis=axis)
    return handler


def _at_least_2d(a):
    nd = np.ndim(a)
    return a if nd >= 2 else ops.reshape(a, (1,) * (2 - nd) + tuple(np.shape(a)))


def _hstack(tup, *, dtype=None, casting="same_kind"):
    _refuse("np.hstack", dtype=(dtype, None))
    arrays = [a if np.ndim(a) else ops.reshape(a, (1,)) for a in tup]
    return ops.concatenate(arrays, axis=0 if np.ndim(arrays[0]) == 1 else 1)


def _vstack(tup, *, dtype=None, casting="same_kind"):
    _refuse("np.vstack", dtype=(dtype, None))
    return ops.concatenate([_at_least_2d(a) for a in tup], axis=0)


def _clip(a, a_min=_NO_VALUE, a_max=_NO_VALUE, out=None, *, min=_NO_VALUE, max=_NO_VALUE, **kwargs):
    _refuse("np.clip", out=(out, None))
    low = min if a_min is _NO_VALUE else a_min
    high = max if a_max is _NO_VALUE else a_max
    low, high = (None if v is _NO_VALUE else v for v in (low, high))
    if isinstance(low, Tensor) or isinstance(high, Tensor) or np.ndim(low) or np.ndim(high):
        bounded = a if low is None else ops.maximum(a, low)
        return bounded if high is None else ops.minimum(bounded, high)
    return ops.clip(a, a_min=low, a_max=high)


def _cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is None:
        if not axisa == axisb == axisc:
            raise TypeError("np.cross on Tensors takes one axis for all three vectors (axis=...)")
        axis = axisa
    return ops.cross(a, b, axis=axis)


def _with_out(op, name):
    def handler(*args, out=None, **kwargs):
        _refuse(name, out=(out, None))
        return op(*args, **kwargs)
    return handler


def _reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    _refuse("np.reshape", order=(order, "C"))
    return ops.reshape(a, shape=shape if newshape is None else newshape)


def _ravel(a, order="C"):
    _refuse("np.ravel", order=(order, "C"))
    return ops.ravel(a)


def _take(a, indices, axis=None, out=None, mode="raise"):
    _refuse("np.take", out=(out, None), mode=(mode, "raise"))
    return ops.take(a, indices, axis)


def _pad(array, pad_width, mode="constant", **kwargs):
    if kwargs.keys() - {"constant_values"}:
        raise TypeError(f"np.pad: the arguments {sorted(kwargs.keys() - {'constant_values'})} are not supported on Tensors")
    return ops.pad(array, pad_width, mode, **kwargs)


def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _refuse("np.trace", out=(out, None))
    return ops.trace(_cast(a, dtype), offset, axis1, axis2)


def _vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    if axis is None:  # over all the elements, as if flattened
        out = ops.norm(ops.ravel(x), ord)
        return ops.reshape(out, (1,) * np.ndim(x)) if keepdims else out
    if not isinstance(axis, (int, np.integer)):
        if len(axis) != 1:
            raise TypeError("np.linalg.vector_norm on Tensors takes one axis (or None); reshape for several")
        (axis,) = axis
    return ops.norm(x, ord, axis, keepdims)


def _matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return ops.norm(x, ord, (-2, -1), keepdims)


def _full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None):
    """ad.full_like; with a number fill_value the plain array, as np.zeros_like's (no derivative to keep)."""
    _refuse("np.full_like", order=(order, "K"))
    out = ops.full_like(a, fill_value, dtype, shape)
    return out if isinstance(fill_value, Tensor) else out.value


FUNCTIONS = {
    np.sum: _reduction(ops.sum, "np.sum"), np.prod: _reduction(ops.prod, "np.prod"),
    np.max: _reduction(ops.max, "np.max", False), np.min: _reduction(ops.min, "np.min", False),
    np.amax: _reduction(ops.max, "np.amax", False), np.amin: _reduction(ops.min, "np.amin", False),
    np.mean: _mean, np.var: _spread(ops.var, "np.var"), np.std: _spread(ops.std, "np.std"),
    np.cumsum: _running(ops.cumsum, "np.cumsum"), np.cumprod: _running(ops.cumprod, "np.cumprod"),
    np.einsum: _einsum, np.where: _where, np.clip: _clip, np.cross: _cross, np.trace: _trace,
    np.concatenate: _joining(ops.concatenate, "np.concatenate"), np.stack: _joining(ops.stack, "np.stack"),
    np.dot: _with_out(ops.dot, "np.dot"), np.outer: _with_out(ops.outer, "np.outer"),
    np.reshape: _reshape, np.take: _take, np.pad: _pad, np.hstack: _hstack, np.vstack: _vstack,
    np.inner: ops.inner, np.vdot: ops.vdot, np.tensordot: ops.tensordot,
    np.linalg.norm: ops.norm, np.linalg.det: ops.det, np.linalg.inv: ops.inv, np.linalg.solve: ops.solve,
    np.transpose: lambda a, axes=None: ops.transpose(a, axes=None if axes is None else tuple(axes)),
    np.ravel: _ravel,
    np.squeeze: ops.squeeze, np.expand_dims: ops.expand_dims, np.moveaxis: ops.moveaxis,
    np.swapaxes: ops.swapaxes, np.flip: ops.flip, np.roll: ops.roll, np.take_along_axis: ops.take_along_axis,
    np.diagonal: ops.diagonal, np.triu: ops.triu, np.tril: ops.tril,
    np.vander: ops.vander, np.tile: ops.tile, np.repeat: ops.repeat, np.diag: ops.diag, np.full_like: _full_like,
    np.linalg.slogdet: ops.slogdet,
    np.broadcast_to: lambda array, shape, subok=False: ops.broadcast_to(array, shape=tuple(np.atleast_1d(shape))),
    # NumPy 2's array-API spellings in np.linalg
    np.linalg.vector_norm: _vector_norm, np.linalg.matrix_norm: _matrix_norm, np.linalg.matmul: ops.matmul,
    np.linalg.cross: lambda x1, x2, /, *, axis=-1: ops.cross(x1, x2, axis=axis), np.linalg.outer: ops.outer,
    np.linalg.trace: lambda x, /, *, offset=0, dtype=None: ops.trace(_cast(x, dtype), offset, -2, -1),
    np.linalg.tensordot: ops.tensordot,
}

#: Functions whose result has no derivative (shapes, tests, indices, arrays built from a shape):
#: run on the values, nothing is lost.
NO_DERIVATIVE = {
    np.shape, np.ndim, np.size, np.iscomplexobj, np.isrealobj, np.zeros_like, np.ones_like, np.empty_like,
    np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero, np.flatnonzero, np.count_nonzero,
    np.allclose, np.isclose, np.array_equal, np.array_equiv, np.any, np.all, np.searchsorted,
    np.array_repr, np.array_str, np.array2string, np.result_type, np.can_cast, np.min_scalar_type,
}

#: Where a NumPy function has a close autodiff spelling, the error says it.
HINTS = {
    np.sort: "Sort with indices instead: i = np.argsort(t.value); t[i] is differentiable.",
    np.fft.fft: "autodiff has no FFT primitive; declare one with autodiff.primitive.",
    np.column_stack: "Use autodiff.stack(..., axis=1) (or autodiff.concatenate for 2-d arrays).",
}


def array_function(self, func, types, args, kwargs):
    """``Tensor.__array_function__``: a NumPy function called with Tensors (see the module's docstring)."""
    handler = FUNCTIONS.get(func)
    if handler is not None:
        return handler(*args, **kwargs)
    tracked = _any_recording(args) or _any_recording(kwargs)
    if compile_hook is not None and tracked and func not in STATIC:
        answer = compile_hook(func, _name(func), args)
        if answer is not NotImplemented:
            return answer
    if func in NO_DERIVATIVE or not tracked:
        return func(*_values(args), **_values(kwargs))
    raise _no_equivalent(_name(func), HINTS.get(func))
