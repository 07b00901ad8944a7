"""Ops that steer differentiation itself: ``stop_gradient`` (JAX's), the value unchanged, the derivative 0.

Unlike ``t.detach()``, which cuts the graph (a new leaf, nothing recorded), ``stop_gradient(x)`` is
recorded, as a primitive whose rules are zero: grad, jvp, hessian, the drawings and the trace tables
all see the node, and :func:`autodiff.compile` fuses it (its element code is ``x`` itself). Its rules
are zero by definition, not the value's derivative (1), so a gradient check of a function through it
disagrees with finite differences, as JAX's ``check_grads`` does.
"""
from __future__ import annotations

import numpy as np

from ..primitives import batch_rules, primitive
from ..samples import unary
from ..tensor import apply, value_of


def _zeros_as(x):
    v = value_of(x)
    return np.zeros(np.shape(v), dtype=v.dtype)


@primitive(vjp=[lambda g, out, x: _zeros_as(x)], jvp=[lambda t, out, x: _zeros_as(out)],
           samples=unary(), code="{0}")
def stop_gradient(x):
    """``x``'s value, with derivative 0 in every mode (JAX's ``jax.lax.stop_gradient``): a quantity
    used as a constant of the gradient, e.g. a target computed from the parameters themselves.

    >>> import autodiff as ad
    >>> ad.grad(lambda x: x * ad.stop_gradient(x))(3.0)     # d/dx (x * c) with c = x = 3
    3.0
    """
    return x


@batch_rules.register(stop_gradient)
def _batched(prim, datas, bdims, size, level):
    """vmap's rule: elementwise, so the whole batch at once, its axis where it was."""
    return apply(prim, datas, {}), bdims[0]
