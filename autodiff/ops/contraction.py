"""How the engine evaluates an einsum: pairs of operands through BLAS, in a planned order.

NumPy's ``np.einsum`` contracts two operands with its own loops unless ``optimize`` is on, and even
then only when no index is shared by both operands and the output (a batch index, as in
'kij,nkj->nki'). Here every pair is a (batched) matrix product, as opt_einsum and ``torch.einsum`` do:
the operands are transposed to (batch, free, contracted) and (batch, contracted, free), reshaped to 3-D
and multiplied with ``np.matmul``. Indices of one operand alone are summed first; a pair that
contracts nothing is a broadcast product; a repeated index (a diagonal) is left to ``np.einsum``.
Three or more operands are contracted pairwise in the order ``np.einsum_path`` chooses
(``optimize``: 'greedy', 'optimal', an explicit path, or False for left to right). Plans are cached
by subscripts and shapes. The numbers agree with ``np.einsum`` to round-off (sums in another order).
"""
from __future__ import annotations

import functools
import math

import numpy as np

OPTIMIZE = (False, "greedy", "optimal")


def check_optimize(optimize, count):
    """``optimize`` as a hashable plan key: False, 'greedy' (True's meaning), 'optimal', or a path tuple."""
    if optimize is True:
        return "greedy"
    if isinstance(optimize, (list, tuple)) and not isinstance(optimize, str):
        path = list(optimize[1:] if optimize and optimize[0] == "einsum_path" else optimize)
        try:
            return tuple(tuple(int(i) for i in step) for step in path)
        except (TypeError, ValueError):
            raise ValueError(f"einsum: optimize must be a path such as ['einsum_path', (0, 1), (0, 1)], "
                             f"got {optimize!r:.80}") from None
    if isinstance(optimize, (bool, np.bool_, str)) and optimize in OPTIMIZE:
        return optimize
    raise ValueError(f"einsum: optimize must be True, False, 'greedy', 'optimal' or a contraction path, "
                     f"got {optimize!r:.80}")


def evaluate(subscripts, operands, optimize="greedy"):
    """``np.einsum(subscripts, *operands)`` for explicit subscripts ('ij,jk->ik'), planned as above."""
    arrays = [np.asarray(x) for x in operands]
    plan = _plan(subscripts, tuple(a.shape for a in arrays), optimize)
    for step in plan:
        arrays = step(arrays)
    return arrays[0]


@functools.lru_cache(maxsize=512)
def _plan(subscripts, shapes, optimize):
    ins, res = subscripts.split("->")
    terms = ins.split(",")
    sizes = {c: n for t, s in zip(terms, shapes) for c, n in zip(t, s)}
    steps = []
    for positions in _path(subscripts, terms, shapes, optimize):
        picked = [terms[i] for i in positions]
        rest = [t for i, t in enumerate(terms) if i not in positions]
        needed = set(res).union(*rest)
        last = not rest
        if len(picked) == 2 and not any(_repeats(t) for t in picked):
            out, run = _pair(picked[0], picked[1], needed, sizes, res if last else None)
        else:
            out = res if last else "".join(dict.fromkeys(c for t in picked for c in t if c in needed))
            run = functools.partial(_np_einsum, ",".join(picked) + "->" + out)
        terms = rest + [out]
        steps.append(functools.partial(_apply, positions, run))
    if not steps or terms[0] != res:     # one operand, or a path that ends before the output's order
        spec = terms[0] + "->" + res
        steps.append(functools.partial(_apply, (0,), functools.partial(_single, spec, _reorder(terms[0], res))))
    return tuple(steps)


def _path(subscripts, terms, shapes, optimize):
    """The order of contraction: positions in the current operand list, each step's result appended."""
    n = len(terms)
    if n == 1:
        return []
    if n == 2:
        return [(0, 1)]
    if optimize is False:
        return [(0, 1)] * (n - 1)
    strategy = ["einsum_path", *optimize] if isinstance(optimize, tuple) else optimize
    dummies = [np.lib.stride_tricks.as_strided(np.zeros(1), s, (0,) * len(s)) for s in shapes]
    try:
        path = np.einsum_path(subscripts, *dummies, optimize=strategy)[0][1:]
    except (ValueError, TypeError, IndexError, KeyError) as err:
        raise ValueError(f"einsum: optimize path {optimize!r:.80} does not fit {subscripts!r}: {err}") from None
    return [tuple(p) for p in path]


