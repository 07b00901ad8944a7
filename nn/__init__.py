"""nn: the CNN stack of the chainrule toolkit (layers, losses, optimisers, training loop).

Being built; for now this package holds the ``chainrule`` command line (:mod:`nn.cli`).
"""
