"""User expressions: parsed against a whitelist, built from engine ops, never evaluated as Python."""
import numpy as np
import pytest

import autodiff as ad
from autodiff.examples import eq_5_36
from autodiff.expression import ExpressionError, parse_assignments, parse_expression

EQ_5_36 = "exp(sin(x) + sin(x)**2) + sin(exp(x) + exp(x)**2)"


def test_eq_5_36_parses_to_the_engines_function():
    f = parse_expression(EQ_5_36, ["x"])
    for x in (-1.0, 0.0, 0.5, 2.0):
        assert f(x) == eq_5_36(x)
    assert ad.grad(f)(0.5) == ad.grad(eq_5_36)(0.5)
    y = f(ad.Tensor(0.5, requires_grad=True, name="x"))
    assert isinstance(y, ad.Tensor) and y.op.name == "add"
    # each distinct subexpression is computed once: the graph is the decomposition of eq. 5.38
    assert ad.graph_code(y) == ad.graph_code(eq_5_36(ad.Tensor(0.5, requires_grad=True, name="x")))


def test_variables_constants_and_precedence():
    f = parse_expression("-x**2 + y / 2 - +pi * e", ["x", "y"])
    assert f(3.0, 4.0) == pytest.approx(-9.0 + 2.0 - np.pi * np.e, rel=1e-15)
    assert parse_expression("maximum(x, 1) + relu(-x)", ["x"])(-2.0) == 3.0
    with pytest.raises(TypeError, match=r"takes 2 value\(s\) \(x, y\), got 1"):
        f(1.0)


@pytest.mark.parametrize("text, message, column, length", [
    ("__import__('os')", "unknown function '__import__'", 0, 10),
    ("x.__class__", "attribute access is not allowed", 0, 11),
    ("sin(x)[0]", "indexing is not allowed", 0, 9),
    ("().__class__.__bases__", "a tuple is not allowed", 0, 2),
    ("1 + open('f')", "unknown function 'open'", 4, 4),
    ("'abc'", "only numbers are allowed as literals, not str", 0, 5),
    ("lambda: 1", "a lambda is not allowed", 0, 9),
    ("[x for x in y]", "a comprehension is not allowed", 0, 14),
    ("x if x else 1", "an if-expression is not allowed", 0, 13),
    ("x < 1", "a comparison is not allowed", 0, 5),
    ("x // 2", "operator '//' is not allowed", 0, 6),
    ("sin(x, x)", r"sin\(\) takes 1 argument, got 2", 0, 9),
    ("sin(x=1)", r"sin\(\) takes no keyword arguments", 4, 3),
    ("2 * y", "unknown name 'y'", 4, 1),
    ("exp(", "syntax error", 3, 1),
    ("2j", "not complex", 0, 2),
])
def test_rejections_point_at_the_offending_token(text, message, column, length):
    with pytest.raises(ExpressionError, match=message) as info:
        parse_expression(text, ["x"])
    err = info.value
    assert (err.column, err.length) == (column, length)
    assert str(err).splitlines()[-1] == "  " + " " * column + "^" * length


@pytest.mark.parametrize("text", ["x" * 5000, "(" * 1000 + "x" + ")" * 1000, "-" * 1000 + "x", ""])
def test_huge_or_empty_input_is_refused_cleanly(text):
    with pytest.raises(ExpressionError):
        parse_expression(text, ["x"])


def test_nothing_is_executed_while_rejecting(monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("__import__ was called")

    monkeypatch.setattr(builtins, "__import__", forbidden)
    with pytest.raises(ExpressionError):
        parse_expression("__import__('os').system('true')", ["x"])


def test_parse_assignments():
    assert parse_assignments(["x=0.5", "y = -2"]) == {"x": 0.5, "y": -2.0}
    for bad, message in [(["x"], "NAME=VALUE"), (["x=a"], "must be a number"), (["x=1", "x=2"], "given twice"),
                         (["sin=1"], "not a usable variable name"), (["x=nan"], "finite"), ([], "at least one")]:
        with pytest.raises(ValueError, match=message):
            parse_assignments(bad)


@pytest.mark.parametrize("text, message, column", [
    ("sin(x)(1)", r"only a function's name can be called \(e.g. sin\(x\)\), not 'sin\(x\)'", 0),
    ("(x + 1)(2)", r"only a function's name can be called", 1),
    ("x + 9**9**9", r"9\*\*9\*\*9 is not a finite real number \(inf\)", 4),
    ("x * (1/0)", r"1/0 is not a finite real number \(inf\)", 5),
    ("x + (-8)**(1/3)", r"\(-8\)\*\*\(1/3\) is not a finite real number \(nan\)", 4),
    ("x + " + "9" * 400, r"the number 9{20}\.\.\. is too large for a float \(at most about 1.8e308\)", 4),
    ("1e400 * x", r"the number 1e400 is too large for a float", 0),
])
def test_overflowing_constants_and_calls_of_calls_are_refused_where_they_are(text, message, column):
    with pytest.raises(ExpressionError, match=message) as info:
        parse_expression(text, ["x"])
    assert info.value.column == column
    assert "\n" not in info.value.one_line() and f"(column {column + 1}: " in info.value.one_line()


def test_powers_of_plain_numbers_follow_numpy_not_python():
    """0.0 ** -1 and (-1.5) ** -1.5 raise or turn complex in Python; the engine gives inf and NaN,
    the same as NumPy (the oracle) and as the same expression on Tensors."""
    with np.errstate(all="ignore"):
        assert parse_expression("0 ** x", ["x"])(-1.0) == np.power(0.0, -1.0) == np.inf
        assert np.isnan(parse_expression("x ** x", ["x"])(-1.5))
        assert np.isnan(parse_expression("x ** x", ["x"])(ad.Tensor(-1.5)).value)
    assert parse_expression("x ** 2 + 2 ** x", ["x"])(3.0) == 17.0


def test_the_complex_step_goes_through_powers_of_plain_arrays():
    """compare's complex-step row calls the expression on complex arrays: x ** 3 must stay complex,
    so that Im f(x + ih) / h is 3 x**2 (the oracle)."""
    f = parse_expression("x ** 3 + 2 ** x", ["x"])
    h = 1e-20
    got = f(np.array(1.5 + 1j * h)).imag / h
    assert got == pytest.approx(3 * 1.5 ** 2 + np.log(2) * 2 ** 1.5, rel=1e-14)
