"""Benchmarks for autodiff's function transformations: one section each, every number taken in this run.

Run from the repository root::

    python benchmarks/transforms.py                  # full sizes, well under a minute
    python benchmarks/transforms.py --quick          # tiny sizes, a smoke test (tests/test_benchmarks.py)
    python benchmarks/transforms.py --only checkpoint

checkpoint: a deep MLP's forward and backward with and without ``ad.checkpoint`` around each layer.
Memory is tracemalloc's peak over the forward and backward pass (NumPy reports its arrays to
tracemalloc), above what was held before it (parameters, input; the gradients count); time is the best of a few
runs without tracemalloc. Checkpointing keeps one array per layer instead of every intermediate,
and pays one more forward pass in the backward one; the gradients are checked bit for bit.

A new section is a function ``section(quick)`` that prints its lines, added to ``SECTIONS``.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "benchmarks"):
    if str(path) not in sys.path:  # run from a checkout without installing the package
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402

import autodiff as ad  # noqa: E402
from train_step import cpu_flags, cpu_model  # noqa: E402  (benchmarks/train_step.py)

MB = 2 ** 20


# --- checkpoint -----------------------------------------------------------------------------------

CHECKPOINT_FULL = dict(layers=32, width=256, batch=256, repeats=5)
CHECKPOINT_QUICK = dict(layers=4, width=32, batch=16, repeats=2)


def _layer(h, w, b):
    """One MLP layer: three arrays of (batch, width) recorded (h @ w, + b, tanh) when not checkpointed."""
    return ad.tanh(h @ w + b)


def _mlp_gradients(leaves, x, remat):
    """Forward and backward of the mean squared output; the parameters' gradients (fresh ones)."""
    for p in leaves:
        p.zero_grad()
    step = ad.checkpoint(_layer) if remat else _layer
    h = x
    for w, b in zip(leaves[0::2], leaves[1::2]):
        h = step(h, w, b)
    ad.mean(h ** 2).backward()
    return [p.grad for p in leaves]


def _peak_mb(fn):
    """tracemalloc's peak while ``fn`` runs, above the memory held when it starts, in MB."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return (tracemalloc.get_traced_memory()[1] - base) / MB
    finally:
        tracemalloc.stop()


def _best_ms(fn, repeats):
    fn()   # warm-up
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def checkpoint_section(quick):
    """Peak memory and time of a deep MLP's backward, each layer checkpointed or not."""
    c = CHECKPOINT_QUICK if quick else CHECKPOINT_FULL
    rng = np.random.default_rng(0)
    scale = 1 / np.sqrt(c["width"])
    params = [p for _ in range(c["layers"])
              for p in (rng.normal(0.0, scale, (c["width"], c["width"])), rng.normal(0.0, 0.1, c["width"]))]
    x = rng.normal(size=(c["batch"], c["width"]))
    print(f"checkpoint: MLP of {c['layers']} layers of {c['width']} units, float64, batch {c['batch']}; "
          f"one ad.checkpoint per layer")
    leaves = [ad.Tensor(p, requires_grad=True) for p in params]
    plain, remat = _mlp_gradients(leaves, x, False), _mlp_gradients(leaves, x, True)
    identical = all(np.array_equal(a, b) for a, b in zip(plain, remat))
    print(f"checkpoint: gradients bit-identical: {identical}")
    mem = [_peak_mb(lambda: _mlp_gradients(leaves, x, r)) for r in (False, True)]
    ms = [_best_ms(lambda: _mlp_gradients(leaves, x, r), c["repeats"]) for r in (False, True)]
    print(f"checkpoint: peak memory {mem[0]:.1f} MB -> {mem[1]:.1f} MB ({mem[0] / mem[1]:.2f} x), "
          f"time {ms[0]:.1f} ms -> {ms[1]:.1f} ms ({ms[1] / ms[0]:.2f} x)")
    if not identical:
        raise SystemExit("checkpoint: the gradients differ from the un-checkpointed ones")


SECTIONS = {"checkpoint": checkpoint_section}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append",
                        help="run this section only (may be repeated); all by default")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores; {cpu_flags()}); numpy {np.__version__}")
    start = time.perf_counter()
    for name, section in SECTIONS.items():
        if not args.only or name in args.only:
            section(args.quick)
    print(f"Total wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
