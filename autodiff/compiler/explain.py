"""``autodiff.explain(f, *args)``: what autodiff.compile makes of f at a point, to read in one place.

Google's *tangent* shows the adjoint program it writes, each line mapped back to the user's source.
``explain`` records f once as ``autodiff.compile`` does (:func:`.trace.trace`, the same straight-line
program and the same rules) and prints, in one object:

- the forward program: one line per value, each ending with the line of the user's code it comes from;
- the adjoint program (reverse mode), each line ending with the line it differentiates; for an f that
  does not return one scalar (reverse mode needs one), the tangent program (forward mode) instead;
- the gradcheck verdict at the point (:func:`autodiff.gradcheck`, the engine against finite differences);
- the inputs the output does not depend on, and the first line whose value is not finite (NaN or inf);
- the ``if``s on traced values met and the way taken at this point, and each loop's body program.

Nothing is compiled by Numba: the lines are those of :func:`.codegen.listing`, whole arrays at a time.
"""
from __future__ import annotations

import html

import numpy as np

from ..checks import gradcheck
from ..sweep import toposort
from ..tensor import Tensor, every_example
from .codegen import listing
from .guards import Script, located, planned
from .trace import CompileError, as_input, trace

#: A section longer than this shows its first and last lines, and says how many it leaves out.
SHOWN = 80


class Explanation:
    """What ``explain`` found: ``forward`` and ``derivative`` (the lines), ``mode`` ("reverse" or "forward"),
    ``value``, ``gradcheck`` (the report), ``unused`` (input names), ``nonfinite`` (a sentence or None)."""

    def __init__(self, name, point, value, forward, mode, derivative, why, report, unused, nonfinite,
                 decisions=(), loops=()):
        self.name, self.point, self.value = name, point, value
        self.forward, self.mode, self.derivative, self.why = forward, mode, derivative, why
        self.gradcheck, self.unused, self.nonfinite = report, unused, nonfinite
        self.decisions, self.loops = list(decisions), list(loops)     # sentences: the ifs met, the loops' bodies

    def __str__(self):
        kind = ("adjoint program (reverse mode: each v_bar = dy/dv, from the last line up)" if self.mode == "reverse"
                else "tangent program (forward mode: each v_dot = dv/dx along the inputs' tangents x_dot)")
        out = [f"explain({self.name}) at {self.point}: value {self.value}",
               "forward program (each line ends with the line of your code it comes from):",
               *_section(self.forward)]
        if self.decisions:
            out += ["ifs on traced values, the way taken at this point (compile writes every way, and a dispatcher):",
                    *["  " + d for d in self.decisions]]
        for head, body in self.loops:
            out += [head, *_section(body)]
        if self.why:
            out.append(self.why)
        out += [kind + ":", *_section(self.derivative)]
        report = str(self.gradcheck).splitlines()
        out.append(f"gradcheck at this point: {report[0].removeprefix('gradcheck ')}")
        out += ["  " + line for line in report[1:]]
        out.append("inputs the output does not depend on: " + (", ".join(self.unused) if self.unused else "none"))
        out.append("non-finite values: " + (self.nonfinite or "none"))
        return "\n".join(out)

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, p, cycle):       # IPython's printout
        p.text(str(self))

    def _repr_html_(self):                   # Jupyter's
        return f"<pre>{html.escape(str(self))}</pre>"


def _section(lines):
    """The lines indented, their comments in one column, a long section cut in the middle."""
    if len(lines) > SHOWN:
        half = SHOWN // 2
        lines = lines[:half] + [f"... {len(lines) - 2 * half} lines left out ..."] + lines[-half:]
    split = [line.rsplit("  # ", 1) if "  # " in line else [line] for line in lines]
    width = min(60, max((len(s[0]) for s in split if len(s) == 2), default=0))
    return ["  " + (f"{s[0]:<{width}}  # {s[1]}" if len(s) == 2 else s[0]) for s in split]


def _point(program, args):
    parts = []
    for leaf, a in zip(program.inputs, args):
        parts.append(f"{leaf.name} = {float(a.reshape(())):g}" if a.size == 1 and a.ndim == 0
                     else f"{leaf.name}: {a.dtype} {a.shape}")
    return ", ".join(parts)


def _value(outputs):
    texts = [np.array2string(np.asarray(every_example(o.value)), precision=6, threshold=8) for o in outputs]
    return texts[0] if len(texts) == 1 else "(" + ", ".join(texts) + ")"


