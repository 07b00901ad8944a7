"""The engine's primitives, each declared once: value, reverse rule, forward rule, SymPy, samples.

Conventions at non-differentiable points (documented in the README, tested):

- ``relu'(0) = 0``, ``abs'(0) = 0`` (the sign function), ``clip`` passes the gradient on the closed
  interval ``[a_min, a_max]`` (as ``torch.clamp``);
- ties are split evenly: ``maximum(a, b)`` sends half the gradient to each of ``a`` and ``b`` where
  ``a == b``, and ``max(x)`` shares it equally among all the maxima (as JAX and PyTorch's ``amax``).
  The same weights are used by the forward rule, so both modes agree.

Broadcasting follows NumPy; each reverse rule sums the cotangent back to its input's shape
(``unbroadcast``).
"""
from __future__ import annotations

import builtins
import operator

import numpy as np

from .primitives import primitive
from .tensor import Tensor, apply, value_of

# --------------------------------------------------------------------------------------------
# Sample generators for the registry-driven tests (valid random arguments for each primitive).
_SHAPES_1 = [(), (3,), (2, 3)]
_SHAPES_2 = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((4,), ())]


def _uniform(rng, lo, hi, shape):
    return np.asarray(rng.uniform(lo, hi, shape))


def _unary(lo=-2.0, hi=2.0, **params):
    return lambda rng: [((_uniform(rng, lo, hi, s),), dict(params)) for s in _SHAPES_1]


def _binary(lo=-2.0, hi=2.0, lo2=None, hi2=None):
    lo2 = lo if lo2 is None else lo2
    hi2 = hi if hi2 is None else hi2
    return lambda rng: [((_uniform(rng, lo, hi, a), _uniform(rng, lo2, hi2, b)), {}) for a, b in _SHAPES_2]


def _cases(*cases):
    """Samples from (input shapes, params) pairs: inputs uniform in (-2, 2)."""
    return lambda rng: [(tuple(_uniform(rng, -2, 2, s) for s in shapes), dict(params))
                        for shapes, params in cases]


def _cases1(*cases):
    """Samples of a one-input op from (shape, params) pairs."""
    return _cases(*[((shape,), params) for shape, params in cases])


# --------------------------------------------------------------------------------------------
# Helpers written with the engine's ops (so they work on arrays and on Tensors alike).

def _shape(x):
    """The shape of an array, a NumPy scalar, a Tensor or a Python number."""
    try:
        return x.shape
    except AttributeError:
        return np.shape(x)


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the reverse of NumPy broadcasting."""
    if type(shape) is not tuple:
        shape = tuple(shape)
    return g if _shape(g) == shape else sum_to(g, shape)


def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return tuple(int(a) % ndim if ndim else 0 for a in axes)


def _keepdims_shape(shape, axis):
    axes = _normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand(g, x_shape, axis, keepdims):
    """Reshape a reduction's cotangent so that it broadcasts against the reduced input."""
    if keepdims:
        return g
    return reshape(g, _keepdims_shape(x_shape, axis))


def _ties(va, vb, dtype, better):
    """Weights of the first argument of maximum/minimum: 1 where it wins, 1/2 at ties, else 0."""
    return (better(va, vb) + np.float32(0.5) * (va == vb)).astype(dtype)


def _result_dtype(out):
    return value_of(out).dtype


def _real_only(name, *xs):
    """Refuse complex input in ops that are not complex-analytic (the complex step would be wrong)."""
    if any(np.iscomplexobj(x) for x in xs):
        raise TypeError(f"{name} is not complex-analytic, so the complex-step method cannot differentiate "
                        f"through it: use method='central' (or 'forward'/'backward')")


# --------------------------------------------------------------------------------------------
# Arithmetic

@primitive(vjp=[lambda g, out, a, b: unbroadcast(g, _shape(a)),
                lambda g, out, a, b: unbroadcast(g, _shape(b))],
           jvp=[lambda t, out, a, b: t,
                lambda t, out, a, b: t],
           sympy=operator.add, symbol="+", samples=_binary())
def add(a, b):
    """a + b, elementwise with broadcasting."""
    return np.add(a, b)


@primitive(vjp=[lambda g, out, a, b: unbroadcast(g, _shape(a)),
                lambda g, out, a, b: unbroadcast(-g, _shape(b))],
           jvp=[lambda t, out, a, b: t,
                lambda t, out, a, b: -t],
           sympy=operator.sub, symbol="-", samples=_binary())
