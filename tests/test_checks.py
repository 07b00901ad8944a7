"""Cross-checks: SymPy, finite differences, gradcheck, check_primitive, compare."""
import operator
import re
import warnings

import numpy as np
import pytest
import sympy as sp

import autodiff as ad
from autodiff import REGISTRY, GradcheckError
from autodiff.examples import eq_5_36, eq_5_37

X = sp.Symbol("x")            # to_sympy's symbols are plain, as a user writes them (issue 18)
EQ_5_36 = sp.exp(sp.sin(X) + sp.sin(X) ** 2) + sp.sin(sp.exp(X) + sp.exp(X) ** 2)
EQ_5_37 = (sp.cos(sp.exp(2 * X) + sp.exp(X)) * (2 * sp.exp(2 * X) + sp.exp(X))
           + sp.exp(sp.sin(X) ** 2 + sp.sin(X)) * (sp.cos(X) + 2 * sp.cos(X) * sp.sin(X)))


# --- symbolic ----------------------------------------------------------------------------------

def test_to_sympy_of_eq_5_36_is_eq_5_36_and_differentiates_to_eq_5_37():
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    expr = ad.to_sympy(eq_5_36(x))
    assert sp.simplify(expr - EQ_5_36) == 0
    assert sp.simplify(sp.diff(expr, X) - EQ_5_37) == 0
    assert ad.to_sympy(eq_5_36, "x") == expr  # the function form records it first


def test_to_sympy_names_the_op_without_a_counterpart_and_refuses_arrays():
    x = ad.Tensor(0.1, requires_grad=True)
    with pytest.raises(ValueError, match=r"node #2 \(logsumexp\) has no SymPy counterpart"):
        ad.to_sympy(ad.logsumexp(ad.sin(x)) * 2)
    assert ad.to_sympy((x * x).sum().reshape(()), ) == sp.Symbol("x") ** 2
    v = ad.Tensor(np.array([0.1, 0.2]), requires_grad=True)
    with pytest.raises(ValueError, match=r"node #1 \(sin\) has shape \(2,\): only graphs of scalar ops"):
        ad.to_sympy(ad.sin(v)[0])


def _printed_form(expr):
    """The expression over exp(sin x) as a polynomial in S = sin x, C = cos x (expanded, as MATLAB prints)."""
    S, C = sp.symbols("S C")
    return sp.Poly(sp.expand(expr / sp.exp(sp.sin(X))).subs({sp.sin(X): S, sp.cos(X): C}), S, C), S, C


def test_engine_10th_derivative_of_exp_sin_is_sympys_and_has_the_printed_terms():
    x = ad.Tensor(0.7, requires_grad=True, name="x")
    d10 = ad.derivative(lambda t: ad.exp(ad.sin(t)), order=10)(x)
    assert isinstance(d10, ad.Tensor) and d10.requires_grad  # a graph, not a number
    engine = ad.to_sympy(d10)
    reference = sp.diff(sp.exp(sp.sin(X)), X, 10)
    assert sp.expand(engine - reference) == 0
    poly, S, C = _printed_form(engine)
    # 256*exp(sin(x))*cos(x)^2 - exp(sin(x))*sin(x) - 5440*exp(sin(x))*cos(x)^4 + 2352*exp(sin(x))*cos(x)^6 - ...
    assert poly.coeff_monomial(C ** 2) == 256
    assert poly.coeff_monomial(S) == -1
    assert poly.coeff_monomial(C ** 4) == -5440
    assert poly.coeff_monomial(C ** 6) == 2352


# --- numerical ---------------------------------------------------------------------------------

@pytest.mark.parametrize("x", [-1.3, 0.0, 0.5, 2.0])
def test_complex_step_is_exact_to_round_off_on_eq_5_36(x):
    exact = float(sp.diff(EQ_5_36, X).evalf(30, subs={X: sp.Float(x, 30)}))
    assert abs(ad.numerical_derivative(eq_5_36, x, method="complex") - exact) < 1e-14 * abs(exact)


