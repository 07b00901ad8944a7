"""log1p, expm1, arctan2, hypot, logaddexp (issue 32): NumPy dispatch, stability, the rules, compile."""
import numpy as np
import pytest

import autodiff as ad

UNARY = [("log1p", np.log1p, (-0.9, 3.0)), ("expm1", np.expm1, (-3.0, 3.0))]
BINARY = [("arctan2", np.arctan2, (0.2, 2.0), (-2.0, 2.0)), ("hypot", np.hypot, (-2.0, 2.0), (-2.0, 2.0)),
          ("logaddexp", np.logaddexp, (-3.0, 3.0), (-3.0, 3.0))]
ALL = [c[0] for c in UNARY + BINARY]


def _inputs(name, seed=0, shape=(5,)):
    rng = np.random.default_rng(seed)
    for n, _, *ranges in UNARY + BINARY:
        if n == name:
            return tuple(rng.uniform(lo, hi, shape) for lo, hi in ranges)


def _ufunc(name):
    return getattr(np, name)


@pytest.mark.parametrize("name", ALL)
def test_numpy_ufunc_dispatches_to_the_primitive(name):
    xs = _inputs(name)
    out = _ufunc(name)(*[ad.Tensor(x, requires_grad=True) for x in xs])
    assert isinstance(out, ad.Tensor) and out.op is ad.REGISTRY[name] and out.requires_grad
    np.testing.assert_array_equal(out.value, _ufunc(name)(*xs))
    assert getattr(ad, name) is getattr(ad.ops, name) and name in ad.__all__ and name in ad.ops.__all__


@pytest.mark.parametrize("name", ALL)
def test_gradients_match_finite_differences_in_both_modes(name):
    report = ad.gradcheck(lambda *xs: _ufunc(name)(*xs), *_inputs(name, seed=1))
    assert report.passed and report.checked > 0


def test_textbook_derivatives():
    x = np.array([-0.5, 0.0, 2.0])
    np.testing.assert_allclose(ad.grad(lambda v: ad.sum(ad.log1p(v)))(x), 1 / (1 + x), rtol=1e-15)
    np.testing.assert_allclose(ad.grad(lambda v: ad.sum(ad.expm1(v)))(x), np.exp(x), rtol=1e-15)
    y, x = np.array([1.0, -2.0, 0.5]), np.array([-3.0, 0.5, 2.0])
    gy, gx = ad.grad(lambda a, b: ad.sum(ad.arctan2(a, b)), argnums=(0, 1))(y, x)
    np.testing.assert_allclose(gy, x / (x * x + y * y), rtol=1e-14)
    np.testing.assert_allclose(gx, -y / (x * x + y * y), rtol=1e-14)
    ga, gb = ad.grad(lambda a, b: ad.sum(ad.hypot(a, b)), argnums=(0, 1))(y, x)
    np.testing.assert_allclose(ga, y / np.hypot(y, x), rtol=1e-15)
    np.testing.assert_allclose(gb, x / np.hypot(y, x), rtol=1e-15)


def test_stable_values_and_gradients():
    assert ad.log1p(np.array(1e-20)) == 1e-20 and ad.expm1(np.array(1e-20)) == 1e-20
    assert ad.grad(lambda v: ad.log1p(v))(1e-20) == 1.0 and ad.grad(lambda v: ad.expm1(v))(1e-20) == 1.0
    value, (ga, gb) = ad.value_and_grad(lambda a, b: ad.logaddexp(a, b), argnums=(0, 1))(1000.0, 1000.0)
    assert value == pytest.approx(1000.0 + np.log(2), rel=1e-15) and (ga, gb) == (0.5, 0.5)
    value, (ga, gb) = ad.value_and_grad(lambda a, b: ad.logaddexp(a, b), argnums=(0, 1))(-1000.0, 0.0)
    assert np.isfinite(value) and (ga, gb) == (0.0, 1.0)
    g = ad.grad(lambda a, b: ad.arctan2(a, b), argnums=(0, 1))(1e200, 1e200)    # (x/r)/r: no overflow of x²
    assert np.allclose(g, (0.5e-200, -0.5e-200), rtol=1e-14, atol=0)
    g = ad.grad(lambda a, b: ad.hypot(a, b), argnums=(0, 1))(1e200, 1e200)
    np.testing.assert_allclose(g, (2 ** -0.5, 2 ** -0.5), rtol=1e-15)