def sub(a, b):
    """a - b, elementwise with broadcasting."""
    return np.subtract(a, b)


@primitive(partials=[lambda out, a, b: b,
                     lambda out, a, b: a],
           sympy=operator.mul, symbol="*", samples=_binary())
def mul(a, b):
    """a * b, elementwise with broadcasting."""
    return np.multiply(a, b)


@primitive(vjp=[lambda g, out, a, b: unbroadcast(g / b, _shape(a)),
                lambda g, out, a, b: unbroadcast(-g * out / b, _shape(b))],
           jvp=[lambda t, out, a, b: t / b,
                lambda t, out, a, b: -t * out / b],
           sympy=operator.truediv, symbol="/", samples=_binary(lo2=0.5, hi2=2.0))
def div(a, b):
    """a / b, elementwise with broadcasting."""
    return np.divide(a, b)


@primitive(vjp=[lambda g, out, x: -g], jvp=[lambda t, out, x: -t],
           sympy=operator.neg, symbol="neg", samples=_unary())
def neg(x):
    """-x."""
    return np.negative(x)


def _log_base(x):
    """log(x) for the exponent's derivative of x ** y, with log(0) read as 0 (0 ** y is flat in y)."""
    return log(where(value_of(x) == 0, 1.0, x))


@primitive(partials=[lambda out, x, y: y * x ** (y - 1),
                     lambda out, x, y: out * _log_base(x)],
           sympy=operator.pow, symbol="**", samples=_binary(lo=0.5, hi=2.0))
def pow(x, y):
    """x ** y with a Tensor exponent (d/dy = x**y log x). ``x ** 2`` with a number uses pow_const."""
    return np.power(x, y)


def _pow_const_partial(out, x, *, p):
    if p == 0:
        return np.zeros_like(value_of(x))
    if p == 1:
        return np.ones_like(value_of(x))
    return p * (x if p == 2 else x ** (p - 1))


@primitive(partials=[_pow_const_partial],
           sympy=lambda x, *, p: x ** _sympy_number(p), symbol="**",
           samples=lambda rng: [((_uniform(rng, 0.5, 2, s),), {"p": p})
                                for s, p in [((), 2), ((3,), 3), ((2, 3), -1.5), ((2,), 0.5), ((), 1), ((3,), 0)]])
def pow_const(x, *, p):
    """x ** p for a constant exponent p (a number): b = a^2 in eq. 5.38 is ``pow_const(a, p=2)``."""
    return np.power(x, p)


def _sympy_number(p):
    import sympy

    p = float(p)
    return sympy.Integer(int(p)) if p.is_integer() else sympy.nsimplify(p)


# --------------------------------------------------------------------------------------------
# Elementwise functions

@primitive(partials=[lambda out, x: out], sympy="exp", samples=_unary())
def exp(x):
    """Exponential, elementwise."""
    return np.exp(x)


@primitive(vjp=[lambda g, out, x: g / x], jvp=[lambda t, out, x: t / x],
           sympy="log", samples=_unary(0.2, 3.0))
def log(x):
    """Natural logarithm, elementwise."""
    return np.log(x)


@primitive(partials=[lambda out, x: cos(x)], sympy="sin", samples=_unary(-3, 3))
def sin(x):
    """Sine, elementwise."""
    return np.sin(x)


@primitive(partials=[lambda out, x: -sin(x)], sympy="cos", samples=_unary(-3, 3))
def cos(x):
    """Cosine, elementwise."""
    return np.cos(x)


@primitive(partials=[lambda out, x: 1 + out * out], sympy="tan", samples=_unary(-1.2, 1.2))
def tan(x):
    """Tangent, elementwise (d/dx tan x = 1 + tan^2 x)."""
    return np.tan(x)


@primitive(partials=[lambda out, x: 1 - out * out], sympy="tanh", samples=_unary(-3, 3))
def tanh(x):
    """Hyperbolic tangent, elementwise (d/dx tanh x = 1 - tanh^2 x)."""
    return np.tanh(x)


def _sympy_sigmoid(x):
    import sympy

    return 1 / (1 + sympy.exp(-x))


