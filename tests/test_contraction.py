"""einsum through BLAS (autodiff.ops.contraction) against np.einsum, and the optimize= argument.

The planner turns each pair of operands into a (batched) matrix product; random subscripts (shared,
batch, summed-alone, repeated and output indices, in random orders) must give np.einsum's numbers to
round-off, for every optimize choice, and their gradients must pass gradcheck.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autodiff as ad
from autodiff.ops import contraction
from autodiff.ops.linalg import normalize_subscripts

LETTERS = "abcdef"
SIZES = dict(zip(LETTERS, (2, 3, 1, 4, 2, 3)))


@st.composite
def einsum_problems(draw):
    count = draw(st.integers(1, 4))
    terms = [draw(st.lists(st.sampled_from(LETTERS), min_size=0, max_size=3)) for _ in range(count)]
    used = sorted(set("".join("".join(t) for t in terms)))
    out = draw(st.permutations(used)) if used else []
    out = out[:draw(st.integers(0, len(out)))]
    spec = ",".join("".join(t) for t in terms) + "->" + "".join(out)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return spec, [rng.standard_normal([SIZES[c] for c in t]) for t in terms]


@settings(max_examples=300, deadline=None)
@given(einsum_problems(), st.sampled_from([False, True, "greedy", "optimal"]))
def test_random_subscripts_give_numpys_numbers(problem, optimize):
    spec, xs = problem
    got = contraction.evaluate(normalize_subscripts(spec, [x.shape for x in xs]), xs,
                               contraction.check_optimize(optimize, len(xs)))
    want = np.einsum(spec, *xs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(einsum_problems())
def test_random_subscripts_have_correct_gradients(problem):
    spec, xs = problem
    assert ad.gradcheck(lambda *v: ad.einsum(spec, *v), *xs).passed


@pytest.mark.parametrize("spec, shapes", [
    ("kij,nkj->nki", [(3, 4, 4), (5, 3, 4)]),        # a batch index: NumPy's optimize cannot use BLAS here
    ("bij,bjk->bik", [(6, 2, 3), (6, 3, 2)]),
    ("bi,bi->b", [(7, 5), (7, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ii,ij->j", [(3, 3), (3, 2)]),                  # a diagonal: left to np.einsum
])
def test_named_contractions_and_float32(spec, shapes):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    got = ad.einsum(spec, *xs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.einsum(spec, *xs), rtol=2e-6, atol=1e-6)


def test_a_pair_with_a_batch_index_is_one_matmul(monkeypatch):
    calls = []
    real = np.matmul
    monkeypatch.setattr(contraction.np, "matmul", lambda a, b: calls.append((a.shape, b.shape)) or real(a, b))
    contraction._plan.cache_clear()
    ad.einsum("kij,nkj->nki", np.ones((3, 4, 4)), np.ones((5, 3, 4)))
    assert calls == [((3, 4, 4), (3, 4, 5))]


def test_optimize_is_honoured_and_checked():
    rng = np.random.default_rng(1)
    a, b, c = rng.standard_normal((30, 2)), rng.standard_normal((2, 30)), rng.standard_normal((30, 3))
    want = np.einsum("ij,jk,kl->il", a, b, c)
    for optimize in (False, True, "optimal", ["einsum_path", (1, 2), (0, 1)], [(0, 1), (0, 1)]):
        np.testing.assert_allclose(ad.einsum("ij,jk,kl->il", a, b, c, optimize=optimize), want, rtol=1e-12)
        np.testing.assert_allclose(np.einsum("ij,jk,kl->il", ad.Tensor(a), b, c, optimize=optimize).value, want,
                                   rtol=1e-12)
    assert contraction._path("ij,jk,kl->il", ["ij", "jk", "kl"], [(30, 2), (2, 30), (30, 3)], False) == [(0, 1)] * 2
    assert contraction._path("ij,jk,kl->il", ["ij", "jk", "kl"], [(30, 2), (2, 30), (30, 3)], "greedy") == \
        [(1, 2), (0, 1)]     # b @ c first: 2x30x3, not the 30x30 product a @ b
    for bad in ("fastest", 3, [("x", 1)]):
        with pytest.raises(ValueError, match=r"einsum: optimize must be"):
            ad.einsum("ij,jk->ik", a, b, optimize=bad)
    with pytest.raises(ValueError, match=r"einsum: optimize path .* does not fit"):
        ad.einsum("ij,jk,kl->il", a, b, c, optimize=[(0, 5)])
