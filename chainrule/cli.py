"""The ``chainrule`` command line: one parser, the subcommands of ``chainrule.commands``.

``main(argv)`` returns the exit status: 0 on success, 2 for an expression the whitelist refuses
(or one that does not depend on its variables), 1 for any other error the user can fix (a missing
file or program, a bad value, a backend this machine lacks); the message goes to stderr.
"""
from __future__ import annotations

import argparse
import sys

from autodiff.draw import GraphvizNotFound
from autodiff.expression import ExpressionError
from kernels import BackendUnavailable

from .commands import derivatives, train


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; ``parse_args(...).run(args)`` runs the chosen one."""
    parser = argparse.ArgumentParser(prog="chainrule", description="A teaching toolkit for differentiation and CNN training.")
    sub = parser.add_subparsers(dest="command", required=True)
    derivatives.add_to(sub)
    train.add_to(sub)
    return parser


def main(argv=None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ExpressionError as exc:
        print(f"chainrule {args.command}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, GraphvizNotFound, BackendUnavailable) as exc:
        print(f"chainrule {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
