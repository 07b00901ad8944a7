"""Property-based fuzzing (hypothesis) of the expression parser and the command line.

The rule: exit status 2 and one line on stderr, or a correct result; never a traceback. The
expressions are drawn from a grammar that mixes what the whitelist accepts (numbers, huge ones
too, variables, constants, the functions, + - * / **) with what it refuses (unknown names, other
operators, calls of calls, attributes, strings, lambdas, keywords, stray text). ``main(argv)`` is
called in-process with stdout and stderr captured. Runs are derandomized (the same examples in
every CI run) and bounded (a few seconds); no example database is written.
"""
import ast
import io
import math
import operator
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autodiff.expression import FUNCTIONS, ExpressionError, parse_expression
from chainrule.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

numbers = st.one_of(st.integers(0, 10).map(str), st.floats(0, 100, allow_nan=False).map(repr))
extreme_numbers = st.sampled_from(["0", "0.0", "1e308", "1e400", "9" * 400, "1e-320", "1e6"])
junk = st.sampled_from(["x.real", "x[0]", "'a'", "lambda: 1", "x if x else 1", "[x]", "(x, x)", "x < 1", "x and 1",
                        "sin(x)(1)", "sin(x=1)", "sin(*x)", "@", "", " ", "((", "x ** ", "{}", "f'{x}'", "x := 1",
                        "\x00", "ｘ", "not x", "~x", "x % 2", "x // 2", "z", "__import__", "os", "sin", "foo(x)"])


def _combine(operators, functions):
    def combine(children):
        binary = st.tuples(children, st.sampled_from(operators), children).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
        unary = st.tuples(st.sampled_from(["-", "+"]), children).map(lambda t: f"{t[0]}{t[1]}")
        call = st.sampled_from(functions).flatmap(
            lambda name: st.lists(children, min_size=FUNCTIONS.get(name, (None, 1))[1],
                                  max_size=FUNCTIONS.get(name, (None, 1))[1] + (name not in FUNCTIONS or 0)).map(
                lambda args: f"{name}({', '.join(args)})"))
        return st.one_of(binary, unary, call, children.map(lambda c: f"({c})"))
    return combine


#: What the whitelist accepts: numbers (huge ones too), the variables and constants, the functions
#: with their arity, + - * / **.
accepted = st.recursive(st.one_of(numbers, st.sampled_from(["x", "y", "pi", "e"])),
                        _combine(["+", "-", "*", "/", "**"], sorted(FUNCTIONS)), max_leaves=10)
#: ... mixed with what it refuses.
hostile = st.recursive(st.one_of(numbers, extreme_numbers, junk, st.sampled_from(["x", "y"])),
                       _combine(["+", "-", "*", "/", "**", "%", "//", "@", "<"], sorted(FUNCTIONS) + ["foo"]),
                       max_leaves=10)
with_a_variable = st.tuples(accepted, st.sampled_from(["+", "-", "*", "/"]), st.sampled_from(["x", "y", "sin(x)",
                                                                                            "x * y"])).map(" ".join)
expressions = st.one_of(with_a_variable, with_a_variable, accepted, hostile)
point = st.floats(-10, 10, allow_nan=False).map(repr)
values = st.one_of(point, point, point, point, point, point, st.sampled_from(["0", "-1", "1e308", "nan", "inf", "abc", "", "1e999"]))


def _main(argv):
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = main(argv)
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


def _assert_one_line_refusal(code, err, argv):
    assert code == 2, (argv, code, err)
    assert err.count("\n") == 1 and err.startswith("chainrule"), (argv, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)


@settings(max_examples=200, **SETTINGS)
@given(expression=expressions, x=values, y=st.one_of(values, values, st.none()))
def test_check_gives_a_correct_table_or_one_line_and_status_2(expression, x, y):
    argv = ["check", expression, "--at", f"x={x}", *([f"y={y}"] if y is not None else [])]
    code, out, err = _main(argv)
    event(f"status {code}")
    if code != 0:
        _assert_one_line_refusal(code, err, argv)
        return
    assert err == "" and out.startswith("reference: "), (argv, out, err)
    if not out.startswith("reference: SymPy"):
        return
    for line in out.splitlines():   # where SymPy is the reference, both AD modes agree with it
        cells = line.split()
        if line.strip().startswith(("reverse mode", "forward mode")) and cells[-1] not in ("finite",) \
                and cells[-2] != "-":
            assert float(cells[-1]) < 1e-6, (argv, out)


@settings(max_examples=60, **SETTINGS)
@given(expression=expressions, x=values, mode=st.sampled_from(["reverse", "forward"]),
       seed=st.sampled_from([None, "x", "y"]))
def test_graph_gives_the_trace_or_one_line_and_status_2(tmp_path_factory, expression, x, mode, seed):
    target = tmp_path_factory.mktemp("g") / "g.dot"
    argv = ["graph", expression, "--at", f"x={x}", "--mode", mode, "-o", str(target),
            *(["--seed", seed] if seed else [])]
    code, out, err = _main(argv)
    if code != 0:
        _assert_one_line_refusal(code, err, argv)
        return
    assert target.read_text().startswith("digraph") and "saved" in out, (argv, out)


@settings(max_examples=300, **SETTINGS)
@given(expression=expressions, x=st.floats(-10, 10, allow_nan=False))
def test_the_parser_refuses_with_expression_error_or_computes_what_python_does(expression, x):
    """A refusal is an ExpressionError; an accepted expression computes what Python's own arithmetic
    (the oracle: math functions on floats) gives, wherever that is a finite number."""
    try:
        f = parse_expression(expression, ["x", "y"])
    except ExpressionError as exc:
        event("refused")
        assert exc.one_line() and "\n" not in exc.one_line()
        return
    event("accepted")
    with np.errstate(all="ignore"):
        got = float(np.asarray(f(x, 0.5)))
    oracle = _python_value(expression, x)
    if oracle is not None and math.isfinite(oracle) and math.isfinite(got):
        assert got == pytest.approx(oracle, rel=1e-9, abs=1e-12), expression


_MATH = {"exp": math.exp, "log": math.log, "ln": math.log, "sin": math.sin, "cos": math.cos, "tan": math.tan,
         "tanh": math.tanh, "sqrt": math.sqrt, "abs": abs, "relu": lambda v: max(v, 0.0), "maximum": max,
         "minimum": min, "sigmoid": lambda v: 1 / (1 + math.exp(-v)), "pi": math.pi, "e": math.e}


def _python_value(expression, x):
    """The expression computed by Python on floats (the test's oracle; None where Python fails). Only
    for expressions the whitelist accepted, so the names here are exactly the variables, constants
    and functions; builtins are removed."""
    names = {**_MATH, "x": float(x), "y": 0.5}
    try:
        value = _walk(ast.parse(expression, mode="eval").body, names)
        return float(value) if isinstance(value, (int, float)) else None
    except (ArithmeticError, ValueError, TypeError, KeyError):
        return None


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _walk(node, names):
    """Python's own arithmetic on the parsed expression (no eval): numbers, names, calls, operators."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_walk(node.left, names), _walk(node.right, names))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_walk(node.operand, names))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return names[node.func.id](*[_walk(a, names) for a in node.args])
    raise TypeError(f"not an arithmetic expression: {ast.dump(node)}")
