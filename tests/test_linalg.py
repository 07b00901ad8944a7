"""The linear-algebra and array ops NumPy users reach for, held to SymPy, NumPy and differences.

The primitives among them (einsum, det, inv, solve, prod, cumsum, sign, astype) are also checked by
the registry-driven tests of test_primitives.py; the composed ones are checked here, by gradcheck
in both modes and to second order, with NumPy's own function as the value's oracle.
"""
import numpy as np
import pytest
import sympy as sp

import autodiff as ad

RNG = np.random.default_rng(7)


def _matrix(n, seed):
    return np.random.default_rng(seed).uniform(-1, 1, (n, n)) + 2 * np.eye(n)


@pytest.mark.parametrize("n", [2, 3])
def test_det_inv_solve_derivatives_agree_with_sympy(n):
    """Jacobi's formula d det = det tr(A^-1 dA) and d(A^-1) = -A^-1 dA A^-1, held to SymPy's exact
    derivatives of the symbolic determinant, inverse and solution at a numeric point."""
    syms = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"a{i}{j}"))
    bs = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"b{i}"))
    a, b = _matrix(n, n), RNG.uniform(-1, 1, n)
    point = {syms[i, j]: a[i, j] for i in range(n) for j in range(n)} | {bs[i]: b[i] for i in range(n)}

    def exact(expr, var):
        return float(sp.diff(expr, var).subs(point))

    det = syms.det()
    np.testing.assert_allclose(ad.grad(ad.det)(a), [[exact(det, syms[i, j]) for j in range(n)] for i in range(n)],
                               rtol=1e-12)
    inv = syms.inv()
    jac = ad.jacobian(ad.inv)(a)  # d inv[i, j] / d a[k, l]
    for i, j, k, l in np.ndindex(n, n, n, n):
        assert jac[i, j, k, l] == pytest.approx(exact(inv[i, j], syms[k, l]), rel=1e-10, abs=1e-12)
    x = syms.LUsolve(bs)
    ja, jb = ad.jacobian(ad.solve, argnums=0)(a, b), ad.jacobian(ad.solve, argnums=1)(a, b)
    for i, k in np.ndindex(n, n):
        assert jb[i, k] == pytest.approx(exact(x[i], bs[k]), rel=1e-10, abs=1e-12)
        for l in range(n):
            assert ja[i, k, l] == pytest.approx(exact(x[i], syms[k, l]), rel=1e-10, abs=1e-12)


def test_det_of_a_stack_and_second_derivatives():
    stack = np.stack([_matrix(3, 1), _matrix(3, 2)])
    np.testing.assert_allclose(ad.det(stack), np.linalg.det(stack), rtol=1e-12)
    assert ad.gradcheck(lambda a: ad.det(a), stack, order=2).passed
    assert ad.gradcheck(lambda a: ad.sum(ad.inv(a) * a), _matrix(3, 3), order=2).passed


