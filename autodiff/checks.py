"""Gradient checks: the engine's derivatives held to finite differences and to SymPy.

- ``gradcheck(f, *inputs)``: every derivative of f (full Jacobians for small inputs, random
  directions <v, J u> for large ones), by each mode, against central differences. On failure it
  raises ``GradcheckError`` whose message is a table of the worst entries, and it names the first
  recorded primitive whose own rule is wrong. Entries whose difference quotient straddles a kink
  (relu or abs at 0, a tie in max) are reported as such, not as failures.
- ``check_primitive(op)``: a primitive's vjp, jvp and SymPy rules against differences and SymPy.
- ``compare(f, *inputs)`` (:mod:`autodiff.compare`): one table of the derivative by every method.

Defaults follow PyTorch's ``torch.autograd.gradcheck``: eps = 1e-6 (absolute central-difference
step), atol = 1e-5, rtol = 1e-3, an entry passing when |analytic - numeric| <= atol + rtol |numeric|.
JAX's ``check_grads`` uses eps = 1e-4 with tolerances tied to the dtype. Both need float64: in
float32 (machine epsilon 1.2e-7) a difference quotient with eps = 1e-6 keeps about one digit, so
float32 inputs get a warning.
"""
from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field

import numpy as np

from .functional import _Trace, check_function, jvp, vjp as _vjp
from .labels import describe_node
from .numerical import DEFAULT_EPS, METHODS
from .ops import concatenate, reshape
from .primitives import as_array
from .sweep import forward_sweep, reverse_sweep, toposort
from .tables import cell_text, html_table, text_table
from .tensor import Tensor, apply, value_of


class GradcheckError(AssertionError):
    """A derivative disagrees with finite differences (or SymPy); ``.report`` holds the details."""

    def __init__(self, report):
        self.report = report
        super().__init__(str(report))


class GradcheckWarning(UserWarning):
    """A check that runs but cannot be trusted (float32 inputs)."""


# --- reports ---------------------------------------------------------------------------------

_COLUMNS = ("check", "output", "input", "analytic", "numeric", "abs err", "rel err")


@dataclass
class GradcheckReport:
    """What a gradient check compared, and where it disagreed."""

    passed: bool
    strategy: str                       # "full Jacobian" or "random directions"
    checked: int                        # number of compared entries (all modes)
    atol: float
    rtol: float
    eps: float
    failures: list = field(default_factory=list)   # rows: dicts with the _COLUMNS keys
    kinks: list = field(default_factory=list)      # sentences: entries not counted, and why
    culprit: str | None = None                     # the first primitive whose own rule is wrong
    errors: list = field(default_factory=list)     # sweeps that could not run (a rule's wrong shape)
    notes: list = field(default_factory=list)
    worst: int = 10

    def rows(self):
        """The worst failing entries, largest excess over the tolerance first."""
        def excess(r):
            return r["abs err"] - (self.atol + self.rtol * abs(r["numeric"]))
        return sorted(self.failures, key=excess, reverse=True)[: self.worst]

    def __str__(self):
        head = (f"gradcheck {'passed' if self.passed else 'FAILED'}: {self.checked} entries compared "
                f"({self.strategy}, eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})")
        lines = [head]
        if self.failures:
            lines.append(f"{len(self.failures)} entries disagree; the worst:")
            lines.append(text_table(_COLUMNS, [[cell_text(r[c]) for c in _COLUMNS] for r in self.rows()], align="right"))
        lines.extend(self.errors)
        if self.culprit:
            lines.append(self.culprit)
        lines.extend(self.kinks)
        lines.extend(self.notes)
        return "\n".join(lines)

    def _repr_html_(self):
        parts = [f"<p><b>{html.escape(str(self).splitlines()[0])}</b></p>"]
        if self.failures:
            parts.append(html_table(_COLUMNS, [[cell_text(r[c]) for c in _COLUMNS] for r in self.rows()]))
        for line in self.errors + ([self.culprit] if self.culprit else []) + self.kinks + self.notes:
            parts.append(f"<p>{html.escape(line)}</p>")
        return "".join(parts)


# --- helpers -----------------------------------------------------------------------------------

def _index(shape, flat):
    """'[i, j]' for a flat position in an array of ``shape`` ('[]' for a scalar)."""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]" if shape else "[]"


def _input_names(inputs):
    return [x.name if isinstance(x, Tensor) and x.name else f"input {k}" for k, x in enumerate(inputs)]


