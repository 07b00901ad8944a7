"""The subcommands, one module per library they drive; each adds its parsers with ``add_to``.

- ``derivatives``: ``demo``, ``graph`` and ``check`` (autodiff);
- ``train``: ``train`` (nn);
- ``assignment``: ``assignment build`` and ``assignment grade`` (the exercises, graded with nbgrader).
"""
from . import assignment, derivatives, train

__all__ = ["assignment", "derivatives", "train"]
