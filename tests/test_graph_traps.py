"""Issue 18's silent traps on the autodiff side, each now a correct result or a clear error naming the fix."""
import numpy as np
import pytest
import sympy as sp

import autodiff as ad
from autodiff.examples import eq_5_36


def test_to_sympy_is_differentiated_by_the_symbol_a_user_writes():
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    expr = ad.to_sympy(ad.sin(x) * x)
    derivative = sp.diff(expr, sp.Symbol("x"))                       # gave 0 with real=True symbols
    assert derivative != 0 and sp.simplify(derivative - (sp.cos(sp.Symbol("x")) * sp.Symbol("x")
                                                         + sp.sin(sp.Symbol("x")))) == 0
    assert expr.free_symbols == {sp.Symbol("x")}
    f = sp.lambdify(sp.Symbol("x"), sp.diff(ad.to_sympy(eq_5_36, "x"), sp.Symbol("x")))
    assert f(0.5) == pytest.approx(ad.grad(eq_5_36)(0.5), rel=1e-14)
    real = ad.to_sympy(abs(x) * x, real=True)                        # opting in: the real symbol
    assert real.free_symbols == {sp.Symbol("x", real=True)}
    d = sp.diff(real, sp.Symbol("x", real=True))                    # x sign(x) + |x| = 2|x|
    assert d.subs(sp.Symbol("x", real=True), -0.75) == pytest.approx(1.5, rel=1e-15)


def test_compare_still_differentiates_abs_as_a_real_function():
    table = ad.compare(lambda v: abs(v) * v, -0.75)
    sympy_row = [r for r in table.rows if r["method"] == "SymPy"][0]
    assert sympy_row["value"] == pytest.approx(2 * 0.75, rel=1e-15)


@pytest.mark.parametrize("view", ["draw", "draw_steps", "trace_table", "print_graph", "graph_code"])
def test_a_view_of_a_graph_built_without_requires_grad_names_the_fix(view, capsys):
    x = ad.Tensor(0.5, name="x")                                     # requires_grad forgotten
    y = ad.exp(ad.sin(x)) * x
    with pytest.raises(ValueError, match=rf"^{view}: y has no recorded graph \(it is the constant 0.807573\): "
                                         r"it was computed from Tensors without requires_grad=True, or under "
                                         r"no_grad; create the inputs with Tensor\(value, requires_grad=True"):
        getattr(ad, view)(y)
    assert capsys.readouterr().out == ""                             # nothing printed, nothing mislabelled
    with ad.no_grad():
        v = ad.sin(ad.Tensor(np.ones(3), requires_grad=True))
    with pytest.raises(ValueError, match=rf"^{view}: y has no recorded graph \(it is the constant of shape \(3,\)\)"):
        getattr(ad, view)(v)


def test_with_requires_grad_the_views_show_the_graph_and_a_lone_leaf_is_an_input():
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    y = ad.exp(ad.sin(x)) * x
    assert ad.graph_code(y).splitlines() == ["a = sin(x)", "b = exp(a)", "y = b * x"]
    rows = ad.trace_table(y, mode="reverse").rows
    assert [r["node"] for r in rows] == ["y", "b", "a", "x"]
    assert float(rows[-1]["adjoint"]) == pytest.approx(np.exp(np.sin(0.5)) * (1 + 0.5 * np.cos(0.5)), rel=1e-5)
    assert "a = sin" in ad.draw(y, names="letters").source
    assert [r["node"] for r in ad.trace_table(x).rows] == ["x"]      # a tracked leaf alone: its one row
