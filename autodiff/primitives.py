"""Primitives: the elementary functions f^e of the source material's Algorithms 1 and 2.

Each primitive is declared once, with everything about it side by side (DESIGN.md):

- ``impl``: how to compute the value, with NumPy;
- ``vjp``: the reverse rule, one function per input: cotangent of the output -> cotangent of input i;
- ``jvp``: the forward rule, one function per input: tangent of input i -> its share of the output
  tangent (the shares are summed);
- ``sympy``: the matching SymPy function, for scalar ops (symbolic cross-checks);
- ``samples``: valid random arguments, so that the test suite checks every declared primitive;
- ``kinks`` (non-differentiable ops only): functions of the inputs that are zero where the op is not
  differentiable (``relu``: x; ``maximum``: a - b), so that gradient checks can tell a kink from a bug.

Rules have the signature ``rule(g, out, *inputs, **params)`` and are written with the engine's own
ops (``g * cos(x)``, not ``g * np.cos(x)``). The sweeps call them with plain arrays when no
derivative of the derivative is wanted, and with Tensors (building a new graph) when one is.

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

from .samples import cases1
from .tensor import apply

#: Every declared primitive, by name. Tests iterate over it.
REGISTRY: dict[str, "Primitive"] = {}


class Primitive:
    """An elementary operation with its value, derivative rules and symbolic counterpart."""

    def __init__(self, name: str, impl: Callable, *, vjp, jvp, sympy=None, symbol: str | None = None,
                 samples: Callable | None = None, variadic: bool = False, nin: int = 1, kinks=(),
                 partials=None, code=None, code_partials=None):
        self.name = name
        self.impl = impl
        self.vjp = vjp
        self.jvp = jvp
        self.sympy = sympy
        self.symbol = symbol or name
        self.samples = samples
        self.variadic = variadic
        self.nin = nin
        self.kinks = tuple(kinks)
        self.partials = partials            # the local derivatives, when declared with partials=
        self.code = code                    # how autodiff.compile writes it (see primitive())
        self.code_partials = code_partials

    def __repr__(self):
        return f"<primitive {self.name}>"

    def to_sympy(self, *args, **params):
        """Apply the SymPy counterpart to SymPy arguments (raises if the op has none)."""
        if self.sympy is None:
            raise NotImplementedError(f"primitive {self.name!r} has no SymPy counterpart")
        if isinstance(self.sympy, str):
            import sympy

            return getattr(sympy, self.sympy)(*args, **params)
        return self.sympy(*args, **params)


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
            return unbroadcast(g * partial(out, *inputs, **params), inputs[i].shape)
        return vjp

    def make_jvp(partial):
        def jvp(t, out, *inputs, **params):
            return broadcast_like(t * partial(out, *inputs, **params), out)
        return jvp

    return (tuple(make_vjp(i, p) for i, p in enumerate(partials)),
            tuple(make_jvp(p) for p in partials))


def primitive(name: str | None = None, *, vjp=None, jvp=None, partials=None, sympy=None,
              symbol: str | None = None, samples: Callable | None = None, kinks=(), code=None,
              code_partials=None):
    """Declare a primitive from its NumPy implementation; returns the public op function.

    The implementation's positional parameters are the op's differentiable inputs; its
    keyword-only parameters are static parameters (an axis, a shape, an exponent). A ``*inputs``
    parameter makes the op variadic: the public function then takes a sequence of inputs and the
    rules take ``argnum=``. Give either ``partials`` (elementwise ops) or ``vjp`` and ``jvp``.
    ``kinks`` lists functions ``kink(*inputs, **params)`` that vanish where the op is not
    differentiable (used by ``gradcheck`` to recognise a finite difference straddling a kink).
    ``code`` says how :func:`autodiff.compile` writes the op: a template for one element
    (``"sin({0})"``: inputs by position, static parameters by name) fuses it into loops; ``"impl"``
    calls its NumPy implementation between them; None (the default) refuses it by name.
    ``code_partials`` (with ``partials``): a template per input (None: the rule as declared) for
    local derivatives that read the input values (``"{0} > 0"`` for relu), which a compiled
    program must compute, not freeze at the example point; ``{out}`` names the output.

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
            if vjp is not None or jvp is not None:
                raise TypeError(f"primitive {op_name!r}: give partials or vjp/jvp, not both")
            rules = _from_partials(partials)
        elif vjp is None or jvp is None:
            raise TypeError(f"primitive {op_name!r} needs both a vjp and a jvp rule (or partials)")
        elif variadic:
            rules = (_ArgnumRules(vjp), _ArgnumRules(jvp))
        else:
            rules = (tuple(vjp), tuple(jvp))
        if not variadic and (len(rules[0]) != nin or len(rules[1]) != nin):
            raise TypeError(f"primitive {op_name!r} has {nin} inputs but {len(rules[0])} vjp and "
                            f"{len(rules[1])} jvp rules: give one rule per input")
        prim = Primitive(op_name, impl, vjp=rules[0], jvp=rules[1], sympy=sympy, symbol=symbol,
                         samples=samples, variadic=variadic, nin=nin, kinks=kinks, partials=partials,
                         code=code, code_partials=code_partials)
        _register(prim)
        public = _public_function(prim, impl, nin, statics, variadic)
        public.primitive = prim
        return public

    return decorate


