"""NumPy and math on tracked Tensors: the right gradient or a clear error, never a silent constant.

Each NumPy function of the list is applied to a Tensor inside the function being differentiated;
the oracle is NumPy itself (central differences of the same call on plain arrays, by gradcheck, in
both modes). A result cut from the graph would have the gradient 0 and fail the check; so would a
result that is not recorded at all.
"""
import math

import numpy as np
import pytest

import autodiff as ad

RNG = np.random.default_rng(20)
V = RNG.uniform(0.5, 1.5, 3) * np.array([1, -1, 1])    # no zeros, no ties
M = RNG.uniform(-1, 1, (3, 3)) + 3 * np.eye(3)         # well conditioned
C = np.array([0.3, -1.2, 2.0])

# (name, function of one array, input): each works on plain arrays (the oracle) and on Tensors
FUNCTIONS = [
    ("np.sin", np.sin, V), ("np.exp", np.exp, V), ("np.log", lambda v: np.log(np.abs(v)), V),
    ("np.sqrt", lambda v: np.sqrt(v * v), V), ("np.abs", np.abs, V), ("np.tanh", np.tanh, V),
    ("np.square", np.square, V), ("np.power", lambda v: np.power(v, 3), V), ("np.reciprocal", np.reciprocal, V),
    ("np.maximum", lambda v: np.maximum(v, 0.1), V), ("np.minimum", lambda v: np.minimum(v, C), V),
    ("np.clip", lambda v: np.clip(v, -0.9, 0.9), V), ("np.sign*v", lambda v: np.sign(v) * v, V),
    ("np.sum", np.sum, M), ("np.sum axis", lambda m: np.sum(m, axis=0, keepdims=True), M),
    ("np.mean", lambda m: np.mean(m, axis=1), M), ("np.prod", lambda m: np.prod(m, axis=0), M),
    ("np.max", lambda m: np.max(m, axis=1), M), ("np.min", np.min, M),
    ("np.var", lambda m: np.var(m, axis=0, ddof=1), M), ("np.std", np.std, M),
    ("np.cumsum", lambda m: np.cumsum(m, axis=1), M), ("np.cumprod", np.cumprod, M),
    ("np.dot", lambda v: np.dot(v, C), V), ("np.dot matrix", lambda m: np.dot(m, m), M),
    ("np.matmul", lambda m: np.matmul(m, C), M), ("ndarray @ Tensor", lambda m: C @ m, M),
    ("np.inner", lambda v: np.inner(v, C), V), ("np.outer", lambda v: np.outer(v, C), V),
    ("np.tensordot", lambda m: np.tensordot(m, m, axes=1), M), ("np.vdot", lambda v: np.vdot(v, C), V),
    ("np.cross", lambda v: np.cross(v, C), V), ("np.einsum", lambda m: np.einsum("ij,jk->ik", m, m), M),
    ("np.einsum trace", lambda m: np.einsum("ii", m), M),
    ("np.linalg.norm", np.linalg.norm, V), ("np.linalg.norm 1", lambda v: np.linalg.norm(v, 1), V),
    ("np.linalg.norm inf", lambda m: np.linalg.norm(m, np.inf), M),
    ("np.linalg.norm fro", lambda m: np.linalg.norm(m, "fro"), M),
    ("np.linalg.det", np.linalg.det, M), ("np.linalg.inv", np.linalg.inv, M),
    ("np.linalg.solve", lambda m: np.linalg.solve(m, C), M), ("np.trace", np.trace, M),
    ("np.diagonal", lambda m: np.diagonal(m, 1), M), ("np.triu", np.triu, M), ("np.tril", lambda m: np.tril(m, -1), M),
    ("np.where", lambda v: np.where(v > 0, v * v, np.sin(v)), V),
    ("np.concatenate", lambda v: np.concatenate([v, v * v]), V),
    ("np.hstack", lambda v: np.hstack([v, C, v[0]]), V), ("np.vstack", lambda v: np.vstack([v, C]) * M[:2], V),
    ("np.hstack 2-d", lambda m: np.hstack([m, m[:, :1]]), M), ("np.stack", lambda v: np.stack([v, C * v], axis=1), V),
    ("np.reshape", lambda m: np.reshape(m, (9,)) * np.arange(9), M), ("np.transpose", lambda m: np.transpose(m) * M, M),
    ("np.ravel", lambda m: np.ravel(m) ** 2, M), ("np.squeeze", lambda v: np.squeeze(v[None]) ** 2, V),
    ("np.expand_dims", lambda v: np.expand_dims(v, 0) * C, V), ("np.moveaxis", lambda m: np.moveaxis(m, 0, 1) * M, M),
    ("np.swapaxes", lambda m: np.swapaxes(m, 0, 1) * M, M), ("np.flip", lambda v: np.flip(v) * C, V),
    ("np.roll", lambda v: np.roll(v, 1) * C, V), ("np.take", lambda v: np.take(v, [2, 0, 0]), V),
    ("np.take_along_axis", lambda m: np.take_along_axis(m, np.array([[0], [2], [1]]), axis=1), M),
    ("np.pad", lambda v: np.pad(v, (1, 2)) * np.arange(6), V),
    ("np.pad reflect", lambda v: np.pad(v, 2, mode="reflect") * np.arange(7), V),
    ("np.broadcast_to", lambda v: np.broadcast_to(v, (2, 3)) * np.arange(6).reshape(2, 3), V),
    ("np.add.reduce", lambda m: np.add.reduce(m), M), ("np.multiply.reduce", lambda v: np.multiply.reduce(v), V),
    ("np.add.accumulate", lambda v: np.add.accumulate(v), V),
    ("np.vecdot", lambda m: np.vecdot(m, M), M), ("np.linalg.vector_norm", np.linalg.vector_norm, M),
    ("np.linalg.vector_norm axis", lambda m: np.linalg.vector_norm(m, axis=1, ord=1, keepdims=True), M),
    ("np.linalg.matrix_norm", lambda m: np.linalg.matrix_norm(m, ord=np.inf), M),
    ("np.linalg.cross", lambda v: np.linalg.cross(v, C), V), ("np.linalg.outer", lambda v: np.linalg.outer(v, C), V),
    ("np.linalg.trace", lambda m: np.linalg.trace(m, offset=1), M),
    ("np.linalg.matmul", lambda m: np.linalg.matmul(m, m), M),
    ("np.linalg.tensordot", lambda m: np.linalg.tensordot(m, m, axes=1), M),
]