@primitive(partials=[lambda out, x: out * (1 - out)], sympy=_sympy_sigmoid, samples=_unary(-4, 4))
def sigmoid(x):
    """Logistic sigmoid 1 / (1 + exp(-x)), computed without overflow (d/dx = s (1 - s))."""
    x = np.asarray(x)
    if np.iscomplexobj(x):  # the complex step: the plain formula is analytic
        return 1 / (1 + np.exp(-x))
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


@primitive(vjp=[lambda g, out, x: g / (2 * out)], jvp=[lambda t, out, x: t / (2 * out)],
           sympy="sqrt", samples=_unary(0.2, 3.0))
def sqrt(x):
    """Square root, elementwise."""
    return np.sqrt(x)


@primitive(partials=[lambda out, x: np.sign(value_of(x))], sympy="Abs", samples=_unary(),
           kinks=[lambda x: x])
def abs(x):
    """|x|, elementwise; abs'(0) = 0."""
    _real_only("abs", x)
    return np.abs(x)


def _sympy_relu(x):
    import sympy

    return sympy.Max(x, 0)


@primitive(partials=[lambda out, x: value_of(x) > 0], sympy=_sympy_relu, samples=_unary(),
           kinks=[lambda x: x])
def relu(x):
    """max(x, 0), elementwise; relu'(0) = 0."""
    _real_only("relu", x)
    return np.maximum(x, 0)


@primitive(partials=[lambda out, a, b: _ties(value_of(a), value_of(b), _result_dtype(out), np.greater),
                     lambda out, a, b: _ties(value_of(b), value_of(a), _result_dtype(out), np.greater)],
           sympy="Max", samples=_binary(), kinks=[lambda a, b: a - b])
def maximum(a, b):
    """Elementwise maximum; at ties each argument gets half the gradient."""
    _real_only("maximum", a, b)
    return np.maximum(a, b)


@primitive(partials=[lambda out, a, b: _ties(value_of(a), value_of(b), _result_dtype(out), np.less),
                     lambda out, a, b: _ties(value_of(b), value_of(a), _result_dtype(out), np.less)],
           sympy="Min", samples=_binary(), kinks=[lambda a, b: a - b])
def minimum(a, b):
    """Elementwise minimum; at ties each argument gets half the gradient."""
    _real_only("minimum", a, b)
    return np.minimum(a, b)


def _clip_mask(x, a_min, a_max):
    v = value_of(x)
    inside = np.ones(v.shape, dtype=bool)
    if a_min is not None:
        inside &= v >= a_min
    if a_max is not None:
        inside &= v <= a_max
    return inside


def _sympy_clip(x, *, a_min, a_max):
    import sympy

    if a_min is not None:
        x = sympy.Max(x, a_min)
    return x if a_max is None else sympy.Min(x, a_max)


@primitive(partials=[lambda out, x, *, a_min, a_max: _clip_mask(x, a_min, a_max)],
           sympy=_sympy_clip, samples=_unary(-2, 2, a_min=-1.0, a_max=1.0),
           kinks=[lambda x, *, a_min, a_max: x - (np.inf if a_min is None else a_min),
                  lambda x, *, a_min, a_max: x - (np.inf if a_max is None else a_max)])
def clip(x, *, a_min=None, a_max=None):
    """Clamp x to [a_min, a_max]; the gradient passes on the closed interval (as torch.clamp)."""
    _real_only("clip", x)
    return np.clip(x, a_min, a_max)


@primitive(vjp=[lambda g, out, x: g], jvp=[lambda t, out, x: t],
           sympy=lambda x: x, samples=_unary())
def identity(x):
    """x itself: a fresh node standing for a function argument in nested differentiation."""
    return x


def _where_samples(rng):
    cond = rng.uniform(size=(2, 3)) > 0.5
    return [((_uniform(rng, -2, 2, (2, 3)), _uniform(rng, -2, 2, (3,))), {"cond": cond})]


@primitive(vjp=[lambda g, out, a, b, *, cond: unbroadcast(where(cond, g, 0), _shape(a)),
                lambda g, out, a, b, *, cond: unbroadcast(where(cond, 0, g), _shape(b))],
           jvp=[lambda t, out, a, b, *, cond: where(cond, t, 0),
                lambda t, out, a, b, *, cond: where(cond, 0, t)],
           samples=_where_samples)
def _where(a, b, *, cond):
    return np.where(cond, a, b)