def _apply(positions, run, arrays):
    picked = [arrays[i] for i in positions]
    return [a for i, a in enumerate(arrays) if i not in positions] + [run(*picked)]


def _np_einsum(spec, *arrays):
    return np.einsum(spec, *arrays)


def _np_pair(spec, sum_a, sum_b, a, b):
    return np.einsum(spec, np.sum(a, axis=sum_a) if sum_a else a, np.sum(b, axis=sum_b) if sum_b else b)


def _repeats(term):
    return len(set(term)) != len(term)


def _reorder(term, res):
    """Axes to sum and the transpose that turn a term without repeats into res, or None (np.einsum)."""
    if _repeats(term):
        return None
    summed = tuple(i for i, c in enumerate(term) if c not in res)
    kept = [c for c in term if c in res]
    return summed, tuple(kept.index(c) for c in res)


def _single(spec, reorder, a):
    if reorder is None:
        return np.einsum(spec, a)
    summed, perm = reorder
    if summed:
        a = np.sum(a, axis=summed)
    return np.transpose(a, perm) if perm != tuple(range(len(perm))) else a


def _pair(ta, tb, needed, sizes, final):
    """The step contracting operands with terms ta and tb, and its result's term (``final`` if given,
    else batch + free-of-a + free-of-b order, which needs no transpose)."""
    sum_a = tuple(i for i, c in enumerate(ta) if c not in tb and c not in needed)
    sum_b = tuple(i for i, c in enumerate(tb) if c not in ta and c not in needed)
    ta = "".join(c for i, c in enumerate(ta) if i not in sum_a)
    tb = "".join(c for i, c in enumerate(tb) if i not in sum_b)
    batch = [c for c in ta if c in tb and c in needed]
    con = [c for c in ta if c in tb and c not in needed]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    natural = "".join(batch + left + right)
    out = final if final is not None else natural
    back = tuple(natural.index(c) for c in out)
    shape = tuple(sizes[c] for c in natural)
    if con and len(left) + len(right) == 0 and batch:     # a dot per batch element: np.einsum's own loop is faster
        return out, functools.partial(_np_pair, f"{ta},{tb}->{out}", sum_a, sum_b)
    if con:
        perm_a = tuple(ta.index(c) for c in batch + left + con)
        perm_b = tuple(tb.index(c) for c in batch + con + right)
        three = [math.prod(sizes[c] for c in group) for group in (batch, left, con, right)]
        run = functools.partial(_matmul_step, sum_a, sum_b, perm_a, perm_b, three, shape, back)
    else:
        perm_a = tuple(ta.index(c) for c in batch + left)
        perm_b = tuple(tb.index(c) for c in batch + right)
        shape_a = tuple(sizes[c] for c in batch + left) + (1,) * len(right)
        shape_b = tuple(sizes[c] for c in batch) + (1,) * len(left) + tuple(sizes[c] for c in right)
        run = functools.partial(_product_step, sum_a, sum_b, perm_a, perm_b, shape_a, shape_b, back)
    return out, run


def _prepare(x, summed, perm):
    if summed:
        x = np.sum(x, axis=summed)
    return np.transpose(x, perm) if perm != tuple(range(len(perm))) else x


def _finish(r, back):
    return np.transpose(r, back) if back != tuple(range(len(back))) else r


def _matmul_step(sum_a, sum_b, perm_a, perm_b, three, shape, back, a, b):
    nb, m, k, n = three
    a = _prepare(a, sum_a, perm_a).reshape((nb, m, k) if nb > 1 else (m, k))
    b = _prepare(b, sum_b, perm_b).reshape((nb, k, n) if nb > 1 else (k, n))
    return _finish(np.matmul(a, b).reshape(shape), back)


def _product_step(sum_a, sum_b, perm_a, perm_b, shape_a, shape_b, back, a, b):
    a = _prepare(a, sum_a, perm_a).reshape(shape_a)
    b = _prepare(b, sum_b, perm_b).reshape(shape_b)
    return _finish(np.multiply(a, b), back)