@pytest.mark.parametrize("name, f, x", FUNCTIONS, ids=[c[0] for c in FUNCTIONS])
def test_numpy_functions_on_tracked_tensors_give_numpys_own_derivative(name, f, x):
    out = f(ad.Tensor(x, requires_grad=True))
    assert isinstance(out, ad.Tensor) and out.requires_grad, f"{name} returned a value cut from the graph"
    np.testing.assert_allclose(out.value, f(x), rtol=1e-12, atol=1e-12)
    report = ad.gradcheck(f, x)  # reverse and forward mode against central differences of NumPy's f
    assert report.passed and report.checked > 0


REFUSED = [
    ("np.sort", lambda v: np.sort(v), "argsort"), ("np.arctan", np.arctan, "no autodiff equivalent"),
    ("np.arcsinh", np.arcsinh, "no autodiff equivalent"), ("np.fft.fft", lambda v: np.fft.fft(v), "FFT"),
    ("np.column_stack", lambda v: np.column_stack([v, v]), "stack"),
    ("np.asarray", np.asarray, "detach"), ("np.array of Tensors", lambda v: np.array([v[0], v[1]]), "detach"),
    ("t.numpy()", lambda v: v.numpy(), "detach"), ("float", lambda v: float(v[0]), "item"),
    ("math.sin", lambda v: math.sin(v[0]), "autodiff.sin"), ("math.exp", lambda v: math.exp(v[0]), "float"),
    ("math.sqrt", lambda v: math.sqrt(v[0] * v[0]), "float"), ("math.log", lambda v: math.log(v[0]), "float"),
    ("np.sum out=", lambda v: np.sum(v, out=np.zeros(())), "out="),
    ("np.sin out=", lambda v: np.sin(v, out=np.zeros(3)), "out="),
    ("ndarray +=", lambda v: np.zeros(3).__iadd__(v), "out="),
    ("np.sum where=", lambda v: np.sum(v, where=np.array([True, False, True])), "where"),
    ("np.einsum sublists", lambda v: np.einsum(v, [0], [0]), "subscripts"),
    ("x[i] = v", lambda v: v.__setitem__(0, 1.0), r"a = a\.at\[0\]\.set\(t\)"),
    ("ad.Tensor(t)", lambda v: ad.Tensor(v), "detach"),
]


