"""Custom derivatives: JAX's ``custom_vjp`` and ``custom_jvp`` (and what :mod:`autodiff.remat` shares).

Each records the function as ONE node (named after it in ``graph_code``, ``draw``, the trace tables),
its value computed without recording the inner ops; the node's primitive (one per decorated function,
not in ``REGISTRY``) has rules that call the user's functions, run by the engine's two sweeps.

- ``custom_vjp``: reverse mode calls ``bwd(residuals, g)``; the residuals of ``fwd`` are kept in the
  node's parameters (``_residuals``: the views do not show parameters named with ``_``). Forward
  mode (which JAX refuses) transposes ``bwd``: J t is the vjp of ``g -> bwd(residuals, g)`` (linear
  in g), taken by the engine's reverse sweep.
- ``custom_jvp``: forward mode calls ``jvp(primals, tangents)``; reverse mode transposes it the same
  way (JAX transposes the jvp too): the cotangents are the vjp of ``tangents -> tangent_out``.
- ``checkpoint`` (:mod:`autodiff.remat`) records one node the same way, and differentiates ``f`` again.

With ``create_graph=True`` (``hessian``, grad of grad) the rules run on Tensors and ``fwd`` runs again,
recorded, so residuals and rules (engine ops) are differentiable. ``f`` returns one array; like JAX, it
must not close over a Tensor being differentiated (refused, not silently cut). Under ``autodiff.compile``
the forward pass is recorded into the program and the node keeps the user's rules, which the compiled
derivative then runs (a checkpoint is simply inlined there: compiled code keeps what it needs).
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from .primitives import Primitive, shape_of
from .sweep import forward_sweep, reverse_sweep
from . import tensor as _tensor
from .tensor import Batched, Tensor, _constant, _creation, _grad_mode, value_of

__all__ = ["custom_vjp", "custom_jvp"]

_RESERVED = frozenset({"g", "t", "out", "wanted", "fun", "_residuals"})


class _recording:
    """Recording on, whatever the caller's mode: a rule re-runs a function to differentiate it."""

    def __enter__(self):
        self.previous, _grad_mode.enabled = _grad_mode.enabled, True

    def __exit__(self, *exc):
        _grad_mode.enabled = self.previous


def _tracked(x) -> bool:
    return isinstance(x, Tensor) and x.requires_grad


def _leaves(tree):
    items = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, (tuple, list)) else None
    return [tree] if items is None else [x for item in items for x in _leaves(item)]


def _run_detached(fn, args, what):
    """``fn`` on the arguments cut from the graph: nothing is recorded, nothing kept but the result. A
    result that is tracked all the same means that ``fn`` closes over a Tensor being differentiated."""
    result = fn(*[a.detach() if isinstance(a, Tensor) else a for a in args])
    if any(_tracked(x) for x in _leaves(result)):
        raise TypeError(f"{what} uses a Tensor that requires grad without taking it as an argument (a closure): "
                        f"its gradient would be lost; pass it as an argument")
    return result


def _local_order(roots, leaves, start):
    """The nodes recorded since creation number ``start`` between the ``leaves`` and the ``roots``, in
    creation order, and their ids: the subgraph a rule recorded, never the outer graph it closes over."""
    stop = {id(w) for w in leaves}
    found, seen, stack = [], set(), list(roots)
    while stack:
        node = stack.pop()
        if not _tracked(node) or id(node) in seen or (node._seq < start and id(node) not in stop):
            continue
        seen.add(id(node))
        found.append(node)
        if id(node) not in stop:
            stack.extend(node.inputs)
    found.sort(key=lambda n: n._seq)
    order, live = [], set(stop)   # only what depends on the leaves: nothing is swept in vain
    for node in found:
        if id(node) in live or any(id(i) in live for i in node.inputs):
            live.add(id(node))
            order.append(node)
    return order, live


def _release(leaves):
    """Fresh leaves become constants: seen from outside, a rule's inputs are fixed."""
    for w in leaves:
        if w.op is None:
            w.requires_grad = False