def test_eps_sweep_shows_first_and_second_order_truncation_slopes():
    forward = ad.eps_sweep(eq_5_36, 0.5, "forward")
    central = ad.eps_sweep(eq_5_36, 0.5, "central")
    assert forward.slope(1e-6, 1e-2) == pytest.approx(1.0, abs=0.15)
    assert central.slope(1e-4, 1e-1) == pytest.approx(2.0, abs=0.25)
    # the U-curve: past the best step, round-off makes the error grow again
    best_eps, best_err = forward.best()
    assert 1e-10 < best_eps < 1e-6 and forward.error[-1] > 100 * best_err
    assert central.best()[1] < forward.best()[1]
    np.testing.assert_allclose(forward.eps, np.logspace(-1, -14, 14))


def test_eps_sweep_plots_its_u_curve():
    import matplotlib  # in the test extra

    matplotlib.use("Agg")
    sweep = ad.eps_sweep(eq_5_36, 0.5, "central")
    fig = sweep.plot()
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), sweep.eps)
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"


def test_numerical_gradient_and_jacobian_and_bad_method():
    x = np.array([0.3, -1.2, 2.0])
    g = ad.numerical_gradient(lambda v: ad.sum(ad.sin(v) * v), x, method="complex")
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-14)
    jac = ad.numerical_jacobian(lambda v: ad.exp(v[:2] * v[1:]), x)
    np.testing.assert_allclose(jac, ad.jacobian(lambda v: ad.exp(v[:2] * v[1:]))(x), rtol=1e-8)
    with pytest.raises(ValueError, match="method must be one of"):
        ad.numerical_derivative(np.sin, 1.0, method="sideways")
    with pytest.raises(TypeError, match="relu is not complex-analytic"):
        ad.numerical_derivative(ad.relu, 1.0, method="complex")


# --- gradcheck ---------------------------------------------------------------------------------