EINSUMS = [("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 2)]), ("ii", [(3, 3)]), ("ii->i", [(3, 3)]),
           ("...ij,...jk->...ik", [(2, 2, 3), (2, 3, 2)]), ("i,i", [(3,), (3,)]), ("bi,bj->bij", [(2, 3), (2, 2)]),
           ("iij,jk->ik", [(2, 2, 3), (3, 2)]), ("ij->", [(2, 3)]), ("ijk->kji", [(2, 3, 4)])]


@pytest.mark.parametrize("spec, shapes", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum_has_numpys_value_and_is_differentiable_to_second_order(spec, shapes):
    xs = [RNG.uniform(-1, 1, s) for s in shapes]
    np.testing.assert_allclose(ad.einsum(spec, *xs), np.einsum(spec, *xs), rtol=1e-12, atol=1e-14)
    assert ad.gradcheck(lambda *v: ad.einsum(spec, *v), *xs).passed
    assert ad.gradcheck(lambda *v: ad.einsum(spec, *v), *xs, order=2).passed


def test_einsum_names_bad_subscripts():
    with pytest.raises(ValueError, match="names 2 operand"):
        ad.einsum("ij,jk->ik", np.ones((2, 2)))
    with pytest.raises(ValueError, match="does not broadcast"):
        ad.einsum("ij,ij->ij", np.ones((2, 3)), np.ones((1, 3)))


X = RNG.uniform(-1.5, 1.5, (3, 4))
COMPOSED = [  # (autodiff, numpy): same arguments
    (lambda x: ad.dot(x, x.T), lambda x: np.dot(x, x.T)),
    (lambda x: ad.cross(x[:, :3], x[::-1, 1:]), lambda x: np.cross(x[:, :3], x[::-1, 1:])),
    (lambda x: ad.cross(x[:, :3].T, x[:, 1:].T, axis=0), lambda x: np.cross(x[:, :3].T, x[:, 1:].T, axis=0)),
    (lambda x: ad.cumprod(x, axis=1), lambda x: np.cumprod(x, axis=1)),
    (lambda x: ad.prod(x, axis=0, keepdims=True), lambda x: np.prod(x, axis=0, keepdims=True)),
    (lambda x: ad.roll(x, (1, -1), (0, 1)), lambda x: np.roll(x, (1, -1), (0, 1))),
    (lambda x: ad.flip(x, 1), lambda x: np.flip(x, 1)),
    (lambda x: ad.pad(x, ((1, 0), (2, 1)), constant_values=0.5), lambda x: np.pad(x, ((1, 0), (2, 1)), constant_values=0.5)),
    (lambda x: ad.pad(x, 2, mode="wrap"), lambda x: np.pad(x, 2, mode="wrap")),
    (lambda x: ad.pad(x, 1, mode="edge"), lambda x: np.pad(x, 1, mode="edge")),
    (lambda x: ad.take(x, [[0, 3], [3, 3]], axis=1), lambda x: np.take(x, [[0, 3], [3, 3]], axis=1)),
    (lambda x: ad.take_along_axis(x, np.array([[0, 1, 2, 0]]), 0), lambda x: np.take_along_axis(x, np.array([[0, 1, 2, 0]]), 0)),
    (lambda x: ad.diagonal(x, -1), lambda x: np.diagonal(x, -1)), (lambda x: ad.trace(x, 1), lambda x: np.trace(x, 1)),
    (lambda x: ad.triu(x, 1), lambda x: np.triu(x, 1)), (lambda x: ad.tril(x), lambda x: np.tril(x)),
    (lambda x: ad.norm(x), lambda x: np.linalg.norm(x)), (lambda x: ad.norm(x, 1), lambda x: np.linalg.norm(x, 1)),
    (lambda x: ad.norm(x, -np.inf), lambda x: np.linalg.norm(x, -np.inf)),
    (lambda x: ad.norm(x, 3, axis=1, keepdims=True), lambda x: np.linalg.norm(x, 3, axis=1, keepdims=True)),
    (lambda x: ad.norm(x, np.inf, axis=0), lambda x: np.linalg.norm(x, np.inf, axis=0)),
    (lambda x: ad.var(x, axis=1, ddof=1), lambda x: np.var(x, axis=1, ddof=1)),
    (lambda x: ad.std(x, keepdims=True), lambda x: np.std(x, keepdims=True)),
    (lambda x: ad.tensordot(x, x, axes=([0], [0])), lambda x: np.tensordot(x, x, axes=([0], [0]))),
    (lambda x: ad.outer(x[0], x[1]), lambda x: np.outer(x[0], x[1])),
    (lambda x: ad.expand_dims(x, (0, 2)) * 2, lambda x: np.expand_dims(x, (0, 2)) * 2),
    (lambda x: ad.moveaxis(x[None], 0, -1), lambda x: np.moveaxis(x[None], 0, -1)),
    (lambda x: ad.Tensor(1.0) * x.flatten() + x.ravel(), lambda x: 2 * x.ravel()),
]


@pytest.mark.parametrize("k", range(len(COMPOSED)))
def test_composed_ops_have_numpys_value_and_check_to_second_order(k):
    ours, numpys = COMPOSED[k]
    np.testing.assert_allclose(ad.value_of(ours(ad.Tensor(X))), numpys(X), rtol=1e-12, atol=1e-14)
    assert ad.gradcheck(ours, X).passed
    assert ad.gradcheck(ours, X, order=2).passed


def test_products_with_zeros_are_exact_where_dividing_would_fail():
    x = np.array([2.0, 0.0, 3.0, -1.0])
    np.testing.assert_allclose(ad.grad(ad.prod)(x), [0.0, -6.0, 0.0, 0.0])   # prod of the others
    np.testing.assert_allclose(ad.hessian(ad.prod)(x)[1], [-3.0, 0.0, -2.0, 6.0])
    assert ad.gradcheck(lambda v: ad.cumprod(v), x, order=2).passed
    assert ad.gradcheck(lambda v: ad.prod(v), np.array([0.0, 1.5, 0.0]), order=2).passed


def test_norms_have_a_zero_gradient_at_zero_not_nan():
    zero = np.zeros(3)
    np.testing.assert_array_equal(ad.grad(ad.norm)(zero), zero)
    np.testing.assert_array_equal(ad.grad(lambda v: ad.norm(v, 3))(zero), zero)
    with pytest.raises(ValueError, match="SVD"):
        ad.norm(X, 2)


def test_item_update_at_set_and_add_in_both_modes():
    x, v = RNG.uniform(-1, 1, (3, 4)), RNG.uniform(-1, 1, 2)
    expected = x.copy()
    expected[1, [0, 2]] = v
    np.testing.assert_array_equal(ad.Tensor(x).at[1, [0, 2]].set(v).value, expected)
    added = x.copy()
    np.add.at(added, (np.array([0, 0, 2]),), 1.5)
    np.testing.assert_array_equal(ad.Tensor(x).at[np.array([0, 0, 2])].add(1.5).value, added)
    at = ad.ops.IndexUpdate  # x.at for a Tensor x, and for the plain arrays of the differences too
    assert ad.gradcheck(lambda a, b: at(a)[1, [0, 2]].set(b * b), x, v).passed
    assert ad.gradcheck(lambda a, b: at(a)[:, 1].add(ad.sum(b)), x, v, order=2).passed
    np.testing.assert_array_equal(ad.grad(lambda a: ad.sum(a.at[0].set(0.0)))(x), np.r_[[np.zeros(4)], np.ones((2, 4))])
    with pytest.raises(ValueError, match="more than once"):
        ad.Tensor(x).at[np.array([0, 0])].set(1.0)
    with pytest.raises(ValueError, match="does not fit"):
        ad.Tensor(x).at[0].set(np.ones(3))


def test_item_assignment_is_refused_with_the_functional_spelling():
    t = ad.Tensor(X, requires_grad=True)
    with pytest.raises(TypeError, match=r"x\.at\[i\]\.set\(v\)"):
        t[0, 1] = 2.0


def test_constructors_are_plain_arrays_and_astype_keeps_the_graph():
    t = ad.Tensor(X.astype(np.float32), requires_grad=True)
    for made in (ad.zeros_like(t), ad.ones_like(t), ad.eye(3), ad.zeros((2,)), ad.ones(2), ad.full(2, 1.5)):
        assert type(made) is np.ndarray
    assert ad.zeros_like(t).dtype == np.float32 and ad.eye(2, k=1)[0, 1] == 1
    y = t.astype(np.float64)
    assert y.dtype == np.float64 and y.requires_grad
    ad.sum(y * y).backward()
    assert t.grad.dtype == np.float32
    np.testing.assert_allclose(t.grad, 2 * X.astype(np.float32), rtol=1e-6)
    assert not ad.astype(t, np.int64).requires_grad
