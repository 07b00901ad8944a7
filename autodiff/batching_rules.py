"""The batching rules of the engine's primitives (vmap's table, :data:`autodiff.primitives.batch_rules`).

A rule ``rule(prim, datas, bdims, size, level, **params)`` gets each input's data with its batch axis
(``None`` for an input that is the same for every example) and returns ``(out, out_bdim)``, or None to
ask for the per-example loop. Most rules move the batch axis to the front and shift the primitive's
axis parameters by one, so that NumPy does the whole batch in one call. ``tests/test_batching.py`` holds
every rule to the loop, on random ``in_axes``.
"""
from __future__ import annotations

import string

import numpy as np

from .batching import align, broadcast, ndim_of, reshape, sum_axes, to_front
from .primitives import REGISTRY, batch_rules
from . import ops
from .tensor import Batched, Tensor, apply


def _front(datas, bdims):
    return [d if b is None else to_front(d, b) for d, b in zip(datas, bdims)]


def elementwise(prim, datas, bdims, size, level, **params):
    """NumPy broadcasting, with the batch axis first and each mapped operand padded to the common rank."""
    return apply(prim, align(datas, bdims, size), params), 0


def _mul(prim, datas, bdims, size, level):
    """As ``elementwise``; a product of a column and a row per example (matmul's vjp of a vector, the
    per-example gradient of a weight) by einsum, which writes each product once, where broadcasting
    NumPy iterates a length-1 axis (the same numbers, bit for bit: one multiplication each)."""
    a, b = align(datas, bdims, size)
    sa, sb = tuple(getattr(a, "shape", ())), tuple(getattr(b, "shape", ()))
    if (len(sa) == len(sb) == 3 and sa[2] == 1 and sb[1] == 1 and sa[0] == sb[0]
            and type(a) in (np.ndarray, Tensor) and type(b) in (np.ndarray, Tensor)
            and a.dtype == b.dtype and a.dtype.kind == "f"):
        if type(a) is np.ndarray and type(b) is np.ndarray:
            return np.einsum("bi,bj->bij", a[:, :, 0], b[:, 0, :]), 0
        # autodiff.compile records the batch (Tensors): the engine's einsum, which it calls as NumPy's
        return ops.einsum("bi,bj->bij", reshape(a, sa[:2]), reshape(b, (sb[0], sb[2]))), 0
    return apply(prim, [a, b], {}), 0


ELEMENTWISE = ("add", "sub", "mul", "div", "neg", "pow", "pow_const", "exp", "log", "sin", "cos", "tan", "tanh",
               "sigmoid", "sqrt", "abs", "relu", "heaviside", "maximum", "minimum", "clip", "identity", "select",
               "sign", "astype", "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
               "log1p", "expm1", "arctan2", "hypot", "logaddexp")


def _shift(axis, ndim):
    """One example's axis (or axes) as axes of the data whose batch axis is first."""
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (tuple, list)):
        return tuple(int(a) % ndim + 1 for a in axis)
    return int(axis) % ndim + 1


def reduction(prim, datas, bdims, size, level, *, axis=None, **params):
    (d,) = _front(datas, bdims)
    nd = ndim_of(d) - 1
    return apply(prim, [d], {"axis": _shift(axis, nd) if nd else (), **params}), 0


def _prod(prim, datas, bdims, size, level, *, axis=None, keepdims=False):
    """prod takes one axis or None (all), never a tuple: all of an example's axes as one, flattened."""
    (d,) = _front(datas, bdims)
    nd = ndim_of(d) - 1
    if axis is not None:
        return apply(prim, [d], {"axis": _shift(axis, nd), "keepdims": keepdims}), 0
    out = apply(prim, [reshape(d, (size, -1))], {"axis": 1, "keepdims": False})
    return (reshape(out, (size,) + (1,) * nd) if keepdims else out), 0


def along_axis(prim, datas, bdims, size, level, *, axis=-1, **params):
    (d,) = _front(datas, bdims)
    nd = ndim_of(d) - 1
    if axis is None:                      # cumsum of the flattened example
        d, nd, axis = reshape(d, (size, -1)), 1, 0
    if nd == 0:
        return None
    return apply(prim, [d], {"axis": _shift(axis, nd), **params}), 0