RNG = np.random.default_rng(42)
COMPOSITES = {
    "softmax": (lambda x: ad.softmax(x, axis=1), [RNG.normal(size=(2, 4))]),
    "log_softmax": (lambda x: ad.log_softmax(x), [RNG.normal(size=5)]),
    "logsumexp": (lambda x: ad.logsumexp(x, axis=0), [RNG.normal(size=(3, 2))]),
    "matmul chain": (lambda a, b, c: ad.tanh(a @ b) @ c, [RNG.normal(size=(2, 3)), RNG.normal(size=(3, 4)),
                                                          RNG.normal(size=(4, 2))]),
    "softmax cross-entropy": (lambda w, x: -ad.log_softmax(x @ w, axis=1)[np.arange(3), [0, 2, 1]].mean(),
                              [RNG.normal(size=(4, 3)), RNG.normal(size=(3, 4))]),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
@pytest.mark.parametrize("order", [1, 2])
def test_gradcheck_passes_on_composites(name, order):
    f, inputs = COMPOSITES[name]
    report = ad.gradcheck(f, *inputs, order=order)
    assert report.passed and report.checked > 0 and "full Jacobian" in report.strategy


def test_gradcheck_random_directions_for_large_inputs():
    x = RNG.normal(size=(40, 30))
    report = ad.gradcheck(lambda v: ad.sum(ad.tanh(v) ** 2, axis=0), x)
    assert report.passed and report.strategy == "8 random directions" and report.checked == 16


def test_gradcheck_chooses_float32_step_and_tolerances_and_says_so(planted):
    """A correct function given float32 input failed float64's tolerances, with no word about the dtype."""
    x = np.random.default_rng(2).uniform(0.5, 2.0, size=3).astype(np.float32)
    with pytest.warns(ad.GradcheckWarning, match=r"float32 input\(s\) \[0\]: eps=0.0049, atol=0.001, rtol=0.01"):
        report = ad.gradcheck(lambda v: ad.sum(ad.sin(v) * v), x)
    assert report.passed and (report.eps, report.atol, report.rtol) == ad.checks.FLOAT32_TOLERANCES
    assert any("float32 input(s) [0]" in note for note in report.notes)
    double = _declare("double_wrong_32", partials=[lambda out, x: 2.1])(lambda x: 2 * x)   # 5% off: still caught
    with pytest.warns(ad.GradcheckWarning), pytest.raises(GradcheckError):
        ad.gradcheck(lambda v: ad.sum(double(v)), x)
    with pytest.warns(ad.GradcheckWarning):                                # tolerances named by the call: kept
        assert not ad.gradcheck(lambda v: v * 2.0, x, atol=1e-9, rtol=1e-9, raise_exception=False).passed


def test_gradcheck_refuses_complex_input():
    """NumPy dropped the imaginary part of a complex step, and a check "passed"."""
    with pytest.raises(TypeError, match=r"gradcheck: input 0 is complex \(complex128\); the derivatives checked "
                                        r"here are real: pass its real and imaginary parts as two real inputs"):
        ad.gradcheck(lambda v: v * 2.0, np.array([1.0 + 2.0j]))


@pytest.mark.parametrize("f, x, op", [
    (lambda x: ad.relu(x).sum(), np.array([0.0, 1.0, -2.0]), "relu"),
    (lambda x: ad.abs(x).sum(), np.array([3e-7, 1.0]), "abs"),
    (lambda x: ad.clip(x, a_min=-1.0, a_max=1.0).sum(), np.array([1.0, 0.5]), "clip"),
    (lambda x: ad.max(x * np.array([1.0, 1.0 + 1e-7])), np.array([2.0, 2.0]), "max"),
])
def test_kinks_are_reported_not_failed(f, x, op):
    report = ad.gradcheck(f, x)
    assert report.passed
    assert report.kinks and all(f"= {op}(" in k for k in report.kinks)
    assert "along input 0[0]" in report.kinks[0]


# --- planted wrong rules -----------------------------------------------------------------------

def _declare(name, **rules):
    ad.REGISTRY.pop(name, None)
    return ad.primitive(name, **rules)


@pytest.fixture
def planted():
    before = set(REGISTRY)
    yield
    for name in set(REGISTRY) - before:
        del REGISTRY[name]


def _raises_naming(f, inputs, op, element, check=None, **kw):
    with pytest.raises(GradcheckError) as info:
        ad.gradcheck(f, *inputs, **kw)
    message = str(info.value)
    assert f"First wrong rule: node #" in message and f"= {op}(" in message, message
    if element is not None:
        rows = info.value.report.rows()
        assert rows[0]["input"] == element, message
        if check:
            assert {r["check"] for r in info.value.report.failures} == {check}, message
    return message


def test_sign_flipped_rule_is_caught_and_named(planted):
    bad_sin = _declare("bad_sin", partials=[lambda out, x: -ad.cos(x)])(lambda x: np.sin(x))
    x = np.array([0.3, 1.2, -0.5])
    worst = int(np.argmax(np.abs(np.exp(np.sin(x)) * np.cos(x))))  # the error is 2 exp(sin x) cos x
    msg = _raises_naming(lambda v: ad.exp(bad_sin(v)).sum(), [x], "bad_sin", f"input 0[{worst}]")
    assert "jvp" in msg and "vjp" in msg  # both rules come from the same wrong partial


def test_factor_of_two_in_the_vjp_only_is_caught_in_reverse_mode(planted):
    bad_exp = _declare("bad_exp", vjp=[lambda g, out, x: 2 * g * out], jvp=[lambda t, out, x: t * out])(lambda x: np.exp(x))
    x = np.array([0.1, 0.2, 0.7, -1.0])
    msg = _raises_naming(lambda v: ad.sin(bad_exp(v)).sum() + (v * v).sum(), [x], "bad_exp", "input 0[2]", check="reverse")
    assert "its vjp" in msg and "its jvp" not in msg


def test_transposed_jacobian_is_caught(planted):
    def matvec(a, x):
        return np.matmul(a, x)

    bad = _declare("bad_matvec",
                   vjp=[lambda g, out, a, x: ad.reshape(g, (-1, 1)) * x, lambda g, out, a, x: a @ g],  # should be a.T @ g
                   jvp=[lambda t, out, a, x: t @ x, lambda t, out, a, x: a @ t])(matvec)
    a = np.array([[1.0, 2.0, 0.5], [-1.0, 3.0, 0.0], [0.0, 4.0, 1.0]])
    x = np.array([0.5, -0.2, 0.1])
    msg = _raises_naming(lambda v: ad.tanh(bad(a, v)), [x], "bad_matvec", None, modes=("reverse",))
    assert "its vjp" in msg
    rows = ad.gradcheck(lambda v: ad.tanh(bad(a, v)), x, modes=("reverse",), raise_exception=False).rows()
    s = 1 - np.tanh(a @ x) ** 2              # J = diag(s) A, reverse mode built diag(s) A^T instead
    r, k = np.unravel_index(np.argmax(s[:, None] * np.abs(a.T - a)), a.shape)
    assert (rows[0]["output"], rows[0]["input"]) == (f"[{r}]", f"input 0[{k}]")


def test_missing_unbroadcast_is_caught(planted):
    bad_add = _declare("bad_add", vjp=[lambda g, out, a, b: g, lambda g, out, a, b: g],
                       jvp=[lambda t, out, a, b: t, lambda t, out, a, b: t])(lambda a, b: np.add(a, b))
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=3)
    with pytest.raises(GradcheckError) as info:
        ad.gradcheck(lambda x, y: ad.sin(bad_add(x, y)), a, b)
    message = str(info.value)
    assert "vjp rule of 'bad_add' returned a cotangent of shape (2, 3) for input 1, but the input has shape (3,)" in message
    assert re.search(r"First wrong rule: node #1 = bad_add\(\(2, 3\), \(3,\)\)", message), message


