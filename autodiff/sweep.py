"""The two sweeps over a recorded graph: reverse mode (Algorithm 2) and forward mode (tangents).

Both visit the nodes in a topological order computed iteratively (no recursion, so a chain of
100,000 ops is fine). Reverse mode visits it backwards and accumulates adjoints with the vjp rules
(``dy/da = dy/dc dc/da + dy/db db/da``, eq. 5.39: a node used by several consumers gets the sum of
their contributions). Forward mode visits it forwards and pushes tangents with the jvp rules.

With ``create_graph=False`` the rules run on plain NumPy arrays and nothing is recorded; with
``create_graph=True`` they run on the graph's Tensors, so the derivative is itself a graph that can
be differentiated again (and that :func:`autodiff.compile` writes out as code).

These are the engine's only two sweeps: ``backward()``, the functional API, gradcheck, the trace
tables, the drawings, the player and the compiler all call them, and attach to them through the
``on_node`` and ``on_edge`` hooks. The rules come from the tables of :mod:`autodiff.primitives`.

The user's hooks (``t.register_hook(fn)``, PyTorch's) run here too, in the reverse sweep, so every
caller above sees them: ``fn(adjoint)`` when t's adjoint is complete, before it flows into t's inputs
(or, for a leaf, into ``.grad``); what fn returns (None: keep it) replaces it. Anomaly mode
(:mod:`autodiff.anomaly`) checks each cotangent a rule returns while it is on.
"""
from __future__ import annotations

import numpy as np

from . import tensor as _tensor
from .buffers import empty as pooled_empty, ufunc as pooled
from .primitives import accumulate_rules, fused_vjp_rules, joint_vjp_rules, jvp_rules, vjp_rules
from .tensor import Batched, Tensor, _foreign

#: ``unmapped_cotangent(c, value)``: a cotangent from inside a map, summed over the maps ``value`` is not
#: in (an argument vmap did not map, a Tensor ``f`` closes over); set by autodiff.batching.
unmapped_cotangent = None



class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook off again (twice is harmless)."""

    __slots__ = ("_tensor", "_hook")

    def __init__(self, tensor, hook):
        self._tensor, self._hook = tensor, hook

    def remove(self) -> None:
        hooks = self._tensor._hooks
        if hooks is not None and self._hook in hooks:
            hooks.remove(self._hook)
            if not hooks:
                self._tensor._hooks = None

    def __repr__(self):
        return f"RemovableHandle({getattr(self._hook, '__name__', self._hook)!r})"


def add_hook(t: Tensor, hook) -> RemovableHandle:
    """``t.register_hook(hook)`` (see :meth:`autodiff.operators.TensorSyntax.register_hook`)."""
    if not callable(hook):
        raise TypeError(f"register_hook: hook must be a function of the gradient, got {hook!r}")
    if not t.requires_grad:
        raise RuntimeError("register_hook: cannot register a hook on a Tensor that doesn't require grad "
                           "(it has no gradient: create it with requires_grad=True)")
    if t._hooks is None:
        t._hooks = []
    t._hooks.append(hook)
    return RemovableHandle(t, hook)


def _run_hooks(node, g):
    """The node's hooks in the order they were registered, each given what the one before returned."""
    for hook in list(node._hooks):
        new = hook(g)
        if new is not None:
            if _shape(new) != _shape(g):
                raise RuntimeError(f"register_hook: hook {getattr(hook, '__name__', hook)!r} returned a gradient of "
                                   f"shape {_shape(new)}, but the Tensor's gradient has shape {_shape(g)}")
            g = new
    return g

def toposort(roots, stop=frozenset()):
    """Nodes that the ``roots`` depend on through tracked Tensors, each after all its inputs.

    Returns ``(order, ids)``: the list in the order the program created the nodes (a topological
    order, and the order of eq. 5.38's lines), and the set of ``id``s of its nodes. The walk
    (an iterative depth-first search) does not descend below nodes whose id is in ``stop``.
    """
    order = []
    visited = set()
    stack = [r for r in roots if isinstance(r, Tensor) and r.requires_grad]
    while stack:        # every node reached once; creation order is a topological order (inputs exist first)
        node = stack.pop()
        nid = id(node)
        if nid in visited:
            continue
        visited.add(nid)
        order.append(node)
        if nid in stop:
            continue
        for inp in node.inputs:
            if inp.requires_grad and id(inp) not in visited:
                stack.append(inp)
    order.sort(key=_creation_order)
    return order, visited


