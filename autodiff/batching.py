"""Batching: vmap's transformation. A primitive applied to mapped values runs once for the whole batch.

Under ``vmap`` each mapped argument is a :class:`~autodiff.tensor.Batched` value (every example along one
axis) inside an ordinary Tensor, so ``f`` is called once, with one example's shapes. ``apply`` hands a
primitive with a Batched input to :func:`batch_apply`, which reads the primitive's rule in
:data:`autodiff.primitives.batch_rules` (JAX's batching interpreter): the rule runs the primitive on the
stacked data and says where the batch axis of the result is. The derivative rules are written with the
engine's ops, so the sweeps batch the same way: ``vmap(grad(loss))`` is one forward and one reverse
sweep over the whole batch, each adjoint a Batched value, which gives per-example gradients.

A primitive without a rule runs once per example (the reference semantics, slower), and vmap says which
with a :class:`BatchingWarning`. NumPy called on a Batched value inside a rule (a mask, a zero) is
answered here too: ufuncs are batched, other functions run once per example.

Nested maps have levels: a value of an inner map holds, as its data, a value of the outer map, and each
rule manipulates its data with the engine's ops (so an outer level batches them in turn) or, for plain
arrays, with NumPy directly.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np

from . import ops, sweep, tensor
from .operators import TensorSyntax
from .primitives import Primitive, batch_rules
from .tensor import Batched, Tensor, apply, every_example, is_grad_enabled

_levels = itertools.count(1)
_warned: set = set()


class BatchingWarning(UserWarning):
    """A primitive without a batching rule ran once per example under vmap."""


_active: set = set()


def new_level() -> int:
    """A fresh level for one call of a mapped function (levels grow, so an inner map is above its outer),
    active until :func:`forget_level`."""
    level = next(_levels)
    _active.add(level)
    return level


def forget_level(level: int) -> None:
    """The map has returned: forget which primitives were reported for it."""
    _active.discard(level)
    for key in [k for k in _warned if k[0] == level]:
        _warned.discard(key)


# --------------------------------------------------------------------------------------------
# The data of a level: NumPy for plain arrays, the engine's ops for an outer map's values

def ndim_of(x) -> int:
    """Dimensions of one example's value (a Batched value's logical shape, or an array's shape)."""
    return len(getattr(x, "shape", np.shape(x)))


def to_front(d, bdim):
    if bdim == 0:
        return d
    return np.moveaxis(d, bdim, 0) if type(d) is np.ndarray else ops.moveaxis(d, bdim, 0)


def move(d, source, destination):
    if source == destination:
        return d
    return np.moveaxis(d, source, destination) if type(d) is np.ndarray else ops.moveaxis(d, source, destination)


def reshape(d, shape):
    return d.reshape(shape) if type(d) is np.ndarray else ops.reshape(d, tuple(shape))


def broadcast(d, shape):
    if type(d) is np.ndarray or np.isscalar(d):
        return np.broadcast_to(d, shape)
    return ops.broadcast_to(d, tuple(shape))


def index(d, i, axis):
    """Example ``i`` of ``d`` along ``axis``."""
    if type(d) is np.ndarray:
        return d[(slice(None),) * axis + (i,)]
    return ops.getitem(d, index=(slice(None),) * axis + (i,))


def stack(items):
    if all(type(x) is np.ndarray or np.isscalar(x) for x in items):
        return np.stack(items)
    return ops.stack(items)


def sum_axes(d, axes):
    return np.sum(d, axis=axes, keepdims=True) if type(d) is np.ndarray else ops.sum(d, axis=axes, keepdims=True)


def align(datas, bdims, size, rank=None):
    """Elementwise operands with the batch axis first and leading ones padding each mapped operand to
    ``rank`` dimensions per example, so that NumPy broadcasting lines the examples up."""
    if rank is None:
        rank = max(ndim_of(d) - (b is not None) for d, b in zip(datas, bdims))
    out = []
    for d, b in zip(datas, bdims):
        if b is not None:
            d = to_front(d, b)
            shape = tuple(d.shape)
            if len(shape) - 1 < rank:
                d = reshape(d, (size,) + (1,) * (rank - len(shape) + 1) + shape[1:])
        out.append(d)
    return out