def float_inputs(inputs, fname):
    arrays = []
    for k, x in enumerate(inputs):
        arr = as_array(value_of(x), f"{fname}: input {k}")
        if arr.dtype.kind == "c":     # NumPy would drop the imaginary part of a step and "pass"
            raise TypeError(f"{fname}: input {k} is complex ({arr.dtype}); the derivatives checked here are real: "
                            f"pass its real and imaginary parts as two real inputs")
        if arr.dtype.kind != "f":
            if arr.dtype.kind not in "biu":
                raise TypeError(f"{fname}: input {k} must be numeric, got dtype {arr.dtype}")
            arr = arr.astype(np.float64)
        arrays.append(arr)
    return arrays


#: gradcheck's (eps, atol, rtol) by default, and when an input is float32 and the call names none of them:
#: a central difference's best step in float32 is about cbrt(1.2e-7) = 5e-3, and it keeps about four
#: digits there.
FLOAT64_TOLERANCES = (1e-6, 1e-5, 1e-3)
FLOAT32_TOLERANCES = (4.9e-3, 1e-3, 1e-2)


def _tolerances(xs, eps, atol, rtol, fname):
    """The step and tolerances: the caller's, else FLOAT64_TOLERANCES or, with a float32 input,
    FLOAT32_TOLERANCES, saying so (a correct float32 function failed float64's, with no word of why)."""
    low = [k for k, x in enumerate(xs) if x.dtype == np.float32]
    defaults = FLOAT32_TOLERANCES if low else FLOAT64_TOLERANCES
    for name, v in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
                              or isinstance(v, (float, np.floating)) and not np.isfinite(v)
                              or v < 0 or (name == "eps" and v == 0)):
            raise ValueError(f"{fname}: {name} must be a finite number {'> 0' if name == 'eps' else '>= 0'} or "
                             f"None, got {v!r}")
    chosen = tuple(d if v is None else float(v) for v, d in zip((eps, atol, rtol), defaults))
    note = None
    if low:
        note = (f"float32 input(s) {low}: eps={chosen[0]:g}, atol={chosen[1]:g}, rtol={chosen[2]:g} (float32 keeps "
                f"about 7 digits, a central difference about 4 of them; float64 inputs are checked with "
                f"eps={FLOAT64_TOLERANCES[0]:g}, atol={FLOAT64_TOLERANCES[1]:g}, rtol={FLOAT64_TOLERANCES[2]:g})")
        warnings.warn(f"{fname}: {note}", GradcheckWarning, stacklevel=3)
    return chosen, note


def _evaluate(f, xs):
    return np.asarray(value_of(f(*xs)), dtype=np.float64)


def _numeric_directional(f, xs, directions, eps):
    """Central difference of f at xs along the input directions (one per input)."""
    plus = _evaluate(f, [x + eps * d for x, d in zip(xs, directions)])
    minus = _evaluate(f, [x - eps * d for x, d in zip(xs, directions)])
    return (plus - minus) / (2 * eps)


def _kink_nodes(order, tangents, eps):
    """Nodes whose primitive has a kink within reach of a step eps along the given tangents."""

    found = []
    for node in order:
        prim = node.op
        if prim is None or not prim.kinks:
            continue
        ts = [tangents.get(id(i)) for i in node.inputs]
        if all(t is None for t in ts):
            continue
        values = [i._value for i in node.inputs]
        ts = [np.zeros_like(v, dtype=np.float64) if t is None else np.asarray(value_of(t)) for v, t in zip(values, ts)]
        for kink in prim.kinks:
            gap, rate = jvp(lambda *xs: kink(*xs, **node.params), values, ts)
            gap, rate = np.abs(np.asarray(gap)), np.abs(np.asarray(rate))
            if np.any((gap <= 2 * eps * rate) & (rate > 0)):
                found.append(node)
                break
    return found


# --- localising a wrong rule -------------------------------------------------------------------

