"""Linear algebra: the matrix product and its two rules (batched, with NumPy's 1-D conventions)."""
from __future__ import annotations

import numpy as np

from ..primitives import primitive, shape_of, unbroadcast
from ..samples import uniform
from .shapes import reshape, transpose


# --------------------------------------------------------------------------------------------
# Linear algebra

def _swap_last(x):
    nd = len(shape_of(x))
    return transpose(x, axes=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _matmul_vjp_a(g, out, a, b):
    sa, sb = shape_of(a), shape_of(b)
    if len(sb) == 1:        # out[..., i] = sum_k a[..., i, k] b[k]
        ga = reshape(g, shape_of(g) + (1,)) * b
    elif len(sa) == 1:      # out[..., j] = sum_k a[k] b[..., k, j]
        gb_col = matmul(b, reshape(g, shape_of(g) + (1,)))
        ga = reshape(gb_col, shape_of(gb_col)[:-1])
    else:
        ga = matmul(g, _swap_last(b))
    return unbroadcast(ga, sa)


def _matmul_vjp_b(g, out, a, b):
    sa, sb = shape_of(a), shape_of(b)
    if len(sa) == 1:        # out[..., j] = sum_k a[k] b[..., k, j]
        gb = g * a if len(sb) == 1 else reshape(a, (sa[0], 1)) * reshape(g, shape_of(g)[:-1] + (1,) + shape_of(g)[-1:])
    elif len(sb) == 1:      # out[..., i] = sum_k a[..., i, k] b[k]
        col = matmul(_swap_last(a), reshape(g, shape_of(g) + (1,)))
        gb = reshape(col, shape_of(col)[:-1])
    else:
        gb = matmul(_swap_last(a), g)
    return unbroadcast(gb, sb)


def _matmul_samples(rng):
    pairs = [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((2, 2, 3), (3, 2)), ((3,), (2, 3, 2))]
    return [((uniform(rng, -2, 2, a), uniform(rng, -2, 2, b)), {}) for a, b in pairs]


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
