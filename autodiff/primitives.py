"""Primitives and their transformation tables: the elementary functions f^e of the source
material's Algorithms 1 and 2, and what each transformation does with them.

A transformation is an interpreter over the recorded graph with a table of rules, one per primitive
(as in JAX's autodidax): the reverse sweep reads :data:`vjp_rules` (and :data:`joint_vjp_rules`),
the forward sweep :data:`jvp_rules`, :func:`autodiff.to_sympy` :data:`sympy_rules`,
:func:`autodiff.compile` :data:`code_rules`. A new transformation is a new :class:`RuleTable` and
an interpreter that reads it; it never edits an op's declaration. ``@primitive`` fills the tables
from one declaration, everything about the op side by side:

- ``impl``: how to compute the value, with NumPy;
- ``vjp``: the reverse rule, one function per input: cotangent of the output -> cotangent of input i;
  or ``vjp_joint``: one function that returns the cotangents of every input that needs one, in one
  call (a convolution computes dx, dw and db from one call, g masked once);
- ``jvp``: the forward rule, one function per input: tangent of input i -> its share of the output
  tangent (the shares are summed);
- ``sympy``: the matching SymPy function, for scalar ops (symbolic cross-checks);
- ``code``: how :func:`autodiff.compile` writes the value (its derivatives are the rules above, recorded);
- ``samples``: valid random arguments, so that the test suite checks every declared primitive;
- ``kinks`` (non-differentiable ops only): functions of the inputs that are zero where the op is not
  differentiable (``relu``: x; ``maximum``: a - b), so that gradient checks can tell a kink from a bug.

Rules have the signature ``rule(g, out, *inputs, **params)`` and are written with the engine's own
ops (``g * cos(x)``, not ``g * np.cos(x)``). The sweeps call them with plain arrays when no
derivative of the derivative is wanted, and with Tensors (building a new graph) when one is; that
recorded graph is also what :func:`autodiff.compile` prints, so each derivative is written once.

For elementwise ops it is enough to give ``partials``: the local derivative d out / d input_i, as
in the source material's eq. 5.40 (dd/dc = exp(c), dh/dg = cos(g), df/de = 2e). Then
``vjp_i = g * partial_i`` (summed back to the input's shape where the input was broadcast) and
``jvp_i = t * partial_i`` (broadcast to the output's shape).

Shapes: a vjp rule returns its input's shape, a jvp rule its output's shape; the sweeps check both.
Broadcasting is therefore part of the rules, and the two primitives it needs, ``sum_to`` and
``broadcast_to`` (each the other's adjoint), are declared here, at the end of this module, so that
the rules built from ``partials`` can use them: this rung imports only :mod:`autodiff.tensor`.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable

import numpy as np

from .buffers import ufunc as pooled
from .samples import cases1
from .tensor import apply

#: Every declared primitive, by name. Tests iterate over it.
REGISTRY: dict[str, "Primitive"] = {}


class RuleTable(dict):
    """One transformation's rules, keyed by primitive (autodidax's ``jvp_rules``, ``vmap_rules``).

    ``table[prim]`` is the rule, or a NotImplementedError naming the primitive and the
    transformation; ``table.get(prim)`` is None where there is none; ``@table.register(op)``
    adds a rule for an op (its public function or its Primitive).

    >>> import autodiff as ad
    >>> flops = RuleTable("flop count")
    >>> @flops.register(ad.mul)
    ... def _(out_size):
    ...     return out_size
    >>> flops[ad.mul.primitive](6), flops.get(ad.sin.primitive)
    (6, None)
    >>> flops[ad.sin.primitive]
    Traceback (most recent call last):
    NotImplementedError: primitive 'sin' has no flop count rule
    """

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def __missing__(self, prim):
        raise NotImplementedError(f"primitive {getattr(prim, 'name', prim)!r} has no {self.name} rule")

    def register(self, op):
        prim = getattr(op, "primitive", op)

        def add(rule):
            self[prim] = rule
            return rule

        return add


#: The reverse rules: a tuple of per-input rules ``rule(g, out, *inputs, **params)``.
vjp_rules = RuleTable("vjp")
#: Joint reverse rules ``rule(g, out, *inputs, wanted, **params) -> (cotangent or None, ...)``: one call
#: gives every input whose ``wanted`` flag is set; the sweep prefers it to the per-input rules.
joint_vjp_rules = RuleTable("joint vjp")
#: In-place reverse rules ``rule(acc, g, out, *inputs, **params)``, one per input (None: the vjp's): add
#: input i's cotangent (of g's dtype) into ``acc``, an array of the input's shape that the eager sweep owns,
#: instead of returning a mostly-zero array to be added up (getitem: ``acc[index] += g``). Registered apart.
accumulate_rules = RuleTable("accumulate")
#: Fused reverse rules: ``fused_vjp_rules[outer][inner] = rule(g, out, inner_out, *inner_inputs, wanted, params,
#: inner_params) -> (cotangent or None, ...)``, one per input of the inner node, or None to decline. The eager
#: sweep calls it at an ``outer`` node whose one input is an ``inner`` node that feeds nothing else (and that
#: no hook, retained grad or view looks at): the inner node's cotangents straight from the outer node's
#: adjoint, without the full-size adjoint between them (conv2d_relu then max_pool2d). Registered apart
#: (``fuse_vjp``); the result must be what the two rules give one after the other.
fused_vjp_rules = RuleTable("fused vjp")
#: The forward rules: a tuple of per-input rules ``rule(t, out, *inputs, **params)``.
jvp_rules = RuleTable("jvp")
#: The SymPy counterparts (scalar ops): a SymPy function, or its name in the ``sympy`` module.
sympy_rules = RuleTable("SymPy")
#: How autodiff.compile writes the value: an element template (``"sin({0})"``) or ``"impl"`` (a call of
#: the NumPy implementation between loops). A primitive absent from it is refused by name.
code_rules = RuleTable("code generation")

#: vmap's batching rules ``rule(prim, datas, bdims, size, level, **params) -> (out, out_bdim)`` (JAX's
#: ``vmap_rules``), registered by :mod:`autodiff.batching_rules` and by nn for its ops; a primitive
#: without one runs once per example (and vmap says so).
batch_rules = RuleTable("batching")

#: The tables above, which ``@primitive`` fills (the batching rules are registered apart).
TABLES = (vjp_rules, joint_vjp_rules, jvp_rules, sympy_rules, code_rules)


def fuse_vjp(outer, inner):
    """Register the decorated function as the fused reverse rule of ``outer`` over ``inner`` (ops or
    primitives): see :data:`fused_vjp_rules`. nn registers max_pool2d over conv2d_relu this way.

    >>> import numpy as np
    >>> import autodiff as ad
    >>> @primitive(partials=[lambda out, x: 3 * ad.ones_like(x)])
    ... def doc_triple(x):
    ...     return 3 * x
    >>> calls = []
    >>> @fuse_vjp(ad.exp, doc_triple)
    ... def _(g, out, inner_out, x, *, wanted, params, inner_params):
    ...     calls.append(wanted)
    ...     return (3 * g * out,)          # d exp(3x) / dx, without 3x's adjoint in between
    >>> x = ad.Tensor(np.array([0.0, 1.0]), requires_grad=True)
    >>> ad.exp(doc_triple(x)).sum().backward()
    >>> calls, np.allclose(x.grad, 3 * np.exp(3 * x.value))
    ([(True,)], True)
    >>> del fused_vjp_rules[ad.exp.primitive]              # (the example's rule, gone again)
    """
    outer, inner = getattr(outer, "primitive", outer), getattr(inner, "primitive", inner)

    def add(rule):
        fused_vjp_rules.setdefault(outer, {})[inner] = rule
        return rule

    return add


def _rule_in(table):
    """A Primitive attribute that reads its rule in ``table`` (None where it has none)."""
    return property(lambda prim: table.get(prim), doc=f"the primitive's {table.name} rule, or None")


class Primitive:
    """An elementary operation: its name, NumPy implementation and what the tests need. Its rules
    live in the tables of this module (the keyword arguments given here are put there); the
    attributes ``vjp``, ``joint_vjp``, ``jvp``, ``sympy`` and ``code`` read them back."""

    #: Whether a static parameter may hold a value mapped by vmap (getitem's index: x[labels]).
    batched_params = False

    def __init__(self, name: str, impl: Callable, *, vjp=None, jvp=None, vjp_joint=None, sympy=None, code=None,
                 symbol: str | None = None, samples: Callable | None = None, variadic: bool = False, nin: int = 1,
                 kinks=()):
        self.name = name
        self.impl = impl
        self.symbol = symbol or name
        self.samples = samples
        self.variadic = variadic
        self.nin = nin
        self.kinks = tuple(kinks)
        for table, rule in zip(TABLES, (vjp, vjp_joint, jvp, sympy, code)):
            if rule is not None:
                table[self] = rule

    def __repr__(self):
        return f"<primitive {self.name}>"

    vjp = _rule_in(vjp_rules)
    joint_vjp = _rule_in(joint_vjp_rules)
    jvp = _rule_in(jvp_rules)
    sympy = _rule_in(sympy_rules)
    code = _rule_in(code_rules)

    def to_sympy(self, *args, **params):
        """Apply the SymPy counterpart to SymPy arguments (raises if the op has none)."""
        rule = sympy_rules.get(self)
        if rule is None:
            raise NotImplementedError(f"primitive {self.name!r} has no SymPy counterpart")
        if isinstance(rule, str):
            import sympy

            return getattr(sympy, rule)(*args, **params)
        return rule(*args, **params)

    def cotangents(self, g, out, args, params, wanted):
        """The cotangents of the inputs flagged in ``wanted`` (None for the others, and for a zero): one
        call of the joint rule where the primitive has one, else each wanted input's own rule."""
        joint = joint_vjp_rules.get(self)
        if joint is not None:
            return joint(g, out, *args, wanted=wanted, **params)
        rules = vjp_rules[self]
        return [rules[i](g, out, *args, **params) if w else None for i, w in enumerate(wanted)]


