"""``autodiff.compile`` of a function of pytrees (a dict of parameters, a list of arrays, a namedtuple):
the compiled program takes and gives their leaves, and this wrapper takes the trees apart and puts the
results back together, as ``jax.jit`` does."""
from __future__ import annotations

import numpy as np

from ..pytree import keystr, tree_flatten, tree_flatten_with_path, tree_unflatten
from ..tracing import _is_array_like
from .trace import CompileError


def _flatten(tree):
    return tree_flatten(tree, is_leaf=_is_array_like)


def has_trees(args) -> bool:
    """Whether any argument is a pytree with a container (not one array, number, or list of numbers)."""
    return any(not _flatten(a)[1].is_leaf for a in args)


class TreeCompiled:
    """``f`` compiled on the leaves of its pytree arguments; call it with trees of the same structure."""

    def __init__(self, compiled_class, f, example_args, mode="reverse", argnums=0, **options):
        self.mode, self.single = mode, isinstance(argnums, (int, np.integer))
        nums = (int(argnums),) if self.single else tuple(int(a) for a in argnums)
        flat, self.treedefs, names = [], [], {}
        for k, a in enumerate(example_args):
            pairs, treedef = tree_flatten_with_path(a, is_leaf=_is_array_like)
            names.update({("in", len(flat) + i): f"{k}{keystr(path)}" for i, (path, _) in enumerate(pairs)})
            flat += [leaf for _, leaf in pairs]
            self.treedefs.append(treedef)
        starts = np.cumsum([0] + [td.num_leaves for td in self.treedefs])
        n = len(example_args)
        self.groups = [tuple(range(starts[k % n], starts[k % n + 1])) for k in nums]
        self.wrt = [self.treedefs[k % n] for k in nums]      # the structures of the differentiated arguments
        self.out_tree = None

        def flat_f(*leaves):
            args = [tree_unflatten(td, list(leaves[starts[k]:starts[k + 1]])) for k, td in enumerate(self.treedefs)]
            try:
                out = f(*args)
            except CompileError:
                raise
            except (TypeError, ValueError) as exc:    # f met the structure it was given: say which, in one line
                shown = ", ".join(str(td) for td in self.treedefs)
                raise type(exc)(f"autodiff.compile: f failed on example arguments of the structure {shown} (a tuple "
                                f"or list is a pytree, None an empty one): {str(exc).splitlines()[0]}") from None
            if mode not in ("value", "vjp"):
                return out
            pairs, self.out_tree = tree_flatten_with_path(out, is_leaf=_is_array_like)    # f's result may be a
            names.update({("out", i): keystr(path) for i, (path, _) in enumerate(pairs)})   # pytree: its leaves
            return pairs[0][1] if self.out_tree.is_leaf else tuple(leaf for _, leaf in pairs)

        flat_f.__name__ = getattr(f, "__name__", "f")
        flat_argnums = tuple(i for group in self.groups for i in group)
        self.compiled = compiled_class(flat_f, flat, mode=mode, argnums=flat_argnums, **options)
        self.compiled.leaf_names = names      # errors name a tangent or cotangent by its path: argument 0['w']
        self.__name__ = self.compiled.__name__

    def __getattr__(self, name):             # source, path, signatures, from_cache ... of the leaves' program
        return getattr(self.__dict__["compiled"], name)

    def _leaves(self, trees, treedefs, what):
        flat = []
        for k, (tree, treedef) in enumerate(zip(trees, treedefs)):
            leaves, got = _flatten(tree)
            if got != treedef:
                raise CompileError(f"{self.__name__}: {what} {k} has the structure {got}, but f was compiled for "
                                   f"{treedef}")
            flat += leaves
        return flat

    def __call__(self, *args):
        n = len(self.treedefs)
        expected = n + (len(self.wrt) if self.mode == "forward" else 1 if self.mode == "vjp" else 0)
        if len(args) != expected:
            raise TypeError(f"{self.__name__} takes {expected} argument(s), got {len(args)}")
        flat = self._leaves(args[:n], self.treedefs, "argument")
        if self.mode == "forward":
            flat += self._leaves(args[n:], self.wrt, "tangent")
        if self.mode == "vjp":      # the cotangent in the structure of f's result
            leaves, got = _flatten(args[n])
            if got != self.out_tree:
                raise CompileError(f"{self.__name__}: the cotangent has the structure {got}, but f's result has "
                                   f"{self.out_tree}")
            flat.append(leaves[0] if len(leaves) == 1 else tuple(leaves))
        out = self.compiled(*flat)
        if self.mode == "value":
            return self._result(out)
        if self.mode == "forward":
            return out
        value, grads = out
        if self.mode == "vjp":
            value = self._result(value)
        trees, at = [], 0
        for group, treedef in zip(self.groups, self.wrt):
            trees.append(tree_unflatten(treedef, list(grads[at:at + len(group)])))
            at += len(group)
        return value, trees[0] if self.single else tuple(trees)

    def _result(self, out):
        """f's result in its own structure, from the program's outputs (one, or a tuple)."""
        return tree_unflatten(self.out_tree, [out] if self.out_tree.num_leaves == 1 else list(out))
