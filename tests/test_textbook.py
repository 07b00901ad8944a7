"""The source material's worked examples (section 5.5), held to independent oracles."""
import numpy as np
import pytest
import sympy as sp

import autodiff as ad
from autodiff.examples import eq_5_36, eq_5_37, rosenbrock, rosenbrock_hessian

POINTS = [-2.0, -1.3, -0.4, 0.0, 0.5, 1.1, 2.0]


def _sympy_eq_5_37(point):
    """eq. 5.37 from SymPy's own derivative of eq. 5.36, at high precision."""
    x = sp.Symbol("x")
    f = sp.exp(sp.sin(x) + sp.sin(x) ** 2) + sp.sin(sp.exp(x) + sp.exp(x) ** 2)
    return float(sp.diff(f, x).evalf(30, subs={x: sp.Rational(str(point))}))


@pytest.mark.parametrize("x", POINTS)
def test_eq_5_36_differentiates_to_eq_5_37_in_both_modes(x):
    exact = _sympy_eq_5_37(x)
    reverse = ad.grad(eq_5_36)(x)
    _, forward = ad.jvp(eq_5_36, (x,), (1.0,))
    t = ad.Tensor(x, requires_grad=True)
    eq_5_36(t).backward()
    for value in (reverse, forward, float(t.grad)):
        assert abs(value - exact) <= 1e-12 * abs(exact)
    # the textbook's closed form (eq. 5.37, written in NumPy) agrees too
    assert abs(eq_5_37(x) - exact) <= 1e-12 * abs(exact)


def test_eq_5_36_on_an_array_matches_eq_5_37_elementwise():
    x = np.linspace(-2, 2, 41)
    _, tangent = ad.jvp(eq_5_36, (x,), (np.ones_like(x),))
    out, vjp_fn = ad.vjp(eq_5_36, x)
    (cotangent,) = vjp_fn(np.ones_like(x))
    exact = np.array([_sympy_eq_5_37(float(v)) for v in x])
    np.testing.assert_allclose(tangent, exact, rtol=1e-12)
    np.testing.assert_allclose(cotangent, exact, rtol=1e-12)


def test_recorded_graph_is_the_decomposition_of_eq_5_38():
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    y = eq_5_36(x)
    order, _ = ad.toposort([y])
    ops = [n for n in order if n.op is not None]
    assert len(ops) == 9  # a, b, c, d, e, f, g, h, y
    leaves = [n for n in order if n.op is None]
    assert len(leaves) == 1 and leaves[0] is x

    def parts(node):
        return node.op.name, node.inputs

    # y = d + h
    name, (d, h) = parts(y)
    assert name == "add"
    # d = exp(c), c = a + b, b = a^2, a = sin(x)
    assert parts(d)[0] == "exp"
    c = d.inputs[0]
    assert parts(c)[0] == "add"
    a, b = c.inputs
    assert parts(a) == ("sin", (x,))
    assert b.op.name == "pow_const" and b.inputs[0] is a and b.params == {"p": 2}
    # h = sin(g), g = e + f, f = e^2, e = exp(x)
    assert parts(h)[0] == "sin"
    g = h.inputs[0]
    assert parts(g)[0] == "add"
    e, f = g.inputs
    assert parts(e) == ("exp", (x,))
    assert f.op.name == "pow_const" and f.inputs[0] is e and f.params == {"p": 2}
    # values are those of eq. 5.38 evaluated by hand
    assert a.item() == np.sin(0.5) and e.item() == np.exp(0.5)
    assert y.item() == pytest.approx(np.exp(np.sin(0.5) + np.sin(0.5) ** 2) + np.sin(np.exp(0.5) + np.exp(1.0)), rel=1e-15)


def test_eq_5_39_intermediate_adjoints():
    """dy/da = dy/dc dc/da + dy/db db/da and the other lines of eq. 5.39, at x = 0.5."""
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    y = eq_5_36(x)
    d, h = y.inputs
    c = d.inputs[0]
    a, b = c.inputs
    g = h.inputs[0]
    e, f = g.inputs
    dy = dict(zip("abcdefghx", (float(v) for v in ad.gradients(y, [a, b, c, d, e, f, g, h, x]))))
    assert dy["d"] == 1 and dy["h"] == 1
    assert dy["c"] == pytest.approx(np.exp(c.item()), rel=1e-15)            # dd/dc = exp(c)
    assert dy["g"] == pytest.approx(np.cos(g.item()), rel=1e-15)            # dh/dg = cos(g)
    assert dy["b"] == dy["c"]                                                # dc/db = 1
    assert dy["a"] == pytest.approx(dy["c"] + dy["b"] * 2 * a.item(), rel=1e-15)
    assert dy["f"] == dy["g"]
    assert dy["e"] == pytest.approx(dy["g"] + dy["f"] * 2 * e.item(), rel=1e-15)   # df/de = 2e
    assert dy["x"] == pytest.approx(dy["a"] * np.cos(0.5) + dy["e"] * np.exp(0.5), rel=1e-15)


@pytest.mark.parametrize("k", range(1, 11))
def test_derivative_of_exp_sin_matches_sympy_to_order_10(k):
    x = sp.Symbol("x")
    kth = sp.lambdify(x, sp.diff(sp.exp(sp.sin(x)), x, k), "mpmath")
    dk = ad.derivative(lambda t: ad.exp(ad.sin(t)), order=k)
    for point in (-1.7, -0.3, 0.4, 1.0, 2.5):
        exact = float(kth(point))
        assert abs(dk(point) - exact) <= 1e-9 * abs(exact)


def test_derivative_elementwise_on_an_array_and_order_zero():
    xs = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(ad.derivative(ad.sin, order=3)(xs), -np.cos(xs), rtol=1e-15)
    np.testing.assert_array_equal(ad.derivative(ad.sin, order=0)(xs), np.sin(xs))
    assert ad.derivative(lambda t: t * 3.0, order=2)(1.0) == 0.0


def test_rosenbrock_hessian_equals_the_analytic_one():
    rng = np.random.default_rng(0)
    for n in (2, 3, 6):
        x = rng.uniform(-2, 2, n)
        np.testing.assert_allclose(ad.hessian(rosenbrock)(x), rosenbrock_hessian(x), rtol=1e-12, atol=1e-12)


def test_hessian_vector_product_equals_hessian_times_vector():
    rng = np.random.default_rng(1)
    x, v = rng.uniform(-2, 2, 5), rng.normal(size=5)
    np.testing.assert_allclose(ad.hvp(rosenbrock, x, v), rosenbrock_hessian(x) @ v, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(ad.hvp(rosenbrock, x, v), ad.hessian(rosenbrock)(x) @ v, rtol=1e-12, atol=1e-10)