def where(cond, a, b):
    """``a`` where ``cond`` is true, else ``b`` (broadcasting). ``cond`` is not differentiated."""
    return _where(a, b, cond=np.asarray(value_of(cond), dtype=bool))


# --------------------------------------------------------------------------------------------
# Reductions

@primitive(vjp=[lambda g, out, x, *, axis, keepdims: broadcast_to(_expand(g, _shape(x), axis, keepdims), _shape(x))],
           jvp=[lambda t, out, x, *, axis, keepdims: sum(t, axis=axis, keepdims=keepdims)],
           sympy=lambda x, **params: x,  # of a scalar
           samples=_cases1(((3,), {"axis": None, "keepdims": False}), ((2, 3), {"axis": 1, "keepdims": False}),
                          ((2, 3, 2), {"axis": (0, 2), "keepdims": True}), ((), {"axis": None, "keepdims": False})))
def sum(x, *, axis=None, keepdims=False):
    """Sum over ``axis`` (all axes by default)."""
    return np.sum(x, axis=axis, keepdims=keepdims)


def _count(x_shape, out_shape):
    return int(np.prod(x_shape)) // builtins.max(int(np.prod(out_shape)), 1)


@primitive(vjp=[lambda g, out, x, *, axis, keepdims:
                broadcast_to(_expand(g, _shape(x), axis, keepdims) / _count(_shape(x), _shape(out)), _shape(x))],
           jvp=[lambda t, out, x, *, axis, keepdims: mean(t, axis=axis, keepdims=keepdims)],
           sympy=lambda x, **params: x,  # of a scalar
           samples=_cases1(((3,), {"axis": None, "keepdims": False}), ((2, 3), {"axis": 0, "keepdims": False}),
                          ((2, 3, 2), {"axis": -1, "keepdims": True})))
def mean(x, *, axis=None, keepdims=False):
    """Mean over ``axis`` (all axes by default)."""
    return np.mean(x, axis=axis, keepdims=keepdims)


def _argmax_weights(x, out, axis, keepdims):
    """1/k on each of the k maxima (or minima) of each reduced slice, 0 elsewhere: ties split evenly."""
    vx = value_of(x)
    vo = value_of(out) if keepdims else np.reshape(value_of(out), _keepdims_shape(vx.shape, axis))
    hit = vx == vo
    return (hit / np.sum(hit, axis=_normalize_axes(axis, vx.ndim), keepdims=True)).astype(vx.dtype)


def _extremum_gap(x, *, axis, keepdims, sign):
    """Kink of max (sign=1) or min (sign=-1): the gap between the two largest (smallest) of each
    slice, zero at a tie. Written with the engine's ops, so its rate of change has a tangent."""
    vx = value_of(x) * sign
    top = np.max(vx, axis=axis, keepdims=True)
    ties = np.sum(vx == top, axis=axis, keepdims=True) > 1
    first = max(x * sign, axis=axis, keepdims=True)
    second = max(where(vx == top, -np.inf, x * sign), axis=axis, keepdims=True)
    return where(ties, 0.0, first - where(np.isfinite(value_of(second)), second, first))


def _extremum_rules():
    vjp = [lambda g, out, x, *, axis, keepdims:
           _expand(g, _shape(x), axis, keepdims) * _argmax_weights(x, out, axis, keepdims)]
    jvp = [lambda t, out, x, *, axis, keepdims:
           sum(t * _argmax_weights(x, out, axis, keepdims), axis=axis, keepdims=keepdims)]
    return dict(vjp=vjp, jvp=jvp)


_REDUCE_CASES = _cases1(((5,), {"axis": None, "keepdims": False}), ((2, 3), {"axis": 1, "keepdims": False}),
                       ((2, 3, 2), {"axis": 0, "keepdims": True}))


@primitive(**_extremum_rules(), sympy=lambda x, **params: x,  # of a scalar
           samples=_REDUCE_CASES,
           kinks=[lambda x, *, axis, keepdims: _extremum_gap(x, axis=axis, keepdims=keepdims, sign=1)])
def max(x, *, axis=None, keepdims=False):
    """Maximum over ``axis``; the gradient is shared equally among tied maxima."""
    _real_only("max", x)
    return np.max(x, axis=axis, keepdims=keepdims)


@primitive(**_extremum_rules(), sympy=lambda x, **params: x,  # of a scalar
           samples=_REDUCE_CASES,
           kinks=[lambda x, *, axis, keepdims: _extremum_gap(x, axis=axis, keepdims=keepdims, sign=-1)])
