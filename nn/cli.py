"""The ``chainrule`` command line.

- ``chainrule demo [--at X ...]``: eq. 5.36 of the source material differentiated by forward mode,
  reverse mode and SymPy (eq. 5.37), side by side.
- ``chainrule graph EXPR --at x=0.5 -o graph.svg [--steps]``: the expression's graph (eq. 5.38 form),
  its reverse trace table, and its picture with values and adjoints; ``--steps`` also writes one
  picture per node of the reverse sweep.
- ``chainrule check EXPR --at x=0.5``: the derivative by every method, side by side (``compare``).
- ``chainrule train --model digits-cnn --dataset digits --epochs 10 --optimizer adam``: trains a model
  from ``nn.models`` (``--dataset mnist --data-dir PATH`` for MNIST IDX files), printing the summary,
  the progress and the final test accuracy, and saves the weights (``.npz`` + ``.json``) and a
  loss/accuracy plot (``.svg``) in ``--output`` (default ``runs/<model>``).

Expressions are parsed against a whitelist (``autodiff.expression``), never evaluated as Python.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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


def _record(expr, at):
    """Parse EXPR over the variables of --at and evaluate it on named leaves: (leaves, output)."""
    import autodiff as ad
    from autodiff.expression import parse_assignments, parse_expression

    values = parse_assignments(at)
    f = parse_expression(expr, list(values))
    leaves = [ad.Tensor(v, requires_grad=True, name=k) for k, v in values.items()]
    return f, values, leaves, f(*leaves)


def graph(expr, at, output, steps=False, mode="reverse", out=None) -> int:
    """Print the graph of EXPR as code and as a trace table; save its picture (and the steps)."""
    import autodiff as ad

    out = out or sys.stdout
    _, _, leaves, y = _record(expr, at)
    if not isinstance(y, ad.Tensor) or not y.requires_grad:
        print("chainrule graph: the expression does not depend on its variables", file=sys.stderr)
        return 2
    print(ad.graph_code(y), file=out)
    print(file=out)
    print(ad.trace_table(y, mode=mode, wrt=leaves), file=out)
    show = ("value", "grad") if mode == "reverse" else ("value", "tangent")
    path = ad.save(ad.draw(y, show=show, names="letters", wrt=leaves), output)
    print(f"\nsaved {path}", file=out)
    if steps:
        folder = Path(output).with_suffix("")
        folder = folder.with_name(folder.name + "_steps")
        paths = ad.draw_steps(y, mode=mode, wrt=leaves).save(folder, format=Path(output).suffix.lstrip(".") or "svg")
        print(f"saved {len(paths)} step pictures in {folder}/", file=out)
    return 0


def check(expr, at, out=None) -> int:
    """Print the derivative of EXPR at the point by every method (``autodiff.compare``)."""
    import autodiff as ad

    out = out or sys.stdout
    f, values, _, _ = _record(expr, at)
    print(ad.compare(f, *values.values()), file=out)
    return 0


def _dataset(name, data_dir, seed, out):
    """(train, validation, test) pairs of the dataset, split with ``seed``; a line saying how."""
    from nn import data, datasets

    if name == "digits":
        x, y = datasets.load_digits()
        how = "the 8x8 digits (1,797 images)"
    else:
        if data_dir is None:
            raise ValueError("--dataset mnist needs --data-dir PATH (a folder with the MNIST IDX files)")
        try:
            (x, y), (xt, yt) = datasets.load_mnist(data_dir, "train"), datasets.load_mnist(data_dir, "test")
        except FileNotFoundError:   # only the 10,000-image test set: split it 8,000 / 2,000
            x, y = datasets.load_mnist(data_dir, "test")
            how = f"the MNIST test set of {data_dir} ({len(x):,} images; no training files there)"
        else:
            xtr, xv, ytr, yv = data.train_test_split(x, y, test_size=0.1, seed=seed, stratify=True)
            print(f"Data: MNIST from {data_dir}: {len(xtr):,} train, {len(xv):,} validation, {len(xt):,} test",
                  file=out)
            return (xtr, ytr), (xv, yv), (xt, yt)
    if name == "mnist":     # of 10,000: 8,000 to learn from (7,200 train + 800 validation), 2,000 to test
        xtr, xv, xt, ytr, yv, yt = data.train_val_test_split(x, y, val_size=0.08, test_size=0.2, seed=seed,
                                                             stratify=True)
    else:
        xtr, xv, xt, ytr, yv, yt = data.train_val_test_split(x, y, val_size=0.1, test_size=0.2, seed=seed,
                                                             stratify=True)
    print(f"Data: {how}, split (seed {seed}) into {len(xtr):,} train, {len(xv):,} validation and "
          f"{len(xt):,} held-out test images", file=out)
    return (xtr, ytr), (xv, yv), (xt, yt)


def train(args, out=None) -> int:
    """Train a model from nn.models, report the held-out test accuracy, save weights and a plot."""
    import nn
    from nn.plot import save_history_svg

    out = out or sys.stdout
    nn.set_seed(args.seed)
    train_set, val_set, test_set = _dataset(args.dataset, args.data_dir, args.seed, out)
    model = nn.models.MODELS[args.model](input_shape=train_set[0].shape[1:])
    model.summary(file=out)
    optimizer = nn.optim.get(args.optimizer, model.parameters(), **({} if args.lr is None else {"lr": args.lr}))
    print(f"Training {args.model} with {optimizer} for {args.epochs} epochs, batch {args.batch_size}, "
          f"backend {args.backend}", file=out)
    history = nn.fit(model, train_set, loss="sparse_categorical_crossentropy", optimizer=optimizer,
                     epochs=args.epochs, batch_size=args.batch_size, validation=val_set, backend=args.backend,
                     seed=args.seed, verbose=1, file=out)
    test = nn.evaluate(model, test_set, loss="sparse_categorical_crossentropy", backend=args.backend)
    print(f"Test accuracy: {test['accuracy']:.4f} ({len(test_set[0]):,} held-out images), "
          f"test loss {test['loss']:.4f}", file=out)
    folder = Path(args.output or Path("runs") / args.model)
    paths = nn.save(model, folder / "model", metadata={"model": args.model, "dataset": args.dataset,
                                                        "epochs": args.epochs, "test_accuracy": test["accuracy"],
                                                        "seed": args.seed})
    plot = save_history_svg(history, folder / "history.svg")
    print(f"Saved {paths[0]}, {paths[1]} and {plot}", file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chainrule", description="A teaching toolkit for differentiation and CNN training.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="differentiate the source material's eq. 5.36 three ways")
    p_demo.add_argument("--at", type=float, nargs="+", default=[-1.0, 0.0, 0.5, 1.0, 2.0], metavar="X",
                        help="points at which to differentiate (default: -1 0 0.5 1 2)")
    p_graph = sub.add_parser("graph", help="draw an expression's graph with values and adjoints")
    p_graph.add_argument("expression", help='e.g. "exp(sin(x) + sin(x)**2) + sin(exp(x) + exp(x)**2)"')
    p_graph.add_argument("--at", nargs="+", required=True, metavar="NAME=VALUE", help="the point, e.g. x=0.5")
    p_graph.add_argument("-o", "--output", default="graph.svg", help="picture to write (.svg, .png or .dot)")
    p_graph.add_argument("--steps", action="store_true", help="also write one picture per step of the sweep")
    p_graph.add_argument("--mode", choices=["reverse", "forward"], default="reverse")
    p_check = sub.add_parser("check", help="an expression's derivative by every method, side by side")
    p_check.add_argument("expression")
    p_check.add_argument("--at", nargs="+", required=True, metavar="NAME=VALUE")
    p_train = sub.add_parser("train", help="train a CNN (the main job): summary, progress, test accuracy, saved weights")
    p_train.add_argument("--model", default="digits-cnn",
                         choices=["digits-cnn", "keras-mnist-cnn", "keras-mnist-mlp", "lenet5", "resnet-small"])
    p_train.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    p_train.add_argument("--data-dir", help="folder with the MNIST IDX files (gzip or raw), for --dataset mnist")
    p_train.add_argument("--epochs", type=int, default=10)
    p_train.add_argument("--batch-size", type=int, default=32)
    p_train.add_argument("--optimizer", default="adam", choices=["sgd", "adagrad", "adadelta", "rmsprop", "adam",
                                                                 "adamw"])
    p_train.add_argument("--lr", type=float, help="learning rate (default: the optimiser's, as torch.optim)")
    p_train.add_argument("--backend", choices=["cpu", "numpy", "cuda"], default="cpu")
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument("--output", help="folder for model.npz, model.json and history.svg (default runs/MODEL)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from autodiff.draw import GraphvizNotFound
    from autodiff.expression import ExpressionError
    from kernels import BackendUnavailable

    try:
        if args.command == "demo":
            return demo(args.at)
        if args.command == "graph":
            return graph(args.expression, args.at, args.output, args.steps, args.mode)
        if args.command == "check":
            return check(args.expression, args.at)
        if args.command == "train":
            return train(args)
    except ExpressionError as exc:
        print(f"chainrule {args.command}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, GraphvizNotFound, BackendUnavailable) as exc:
        print(f"chainrule {args.command}: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.command)  # argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