def _creation_order(node):
    return node._seq


def _shape(x):
    try:
        return x.shape
    except AttributeError:
        return np.shape(x)


def _check_rule_shape(c, shape, prim, i, rule):
    """A vjp rule returns its input's shape, a jvp rule its output's: say which rule broke this."""
    if _shape(c) != shape:
        what, whose = ("cotangent", "input") if rule == "vjp" else ("tangent", "output")
        raise RuntimeError(f"the {rule} rule of {prim.name!r} returned a {what} of shape {_shape(c)} for input {i}, "
                           f"but the {whose} has shape {shape}: a rule must return its {whose}'s shape")


def _check_joint(cotangents, inputs, prim):
    """A joint vjp rule returns one cotangent (or None) per input: say which rule broke that."""
    if not isinstance(cotangents, (tuple, list)) or len(cotangents) != len(inputs):
        got = f"{type(cotangents).__name__} of length {len(cotangents)}" if isinstance(cotangents, (tuple, list)) \
            else type(cotangents).__name__
        raise RuntimeError(f"the joint vjp rule of {prim.name!r} returned {got}, but a joint rule returns a tuple "
                           f"of {len(inputs)} cotangents (None for an input not wanted)")


def reverse_sweep(order, ids, seeds, *, create_graph=False, keep=None, stop=frozenset(), on_edge=None,
                  on_node=None):
    """Algorithm 2: adjoints dy/dv of the nodes in ``order``, from the ``seeds`` {id: adjoint}.

    Returns {id(node): adjoint} for the nodes whose id is in ``keep`` (every node if ``keep`` is
    None). Adjoints flow only into inputs that are in the sweep (``ids``), never below ``stop``.
    Adjoints of nodes not reached are absent (zero). A primitive with a joint rule is called once
    per node for all its inputs in the sweep; otherwise each such input's rule is called.

    Hooks, for the views that show or transform the sweep (drawings, trace tables, the player, the
    compiler): ``on_node(node, adjoint)`` is called when a node's adjoint is complete, before its
    rules run, and returns the adjoint to use (the compiler names it ``a_bar``);
    ``on_edge(node, i, input, contribution)`` is called for each contribution. The node's own hooks
    (``register_hook``) run first, so the adjoint that on_node sees, that is kept and that flows on
    is the one they return.

    Eager sweeps (``create_graph=False``) with no on_edge and no anomaly mode add a contribution into
    an adjoint array the sweep made itself (``owned``: never a seed, a rule's result or one handed out)
    in place, and use a primitive's accumulate rule (getitem's) where it has one; with ``keep`` given and no
    on_node, also a fused rule (``fused_vjp_rules``) where a node's one input feeds it alone.
    """
    adjoint = dict(seeds)
    kept = {}
    anomaly = _tensor._anomaly    # detect_anomaly's checker while it is on (autodiff.anomaly), else None
    joint_of, rules_of = joint_vjp_rules.get, vjp_rules.__getitem__     # looked up once, not per node
    in_place = not create_graph and on_edge is None and anomaly is None
    accumulate_of = accumulate_rules.get if in_place else _none
    fused_of = fused_vjp_rules.get if in_place and on_node is None and keep is not None else _none
    uses = {}           # how many nodes of the sweep read each node (counted when a fused rule first asks)
    owned = set()       # ids whose adjoint is an array only this sweep holds (it may write into it)
    batching = _tensor.batching_used     # vmap has been used in this process (its values may appear)
    for node in reversed(order):
        nid = id(node)
        g = adjoint.pop(nid, None)
        if g is None:
            continue
        if node._hooks is not None:
            g = _run_hooks(node, g)
        if on_node is not None:
            g = on_node(node, g)
        if keep is None or nid in keep:
            kept[nid] = g
        prim = node.op
        if prim is None or nid in stop:
            continue
        fused = fused_of(prim)
        if fused is not None:
            fused = _fused_cotangents(fused, node, g, ids, keep, stop, adjoint, order, uses)
        if fused is not None:         # the inner node's inputs get their cotangents here; the inner node is skipped
            node, cotangents = fused
            prim, inputs, rules, accumulate = node.op, node.inputs, None, None
        else:
            inputs = node.inputs
            if create_graph:
                out, args = node, inputs
            else:
                out, args = node._value, [inp._value for inp in inputs]
            params = node.params
            joint = joint_of(prim)
            cotangents = rules = None
            accumulate = accumulate_of(prim) if joint is None and g.__class__ is np.ndarray else None
            if joint is not None:
                cotangents = joint(g, out, *args, wanted=tuple(id(inp) in ids for inp in inputs), **params)
                _check_joint(cotangents, inputs, prim)
            else:
                rules = rules_of(prim)
        for i, inp in enumerate(inputs):
            key = id(inp)
            if key not in ids:
                continue
            if accumulate is not None and accumulate[i] is not None:
                acc = _accumulator(adjoint, owned, key, inp._value, g.dtype)
                if acc is not None:
                    accumulate[i](acc, g, out, *args, **params)
                    continue
            if cotangents is not None:
                c = cotangents[i]
            else:
                c = rules[i](g, out, *args, **params) if params else rules[i](g, out, *args)
            if c is None:
                continue
            if batching and (type(c) is Batched or (type(c) is Tensor and type(c._value) is Batched)):
                c = unmapped_cotangent(c, inp._value)    # vmap: summed over the examples of a map inp is not in
            if getattr(c, "shape", None) != inp._value.shape:
                _check_rule_shape(c, inp._value.shape, prim, i, "vjp")
            if anomaly is not None:
                anomaly.cotangent(node, i, c, g, order, seeds)
            if on_edge is not None:
                on_edge(node, i, inp, c)
            previous = adjoint.get(key)
            if previous is None:
                adjoint[key] = c
            elif previous.__class__ is np.ndarray and c.__class__ is np.ndarray:
                if key in owned and c.dtype == previous.dtype:
                    np.add(previous, c, out=previous)
                else:
                    total = adjoint[key] = pooled(np.add, previous, c)
                    if in_place and total.__class__ is np.ndarray:
                        owned.add(key)
            else:
                adjoint[key] = previous + c
                owned.discard(key)
    return kept


