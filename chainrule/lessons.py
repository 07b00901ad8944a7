"""What the lessons in ``tutorials/`` share: show a result inline in a notebook, print it in a script.

A lesson is a Jupytext script that also runs as a notebook. Run as a script it writes its pictures
to files and prints its tables; run as a notebook (a Jupyter kernel) the same calls also show the
pictures, tables and figures inline, where the prose talks about them.

- ``show(obj)``: a table or report, inline (HTML) in a notebook, printed in a script.
- ``show_picture(graph, path)``: a graph picture saved with ``dot`` and shown inline; without
  ``dot`` the lesson goes on, saying what it skipped (the notebook shows the graph as text).
- ``show_steps(steps, folder)``: a sweep's pictures saved, its step-through player (one HTML
  file) saved and shown inline.
- ``show_figure(fig, path)``: a matplotlib figure saved, shown inline (PNG) and closed.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

from autodiff import GraphvizNotFound, save
from autodiff.draw import INSTALL_DOT


def in_notebook() -> bool:
    """True when running in a Jupyter kernel (the lesson opened as a notebook)."""
    return "ipykernel" in sys.modules


def _display(obj):
    from IPython.display import display   # IPython is there whenever a kernel is

    display(obj)


def show(obj):
    """``obj`` inline in a notebook (its rich view: HTML for tables), printed in a script."""
    if in_notebook():
        _display(obj)
    else:
        print(obj)


def _skipped(path):
    print(f"skipped {Path(path).name} (no picture without Graphviz: {INSTALL_DOT})")


def show_picture(graph, path):
    """Save ``graph`` (``ad.draw``'s picture) to ``path`` and show it inline in a notebook. Without
    ``dot``: prints what was skipped and how to install Graphviz, and returns None."""
    try:
        written = save(graph, path)
        print("wrote", written)
    except GraphvizNotFound:
        _skipped(path)
        written = None
    if in_notebook():
        _display(graph)   # a Picture: the SVG, or the graph as text when `dot` is missing
    return written


def show_steps(steps, folder):
    """Save a sweep's pictures (``ad.draw_steps``) to ``folder`` and its player to
    ``folder.html``; show the player inline in a notebook. Returns the player's path (None
    without ``dot``, after saying what was skipped)."""
    folder = Path(folder)
    page = folder.with_name(folder.name + ".html")
    try:
        paths = steps.save(folder)
        steps.save_html(page)
        print(f"wrote {len(paths)} pictures to {folder} and the step-through player {page}")
    except GraphvizNotFound:
        _skipped(page)
        page = None
    if in_notebook():
        _display(steps)   # the player: buttons, slider, arrow keys
    return page


def show_figure(fig, path):
    """Save ``fig`` to ``path``, show it inline in a notebook (as PNG, whatever the backend), close it."""
    import matplotlib.pyplot as plt   # matplotlib is the tutorials' dependency, not the package's

    fig.savefig(path)
    if in_notebook():
        from IPython.display import Image

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        _display(Image(data=buffer.getvalue(), format="png"))
    plt.close(fig)
    return path

