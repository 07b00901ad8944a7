"""One Adam training step of the source material's Keras MNIST CNN at batch 128, float32 (run by hand).

    python benchmarks/train_step.py                          # ours beside PyTorch CPU (if installed)
    python benchmarks/train_step.py --torch-python PATH      # PyTorch from another environment
    python benchmarks/train_step.py --quick                  # fewer repeats, no busy-machine run
    python benchmarks/train_step.py --batch 512              # another batch size (default 128)
    python benchmarks/train_step.py --coretype Haswell       # OPENBLAS_CORETYPE=Haswell for run [1] only

A step is: zero the gradients, forward (conv 32 3x3 relu, max-pool 2, conv 64 3x3 relu, max-pool 2,
flatten, dropout 0.5, dense 10), the fused softmax cross-entropy, backward, Adam update of the 34,826
parameters. Each case runs in its own process (PyTorch's thread pool and Numba's must not share one),
all with the same number of threads:

- the headline, **plain loop, NumPy first**: the loop most users write, with nothing arranged
  (``import numpy`` before ``nn``, no ``nn.fit``, no tuning by hand);
- plain loop, ``nn`` imported first (it used to be faster: it must not be any more);
- ``nn.fit`` (one epoch of the same batches, per step);
- PyTorch, the same model and loop.

Every case runs under two OpenBLAS settings, as benchmarks/kernels.py's do: [1] the environment as it
is (``--coretype NAME`` sets ``OPENBLAS_CORETYPE`` in that run's processes only), [2] with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed (OpenBLAS's own choice of kernels); the library
never sets either. Each setting's ours / PyTorch comes from processes of that setting.

Reported: median and best milliseconds per step, ours / PyTorch, our step by phase, peak resident
memory (ru_maxrss, which includes the interpreter and libraries), and, unless --quick, the same steps
with one competing CPU-bound process on the machine (a busy loop started before, ended after), so
that both slowdowns are measured under the same load (setting [1] only). The CPU model is printed with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

COMMON = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
repeat, case, batch = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
if case == "nn first":
    import nn, autodiff as ad
    import numpy as np
else:
    import numpy as np
    import nn, autodiff as ad

nn.set_seed(0)
model = nn.models.keras_mnist_cnn()
opt = nn.optim.Adam(model.parameters())
rng = np.random.default_rng(0)
x = rng.random((batch, 1, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, batch)
phases = {"forward": [], "backward": [], "update": []}
times = []

def step():                                  # the issue's loop, written as a user writes it
    t0 = time.perf_counter()
    opt.zero_grad(); loss = nn.functional.softmax_cross_entropy(model.forward(ad.Tensor(x), logits=True), y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2

if case == "fit":
    xs, ys = np.concatenate([x] * 8), np.concatenate([y] * 8)
    nn.fit(model, (xs[:2 * batch], ys[:2 * batch]), optimizer=opt, epochs=1, batch_size=batch, verbose=0,
           seed=0)   # warm-up
    for _ in range(max(3, repeat // 8)):           # at least 3 epochs of 8 steps: one was too noisy a median
        t = time.perf_counter()
        nn.fit(model, (xs, ys), optimizer=opt, epochs=1, batch_size=batch, verbose=0, seed=0)
        times.append((time.perf_counter() - t) / 8)
else:
    for _ in range(3):
        step()
    for _ in range(repeat):
        f, b, u = step()
        phases["forward"].append(f); phases["backward"].append(b); phases["update"].append(u)
        times.append(f + b + u)
ms = sorted(1e3 * t for t in times)
import threadpoolctl
blas = sorted({i.get("architecture") or "?" for i in threadpoolctl.threadpool_info()
               if i["internal_api"] == "openblas"})
print(json.dumps({"median": ms[len(ms) // 2], "best": ms[0], "blas": blas,
                  "phases": {k: 1e3 * sorted(v)[len(v) // 2] for k, v in phases.items() if v},
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

TORCH = r"""
import json, resource, sys, time
import torch
repeat, threads, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(1600, 10))
assert sum(p.numel() for p in model.parameters()) == 34826
optimizer = torch.optim.Adam(model.parameters())
x = torch.rand(batch, 1, 28, 28)
y = torch.randint(0, 10, (batch,))
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

OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def openblas_settings(coretype=None, environ=None):
    """[(title, environment)] of the two OpenBLAS settings every case runs under, for child processes
    (``environ``, default os.environ, is not changed): [1] the environment as it is, with
    OPENBLAS_CORETYPE=``coretype`` if given; [2] without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE."""
    environ = os.environ if environ is None else environ
    as_is = dict(environ, **({"OPENBLAS_CORETYPE": coretype} if coretype else {}))
    own = {k: v for k, v in environ.items() if k not in OPENBLAS_VARIABLES}
    seen = ", ".join(f"{k}={as_is[k]}" + (" by --coretype" if coretype and k == "OPENBLAS_CORETYPE" else "")
                     if k in as_is else f"{k} unset" for k in OPENBLAS_VARIABLES)
    title = f"OpenBLAS as the environment has it ({seen})"
    if not any(k in as_is for k in OPENBLAS_VARIABLES):
        title += ": neither is set here, so [1] and [2] are the same setting (--coretype NAME sets one for [1])"
    return [(title, as_is), (f"OpenBLAS's own choice ({' and '.join(OPENBLAS_VARIABLES)} removed)", own)]


BUSY = "import time\nend = time.time() + 600\nwhile time.time() < end:\n    pass\n"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return " ".join(sorted(f for f in flags if f.startswith(("avx", "fma", "sse4"))))
    except OSError:
        pass
    return ""


def _run(python, code, *args, environ=None):
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    proc = subprocess.run([python, "-c", code, *map(str, args)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return None, (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def measure(torch_python, repeat, threads, batch=128, environ=None):
    """Every case, each in its own process with the environment ``environ``; {name: (result, note)}."""
    results = {case: _run(sys.executable, COMMON, REPO, repeat, case, batch, environ=environ)
               for case in ("numpy first", "nn first", "fit")}
    results["pytorch"] = ((None, "skipped") if torch_python is None
                          else _run(torch_python, TORCH, repeat, threads, batch, environ=environ))
    return results


def report(results, title):
    blas = sorted({a for result, _ in results.values() if result for a in result.get("blas", ())})
    print(title + (f"; OpenBLAS's kernels: {', '.join(blas)}" if blas else ""))
    torch_result = results["pytorch"][0]
    if torch_result:
        print(f"  PyTorch {torch_result['version']} ({torch_result['threads']} threads): median "
              f"{torch_result['median']:.1f} ms, best {torch_result['best']:.1f} ms, peak RSS "
              f"{torch_result['peak_mb']:.0f} MB")
    else:
        print(f"  PyTorch not measured: {results['pytorch'][1]} (pip install torch==2.13.0, then --torch-python)")
    names = {"numpy first": "plain loop, NumPy imported first (headline)", "nn first": "plain loop, nn imported first",
             "fit": "nn.fit, per step"}
    for case, label in names.items():
        result, note = results[case]
        if result is None:
            print(f"  ours, {label}: failed: {note}")
            continue
        ratio = (f", ours/torch {result['median'] / torch_result['median']:.2f}x (best to best "
                 f"{result['best'] / torch_result['best']:.2f}x)" if torch_result else "")
        phases = ", ".join(f"{k} {v:.1f}" for k, v in result["phases"].items())
        print(f"  ours, {label}: median {result['median']:.1f} ms, best {result['best']:.1f} ms{ratio}"
              + (f"; phases (ms): {phases}" if phases else "") + f"; peak RSS {result['peak_mb']:.0f} MB")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no busy-machine run")
    parser.add_argument("--torch-python", default=None,
                        help="the Python that has torch (default: this one, if it has torch)")
    parser.add_argument("--batch", type=int, default=128, help="images per step (default 128)")
    parser.add_argument("--coretype", default=None, help="OPENBLAS_CORETYPE for run [1]'s processes only")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch must be a positive integer, got {args.batch}")
    torch_python = args.torch_python
    if torch_python is None and subprocess.run([sys.executable, "-c", "import torch"],
                                               capture_output=True).returncode == 0:
        torch_python = sys.executable
    repeat = 5 if args.quick else 30
    threads = int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count()))
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores; {cpu_flags()})")
    step = f"Keras MNIST CNN (34,826 parameters), one Adam step at batch {args.batch}, float32, {threads} threads"
    settings = openblas_settings(args.coretype)
    quiet = None
    for n, (title, environ) in enumerate(settings, 1):
        results = measure(torch_python, repeat, threads, args.batch, environ)
        report(results, f"[{n}] {title}: {step}")
        quiet = quiet or results
    if args.quick:
        return
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        loaded = measure(torch_python, repeat, threads, args.batch, settings[0][1])
    finally:
        busy.kill()
    report(loaded, "[1] The same with one competing CPU-bound process (a Python busy loop) on the machine")
    for case in ("numpy first", "pytorch"):
        before, after = quiet[case][0], loaded[case][0]
        if before and after:
            print(f"  slowdown under load, {case}: {after['median'] / before['median']:.2f}x")


if __name__ == "__main__":
    main()