def _none(prim):
    return None


def _fused_cotangents(rules, node, g, ids, keep, stop, adjoint, order, uses):
    """``(inner, cotangents)``: the cotangents of the inputs of ``node``'s one input ``inner`` by the fused rule
    (``rules``: fused_vjp_rules[node.op]) for inner's primitive, where the sweep may skip inner's own adjoint:
    it is wanted, feeds nothing but ``node``, is neither kept, a stop, seeded nor hooked, and every value is
    a NumPy array. None where no rule applies (or the rule declines): the sweep goes the usual way."""
    if len(node.inputs) != 1 or g.__class__ is not np.ndarray:
        return None
    inner = node.inputs[0]
    rule, key = rules.get(inner.op), id(inner)
    if (rule is None or key not in ids or key in keep or key in stop or key in adjoint or inner._hooks is not None
            or node._value.__class__ is not np.ndarray or inner._value.__class__ is not np.ndarray):
        return None
    if not uses:
        for n in order:
            for inp in n.inputs:
                uses[id(inp)] = uses.get(id(inp), 0) + 1
    values = [inp._value for inp in inner.inputs]
    if uses[key] != 1 or any(v.__class__ is not np.ndarray for v in values):
        return None
    cotangents = rule(g, node._value, inner._value, *values, wanted=tuple(id(inp) in ids for inp in inner.inputs),
                      params=node.params, inner_params=inner.params)
    if cotangents is None:
        return None
    _check_joint(cotangents, inner.inputs, inner.op)
    return inner, cotangents


