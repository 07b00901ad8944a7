"""Anomaly mode: stop at the first NaN or infinity, say where it came from and how to avoid it.

``with ad.detect_anomaly():`` (or ``@ad.detect_anomaly()``) is PyTorch's
``torch.autograd.detect_anomaly``, with a forward check besides:

- the forward stops at the first primitive whose output is not finite (``autodiff.tensor.apply``
  hands every Tensor an op returns to the check, vmap's batched values included);
- the reverse sweep stops at the first rule whose cotangent is not finite (``autodiff.sweep``).

Either raises :class:`AnomalyError`, whose first line says which op, its node's name as in eq. 5.38
(:mod:`autodiff.labels`) and the line of the user's code that recorded the node; the lines below give
the input values (abbreviated) and, for the usual suspects, the safe rewrite (``REWRITES``: sqrt and
log at 0, division by 0, ``x ** p`` at 0, exp's overflow, and the ``where`` NaN trap).

Where a node was recorded is captured (the first frame outside autodiff's own files) only while
anomaly mode is on; outside it the engine pays one test of a module global per op.
"""
from __future__ import annotations

import functools
import linecache
import os
import sys
import weakref

import numpy as np

from . import tensor as _tensor
from .labels import expression, node_names
from .sweep import reverse_sweep, toposort
from .tensor import Tensor, _foreign, every_example, value_of

_OWN = os.path.dirname(os.path.abspath(__file__)) + os.sep
_WHERE_TRAP = ("the where NaN trap: where(c, f(x), y) still differentiates f where c is false, with a zero "
               "cotangent, and f's rule makes 0 * inf = nan there; compute the unsafe branch on a safe input: "
               "where(c, f(where(c, x, 1.0)), y)")

#: The safe rewrite of each primitive that usually makes a NaN or an infinity, by primitive name.
REWRITES = {
    "sqrt": "sqrt'(x) = 1/(2 sqrt(x)) is inf at x = 0 (and sqrt is nan below 0): use ad.sqrt(x + eps) "
            "(eps = 1e-12), or keep x away from 0: ad.sqrt(ad.where(x > 0, x, 1.0))",
    "log": "log(0) = -inf and log'(x) = 1/x is inf at 0 (log is nan below 0): use ad.log(x + eps) or "
           "ad.log(ad.maximum(x, eps)); for the log of a softmax, ad.log_softmax",
    "div": "division by 0: a/0 is inf (0/0 nan) and so is its derivative -a/b**2: add eps to the "
           "denominator, or guard it: a / ad.where(b != 0, b, 1.0)",
    "pow_const": "x ** p with p < 1 has an infinite derivative at x = 0 (x ** 0.5 is sqrt): use (x + eps) ** p",
    "exp": "exp overflows to inf above about 709 (88 in float32): use ad.logsumexp or ad.log_softmax, "
           "or subtract the maximum first",
    "where": _WHERE_TRAP,
    "select": _WHERE_TRAP,
}


class AnomalyError(RuntimeError):
    """A NaN or infinity found by ``detect_anomaly``: ``phase`` ("forward" or "reverse"), ``op`` (the
    primitive's name), ``node`` (its name as in eq. 5.38, None for an unrecorded result), ``line``
    ("file:line in function", where the user's code recorded it, or None)."""

    def __init__(self, message, phase, op, node, line):
        super().__init__(message)
        self.phase, self.op, self.node, self.line = phase, op, node, line


# --- where a node was recorded ------------------------------------------------------------------

_recorded = {}    # id(node) -> (weak reference to the node, (file, line, function)), while the node lives


def user_frame(frame=None, own=(_OWN,), stop=None):
    """(file, line, function) of the innermost frame of the user's code: the first from ``frame`` (the
    caller's caller by default) up whose file is not under ``own`` (autodiff's own files); None when
    there is none, or when the frame ``stop`` comes first (its callers are not the code being watched).
    Anomaly mode and compile's source map (autodiff.compiler.sourcemap) both ask it."""
    f = sys._getframe(2) if frame is None else frame
    while f is not None and f is not stop and f.f_code.co_filename.startswith(own):
        f = f.f_back
    return None if f is None or f is stop else (f.f_code.co_filename, f.f_lineno, f.f_code.co_name)


def _note(node):
    key = id(node)
    _recorded[key] = (weakref.ref(node, lambda _, key=key: _recorded.pop(key, None)), user_frame())


def recorded_at(node):
    """Where the user's code recorded ``node`` ("file:line in function: `code`"), if anomaly mode was
    on then; None otherwise."""
    entry = _recorded.get(id(node))
    if entry is None or entry[0]() is not node or entry[1] is None:
        return None
    file, line, function = entry[1]
    code = linecache.getline(file, line).strip()
    return f"{file}:{line} in {function}" + (f": `{code}`" if code else "")


# --- the checks ---------------------------------------------------------------------------------

def _plain(v):
    """The NumPy array behind a value (vmap's batched data; None for another library's device array)."""
    v = every_example(v)
    return None if _foreign(v) else np.asarray(v)


def _finite(v) -> bool:
    a = _plain(v)
    return a is None or a.dtype.kind not in "fc" or bool(np.isfinite(a).all())


def _abbreviated(v) -> str:
    a = _plain(v)
    if a is None:
        return f"(a {type(value_of(v)).__name__} on its device)"
    text = np.array2string(a, precision=4, threshold=6, edgeitems=2, separator=", ").replace("\n", "")
    if a.dtype.kind in "fc" and a.size > 1:
        bad = int(a.size - np.isfinite(a).sum())
        if bad:
            text += f" ({bad} of {a.size} not finite)"
    return text