@pytest.mark.parametrize("name, f, message", REFUSED, ids=[c[0] for c in REFUSED])
def test_what_would_cut_the_graph_raises_a_clear_error(name, f, message):
    with pytest.raises(TypeError, match=message):
        ad.grad(lambda v: ad.sum(f(v)))(V)


@pytest.mark.parametrize("name, f, x", FUNCTIONS[:12] + [("np.sort", np.sort, V), ("np.arctan", np.arctan, V)],
                         ids=[c[0] for c in FUNCTIONS[:12]] + ["np.sort", "np.arctan"])
def test_on_untracked_tensors_and_under_no_grad_numpy_just_computes(name, f, x):
    np.testing.assert_allclose(np.asarray(ad.value_of(f(ad.Tensor(x)))), f(x), rtol=1e-12)
    with ad.no_grad():
        np.testing.assert_allclose(np.asarray(ad.value_of(f(ad.Tensor(x, requires_grad=True)))), f(x), rtol=1e-12)


def test_the_explicit_ways_out_and_what_has_no_derivative_stay_open():
    t = ad.Tensor(V, requires_grad=True)
    y = ad.sum(t * t)
    assert y.item() == pytest.approx(float(np.sum(V * V)))
    assert float(y.detach()) == y.item() and np.asarray(y.value) == y.item()
    assert int(ad.Tensor(2.7, requires_grad=True)) == 2 and bool(y)
    assert f"{y:.3f}" == f"{np.sum(V * V):.3f}" and f"{t}" == str(t)          # a string carries no gradient
    assert np.shape(t) == (3,) and np.ndim(t) == 1 and np.size(t) == 3
    np.testing.assert_array_equal(np.greater(V, t), np.zeros(3, bool))            # comparisons: plain arrays
    np.testing.assert_array_equal(np.isfinite(t), np.ones(3, bool))
    assert np.argmax(t) == np.argmax(V) and np.zeros_like(t).shape == (3,)
    np.testing.assert_array_equal(np.floor(t), np.floor(V))                     # piecewise constant
    assert isinstance(np.ones(3) + t, ad.Tensor) and (np.ones(3) * t).requires_grad


def test_np_sum_of_a_tensor_takes_numpys_arguments():
    t = ad.Tensor(M, requires_grad=True)
    np.testing.assert_allclose(np.sum(t).value, M.sum())
    np.testing.assert_allclose(np.sum(t, axis=(0, 1), keepdims=True).value, M.sum(axis=(0, 1), keepdims=True))
    np.testing.assert_allclose(np.sum(t, dtype=np.float32).value, M.sum(dtype=np.float32), rtol=1e-6)
    assert np.sum(t, dtype=np.float32).dtype == np.float32


def test_nested_differentiation_through_numpy_calls():
    # d^2/dx^2 of sum(exp(x) * x) = exp(x) (x + 2), with np.exp and np.sum inside
    h = ad.hessian(lambda v: np.sum(np.exp(v) * v))(V)
    np.testing.assert_allclose(h, np.diag(np.exp(V) * (V + 2)), rtol=1e-12)


UFUNCS = sorted({u for u in vars(np).values() if isinstance(u, np.ufunc) and u.nin in (1, 2) and u.signature is None
                 and any(t.startswith("d" * u.nin + "->") for t in u.types)}, key=lambda u: u.__name__)


@pytest.mark.parametrize("ufunc", UFUNCS, ids=[u.__name__ for u in UFUNCS])
def test_no_numpy_ufunc_returns_a_silent_constant(ufunc):
    """Every float ufunc of NumPy, on a tracked Tensor: a recorded result with NumPy's derivative,
    or a TypeError, or a result that has no derivative (bool, int, piecewise constant)."""
    x = np.array([0.3, 0.55, 0.8])                       # inside every ufunc's domain, no ties, no kinks
    others = (np.array([0.7, 0.4, 0.2]),) * (ufunc.nin - 1)

    def f(v):
        return ufunc(v, *others)

    try:
        result = f(ad.Tensor(x, requires_grad=True))
    except TypeError as err:
        assert "no autodiff equivalent" in str(err), str(err)
        return
    if isinstance(result, ad.Tensor) and result.requires_grad:
        np.testing.assert_allclose(result.value, ufunc(x, *others), rtol=1e-12)
        assert ad.gradcheck(f, x).passed, ufunc.__name__
    else:
        assert np.asarray(result).dtype.kind in "biu" or ufunc in (np.floor, np.ceil, np.trunc, np.rint, np.floor_divide), \
            f"np.{ufunc.__name__} returned a constant of dtype {np.asarray(result).dtype}"