class _ArgnumRules:
    """Per-input rules of a variadic primitive, from one rule that takes ``argnum=i``."""

    def __init__(self, rule):
        self.rule = rule

    def __getitem__(self, i):
        rule = self.rule
        return lambda g, out, *inputs, **params: rule(g, out, *inputs, argnum=i, **params)


def _from_partials(partials):
    """vjp and jvp rules of an elementwise op from its local derivatives (eq. 5.40 style)."""

    def make_vjp(i, partial):
        def vjp(g, out, *inputs, **params):
            local = partial(out, *inputs, **params)
            c = pooled(np.multiply, g, local) if g.__class__ is np.ndarray else g * local
            return unbroadcast(c, inputs[i].shape)
        return vjp

    def make_jvp(partial):
        def jvp(t, out, *inputs, **params):
            return broadcast_like(t * partial(out, *inputs, **params), out)
        return jvp

    return (tuple(make_vjp(i, p) for i, p in enumerate(partials)),
            tuple(make_jvp(p) for p in partials))


_IMPL = "impl"


def primitive(name: str | None = None, *, vjp=None, jvp=None, partials=None, vjp_joint=None, sympy=None,
              symbol: str | None = None, samples: Callable | None = None, kinks=(), code=_IMPL):
    """Declare a primitive from its NumPy implementation; returns the public op function.

    The implementation's positional parameters are the op's differentiable inputs; its
    keyword-only parameters are static parameters (an axis, a shape, an exponent). A ``*inputs``
    parameter makes the op variadic: the public function then takes a sequence of inputs and the
    rules take ``argnum=``. Give either ``partials`` (elementwise ops) or ``vjp`` and ``jvp``;
    ``vjp_joint`` (with ``jvp``, and ``vjp`` or not) is a reverse rule for all inputs at once,
    ``rule(g, out, *inputs, wanted, **params)`` returning one cotangent (or None) per input.
    ``kinks`` lists functions ``kink(*inputs, **params)`` that vanish where the op is not
    differentiable (used by ``gradcheck`` to recognise a finite difference straddling a kink).
    ``code`` says how :func:`autodiff.compile` writes the value: a template for one element
    (``"sin({0})"``: inputs by position, static parameters by name) fuses it into loops; ``"impl"``
    (the default) calls its NumPy implementation between them; None refuses it by name (for an op
    whose rules read the input values as constants, which compiled code would freeze). The
    derivatives need no code of their own: the compiler records the rules above and prints them.

    >>> import numpy as np
    >>> from autodiff import primitive, cos, grad
    >>> @primitive(partials=[lambda out, x: cos(x)], sympy="sin")
    ... def my_sin(x):
    ...     return np.sin(x)
    >>> float(grad(my_sin)(0.0))
    1.0
    """

    def decorate(impl):
        op_name = name or impl.__name__.strip("_")
        signature = inspect.signature(impl)
        kinds = [p.kind for p in signature.parameters.values()]
        variadic = inspect.Parameter.VAR_POSITIONAL in kinds
        inputs = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        statics = [p for p in signature.parameters.values() if p.kind == p.KEYWORD_ONLY]
        nin = len(inputs)
        if partials is not None:
            if vjp is not None or jvp is not None or vjp_joint is not None:
                raise TypeError(f"primitive {op_name!r}: give partials or vjp/jvp, not both")
            rules = _from_partials(partials)
        elif (vjp is None and vjp_joint is None) or jvp is None:
            raise TypeError(f"primitive {op_name!r} needs a vjp (or vjp_joint) and a jvp rule (or partials)")
        elif variadic:
            rules = (None if vjp is None else _ArgnumRules(vjp), _ArgnumRules(jvp))
        else:
            rules = (None if vjp is None else tuple(vjp), tuple(jvp))
        if not variadic and ((rules[0] is not None and len(rules[0]) != nin) or len(rules[1]) != nin):
            raise TypeError(f"primitive {op_name!r} has {nin} inputs but {len(rules[0] or ())} vjp and "
                            f"{len(rules[1])} jvp rules: give one rule per input")
        if vjp_joint is not None and not callable(vjp_joint):
            raise TypeError(f"primitive {op_name!r}: vjp_joint must be one function, got {type(vjp_joint).__name__}")
        _check_name(op_name, impl)
        prim = Primitive(op_name, impl, vjp=rules[0], jvp=rules[1], vjp_joint=vjp_joint, sympy=sympy, code=code,
                         symbol=symbol, samples=samples, variadic=variadic, nin=nin, kinks=kinks)
        REGISTRY[op_name] = prim
        public = _public_function(prim, impl, nin, statics, variadic)
        public.primitive = prim
        return public

    return decorate