def test_jvp_rule_that_does_not_broadcast_to_the_output_is_caught(planted):
    """A jvp rule must return its output's shape (as a vjp rule its input's): the forward sweep
    does not broadcast a tangent silently."""
    fwd_add = _declare("fwd_add", vjp=[lambda g, out, a, b: ad.unbroadcast(g, np.shape(a)),
                                       lambda g, out, a, b: ad.unbroadcast(g, np.shape(b))],
                       jvp=[lambda t, out, a, b: t, lambda t, out, a, b: t])(lambda a, b: np.add(a, b))
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=3)
    with pytest.raises(GradcheckError) as info:
        ad.gradcheck(lambda x, y: ad.sin(fwd_add(x, y)), a, b, modes=("forward",))
    message = str(info.value)
    assert ("jvp rule of 'fwd_add' returned a tangent of shape (3,) for input 1, but the output has shape (2, 3)"
            in message), message
    assert "First wrong rule: node #1 = fwd_add((2, 3), (3,)): its jvp (forward rule) fails" in message, message


def test_order_2_catches_a_rule_that_is_not_differentiable(planted):
    frozen_sin = _declare("frozen_sin", partials=[lambda out, x: np.cos(ad.value_of(x))])(lambda x: np.sin(x))  # np, not ad
    x = np.array([0.4, 1.1])
    assert ad.gradcheck(lambda v: frozen_sin(v), x).passed
    with pytest.raises(GradcheckError, match="order=2"):
        ad.gradcheck(lambda v: frozen_sin(v), x, order=2)


# --- check_primitive ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(set(REGISTRY) - {"stop_gradient"}))
def test_every_registered_primitive_passes_check_primitive(name):
    reports = ad.check_primitive(REGISTRY[name], order=2)
    assert reports and all(r.passed for r in reports)