def _register(prim: Primitive) -> None:
    old = REGISTRY.get(prim.name)
    same_source = old is not None and (old.impl.__module__, old.impl.__qualname__) == (
        prim.impl.__module__, prim.impl.__qualname__)
    if old is not None and not same_source:  # re-running a notebook cell redeclares the same op
        raise ValueError(f"a primitive named {prim.name!r} is already declared (in "
                         f"{old.impl.__module__}); give yours another name")
    REGISTRY[prim.name] = prim


def _public_function(prim, impl, nin, statics, variadic):
    """The user-facing function: ``op(*inputs, *static_params_by_position, **static_params)``."""
    names = [p.name for p in statics]
    defaults = {p.name: p.default for p in statics if p.default is not inspect.Parameter.empty}
    required = [n for n in names if n not in defaults]
    allowed = frozenset(names)

    def bind(args, kwargs):
        if not variadic and len(args) == nin and kwargs.keys() <= allowed:
            params = {**defaults, **kwargs}
            if len(params) == len(names):
                return args, params
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

def shape_of(x) -> tuple:
    """The shape of an array, a NumPy scalar, a Tensor or a Python number."""
    try:
        return x.shape
    except AttributeError:
        return np.shape(x)


@primitive(vjp=[lambda g, out, x, *, shape: broadcast_to(g, shape_of(x))],
           jvp=[lambda t, out, x, *, shape: sum_to(t, shape=shape)],
           samples=cases1(((2, 3), {"shape": (3,)}), ((2, 3), {"shape": (2, 1)}), ((4, 2, 3), {"shape": ()})),
           code="impl")
def sum_to(x, *, shape):
    """Sum ``x`` down to ``shape`` (the adjoint of broadcast_to)."""
    x = np.asarray(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    return np.reshape(np.sum(x, axis=axes, keepdims=True), shape)


@primitive(vjp=[lambda g, out, x, *, shape: sum_to(g, shape=shape_of(x))],
           jvp=[lambda t, out, x, *, shape: broadcast_to(t, shape=shape)],
           samples=cases1(((3,), {"shape": (2, 3)}), ((2, 1), {"shape": (2, 4)}), ((), {"shape": (2, 2)})),
           code="impl")
def broadcast_to(x, *, shape):
    """Broadcast ``x`` to ``shape`` (NumPy rules)."""
    return np.broadcast_to(x, shape)


def unbroadcast(g, shape):
    """Sum a cotangent ``g`` down to its input's ``shape``: the reverse of NumPy broadcasting."""
    if type(shape) is not tuple:
        shape = tuple(shape)
    return g if shape_of(g) == shape else sum_to(g, shape=shape)


def broadcast_like(t, out):
    """Broadcast a tangent ``t`` up to the shape of the output ``out`` (a jvp rule's last step)."""
    shape = shape_of(out)
    return t if shape_of(t) == shape else broadcast_to(t, shape=shape)