def _pullback(fn, leaves, wrt, cotangents, create_graph):
    """Cotangents of the leaves flagged in ``wrt`` (None elsewhere, and for a zero) of ``fn(*leaves)``, a
    list of outputs seeded with ``cotangents``: ``fn`` recorded, then one reverse sweep of the engine."""
    start = next(_creation)
    with _recording():
        outs = fn(*leaves)
    seeds, roots = {}, []
    for o, c in zip(outs, cotangents):
        if c is None or not _tracked(o):
            continue
        if id(o) in seeds:
            seeds[id(o)] = seeds[id(o)] + c
        else:
            seeds[id(o)], roots = c, roots + [o]
    chosen = [w for w, f in zip(leaves, wrt) if f]
    order, ids = _local_order(roots, chosen, start)
    keep = frozenset(id(w) for w in chosen)
    adjoints = reverse_sweep(order, ids, seeds, create_graph=create_graph, keep=keep, stop=keep)
    _release(chosen)
    return [adjoints.get(id(w)) if f else None for w, f in zip(leaves, wrt)]


def _pushforward(fn, leaves, i, tangent, create_graph):
    """The tangent of ``fn(*leaves)`` (None for a zero) for the tangent of leaf ``i``: ``fn`` recorded,
    then one forward sweep of the engine."""
    start = next(_creation)
    with _recording():
        out = fn(*leaves)
    order, _ = _local_order([out], [leaves[i]], start)
    tangents = forward_sweep(order, {id(leaves[i]): tangent}, create_graph=create_graph)
    _release([leaves[i]])
    return tangents.get(id(out))


class _PerInput:
    """The per-input jvp rules of a primitive from one rule that takes the input's index first."""

    def __init__(self, rule):
        self.rule = rule

    def __getitem__(self, i):
        return functools.partial(self.rule, i)


def _single_output(value, what):
    if isinstance(value, (tuple, list, dict)):
        raise TypeError(f"{what} returned a {type(value).__name__}: only one array output is supported")
    return value_of(value)


def _name_of(fn):
    return getattr(fn, "__name__", type(fn).__name__)


def _zeros(x):
    """Zeros like x: of its shape and dtype, and mapped as x is (a vmap value's zeros are a vmap value, so
    that the rule's own sweep keeps one cotangent per example); never a NumPy conversion of x."""
    v = value_of(x)
    if type(v) is Batched:
        return Batched(_zeros(v.data), v.bdim, v.level)
    return np.zeros(shape_of(v), dtype=getattr(v, "dtype", np.float64))


def _plain(x):
    return value_of(x) if isinstance(x, Tensor) and not x.requires_grad else x