def _check_node_rules(node, ids, rng, eps, atol, rtol):
    """Compare one recorded node's vjp and jvp rules with central differences at its inputs
    (``ids``: the graph's differentiated nodes, the inputs that get perturbed)."""
    prim = node.op
    values = [np.asarray(i._value, dtype=np.float64) for i in node.inputs]
    tracked = [id(i) in ids for i in node.inputs]
    us = [rng.normal(size=v.shape) if t else np.zeros(v.shape) for v, t in zip(values, tracked)]
    v_out = rng.normal(size=node.shape)
    leaves = [Tensor._make(v, requires_grad=t) for v, t in zip(values, tracked)]
    out = apply(prim, leaves, node.params)
    order, ids = toposort([out])
    numeric = float(np.sum(v_out * _numeric_directional(lambda *xs: prim.impl(*xs, **node.params), values, us, eps)))
    problems = []
    try:
        tangent = forward_sweep(order, {id(w): u for w, u in zip(leaves, us) if w.requires_grad}).get(id(out))
        forward = float(np.sum(v_out * (0 if tangent is None else np.asarray(tangent))))
        if abs(forward - numeric) > atol + rtol * abs(numeric):
            problems.append(f"its jvp (forward rule) gives <v, J u> = {forward:.6g}, central differences {numeric:.6g}")
    except RuntimeError as exc:  # a rule returning the wrong shape
        problems.append(f"its jvp (forward rule) fails: {exc}")
    try:
        adj = reverse_sweep(order, ids, {id(out): v_out}, keep={id(w) for w in leaves})
        reverse = float(sum(np.sum(adj[id(w)] * u) for w, u in zip(leaves, us) if id(w) in adj))
        if abs(reverse - numeric) > atol + rtol * abs(numeric):
            problems.append(f"its vjp (reverse rule) gives <J^T v, u> = {reverse:.6g}, central differences {numeric:.6g}")
    except RuntimeError as exc:  # a rule returning the wrong shape
        problems.append(f"its vjp (reverse rule) fails: {exc}")
    return problems


def _localise(order, ids, eps, atol, rtol, seed=0):
    """The first primitive in the recorded graph (in evaluation order) whose own rule is wrong."""
    rng = np.random.default_rng(seed)
    for node in order:
        if node.op is None or node.op.name == "identity":
            continue
        if node.dtype.kind != "f" or _kink_nodes([node], {id(i): np.ones(i.shape) for i in node.inputs}, eps):
            continue
        problems = _check_node_rules(node, ids, rng, eps, atol, rtol)
        if problems:
            return f"First wrong rule: {describe_node(order, node)}: " + "; ".join(problems) + "."
    return None


# --- gradcheck ---------------------------------------------------------------------------------

def gradcheck(f, *inputs, eps=None, atol=None, rtol=None, modes=("reverse", "forward"), order=1,
              full=None, directions=8, seed=0, raise_exception=True):
    """Check f's derivatives with respect to every input against central differences.

    ``eps``, ``atol``, ``rtol``: the step and tolerances, by default ``FLOAT64_TOLERANCES``, or
    ``FLOAT32_TOLERANCES`` when an input is float32 (said in the report's notes). Complex inputs are refused.

    ``full=None`` checks the whole Jacobian when the inputs have at most 512 elements in all, and
    ``directions`` random products <v, J u> otherwise. ``modes`` chooses reverse and/or forward mode.
    ``order=2`` checks the derivatives of the derivative: the Jacobian of u^T J (a vjp with a fixed
    random u), so that every rule is differentiated once more. Returns the ``GradcheckReport``;
    raises ``GradcheckError`` on failure unless ``raise_exception=False``.

    >>> import numpy as np
    >>> import autodiff as ad
    >>> gradcheck(lambda x: ad.softmax(x), np.array([0.1, 0.5, -0.3])).passed
    True
    """
    check_function(f, "gradcheck")
    for mode in modes:
        if mode not in ("reverse", "forward"):
            raise ValueError(f"gradcheck: modes must contain 'reverse' and/or 'forward', got {mode!r}")
    if order not in (1, 2):
        raise ValueError(f"gradcheck: order must be 1 or 2, got {order!r}")
    if not inputs:
        raise ValueError("gradcheck: give at least one input")
    names = _input_names(inputs)
    xs = float_inputs(inputs, "gradcheck")
    (eps, atol, rtol), dtype_note = _tolerances(xs, eps, atol, rtol, "gradcheck")
    if order == 2:
        f = _first_derivative_function(f, xs, seed)
    trace = _Trace(f, xs, tuple(range(len(xs))), {}, "gradcheck")
    trace.release()
    out = trace.out
    total = sum(x.size for x in xs)
    full = total <= 512 if full is None else full
    report = GradcheckReport(True, "full Jacobian" if full else f"{directions} random directions",
                             0, atol, rtol, eps)
    if order == 2:
        report.notes.append("order=2: checked the Jacobian of u^T J (second derivatives).")
    if dtype_note is not None:
        report.notes.append(dtype_note + ".")
    rng = np.random.default_rng(seed)
    try:
        if full:
            _full_check(f, xs, names, trace, modes, eps, atol, rtol, report)
        else:
            _random_check(f, xs, names, trace, modes, eps, atol, rtol, directions, rng, report)
    except RuntimeError as exc:  # a rule returned the wrong shape: the sweep itself cannot run
        report.errors.append(f"A sweep failed: {exc}.")
    if report.failures or report.errors:
        report.passed = False
        report.culprit = _localise(trace.order, trace.ids, eps, atol, rtol, seed)
        report.notes.extend(_where_nan_hint(report.failures, trace.order))
    if not report.passed and raise_exception:
        raise GradcheckError(report)
    return report


