"""A training History's loss/accuracy curves: a matplotlib figure where matplotlib is installed, and
a small self-contained SVG that needs no plotting library.

``history_figure(history)`` (``History.plot()``; in Jupyter a History shows it as a PNG) draws two
panels, loss (and val_loss) and accuracy (and val_accuracy) per epoch, with matplotlib's own round
ticks, its 5% margins, integer epochs and a marker per epoch, so that a single epoch shows. Without
matplotlib, ``history_svg`` draws the same panels by hand: Heckbert's round ticks (``nice_ticks``),
curves inset from the frame on every side, a point per epoch and a legend; ``chainrule train`` and
``save_history_svg`` write it, so the command line and CI draw the curves anywhere, and a History
shows it in Jupyter when matplotlib is missing.

>>> svg = history_svg({"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.6, 0.4],
...                    "accuracy": [0.5, 0.8, 0.9], "val_accuracy": [0.45, 0.75, 0.85]})
>>> svg.startswith("<svg") and svg.count("<polyline") == 4
True
"""
from __future__ import annotations

import importlib.util
import io
import math
from html import escape
from pathlib import Path
__all__ = ["history_figure", "history_png", "HAS_MATPLOTLIB", "history_svg", "save_history_svg", "nice_ticks"]

#: Whether matplotlib is installed (then ``History.plot()`` works and Jupyter shows a PNG).
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
#: The two panels: a title and the History keys it plots.
PANELS = (("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy")))

_COLOURS = {"train": "#1f77b4", "val": "#d62728"}


def nice_ticks(lo, hi, count=6):
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi] with about ``count``
    ticks (Heckbert's "nice numbers"); the axis then runs from the first tick to the last.

    >>> nice_ticks(0.0863, 0.532)
    [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    >>> nice_ticks(0.97, 0.97)
    [0.9, 0.95, 1.0, 1.05]
    """
    if hi == lo:
        lo, hi = lo - max(abs(lo) * 0.05, 0.05), hi + max(abs(hi) * 0.05, 0.05)
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return [round(k * step, digits) for k in range(first, last + 1)]


def _panel(x0, title, series, width=360, height=260, legend_at_bottom=False):
    """One panel at horizontal offset x0: {label: values} drawn as polylines over epochs 1..n; the
    legend sits in the corner the curves leave free (top right for losses, bottom right for accuracy)."""
    left, right, top, bottom = 50, 15, 30, 40
    w, h = width - left - right, height - top - bottom
    values = [v for ys in series.values() for v in ys]
    margin = 0.05 * (max(values) - min(values))  # as matplotlib's: no curve on the top or bottom edge
    ticks = nice_ticks(min(values) - margin, max(values) + margin)
    lo, hi = ticks[0], ticks[-1]
    n = max(len(ys) for ys in series.values())
    inset = 12                                  # the curves keep off the frame's sides

    def px(i):
        return x0 + left + inset + ((w - 2 * inset) * i / (n - 1) if n > 1 else (w - 2 * inset) / 2)

    def py(v):
        return top + h - h * (v - lo) / (hi - lo)

    parts = [f'<text x="{x0 + left + w / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
             f'<rect x="{x0 + left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#444"/>']
    for v in ticks:
        parts.append(f'<line x1="{x0 + left - 4}" x2="{x0 + left}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#444"/>'
                     f'<text x="{x0 + left - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    for i in range(n):
        if n <= 10 or i % max(1, n // 10) == 0 or i == n - 1:
            parts.append(f'<text x="{px(i):.1f}" y="{top + h + 16}" text-anchor="middle">{i + 1}</text>')
    parts.append(f'<text x="{x0 + left + w / 2}" y="{top + h + 34}" text-anchor="middle">epoch</text>')
    for k, (label, ys) in enumerate(series.items()):
        colour = _COLOURS["val" if label.startswith("val") else "train"]
        points = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(ys))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if n <= 30:                             # points too, so a single epoch shows
            parts += [f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}"/>' for i, v in enumerate(ys)]
        ly = (top + h - 8 - 16 * (len(series) - 1 - k)) if legend_at_bottom else (top + 14 + 16 * k)
        parts.append(f'<line x1="{x0 + left + w - 115}" x2="{x0 + left + w - 95}" y1="{ly - 4}" y2="{ly - 4}" '
                     f'stroke="{colour}" stroke-width="2"/><text x="{x0 + left + w - 90}" y="{ly}">{escape(label)}</text>')
    return parts


def _panels(history, what):
    """[(title, {key: values})] of the panels that have data; a clear error when none has."""
    data = getattr(history, "history", history)
    panels = [(title, {k: list(map(float, data[k])) for k in keys if k in data and len(data[k])})
              for title, keys in PANELS]
    panels = [(title, series) for title, series in panels if series]
    if not panels:
        raise ValueError(f"{what}: nothing to plot; the history has {sorted(data)}")
    return panels


def history_figure(history):
    """A matplotlib ``Figure`` of the History (or a dict of per-epoch lists): a panel for the loss
    and one for the accuracy, train and validation curves with a marker per epoch. Made without
    pyplot (no global state); in Jupyter a Figure shows inline, elsewhere ``fig.savefig(path)``."""
    if not HAS_MATPLOTLIB:
        raise ImportError("History.plot() needs matplotlib (pip install matplotlib); without it "
                          "nn.plot.save_history_svg(history, path) draws the curves as SVG")
    panels = _panels(history, "History.plot")
    from matplotlib.figure import Figure        # here: matplotlib is optional, and 0.3 s to import
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(4.8 * len(panels), 3.6), layout="constrained")
    for ax, (title, series) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        for label, ys in series.items():
            ax.plot(range(1, len(ys) + 1), ys, marker="o", markersize=4, label=label,
                    color=_COLOURS["val" if label.startswith("val") else "train"])
        ax.set(title=title, xlabel="epoch")
        n = max(len(ys) for ys in series.values())
        pad = max(0.5, 0.05 * (n - 1))          # matplotlib's 5% margin, at least half an epoch
        ax.set_xlim(1 - pad, n + pad)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))   # whole epochs
        ax.margins(y=0.05)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if title == "accuracy" else "upper right")
    return figure


def history_png(history) -> bytes:
    """:func:`history_figure` as PNG bytes (what Jupyter shows for a History)."""
    buffer = io.BytesIO()
    history_figure(history).savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def history_svg(history) -> str:
    """The SVG text for a History (or a dict of per-epoch lists), drawn without a plotting library."""
    panels = _panels(history, "history_svg")
    width = 360 * len(panels)
    body = []
    for k, (title, series) in enumerate(panels):
        body += _panel(360 * k, title, series, legend_at_bottom=title == "accuracy")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="260" font-family="sans-serif" '
            f'font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


def save_history_svg(history, path):
    """Write :func:`history_svg` to ``path``."""
    Path(path).write_text(history_svg(history))
    return str(path)
