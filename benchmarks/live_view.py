"""What ``nn.LiveView`` costs: the source material's Keras MNIST CNN trained by ``nn.fit`` with and without it
(run by hand; issue 28's goal: under 5% of the step's time).

    python benchmarks/live_view.py               # one MNIST epoch (469 steps at batch 128), 2 runs of each
    python benchmarks/live_view.py --sample 256  # histograms of 256 images (default 64)
    python benchmarks/live_view.py --quick       # a smoke run: 24 steps, one run of each

The view draws off-screen (``mode="png"``: the same figure and PNG a notebook gets, without the kernel's
messages), with its defaults (a refresh at most every second while the view has taken under 2% of the
time, one at each epoch end) and a sample of 64 images for the activation histograms. The data
are random images of MNIST's shape (the time does not depend on their values). Both cases run in this
process, alternated, after a warm-up of each (Numba's kernels compiled, matplotlib imported).
Reported: ms per step (median and best over the runs), the ratio with / without (wall clock: on a busy
machine it moves by more than the view costs), the view's own time as a fraction of the run (measured
around its hooks, its start included: the figure the goal is held to), its refreshes and their mean cost,
its start (the figure made, the first histograms), and the CPU model.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "benchmarks"):      # the package before benchmarks/kernels.py; train_step beside
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import nn  # noqa: E402
from train_step import cpu_model  # noqa: E402  (benchmarks/train_step.py)

GOAL = 0.05


def run(model, optimizer, x, y, view):
    """One epoch of ``nn.fit``; its seconds."""
    start = time.perf_counter()
    nn.fit(model, (x, y), optimizer=optimizer, epochs=1, batch_size=128, seed=0, verbose=0,
           callbacks=[] if view is None else [view])
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 steps, one run of each (a smoke run)")
    parser.add_argument("--sample", type=int, default=64, help="images in the histograms' sample (default 64)")
    args = parser.parse_args(argv)
    if args.sample < 1:
        parser.error(f"--sample must be at least 1, got {args.sample}")
    steps, runs, sample = (24, 1, args.sample) if args.quick else (469, 2, args.sample)
    rng = np.random.default_rng(0)
    x = rng.random((steps * 128, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    nn.set_seed(0)
    model = nn.models.keras_mnist_cnn()
    optimizer = nn.optim.Adam(model.parameters())

    def view():
        return nn.LiveView(mode="png", sample=x[:sample])

    run(model, optimizer, x[:256], y[:256], None)                 # warm-up: kernels compiled
    run(model, optimizer, x[:256], y[:256], view())               # and matplotlib imported, a first figure
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores)")
    print(f"Keras MNIST CNN (34,826 parameters), nn.fit with Adam at batch 128: one epoch of {steps} steps, "
          f"{runs} run(s) of each, alternated")
    without, with_view, views = [], [], []
    for _ in range(runs):
        without.append(run(model, optimizer, x, y, None) / steps)
        views.append(view())
        with_view.append(run(model, optimizer, x, y, views[-1]) / steps)
    median = {name: sorted(t)[len(t) // 2] for name, t in (("without", without), ("with", with_view))}
    print(f"  without LiveView: median {1e3 * median['without']:.1f} ms per step, best {1e3 * min(without):.1f} ms")
    own = sum(v.seconds for v in views) / (sum(with_view) * steps)
    inside = [c for v in views for c, at in zip(v.refresh_seconds, v.refresh_at) if at != int(at)]
    ends = [c for v in views for c, at in zip(v.refresh_seconds, v.refresh_at) if at == int(at)]
    print(f"  with LiveView (png, off-screen; sample of {sample} images): median {1e3 * median['with']:.1f} ms per "
          f"step, best {1e3 * min(with_view):.1f} ms")
    print(f"  the view per run: {sum(v.seconds for v in views) / runs:.2f} s: its start "
          f"{1e3 * sum(v.setup_seconds for v in views) / runs:.0f} ms (the figure made and drawn, the first "
          f"histograms), {len(inside) / runs:.1f} refreshes inside the epoch ({1e3 * np.mean(inside or [0]):.0f} ms each), "
          f"one at its end ({1e3 * np.mean(ends):.0f} ms, with histograms)")
    print(f"  ratio with / without: median {median['with'] / median['without']:.3f}, best "
          f"{min(with_view) / min(without):.3f}")
    verdict = "--quick: too short to judge" if args.quick else "MET" if own < GOAL else "NOT MET"
    print(f"  the view's own time: {100 * own:.2f}% of the run (goal < {100 * GOAL:.0f}%: {verdict})")


if __name__ == "__main__":
    main()