class _Custom:
    """What ``custom_vjp`` and ``custom_jvp`` share: binding the arguments, and the one recorded node."""

    kind = rule_word = ""

    def __init__(self, fun, nondiff_argnums=()):
        if not callable(fun):
            raise TypeError(f"{self.kind}: fun must be a function, got {fun!r} ({type(fun).__name__})")
        functools.update_wrapper(self, fun)
        self.fun, self.name = fun, _name_of(fun)
        if isinstance(nondiff_argnums, int) or not all(isinstance(i, int) and i >= 0 for i in nondiff_argnums):
            raise TypeError(f"{self.kind}({self.name}): nondiff_argnums must be a tuple of argument positions "
                            f"(ints >= 0), got {nondiff_argnums!r}")
        self.nondiff_argnums = tuple(sorted(set(nondiff_argnums)))
        try:
            self.signature = inspect.signature(fun)
        except (TypeError, ValueError):
            self.signature = None
        names = [p.name for p in self.signature.parameters.values()] if self.signature else []
        self._names = {i: (names[i] if i < len(names) and names[i] not in _RESERVED else f"arg{i}")
                       for i in self.nondiff_argnums}
        self._diff_names = [n for i, n in enumerate(names) if i not in self.nondiff_argnums]
        self.primitive = Primitive(self.name, self._impl, vjp_joint=self._vjp_rule, jvp=_PerInput(self._jvp_rule))
        # while autodiff.compile records: the node's value is its forward pass, recorded (input 0), and its
        # rules are the user's; compiled code copies the value ("{0}")
        self._staging = False
        self.staged = Primitive(self.name, lambda value, *args, **params: value, vjp_joint=self._staged_vjp,
                                jvp=_PerInput(self._staged_jvp), code="{0}")
        self.staged.value_input_only = True      # the program keeps input 0 only, after its sweeps
        self.primitive.uncompilable = (f"it is a {self.kind} function, whose value and {self.rule_word} are Python "
                                       f"functions that autodiff.compile does not trace")

    def _bind(self, args, kwargs):
        if self.signature is not None:    # keywords and defaults by position, as JAX does
            bound = self.signature.bind(*args, **kwargs)
            bound.apply_defaults()
            args, kwargs = bound.args, bound.kwargs
        if kwargs:
            raise TypeError(f"{self.name}(): {self.kind} takes positional arguments only, got {sorted(kwargs)}")
        for i in self.nondiff_argnums:
            if i >= len(args):
                raise TypeError(f"{self.name}(): nondiff_argnums names argument {i}, but it was called with "
                                f"{len(args)} argument(s)")
            if _tracked(args[i]):
                raise TypeError(f"{self.name}(): argument {i} ({self._names[i]!r}) is in nondiff_argnums but is a "
                                f"Tensor that requires grad; pass it as a differentiable argument")
        return tuple(args)

    def _merge(self, diff, params):
        """All the arguments in order, from the differentiable ones and the node's static parameters."""
        diff = list(diff)
        total = len(diff) + len(self.nondiff_argnums)
        return [params[self._names[i]] if i in self.nondiff_argnums else diff.pop(0) for i in range(total)]

    def _nondiff(self, params):
        return [params[self._names[i]] for i in self.nondiff_argnums]

    def __call__(self, *args, **kwargs):
        self._check_defined()
        args = self._bind(args, kwargs)
        diff = [a for i, a in enumerate(args) if i not in self.nondiff_argnums]
        statics = {self._names[i]: args[i] for i in self.nondiff_argnums}
        if not (_grad_mode.enabled and any(_tracked(a) for a in diff)):
            return self.fun(*args)      # nothing to differentiate: the function itself, as JAX does
        if _tensor.compiling:
            return self.fun(*args) if self._staging else self._staged_call(args, diff, statics)
        value, extra = self._forward(args)
        value = _single_output(value, f"{self.kind} function {self.name!r}")
        dtype = getattr(value, "dtype", None)
        inputs = tuple(a if isinstance(a, Tensor) else _constant(a, dtype) for a in diff)
        return Tensor._make(value, self.primitive, inputs, {**statics, **extra}, requires_grad=True)

    def _staged_call(self, args, diff, statics):
        """Under autodiff.compile: the forward pass recorded into the program, then one node with the rules."""
        self._staging = True           # fwd may call the function itself (JAX's idiom): its plain value then
        try:
            with _recording():
                value, extra = self._forward_recorded(args)
        finally:
            self._staging = False
        _single_output(value, f"{self.kind} function {self.name!r}")
        if not _tracked(value):
            value = Tensor._make(value._value if isinstance(value, Tensor) else np.asarray(value))
        inputs = tuple(a if isinstance(a, Tensor) else _constant(a, value.dtype) for a in diff)
        return Tensor._make(value._value, self.staged, (value,) + inputs, {**statics, **extra}, requires_grad=True)

    def _staged_vjp(self, g, out, value, *args, wanted, **params):
        return [None] + list(self._vjp_rule(g, out, *args, wanted=wanted[1:], **params))

    def _staged_jvp(self, i, t, out, value, *args, **params):
        return None if i == 0 else self._jvp_rule(i - 1, t, out, *args, **params)

    def _impl(self, *values, **params):
        """The value at plain inputs (gradcheck's differences call it): the function, nothing recorded."""
        params.pop("_residuals", None)
        args = self._merge([Tensor._make(v) for v in values], params)
        return _single_output(_run_detached(self.fun, args, f"{self.kind} function {self.name!r}"), self.name)

    def _argument(self, k):
        """Differentiable argument ``k`` in words: its position and name."""
        return f"argument {k} ({self._diff_names[k]!r})" if k < len(self._diff_names) else f"argument {k}"

    def _check_tangent(self, tangent, out, what):
        if tangent is not None and shape_of(tangent) != shape_of(out):
            raise ValueError(f"{self.kind} {self.name!r}: {what} has shape {shape_of(tangent)}, but {self.name}'s "
                             f"output has shape {shape_of(out)}")
        return tangent