def _nonfinite(program, args, lines):
    """The first input or line (in program order) whose value is NaN or infinite, said in a sentence."""
    for leaf, a in zip(program.inputs, args):
        if not np.isfinite(a).all():
            return f"input {leaf.name} is not finite ({_count(a)})"
    line_of = {id(n): line for node, line, within in lines for n in within}
    for node in program.order:
        v = every_example(node.value)
        if node.op is None or not isinstance(v, np.ndarray) or v.dtype.kind not in "fc" or np.isfinite(v).all():
            continue
        line = line_of.get(id(node))
        where = f"`{line}`" if line is not None else f"a {node.op.name} node"
        return f"{where} made {_count(v)} ({node.op.name} of the values at this point)"
    return None


def _count(a):
    bad = a.size - int(np.isfinite(a).sum())
    kinds = [k for k, hit in (("nan", np.isnan(a).any()), ("inf", np.isposinf(a).any()),
                              ("-inf", np.isneginf(a).any())) if hit]
    return "/".join(kinds) + ("" if a.size == 1 else f" in {bad} of {a.size} entries")


def _arrays(args):
    arrays = []
    for i, a in enumerate(args):
        if not isinstance(a, (Tensor, np.ndarray, np.generic, int, float, list, tuple)) or isinstance(a, bool):
            raise TypeError(f"autodiff.explain: argument {i} must be a number or an array, got {type(a).__name__}")
        try:
            arrays.append(as_input(a, i))
        except (TypeError, ValueError) as exc:
            raise type(exc)(str(exc).replace("autodiff.compile", "autodiff.explain").splitlines()[0]) from None
    return arrays


def explain(f, *args) -> Explanation:
    """What ``autodiff.compile(f, *args)`` writes for f at ``args``, with a check of it: the forward and the
    adjoint (or tangent) program, each line with the line of the user's code it comes from; gradcheck's
    verdict there; the inputs the output does not depend on; the first non-finite value. ``print`` it, or
    leave it last in a notebook cell.

    >>> import autodiff as ad
    >>> report = ad.explain(lambda x: ad.sin(x) * x, 0.5)
    >>> [line.split("  #")[0] for line in report.derivative]       # each line ends with "# <file>:<line>"
    ['a_bar = y_bar * x', 'x_bar = y_bar * a + a_bar * cos(x)']
    """
    if not callable(f):
        raise TypeError(f"autodiff.explain: f must be a function, got {type(f).__name__}")
    if not args:
        raise TypeError("autodiff.explain(f, *args): give the arguments f is explained at")
    arrays = _arrays(args)
    with np.errstate(all="ignore"):       # a NaN or inf met is reported below, with the line that made it
        return _explain(f, arrays)


def _decisions(script):
    return [f"{located(d.where) if d.where else 'an if'}: {'true' if d.taken else 'false'}"
            for d in script.taken]


def _loops(program):
    """(heading, the body's lines) for each loop node of the program: its body is a program of its own."""
    out = []
    for node in program.order:
        spec = node.params.get("spec") if node.op is not None and node.op.name == "loop" else None
        if spec is not None:
            steps = f"{spec.length} steps" if spec.kind == "scan" else "steps counted at run time"
            lines = [line for _, line, _ in listing(spec.body.value.last.program)]
            out.append((f"a {spec.kind} loop ({steps}), its body compiled once:", lines))
    return out


def _explain(f, arrays):
    wrt = tuple(range(len(arrays)))
    script = Script()
    try:
        with planned(script):
            value = trace(f, arrays, "value", wrt)
    except CompileError as exc:
        raise CompileError(str(exc).replace("autodiff.compile", "autodiff.explain")) from None
    scalar = len(value.outputs) == 1 and value.outputs[0].size == 1
    mode = "reverse" if scalar else "forward"
    program = trace(f, arrays, mode, wrt)
    m = len(value.outputs)
    forward_ids = toposort([o for o in program.outputs[:m]])[1]
    lines = listing(program)
    why = None if scalar else (f"reverse mode needs f to return one scalar; it returns "
                               f"{', '.join(str(o.shape) for o in value.outputs)}: so, forward mode")
    used = toposort(list(value.outputs))[1]
    unused = [leaf.name for leaf in value.inputs if id(leaf) not in used]
    report = gradcheck(f, *arrays, raise_exception=False)
    return Explanation(value.name, _point(value, arrays), _value(value.outputs),
                       [line for node, line, _ in lines if id(node) in forward_ids], mode,
                       [line for node, line, _ in lines if id(node) not in forward_ids], why, report, unused,
                       _nonfinite(program, arrays, lines), _decisions(script), _loops(value))


__all__ = ["Explanation", "explain"]
