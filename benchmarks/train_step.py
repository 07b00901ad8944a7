"""One Adam training step of the source material's Keras MNIST CNN at batch 128, float32 (run by hand).

    python benchmarks/train_step.py            # ours (cpu and numpy backends) beside PyTorch CPU
    python benchmarks/train_step.py --quick    # fewer repeats

A step is: zero the gradients, forward (conv 32 3x3 relu, max-pool 2, conv 64 3x3 relu, max-pool 2,
flatten, dropout 0.5, dense 10), the fused softmax cross-entropy, backward, Adam update of the 34,826
parameters. PyTorch runs the same model in its own process (its thread pool and Numba's must not
share one), with the same number of threads. Ours is measured with glibc's malloc tuned to reuse freed
memory, as the kernels' first call does for nn.fit and any loop (kernels.runtime), and once without
(``kernels.runtime.configure(keep_freed_memory=False)`` first), to show what it is worth. Reported:
median and best milliseconds per step, the ratio ours / PyTorch (the goal: <= 1.5), a breakdown of
our step by phase, and the peak resident memory of each process (ru_maxrss, which includes the
interpreter and libraries).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

OURS = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import nn                                   # before numpy: kernels arranges BLAS threading
import numpy as np
import kernels

backend, repeat = sys.argv[2], int(sys.argv[3])
if sys.argv[4] != "keep":
    kernels.runtime.configure(keep_freed_memory=False)   # before any kernel call: malloc left alone
nn.set_seed(0)
model = nn.models.keras_mnist_cnn()
optimizer = nn.optim.Adam(model.parameters())
rng = np.random.default_rng(0)
x = rng.random((128, 1, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, 128)
objective = nn.training.loss_function(model, "sparse_categorical_crossentropy")
phases = {"forward": [], "backward": [], "update": []}

def step():
    t0 = time.perf_counter()
    optimizer.zero_grad()
    loss, _ = objective(x, y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    optimizer.step()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2

with kernels.use_backend(backend):
    for _ in range(3):
        step()
    times = []
    for _ in range(repeat):
        f, b, u = step()
        phases["forward"].append(f); phases["backward"].append(b); phases["update"].append(u)
        times.append(f + b + u)
ms = sorted(1e3 * t for t in times)
print(json.dumps({"median": ms[len(ms) // 2], "best": ms[0],
                  "phases": {k: 1e3 * sorted(v)[len(v) // 2] for k, v in phases.items()},
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

TORCH = r"""
import json, resource, sys, time
import torch
repeat = int(sys.argv[1])
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(1600, 10))
assert sum(p.numel() for p in model.parameters()) == 34826
optimizer = torch.optim.Adam(model.parameters())
x = torch.rand(128, 1, 28, 28)
y = torch.randint(0, 10, (128,))
loss_fn = torch.nn.CrossEntropyLoss()

def step():
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()

for _ in range(3):
    step()
times = []
for _ in range(repeat):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
ms = sorted(1e3 * t for t in times)
print(json.dumps({"median": ms[len(ms) // 2], "best": ms[0], "threads": torch.get_num_threads(),
                  "version": torch.__version__,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(code, *args):
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ))
    if proc.returncode != 0:
        return None, (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    repeat = 5 if args.quick else 30
    torch_result, torch_note = (None, "skipped") if args.no_torch else _run(TORCH, repeat)
    results = {f"{backend}{'' if keep == 'keep' else ', malloc untuned'}":
               _run(OURS, REPO, backend, repeat if backend == "cpu" else max(3, repeat // 5), keep)
               for backend, keep in (("cpu", "keep"), ("cpu", "plain"), ("numpy", "keep"))}
    print(f"Keras MNIST CNN (34,826 parameters), one Adam step at batch 128, float32, {os.cpu_count()} cores")
    if torch_result:
        print(f"PyTorch {torch_result['version']} ({torch_result['threads']} threads): median "
              f"{torch_result['median']:.1f} ms, best {torch_result['best']:.1f} ms, peak RSS "
              f"{torch_result['peak_mb']:.0f} MB")
    else:
        print(f"PyTorch not measured: {torch_note} (pip install torch==2.13.0)")
    for backend, (result, note) in results.items():
        if result is None:
            print(f"ours, backend {backend}: failed: {note}")
            continue
        ratio = f", ours/torch {result['median'] / torch_result['median']:.2f}x (goal <= 1.5)" if torch_result else ""
        phases = ", ".join(f"{k} {v:.1f}" for k, v in result["phases"].items())
        print(f"ours, backend {backend}: median {result['median']:.1f} ms, best {result['best']:.1f} ms{ratio}; "
              f"phases (ms): {phases}; peak RSS {result['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