def _as_primals(args, create_graph):
    """A rule's inputs as the user's function sees them: Tensors (untracked constants in plain mode)."""
    return [a if create_graph or isinstance(a, Tensor) else Tensor._make(a) for a in args]


class custom_vjp(_Custom):
    """``@custom_vjp``: ``f`` with a reverse rule of one's own, as ``jax.custom_vjp``.

    ``f.defvjp(fwd, bwd)``: ``fwd(*args) -> (out, residuals)`` and ``bwd(*nondiff_args, residuals, g) ->``
    a tuple of one cotangent per differentiable argument (None: zero), written with engine ops.
    ``nondiff_argnums``: arguments that are not differentiated (numbers, functions), passed to bwd first.

    >>> import autodiff as ad
    >>> @custom_vjp
    ... def f(x, y):
    ...     return ad.sin(x) * y
    >>> f.defvjp(lambda x, y: (f(x, y), (ad.cos(x), ad.sin(x), y)),
    ...          lambda res, g: (res[0] * g * res[2], res[1] * g))
    >>> print(f"{ad.grad(f)(2.0, 3.0):.7f}")          # JAX's documentation: -1.2484405
    -1.2484405
    """

    kind, rule_word = "custom_vjp", "backward rule"

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        """Set the forward pass ``fwd`` (value and residuals) and the backward pass ``bwd``."""
        for what, rule in (("fwd", fwd), ("bwd", bwd)):
            if not callable(rule):
                raise TypeError(f"{self.name}.defvjp: {what} must be a function, got {rule!r} ({type(rule).__name__})")
        self.fwd, self.bwd = fwd, bwd

    def _check_defined(self):
        if self.bwd is None:
            raise TypeError(f"custom_vjp function {self.name!r} has no VJP: call {self.name}.defvjp(fwd, bwd) "
                            f"before calling it")

    def _forward(self, args):
        what = f"custom_vjp {self.name!r}: fwd {_name_of(self.fwd)}"
        pair = _run_detached(self.fwd, args, what)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{what} must return a pair (output, residuals), got {type(pair).__name__}")
        return pair[0], {"_residuals": pair[1]}

    def _forward_recorded(self, args):
        pair = self.fwd(*args)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"custom_vjp {self.name!r}: fwd {_name_of(self.fwd)} must return a pair (output, "
                            f"residuals), got {type(pair).__name__}")
        return pair[0], {"_residuals": pair[1]}

    def _residuals(self, args, params, create_graph):
        """The stored residuals; with create_graph, fwd again on the inputs, recorded (so differentiable),
        unless they were recorded with the program already (autodiff.compile)."""
        if not create_graph or any(_tracked(r) for r in _leaves(params["_residuals"])):
            return params["_residuals"]
        with _recording():
            return self.fwd(*self._merge(args, params))[1]

    def _cotangents(self, params, residuals, g, args):
        cts = self.bwd(*self._nondiff(params), residuals, g)
        what = f"custom_vjp {self.name!r}: bwd {_name_of(self.bwd)}"
        if not isinstance(cts, (tuple, list)):
            raise TypeError(f"{what} must return a tuple of cotangents, one per differentiable argument (here "
                            f"{len(args)}), got {type(cts).__name__}: return (g_x,) for one argument")
        if len(cts) != len(args):
            raise TypeError(f"{what} returned {len(cts)} cotangent(s), but {self.name} has {len(args)} "
                            f"differentiable argument(s): return one per argument (None for no gradient)")
        for k, (c, a) in enumerate(zip(cts, args)):
            if c is not None and shape_of(c) != shape_of(a):
                raise ValueError(f"{what} returned a cotangent of shape {shape_of(c)} for {self._argument(k)}, but "
                                 f"that argument has shape {shape_of(a)}")
        return cts

    def _vjp_rule(self, g, out, *args, wanted, **params):
        create_graph = isinstance(out, Tensor)
        cts = self._cotangents(params, self._residuals(args, params, create_graph), g, args)
        return [(c if create_graph else _plain(c)) if w else None for c, w in zip(cts, wanted)]

    def _jvp_rule(self, i, t, out, *args, **params):
        create_graph = isinstance(out, Tensor)
        residuals = self._residuals(args, params, create_graph)
        g = Tensor._make(_zeros(out), requires_grad=True)
        [tangent] = _pullback(lambda g: [self._cotangents(params, residuals, g, args)[i]], [g], [True], [t],
                              create_graph or isinstance(t, Tensor))
        return tangent if create_graph else _plain(tangent)


