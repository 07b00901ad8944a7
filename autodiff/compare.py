"""``compare(f, *inputs)``: the derivative of f by every method the toolkit knows, in one table.

Reverse mode, forward mode, SymPy (scalar graphs) and each difference quotient of
:mod:`autodiff.numerical` (with its default step), with errors against the most exact method
available: SymPy, else the complex step, else reverse mode (the source material's section 5.5).
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from .checks import float_inputs
from .functional import jacobian
from .numerical import DEFAULT_EPS, METHODS, numerical_jacobian
from .ops import reshape
from .symbolic import to_sympy
from .tables import cell_text, html_table, text_table
from .tensor import Tensor, value_of


@dataclass
class Comparison:
    """The derivative of f by every method, with errors against a reference method."""

    reference: str
    rows: list          # dicts: method, value, abs err, rel err, note

    def __str__(self):
        columns = ("method", "derivative", "abs err", "rel err", "note")
        body = [[r["method"], _fmt_value(r["value"]), cell_text(r["abs err"]), cell_text(r["rel err"]), r["note"]] for r in self.rows]
        return f"reference: {self.reference}\n" + text_table(columns, body, align="right")

    def _repr_html_(self):
        columns = ("method", "derivative", "abs err", "rel err", "note")
        body = [[r["method"], _fmt_value(r["value"]), cell_text(r["abs err"]), cell_text(r["rel err"]), r["note"]] for r in self.rows]
        return f"<p>reference: {html.escape(self.reference)}</p>" + html_table(columns, body)


def _fmt_value(v):
    if v is None:
        return "-"
    v = np.asarray(v)
    if v.size == 1:
        return f"{float(v.ravel()[0]):.17g}"
    return f"array{v.shape}, |J|max = {np.max(np.abs(v)):.6g}"


def compare(f, *inputs, eps=None):
    """One table of f's derivative (gradient or Jacobian, w.r.t. all inputs) by reverse mode,
    forward mode, SymPy (scalar graphs) and each difference quotient, with errors against the most
    exact method available: SymPy, else the complex step, else reverse mode.

    >>> import autodiff as ad
    >>> table = compare(lambda x: ad.exp(ad.sin(x)), 0.5)
    >>> table.reference
    'SymPy'
    >>> [r["method"] for r in table.rows][:3]
    ['reverse mode', 'forward mode', 'SymPy']
    """
    xs = float_inputs(inputs, "compare")
    flat_sizes = [x.size for x in xs]

    def flat_f(v):
        parts, start = [], 0
        for x, n in zip(xs, flat_sizes):
            parts.append(reshape(v[start:start + n], x.shape) if isinstance(v, Tensor) else v[start:start + n].reshape(x.shape))
            start += n
        return f(*parts)

    point = np.concatenate([x.ravel() for x in xs])
    results = {}
    notes = {}
    results["reverse mode"] = jacobian(flat_f, mode="reverse")(point)
    results["forward mode"] = jacobian(flat_f, mode="forward")(point)
    results["SymPy"], notes["SymPy"] = _sympy_derivative(f, xs)
    for method in METHODS:
        name = f"numerical, {method}"
        step = DEFAULT_EPS[method] if eps is None else eps
        try:
            results[name] = numerical_jacobian(flat_f, point, method=method, eps=step)
            notes[name] = f"eps={step:.3g}"
        except TypeError as exc:  # an op that refuses complex input
            results[name], notes[name] = None, str(exc).split(",")[0]
    if len(xs) == 1:  # one argument: the derivative in its natural shape, out.shape + x.shape
        shape = np.shape(value_of(f(*xs))) + xs[0].shape
        results = {k: None if v is None else np.reshape(v, shape) for k, v in results.items()}
    reference = "SymPy" if results["SymPy"] is not None else (
        "numerical, complex" if results["numerical, complex"] is not None else "reverse mode")
    ref = np.asarray(results[reference], dtype=np.float64)
    scale = np.max(np.abs(ref)) if ref.size else 0.0
    rows = []
    for method, value in results.items():
        if value is None:
            rows.append({"method": method, "value": None, "abs err": "-", "rel err": "-", "note": notes.get(method, "")})
            continue
        err = float(np.max(np.abs(np.asarray(value, dtype=np.float64) - ref))) if ref.size else 0.0
        rows.append({"method": method, "value": value, "abs err": err,
                     "rel err": err / scale if scale else err, "note": notes.get(method, "")})
    return Comparison(reference, rows)


def _sympy_derivative(f, xs):
    """SymPy's derivative of f's recorded graph at the point, or (None, reason)."""
    if any(x.ndim for x in xs):
        return None, "scalar inputs only"
    import sympy

    leaves = [Tensor(x, requires_grad=True, name=f"x{k}" if len(xs) > 1 else "x") for k, x in enumerate(xs)]
    try:
        expr = to_sympy(f(*leaves))
    except (NotImplementedError, ValueError) as exc:
        return None, str(exc)
    symbols = [sympy.Symbol(w.name, real=True) for w in leaves]
    point = {s: sympy.Float(float(x), 30) for s, x in zip(symbols, xs)}
    out = np.asarray(value_of(f(*xs)))
    if out.ndim:
        return None, "scalar outputs only"
    return np.array([float(sympy.diff(expr, s).evalf(30, subs=point)) for s in symbols]).reshape(1, -1)[0], ""