# --------------------------------------------------------------------------------------------
# The interpreter

def _split(values, level):
    datas, bdims, size = [], [], None
    for v in values:
        if type(v) is Batched and v.level == level:
            datas.append(v.data)
            bdims.append(v.bdim)
            size = v.data.shape[v.bdim]
        else:
            datas.append(v)
            bdims.append(None)
    return datas, bdims, size


def batch_apply(prim, values, params):
    """``prim`` on values of which some are Batched: its batching rule at the innermost level, or a loop."""
    level = _top_level(list(values) + list(params.values()))
    datas, bdims, size = _split(values, level)
    if size is None:           # only a parameter is mapped (an index per example into a shared array)
        size = next(b.batch_size for b in _mapped_in(params.values(), level))
    rule = batch_rules.get(prim)
    result = None
    if rule is not None and (getattr(rule, "batched_params", False) or not _mapped_in(params.values(), level)):
        result = rule(prim, datas, bdims, size, level, **params)
    if result is None:
        result = loop(prim, datas, bdims, size, level, params)
    out, bdim = result
    return out if bdim is None else Batched(out, bdim, level)


def _mapped_in(objs, level):
    """The values of map ``level`` among ``objs`` and inside their tuples (an index)."""
    found = []
    for o in objs:
        for x in (o if type(o) in (tuple, list) else (o,)):
            if type(x) is Batched and x.level == level:
                found.append(x)
    return found


def loop(prim, datas, bdims, size, level, params):
    """The reference: ``prim`` once per example, the results stacked (and a warning naming ``prim``)."""
    if (level, prim.name) not in _warned:
        _warned.add((level, prim.name))
        warnings.warn(f"vmap: primitive {prim.name!r} has no batching rule for these arguments; it runs once per "
                      f"example ({size} calls)", BatchingWarning, stacklevel=2)
    outs = []
    for i in range(size):
        args = [d if b is None else index(d, i, b) for d, b in zip(datas, bdims)]
        kw = {k: _slice_all(p, level, i) for k, p in params.items()}
        outs.append(apply(prim, args, kw))
    return stack(outs), 0


tensor.batch_apply = batch_apply


# --------------------------------------------------------------------------------------------
# Into and out of a map: two primitives, so that a map can be differentiated from outside

def _in_vjp(g, out, x, *, bdim, level):
    return unbatch(g, level, bdim, x.shape[bdim])


def _in_jvp(t, out, x, *, bdim, level):
    return batch(t, bdim, level)


def _out_vjp(g, out, x, *, level, axis, size):
    return batch(g, axis, level)


def _out_jvp(t, out, x, *, level, axis, size):
    return unbatch(t, level, axis, size)


VMAP_IN = Primitive("vmap_in", lambda x, *, bdim, level: Batched(x, bdim, level), vjp=(_in_vjp,), jvp=(_in_jvp,))
VMAP_OUT = Primitive("vmap_out", lambda x, *, level, axis, size: _unstack(x, level, axis, size),
                     vjp=(_out_vjp,), jvp=(_out_jvp,))


def _recorded(x):
    return isinstance(x, Tensor) and x.requires_grad and is_grad_enabled()


def batch(x, bdim, level):
    """``x`` (examples along ``bdim``) as one example's value of the map ``level``, linked to x's graph."""
    params = {"bdim": bdim, "level": level}
    if tensor.compiling and _recorded(x):     # autodiff.compile: the examples are x itself, a node
        return Tensor._make(Batched(x, bdim, level))
    if _recorded(x):
        return Tensor._make(Batched(x._value, bdim, level), VMAP_IN, (x,), params, requires_grad=True)
    value = x._value if isinstance(x, Tensor) else x
    if type(value) is not Batched and not isinstance(value, np.ndarray):
        value = np.asarray(value)
    return Batched(value, bdim, level) if not isinstance(x, Tensor) else Tensor._make(Batched(value, bdim, level))


