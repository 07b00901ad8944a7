"""Arithmetic and elementwise functions: the elementary functions of eq. 5.38 (sin, exp, +, *, **).

Broadcasting follows NumPy: each reverse rule sums the cotangent back to its input's shape
(``unbroadcast``) and each forward rule broadcasts the tangent up to the output's shape.
Non-differentiable points: ``relu'(0) = 0``, ``abs'(0) = 0`` (the sign function), ``clip`` passes the
gradient on the closed interval (as ``torch.clamp``), ``maximum``/``minimum`` split it evenly at ties.
"""
from __future__ import annotations

import operator

import numpy as np

from ..buffers import ufunc as pooled
from ..primitives import broadcast_like, primitive, shape_of, unbroadcast
from ..samples import binary, uniform, unary
from ..tensor import Batched, value_of


def real_only(name, *xs):
    """Refuse complex input in ops that are not complex-analytic (the complex step would be wrong)."""
    if any(np.iscomplexobj(x) for x in xs):
        raise TypeError(f"{name} is not complex-analytic and takes real input only, got a complex one: a numerical "
                        f"derivative's method='complex' cannot pass through it (use method='central', 'forward' or "
                        f"'backward'); grad, predict and the rest take real arrays (x.real)")


# --------------------------------------------------------------------------------------------
# Arithmetic

@primitive(vjp=[lambda g, out, a, b: unbroadcast(g, shape_of(a)),
                lambda g, out, a, b: unbroadcast(g, shape_of(b))],
           jvp=[lambda t, out, a, b: broadcast_like(t, out),
                lambda t, out, a, b: broadcast_like(t, out)],
           sympy=operator.add, symbol="+", samples=binary(), code="{0} + {1}")
def add(a, b):
    """a + b, elementwise with broadcasting."""
    return pooled(np.add, a, b)


@primitive(vjp=[lambda g, out, a, b: unbroadcast(g, shape_of(a)),
                lambda g, out, a, b: unbroadcast(-g, shape_of(b))],
           jvp=[lambda t, out, a, b: broadcast_like(t, out),
                lambda t, out, a, b: broadcast_like(-t, out)],
           sympy=operator.sub, symbol="-", samples=binary(), code="{0} - {1}")
def sub(a, b):
    """a - b, elementwise with broadcasting."""
    return pooled(np.subtract, a, b)


@primitive(partials=[lambda out, a, b: b,
                     lambda out, a, b: a],
           sympy=operator.mul, symbol="*", samples=binary(), code="{0} * {1}")
def mul(a, b):
    """a * b, elementwise with broadcasting."""
    return pooled(np.multiply, a, b)


@primitive(vjp=[lambda g, out, a, b: unbroadcast(g / b, shape_of(a)),
                lambda g, out, a, b: unbroadcast(-g * out / b, shape_of(b))],
           jvp=[lambda t, out, a, b: t / b,
                lambda t, out, a, b: -t * out / b],
           sympy=operator.truediv, symbol="/", samples=binary(lo2=0.5, hi2=2.0), code="{0} / {1}")
def div(a, b):
    """a / b, elementwise with broadcasting."""
    return pooled(np.divide, a, b)


@primitive(vjp=[lambda g, out, x: -g], jvp=[lambda t, out, x: -t],
           sympy=operator.neg, symbol="neg", samples=unary(), code="-{0}")
def neg(x):
    """-x."""
    return pooled(np.negative, x)


def _log_base(x):
    """log(x) for the exponent's derivative of x ** y, with log(0) read as 0 (0 ** y is flat in y):
    x + H(-|x|) is x, or 1 where x = 0 (written with ops, so compiled code computes it)."""
    return log(x + heaviside(-abs(x), 1.0))


@primitive(partials=[lambda out, x, y: y * x ** (y - 1),
                     lambda out, x, y: out * _log_base(x)],
           sympy=operator.pow, symbol="**", samples=binary(lo=0.5, hi=2.0), code="{0} ** {1}")
