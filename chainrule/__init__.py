"""chainrule: the command line of the toolkit, on top of its three import packages.

``autodiff`` (the teaching engine), ``kernels`` (compute) and ``nn`` (the CNN stack) are the
libraries; this package only parses a command and calls them. Each subcommand sits next to what
it drives: ``chainrule.commands.derivatives`` (``demo``, ``graph``, ``check``: autodiff) and
``chainrule.commands.train`` (``train``: nn). ``chainrule.cli.main`` is the ``chainrule`` script,
and ``python -m chainrule`` runs it too. Beside the command line, for the lessons in
``tutorials/``: ``chainrule.exercises`` (their exercises and checkers, importable from anywhere
once the package is installed; answers in ``chainrule.exercises.solutions``) and
``chainrule.lessons`` (a result shown inline in a notebook, printed in a script).

>>> import chainrule
>>> chainrule.__version__ == importlib.metadata.version("chainrule")
True
"""
import importlib.metadata

try:
    __version__ = importlib.metadata.version("chainrule")
except importlib.metadata.PackageNotFoundError:   # run from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
