"""The ``chainrule`` command line.

``chainrule demo [--at X ...]``: eq. 5.36 of the source material differentiated by forward mode,
reverse mode and SymPy (eq. 5.37), side by side.
"""
from __future__ import annotations

import argparse
import sys


def demo(points, out=None) -> int:
    """Print dy/dx of eq. 5.36 at each point by forward mode, reverse mode and SymPy."""
    out = out or sys.stdout
    import sympy

    import autodiff as ad
    from autodiff.examples import eq_5_36

    x = ad.Tensor(points[0], requires_grad=True, name="x")
    y = eq_5_36(x)
    expr = ad.to_sympy(y)
    symbol = sympy.Symbol("x", real=True)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chainrule", description="A teaching toolkit for differentiation and CNN training.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="differentiate the source material's eq. 5.36 three ways")
    p_demo.add_argument("--at", type=float, nargs="+", default=[-1.0, 0.0, 0.5, 1.0, 2.0], metavar="X",
                        help="points at which to differentiate (default: -1 0 0.5 1 2)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return demo(args.at)
    raise AssertionError(args.command)  # argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
