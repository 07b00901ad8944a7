"""The subcommands, one module per library they drive; each adds its parsers with ``add_to``.

- ``derivatives``: ``demo``, ``graph`` and ``check`` (autodiff);
- ``train``: ``train`` (nn).
"""
from . import derivatives, train

__all__ = ["derivatives", "train"]