def _sum_to(prim, datas, bdims, size, level, *, shape):
    (d,) = _front(datas, bdims)
    shape = tuple(shape)
    have = tuple(d.shape[1:])
    if have == shape:
        return d, 0
    lead = len(have) - len(shape)
    axes = tuple(range(1, lead + 1)) + tuple(1 + lead + i for i, n in enumerate(shape) if n == 1 and have[lead + i] != 1)
    return reshape(sum_axes(d, axes), (size,) + shape), 0


def _broadcast_to(prim, datas, bdims, size, level, *, shape):
    (d,) = _front(datas, bdims)
    shape = tuple(shape)
    have = tuple(d.shape[1:])
    d = reshape(d, (size,) + (1,) * (len(shape) - len(have)) + have)
    return broadcast(d, (size,) + shape), 0


def _reshape(prim, datas, bdims, size, level, *, shape):
    (d,) = _front(datas, bdims)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return reshape(d, (size,) + shape), 0


def _transpose(prim, datas, bdims, size, level, *, axes=None):
    (d,) = _front(datas, bdims)
    nd = ndim_of(d) - 1
    axes = tuple(range(nd, 0, -1)) if axes is None else tuple(int(a) % nd + 1 for a in axes)
    return apply(prim, [d], {"axes": (0,) + axes}), 0


def _batchable_index(index):
    """The index with a full slice in front, when the batch axis stays first (advanced indices adjacent)."""
    advanced = [k for k, i in enumerate(index) if isinstance(i, (np.ndarray, list))]
    if advanced and advanced != list(range(advanced[0], advanced[-1] + 1)):
        return None
    return (slice(None),) + tuple(index)


def _per_example_index(index, level, size):
    """``x[i]`` with one integer per example (``z[label]``): the examples' integers, or None."""
    mapped = [i for i in index if type(i) is Batched]
    if not mapped:
        return None
    i = mapped[0]
    if isinstance(i.data, Tensor):
        raise TypeError("autodiff.compile: an index per example (x[labels] under vmap) cannot be compiled: the "
                        "program takes float arrays; index outside the compiled function, or use a one-hot mask")
    if len(index) != 1 or i.level != level or i.ndim != 0 or type(i.data) is not np.ndarray or i.dtype.kind not in "iu":
        return False
    return to_front(i.data, i.bdim)


def _getitem(prim, datas, bdims, size, level, *, index):
    per_example = _per_example_index(index, level, size)
    if per_example is False:
        return None
    if per_example is not None:        # example b takes x_b[i_b] (x shared: x[i_b])
        (d,) = _front(datas, bdims)
        rows = (per_example,) if bdims[0] is None else (np.arange(size), per_example)
        return apply(prim, [d], {"index": rows}), 0
    index = _batchable_index(index)
    if index is None:
        return None
    (d,) = _front(datas, bdims)
    return apply(prim, [d], {"index": index}), 0


def _scatter_add(prim, datas, bdims, size, level, *, index, shape):
    per_example = _per_example_index(index, level, size)
    if per_example is False:
        return None
    if per_example is not None:        # example b adds its x_b at i_b of its own zeros
        (d,) = _front(datas, bdims)
        if bdims[0] is None:
            d = broadcast(d, (size,) + tuple(getattr(d, "shape", np.shape(d))))
        return apply(prim, [d], {"index": (np.arange(size), per_example), "shape": (size,) + tuple(shape)}), 0
    index = _batchable_index(index)
    if index is None:
        return None
    (d,) = _front(datas, bdims)
    return apply(prim, [d], {"index": index, "shape": (size,) + tuple(shape)}), 0


def _joined(prim, datas, bdims, size, level, *, axis=0, new_axis):
    shape = next(tuple(d.shape) for d, b in zip(datas, bdims) if b is not None)
    nd = len(shape) - 1 + new_axis
    full = [to_front(d, b) if b is not None else broadcast(d, (size,) + tuple(getattr(d, "shape", np.shape(d))))
            for d, b in zip(datas, bdims)]
    return apply(prim, full, {"axis": int(axis) % nd + 1}), 0


