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
    with pytest.raises(TypeError, match=r"a = a\.at\[0, 1\]\.set\(t\)"):
        t[0, 1] = 2.0
    with pytest.raises(TypeError, match=r"a = a\.at\[0\]\.set\(t\)"):       # a constant is not written into either
        ad.zeros(3)[0] = ad.Tensor(1.0, requires_grad=True)
    with pytest.raises((TypeError, ValueError)) as info:      # an array: NumPy calls float(t) and raises its own
        np.zeros(3)[0] = ad.Tensor(1.0, requires_grad=True)   # words, with the refusal as their cause (shown)
    assert ".at[...].set(t)" in str(info.value) + str(info.value.__cause__)


def test_constructors_are_constant_tensors_and_astype_keeps_the_graph():
    t = ad.Tensor(X.astype(np.float32), requires_grad=True)
    made = {"zeros_like": ad.zeros_like(t), "ones_like": ad.ones_like(t), "eye": ad.eye(3), "zeros": ad.zeros((2,)),
            "ones": ad.ones(2), "full": ad.full(2, 1.5), "full_like": ad.full_like(t, 2.5)}
    for name, c in made.items():
        assert type(c) is ad.Tensor and not c.requires_grad and c.is_leaf, name
        assert type(np.asarray(c)) is np.ndarray, name          # not being recorded: NumPy reads it
    dtypes = {"zeros_like": np.float32, "ones_like": np.float32, "eye": np.float64, "zeros": np.float64,
              "ones": np.float64, "full": np.float64, "full_like": np.float32}
    assert {name: c.dtype for name, c in made.items()} == dtypes
    assert ad.full(2, 3).dtype == np.int64 and ad.full(2, np.float32(1)).dtype == np.float32   # NumPy's rule
    assert ad.eye(2, k=1)[0, 1].item() == 1 and ad.zeros(3, np.int32).dtype == np.int32
    y = t.astype(np.float64)
    assert y.dtype == np.float64 and y.requires_grad
    ad.sum(y * y).backward()
    assert t.grad.dtype == np.float32
    np.testing.assert_allclose(t.grad, 2 * X.astype(np.float32), rtol=1e-6)
    assert not ad.astype(t, np.int64).requires_grad


def test_a_constant_updated_at_an_index_differentiates_into_the_value():
    """JAX's idiom a = zeros(n); a = a.at[i].set(v): y = sum(a * w) with a = [0, v0, 0, v1] has
    dy/dv = (w[1], w[3]) by hand, in both modes; the constants are not in the sweep."""
    v, w = ad.Tensor([2.0, -3.0], requires_grad=True), np.array([0.5, 7.0, -1.0, 4.0])
    a = ad.zeros(4)
    a = a.at[np.array([1, 3])].set(v)
    y = ad.sum(a * ad.ones(4) * w)
    y.backward()
    np.testing.assert_array_equal(a.value, [0.0, 2.0, 0.0, -3.0])
    np.testing.assert_array_equal(v.grad, [7.0, 4.0])
    _, tangent = ad.jvp(lambda v: ad.sum(ad.zeros(4).at[np.array([1, 3])].set(v) * w), (v.value,),
                        (np.array([1.0, 10.0]),))
    assert tangent == 7.0 + 10.0 * 4.0
    order, ids = ad.toposort([y])
    inputs = []
    ad.reverse_sweep(order, ids, {id(y): 1.0}, on_edge=lambda node, i, inp, c: inputs.append(inp))
    assert all(n.requires_grad for n in order) and all(inp.requires_grad for inp in inputs)
    assert [n for n in order if n.op is None] == [v]          # no constant is visited: they cost nothing


def test_constructors_take_requires_grad_as_pytorch():
    w = ad.zeros(3, requires_grad=True)
    assert w.requires_grad and w.is_leaf and w.dtype == np.float64
    ad.sum(w * np.array([1.0, 2.0, 3.0])).backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])
    for made in (ad.ones(2, requires_grad=True), ad.eye(2, requires_grad=True), ad.full(2, 0.5, requires_grad=True)):
        assert made.requires_grad and made.is_leaf
    c = ad.Tensor(1.5, requires_grad=True)              # a Tensor fill_value is broadcast: the sum as gradient
    ad.sum(ad.full((2, 3), c)).backward()
    assert c.grad == 6.0


BAD_CONSTRUCTOR_ARGUMENTS = [
    (lambda: ad.zeros(-1), ValueError, "zeros: shape must not be negative"),
    (lambda: ad.ones(2.5), TypeError, "ones: shape must be a non-negative int"),
    (lambda: ad.zeros((2, "a")), TypeError, "zeros: shape must be"),
    (lambda: ad.zeros(3, dtype="nonsense"), TypeError, "zeros: dtype 'nonsense' is not a NumPy dtype"),
    (lambda: ad.ones(3, dtype=str), TypeError, "ones: dtype must be numeric"),
    (lambda: ad.zeros(3, requires_grad="yes"), TypeError, "zeros: requires_grad must be True or False"),
    (lambda: ad.ones(3, dtype=int, requires_grad=True), TypeError, "ones: requires_grad=True needs a floating"),
    (lambda: ad.full(3, "a"), TypeError, "full: fill_value must be a number"),
    (lambda: ad.full(3, None), TypeError, "full: fill_value must be a number"),
    (lambda: ad.full(3, [1.0, 2.0]), ValueError, "full: a fill_value of shape"),
    (lambda: ad.full(2, 300, dtype=np.int8), ValueError, "full: fill_value 300"),
    (lambda: ad.eye(-2), ValueError, "eye: n must not be negative"),
    (lambda: ad.eye(2, k=0.5), TypeError, "eye: k"),
    (lambda: ad.zeros((2 ** 40, 2 ** 40)), ValueError, "zeros: shape"),
    (lambda: ad.zeros_like("abc"), TypeError, "zeros_like: x must be a numeric"),
    (lambda: ad.full_like(np.ones(2), object()), TypeError, "full_like: fill_value must be a number"),
    (lambda: ad.full_like(np.ones(2), 1.0, shape=-3), ValueError, "full_like: shape must not be negative"),
]


@pytest.mark.parametrize("call, kind, message", BAD_CONSTRUCTOR_ARGUMENTS,
                         ids=[m for _, _, m in BAD_CONSTRUCTOR_ARGUMENTS])
def test_constructors_refuse_bad_arguments_in_one_line_naming_them(call, kind, message):
    with pytest.raises(kind, match=message) as info:
        call()
    assert "\n" not in str(info.value)
