"""Benchmarks for autodiff.compile (source transformation + Numba): same-run ratios, every number taken now.

Run from the repository root::

    python benchmarks/compile.py                                          # full sizes, about a minute
    python benchmarks/compile.py --quick                                  # tiny sizes: a smoke run
    python benchmarks/compile.py --torch-python /work/torchvenv/bin/python   # PyTorch from another env

1. Cheap-gradient principle: eq. 5.36 (summed) on 1e6 float64 numbers. Compiled ``value_and_grad``
   divided by the plain NumPy evaluation of the value alone (goal <= 1.0: the value and the
   gradient in less time than NumPy takes for the value); the eager engine's and PyTorch's
   forward + backward beside it, over the same NumPy time.
2. Per call at a scalar: the compiled gradient of eq. 5.36 at 0.5 in microseconds (goal <= 2 us),
   the eager engine's and PyTorch's beside it.
3. Two GradBench-style objectives, value and gradient: a Gaussian mixture's negative
   log-likelihood (diagonal covariances, a simplification of GradBench's ``gmm``) and an LSTM-style
   sequence loss (one layer, unrolled; GradBench's ``lstm`` has two): compiled vs eager vs PyTorch.

Compilation (recording, code generation, Numba) is timed once and reported apart; the timed calls
run after a warm-up. PyTorch runs in its own process (``--torch-python``, default: this Python if
it has torch), float64, its default threads. Numba uses all cores for loops of 2^15 elements or
more (``autodiff.compiler.PARALLEL_MIN``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "benchmarks"):
    if str(path) not in sys.path:  # run from a checkout without installing the package
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff.examples import eq_5_36, eq_5_37  # noqa: E402
from engine import best_time, eq_5_36_with, sample_input  # noqa: E402  (benchmarks/engine.py)
from train_step import cpu_flags, cpu_model  # noqa: E402

FULL = dict(n=1_000_000, repeats=7, scalar_calls=20_000, gmm=(1000, 25, 10), lstm=(20, 32, 16, 32))
QUICK = dict(n=2_000, repeats=2, scalar_calls=500, gmm=(20, 3, 2), lstm=(3, 2, 2, 3))


# --- the objectives (the engine's ops; the PyTorch worker below writes the same maths) ---------------

def gmm_data(n, k, d, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=k), rng.normal(size=(k, d)), 0.1 * rng.normal(size=(k, d)), rng.normal(size=(n, d)))


def gmm_nll(alphas, means, log_sigmas, x):
    """-sum_i log sum_k pi_k N(x_i; mu_k, diag(sigma_k^2)) up to the constant (n d / 2) log 2 pi."""
    n, d = x.shape
    z = (ad.reshape(x, (n, 1, d)) - means) * ad.exp(-log_sigmas)
    log_p = ad.log_softmax(alphas) - ad.sum(log_sigmas, axis=1) - 0.5 * ad.sum(z * z, axis=2)
    return -ad.sum(ad.logsumexp(log_p, axis=1))


def lstm_data(t, b, d, h, seed=0):
    rng = np.random.default_rng(seed)
    scale = 1 / np.sqrt(d + h)
    return (scale * rng.normal(size=(d, 4 * h)), scale * rng.normal(size=(h, 4 * h)), np.zeros(4 * h),
            scale * rng.normal(size=(h, d)), rng.normal(size=(t, b, d)))


def lstm_loss(wx, wh, bias, wo, xs):
    """One LSTM layer over the sequence xs (t, batch, d), predicting each next input; squared error."""
    steps, batch, _ = xs.shape
    size = wh.shape[0]
    h = c = np.zeros((batch, size))
    loss = 0.0
    for t in range(steps - 1):
        z = xs[t] @ wx + h @ wh + bias
        i, f = ad.sigmoid(z[:, :size]), ad.sigmoid(z[:, size:2 * size])
        o, g = ad.sigmoid(z[:, 2 * size:3 * size]), ad.tanh(z[:, 3 * size:])
        c = f * c + i * g
        h = o * ad.tanh(c)
        loss = loss + ad.sum((h @ wo - xs[t + 1]) ** 2)
    return loss


TORCH = r"""
import json, sys, time, timeit
import numpy as np
import torch
torch.set_default_dtype(torch.float64)
config = json.loads(sys.argv[1])
def best(fn, number, repeat):
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number
def eq(x):
    a, e = torch.sin(x), torch.exp(x)
    return torch.exp(a + a ** 2) + torch.sin(e + e ** 2)