def _check_name(name: str, impl) -> None:
    """Refuse a name another op holds. Re-running a notebook cell redeclares the same op: allowed (the old
    op keeps its rules, so code still holding it works; the registry names the new one)."""
    old = REGISTRY.get(name)
    if old is not None and (old.impl.__module__, old.impl.__qualname__) != (impl.__module__, impl.__qualname__):
        raise ValueError(f"a primitive named {name!r} is already declared (in {old.impl.__module__}); give yours "
                         f"another name")


def _public_function(prim, impl, nin, statics, variadic):
    """The user-facing function: ``op(*inputs, *static_params_by_position, **static_params)``."""
    names = [p.name for p in statics]
    defaults = {p.name: p.default for p in statics if p.default is not inspect.Parameter.empty}
    required = [n for n in names if n not in defaults]
    allowed = frozenset(names)

    def bind(args, kwargs):
        if (len(args) == 1 if variadic else len(args) == nin) and kwargs.keys() <= allowed:
            params = {**defaults, **kwargs}
            if len(params) == len(names) and (not variadic or isinstance(args[0], (list, tuple)) and args[0]):
                return (tuple(args[0]) if variadic else args), params
        if variadic:
            if not args:
                raise TypeError(f"{prim.name}() needs a sequence of inputs")
            inputs, extra = tuple(args[0]), args[1:]
            if not inputs:
                raise ValueError(f"{prim.name}(): the sequence of inputs is empty")
        else:
            inputs, extra = args[:nin], args[nin:]
            if len(inputs) != nin:
                raise TypeError(f"{prim.name}() takes {nin} input(s), got {len(inputs)}")
        if len(extra) > len(names):
            raise TypeError(f"{prim.name}() got {len(extra)} extra positional argument(s); "
                            f"its parameters are {names}")
        params = dict(defaults)
        for key, val in zip(names, extra):
            if key in kwargs:
                raise TypeError(f"{prim.name}() got multiple values for argument {key!r}")
            params[key] = val
        for key, val in kwargs.items():
            if key not in names:
                raise TypeError(f"{prim.name}() got an unexpected argument {key!r}; its parameters are {names}")
            params[key] = val
        missing = [n for n in required if n not in params]
        if missing:
            raise TypeError(f"{prim.name}() is missing parameter(s) {missing}")
        return inputs, params

    if not variadic and not names:
        empty = {}

        def op(*args):
            if len(args) != nin:
                raise TypeError(f"{prim.name}() takes {nin} input(s), got {len(args)}")
            return apply(prim, args, empty)
    else:
        def op(*args, **kwargs):
            inputs, params = bind(args, kwargs)
            return apply(prim, inputs, params)

    functools.update_wrapper(op, impl)
    op.__name__ = op.__qualname__ = prim.name
    return op


