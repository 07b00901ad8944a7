"""Math expressions typed by a user, parsed against a whitelist, never evaluated as Python.

``parse_expression("exp(sin(x) + sin(x)**2)", ["x"])`` reads the text with Python's ``ast``
parser (which only parses) and accepts exactly:

- numbers (int and float literals), the variables given, and the constants ``pi`` and ``e``;
- ``+ - * / **`` between operands, unary ``-`` and ``+``, parentheses;
- calls of the functions in ``FUNCTIONS`` with the right number of positional arguments.

It compiles to straight-line code with one step per distinct subexpression, so
``exp(sin(x) + sin(x)**2) + ...`` computes ``sin(x)`` once: its graph is eq. 5.38.

Anything else (attribute access, subscripts, strings, lambdas, comparisons, keyword arguments,
unknown names...) raises ``ExpressionError``, whose message points at the offending token. The
result is a function built from the engine's own ops: called on Tensors it records a graph.
"""
from __future__ import annotations

import ast
import math

import numpy as np

from . import ops
from .tensor import Tensor, value_of

#: The functions an expression may call, with their number of arguments.
FUNCTIONS = {
    "exp": (ops.exp, 1), "log": (ops.log, 1), "ln": (ops.log, 1), "sin": (ops.sin, 1), "cos": (ops.cos, 1),
    "tan": (ops.tan, 1), "tanh": (ops.tanh, 1), "sigmoid": (ops.sigmoid, 1), "sqrt": (ops.sqrt, 1),
    "abs": (ops.abs, 1), "relu": (ops.relu, 1), "maximum": (ops.maximum, 2), "minimum": (ops.minimum, 2),
}
CONSTANTS = {"pi": math.pi, "e": math.e}


