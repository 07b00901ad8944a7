"""``vmap``: a function of one example mapped over a batch, as ``jax.vmap`` / ``torch.func.vmap``.

``vmap(f, in_axes=0, out_axes=0)(*args)`` is ``f`` applied to every slice of the mapped arguments
along their ``in_axes`` (``None``: the argument is passed whole to every call), the results stacked
along ``out_axes``. It composes with the rest of the functional API, in either order:

- ``vmap(grad(loss), in_axes=(None, 0, 0))(w, xs, ys)``: per-example gradients (gradient clipping
  per example, DP-SGD), each of them the gradient of one example's loss;
- ``grad(lambda w: sum(vmap(f, in_axes=(None, 0))(w, xs)))``: differentiating through the map, since
  the slices and the stack are the engine's own ops (``take``, ``stack``), recorded in the graph.

The map is a loop over the slices: the reference semantics, obviously right, one call of ``f`` per
example. A batched rule per primitive (JAX's batching interpreter) would run each op once on the
whole batch; for the layers of ``nn`` that batch already, ``f`` applied to the batch is that fast
path (per-example *gradients* still need the loop, or a rule per primitive, since a reverse sweep
sums over the batch).

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

from .ops import moveaxis, stack, take
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


def _slice(a, i, axis):
    if axis is None:
        return a
    if isinstance(a, Tensor):
        return take(a, i, axis=axis)          # recorded: a gradient flows back into the batch
    return np.take(np.asarray(a), i, axis=axis)


def _stack(outs, axis, fname):
    """The per-example results stacked along ``axis``; tuples of results stacked element by element."""
    first = outs[0]
    if isinstance(first, (tuple, list)):
        axes = axis if isinstance(axis, (tuple, list)) else (axis,) * len(first)
        if len(axes) != len(first):
            raise ValueError(f"{fname}: out_axes has {len(axes)} entries but f returns {len(first)} results")
        return tuple(_stack([o[k] for o in outs], axes[k], fname) for k in range(len(first)))
    if isinstance(axis, (tuple, list)):
        raise ValueError(f"{fname}: out_axes is a tuple but f returns one result")
    if any(isinstance(o, Tensor) for o in outs):
        stacked = stack([o if isinstance(o, Tensor) else Tensor._make(np.asarray(o)) for o in outs])
        return stacked if axis == 0 else moveaxis(stacked, 0, axis)
    return np.moveaxis(np.stack([np.asarray(o) for o in outs]), 0, axis)


def vmap(f, in_axes=0, out_axes=0):
    """``f`` mapped over the ``in_axes`` of its positional arguments; results stacked on ``out_axes``.

    ``in_axes``: an int (every argument mapped along it), None, or a tuple with an int or None per
    positional argument (keyword arguments are never mapped, as in JAX). ``out_axes``: an int, or a
    tuple of ints when ``f`` returns a tuple. Every mapped argument must have the same size along
    its axis. Plain arrays in give plain arrays out; Tensors in (or a result that is a Tensor) give
    a Tensor, recorded, so that the map itself can be differentiated.
    """
    fname = f"vmap({getattr(f, '__name__', 'f')})"

    def mapped(*args, **kwargs):
        axes = _axes(in_axes, args, fname)
        n = _size(args, axes, fname)
        outs = [f(*(_slice(a, i, axis) for a, axis in zip(args, axes)), **kwargs) for i in range(n)]
        return _stack(outs, out_axes, fname)

    mapped.__name__ = fname
    return mapped