# --------------------------------------------------------------------------------------------
# Broadcasting: the two shape primitives that every elementwise rule rests on

def as_array(x, what: str) -> np.ndarray:
    """``np.asarray(x)``, or, for a ragged nested list (NumPy's words name no argument), a one-line ValueError
    naming ``what``: the one wording the engine and nn use for it."""
    try:
        return np.asarray(x)
    except ValueError:
        raise ValueError(f"{what} is a ragged nested list (its rows have different lengths); give one array of "
                         f"one shape") from None


def shape_of(x) -> tuple:
    """The shape of an array, a NumPy scalar, a Tensor or a Python number."""
    try:
        return x.shape
    except AttributeError:
        return np.shape(x)


def sum_axes(x, axis, keepdims=False):
    """``np.sum(x, axis=axis, keepdims=keepdims)``, bit for bit. NumPy reduces a short last axis one row at a
    time, so a large real array summed over its last axis alone, 2 to 7 long, is that many column additions
    (in NumPy's order: below 8 terms its pairwise sum adds them one after the other)."""
    if x.__class__ is np.ndarray and x.dtype.kind == "f" and x.size >= 4096 and x.ndim >= 2 and 2 <= x.shape[-1] < 8 \
            and (axis if axis.__class__ is not tuple or len(axis) != 1 else axis[0]) in (-1, x.ndim - 1):
        total = pooled(np.add, x[..., 0], x[..., 1])
        for j in range(2, x.shape[-1]):
            np.add(total, x[..., j], out=total)
        return total[..., None] if keepdims else total
    if x.__class__ is np.ndarray:       # np.sum's own reduction, without its Python wrapper
        return np.add.reduce(x, axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims)