def _unstack(v, level, axis, size):
    """The examples of a map's value stacked along ``axis``; a value the same for every example is repeated."""
    if type(v) is Batched and v.level == level:
        return move(v.data, v.bdim, axis)
    shape = tuple(getattr(v, "shape", np.shape(v)))
    v = reshape(v if type(v) in (Batched, Tensor) else np.asarray(v), shape[:axis] + (1,) + shape[axis:])
    return broadcast(v, shape[:axis] + (size,) + shape[axis:])


def unbatch(x, level, axis, size):
    """The examples of ``x`` (a value of the map ``level``) stacked along ``axis``, linked to x's graph."""
    params = {"level": level, "axis": axis, "size": size}
    if tensor.compiling and isinstance(x, Tensor):    # autodiff.compile: the stacked node itself
        return _unstack(x._value if type(x._value) is Batched else x, level, axis, size)
    if _recorded(x):
        return Tensor._make(_unstack(x._value, level, axis, size), VMAP_OUT, (x,), params, requires_grad=True)
    if isinstance(x, Tensor):
        return Tensor._make(_unstack(x._value, level, axis, size))
    return _unstack(x, level, axis, size)


def unit_vectors(shape, dtype, level):
    """Every unit vector e_k of an array space as one value of a map (the examples along axis 0)."""
    n = int(np.prod(shape, dtype=np.int64))
    return Batched(np.eye(n, dtype=dtype).reshape((n,) + tuple(shape)), 0, level)


def examples_as_array(v, level, lead_shape, trail_shape, as_tensor):
    """A map's results (one per unit vector) as an array of shape lead_shape + trail_shape."""
    n = int(np.prod(lead_shape, dtype=np.int64))
    stacked = unbatch(v, level, 0, n)
    shape = tuple(lead_shape) + tuple(trail_shape)
    if as_tensor:
        return reshape(stacked if isinstance(stacked, Tensor) else Tensor._make(np.asarray(stacked)), shape)
    stacked = stacked.value if isinstance(stacked, Tensor) else stacked
    return reshape(stacked if type(stacked) is Batched else np.asarray(stacked), shape)


# --------------------------------------------------------------------------------------------
# A Batched value met by Python's operators and NumPy's functions inside a rule

_OPERATORS = ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
              "__matmul__", "__rmatmul__", "__pow__", "__rpow__", "__neg__", "__pos__", "__abs__", "__getitem__",
              "sum", "mean", "max", "min", "prod", "reshape", "transpose", "T", "astype", "ravel", "flatten",
              "squeeze", "swapaxes", "dot")
for _name in _OPERATORS:
    setattr(Batched, _name, TensorSyntax.__dict__[_name])

_COMPARISONS = {"__lt__": np.less, "__le__": np.less_equal, "__gt__": np.greater, "__ge__": np.greater_equal,
                "__eq__": np.equal, "__ne__": np.not_equal}


def _comparison(ufunc):
    def compare(self, other):
        if tensor.compiling and _recorded_data(self):
            raise TypeError("autodiff.compile records f once, at the example arguments, so a comparison on a mapped "
                            "value would freeze the mask taken there and give wrong values elsewhere. Write the "
                            "choice as data: ad.relu, ad.abs, ad.maximum, ad.clip, or ad.where with a mask from "
                            "ad.heaviside(x, 0.0)")
        return ufunc(self, other)
    return compare


def _recorded_data(v):
    return _recorded(every_example(v))


for _name, _ufunc in _COMPARISONS.items():
    setattr(Batched, _name, _comparison(_ufunc))
Batched.__hash__ = object.__hash__