def min(x, *, axis=None, keepdims=False):
    """Minimum over ``axis``; the gradient is shared equally among tied minima."""
    _real_only("min", x)
    return np.min(x, axis=axis, keepdims=keepdims)


def _softmax_of_input(x, out, axis, keepdims):
    return exp(x - _expand(out, _shape(x), axis, keepdims))


@primitive(vjp=[lambda g, out, x, *, axis, keepdims:
                _expand(g, _shape(x), axis, keepdims) * _softmax_of_input(x, out, axis, keepdims)],
           jvp=[lambda t, out, x, *, axis, keepdims:
                sum(t * _softmax_of_input(x, out, axis, keepdims), axis=axis, keepdims=keepdims)],
           samples=_cases1(((4,), {"axis": None, "keepdims": False}), ((2, 3), {"axis": 1, "keepdims": False}),
                          ((2, 3), {"axis": 0, "keepdims": True})))
def logsumexp(x, *, axis=None, keepdims=False):
    """log(sum(exp(x))) over ``axis``, shifted by the maximum so that it never overflows."""
    x = np.asarray(x)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.reshape(out, np.shape(np.sum(x, axis=axis)))


def _softmax_rule(g, out, x, *, axis):
    return out * (g - sum(g * out, axis=axis, keepdims=True))


@primitive(vjp=[_softmax_rule], jvp=[_softmax_rule],  # the softmax Jacobian is symmetric
           samples=_cases1(((4,), {"axis": -1}), ((2, 3), {"axis": 0}), ((2, 3, 4), {"axis": 1})))