@primitive(vjp=[lambda g, out, x, *, shape: broadcast_to(g, shape_of(x))],
           jvp=[lambda t, out, x, *, shape: sum_to(t, shape=shape)],
           samples=cases1(((2, 3), {"shape": (3,)}), ((2, 3), {"shape": (2, 1)}), ((4, 2, 3), {"shape": ()})))
def sum_to(x, *, shape):
    """Sum ``x`` down to ``shape`` (the adjoint of broadcast_to)."""
    x = np.asarray(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    return np.reshape(sum_axes(x, axes, keepdims=True), shape)


@primitive(vjp=[lambda g, out, x, *, shape: sum_to(g, shape=shape_of(x))],
           jvp=[lambda t, out, x, *, shape: broadcast_to(t, shape=shape)],
           samples=cases1(((3,), {"shape": (2, 3)}), ((2, 1), {"shape": (2, 4)}), ((), {"shape": (2, 2)})))
def broadcast_to(x, *, shape):
    """Broadcast ``x`` to ``shape`` (NumPy rules)."""
    return np.broadcast_to(x, shape)


def unbroadcast(g, shape):
    """Sum a cotangent ``g`` down to its input's ``shape``: the reverse of NumPy broadcasting."""
    if type(shape) is not tuple:
        shape = tuple(shape)
    return g if (g.shape if g.__class__ is np.ndarray else shape_of(g)) == shape else sum_to(g, shape=shape)


def broadcast_like(t, out):
    """Broadcast a tangent ``t`` up to the shape of the output ``out`` (a jvp rule's last step)."""
    shape = shape_of(out)
    return t if shape_of(t) == shape else broadcast_to(t, shape=shape)
