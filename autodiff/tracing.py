"""One differentiation, as the functional API runs it: leaves for the arguments, f's graph, its sweeps.

``_Trace`` takes the chosen arguments apart into their pytree leaves (``autodiff.pytree``; a list of
plain numbers is one array), stands a fresh leaf Tensor for each, calls f with them put back in
their structures, records f's graph and sweeps it (reverse or forward) on request. The functional
API (``autodiff.functional``) and gradcheck are built on it.
"""
from __future__ import annotations

import copy
import numbers

import numpy as np

from .ops import identity
from .pytree import keystr, tree_flatten_with_path, tree_map, tree_unflatten
from .sweep import forward_sweep, reverse_sweep, toposort
from .tensor import Batched, Tensor


def check_function(f, fname):
    """``f`` must be callable: ``grad(3)`` failed later with "'int' object is not callable"."""
    if not callable(f):
        raise TypeError(f"{fname}: f must be a function (of Tensors or numbers), got {f!r} ({type(f).__name__})")


def _float_array(x, what):
    if type(x) is Batched:     # one example's value under vmap: stays batched
        return x if x.dtype.kind in "fc" else Batched(x.data.astype(np.float64), x.bdim, x.level)
    arr = np.asarray(x)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{what} must be a number or a numeric array; got dtype {arr.dtype}")
    return arr.astype(np.float64) if arr.dtype.kind in "biu" else arr


def _is_array_like(x):
    """A non-empty list or tuple of numbers (or of such lists): one array to the functional API."""
    return type(x) in (list, tuple) and len(x) > 0 and all(isinstance(e, numbers.Number) or _is_array_like(e)
                                                           for e in x)


def _flatten(tree):
    """(key path, leaf) pairs and the structure; a list of numbers is one leaf."""
    return tree_flatten_with_path(tree, is_leaf=_is_array_like)