def _where_nan_hint(failures, order):
    """The NaN of ``where(v > 0, sqrt(v), 0)`` at v = 0 (as in PyTorch and JAX), and its remedy."""
    if not any(np.isnan(r["analytic"]) for r in failures):
        return []
    wheres = [n for n in order if n.op is not None and n.op.name == "where"]
    if not wheres:
        return []
    labels = "; ".join(describe_node(order, n) for n in wheres[:3])
    return [f"A NaN in the gradient, and the graph has where() ({labels}): where(c, f(x), y) sends a zero "
            f"cotangent into f where c is false, and f's own rule can make it NaN there (sqrt(x) at x = 0: "
            f"0 * inf). The safe pattern keeps f away from the bad point: where(c, f(where(c, x, 1.0)), y)."]


def _first_derivative_function(f, xs, seed):
    """x -> u^T J(x), flattened over all inputs, for a fixed random u: checking it checks order 2."""
    out_shape = np.shape(_evaluate(f, xs))
    u = np.random.default_rng(seed + 1).normal(size=out_shape)

    def first_derivative(*args):
        _, vjp_fn = _vjp(f, *args)
        return concatenate([reshape(c, (-1,)) for c in vjp_fn(u)])

    return first_derivative


def _compare(report, check, analytic, numeric, out_label, in_label, atol, rtol):
    report.checked += 1
    err = abs(analytic - numeric)
    if not err <= atol + rtol * abs(numeric):  # also catches NaN
        rel = err / abs(numeric) if numeric != 0 else float("inf")
        report.failures.append({"check": check, "output": out_label, "input": in_label, "analytic": float(analytic),
                                "numeric": float(numeric), "abs err": float(err), "rel err": float(rel)})


def _kink_message(nodes, order, where):
    labels = "; ".join(describe_node(order, n) for n in nodes)
    return (f"Not counted: {where}: the difference quotient straddles a non-differentiable point of "
            f"{labels} (an input within eps of a kink).")


def _full_check(f, xs, names, trace, modes, eps, atol, rtol, report):
    out = trace.out
    m = out.size
    jac = {}
    if "reverse" in modes:
        rows = []
        for k in range(m):
            seed = np.zeros(m, dtype=out.dtype)
            seed[k] = 1
            rows.append([np.asarray(value_of(g), dtype=np.float64).ravel() for g in trace.reverse(seed.reshape(out.shape))])
        jac["reverse"] = [np.array([r[i] for r in rows]).reshape(m, -1) for i in range(len(xs))]
    for i, x in enumerate(xs):
        for k in range(x.size):
            directions = [np.zeros_like(z) for z in xs]
            directions[i].flat[k] = 1
            numeric = _numeric_directional(f, xs, directions, eps).ravel()
            tangents = forward_sweep(trace.order, {id(w): d for w, d in zip(trace.leaves, directions)})
            kinked = _kink_nodes(trace.order, tangents, eps)
            columns = {}
            if "reverse" in modes:
                columns["reverse"] = jac["reverse"][i][:, k]
            if "forward" in modes:
                t = tangents.get(id(out))
                columns["forward"] = np.zeros(m) if t is None else np.asarray(value_of(t), dtype=np.float64).ravel()
            before = len(report.failures)
            for mode, column in columns.items():
                for r in range(m):
                    _compare(report, mode, column[r], numeric[r], _index(out.shape, r), names[i] + _index(x.shape, k),
                             atol, rtol)
            if kinked and len(report.failures) > before:
                del report.failures[before:]
                report.kinks.append(_kink_message(kinked, trace.order, f"derivatives along {names[i]}{_index(x.shape, k)}"))