def _power(a, b):
    """``a ** b``: the Tensor operator (which records ``pow_const`` for a constant exponent), and for
    plain numbers NumPy's (``0.0 ** -1`` is inf and ``(-1.5) ** -1.5`` NaN, as for Tensors; Python's
    floats would raise or turn complex). Complex arrays (the complex-step difference) stay complex."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return a ** b
    a, b = (np.asarray(v) if np.asarray(v).dtype.kind in "fc" else np.asarray(v, dtype=np.float64) for v in (a, b))
    return np.power(a, b)


_BINARY = {ast.Add: ops.add, ast.Sub: ops.sub, ast.Mult: ops.mul, ast.Div: ops.div, ast.Pow: _power}
_UNARY = {ast.USub: ops.neg, ast.UAdd: lambda a: a}
MAX_LENGTH = 2000
MAX_DEPTH = 200  # operators and parentheses nested; also bounds the builder's recursion


class ExpressionError(ValueError):
    """An expression outside the whitelist; ``str()`` shows the text with a caret under the problem."""

    def __init__(self, message, text, column=0, length=1):
        self.message, self.text, self.column, self.length = message, text, column, max(1, length)
        super().__init__(message)

    def __str__(self):
        shown = self.text if len(self.text) <= 120 else self.text[:117] + "..."
        caret = " " * self.column + "^" * self.length if self.column < len(shown) else ""
        return f"{self.message}\n  {shown}\n  {caret}".rstrip()

    def one_line(self):
        """The message and the offending token on one line (the command line's form of the error).

        >>> print(ExpressionError("unknown name 'y'", "x + y", 4).one_line())
        unknown name 'y' (column 5: 'y')
        """
        token = self.text[self.column:self.column + self.length]
        if not token.strip():
            return self.message
        return f"{self.message} (column {self.column + 1}: {token if len(token) <= 40 else token[:37] + '...'!r})"


def _where(node):
    """Column and width of a node (or of the whole text when it has none)."""
    col = getattr(node, "col_offset", 0) or 0
    end = getattr(node, "end_col_offset", None)
    return col, (end - col) if end is not None else 1


def parse_expression(text: str, variables):
    """A function of ``variables`` (in that order) computing the expression with the engine's ops.

    >>> f = parse_expression("x * sin(y) + 2", ["x", "y"])
    >>> float(f(2.0, 0.0))
    2.0
    >>> parse_expression("__import__('os')", ["x"])
    Traceback (most recent call last):
    ...
    autodiff.expression.ExpressionError: unknown function '__import__' (allowed: abs, cos, exp, ln, log, maximum, minimum, relu, sigmoid, sin, sqrt, tan, tanh)
      __import__('os')
      ^^^^^^^^^^
    """
    variables = list(variables)
    for v in variables:
        if not isinstance(v, str) or not v.isidentifier() or v.startswith("_") or v in FUNCTIONS or v in CONSTANTS:
            raise ValueError(f"variable names must be plain identifiers, not functions or constants; got {v!r}")
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty", str(text))
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters ({len(text)})", text,
                              MAX_LENGTH, 1)
    if _nesting(text) > MAX_DEPTH:
        raise ExpressionError(f"the expression nests more than {MAX_DEPTH} levels deep", text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1
        raise ExpressionError(f"syntax error: {exc.msg}", text.strip(), col) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("the expression cannot be parsed (too deep or invalid)", text) from None
    program = _Builder(text.strip(), variables)
    root = program(tree.body, depth=0)
    steps = program.steps

    def expression_function(*values):
        if len(values) != len(variables):
            raise TypeError(f"the expression takes {len(variables)} value(s) ({', '.join(variables)}), "
                            f"got {len(values)}")
        env = dict(zip(variables, values))
        results = []
        for kind, payload, args in steps:  # straight-line code: each distinct subexpression once
            if kind == "value":
                results.append(payload)
            elif kind == "variable":
                results.append(env[payload])
            else:
                results.append(payload(*(results[i] for i in args)))
        return results[root]

    expression_function.__name__ = "expression"
    expression_function.__doc__ = f"f({', '.join(variables)}) = {text.strip()}"
    return expression_function


def _nesting(text):
    depth = deepest = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        deepest = max(deepest, depth)
    return deepest


class _Builder:
    """Validates the tree node by node and compiles it to straight-line steps, one per distinct
    subexpression (``sin(x)`` written twice is computed once, as in the decomposition of eq. 5.38).
    Each step is (kind, payload, argument step indices)."""

    def __init__(self, text, variables):
        self.text = text
        self.variables = variables
        self.steps = []
        self.seen = {}
        self.constants = {}   # step index -> value, for the steps made of numbers alone

    def fail(self, message, node):
        col, length = _where(node)
        raise ExpressionError(message, self.text, col, length)

    def emit(self, node, kind, payload, args=()):
        key = ast.dump(node)
        if key not in self.seen:
            if kind == "op" and all(a in self.constants for a in args):
                self.constant_value(node, payload, args)
            self.steps.append((kind, payload, tuple(args)))
            self.seen[key] = len(self.steps) - 1
            if kind == "value":
                self.constants[self.seen[key]] = payload
            elif kind == "op" and all(a in self.constants for a in args):
                self.constants[self.seen[key]] = self.last_constant
        return self.seen[key]

    def constant_value(self, node, fn, args):
        """Compute a subexpression of numbers alone now (in float64), refusing one that is not a finite
        real number (``9**9**9``, ``1/0``, ``(-8)**(1/3)``) before it can overflow at run time."""
        with np.errstate(all="ignore"):
            value = np.asarray(value_of(fn(*(np.float64(self.constants[a]) for a in args))))
        if value.dtype.kind not in "fiu" or not np.all(np.isfinite(value)):
            text = ast.get_source_segment(self.text, node) or "a constant"
            self.fail(f"{text} is not a finite real number ({value}), so the expression has no value", node)
        self.last_constant = float(value)

    def __call__(self, node, depth):
        if depth > MAX_DEPTH:
            self.fail(f"the expression nests more than {MAX_DEPTH} levels deep", node)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                self.fail(f"only numbers are allowed as literals, not {type(node.value).__name__}", node)
            try:
                value = float(node.value)
            except OverflowError:
                value = math.inf
            if not math.isfinite(value):
                digits = ast.get_source_segment(self.text, node) or ""
                self.fail(f"the number {digits[:20] + '...' if len(digits) > 20 else digits} is too large for a "
                          f"float (at most about 1.8e308)", node)
            return self.emit(node, "value", value)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self(node.left, depth + 1), self(node.right, depth + 1)
            return self.emit(node, "op", _BINARY[type(node.op)], (left, right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            operand = self(node.operand, depth + 1)
            return operand if isinstance(node.op, ast.UAdd) else self.emit(node, "op", ops.neg, (operand,))
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.BinOp):
            self(node.left, depth + 1)  # report problems in reading order
            self.fail(f"operator {_operator_text(node, self.text)!r} is not allowed (use + - * / **)", node)
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            self(node.value, depth + 1)
        self.fail(f"{_describe(node)} is not allowed in an expression", node)

    def name(self, node):
        if node.id in self.variables:
            return self.emit(node, "variable", node.id)
        if node.id in CONSTANTS:
            return self.emit(node, "value", CONSTANTS[node.id])
        if node.id in FUNCTIONS:
            self.fail(f"{node.id} is a function: call it, e.g. {node.id}(x)", node)
        self.fail(f"unknown name {node.id!r} (variables: {', '.join(self.variables) or 'none'}; "
                  f"constants: pi, e)", node)

    def call(self, node, depth):
        if not isinstance(node.func, ast.Name):
            self(node.func, depth + 1)  # reports what is wrong inside it, if anything
            called = ast.get_source_segment(self.text, node.func) or _describe(node.func)
            self.fail(f"only a function's name can be called (e.g. sin(x)), not {called!r}", node.func)
        if node.func.id not in FUNCTIONS:
            self.fail(f"unknown function {node.func.id!r} (allowed: {', '.join(sorted(FUNCTIONS))})", node.func)
        fn, arity = FUNCTIONS[node.func.id]
        if node.keywords:
            self.fail(f"{node.func.id}() takes no keyword arguments", node.keywords[0])
        if any(isinstance(a, ast.Starred) for a in node.args):
            self.fail("* arguments are not allowed", node)
        if len(node.args) != arity:
            self.fail(f"{node.func.id}() takes {arity} argument{'s' if arity > 1 else ''}, "
                      f"got {len(node.args)}", node)
        args = [self(a, depth + 1) for a in node.args]
        return self.emit(node, "op", fn, args)


def _describe(node):
    names = {ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "a lambda",
             ast.Compare: "a comparison", ast.BoolOp: "and/or", ast.IfExp: "an if-expression",
             ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.SetComp: "a comprehension",
             ast.DictComp: "a comprehension", ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict",
             ast.Set: "a set", ast.JoinedStr: "a string", ast.Starred: "a * argument", ast.NamedExpr: "':='",
             ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield"}
    return names.get(type(node), type(node).__name__)


def _operator_text(node, text):
    start = node.left.end_col_offset
    end = node.right.col_offset
    return text[start:end].strip() or type(node.op).__name__


def parse_assignments(specs) -> dict:
    """``["x=0.5", "y=-2"]`` -> ``{"x": 0.5, "y": -2.0}`` (the ``--at`` option), in order.

    >>> parse_assignments(["x=0.5", "y = -2"])
    {'x': 0.5, 'y': -2.0}
    """
    values = {}
    for spec in specs:
        name, sep, number = str(spec).partition("=")
        name, number = name.strip(), number.strip()
        if not sep or not name:
            raise ValueError(f"--at expects NAME=VALUE, e.g. x=0.5; got {spec!r}")
        if not name.isidentifier() or name.startswith("_") or name in FUNCTIONS or name in CONSTANTS:
            raise ValueError(f"--at: {name!r} is not a usable variable name")
        if name in values:
            raise ValueError(f"--at: {name!r} is given twice")
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"--at: the value of {name!r} must be a number, got {number!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"--at: the value of {name!r} must be finite, got {number!r}")
        values[name] = value
    if not values:
        raise ValueError("--at: give at least one NAME=VALUE")
    return values