def _argnums(argnums, nargs, fname):
    single = isinstance(argnums, (int, np.integer))
    if not single and not (isinstance(argnums, (tuple, list)) and argnums
                           and all(isinstance(a, (int, np.integer)) for a in argnums)):
        raise TypeError(f"{fname}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    nums = (int(argnums),) if single else tuple(int(a) for a in argnums)
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(f"{fname}: argnums={argnums!r} names argument {a}, but f was called with "
                             f"{nargs} positional argument(s): there is nothing to differentiate with respect to")
    nums = tuple(a % nargs for a in nums)
    if len(set(nums)) < len(nums):     # each leaf is one input of the sweep: a repeat got a zero gradient
        raise ValueError(f"{fname}: argnums={argnums!r} names an argument twice")
    return single, nums


class _Trace:
    """One differentiation: a leaf per array leaf of the chosen arguments, and f's recorded graph.

    ``leaves`` are those of every chosen argument in turn; ``trees`` holds each argument's structure
    and its span of ``leaves``; ``outs`` are the leaves of f's output (``out`` when it is one array).
    """

    def __init__(self, f, args, argnums, kwargs, fname, has_aux=False):
        self.fname = fname
        args = list(args)
        self.single, self.argnums = _argnums(argnums, len(args), fname)
        self.nested = False      # an outer differentiation tracks an input: record our sweeps
        self.tensor_in = False   # a Tensor was given: give Tensors back
        self.plain_scalar = []   # leaf k was a Python number: give back a Python float
        self.leaves, self.paths, self.trees = [], [], []
        for i in self.argnums:
            pairs, treedef = _flatten(args[i])
            start = len(self.leaves)
            for path, a in pairs:
                self.paths.append(keystr(path))
                self.leaves.append(self._leaf(a, f"{fname}: argument {i}{keystr(path)}"))
            self.trees.append((treedef, start, len(self.leaves)))
            args[i] = tree_unflatten(treedef, self.leaves[start:])
        out = f(*args, **kwargs)
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(f"{fname}: with has_aux=True f must return a pair (output, aux), "
                                f"got {type(out).__name__}")
            out, self.aux = out
        pairs, self.out_tree = _flatten(out)
        self.outs = [o if isinstance(o, Tensor) else Tensor._make(_float_array(o, f"{fname}: f's output{keystr(p)}"))
                     for p, o in pairs]
        self.out_paths = [keystr(p) for p, _ in pairs]
        self._out = self.outs[0] if self.out_tree.is_leaf else None
        self.leaf_ids = frozenset(id(w) for w in self.leaves)
        self.order, self.ids = toposort(self.outs, stop=self.leaf_ids)
        if not self.nested:  # f closes over a Tensor that an outer differentiation tracks
            self.nested = any(n.op is None and id(n) not in self.leaf_ids for n in self.order)
        self.create_graph = self.nested

    def _leaf(self, a, what):
        if isinstance(a, Tensor):
            self.tensor_in = True
            self.plain_scalar.append(False)
            if a.requires_grad:  # a fresh node stands for the argument, linked to the outer graph
                self.nested = True
                return identity(a)
            return Tensor._make(_float_array(a._value, what), requires_grad=True, name=a.name)
        self.plain_scalar.append(isinstance(a, (int, float)) and not isinstance(a, bool))
        return Tensor._make(_float_array(a, what), requires_grad=True)

    @property
    def out(self):
        """f's output, which must be one array here (a pytree of several is refused by name)."""
        if self._out is None:
            raise ValueError(f"{self.fname}: f must return one array here; it returned a pytree "
                             f"{self.out_tree} of {len(self.outs)} arrays")
        return self._out

    def scalar(self):
        """f's output, checked to be one scalar (grad, hessian, hvp)."""
        if self._out is None:
            raise ValueError(f"{self.fname}: f must return a scalar; it returned a pytree {self.out_tree}. "
                             f"For (loss, aux) pass has_aux=True; for several outputs use jacobian, vjp or jvp.")
        _check_scalar(self._out, self.fname)
        return self._out

    def per_output(self):
        """This trace seen once per output leaf (same graph, same leaves): for per-output sweeps."""
        for o in self.outs:
            view = copy.copy(self)
            view.outs, view._out = [o], o
            yield view

    def release(self):
        """The argument leaves become constants: seen from outside, this call's inputs are fixed."""
        for w in self.leaves:
            if w.op is None:
                w.requires_grad = False

    def reverse(self, seed, create_graph=None):
        """Adjoints of the argument leaves (zeros where the output does not depend on one) for a seed
        on the output, or a list of seeds, one per output leaf."""
        cg = self.create_graph if create_graph is None else create_graph
        seeds = {}
        for o, s in zip(self.outs, seed if isinstance(seed, list) else [seed]):
            seeds[id(o)] = seeds[id(o)] + s if id(o) in seeds else s     # f returned one Tensor twice
        adj = reverse_sweep(self.order, self.ids, seeds, create_graph=cg, keep=self.leaf_ids, stop=self.leaf_ids)
        return [adj[id(w)] if id(w) in adj else _zeros_like(w) for w in self.leaves]

    def forward(self, tangents, create_graph=None):
        """The tangent of the output (a list, one per output leaf, for a pytree output) for the
        given tangents of the argument leaves."""
        cg = self.create_graph if create_graph is None else create_graph
        seeds = {id(w): t for w, t in zip(self.leaves, tangents)}
        tan = forward_sweep(self.order, seeds, create_graph=cg)
        outs = [tan[id(o)] if id(o) in tan else _zeros_like(o) for o in self.outs]
        return outs[0] if self._out is not None else outs

    def value(self, v):
        """A result for the caller: a Tensor when nested, else a NumPy value (float for scalars)."""
        return _to_user(v, self.nested or self.tensor_in, all(self.plain_scalar))

    def result(self, v, k):
        return _to_user(v, self.nested or self.tensor_in, self.plain_scalar[k])

    def as_args(self, values):
        """A value per leaf, back in the chosen arguments' structures (a tuple unless argnums is an int)."""
        trees = tuple(tree_unflatten(td, [self.result(values[k], k) for k in range(a, b)]) for td, a, b in self.trees)
        return trees[0] if self.single else trees

    def as_out(self, values, convert=True):
        """A value per output leaf, back in the structure of f's output."""
        return tree_unflatten(self.out_tree, [self.value(v) for v in values] if convert else values)

    def aux_value(self):
        return tree_map(lambda v: self.value(v) if isinstance(v, Tensor) else v, self.aux)


def _zeros_like(t):
    return np.zeros(t.shape, dtype=t.dtype)


def _to_user(v, as_tensor, python_scalar):
    if as_tensor:
        return v if isinstance(v, Tensor) else Tensor._make(v if type(v) is Batched else np.array(v))
    if isinstance(v, Tensor):
        v = v._value
    if type(v) is Batched:     # under vmap, which unstacks it
        return v
    v = np.asarray(v)
    if v.ndim == 0:
        return v.item() if python_scalar and v.dtype.kind == "f" else v[()]
    return v


def _check_scalar(out, fname):
    if out.size != 1:
        raise ValueError(f"{fname}: f must return a scalar (one element); it returned shape {out.shape}. "
                         f"For a vector output use jacobian, vjp or jvp.")


def _seed_like(value, reference, what):
    """A seed (tangent or cotangent) with the reference's shape and dtype, or a clear error."""
    if isinstance(value, Tensor):
        if value.shape != reference.shape:
            raise ValueError(f"{what} has shape {value.shape}, expected {reference.shape}")
        return value
    try:
        kind = np.asarray(value).dtype.kind    # None in a tuple would become NaN, 1j lose its imaginary part
        if kind not in "biufc" or kind == "c" and reference.dtype.kind != "c":
            raise TypeError
        arr = np.asarray(value, dtype=reference.dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number or an array of shape {reference.shape}, "
                        f"got {type(value).__name__}") from None
    if arr.shape != reference.shape:
        raise ValueError(f"{what} has shape {arr.shape}, expected {reference.shape}")
    return arr


def _seeds_like(value, treedef, refs, paths, what, against):
    """Tangents or cotangents in ``treedef``'s structure, one per reference leaf, or a one-line error."""
    if treedef.is_leaf:
        parts = [value]
    else:
        try:
            parts = treedef.flatten_up_to(value)
        except ValueError as exc:
            raise ValueError(f"{what} does not match {against} {treedef}: {exc}") from None
    return [_seed_like(v, r, what + p) for v, r, p in zip(parts, refs, paths)]