def _in_reverse_sweep() -> bool:
    """Whether a rule of the reverse sweep is running (with create_graph=True its ops are recorded)."""
    f = sys._getframe(2)
    while f is not None:
        if f.f_code is reverse_sweep.__code__:
            return True
        f = f.f_back
    return False


def _head(phase, op, name, expr, line):
    at = f"node {name} = {expr}" if name is not None else "an unrecorded result"
    return f"{phase} sweep: {op} {{what}} at {at}" + (f" (recorded at {line})" if line else "")


class _Checker:
    """``autodiff.tensor._anomaly`` while anomaly mode is on: called on every Tensor an op returns, and
    by the reverse sweep on every cotangent."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __call__(self, result, prim, args):
        if result.op is not None:
            _note(result)
        if not self.check_nan or _finite(result._value) or _in_reverse_sweep():
            return
        if result.op is not None:
            order, _ = toposort([result])
            label = node_names(order, None)
            name, expr = label[id(result)], expression(result, label)
            inputs = [(label.get(id(i)) or "const", i._value) for i in result.inputs]
        else:
            name = expr = None
            inputs = [(f"input {k}", value_of(a)) for k, a in enumerate(args)]
        line = recorded_at(result) if result.op is not None else _describe(user_frame())
        head = _head("forward", prim.name, name, expr, line).format(what=f"returned {_kind(result._value)}")
        lines = [head] + [f"  {n} = {_abbreviated(v)}" for n, v in inputs]
        lines.append(f"  output = {_abbreviated(result._value)}")
        if prim.name in REWRITES:
            lines.append(f"  safe rewrite: {REWRITES[prim.name]}")
        raise AnomalyError("\n".join(lines), "forward", prim.name, name, line)

    def cotangent(self, node, i, c, g, order, seeds):
        if not self.check_nan or _finite(c):
            return
        root = next((n for n in reversed(order) if id(n) in seeds), None)
        label = node_names(order, root)
        name, op = label[id(node)], node.op.name
        line = recorded_at(node)
        inp = label.get(id(node.inputs[i])) or "const"
        head = _head("reverse", op, name, expression(node, label), line).format(
            what=f"rule returned {_kind(c)} as the cotangent of input {i} ({inp})")
        lines = [head] + [f"  {label.get(id(x)) or 'const'} = {_abbreviated(x._value)}" for x in node.inputs]
        lines.append(f"  adjoint in ({name}\u0304) = {_abbreviated(g)}")
        lines.append(f"  cotangent out = {_abbreviated(c)}")
        if op in REWRITES:
            lines.append(f"  safe rewrite: {REWRITES[op]}")
        if op not in ("where", "select") and _masked(order, c, g):
            lines.append(f"  and maybe {_WHERE_TRAP}")
        raise AnomalyError("\n".join(lines), "reverse", op, name, line)


def _kind(v) -> str:
    a = _plain(v)
    return "nan" if np.isnan(a).any() else "inf" if (a == np.inf).any() else "-inf"


def _describe(frame):
    if frame is None:
        return None
    code = linecache.getline(frame[0], frame[1]).strip()
    return f"{frame[0]}:{frame[1]} in {frame[2]}" + (f": `{code}`" if code else "")


def _masked(order, c, g) -> bool:
    """The where trap's signature: the graph has a where (select), and a zero adjoint came in where the
    cotangent went out non-finite."""
    if not any(n.op is not None and n.op.name in ("where", "select") for n in order):
        return False
    c, g = _plain(c), _plain(g)
    if c is None or g is None:
        return True
    if c.shape != g.shape:
        return bool((g == 0).any())
    return bool(((g == 0) & ~np.isfinite(c)).any())


# --- the mode -----------------------------------------------------------------------------------

def is_anomaly_enabled() -> bool:
    """Whether ``detect_anomaly`` is on (a hook that only passes values on, compile's source map, is not it)."""
    hook = _tensor._anomaly
    while getattr(hook, "passes_on", False):
        hook = hook.previous
    return hook is not None


class detect_anomaly:
    """Context manager (and decorator) that stops at the first NaN or infinity, forward or reverse.

    As ``torch.autograd.detect_anomaly`` (``check_nan=False``: only note where nodes are recorded),
    for debugging: each op's output is checked, and where the user's code recorded each node is noted.
    The error's first line names the op, its node (eq. 5.38's letters) and that line; the rest give the
    inputs and the safe rewrite. ``nn.fit(..., detect_anomaly=True)`` trains under it.

    >>> import numpy as np
    >>> import autodiff as ad
    >>> x = ad.Tensor(np.array([0.0, 4.0]), requires_grad=True, name="x")
    >>> try:
    ...     with ad.detect_anomaly(), np.errstate(divide="ignore"):
    ...         ad.sqrt(x).sum().backward()      # sqrt'(0) = inf
    ... except ad.AnomalyError as e:
    ...     print(str(e).splitlines()[0].split(" (recorded")[0])
    ...     print(str(e).splitlines()[-1][:60])
    reverse sweep: sqrt rule returned inf as the cotangent of input 0 (x) at node a = sqrt(x)
      safe rewrite: sqrt'(x) = 1/(2 sqrt(x)) is inf at x = 0 (an
    """

    def __init__(self, check_nan: bool = True):
        if not isinstance(check_nan, (bool, np.bool_)):
            raise TypeError(f"detect_anomaly: check_nan must be True or False, got {check_nan!r}")
        self.check_nan = bool(check_nan)
        self._previous = []

    def __enter__(self):
        self._previous.append(_tensor._anomaly)
        _tensor._anomaly = _Checker(self.check_nan)
        return self

    def __exit__(self, *exc):
        _tensor._anomaly = self._previous.pop()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return func(*args, **kwargs)

        return wrapper