def pow(x, y):
    """x ** y with a Tensor exponent (d/dy = x**y log x). ``x ** 2`` with a number uses pow_const."""
    return pooled(np.power, x, y)


def _pow_const_partial(out, x, *, p):
    if p == 0:
        return np.zeros_like(value_of(x))
    if p == 1:
        return np.ones_like(value_of(x))
    return p * (x if p == 2 else x ** (p - 1))


@primitive(partials=[_pow_const_partial],
           sympy=lambda x, *, p: x ** _sympy_number(p), symbol="**",
           samples=lambda rng: [((uniform(rng, 0.5, 2, s),), {"p": p})
                                for s, p in [((), 2), ((3,), 3), ((2, 3), -1.5), ((2,), 0.5), ((), 1), ((3,), 0)]],
           code="{0} ** {p}")
def pow_const(x, *, p):
    """x ** p for a constant exponent p (a number): b = a^2 in eq. 5.38 is ``pow_const(a, p=2)``."""
    return np.power(x, p)


def _sympy_number(p):
    import sympy

    p = float(p)
    return sympy.Integer(int(p)) if p.is_integer() else sympy.nsimplify(p)


# --------------------------------------------------------------------------------------------
# Elementwise functions

@primitive(partials=[lambda out, x: out], sympy="exp", samples=unary(), code="exp({0})")
def exp(x):
    """Exponential, elementwise."""
    return pooled(np.exp, x)


@primitive(vjp=[lambda g, out, x: g / x], jvp=[lambda t, out, x: t / x],
           sympy="log", samples=unary(0.2, 3.0), code="log({0})")
def log(x):
    """Natural logarithm, elementwise."""
    return pooled(np.log, x)


@primitive(partials=[lambda out, x: cos(x)], sympy="sin", samples=unary(-3, 3), code="sin({0})")
def sin(x):
    """Sine, elementwise."""
    return pooled(np.sin, x)


@primitive(partials=[lambda out, x: -sin(x)], sympy="cos", samples=unary(-3, 3), code="cos({0})")
def cos(x):
    """Cosine, elementwise."""
    return pooled(np.cos, x)


@primitive(partials=[lambda out, x: 1 + out * out], sympy="tan", samples=unary(-1.2, 1.2), code="tan({0})")
def tan(x):
    """Tangent, elementwise (d/dx tan x = 1 + tan^2 x)."""
    return pooled(np.tan, x)


@primitive(partials=[lambda out, x: 1 - out * out], sympy="tanh", samples=unary(-3, 3), code="tanh({0})")
def tanh(x):
    """Hyperbolic tangent, elementwise (d/dx tanh x = 1 - tanh^2 x)."""
    return pooled(np.tanh, x)


def _sympy_sigmoid(x):
    import sympy

    return 1 / (1 + sympy.exp(-x))


@primitive(partials=[lambda out, x: out * (1 - out)], sympy=_sympy_sigmoid, samples=unary(-4, 4),
           code="1.0 / (1.0 + exp(-{0}))")
def sigmoid(x):
    """Logistic sigmoid 1 / (1 + exp(-x)), computed without overflow (d/dx = s (1 - s))."""
    x = np.asarray(x)
    if np.iscomplexobj(x):  # the complex step: the plain formula is analytic
        return 1 / (1 + np.exp(-x))
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


@primitive(vjp=[lambda g, out, x: g / (2 * out)], jvp=[lambda t, out, x: t / (2 * out)],
           sympy="sqrt", samples=unary(0.2, 3.0), code="sqrt({0})")
def sqrt(x):
    """Square root, elementwise."""
    return pooled(np.sqrt, x)


def _sympy_heaviside(x, *, h0):
    import sympy

    return sympy.Heaviside(x, h0)


def _heaviside_code(x, *, h0):
    """H(x)'s element code: the comparisons, the tie term left out when H(0) = 0 (relu's step)."""
    return f"({x} > 0)" if h0 == 0 else f"({x} > 0) + {float(h0)!r} * ({x} == 0)"