class custom_jvp(_Custom):
    """``@custom_jvp``: ``f`` with a forward rule of one's own, as ``jax.custom_jvp``.

    ``f.defjvp(jvp)`` (also a decorator): ``jvp(*nondiff_args, primals, tangents) -> (out, tangent_out)``,
    linear in the tangents, written with engine ops. Reverse mode transposes it: the engine records
    it with the tangents as leaves and takes their vjp (one reverse sweep), as JAX transposes it.

    >>> import numpy as np
    >>> import autodiff as ad
    >>> @custom_jvp
    ... def log1pexp(x):
    ...     return ad.log(1.0 + ad.exp(x))
    >>> @log1pexp.defjvp
    ... def log1pexp_jvp(primals, tangents):
    ...     (x,), (x_dot,) = primals, tangents
    ...     return log1pexp(x), (1 - 1 / (1 + ad.exp(x))) * x_dot
    >>> with np.errstate(over="ignore"):                # exp(100) overflows in float32
    ...     print(ad.grad(log1pexp)(np.float32(100.0)))      # the naive gradient is nan
    1.0
    """

    kind, rule_word = "custom_jvp", "forward rule"

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.jvp = None

    def defjvp(self, jvp):
        """Set the forward rule ``jvp(primals, tangents) -> (out, tangent_out)``; returns it (a decorator)."""
        if not callable(jvp):
            raise TypeError(f"{self.name}.defjvp: jvp must be a function, got {jvp!r} ({type(jvp).__name__})")
        self.jvp = jvp
        return jvp

    def defjvps(self, *jvps):
        """One rule per argument, ``jvp_i(t_i, out, *primals)`` (None: no dependence), summed (JAX's defjvps)."""
        if self.nondiff_argnums:
            raise TypeError(f"{self.name}.defjvps cannot be used with nondiff_argnums: use defjvp")
        for k, rule in enumerate(jvps):
            if rule is not None and not callable(rule):
                raise TypeError(f"{self.name}.defjvps: rule {k} must be a function or None, got {rule!r}")

        def jvp(primals, tangents):
            out = self.fun(*primals)
            terms = [rule(t, out, *primals) for rule, t in zip(jvps, tangents) if rule is not None]
            return out, functools.reduce(lambda a, b: a + b, terms) if terms else _zeros(out)

        jvp.__name__ = f"{self.name}_jvps"
        self.defjvp(jvp)

    def _check_defined(self):
        if self.jvp is None:
            raise TypeError(f"custom_jvp function {self.name!r} has no JVP: call {self.name}.defjvp(jvp) "
                            f"before calling it")

    def _forward(self, args):
        return _run_detached(self.fun, args, f"custom_jvp function {self.name!r}"), {}

    def _forward_recorded(self, args):
        return self.fun(*args), {}

    def _tangent(self, primals, tangents, out, params):
        pair = self.jvp(*self._nondiff(params), tuple(primals), tuple(tangents))
        what = f"custom_jvp {self.name!r}: jvp {_name_of(self.jvp)}"
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{what} must return a pair (primal_out, tangent_out), got {type(pair).__name__}")
        return self._check_tangent(pair[1], out, f"jvp {_name_of(self.jvp)}'s tangent_out")

    def _jvp_rule(self, i, t, out, *args, **params):
        create_graph = isinstance(out, Tensor)
        tangents = [_zeros(a) for a in args]
        tangents[i] = t
        tangent = self._tangent(_as_primals(args, create_graph), tangents, out, params)
        return tangent if create_graph else _plain(tangent)

    def _vjp_rule(self, g, out, *args, wanted, **params):
        create_graph = isinstance(out, Tensor)
        primals = _as_primals(args, create_graph)
        leaves = [Tensor._make(_zeros(a), requires_grad=True) if w else _zeros(a) for a, w in zip(args, wanted)]
        cts = _pullback(lambda *ts: [self._tangent(primals, ts, out, params)], leaves, wanted, [g],
                        create_graph or isinstance(g, Tensor))
        return cts if create_graph else [None if c is None else _plain(c) for c in cts]