def _top_level(objs):
    levels = [o.level for o in objs if type(o) is Batched]
    for o in objs:
        if isinstance(o, (list, tuple)):
            levels += [x.level for x in o if type(x) is Batched]
    return max(levels)


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    if method != "__call__" or "out" in kwargs:
        return NotImplemented
    level = _top_level(inputs)
    datas, bdims, size = _split(inputs, level)
    result = ufunc(*align(datas, bdims, size), **kwargs)
    if isinstance(result, tuple):
        return tuple(Batched(r, 0, level) for r in result)
    return Batched(result, 0, level)


def _like(func):
    return lambda a, *args, **kwargs: func(np.empty(a.shape, a.dtype), *args, **kwargs)


_SHAPE_FUNCTIONS = {
    np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: lambda a, axis=None: (
        a.size if axis is None else a.shape[axis]),
    np.iscomplexobj: lambda a: a.dtype.kind == "c", np.isrealobj: lambda a: a.dtype.kind != "c",
    np.zeros_like: _like(np.zeros_like), np.ones_like: _like(np.ones_like), np.empty_like: _like(np.empty_like),
    np.full_like: _like(np.full_like),
}


def _slice_all(obj, level, i):
    if type(obj) is Batched and obj.level == level:
        return index(obj.data, i, obj.bdim)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_slice_all(o, level, i) for o in obj)
    return obj


def _array_function(self, func, types, args, kwargs):
    """Shape queries and ``*_like`` answer for one example; any other function runs once per example."""
    if func in _SHAPE_FUNCTIONS and args and args[0] is self:
        return _SHAPE_FUNCTIONS[func](*args, **kwargs)
    if func is np.result_type:
        return np.result_type(*[a.dtype if type(a) is Batched else a for a in args])
    level = _top_level(list(args) + list(kwargs.values()))
    size = next(o.batch_size for o in list(args) + list(kwargs.values()) if type(o) is Batched and o.level == level)
    outs = [func(*_slice_all(args, level, i), **{k: _slice_all(v, level, i) for k, v in kwargs.items()})
            for i in range(size)]
    if isinstance(outs[0], tuple):
        return tuple(Batched(stack([o[k] for o in outs]), 0, level) for k in range(len(outs[0])))
    return Batched(stack(outs), 0, level)


def _no_array(self, dtype=None, copy=None):
    raise TypeError("vmap: a mapped value cannot become one NumPy array (np.asarray, np.array, float()) inside the "
                    "mapped function: it stands for every example at once. Use autodiff's ops (ad.where for a "
                    "choice), or the value outside vmap")


def _no_scalar(self):
    raise TypeError("vmap: a mapped value has no single truth value or number (Python's if, float(), int() on it): "
                    "it stands for every example at once. Use ad.where(cond, a, b) for a choice per example")


Batched.ndim = property(lambda self: len(self.data.shape) - 1)
Batched.size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))
Batched.copy = lambda self: Batched(self.data.copy(), self.bdim, self.level)
Batched.__repr__ = lambda self: f"Batched({self.data!r}, bdim={self.bdim}, level={self.level})"
Batched.__array_ufunc__ = _array_ufunc
Batched.__array_function__ = _array_function
Batched.__array__ = _no_array
Batched.__bool__ = Batched.__float__ = Batched.__int__ = Batched.__index__ = Batched.item = _no_scalar
Batched.__len__ = lambda self: self.shape[0] if self.shape else _no_scalar(self)


def _levels_of(value):
    levels = set()
    while type(value) is Batched:
        levels.add(value.level)
        value = value.data
    return levels


def unmapped_cotangent(c, value):
    """``c`` summed over the examples of every finished map that ``value`` (the input it flows into) is not
    mapped by: the reverse of handing the same value to every example, when a map is differentiated from
    outside (``grad(vmap(f))``). Inside a running map (``vmap(grad(f))``) each example keeps its own."""
    levels = _levels_of(value) | _active
    v = c._value if isinstance(c, Tensor) else c
    while type(v) is Batched and v.level not in levels:
        c = ops.sum(unbatch(c, v.level, 0, v.batch_size), axis=0)
        v = c._value if isinstance(c, Tensor) else c
    return c


sweep.unmapped_cotangent = unmapped_cotangent