def test_logaddexp_weights_are_finite_where_both_arguments_are_infinite():
    """The partials are a's and b's softmax weights; where both are -inf (log of 0 + 0) they are 1/2 each,
    the limit along the diagonal, in both modes, not NaN from inf - inf. JAX 0.10.2 (x64), by hand:
    jax.grad(jnp.logaddexp, (0, 1)) gives (0, 1) at (-inf, 0), (0.5, 0.5) at (0, 0), sigmoid(-1), sigmoid(1)
    = (0.26894142, 0.73105858) at (1, 2) and (1, 0) at (3, -inf), the same here; at (-inf, -inf) it gives
    (nan, nan) and at (+inf, +inf) (1, 1), whose sum 2 is not the diagonal's slope 1: here (0.5, 0.5)."""
    inf = np.inf
    grad = ad.grad(ad.logaddexp, argnums=(0, 1))
    cases = {(-inf, -inf): (0.5, 0.5), (-inf, 0.0): (0.0, 1.0), (0.0, 0.0): (0.5, 0.5), (inf, inf): (0.5, 0.5)}
    for (a, b), weights in cases.items():
        assert grad(a, b) == weights
        assert (ad.jvp(ad.logaddexp, (a, b), (1.0, 0.0))[1], ad.jvp(ad.logaddexp, (a, b), (0.0, 1.0))[1]) == weights
    a, b = np.array([-inf, -inf, 0.0, 1.0, 3.0]), np.array([-inf, 0.0, 0.0, 2.0, -inf])
    wa, wb = [0.5, 0.0, 0.5, 0.26894142, 1.0], [0.5, 1.0, 0.5, 0.73105858, 0.0]
    ga, gb = ad.grad(lambda a, b: ad.sum(ad.logaddexp(a, b)), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, wa, rtol=1e-8)
    np.testing.assert_allclose(gb, wb, rtol=1e-8)
    _, tangent = ad.jvp(ad.logaddexp, (a, b), (np.ones(5), np.full(5, 10.0)))
    np.testing.assert_allclose(tangent, np.add(wa, np.multiply(10.0, wb)), rtol=1e-8)    # JAX: nan, 10, 5.5 ...
    f32 = ad.grad(lambda a, b: ad.sum(ad.logaddexp(a, b)))(a.astype(np.float32), b.astype(np.float32))
    assert f32.dtype == np.float32 and np.allclose(f32, wa, rtol=1e-6)
    h = ad.hessian(lambda v: ad.logaddexp(v[0], v[1]))(np.array([0.3, 0.3]))    # second order exact at ties
    np.testing.assert_allclose(h, [[0.25, -0.25], [-0.25, 0.25]], rtol=1e-15)
    compiled = ad.compile(lambda a, b: ad.sum(ad.logaddexp(a, b)), np.zeros(5), np.ones(5), mode="reverse")
    np.testing.assert_allclose(compiled(a, b)[1], wa, rtol=1e-8)        # the recorded rule computes the weights


def test_hypot_at_zero_has_gradient_zero_as_pytorch():
    assert ad.grad(lambda a, b: ad.hypot(a, b), argnums=(0, 1))(0.0, 0.0) == (0.0, 0.0)
    assert ad.jvp(lambda a: ad.hypot(a, np.zeros(2)), (np.zeros(2),), (np.ones(2),))[1].tolist() == [0.0, 0.0]
    with np.errstate(invalid="ignore"):    # arctan2 has no derivative at the origin: NaN (0/0)
        assert np.isnan(ad.grad(lambda a, b: ad.arctan2(a, b), argnums=(0, 1))(0.0, 0.0)).all()


def test_refused_on_complex_input_where_not_analytic():
    z = np.array([1.0 + 1.0j])
    for name in ("arctan2", "hypot", "logaddexp"):
        with pytest.raises(TypeError, match="complex"):
            getattr(ad, name)(z, z)


@pytest.mark.parametrize("name", ALL)
def test_vmap_matches_the_loop(name):
    xs = _inputs(name, seed=2, shape=(4, 3))
    f = ad.grad(lambda *a: ad.sum(_ufunc(name)(*a)))
    np.testing.assert_allclose(ad.vmap(f)(*xs), np.stack([f(*(x[i] for x in xs)) for i in range(4)]), rtol=1e-14)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compiled_ufuncs")


@pytest.mark.parametrize("name", ALL)
def test_compiled_value_and_gradient_match_the_engine_at_other_points(name, cache):
    pytest.importorskip("numba")

    def f(*xs):
        return ad.sum(_ufunc(name)(*xs) * ad.sin(xs[0]))

    argnums = tuple(range(len(_inputs(name))))
    compiled = ad.compile(f, *_inputs(name, seed=3), argnums=argnums, cache=cache)
    assert f"np.{name}(" in compiled.source
    for seed in (4, 5):
        xs = _inputs(name, seed=seed)
        value, grads = compiled(*xs)
        want_value, want_grads = ad.value_and_grad(f, argnums=argnums)(*xs)
        np.testing.assert_allclose(value, want_value, rtol=1e-12)
        for got, want in zip(grads, want_grads):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
