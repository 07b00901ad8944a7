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
from .pytree import keystr, tree_flatten_with_path, tree_leaves, tree_structure, tree_unflatten
from .tensor import Batched, Tensor, value_of
from .tracing import _is_array_like

__all__ = ["vmap"]


def _is_none(x):
    return x is None


def _prefix_axes(prefix, tree, where, fname):
    """One axis (an int or None) per leaf of ``tree``, from ``prefix``: an int or None for all of them, or a
    pytree whose structure is a prefix of ``tree``'s (JAX's in_axes and out_axes)."""
    if prefix is None or isinstance(prefix, (int, np.integer)):
        return [prefix] * len(tree_leaves(tree, is_leaf=_is_array_like))
    try:
        subtrees = tree_structure(prefix, is_leaf=_is_none).flatten_up_to(tree)
    except ValueError as exc:
        raise ValueError(f"{fname}: {where} does not fit its value: {exc}") from None
    axes = []
    for axis, sub in zip(tree_leaves(prefix, is_leaf=_is_none), subtrees):
        if axis is not None and not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{fname}: {where} must hold ints or None, got {axis!r}")
        axes += [axis] * len(tree_leaves(sub, is_leaf=_is_array_like))
    return axes


def _mapped_leaves(in_axes, args, fname):
    """The arguments' leaves, each with its (checked, non-negative) axis or None, and their structures."""
    if isinstance(in_axes, bool):
        raise TypeError(f"{fname}: in_axes must be an int, None, or a tuple of them (one per argument), got {in_axes!r}")
    if in_axes is None or isinstance(in_axes, (int, np.integer)):
        prefixes = (in_axes,) * len(args)
    elif isinstance(in_axes, (tuple, list)):
        if len(in_axes) != len(args):
            raise ValueError(f"{fname}: in_axes has {len(in_axes)} entries but f was called with {len(args)} "
                             f"positional argument(s); give one axis (or None) per argument")
        prefixes = tuple(in_axes)
    else:
        raise TypeError(f"{fname}: in_axes must be an int, None, or a tuple of them (one per argument), "
                        f"got {in_axes!r}")
    leaves, treedefs = [], []
    for k, (a, prefix) in enumerate(zip(args, prefixes)):
        pairs, treedef = tree_flatten_with_path(a, is_leaf=_is_array_like)
        treedefs.append(treedef)
        for (path, leaf), axis in zip(pairs, _prefix_axes(prefix, a, f"in_axes[{k}]", fname)):
            where = f"{k}{keystr(path)}"
            if axis is not None:
                ndim = len(getattr(leaf, "shape", np.shape(leaf)))
                if not -ndim <= axis < ndim:
                    raise ValueError(f"{fname}: in_axes[{k}]{keystr(path)}={axis} but argument {where} has {ndim} "
                                     f"dimension(s) (shape {tuple(getattr(leaf, 'shape', np.shape(leaf)))}); use None "
                                     f"for an argument that is not mapped")
                axis = int(axis) % ndim
            leaves.append((leaf, axis, where))
    if all(axis is None for _, axis, _ in leaves):
        raise ValueError(f"{fname}: in_axes maps no argument (all None); map at least one")
    return leaves, treedefs


def _size(leaves, fname):
    sizes = {}
    for leaf, axis, where in leaves:
        if axis is not None:
            sizes.setdefault(getattr(leaf, "shape", np.shape(leaf))[axis], where)
    if len(sizes) > 1:
        raise ValueError(f"{fname}: the mapped arguments have different sizes along their in_axes: "
                         + ", ".join(f"argument {where}: {n}" for n, where in
                                     sorted(sizes.items(), key=lambda item: item[1])))
    n = next(iter(sizes))
    if n == 0:
        raise ValueError(f"{fname}: the mapped axis is empty (size 0): there is nothing to map over")
    return n


def _results(out, out_axes, level, n, as_tensor, fname):
    """``f``'s results (any pytree) with the examples stacked along ``out_axes`` (a prefix of it)."""
    if isinstance(out_axes, (tuple, list)) and not isinstance(out, (tuple, list)):
        raise ValueError(f"{fname}: out_axes is a tuple but f returns one result")
    if isinstance(out, (tuple, list)) and isinstance(out_axes, (tuple, list)) and len(out_axes) != len(out):
        raise ValueError(f"{fname}: out_axes has {len(out_axes)} entries but f returns {len(out)} results")
    if out_axes is None:
        raise ValueError(f"{fname}: out_axes=None (an unmapped result) is not supported; give an int")
    pairs, treedef = tree_flatten_with_path(out, is_leaf=_is_array_like)
    stacked = []
    for (path, leaf), axis in zip(pairs, _prefix_axes(out_axes, out, "out_axes", fname)):
        if not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{fname}: out_axes must be an int (or a pytree of them, a prefix of f's result), "
                            f"got {axis!r}")
        ndim = len(getattr(leaf, "shape", np.shape(leaf))) + 1
        if not -ndim <= axis < ndim:
            raise ValueError(f"{fname}: out_axes={axis} but the stacked result{keystr(path)} has {ndim} dimension(s)")
        v = unbatch(leaf if isinstance(leaf, Tensor) or type(value_of(leaf)) is Batched else np.asarray(leaf),
                    level, int(axis) % ndim, n)
        if isinstance(v, Tensor):     # recorded (f closes over a Tensor being differentiated), or an outer map's
            keep = as_tensor or v.requires_grad or type(v._value) is Batched
            stacked.append(v if keep else np.asarray(v._value))
        elif type(v) is Batched:      # an outer map's value: it stays one
            stacked.append(Tensor._make(v))
        else:
            stacked.append(Tensor._make(np.asarray(v)) if as_tensor else np.asarray(v))
    return tree_unflatten(treedef, stacked)


def vmap(f, in_axes=0, out_axes=0):
    """``f`` mapped over the ``in_axes`` of its positional arguments; results stacked on ``out_axes``.

    As ``jax.vmap``: ``in_axes`` is an int (every argument mapped along it), None, or a tuple with one
    entry per positional argument, each an int, None, or a pytree of them shaped like (a prefix of) that
    argument (``{'w': None, 'b': 0}`` for a dict); keyword arguments are never mapped. ``out_axes``: an
    int, or a pytree of them, a prefix of f's result. Arguments and results may be pytrees (dicts, lists,
    tuples, namedtuples, registered dataclasses of arrays). Every mapped array must have the same size
    along its axis. ``f`` sees Tensors. Plain arrays in give plain arrays out; Tensors in give Tensors,
    recorded, so that the map itself can be differentiated.
    """
    check_function(f, "vmap")
    fname = f"vmap({getattr(f, '__name__', 'f')})"

    def mapped(*args, **kwargs):
        leaves, treedefs = _mapped_leaves(in_axes, args, fname)
        n = _size(leaves, fname)
        level = new_level()
        try:
            mapped_leaves = iter([leaf if axis is None else _wrapped(batch(leaf, axis, level))
                                  for leaf, axis, _ in leaves])
            inputs = [tree_unflatten(td, [next(mapped_leaves) for _ in range(td.num_leaves)]) for td in treedefs]
            out = f(*inputs, **kwargs)
            as_tensor = any(isinstance(leaf, Tensor) for leaf, _, _ in leaves)
            return _results(out, out_axes, level, n, as_tensor, fname)
        finally:
            forget_level(level)

    mapped.__name__ = fname
    return mapped


def _wrapped(v):
    return v if isinstance(v, Tensor) else Tensor._make(v)