def _random_check(f, xs, names, trace, modes, eps, atol, rtol, directions, rng, report):
    out = trace.out
    for d in range(directions):
        us = [rng.normal(size=x.shape) for x in xs]
        v = rng.normal(size=out.shape)
        numeric = float(np.sum(v * _numeric_directional(f, xs, us, eps)))
        tangents = forward_sweep(trace.order, {id(w): u for w, u in zip(trace.leaves, us)})
        before = len(report.failures)
        if "reverse" in modes:
            cot = trace.reverse(v.astype(out.dtype))
            analytic = float(sum(np.sum(np.asarray(value_of(c)) * u) for c, u in zip(cot, us)))
            _compare(report, "reverse <J^T v, u>", analytic, numeric, "v", f"direction {d}", atol, rtol)
        if "forward" in modes:
            t = tangents.get(id(out))
            analytic = 0.0 if t is None else float(np.sum(v * np.asarray(value_of(t))))
            _compare(report, "forward <v, J u>", analytic, numeric, "v", f"direction {d}", atol, rtol)
        kinked = _kink_nodes(trace.order, tangents, eps)
        if kinked and len(report.failures) > before:
            del report.failures[before:]
            report.kinks.append(_kink_message(kinked, trace.order, f"random direction {d}"))


# --- check_primitive ---------------------------------------------------------------------------

def check_primitive(op, samples=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, order=1, seed=0):
    """Validate a primitive's rules at random points: vjp and jvp against central differences
    (``gradcheck`` of the op alone, ``order=2`` to differentiate the rules once more), and its
    SymPy counterpart's value and derivative against the NumPy value and the jvp rule.

    ``op`` is an op function (as returned by ``@primitive``) or a ``Primitive``. ``samples`` is a
    list of ``(inputs, params)``; by default the primitive's own samples are used. Returns the list
    of reports; raises ``GradcheckError`` (naming the op and the element) on the first failure.

    >>> import autodiff as ad
    >>> len(check_primitive(ad.tanh)) > 0
    True
    """
    prim = getattr(op, "primitive", op)
    rng = np.random.default_rng(seed)
    if samples is None:
        if prim.samples is None:
            raise ValueError(f"check_primitive: {prim.name!r} declares no samples; pass samples=[(inputs, params), ...]")
        samples = prim.samples(rng)
    reports = []
    for inputs, params in samples:
        def f(*xs, _params=params):
            return apply(prim, xs, _params)

        try:
            report = gradcheck(f, *inputs, eps=eps, atol=atol, rtol=rtol, order=order, seed=seed)
        except GradcheckError as exc:
            exc.report.notes.insert(0, f"check_primitive({prim.name!r}) at inputs of shapes "
                                       f"{[np.shape(x) for x in inputs]}, params {params}")
            exc.args = (str(exc.report),)
            raise
        if prim.sympy is not None and all(np.ndim(x) == 0 for x in inputs) and np.ndim(prim.impl(*inputs, **params)) == 0:
            _check_sympy_rule(prim, inputs, params, report)
        reports.append(report)
    return reports


def _check_sympy_rule(prim, inputs, params, report):
    import sympy

    symbols = sympy.symbols(f"s0:{len(inputs)}", real=True)
    expr = prim.to_sympy(*symbols, **params)
    point = {s: sympy.Float(float(x), 30) for s, x in zip(symbols, inputs)}
    value = float(expr.evalf(30, subs=point))
    numpy_value = float(prim.impl(*inputs, **params))
    _compare(report, "sympy value", numpy_value, value, "[]", "-", 1e-12, 1e-12)
    for k, s in enumerate(symbols):
        exact = float(sympy.diff(expr, s).evalf(30, subs=point))
        tangents = [np.zeros(()) for _ in inputs]
        tangents[k] = np.ones(())
        leaves = [Tensor._make(np.asarray(x, dtype=np.float64), requires_grad=True) for x in inputs]
        out = apply(prim, leaves, params)
        order, _ = toposort([out])
        t = forward_sweep(order, {id(w): u for w, u in zip(leaves, tangents)}).get(id(out))
        _compare(report, "sympy derivative", float(0 if t is None else t), exact, "[]", f"input {k}", 1e-10, 1e-10)
    if report.failures:
        report.passed = False
        raise GradcheckError(report)