@primitive(partials=[lambda out, x, *, h0: np.zeros_like(value_of(x))], sympy=_sympy_heaviside,
           samples=unary(h0=0.5), kinks=[lambda x, *, h0: x], code=_heaviside_code)
def heaviside(x, *, h0):
    """The step H(x): 0 where x < 0, ``h0`` where x = 0, 1 where x > 0, and 0 where x is NaN (unlike
    ``np.heaviside``, as relu's gradient at NaN is 0 in PyTorch); its derivative is 0. The local
    derivatives that depend on a value are written with it (relu' = H(x) with H(0) = 0; maximum's,
    H(a - b) with 1/2 at ties), so that a recorded rule computes them, as the compiled code does.

    >>> heaviside(np.array([-2.0, 0.0, 3.0, np.nan]), 0.5)
    array([0. , 0.5, 1. , 0. ])
    """
    real_only("heaviside", x)
    if isinstance(h0, (bool, np.bool_)) or not isinstance(h0, (int, float, np.integer, np.floating)):
        raise TypeError(f"heaviside: h0 (the value at 0) must be a real number, got {h0!r:.40}")
    x = np.asarray(x)
    dtype = np.result_type(x, h0)
    step = np.greater(x, 0).astype(dtype)
    return step + np.equal(x, 0) * dtype.type(h0) if h0 != 0 else step


@primitive(partials=[lambda out, x: sign(x)], sympy="Abs", samples=unary(), kinks=[lambda x: x], code="abs({0})")
def abs(x):
    """|x|, elementwise; abs'(0) = 0."""
    real_only("abs", x)
    return pooled(np.abs, x)


@primitive(partials=[lambda out, x: np.zeros_like(value_of(x))], sympy="sign", samples=unary(),
           kinks=[lambda x: x], code="sign({0})")
def sign(x):
    """-1, 0 or 1 by the sign of x, elementwise; its derivative is 0 (except at 0, where it jumps)."""
    real_only("sign", x)
    return np.sign(x)


def _sympy_relu(x):
    import sympy

    return sympy.Max(x, 0)


@primitive(partials=[lambda out, x: heaviside(x, 0.0)], sympy=_sympy_relu, samples=unary(),
           kinks=[lambda x: x], code="maximum({0}, 0.0)")
def relu(x):
    """max(x, 0), elementwise; relu'(0) = 0."""
    real_only("relu", x)
    return pooled(np.maximum, x, 0)


@primitive(partials=[lambda out, a, b: heaviside(a - b, 0.5),
                     lambda out, a, b: heaviside(b - a, 0.5)],
           sympy="Max", samples=binary(), kinks=[lambda a, b: a - b], code="maximum({0}, {1})")
def maximum(a, b):
    """Elementwise maximum; at ties each argument gets half the gradient."""
    real_only("maximum", a, b)
    return pooled(np.maximum, a, b)


@primitive(partials=[lambda out, a, b: heaviside(b - a, 0.5),
                     lambda out, a, b: heaviside(a - b, 0.5)],
           sympy="Min", samples=binary(), kinks=[lambda a, b: a - b], code="minimum({0}, {1})")
def minimum(a, b):
    """Elementwise minimum; at ties each argument gets half the gradient."""
    real_only("minimum", a, b)
    return pooled(np.minimum, a, b)


def _clip_partial(out, x, *, a_min, a_max):
    """1 on the closed interval [a_min, a_max], 0 outside: H(x - a_min) H(a_max - x), with H(0) = 1."""
    inside = 1.0
    if a_min is not None:
        inside = inside * heaviside(x - a_min, 1.0)
    if a_max is not None:
        inside = inside * heaviside(a_max - x, 1.0)
    return inside


def _clip_code(x, *, a_min, a_max):
    """clip's element code for autodiff.compile: maximum and minimum."""
    for fn, bound in (("maximum", a_min), ("minimum", a_max)):
        x = x if bound is None else f"{fn}({x}, {float(bound)!r})"
    return x


