"""Linear algebra: matmul (NumPy's 1-D conventions, batched), einsum, det, slogdet, inv and solve.

Each is one primitive whose rules are written with these same ops, so that they can be
differentiated again. Composed ops (dot, cross, norm, trace...) are in :mod:`.vectors`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..primitives import as_array, primitive, shape_of, unbroadcast
from ..samples import uniform
from ..tensor import Batched, value_of
from . import contraction
from .elementwise import sign
from .reductions import sum
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


# --------------------------------------------------------------------------------------------
# einsum: one primitive whose rules are einsums again

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def normalize_subscripts(subscripts, shapes):
    """Explicit einsum subscripts ('ij,jk->ik'): spaces dropped, '...' spelled out in letters,
    the implicit output (letters seen once, in alphabetical order) written after '->'."""
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a string such as 'ij,jk->ik', got {type(subscripts).__name__}")
    spec = subscripts.replace(" ", "")
    ins, arrow, res = spec.partition("->")
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {subscripts!r} names {len(terms)} operand(s) but {len(shapes)} were given")
    unused = [c for c in _LETTERS if c not in spec]
    n_ell = max([len(s) - (len(t) - 3) for t, s in zip(terms, shapes) if "..." in t] or [0])
    ell = "".join(unused[:n_ell])
    out_terms, sizes = [], {}
    for t, s in zip(terms, shapes):
        if "..." in t:
            k = len(s) - (len(t) - 3)
            t = t.replace("...", ell[n_ell - k:] if k else "")
        if len(t) != len(s) or not all(c in _LETTERS for c in t):
            raise ValueError(f"einsum: subscripts {t!r} do not fit an operand of shape {s}")
        for c, n in zip(t, s):
            if sizes.setdefault(c, n) != n:
                raise ValueError(f"einsum: index {c!r} has sizes {sizes[c]} and {n}; autodiff's einsum does not "
                                 f"broadcast (use broadcast_to first)")
        out_terms.append(t)
    if arrow:
        res = res.replace("...", ell)
    else:
        seen = "".join(out_terms)
        res = ell + "".join(sorted(c for c in set(seen) if seen.count(c) == 1 and c not in ell))
    return ",".join(out_terms) + "->" + res


def _dtype(v):
    """An operand's dtype: an array's (or vmap's Batched value's), or NumPy's for a number."""
    return v.dtype if hasattr(v, "dtype") else np.asarray(v).dtype


def _einsum_vjp(g, out, *xs, subscripts, argnum, optimize="greedy"):
    """The cotangent of operand i: g contracted with the other operands onto operand i's indices.
    A repeated index of operand i (a diagonal, 'ii') becomes a fresh one tied by an identity
    matrix; an index only operand i has (summed in it alone) is restored by a vector of ones."""
    ins, res = subscripts.split("->")
    terms = ins.split(",")
    dtype = np.result_type(*[_dtype(value_of(a)) for a in (g,) + xs])
    sizes = {c: n for t, x in zip(terms, xs) for c, n in zip(t, shape_of(x))}
    fresh = iter(c for c in _LETTERS if c not in subscripts)
    parts, operands = [res], [g]
    for k, (t, x) in enumerate(zip(terms, xs)):
        if k != argnum:
            parts.append(t)
            operands.append(x)
    target = ""
    for c in terms[argnum]:
        if c in target:
            f = next(fresh)
            parts.append(c + f)
            operands.append(np.eye(sizes[c], dtype=dtype))
            c = f
        target += c
    present = set("".join(parts))
    for c in target:
        if c not in present:
            parts.append(c)
            operands.append(np.ones(sizes[c], dtype=dtype))
    return _einsum(operands, subscripts=",".join(parts) + "->" + target)


def _einsum_jvp(t, out, *xs, subscripts, argnum, optimize="greedy"):
    return _einsum([t if k == argnum else x for k, x in enumerate(xs)], subscripts=subscripts, optimize=optimize)


def _einsum_samples(rng):
    specs = [("ij,jk->ik", (2, 3), (3, 4)), ("ii->", (3, 3)), ("ii->i", (3, 3)), ("ij->j", (2, 3)),
             ("i,i->", (3,), (3,)), ("i,j->ij", (2,), (3,)), ("bij,bjk->bik", (2, 2, 3), (2, 3, 2)),
             ("ijk,jk->i", (2, 3, 2), (3, 2)), ("ij,ij,j->i", (2, 3), (2, 3), (3,)), ("iij->j", (2, 2, 3))]
    return [(tuple(uniform(rng, -2, 2, s) for s in shapes), {"subscripts": spec}) for spec, *shapes in specs]


@primitive(name="einsum", vjp=_einsum_vjp, jvp=_einsum_jvp, samples=_einsum_samples)
def _einsum(*operands, subscripts, optimize="greedy"):
    return contraction.evaluate(subscripts, operands, optimize)


def einsum(subscripts, *operands, optimize=True):
    """Einstein summation, as ``np.einsum('ij,jk->ik', a, b)`` (implicit output and '...' too).

    One primitive: the tangent is the sum of einsums with one operand replaced by its tangent, and
    the cotangent of an operand is the einsum of the output's cotangent with the other operands,
    back onto that operand's indices. Operands do not broadcast against each other. Each pair of
    operands is a BLAS product (:mod:`.contraction`); ``optimize`` picks the order for three or more
    (True or 'greedy', 'optimal', an ``np.einsum_path`` path, or False: left to right).

    >>> import autodiff as ad
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> ad.grad(lambda a: ad.einsum("ij,ij->", a, a))(a)      # d/da sum(a * a) = 2a
    array([[ 0.,  2.,  4.],
           [ 6.,  8., 10.]])
    """
    shapes = [shape_of(x) if hasattr(x, "shape") else as_array(x, f"einsum: operand {k}").shape
              for k, x in enumerate(operands)]
    return _einsum(operands, subscripts=normalize_subscripts(subscripts, shapes),
                   optimize=contraction.check_optimize(optimize, len(operands)))