def softmax(x, *, axis=-1):
    """exp(x_i) / sum_j exp(x_j) along ``axis``; Jacobian y_i (delta_ij - y_j)."""
    x = np.asarray(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@primitive(vjp=[lambda g, out, x, *, axis: g - exp(out) * sum(g, axis=axis, keepdims=True)],
           jvp=[lambda t, out, x, *, axis: t - sum(exp(out) * t, axis=axis, keepdims=True)],
           samples=_cases1(((4,), {"axis": -1}), ((2, 3), {"axis": 0})))
def log_softmax(x, *, axis=-1):
    """x_i - logsumexp(x) along ``axis``: the log of softmax, without overflow or log(0)."""
    x = np.asarray(x)
    return x - logsumexp.primitive.impl(x, axis=axis, keepdims=True)


# --------------------------------------------------------------------------------------------
# Shapes

@primitive(vjp=[lambda g, out, x, *, shape: broadcast_to(g, _shape(x))],
           jvp=[lambda t, out, x, *, shape: sum_to(t, shape)],
           samples=_cases1(((2, 3), {"shape": (3,)}), ((2, 3), {"shape": (2, 1)}), ((4, 2, 3), {"shape": ()})))
def sum_to(x, *, shape):
    """Sum ``x`` down to ``shape`` (the adjoint of broadcast_to)."""
    x = np.asarray(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    return np.reshape(np.sum(x, axis=axes, keepdims=True), shape)


@primitive(vjp=[lambda g, out, x, *, shape: sum_to(g, _shape(x))],
           jvp=[lambda t, out, x, *, shape: broadcast_to(t, shape)],
           samples=_cases1(((3,), {"shape": (2, 3)}), ((2, 1), {"shape": (2, 4)}), ((), {"shape": (2, 2)})))
def broadcast_to(x, *, shape):
    """Broadcast ``x`` to ``shape`` (NumPy rules)."""
    return np.broadcast_to(x, shape)


@primitive(vjp=[lambda g, out, x, *, shape: reshape(g, _shape(x))],
           jvp=[lambda t, out, x, *, shape: reshape(t, shape)],
           sympy=lambda x, **params: x,  # of a scalar
           samples=_cases1(((2, 3), {"shape": (3, 2)}), ((6,), {"shape": (2, -1)}), ((), {"shape": (1, 1)})))
def reshape(x, *, shape):
    """``x`` with a new shape (same elements, C order)."""
    return np.reshape(x, shape)


def _inverse_axes(axes, ndim):
    return None if axes is None else tuple(np.argsort([a % ndim for a in axes]))


@primitive(vjp=[lambda g, out, x, *, axes: transpose(g, axes=_inverse_axes(axes, len(_shape(x))))],
           jvp=[lambda t, out, x, *, axes: transpose(t, axes=axes)],
           sympy=lambda x, **params: x,  # of a scalar
           samples=_cases1(((2, 3), {"axes": None}), ((2, 3, 4), {"axes": (2, 0, 1)}), ((2, 3, 4), {"axes": (0, 2, 1)})))
def transpose(x, *, axes=None):
    """Permute the axes (reverse them by default)."""
    return np.transpose(x, axes)


def _normalize_index(index):
    """Static index for getitem: Tensors become their values, lists become arrays."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        item = value_of(item)
        if isinstance(item, list):
            item = np.asarray(item)
        out.append(item)
    return tuple(out)


def _is_basic(index):
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in index)


def _getitem_samples(rng):
    x = _uniform(rng, -2, 2, (4, 3))
    return [((x,), {"index": i}) for i in [(1,), (slice(1, 3),), (Ellipsis, 0), (np.array([0, 2, 0]),),
                                         (x > 0,), (slice(None), None, slice(None, None, 2))]]


@primitive(vjp=[lambda g, out, x, *, index: scatter_add(g, index=index, shape=_shape(x))],
           jvp=[lambda t, out, x, *, index: getitem(t, index=index)],
           samples=_getitem_samples)
def getitem(x, *, index):
    """``x[index]``: NumPy indexing (basic and advanced). Repeated indices add up in the gradient."""
    return np.asarray(x)[index]


def _scatter_samples(rng):
    return [((_uniform(rng, -2, 2, (3,)),), {"index": (np.array([0, 2, 0]),), "shape": (4,)}),
            ((_uniform(rng, -2, 2, (2, 3)),), {"index": (slice(1, 3),), "shape": (4, 3)})]


@primitive(vjp=[lambda g, out, x, *, index, shape: getitem(g, index=index)],
           jvp=[lambda t, out, x, *, index, shape: scatter_add(t, index=index, shape=shape)],
           samples=_scatter_samples)
def scatter_add(x, *, index, shape):
    """Zeros of ``shape`` with ``x`` added at ``index`` (the adjoint of getitem)."""
    x = np.asarray(x)
    out = np.zeros(shape, dtype=x.dtype)
    if _is_basic(index):
        out[index] = x
    else:
        np.add.at(out, index, x)
    return out


def _piece(shapes, axis, i):
    """The index of the i-th input inside the concatenation of inputs of ``shapes``."""
    ndim = len(shapes[0])
    axis %= ndim
    start = int(np.sum([s[axis] for s in shapes[:i]], dtype=int))
    return (slice(None),) * axis + (slice(start, start + shapes[i][axis]),)


def _concat_vjp(g, out, *xs, axis, argnum):
    return getitem(g, index=_piece([_shape(x) for x in xs], axis, argnum))


def _concat_jvp(t, out, *xs, axis, argnum):
    return scatter_add(t, index=_piece([_shape(x) for x in xs], axis, argnum), shape=_shape(out))


@primitive(vjp=_concat_vjp, jvp=_concat_jvp,
           samples=_cases((((2, 3), (1, 3)), {"axis": 0}), (((2, 1), (2, 2), (2, 3)), {"axis": -1})))
def concatenate(*xs, axis=0):
    """Join a sequence of arrays along an existing axis: ``concatenate([a, b], axis=0)``."""
    return np.concatenate(xs, axis=axis)


def _stack_index(ndim_out, axis, i):
    return (slice(None),) * (axis % ndim_out) + (i,)


def _stack_vjp(g, out, *xs, axis, argnum):
    return getitem(g, index=_stack_index(len(_shape(out)), axis, argnum))


def _stack_jvp(t, out, *xs, axis, argnum):
    return scatter_add(t, index=_stack_index(len(_shape(out)), axis, argnum), shape=_shape(out))


@primitive(vjp=_stack_vjp, jvp=_stack_jvp,
           samples=_cases((((3,), (3,)), {"axis": 0}), (((2, 3), (2, 3), (2, 3)), {"axis": -1})))
def stack(*xs, axis=0):
    """Join a sequence of same-shaped arrays along a new axis: ``stack([a, b], axis=0)``."""
    return np.stack(xs, axis=axis)


# --------------------------------------------------------------------------------------------
# Linear algebra

def _swap_last(x):
    nd = len(_shape(x))
    return transpose(x, axes=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _matmul_vjp_a(g, out, a, b):
    sa, sb = _shape(a), _shape(b)
    if len(sb) == 1:        # out[..., i] = sum_k a[..., i, k] b[k]
        ga = reshape(g, _shape(g) + (1,)) * b
    elif len(sa) == 1:      # out[..., j] = sum_k a[k] b[..., k, j]
        gb_col = matmul(b, reshape(g, _shape(g) + (1,)))
        ga = reshape(gb_col, _shape(gb_col)[:-1])
    else:
        ga = matmul(g, _swap_last(b))
    return unbroadcast(ga, sa)


def _matmul_vjp_b(g, out, a, b):
    sa, sb = _shape(a), _shape(b)
    if len(sa) == 1:        # out[..., j] = sum_k a[k] b[..., k, j]
        gb = g * a if len(sb) == 1 else reshape(a, (sa[0], 1)) * reshape(g, _shape(g)[:-1] + (1,) + _shape(g)[-1:])
    elif len(sb) == 1:      # out[..., i] = sum_k a[..., i, k] b[k]
        col = matmul(_swap_last(a), reshape(g, _shape(g) + (1,)))
        gb = reshape(col, _shape(col)[:-1])
    else:
        gb = matmul(_swap_last(a), g)
    return unbroadcast(gb, sb)


def _matmul_samples(rng):
    pairs = [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((2, 2, 3), (3, 2)), ((3,), (2, 3, 2))]
    return [((_uniform(rng, -2, 2, a), _uniform(rng, -2, 2, b)), {}) for a, b in pairs]


@primitive(vjp=[_matmul_vjp_a, _matmul_vjp_b],
           jvp=[lambda t, out, a, b: matmul(t, b), lambda t, out, a, b: matmul(a, t)],
           symbol="@", samples=_matmul_samples)
def matmul(a, b):
    """Matrix product a @ b (NumPy rules: 1-D operands, batched stacks with broadcasting)."""
    try:
        return np.matmul(a, b)
    except ValueError:
        raise ValueError(f"matmul: shapes {np.shape(a)} and {np.shape(b)} do not align: the last axis "
                         f"of the first must equal the {'only' if np.ndim(b) == 1 else 'second-to-last'} "
                         f"axis of the second") from None


# --------------------------------------------------------------------------------------------
# Operators and methods on Tensor

def _pow_operator(x, p):
    if not isinstance(p, Tensor) and np.ndim(p) == 0:
        return pow_const(x, p=p.item() if isinstance(p, np.generic) else p)
    return pow(x, p)


def _getitem_operator(x, index):
    return getitem(x, index=_normalize_index(index))


_OPERATORS = {
    "__add__": add, "__radd__": lambda a, b: add(b, a),
    "__sub__": sub, "__rsub__": lambda a, b: sub(b, a),
    "__mul__": mul, "__rmul__": lambda a, b: mul(b, a),
    "__truediv__": div, "__rtruediv__": lambda a, b: div(b, a),
    "__matmul__": matmul, "__rmatmul__": lambda a, b: matmul(b, a),
    "__pow__": _pow_operator, "__rpow__": lambda a, b: pow(b, a),
    "__neg__": neg, "__pos__": lambda a: a, "__abs__": abs,
    "__getitem__": _getitem_operator,
}

_METHODS = {
    "sum": sum, "mean": mean, "max": max, "min": min, "exp": exp, "log": log, "sin": sin, "cos": cos,
    "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "sqrt": sqrt, "clip": clip, "softmax": softmax,
    "log_softmax": log_softmax, "logsumexp": logsumexp,
}


def _reshape_method(self, *shape):
    """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
    return reshape(self, shape=shape[0] if len(shape) == 1 and not np.isscalar(shape[0]) else shape)


def _transpose_method(self, *axes):
    """``x.transpose()``, ``x.transpose(1, 0)`` or ``x.transpose((1, 0))``."""
    if len(axes) == 1 and not np.isscalar(axes[0]):
        axes = axes[0]
    return transpose(self, axes=tuple(axes) if axes else None)


for _name, _fn in _OPERATORS.items():
    setattr(Tensor, _name, _fn)
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
Tensor.reshape = _reshape_method
Tensor.transpose = _transpose_method
Tensor.T = property(lambda self: transpose(self), doc="The transpose (axes reversed).")