def _sympy_clip(x, *, a_min, a_max):
    import sympy

    if a_min is not None:
        x = sympy.Max(x, a_min)
    return x if a_max is None else sympy.Min(x, a_max)


@primitive(partials=[_clip_partial],
           sympy=_sympy_clip, samples=unary(-2, 2, a_min=-1.0, a_max=1.0),
           kinks=[lambda x, *, a_min, a_max: x - (np.inf if a_min is None else a_min),
                  lambda x, *, a_min, a_max: x - (np.inf if a_max is None else a_max)],
           code=_clip_code)
def clip(x, *, a_min=None, a_max=None):
    """Clamp x to [a_min, a_max]; the gradient passes on the closed interval (as torch.clamp)."""
    real_only("clip", x)
    return np.clip(x, a_min, a_max)


@primitive(vjp=[lambda g, out, x: g], jvp=[lambda t, out, x: t],
           sympy=lambda x: x, samples=unary(), code="{0}")
def identity(x):
    """x itself: a fresh node standing for a function argument in nested differentiation."""
    return x


def _where_samples(rng):
    cond = rng.uniform(size=(2, 3)) > 0.5
    return [((uniform(rng, -2, 2, (2, 3)), uniform(rng, -2, 2, (3,))), {"cond": cond})]


@primitive(vjp=[lambda g, out, a, b, *, cond: unbroadcast(where(cond, g, 0), shape_of(a)),
                lambda g, out, a, b, *, cond: unbroadcast(where(cond, 0, g), shape_of(b))],
           jvp=[lambda t, out, a, b, *, cond: broadcast_like(where(cond, t, 0), out),
                lambda t, out, a, b, *, cond: broadcast_like(where(cond, 0, t), out)],
           samples=_where_samples)
def _where(a, b, *, cond):
    return np.where(cond, a, b)


def _select_samples(rng):
    mask = uniform(rng, 0.5, 2, (2, 3)) * np.where(rng.uniform(size=(2, 3)) > 0.5, 1.0, -1.0)
    return [((mask, uniform(rng, -2, 2, (2, 3)), uniform(rng, -2, 2, (3,))), {})]


@primitive(vjp=[lambda g, out, mask, a, b: None,      # the mask is not differentiated (None: zero)
                lambda g, out, mask, a, b: unbroadcast(select(mask, g, 0.0), shape_of(a)),
                lambda g, out, mask, a, b: unbroadcast(select(mask, 0.0, g), shape_of(b))],
           jvp=[lambda t, out, mask, a, b: None,
                lambda t, out, mask, a, b: broadcast_like(select(mask, t, 0.0), out),
                lambda t, out, mask, a, b: broadcast_like(select(mask, 0.0, t), out)],
           samples=_select_samples, kinks=[lambda mask, a, b: mask], code="({1} if {0} > 0 else {2})")
def select(mask, a, b):
    """``a`` where ``mask`` > 0, else ``b``: ``where`` with a mask computed in the graph (from ``heaviside``),
    which is recorded, so that compiled code computes it; the mask is not differentiated.

    >>> select(np.array([1.0, 0.0, -1.0]), np.array([1.0, 2.0, 3.0]), 0.0)
    array([1., 0., 0.])
    """
    return np.where(np.greater(mask, 0), a, b)


def where(cond, a, b):
    """``a`` where ``cond`` is true, else ``b`` (broadcasting). ``cond`` is not differentiated. A constant
    ``cond`` (a boolean array) is a constant of the graph; a mask recorded in the graph (``heaviside(x, 0.0)``
    rather than ``x.value > 0``) stays a node (``select``), so compiled code computes it at each input."""
    if getattr(cond, "requires_grad", False) or type(value_of(cond)) is Batched:   # (vmap: a condition per example)
        return select(cond, a, b)
    return _where(a, b, cond=np.asarray(value_of(cond), dtype=bool))
