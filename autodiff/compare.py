"""``compare(f, *inputs)``: the derivative of f by every method the toolkit knows, in one table.

Reverse mode, forward mode, SymPy (scalar graphs) and each difference quotient of
:mod:`autodiff.numerical` (with its default step), with errors against the most exact method
available: SymPy, else the complex step, else reverse mode (the source material's section 5.5).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from .checks import _kink_message, _kink_nodes, float_inputs
from .functional import check_function, jacobian
from .numerical import DEFAULT_EPS, METHODS, numerical_jacobian
from .ops import reshape
from .sweep import forward_sweep, toposort
from .symbolic import to_sympy
from .tables import cell_text, html_table, text_table
from .tensor import Tensor, value_of


@dataclass
class Comparison:
    """The derivative of f by every method, with errors against a reference method."""

    reference: str
    rows: list          # dicts: method, value, abs err, rel err, note
    names: list = None  # the inputs' names: scalar inputs get one column per partial derivative
    notes: list = field(default_factory=list)   # sentences printed under the table (NaN values, kinks)

    def _table(self):
        per_name = self.names is not None and len(self.names) > 1 and all(
            r["value"] is None or np.size(r["value"]) == len(self.names) for r in self.rows)
        heads = [f"d/d{n}" for n in self.names] if per_name else ["derivative"]
        body = []
        for r in self.rows:
            values = ([_fmt_value(None if r["value"] is None else np.ravel(r["value"])[k]) for k in range(len(heads))]
                      if per_name else [_fmt_value(r["value"])])
            body.append([r["method"], *values, cell_text(r["abs err"]), cell_text(r["rel err"]), r["note"]])
        return ("method", *heads, "abs err", "rel err", "note"), body

    def __str__(self):
        columns, body = self._table()
        notes = "".join(f"\n{note}" for note in self.notes)
        return f"reference: {self.reference}\n" + text_table(columns, body, align="right") + notes

    def _repr_html_(self):
        columns, body = self._table()
        notes = "".join(f"<p>{html.escape(note)}</p>" for note in self.notes)
        return f"<p>reference: {html.escape(self.reference)}</p>" + html_table(columns, body) + notes


def _fmt_value(v):
    if v is None:
        return "-"
    v = np.asarray(v)
    if v.size == 1:
        return f"{float(v.ravel()[0]):.17g}"
    return f"array{v.shape}, |J|max = {np.max(np.abs(v)):.6g}"


def compare(f, *inputs, eps=None, names=None):
    """One table of f's derivative (gradient or Jacobian, w.r.t. all inputs) by reverse mode,
    forward mode, SymPy (scalar graphs) and each difference quotient, with errors against the most
    exact method available: SymPy, else the complex step, else reverse mode.

    ``names`` (one per input) label the partial derivatives, one column each for scalar inputs.
    Under the table: a value or derivative that is NaN or infinite is said so (its errors are no
    measure of anything), a point where SymPy's derivative has no finite real value is said so,
    and a point within a difference step of a kink (relu at 0) gets gradcheck's note; the errors of
    the rows there are left out, since each method picks its own one-sided value (SymPy's
    Heaviside(0) = 1/2), as they are where f itself is NaN or infinite.

    >>> import autodiff as ad
    >>> table = compare(lambda x: ad.exp(ad.sin(x)), 0.5)
    >>> table.reference
    'SymPy'
    >>> [r["method"] for r in table.rows][:3]
    ['reverse mode', 'forward mode', 'SymPy']
    """
    check_function(f, "compare")
    xs = float_inputs(inputs, "compare")
    if names is not None and len(names) != len(xs):
        raise ValueError(f"compare: names must name each of the {len(xs)} inputs, got {list(names)}")
    names = None if names is None else [str(n) for n in names]
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
    results["SymPy"], notes["SymPy"] = _sympy_derivative(f, xs, names)
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
    kinks = _kinks(f, xs, names or ["x"] if len(xs) == 1 else names or [f"input {k}" for k in range(len(xs))],
                   max(DEFAULT_EPS.values()) if eps is None else eps)
    undefined = not np.all(np.isfinite(np.asarray(value_of(f(*xs)), dtype=np.float64)))
    rows = []
    for method, value in results.items():
        if value is None:
            rows.append({"method": method, "value": None, "abs err": "-", "rel err": "-", "note": notes.get(method, "")})
            continue
        finite = bool(np.all(np.isfinite(value)))
        err = float(np.max(np.abs(np.asarray(value, dtype=np.float64) - ref))) if ref.size else 0.0
        measured = not kinks and not undefined
        rows.append({"method": method, "value": value, "abs err": err if measured else "-",
                     "rel err": (err / scale if scale else err) if measured else "-",
                     "note": notes.get(method, "") if finite else "not finite"})
    return Comparison(reference, rows, names, _value_notes(f, xs, rows) + kinks)


def _value_notes(f, xs, rows):
    """Sentences for a value of f, or derivatives, that are not finite numbers."""
    value = np.asarray(value_of(f(*xs)), dtype=np.float64)
    notes = []
    if not np.all(np.isfinite(value)):
        notes.append(f"The value of f here is {cell_text(float(value.ravel()[~np.isfinite(value.ravel())][0]))}: "
                     f"the point is outside f's domain, so the derivatives above are formal (no errors are given).")
    bad = [r["method"] for r in rows if r["value"] is not None and not np.all(np.isfinite(r["value"]))]
    if bad:
        notes.append(f"Not finite (NaN or inf) by {', '.join(bad)}: their errors measure nothing.")
    return notes


def _kinks(f, xs, names, eps):
    """gradcheck's note for each input along which a kink lies within ``eps`` of the point."""
    leaves = [Tensor(x, requires_grad=True) for x in xs]
    y = f(*leaves)
    if not isinstance(y, Tensor):
        return []
    order = toposort([y])[0]
    notes = []
    for leaf, name in zip(leaves, names):
        kinked = _kink_nodes(order, forward_sweep(order, {id(leaf): np.ones(leaf.shape)}), eps)
        if kinked:
            notes.append(_kink_message(kinked, order, f"derivatives along {name}"))
    return notes


def _sympy_derivative(f, xs, names=None):
    """SymPy's derivative of f's recorded graph at the point, or (None, reason)."""
    if any(x.ndim for x in xs):
        return None, "scalar inputs only"
    import sympy

    names = names or [f"x{k}" if len(xs) > 1 else "x" for k in range(len(xs))]
    leaves = [Tensor(x, requires_grad=True, name=n) for n, x in zip(names, xs)]
    try:
        expr = to_sympy(f(*leaves), real=True)          # real: d|x|/dx is sign(x), as the engine's
    except (NotImplementedError, ValueError) as exc:
        return None, str(exc)
    symbols = [sympy.Symbol(w.name, real=True) for w in leaves]
    point = {s: sympy.Float(float(x), 30) for s, x in zip(symbols, xs)}
    out = np.asarray(value_of(f(*xs)))
    if out.ndim:
        return None, "scalar outputs only"
    partials = []
    for s in symbols:
        try:
            value = sympy.diff(expr, s).subs(point).evalf(30)
            finite = bool(value.is_real and value.is_finite)
        except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
            value, finite = "undefined", False
        if not finite:
            return None, f"no finite real value here (d/d{s} = {value})"
        partials.append(float(value))
    return np.array(partials), ""
