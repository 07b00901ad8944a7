"""The autodiff subcommands: ``demo``, ``graph`` and ``check``.

- ``chainrule demo [--at X ...]``: eq. 5.36 of the source material differentiated by forward mode,
  reverse mode and SymPy (eq. 5.37), side by side.
- ``chainrule graph EXPR --at x=0.5 -o graph.svg [--steps]``: the expression's graph (eq. 5.38 form),
  its reverse trace table, and its picture with values and adjoints; ``--steps`` also writes one
  picture per node of the reverse sweep; ``--steps -o sweep.html`` writes the step-through player
  (``autodiff.player``): one self-contained page.
- ``chainrule check EXPR --at x=0.5``: the derivative by every method, side by side (``compare``);
  at a point with no finite derivative, or a kink exactly there, no method is the reference.

Expressions are parsed against a whitelist (``autodiff.expression``), never evaluated as Python.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

import autodiff as ad
from autodiff.examples import eq_5_36
from autodiff.expression import parse_assignments, parse_expression

MODES = ("reverse", "forward")   # the two sweeps a graph can be drawn for


def demo(points, out=None) -> int:
    """Print dy/dx of eq. 5.36 at each point by forward mode, reverse mode and SymPy."""
    import sympy   # here, not at the top: SymPy takes half a second to import, and only demo needs it

    out = out or sys.stdout
    x = ad.Tensor(points[0], requires_grad=True, name="x")
    y = eq_5_36(x)
    expr = ad.to_sympy(y)
    symbol = sympy.Symbol("x")     # to_sympy's symbols are plain
    derivative = sympy.diff(expr, symbol)
    n_ops = sum(1 for node in ad.toposort([y])[0] if node.op is not None)
    print(f"Eq. 5.36 of the source material, recorded as a graph of {n_ops} primitives (eq. 5.38):", file=out)
    print(f"  y     = {expr}", file=out)
    print(f"  dy/dx = {derivative}   (SymPy, eq. 5.37)", file=out)
    print(file=out)
    header = f"{'x':>8}  {'forward mode':>22}  {'reverse mode':>22}  {'SymPy (eq. 5.37)':>22}  {'max rel. diff':>13}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for p in points:
        _, forward = ad.jvp(eq_5_36, (p,), (1.0,))
        reverse = ad.grad(eq_5_36)(p)
        symbolic = float(derivative.evalf(30, subs={symbol: sympy.Float(p, 30)}))
        diff = max(abs(forward - symbolic), abs(reverse - symbolic)) / abs(symbolic)
        print(f"{p:8.3f}  {forward:22.16g}  {reverse:22.16g}  {symbolic:22.16g}  {diff:13.1e}", file=out)
    return 0


def _record(expr, at):
    """Parse EXPR over the variables of --at and evaluate it on named leaves: (f, values, leaves, output)."""
    values = parse_assignments(at)
    f = parse_expression(expr, list(values))
    leaves = [ad.Tensor(v, requires_grad=True, name=k) for k, v in values.items()]
    return f, values, leaves, f(*leaves)


def _direction(leaves, seed, mode):
    """The leaves forward mode seeds with 1: the variable ``seed`` (default: the first one)."""
    names = [leaf.name for leaf in leaves]
    if mode != "forward":
        if seed is not None:
            raise ValueError(f"--seed {seed} picks forward mode's direction; reverse mode seeds the output "
                             f"(add --mode forward)")
        return leaves
    name = names[0] if seed is None else seed
    if name not in names:
        raise ValueError(f"--seed: {name!r} is not a variable of --at (variables: {', '.join(names)})")
    return [leaves[names.index(name)]]


def graph(expr, at, output, steps=False, mode="reverse", out=None, seed=None) -> int:
    """Print the graph of EXPR as code and as a trace table; save its picture (and the steps).

    Forward mode pushes the tangents of one direction: d(seed) = 1 and the other variables' 0
    (``seed``: a variable's name; default the first variable, and the output says which).
    """
    out = out or sys.stdout
    with np.errstate(all="ignore"):   # NaN and inf are shown in the table; no NumPy warnings on stderr
        _, _, leaves, y = _record(expr, at)
        wrt = _direction(leaves, seed, mode)
        if not isinstance(y, ad.Tensor) or not y.requires_grad:
            print("chainrule graph: the expression does not depend on its variables", file=sys.stderr)
            return 2
        return _graph(y, leaves, wrt, output, steps, mode, out, seed)


def _graph(y, leaves, wrt, output, steps, mode, out, seed):
    print(ad.graph_code(y), file=out)
    print(file=out)
    if mode == "forward":
        others = [leaf.name for leaf in leaves if leaf is not wrt[0]]
        print(f"Forward mode along {wrt[0].name}: d{wrt[0].name} = 1" + "".join(f", d{n} = 0" for n in others)
              + ("" if seed is not None else " (the first variable; --seed NAME picks another)"), file=out)
    print(ad.trace_table(y, mode=mode, wrt=wrt), file=out)
    if Path(output).suffix.lower() in (".html", ".htm"):   # the step-through player, one self-contained page
        path = ad.draw_steps(y, mode=mode, wrt=wrt).save_html(output)
        print(f"\nsaved {path}: the {mode} sweep step by step (buttons, slider, arrow keys)", file=out)
        return 0
    show = ("value", "grad") if mode == "reverse" else ("value", "tangent")
    path = ad.save(ad.draw(y, show=show, names="letters", wrt=wrt), output)
    print(f"\nsaved {path}", file=out)
    if steps:
        folder = Path(output).with_suffix("")
        folder = folder.with_name(folder.name + "_steps")
        paths = ad.draw_steps(y, mode=mode, wrt=wrt).save(folder, format=Path(output).suffix.lstrip(".") or "svg")
        print(f"saved {len(paths)} step pictures in {folder}/", file=out)
    return 0


def check(expr, at, out=None) -> int:
    """Print the derivative of EXPR at the point by every method (``autodiff.compare``): one column per
    variable's partial derivative; NaN or inf values, points where SymPy has no finite value, and
    kinks are said so under the table. Where no finite derivative exists (sqrt, log or 1/x at 0) or a
    kink lies exactly at the point (abs at 0: the one-sided derivatives differ), no method is the
    reference and no errors are given, and a sentence under the table says why."""
    out = out or sys.stdout
    with np.errstate(all="ignore"):   # NaN and inf are reported in the table, not as NumPy warnings
        f, values, _, y = _record(expr, at)
        if not isinstance(y, ad.Tensor) or not y.requires_grad:
            print("chainrule check: the expression does not depend on its variables", file=sys.stderr)
            return 2
        table = ad.compare(f, *values.values(), names=list(values))
        print(_honest(table, f, values), file=out)
    return 0


# --- what the table cannot say by itself: a point with no finite derivative, a kink exactly at the point ------

def _point(values) -> str:
    return ", ".join(f"{name}={value:g}" for name, value in values.items())


def _num(value) -> str:
    return ", ".join(f"{v:.6g}" for v in np.ravel(np.asarray(value, dtype=np.float64)))


def _honest(table, f, values):
    """``compare``'s table, with the reference withdrawn where no finite derivative exists (the complex
    step would otherwise be the reference, its Im f(x + ih) / h a number made by its step: 0.5 / sqrt(h)
    for sqrt at 0) and a sentence for a kink exactly at the point (the one-sided derivatives differ)."""
    rows = {r["method"]: r for r in table.rows}
    unmeasured = [{**r, "abs err": "-", "rel err": "-"} for r in table.rows]
    if (singular := _no_finite_derivative(table, rows, f, values)) is not None:
        return dataclasses.replace(table, reference="none (no finite derivative here)", rows=unmeasured,
                                   notes=[n for n in table.notes if not n.startswith("Not finite")] + [singular])
    if kinks := _kink_sentences(f, values, rows):
        return dataclasses.replace(table, reference="none (no derivative at a kink)", rows=unmeasured,
                                   notes=table.notes + kinks)
    return table


#: The table's methods in words, for the sentences under it.
_SAID = {"reverse mode": "reverse mode", "forward mode": "forward mode", "SymPy": "SymPy",
         "numerical, forward": "the forward difference", "numerical, backward": "the backward difference",
         "numerical, central": "the central difference", "numerical, complex": "the complex step"}


def _listed(parts) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _no_finite_derivative(table, rows, f, values):
    """The sentence for a point where f's derivative is not a finite real number, or None. SymPy decides
    where it can (its "no finite real value": zoo, a complex value, nan); without SymPy, a value of f or
    a derivative by reverse mode that is NaN or infinite does."""
    sympy_row = rows["SymPy"]
    sympy_says = sympy_row["value"] is None and sympy_row["note"].startswith("no finite real value")
    value = np.asarray(ad.value_of(f(*values.values())), dtype=np.float64)
    reverse = np.asarray(rows["reverse mode"]["value"], dtype=np.float64)
    finite = bool(np.all(np.isfinite(value)) and np.all(np.isfinite(reverse)))
    if not sympy_says and (sympy_row["value"] is not None or finite):
        return None
    evidence = [f"f = {_num(value)}"] if not np.all(np.isfinite(value)) else []
    if not np.all(np.isfinite(reverse)):
        evidence.append(f"reverse mode: {_num(reverse)}")
    if sympy_says:
        evidence.append("SymPy: " + sympy_row["note"].partition("(")[2].rstrip(")"))
    made_up = [f"{_SAID[r['method']]}'s {_num(r['value'])}" for r in table.rows if r["method"].startswith("numerical")
               and r["value"] is not None and np.all(np.isfinite(r["value"]))]
    return (f"No finite derivative at {_point(values)} ({'; '.join(evidence)}): no method is the reference and "
            f"no errors are given" + (f"; {_listed(made_up)} come{'s' if len(made_up) == 1 else ''} from "
                                      f"{'its step' if len(made_up) == 1 else 'their steps'}, not from a derivative"
                                      if made_up else "") + ".")


def _at_a_kink(f, values) -> bool:
    """Whether an input of a non-differentiable primitive (abs, relu, maximum...) is exactly at its kink."""
    y = f(*(ad.Tensor(v, requires_grad=True) for v in values.values()))
    for node in ad.toposort([y])[0]:
        inputs = [np.asarray(ad.value_of(i), dtype=np.float64) for i in node.inputs]
        if node.op is not None and any(np.any(np.asarray(kink(*inputs, **node.params)) == 0)
                                       for kink in node.op.kinks):
            return True
    return False


def _one_sided(f, values, k, h):
    """The backward and forward difference quotients of f along the k-th variable with step h."""
    def at(shift):
        args = [v + shift * (j == k) for j, v in enumerate(values.values())]
        return float(np.asarray(ad.value_of(f(*args)), dtype=np.float64))
    return (at(0) - at(-h)) / h, (at(h) - at(0)) / h


def _kink_sentences(f, values, rows):
    """One sentence per variable along which f's one-sided derivatives differ at a kink exactly at the
    point: there no derivative exists, and each method's value is its own choice. The one-sided
    quotients are taken with two steps: at a kink their gap stays; for a smooth f it shrinks with the step."""
    if not _at_a_kink(f, values):
        return []
    sentences = []
    for k, name in enumerate(values):
        h = 1e-6 * max(1.0, abs(list(values.values())[k]))
        (left, right), (left4, right4) = _one_sided(f, values, k, h), _one_sided(f, values, k, h / 4)
        gap, gap4 = abs(right - left), abs(right4 - left4)
        if not (np.isfinite(gap4) and gap4 > 1e-6 * max(1.0, abs(left4), abs(right4)) and gap4 > gap / 2):
            continue
        chosen = _listed([f"{_SAID[m]} {_num(np.ravel(rows[m]['value'])[k])}"
                          for m in ("reverse mode", "SymPy", "numerical, central") if rows[m]["value"] is not None])
        sentences.append(f"At {_point(values)} f has a kink along {name}: its one-sided derivatives differ "
                         f"(from the left {left4:.6g}, from the right {right4:.6g}), so d/d{name} does not exist "
                         f"there; each value above is one method's choice ({chosen}), none of them a derivative.")
    return sentences


def add_to(sub) -> None:
    """Add ``demo``, ``graph`` and ``check`` to the subparsers ``sub``; each sets ``run(args) -> int``."""
    p_demo = sub.add_parser("demo", help="differentiate the source material's eq. 5.36 three ways")
    p_demo.add_argument("--at", type=float, nargs="+", default=[-1.0, 0.0, 0.5, 1.0, 2.0], metavar="X",
                        help="points at which to differentiate (default: -1 0 0.5 1 2)")
    p_demo.set_defaults(run=lambda args: demo(args.at))
    p_graph = sub.add_parser("graph", help="draw an expression's graph with values and adjoints")
    p_graph.add_argument("expression", help='e.g. "exp(sin(x) + sin(x)**2) + sin(exp(x) + exp(x)**2)"')
    p_graph.add_argument("--at", nargs="+", action="extend", required=True, metavar="NAME=VALUE",
                         help="the point, e.g. x=0.5 (or --at x=0.5 --at y=2)")
    p_graph.add_argument("-o", "--output", default="graph.svg",
                         help="picture to write (.svg, .png or .dot), or .html: the step-through player")
    p_graph.add_argument("--steps", action="store_true", help="also write one picture per step of the sweep "
                         "(with -o NAME.html: the player that steps through them, one self-contained page)")
    p_graph.add_argument("--mode", choices=MODES, default="reverse")
    p_graph.add_argument("--seed", metavar="NAME", help="forward mode's direction: the variable seeded with 1 "
                         "(default: the first)")
    p_graph.set_defaults(run=lambda args: graph(args.expression, args.at, args.output, args.steps, args.mode,
                                                seed=args.seed))
    p_check = sub.add_parser("check", help="an expression's derivative by every method, side by side")
    p_check.add_argument("expression")
    p_check.add_argument("--at", nargs="+", action="extend", required=True, metavar="NAME=VALUE")
    p_check.set_defaults(run=lambda args: check(args.expression, args.at))