def _matmul(prim, datas, bdims, size, level):
    (a, b), (ba, bb) = _front(datas, bdims), bdims
    na, nb = ndim_of(a) - (ba is not None), ndim_of(b) - (bb is not None)
    if na == 1:                 # a vector: a row, removed again below
        a = reshape(a, (size, 1) + tuple(a.shape[1:]) if ba is not None else (1,) + tuple(np.shape(a)))
    if nb == 1:                 # a vector: a column
        b = reshape(b, tuple(b.shape) + (1,) if bb is not None else tuple(np.shape(b)) + (1,))
    rank = max(na, nb, 2)
    a, b = align([a, b], [ba if ba is None else 0, bb if bb is None else 0], size, rank)
    out = apply(prim, [a, b], {})
    shape = tuple(out.shape)
    if na == 1 and nb == 1:
        shape = shape[:-2]
    elif na == 1:
        shape = shape[:-2] + shape[-1:]
    elif nb == 1:
        shape = shape[:-1]
    return (reshape(out, shape) if shape != tuple(out.shape) else out), 0


def _einsum(prim, datas, bdims, size, level, *, subscripts, **params):
    spec = subscripts.replace(" ", "")
    inputs, _, output = spec.partition("->")
    terms = inputs.split(",")
    if "->" not in spec:        # implicit output: the letters used once, in order, after the ellipsis
        letters = [c for c in inputs if c.isalpha()]
        output = ("..." if "..." in inputs else "") + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    free = next(c for c in string.ascii_letters if c not in spec)
    terms = [t if b is None else free + t for t, b in zip(terms, bdims)]
    return apply(prim, _front(datas, bdims), {"subscripts": ",".join(terms) + "->" + free + output, **params}), 0


def _stacked_matrices(prim, datas, bdims, size, level):
    return apply(prim, _front(datas, bdims), {}), 0


def _solve(prim, datas, bdims, size, level):
    (a, b), (ba, bb) = _front(datas, bdims), bdims
    na, nb = ndim_of(a) - (ba is not None), ndim_of(b) - (bb is not None)
    if na != 2 or nb not in (1, 2):
        return None
    if nb == 1:
        b = reshape(b, tuple(b.shape if bb is not None else np.shape(b)) + (1,))
    if ba is None:
        a = broadcast(a, (size,) + tuple(np.shape(a)))
    if bb is None:
        b = broadcast(b, (size,) + tuple(np.shape(b) if type(b) is np.ndarray else b.shape))
    out = apply(prim, [a, b], {})
    return (reshape(out, tuple(out.shape)[:-1]) if nb == 1 else out), 0


def _where(prim, datas, bdims, size, level, *, cond):
    mapped = type(cond) is Batched and cond.level == level
    *values, cond = align(list(datas) + [cond.data if mapped else cond], list(bdims) + [cond.bdim if mapped else None],
                          size)
    return apply(prim, values, {"cond": cond}), 0


_where.batched_params = True     # its condition may be mapped too


def _register():
    rules = {name: elementwise for name in ELEMENTWISE}
    rules["mul"] = _mul
    rules.update({name: reduction for name in ("sum", "mean", "max", "min", "logsumexp")})
    rules.update({name: along_axis for name in ("softmax", "log_softmax", "cumsum")})
    rules.update({
        "prod": _prod, "sum_to": _sum_to, "broadcast_to": _broadcast_to, "reshape": _reshape, "transpose": _transpose,
        "getitem": _getitem, "scatter_add": _scatter_add, "matmul": _matmul, "einsum": _einsum,
        "det": _stacked_matrices, "inv": _stacked_matrices, "solve": _solve, "where": _where,
        "logabsdet": _stacked_matrices,
        "concatenate": lambda *a, **k: _joined(*a, new_axis=0, **k),
        "stack": lambda *a, **k: _joined(*a, new_axis=1, **k),
    })
    _getitem.batched_params = _scatter_add.batched_params = True     # an index per example
    for name, rule in rules.items():
        batch_rules[REGISTRY[name]] = rule
    for name in ("getitem", "scatter_add"):
        REGISTRY[name].batched_params = True


_register()