# --------------------------------------------------------------------------------------------
# Determinant, inverse, linear solve: the textbook matrix-calculus rules (batched over leading axes)

def _square_samples(*shapes, extra=None):
    def samples(rng):
        out = []
        for s in shapes:
            a = uniform(rng, -1, 1, s) + 3 * np.eye(s[-1])  # well conditioned
            out.append(((a,) + (() if extra is None else (uniform(rng, -2, 2, extra(s)),)), {}))
        return out
    return samples


def _mat(x):
    """Add two trailing unit axes, so that a per-matrix number scales its matrix."""
    return reshape(x, shape_of(x) + (1, 1))


@primitive(vjp=[lambda g, out, a: _mat(g * out) * _swap_last(inv(a))],
           jvp=[lambda t, out, a: out * sum(_swap_last(inv(a)) * t, axis=(-2, -1))],
           samples=_square_samples((2, 2), (3, 3), (2, 3, 3)))
def det(a):
    """Determinant of a square matrix (or a stack). d det = det tr(A^-1 dA) (Jacobi's formula), so
    the gradient is det A^-T; its rules need A invertible (NumPy's LinAlgError otherwise)."""
    a = np.asarray(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"det: a must be a square matrix (or a stack of them), got shape {a.shape}")
    return np.linalg.det(a)


def _logabsdet_samples(rng):
    samples = _square_samples((2, 2), (3, 3), (2, 3, 3))(rng)
    flipped = [a * np.where(np.arange(a.shape[-2]) == 0, -1.0, 1.0)[:, None] for (a,), _ in samples]
    return samples + [((a,), {}) for a in flipped]     # a negative determinant: the first row negated


@primitive(vjp=[lambda g, out, a: _mat(g) * _swap_last(inv(a))],
           jvp=[lambda t, out, a: sum(_swap_last(inv(a)) * t, axis=(-2, -1))],
           samples=_logabsdet_samples)
def logabsdet(a):
    """log |det A| of a square matrix (or a stack): d log|det A| = tr(A^-1 dA), so the gradient is A^-T."""
    a = np.asarray(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"slogdet: a must be a square matrix (or a stack of them), got shape {a.shape}")
    return np.linalg.slogdet(a)[1]


class SlogdetResult(NamedTuple):
    """What ``slogdet`` returns, as NumPy's and JAX's: ``.sign`` and ``.logabsdet``, or unpacked as a pair."""
    sign: object
    logabsdet: object


def slogdet(a):
    """``(sign, logabsdet)`` as ``np.linalg.slogdet``: the sign a constant (derivative 0), log|det A|
    differentiable (the ``logabsdet`` primitive). Under vmap the sign is that of det (a recorded constant).

    d log|det A| = tr(A^-1 dA), so the gradient of logabsdet is A^-T:

    >>> import autodiff as ad
    >>> a = np.array([[0.0, 2.0], [1.0, 0.0]])                # det -2
    >>> ad.grad(lambda m: ad.slogdet(m).logabsdet)(a)
    array([[0. , 0.5],
           [1. , 0. ]])
    """
    v = value_of(a)
    s = sign(det(a)) if type(v) is Batched else np.linalg.slogdet(np.asarray(v))[0]
    return SlogdetResult(s, logabsdet(a))


@primitive(vjp=[lambda g, out, a: -matmul(_swap_last(out), matmul(g, _swap_last(out)))],
           jvp=[lambda t, out, a: -matmul(out, matmul(t, out))],
           samples=_square_samples((2, 2), (3, 3), (2, 3, 3)))
def inv(a):
    """Inverse of a square matrix (or a stack): d(A^-1) = -A^-1 dA A^-1."""
    a = np.asarray(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"inv: a must be a square matrix (or a stack of them), got shape {a.shape}")
    return np.linalg.inv(a)


def _outer_last(u, x):
    """u x^T over the last axes: a vector right-hand side gives a matrix, a matrix one a product."""
    if len(shape_of(x)) == 1:
        return reshape(u, shape_of(u) + (1,)) * reshape(x, (1,) + shape_of(x))
    return matmul(u, _swap_last(x))


def _solve_vjp_b(g, out, a, b):
    return solve(_swap_last(a), g)


@primitive(vjp=[lambda g, out, a, b: -_outer_last(_solve_vjp_b(g, out, a, b), out), _solve_vjp_b],
           jvp=[lambda t, out, a, b: -solve(a, matmul(t, out)), lambda t, out, a, b: solve(a, t)],
           samples=lambda rng: (_square_samples((2, 2), (3, 3), extra=lambda s: s[-1:])(rng)
                                + _square_samples((3, 3), (2, 2, 2), extra=lambda s: s[:-1] + (2,))(rng)))
def solve(a, b):
    """x with A x = b (b a vector, or a matrix of right-hand sides). With x = A^-1 b:
    dx = A^-1 (db - dA x), so b's cotangent is A^-T g and A's is -(A^-T g) x^T."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"solve: a must be a square matrix (or a stack of them), got shape {a.shape}")
    if not ((b.ndim == 1 and a.ndim == 2) or (b.ndim == a.ndim and b.shape[:-1] == a.shape[:-1])):
        raise ValueError(f"solve: b must be a vector of shape {a.shape[-1:]} (for a single matrix) or have "
                         f"shape {a.shape[:-1] + ('k',)}, got {b.shape}")
    return np.linalg.solve(a, b)
