"""Pytrees, as ``jax.tree_util``: nested containers of arrays, taken apart into leaves and put back.

A pytree is a container (dict, list, tuple, namedtuple, None, or a registered type) of pytrees, or a
leaf (anything else: a number, a NumPy array, a Tensor). ``tree_flatten`` gives the leaves, in a
fixed order (a dict's keys sorted, as JAX), and a ``PyTreeDef`` (the structure) that
``tree_unflatten`` fills with new leaves. The functional API (grad, vjp, jvp, jacobian...) uses them
to take a dict of parameters, or a dataclass of them, and to give the gradient back in that shape.
None is an empty subtree (no leaves), as in JAX.

>>> from autodiff.pytree import tree_flatten, tree_map, tree_unflatten
>>> leaves, treedef = tree_flatten({"b": [1, 2], "a": (3, None)})
>>> leaves, treedef
([3, 1, 2], PyTreeDef({'a': (*, None), 'b': [*, *]}))
>>> tree_unflatten(treedef, [30, 10, 20])
{'a': (30, None), 'b': [10, 20]}
>>> tree_map(lambda x, y: x + y, {"w": 1, "b": 2}, {"w": 10, "b": 20})
{'b': 22, 'w': 11}
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict, defaultdict

__all__ = ["PyTreeDef", "tree_flatten", "tree_unflatten", "tree_map", "tree_leaves", "tree_structure",
           "tree_flatten_with_path", "keystr", "register_pytree_node", "register_dataclass",
           "DictKey", "SequenceKey", "GetAttrKey", "FlattenedIndexKey"]


# --- keys: where a leaf sits (JAX's key paths), for error messages --------------------------------------
@dataclasses.dataclass(frozen=True)
class DictKey:
    key: object

    def __str__(self):
        return f"[{self.key!r}]"


@dataclasses.dataclass(frozen=True)
class SequenceKey:
    idx: int

    def __str__(self):
        return f"[{self.idx}]"


@dataclasses.dataclass(frozen=True)
class GetAttrKey:
    name: str

    def __str__(self):
        return f".{self.name}"


@dataclasses.dataclass(frozen=True)
class FlattenedIndexKey:
    key: int

    def __str__(self):
        return f"[<flat index {self.key}>]"


def keystr(path) -> str:
    """A key path as Python would index it: ``['w'][0].bias``."""
    return "".join(str(k) for k in path)


# --- the registry: how each container type is taken apart and rebuilt ----------------------------------
class _Node:
    __slots__ = ("flatten", "unflatten", "keys")

    def __init__(self, flatten, unflatten, keys):
        self.flatten, self.unflatten, self.keys = flatten, unflatten, keys


def _sorted_keys(d):
    try:
        return sorted(d)
    except TypeError:        # keys of several types: a fixed order all the same
        return sorted(d, key=lambda k: (type(k).__name__, repr(k)))


def _seq_keys(aux, n):
    return [SequenceKey(i) for i in range(n)]


def _dict_keys(aux, n):
    return [DictKey(k) for k in aux]


def _flatten_dict(x):
    keys = tuple(_sorted_keys(x))
    return [x[k] for k in keys], keys


def _flatten_defaultdict(x):
    children, keys = _flatten_dict(x)
    return children, (x.default_factory, keys)


_REGISTRY = {
    type(None): _Node(lambda x: ((), None), lambda aux, ch: None, _seq_keys),
    tuple: _Node(lambda x: (x, None), lambda aux, ch: tuple(ch), _seq_keys),
    list: _Node(lambda x: (x, None), lambda aux, ch: list(ch), _seq_keys),
    dict: _Node(_flatten_dict, lambda aux, ch: dict(zip(aux, ch)), _dict_keys),
    OrderedDict: _Node(lambda x: (list(x.values()), tuple(x)), lambda aux, ch: OrderedDict(zip(aux, ch)),
                       _dict_keys),
    defaultdict: _Node(_flatten_defaultdict, lambda aux, ch: defaultdict(aux[0], zip(aux[1], ch)),
                       lambda aux, n: _dict_keys(aux[1], n)),
}
_NAMEDTUPLE = _Node(lambda x: (x, type(x)), lambda aux, ch: aux(*ch),
                    lambda aux, n: [GetAttrKey(f) for f in aux._fields])


def _is_namedtuple(t):
    return issubclass(t, tuple) and hasattr(t, "_fields")


def _node_of(t):
    node = _REGISTRY.get(t)
    if node is None and _is_namedtuple(t):
        return _NAMEDTUPLE
    return node


def register_pytree_node(nodetype, flatten_fn, unflatten_fn):
    """Make ``nodetype`` a container: ``flatten_fn(x) -> (children, aux_data)`` and
    ``unflatten_fn(aux_data, children) -> x`` (JAX's signature). ``aux_data`` is kept in the treedef
    and compared by ``==``: hashable, static data (names, flags), not arrays.

    >>> class Pair:
    ...     def __init__(self, a, b): self.a, self.b = a, b
    >>> register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda aux, ch: Pair(*ch))
    >>> tree_leaves(Pair(1, [2, 3]))
    [1, 2, 3]
    """
    if not isinstance(nodetype, type):
        raise TypeError(f"register_pytree_node: nodetype must be a class, got {nodetype!r}")
    if nodetype in _REGISTRY:
        raise ValueError(f"register_pytree_node: {nodetype.__name__} is already registered as a pytree node")
    if not (callable(flatten_fn) and callable(unflatten_fn)):
        raise TypeError("register_pytree_node: flatten_fn and unflatten_fn must be functions")
    _REGISTRY[nodetype] = _Node(flatten_fn, unflatten_fn, lambda aux, n: [FlattenedIndexKey(i) for i in range(n)])


def register_dataclass(nodetype=None, data_fields=None, meta_fields=None, drop_fields=()):
    """Register a dataclass as a container (``jax.tree_util.register_dataclass``); a decorator too.

    Its fields are children unless named in ``meta_fields`` or marked
    ``dataclasses.field(metadata=dict(static=True))``: those are static data, kept in the treedef.
    Fields made with ``init=False`` and ``drop_fields`` are left out (rebuilt by the constructor).

    >>> import dataclasses
    >>> @register_dataclass
    ... @dataclasses.dataclass
    ... class Linear:
    ...     w: object
    ...     b: object
    ...     name: str = dataclasses.field(default="fc", metadata=dict(static=True))
    >>> tree_flatten(Linear(1.0, 2.0))
    ([1.0, 2.0], PyTreeDef(CustomNode(Linear[('fc',)], [*, *])))
    """
    if nodetype is None:
        return lambda cls: register_dataclass(cls, data_fields, meta_fields, drop_fields)
    if data_fields is None or meta_fields is None:
        if not dataclasses.is_dataclass(nodetype) or not isinstance(nodetype, type):
            raise TypeError(f"register_dataclass: {nodetype!r} is not a dataclass; "
                            f"name its data_fields and meta_fields")
        fields = [f for f in dataclasses.fields(nodetype) if f.init and f.name not in drop_fields]
        if meta_fields is None:
            meta_fields = [f.name for f in fields if f.metadata.get("static", False)
                           or (data_fields is not None and f.name not in data_fields)]
        if data_fields is None:
            data_fields = [f.name for f in fields if f.name not in meta_fields]
    data, meta = tuple(data_fields), tuple(meta_fields)

    def flatten(x):
        return [getattr(x, n) for n in data], tuple(getattr(x, n) for n in meta)

    def unflatten(aux, children):
        return nodetype(**dict(zip(data, children)), **dict(zip(meta, aux)))

    register_pytree_node(nodetype, flatten, unflatten)
    _REGISTRY[nodetype].keys = lambda aux, n: [GetAttrKey(d) for d in data]
    return nodetype


# --- the structure ---------------------------------------------------------------------------------------
class PyTreeDef:
    """The structure of a pytree: its containers and their static data, with a hole per leaf."""

    __slots__ = ("node_type", "node_data", "_children", "num_leaves", "num_nodes")

    def __init__(self, node_type, node_data, children):
        self.node_type, self.node_data, self._children = node_type, node_data, tuple(children)
        self.num_leaves = 1 if node_type is None else sum(c.num_leaves for c in self._children)
        self.num_nodes = 1 + sum(c.num_nodes for c in self._children)

    def children(self):
        return list(self._children)

    @property
    def is_leaf(self):
        return self.node_type is None

    def unflatten(self, leaves):
        return tree_unflatten(self, leaves)

    def __eq__(self, other):
        if not isinstance(other, PyTreeDef):
            return NotImplemented
        return (self.node_type is other.node_type and _same(self.node_data, other.node_data)
                and self._children == other._children)

    def __hash__(self):
        return hash((self.node_type, self.num_leaves, self.num_nodes))

    def __repr__(self):
        return f"PyTreeDef({_show(self)})"

    def flatten_up_to(self, tree):
        """The subtrees of ``tree`` standing where this structure has leaves (``tree`` has this structure
        as a prefix), or a ValueError in one line saying where the two differ."""
        out = []
        _up_to(self, tree, (), out)
        return out


def _same(a, b):
    try:
        return bool(a == b)
    except Exception:    # aux data that cannot be compared (arrays): the same object or not
        return a is b


def _show(td):
    t, ch = td.node_type, [_show(c) for c in td._children]
    if t is None:
        return "*"
    if t is type(None):
        return "None"
    if t is list:
        return "[" + ", ".join(ch) + "]"
    if t is tuple:
        return "(" + ", ".join(ch) + ("," if len(ch) == 1 else "") + ")"
    if t in (dict, OrderedDict, defaultdict):
        keys = td.node_data if t is not defaultdict else td.node_data[1]
        inner = "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(keys, ch)) + "}"
        return inner if t is dict else f"{t.__name__}({inner})"
    if _node_of(t) is _NAMEDTUPLE:
        return f"{t.__name__}(" + ", ".join(f"{f}={c}" for f, c in zip(t._fields, ch)) + ")"
    return f"CustomNode({t.__name__}[{td.node_data!r}], [" + ", ".join(ch) + "])"


def _describe(td):
    """One node, in words, for a mismatch message."""
    t, n = td.node_type, len(td._children)
    if t is None:
        return "a leaf"
    if t is type(None):
        return "None"
    if t in (dict, OrderedDict, defaultdict):
        keys = td.node_data if t is not defaultdict else td.node_data[1]
        return f"a {t.__name__} with keys {list(keys)}"
    if t in (list, tuple):
        return f"a {t.__name__} of {n}"
    return f"a {t.__name__} of {n} children" + (f" ({td.node_data!r})" if td.node_data is not None
                                                 and _node_of(t) is not _NAMEDTUPLE else "")


def _up_to(td, tree, path, out):
    if td.node_type is None:
        out.append(tree)
        return
    node = _node_of(type(tree))
    here = keystr(path) or "the top"
    if node is None or type(tree) is not td.node_type:
        got = f"a leaf ({type(tree).__name__})" if node is None else _describe(_one_level(tree, node))
        raise ValueError(f"the structures differ at {here}: expected {_describe(td)}, got {got}")
    children, aux = node.flatten(tree)
    children = list(children)
    if len(children) != len(td._children) or not _same(aux, td.node_data):
        raise ValueError(f"the structures differ at {here}: expected {_describe(td)}, "
                         f"got {_describe(_one_level(tree, node))}")
    for key, child, sub in zip(node.keys(aux, len(children)), children, td._children):
        _up_to(sub, child, path + (key,), out)


def _one_level(tree, node):
    children, aux = node.flatten(tree)
    return PyTreeDef(type(tree), aux, [PyTreeDef(None, None, ()) for _ in children])


# --- flatten, unflatten, map -----------------------------------------------------------------------------
_LEAF = PyTreeDef(None, None, ())


def _flatten(tree, is_leaf, path, out):
    node = None if is_leaf is not None and is_leaf(tree) else _node_of(type(tree))
    if node is None:
        out.append((path, tree))
        return _LEAF
    children, aux = node.flatten(tree)
    children = list(children)
    keys = node.keys(aux, len(children))
    return PyTreeDef(type(tree), aux, [_flatten(c, is_leaf, path + (k,), out) for k, c in zip(keys, children)])


def tree_flatten_with_path(tree, is_leaf=None):
    """``([(key path, leaf), ...], treedef)``: each leaf with where it sits (see :func:`keystr`)."""
    out = []
    treedef = _flatten(tree, is_leaf, (), out)
    return out, treedef


def tree_flatten(tree, is_leaf=None):
    """``(leaves, treedef)``; ``is_leaf(x)`` True stops the descent at ``x`` (it becomes a leaf)."""
    pairs, treedef = tree_flatten_with_path(tree, is_leaf)
    return [leaf for _, leaf in pairs], treedef


def tree_leaves(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[1]


def tree_unflatten(treedef, leaves):
    """The pytree of structure ``treedef`` with ``leaves`` in its holes, in flattening order."""
    if not isinstance(treedef, PyTreeDef):
        raise TypeError(f"tree_unflatten: treedef must be a PyTreeDef (from tree_flatten), got {treedef!r}")
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"tree_unflatten: {treedef} has {treedef.num_leaves} leaves, got {len(leaves)}")
    it = iter(leaves)
    return _build(treedef, it)


def _build(td, it):
    if td.node_type is None:
        return next(it)
    return _node_of(td.node_type).unflatten(td.node_data, [_build(c, it) for c in td._children])


def tree_map(f, tree, *rest, is_leaf=None):
    """``f`` applied leaf by leaf: ``f(x, *ys)`` for each leaf ``x`` of ``tree`` and the subtrees ``ys``
    of ``rest`` at the same place (each of ``rest`` has ``tree``'s structure, or it as a prefix)."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = []
    for k, other in enumerate(rest):
        try:
            others.append(treedef.flatten_up_to(other))
        except ValueError as exc:
            raise ValueError(f"tree_map: tree {k + 1} does not match the first: {exc}") from None
    return treedef.unflatten(f(*xs) for xs in zip(leaves, *others))
