"""The special elementwise functions NumPy users reach for: log1p, expm1, arctan2, hypot, logaddexp.

Each is computed by NumPy's own stable ufunc, with rules in stable forms. Conventions:
``hypot``'s partials ``a/out``, ``b/out`` are 0 where out = 0 (as PyTorch); ``arctan2``'s are NaN
at the origin (undefined there) and it jumps across the negative x-axis (y = 0, x < 0);
``logaddexp``'s partials are ``sigmoid(a - b)``, ``sigmoid(b - a)`` (1/2 each at ties, finite for
large inputs, and 1/2 each where both are -inf or both +inf: the limit along the diagonal).
"""
from __future__ import annotations

import numpy as np

from ..buffers import ufunc as pooled
from ..primitives import primitive
from ..samples import binary, unary
from ..tensor import value_of
from .elementwise import clip, heaviside, real_only, sigmoid


def _sympy(build):
    """A SymPy counterpart from ``build(sympy, *symbols)`` (SymPy imported when used)."""
    def counterpart(*xs):
        import sympy

        return build(sympy, *xs)

    return counterpart


@primitive(partials=[lambda out, x: 1 / (1 + x)], sympy=_sympy(lambda sp, x: sp.log(1 + x)),
           samples=unary(-0.5, 3.0), code="np.log1p({0})")
def log1p(x):
    """log(1 + x), accurate for small x (log1p(1e-20) = 1e-20); d/dx = 1 / (1 + x).

    >>> import autodiff as ad
    >>> ad.value_and_grad(ad.log1p)(1e-20)
    (1e-20, 1.0)
    """
    return pooled(np.log1p, x)


@primitive(partials=[lambda out, x: out + 1], sympy=_sympy(lambda sp, x: sp.exp(x) - 1),
           samples=unary(), code="np.expm1({0})")
def expm1(x):
    """exp(x) - 1, accurate for small x; d/dx = exp(x) = out + 1.

    >>> import autodiff as ad
    >>> ad.value_and_grad(ad.expm1)(1e-20)
    (1e-20, 1.0)
    """
    return pooled(np.expm1, x)


def _arctan2_partial(out, y, x, *, of):
    """d/dy = x / r², d/dx = -y / r², written (x / r) / r with r = hypot(y, x): no overflow of x²."""
    r = hypot(y, x)
    return (x / r) / r if of == "y" else (-y / r) / r


@primitive(partials=[lambda out, y, x: _arctan2_partial(out, y, x, of="y"),
                     lambda out, y, x: _arctan2_partial(out, y, x, of="x")],
           sympy=_sympy(lambda sp, y, x: sp.atan2(y, x)), samples=binary(0.3, 2.0, -2.0, 2.0),
           kinks=[lambda y, x: y * heaviside(-x, 1.0)], code="np.arctan2({0}, {1})")
def arctan2(y, x):
    """The angle of the point (x, y), in (-pi, pi]; d/dy = x/(x²+y²), d/dx = -y/(x²+y²).

    >>> import autodiff as ad
    >>> ad.grad(ad.arctan2, argnums=(0, 1))(3.0, 4.0)        # (x, -y) / 25
    (0.16, -0.12)
    """
    real_only("arctan2", y, x)
    return pooled(np.arctan2, y, x)


def _hypot_partial(out, a):
    """a / out, and 0 where out = 0 (then a = 0): out + H(-out) is out, or 1 at 0 (as PyTorch)."""
    return a / (out + heaviside(-out, 1.0))


@primitive(partials=[lambda out, a, b: _hypot_partial(out, a), lambda out, a, b: _hypot_partial(out, b)],
           sympy=_sympy(lambda sp, a, b: sp.sqrt(a * a + b * b)), samples=binary(),
           kinks=[lambda a, b: hypot(a, b)], code="np.hypot({0}, {1})")
def hypot(a, b):
    """sqrt(a² + b²) without overflow; partials a/out and b/out, 0 at out = 0 (as PyTorch).

    >>> import autodiff as ad
    >>> ad.value_and_grad(ad.hypot, argnums=(0, 1))(3.0, 4.0)
    (5.0, (0.6, 0.8))
    """
    real_only("hypot", a, b)
    return pooled(np.hypot, a, b)


def _finite(x):
    """x with -inf and +inf clipped to its dtype's largest finite values (an int is finite already)."""
    dtype = np.dtype(getattr(value_of(x), "dtype", np.float64))
    if dtype.kind != "f":
        return x
    big = np.finfo(dtype).max
    return clip(x, a_min=-big, a_max=big)


def _logaddexp_weight(a, b):
    """d logaddexp(a, b) / da = exp(a) / (exp(a) + exp(b)) = sigmoid(a - b), a's softmax weight. The
    infinities are clipped first, so where both are -inf (or +inf) the weight is 1/2 (the limit along
    the diagonal, not NaN from inf - inf); clip passes the derivative at every finite point, so the
    second order stays exact (1/4 at ties). Engine ops: a recorded rule computes it."""
    return sigmoid(_finite(a) - _finite(b))


@primitive(partials=[lambda out, a, b: _logaddexp_weight(a, b), lambda out, a, b: _logaddexp_weight(b, a)],
           sympy=_sympy(lambda sp, a, b: sp.log(sp.exp(a) + sp.exp(b))), samples=binary(),
           code="np.logaddexp({0}, {1})")
def logaddexp(a, b):
    """log(exp(a) + exp(b)), computed as max + log1p(exp(-|a - b|)); partials sigmoid(a - b), sigmoid(b - a).

    >>> import autodiff as ad
    >>> ad.value_and_grad(ad.logaddexp, argnums=(0, 1))(1000.0, 1000.0)     # exp(1000) would overflow
    (1000.6931471805599, (0.5, 0.5))
    """
    real_only("logaddexp", a, b)
    return pooled(np.logaddexp, a, b)