def _accumulator(adjoint, owned, key, value, dtype):
    """The array of ``value``'s shape that an accumulate rule adds into: the sweep's own adjoint of ``key``,
    or a new one (zeros, or a copy of the adjoint so far) that the sweep then owns; None where the
    contribution must go the general way (a Batched or foreign value, a dtype that would change)."""
    if value.__class__ is not np.ndarray or dtype.kind not in "fc":
        return None
    previous = adjoint.get(key)
    if key in owned:
        return previous if previous.dtype == dtype else None
    acc = pooled_empty(value.shape, dtype)
    if previous is None:
        acc.fill(0)
    elif previous.__class__ is np.ndarray and previous.dtype == dtype and previous.shape == value.shape:
        np.copyto(acc, previous)
    else:
        return None
    adjoint[key] = acc
    owned.add(key)
    return acc


def forward_sweep(order, seeds, *, create_graph=False, on_edge=None, on_node=None):
    """Forward mode: tangents of the nodes in ``order`` from the ``seeds`` {id: tangent}.

    Each node's tangent is the sum over its inputs of the jvp rule applied to the input's tangent
    (inputs without a tangent contribute nothing); each rule returns the output's shape. Returns
    {id(node): tangent} for every node with a tangent; seeded nodes keep their seed. Hooks as in
    :func:`reverse_sweep`: ``on_edge(node, i, input, contribution)`` for each contribution, and
    ``on_node(node, tangent)`` when a node's tangent is complete (it returns the tangent to keep).
    """
    tangent = dict(seeds)
    rules_of = jvp_rules.__getitem__
    for node in order:
        prim = node.op
        nid = id(node)
        if prim is None or nid in seeds:
            continue
        inputs = node.inputs
        total = args = None
        for i, inp in enumerate(inputs):
            t = tangent.get(id(inp))
            if t is None:
                continue
            if args is None:
                out, args = (node, inputs) if create_graph else (node._value, [x._value for x in inputs])
                rules = rules_of(prim)
            c = rules[i](t, out, *args, **node.params)
            if c is None:
                continue
            _check_rule_shape(c, node._value.shape, prim, i, "jvp")
            if on_edge is not None:
                on_edge(node, i, inp, c)
            total = c if total is None else total + c
        if total is None:
            continue
        tangent[nid] = total if on_node is None else on_node(node, total)
    return tangent


def accumulate_into_grads(y: Tensor, gradient, create_graph: bool) -> None:
    """``y.backward(gradient)``: reverse sweep from y, adjoints added to ``.grad`` (see Tensor.backward)."""
    if not y.requires_grad:
        raise RuntimeError("backward(): this Tensor does not require grad: it does not depend on any "
                           "Tensor created with requires_grad=True (or it was computed under no_grad)")
    if gradient is None:
        if y.size != 1:
            raise ValueError(f"backward(): the output has shape {y.shape}, not a scalar; pass "
                             f"gradient= (the seed dL/dy, of shape {y.shape})")
        seed = np.ones(y.shape, dtype=y.dtype)
    else:
        if isinstance(gradient, Tensor) and create_graph:
            seed = gradient
        else:
            raw = gradient.value if isinstance(gradient, Tensor) else gradient
            try:
                seed = np.array(raw, dtype=y.dtype)
            except (TypeError, ValueError):
                raise TypeError(f"backward(): gradient must be a number or an array of the output's shape "
                                f"{y.shape}, got {raw!r}") from None
        if _shape(seed) != y.shape:
            raise ValueError(f"backward(): gradient has shape {_shape(seed)} but the output has shape {y.shape}")
    order, ids = toposort([y])
    keep = {id(n) for n in order if n.op is None or n._retains_grad}
    adjoints = reverse_sweep(order, ids, {id(y): seed}, create_graph=create_graph, keep=keep)
    stored = set()
    for node in order:
        g = adjoints.get(id(node))
        if g is None:
            continue
        if create_graph:
            g = g if isinstance(g, Tensor) else Tensor._make(np.array(g))
        elif _foreign(g):   # an array of another library (on a GPU, say): stays there, a copy if shared
            if id(g) in stored:
                g = g.copy()
            stored.add(id(g))
        else:
            g = np.asarray(g)
            # .grad must be a writeable array of its own (adjoints may be broadcast views, or shared)
            if id(g) in stored or not g.flags.writeable or not g.flags.owndata:
                g = np.array(g)
            stored.add(id(g))
        node.grad = g if node.grad is None else node.grad + g
