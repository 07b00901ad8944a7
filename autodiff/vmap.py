"""``vmap``: a function of one example mapped over a batch, as ``jax.vmap`` / ``torch.func.vmap``.

``vmap(f, in_axes=0, out_axes=0)(*args)`` is ``f`` applied to every slice of the mapped arguments
along their ``in_axes`` (``None``: the argument is passed whole to every call), the results stacked
along ``out_axes``. It composes with the rest of the functional API, in either order:

- ``vmap(grad(loss), in_axes=(None, 0, 0))(w, xs, ys)``: per-example gradients (gradient clipping
  per example, DP-SGD), each of them the gradient of one example's loss;
- ``grad(lambda w: sum(vmap(f, in_axes=(None, 0))(w, xs)))``: differentiating through the map, since
  entering and leaving the map are recorded in the graph (two nodes, ``vmap_in`` and ``vmap_out``).

Each primitive runs once for the whole batch, by its batching rule (:mod:`autodiff.batching`): ``f``
is called once, with one example's shapes, on values that stand for every example. A primitive without
a rule runs once per example instead, and vmap says which with a ``BatchingWarning``. Maps nest
(``vmap(vmap(f))``), and ``f`` may not branch in Python on a mapped value (``if x > 0:``): that is a
choice per example, ``ad.where(x > 0, a, b)``.

>>> import numpy as np
>>> import autodiff as ad
>>> w = np.array([1.0, 2.0])
>>> xs = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
>>> ad.vmap(lambda w, x: ad.sum(w * x) ** 2, in_axes=(None, 0))(w, xs)        # (w . x_i)^2
array([ 1.,  4., 25.])
>>> ad.vmap(ad.grad(lambda w, x: ad.sum(w * x) ** 2), in_axes=(None, 0))(w, xs)   # 2 (w . x_i) x_i
array([[ 2.,  0.],
       [ 0.,  4.],
       [30., 10.]])
"""
from __future__ import annotations

import numpy as np

from . import batching_rules  # noqa: F401  (fills the batching table)
from .batching import batch, forget_level, new_level, unbatch
from .functional import check_function
from .tensor import Tensor

__all__ = ["vmap"]


def _axes(in_axes, args, fname):
    """One axis (an int or None) per positional argument, each checked against its argument's rank."""
    if in_axes is None or isinstance(in_axes, (int, np.integer)):
        axes = (in_axes,) * len(args)
    elif isinstance(in_axes, (tuple, list)):
        if len(in_axes) != len(args):
            raise ValueError(f"{fname}: in_axes has {len(in_axes)} entries but f was called with {len(args)} "
                             f"positional argument(s); give one axis (or None) per argument")
        axes = tuple(in_axes)
    else:
        raise TypeError(f"{fname}: in_axes must be an int, None, or a tuple of them (one per argument), "
                        f"got {in_axes!r}")
    checked = []
    for k, (a, axis) in enumerate(zip(args, axes)):
        if axis is None:
            checked.append(None)
            continue
        if not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{fname}: in_axes[{k}] must be an int or None, got {axis!r}")
        ndim = len(a.shape) if isinstance(a, Tensor) else np.ndim(a)
        if not -ndim <= axis < ndim:
            raise ValueError(f"{fname}: in_axes[{k}]={axis} but argument {k} has {ndim} dimension(s) "
                             f"(shape {tuple(np.shape(a.value if isinstance(a, Tensor) else a))}); "
                             f"use None for an argument that is not mapped")
        checked.append(int(axis) % ndim)
    if all(axis is None for axis in checked):
        raise ValueError(f"{fname}: in_axes maps no argument (all None); map at least one")
    return checked


def _size(args, axes, fname):
    sizes = {k: (a.shape if isinstance(a, Tensor) else np.shape(a))[axis]
             for k, (a, axis) in enumerate(zip(args, axes)) if axis is not None}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{fname}: the mapped arguments have different sizes along their in_axes: "
                         + ", ".join(f"argument {k}: {n}" for k, n in sizes.items()))
    n = next(iter(sizes.values()))
    if n == 0:
        raise ValueError(f"{fname}: the mapped axis is empty (size 0): there is nothing to map over")
    return n


def _results(out, out_axes, level, n, as_tensor, fname):
    """``f``'s results with the examples stacked along ``out_axes``; a tuple result element by element."""
    if isinstance(out, (tuple, list)):
        axes = out_axes if isinstance(out_axes, (tuple, list)) else (out_axes,) * len(out)
        if len(axes) != len(out):
            raise ValueError(f"{fname}: out_axes has {len(axes)} entries but f returns {len(out)} results")
        return type(out)(_results(o, a, level, n, as_tensor, fname) for o, a in zip(out, axes))
    if isinstance(out_axes, (tuple, list)):
        raise ValueError(f"{fname}: out_axes is a tuple but f returns one result")
    if not isinstance(out_axes, (int, np.integer)):
        raise TypeError(f"{fname}: out_axes must be an int (or a tuple of them for a tuple result), got {out_axes!r}")
    ndim = len(getattr(out, "shape", np.shape(out))) + 1
    if not -ndim <= out_axes < ndim:
        raise ValueError(f"{fname}: out_axes={out_axes} but the stacked result has {ndim} dimension(s)")
    stacked = unbatch(out, level, int(out_axes) % ndim, n)
    if as_tensor:
        return stacked if isinstance(stacked, Tensor) else Tensor._make(np.asarray(stacked))
    return np.asarray(stacked.value if isinstance(stacked, Tensor) else stacked)


def vmap(f, in_axes=0, out_axes=0):
    """``f`` mapped over the ``in_axes`` of its positional arguments; results stacked on ``out_axes``.

    ``in_axes``: an int (every argument mapped along it), None, or a tuple with an int or None per
    positional argument (keyword arguments are never mapped, as in JAX). ``out_axes``: an int, or a
    tuple of ints when ``f`` returns a tuple. Every mapped argument must have the same size along
    its axis. ``f`` sees Tensors. Plain arrays in give plain arrays out; Tensors in (or a result that is
    a Tensor being recorded) give a Tensor, recorded, so that the map itself can be differentiated.
    """
    check_function(f, "vmap")
    fname = f"vmap({getattr(f, '__name__', 'f')})"

    def mapped(*args, **kwargs):
        axes = _axes(in_axes, args, fname)
        n = _size(args, axes, fname)
        level = new_level()
        try:
            inputs = [a if axis is None else _wrapped(batch(a, axis, level)) for a, axis in zip(args, axes)]
            out = f(*inputs, **kwargs)
            return _results(out, out_axes, level, n, any(isinstance(a, Tensor) for a in args), fname)
        finally:
            forget_level(level)

    mapped.__name__ = fname
    return mapped


def _wrapped(v):
    return v if isinstance(v, Tensor) else Tensor._make(v)