def test_stop_gradient_fails_check_primitive_as_its_derivative_is_zero_by_definition():
    """Its value is x, its rules are 0 (JAX's stop_gradient): finite differences say 1, as in JAX's check_grads."""
    with pytest.raises(GradcheckError, match="stop_gradient"):
        ad.check_primitive(ad.stop_gradient)


def test_check_primitive_catches_a_wrong_sympy_counterpart_and_a_wrong_rule(planted):
    sin_called_cos = _declare("sin_called_cos", partials=[lambda out, x: ad.cos(x)], sympy="cos",
                              samples=lambda rng: [((np.asarray(0.3),), {})])(lambda x: np.sin(x))
    with pytest.raises(GradcheckError, match="sympy value"):
        ad.check_primitive(sin_called_cos)
    double = _declare("double_wrong", partials=[lambda out, x: 3.0])(lambda x: 2 * x)
    with pytest.raises(GradcheckError, match=r"check_primitive\('double_wrong'\)") as info:
        ad.check_primitive(double, samples=[((np.array([1.0, 2.0]),), {})])
    assert info.value.report.rows()[0]["analytic"] == 3.0 and info.value.report.rows()[0]["numeric"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="declares no samples"):
        ad.check_primitive(double)


def test_check_primitive_checks_a_binary_op_s_sympy_counterpart_on_its_default_samples(planted):
    from autodiff.samples import binary

    add_called_sub = _declare("add_called_sub", partials=[lambda out, a, b: 1.0, lambda out, a, b: 1.0],
                              sympy=operator.sub, samples=binary())(lambda a, b: a + b)
    with pytest.raises(GradcheckError, match="sympy value"):
        ad.check_primitive(add_called_sub)


# --- compare -----------------------------------------------------------------------------------

def test_compare_tables_every_method_against_sympy():
    table = ad.compare(eq_5_36, 0.5)
    rows = {r["method"]: r for r in table.rows}
    assert table.reference == "SymPy"
    assert list(rows) == ["reverse mode", "forward mode", "SymPy", "numerical, forward", "numerical, backward",
                          "numerical, central", "numerical, complex"]
    exact = eq_5_37(0.5)
    for method in ("reverse mode", "forward mode", "numerical, complex"):
        assert rows[method]["rel err"] < 1e-14
    assert 1e-12 < rows["numerical, central"]["rel err"] < 1e-8
    assert 1e-9 < rows["numerical, forward"]["rel err"] < 1e-5
    assert float(rows["SymPy"]["value"]) == pytest.approx(exact, rel=1e-15)
    text = str(table)
    assert "reference: SymPy" in text and "numerical, complex" in text
    assert "<table>" in table._repr_html_()


def test_compare_without_sympy_or_complex_step_says_why():
    table = ad.compare(lambda v: ad.relu(v).sum() + (v * v).sum(), np.array([0.5, -1.0]))
    rows = {r["method"]: r for r in table.rows}
    assert table.reference == "reverse mode"
    assert rows["SymPy"]["value"] is None and rows["SymPy"]["note"] == "scalar inputs only"
    assert rows["numerical, complex"]["value"] is None and "relu is not complex-analytic" in rows["numerical, complex"]["note"]
    assert rows["numerical, central"]["abs err"] < 1e-8


def test_a_nan_gradient_behind_where_gets_the_safe_pattern_and_only_then():
    v = np.array([0.0, 1.0, 4.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        report = ad.gradcheck(lambda x: ad.where(x > 0, ad.sqrt(x), 0.0), v, raise_exception=False)
    assert not report.passed and any(np.isnan(r["analytic"]) for r in report.failures)
    assert report.culprit is None  # every rule is right: the hint, not a culprit, explains the NaN
    assert any("where(c, f(where(c, x, 1.0)), y)" in note and "node #2 = where" in note for note in report.notes)
    safe = ad.gradcheck(lambda x: ad.where(x > 0, ad.sqrt(ad.where(x > 0, x, 1.0)), 0.0), np.array([-1.0, 2.0]))
    assert safe.passed and not any("where(c" in note for note in safe.notes)
