"""``chainrule check`` where the derivative does not exist: a singular point (sqrt, log, 1/x at 0), a
point outside the domain, a kink exactly at the point (abs, relu, maximum). No method is the reference
there and no errors are given (the complex step's Im f(x + ih) / h is a number its step makes, 0.5 /
sqrt(h) for sqrt at 0), and a sentence says why; at a regular point, or a kink that is not at the point,
the table is unchanged."""
import io
import sys

import numpy as np
import pytest

from chainrule.cli import main


def _run(monkeypatch, *argv):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return main(list(argv)), out.getvalue(), err.getvalue()


def _rows(out):
    """{method: its cells after the name} of the compare table."""
    rows = {}
    for line in out.splitlines():
        for method in ("reverse mode", "forward mode", "SymPy", "numerical, forward", "numerical, backward",
                       "numerical, central", "numerical, complex"):
            if line.strip().startswith(method + " "):
                rows[method] = line.strip()[len(method):].split()
    return rows


@pytest.mark.parametrize("expression, at, evidence, made_up", [
    ("sqrt(x)", "x=0", "(reverse mode: inf; SymPy: d/dx = zoo)",
     "the forward difference's 8192 and the complex step's 7.07107e+09 come from their steps"),
    ("log(x)", "x=0", "(f = -inf; reverse mode: inf; SymPy: d/dx = zoo)",
     "the complex step's 1.5708e+20 comes from its step"),
    ("1/x", "x=0", "(f = inf; reverse mode: -inf; SymPy: d/dx = zoo)",
     "the central difference's 2.72713e+10 and the complex step's -1e+40 come from their steps"),
    ("sqrt(x)", "x=-1", "(f = nan; reverse mode: nan; SymPy: d/dx = -0.5*I)", "the complex step's 1e+20 comes"),
    ("x * sqrt(y)", "x=2 y=0", "(reverse mode: 0, inf; SymPy: d/dy = zoo)", ""),
])
def test_no_reference_where_no_finite_derivative_exists(monkeypatch, expression, at, evidence, made_up):
    code, out, err = _run(monkeypatch, "check", expression, "--at", *at.split())
    assert code == 0 and err == ""
    assert out.startswith("reference: none (no finite derivative here)\n")
    assert "numerical, complex" not in out.splitlines()[0]
    n = len(at.split())                         # one column per partial derivative, then abs err, rel err
    for method, cells in _rows(out).items():    # no error is claimed against anything
        assert cells[n:n + 2] == ["-", "-"], (method, cells)
    line = next(x for x in out.splitlines() if x.startswith("No finite derivative"))
    assert line.startswith(f"No finite derivative at {at.replace(' ', ', ')} {evidence}: no method is the "
                           f"reference and no errors are given")
    assert made_up in line and "Not finite (NaN or inf) by" not in out


def test_sqrt_at_0_was_checked_against_the_complex_step(monkeypatch):
    """Before: "reference: numerical, complex", its 7071067811.87 with error 0 and the engine's inf with
    error inf, as if the engine were wrong and the complex step right."""
    import autodiff as ad

    with np.errstate(all="ignore"):
        table = ad.compare(ad.sqrt, 0.0, names=["x"])      # compare itself still picks it ...
    assert table.reference == "numerical, complex"
    _, out, _ = _run(monkeypatch, "check", "sqrt(x)", "--at", "x=0")
    rows = _rows(out)                                        # ... the command line does not
    assert rows["numerical, complex"][:3] == ["7071067811.8654757", "-", "-"]
    assert rows["reverse mode"][:3] == ["inf", "-", "-"]


@pytest.mark.parametrize("expression, at, sentence", [
    ("abs(x)", ["x=0"], "At x=0 f has a kink along x: its one-sided derivatives differ (from the left -1, from the "
                        "right 1), so d/dx does not exist there; each value above is one method's choice (reverse "
                        "mode 0, SymPy 0 and the central difference 0), none of them a derivative."),
    ("relu(x)", ["x=0"], "(from the left 0, from the right 1), so d/dx does not exist there; each value above is "
                         "one method's choice (reverse mode 0, SymPy 0.5 and the central difference 0.5)"),
    ("maximum(x, y)", ["x=1", "y=1"], "At x=1, y=1 f has a kink along y: its one-sided derivatives differ"),
    ("2 * abs(x - 1) + x", ["x=1"], "(from the left -1, from the right 3)"),
])
def test_a_kink_at_the_point_has_no_derivative_and_says_so(monkeypatch, expression, at, sentence):
    import autodiff as ad

    code, out, err = _run(monkeypatch, "check", expression, "--at", *at)
    assert code == 0 and err == ""
    assert out.startswith("reference: none (no derivative at a kink)\n")
    assert sentence in out
    report = ad.gradcheck(ad.relu, 0.0)                      # gradcheck's note stays as it was
    if expression == "relu(x)":
        assert report.kinks[0].replace("input 0[]", "x") in out


@pytest.mark.parametrize("expression, at", [
    ("abs(x)", "x=1e-9"),      # a kink within a difference step, not at the point: abs is differentiable here
    ("abs(x)**2", "x=0"),      # at abs's kink, but the square is differentiable (derivative 0)
    ("relu(x) - relu(-x)", "x=0"),   # = x
])
def test_near_a_kink_or_a_smoothed_kink_keeps_the_reference(monkeypatch, expression, at):
    code, out, _ = _run(monkeypatch, "check", expression, "--at", at)
    assert code == 0 and out.startswith("reference: SymPy\n")
    assert "f has a kink" not in out and "No finite derivative" not in out


@pytest.mark.parametrize("expression, at", [("sin(x)", "x=0.5"), ("x * y", "x=1 y=2"), ("sqrt(x)", "x=4"),
                                            ("log(x)", "x=2"), ("1/x", "x=-3")])
def test_a_regular_point_is_measured_against_sympy_as_before(monkeypatch, expression, at):
    code, out, _ = _run(monkeypatch, "check", expression, "--at", *at.split())
    assert code == 0 and out.startswith("reference: SymPy\n")
    reverse = _rows(out)["reverse mode"]
    assert float(reverse[-2]) < 1e-12         # its relative error, measured


def test_a_formal_derivative_outside_the_domain_is_as_compare_says(monkeypatch):
    """log at -1: SymPy's formal 1/x = -1 is finite; compare already gives no errors and says why."""
    code, out, _ = _run(monkeypatch, "check", "log(x)", "--at", "x=-1")
    assert code == 0 and out.startswith("reference: SymPy\n")
    assert "the point is outside f's domain" in out