def vg(f, *params):
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    def run():
        for p in ps:
            p.grad = None
        y = f(*ps)
        y.backward()
        return y.item()
    return run
rng = np.random.default_rng(0)
x = torch.from_numpy(rng.uniform(-1.0, 1.0, config["n"]))
r = config["repeats"]
out = {"version": torch.__version__, "threads": torch.get_num_threads()}
out["eq_grad"] = best(vg(lambda x: eq(x).sum(), x.numpy()), 1, r)
out["scalar"] = best(vg(eq, 0.5), config["scalar_calls"] // 10, r)
def gmm(alphas, means, log_sigmas, x):
    n, d = x.shape
    z = (x.reshape(n, 1, d) - means) * torch.exp(-log_sigmas)
    log_p = torch.log_softmax(alphas, 0) - log_sigmas.sum(1) - 0.5 * (z * z).sum(2)
    return -torch.logsumexp(log_p, 1).sum()
def lstm(wx, wh, bias, wo, xs):
    steps, batch, _ = xs.shape
    size = wh.shape[0]
    h = c = torch.zeros(batch, size)
    loss = 0.0
    for t in range(steps - 1):
        z = xs[t] @ wx + h @ wh + bias
        i, f = torch.sigmoid(z[:, :size]), torch.sigmoid(z[:, size:2 * size])
        o, g = torch.sigmoid(z[:, 2 * size:3 * size]), torch.tanh(z[:, 3 * size:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        loss = loss + ((h @ wo - xs[t + 1]) ** 2).sum()
    return loss
for name, f in (("gmm", gmm), ("lstm", lstm)):
    data = [np.asarray(a) for a in json.loads(sys.argv[2])[name]]
    params, consts = data[:-1], torch.from_numpy(data[-1])
    run = vg(lambda *ps: f(*ps, consts), *params)
    out[name] = best(run, 1, r)
    out[name + "_value"] = run()
print(json.dumps(out))
"""


def run_torch(python, config, data):
    """PyTorch's times from its own process, or (None, why not)."""
    if python is None:
        return None, "not measured (no torch here; pass --torch-python PATH)"
    payload = {name: [a.tolist() for a in arrays] for name, arrays in data.items()}
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([python, "-c", TORCH, json.dumps(config), json.dumps(payload)], capture_output=True,
                              text=True, cwd=tmp)
    if proc.returncode != 0:
        return None, "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def timed_compile(f, *args, **kwargs):
    start = os.times().elapsed
    cf = ad.compile(f, *args, **kwargs)
    cf(*args)
    return cf, os.times().elapsed - start


def row(label, value):
    print(f"  {label:<58} {value}")


def cheap_gradient(config, torch_result):
    n, reps = config["n"], config["repeats"]
    print(f"\n1. Cheap-gradient principle: eq. 5.36 (summed) on {n:,} float64 numbers, best of {reps}")
    x = sample_input(n)
    numpy_time = best_time(lambda: eq_5_36_with(np, x).sum(), 1, reps)
    f = lambda x: ad.sum(eq_5_36(x))
    cf, build = timed_compile(f, x)
    compiled = best_time(lambda: cf(x), 1, reps)
    eager_vg = ad.value_and_grad(f)
    eager = best_time(lambda: eager_vg(x), 1, reps)
    error = float(np.max(np.abs(cf(x)[1] - eq_5_37(x))))
    row("plain NumPy, the value alone", f"{numpy_time * 1e3:8.2f} ms")
    row("compiled value_and_grad / NumPy (goal <= 1.0)", f"{compiled / numpy_time:8.2f}   "
        f"({compiled * 1e3:.2f} ms; {'MET' if compiled <= numpy_time else 'NOT MET'}; max |error| vs eq. 5.37 "
        f"{error:.1e}; compiled once in {build:.1f} s)")
    row("eager value_and_grad / NumPy", f"{eager / numpy_time:8.2f}   ({eager * 1e3:.2f} ms)")
    if torch_result:
        row(f"PyTorch {torch_result['version']} forward + backward / NumPy",
            f"{torch_result['eq_grad'] / numpy_time:8.2f}   ({torch_result['eq_grad'] * 1e3:.2f} ms, "
            f"{torch_result['threads']} threads)")


def scalar_calls(config, torch_result):
    calls, reps = config["scalar_calls"], config["repeats"]
    print(f"\n2. Per call at a scalar: the gradient of eq. 5.36 at 0.5, best of {reps} x {calls:,} calls")
    cf, build = timed_compile(eq_5_36, 0.5)
    compiled = best_time(lambda: cf(0.5), calls, reps)
    eager_vg = ad.value_and_grad(eq_5_36)
    eager = best_time(lambda: eager_vg(0.5), max(calls // 20, 1), reps)
    row("compiled value_and_grad (goal <= 2 us)", f"{compiled * 1e6:8.2f} us   "
        f"({'MET' if compiled <= 2e-6 else 'NOT MET'}; compiled once in {build:.1f} s)")
    row("eager value_and_grad", f"{eager * 1e6:8.2f} us")
    if torch_result:
        row("PyTorch forward + backward", f"{torch_result['scalar'] * 1e6:8.2f} us")


def objectives(config, torch_result, data):
    reps = config["repeats"]
    print(f"\n3. GradBench-style objectives, value and gradient of every parameter, best of {reps}")
    for name, f, shape in (("gmm", gmm_nll, "n, k, d = {}"), ("lstm", lstm_loss, "steps, batch, d, h = {}")):
        args = data[name]
        every = tuple(range(len(args) - 1))
        cf, build = timed_compile(f, *args, argnums=every)
        eager_vg = ad.value_and_grad(f, argnums=every)
        (y, grads), (y0, grads0) = cf(*args), eager_vg(*args)
        error = max(float(np.max(np.abs(g - g0))) for g, g0 in zip(grads, grads0))
        compiled = best_time(lambda: cf(*args), 1, reps)
        eager = best_time(lambda: eager_vg(*args), 1, reps)
        label = f"{name} ({shape.format(config[name])})"
        row(f"{label}: compiled", f"{compiled * 1e3:8.2f} ms   (compiled once in {build:.1f} s; "
            f"|value - eager| {abs(y - y0):.1e}, max |gradient - eager| {error:.1e})")
        row(f"{label}: eager", f"{eager * 1e3:8.2f} ms   (compiled / eager {compiled / eager:.2f})")
        if torch_result:
            row(f"{label}: PyTorch", f"{torch_result[name] * 1e3:8.2f} ms   (compiled / PyTorch "
                f"{compiled / torch_result[name]:.2f}; |value - ours| {abs(torch_result[name + '_value'] - y):.1e})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: a smoke run")
    parser.add_argument("--torch-python", default=None, help="the Python that has torch (default: this one, if it has)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    torch_python = args.torch_python
    if torch_python is None and subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0:
        torch_python = sys.executable
    data = {"gmm": gmm_data(*config["gmm"]), "lstm": lstm_data(*config["lstm"])}
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores; {cpu_flags()}); numpy {np.__version__}")
    torch_result, why = run_torch(torch_python, config, data)
    if torch_result is None:
        print(f"PyTorch {why}")
    cheap_gradient(config, torch_result)
    scalar_calls(config, torch_result)
    objectives(config, torch_result, data)


if __name__ == "__main__":
    main()
