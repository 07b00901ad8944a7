"""The ``chainrule`` command line: one parser, the subcommands of ``chainrule.commands``.

``main(argv)`` returns the exit status: 0 on success, 2 for any error, with one line on stderr
that names the problem: a command line argparse refuses, an expression the whitelist refuses, a
missing or hostile file, a bad value, a missing program, a backend this machine lacks. No Python
traceback reaches the user: an error nobody foresaw is reported on one line too, as a bug.
"""
from __future__ import annotations

import argparse
import sys

from autodiff.draw import GraphvizNotFound
from autodiff.expression import ExpressionError
from kernels import BackendUnavailable
from nn.schema import ModelFileError

from .commands import assignment, derivatives, train


class UsageError(Exception):
    """A command line the parser refuses (argparse's message, without its usage block)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a refused command line raises UsageError instead of printing and exiting."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


#: The errors a user can fix, each reported as one line (the rest are bugs, reported as such).
USER_ERRORS = (ValueError, OSError, GraphvizNotFound, BackendUnavailable, ModelFileError)


def _one_line(text) -> str:
    return " ".join(str(text).split())


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; ``parse_args(...).run(args)`` runs the chosen one."""
    parser = _Parser(prog="chainrule", description="A teaching toolkit for differentiation and CNN training.")
    sub = parser.add_subparsers(dest="command", required=True)
    derivatives.add_to(sub)
    train.add_to(sub)
    assignment.add_to(sub)
    return parser


def main(argv=None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit status
    (``--help`` prints and exits 0, as argparse does)."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(_one_line(exc), file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except ExpressionError as exc:
        print(f"chainrule {args.command}: {_one_line(exc.one_line())}", file=sys.stderr)
    except USER_ERRORS as exc:
        print(f"chainrule {args.command}: {_one_line(exc)}", file=sys.stderr)
    except RecursionError:
        print(f"chainrule {args.command}: the input nests too deeply to process", file=sys.stderr)
    except Exception as exc:   # a bug: still one line, never a traceback
        print(f"chainrule {args.command}: internal error ({type(exc).__name__}: {_one_line(exc)}); "
              f"this is a bug, please report it", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
