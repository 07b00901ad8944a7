"""Benchmarks for autodiff.compile (source transformation + Numba): same-run ratios, every number taken now.

Run from the repository root::

    python benchmarks/compile.py                                          # full sizes, a few minutes
    python benchmarks/compile.py --quick                                  # tiny sizes: a smoke run
    python benchmarks/compile.py --torch-python /work/torchvenv/bin/python --jax-python /work/jaxvenv/bin/python

1. Cheap-gradient principle: eq. 5.36 (summed) on 1e6 float64 numbers. Compiled ``value_and_grad``
   divided by the plain NumPy evaluation of the value alone (goal <= 1.0: the value and the
   gradient in less time than NumPy takes for the value, and below ``jax.jit(jax.value_and_grad)``'s
   ratio, taken in the same run); the eager engine's and PyTorch's forward + backward beside it.
2. Per call at a scalar: the compiled gradient of eq. 5.36 at 0.5 in microseconds (goal <= 1 us),
   the eager engine's, PyTorch's and JAX's (jit, one dispatch) beside it.
3. Two GradBench-style objectives, value and gradient: a Gaussian mixture's negative
   log-likelihood (diagonal covariances, a simplification of GradBench's ``gmm``) and an LSTM-style
   sequence loss (one layer, unrolled; GradBench's ``lstm`` has two): compiled vs eager vs the oracles.
4. A 1,000-step recurrence (tangent's benchmark style): a scalar ``y <- y + 0.01 sin(y x)`` written
   with ``ad.fori_loop``, its value and d/dx. Goals: compiled in under 5 s, and 10x PyTorch's eager
   loop (Python ``for`` on tensors, ``backward()``); JAX's ``lax.fori_loop`` under jit beside it.
5. The LSTM of 3 over 1,024 steps written with ``ad.scan`` (goal: compiled in under 5 s), its call
   beside the eager engine, PyTorch's eager loop and JAX's ``lax.scan`` under jit.

Compile time is ``ad.compile`` plus the first call (Numba compiles there) less one later call: cold,
in a fresh cache folder, and warm, again from that folder's files (the generated modules dropped from
this process, so Numba loads its machine code as a second process would). The timed calls run after
a warm-up. PyTorch (``--torch-python``) and JAX (``--jax-python``; default: this Python, if it has
them) run in their own processes (``benchmarks/compile_oracles.py``), float64, their default threads;
they are benchmark-only references, not dependencies. Numba uses all cores for loops of 2^15 elements
or more (``autodiff.compiler.PARALLEL_MIN``).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "benchmarks"):
    if str(path) not in sys.path:  # run from a checkout without installing the package
        sys.path.insert(0, str(path))

import numba  # noqa: E402
import numpy as np  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff.examples import eq_5_36, eq_5_37  # noqa: E402
from engine import best_time, eq_5_36_with, sample_input  # noqa: E402  (benchmarks/engine.py)
from compile_oracles import LONG_LSTM, run_oracle  # noqa: E402
from train_step import cpu_flags, cpu_model  # noqa: E402

FULL = dict(n=1_000_000, repeats=7, scalar_calls=20_000, gmm=(1000, 25, 10), lstm=(20, 32, 16, 32),
            rec_steps=1000, rec_x=0.7, lstm_long=(1025, 32, 16, 32), long_repeats=3)
QUICK = dict(n=2_000, repeats=2, scalar_calls=500, gmm=(20, 3, 2), lstm=(3, 2, 2, 3),
             rec_steps=10, rec_x=0.7, lstm_long=(7, 2, 2, 3), long_repeats=2)
COMPILE_GOAL = 5.0        # seconds, cold, for the recurrence and the 1,024-step LSTM


# --- the objectives (the engine's ops; compile_oracles.py writes the same maths for PyTorch and JAX) ---

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


def lstm_step(wx, wh, bias, wo, h, c, x_t, x_next):
    size = wh.shape[0]
    z = x_t @ wx + h @ wh + bias
    i, f = ad.sigmoid(z[:, :size]), ad.sigmoid(z[:, size:2 * size])
    o, g = ad.sigmoid(z[:, 2 * size:3 * size]), ad.tanh(z[:, 3 * size:])
    c = f * c + i * g
    h = o * ad.tanh(c)
    return h, c, ad.sum((h @ wo - x_next) ** 2)


def lstm_loss(wx, wh, bias, wo, xs):
    """One LSTM layer over the sequence xs (t, batch, d), predicting each next input; squared error."""
    h = c = np.zeros((xs.shape[1], wh.shape[0]))
    loss = 0.0
    for t in range(xs.shape[0] - 1):      # unrolled: one copy of the step per t in the compiled program
        h, c, err = lstm_step(wx, wh, bias, wo, h, c, xs[t], xs[t + 1])
        loss = loss + err
    return loss


def lstm_scan(wx, wh, bias, wo, xs):
    """lstm_loss written with ``ad.scan``: the step is compiled once, whatever the sequence's length."""
    def step(carry, x):
        h, c, loss = carry
        h, c, err = lstm_step(wx, wh, bias, wo, h, c, x[0], x[1])
        return (h, c, loss + err), None

    zero = np.zeros((xs.shape[1], wh.shape[0]))
    return ad.scan(step, (zero, zero, 0.0), (xs[:-1], xs[1:]))[0][2]


def recurrence(steps):
    """x -> y_steps with y_0 = x and y <- y + 0.01 sin(y x), as ``ad.fori_loop``."""
    def f(x):
        return ad.fori_loop(0, steps, lambda i, y: y + 0.01 * ad.sin(y * x), x * 1.0)
    f.__name__ = f"recurrence_{steps}"
    return f


def _forget_generated_modules():
    """Drop the generated modules from this process, so that the next compile imports them from its folder."""
    for name in [m for m in sys.modules if m.startswith("autodiff_compiled_")]:
        del sys.modules[name]


def timed_compile(f, *args, **kwargs):
    """(compiled function, cold s, warm s): ad.compile + its first call - one later call, in a fresh cache folder
    and then again from that folder's files."""
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(2):
            _forget_generated_modules()
            start = time.perf_counter()
            cf = ad.compile(f, *args, cache=folder, **kwargs)
            cf(*args)
            built = time.perf_counter()
            cf(*args)
            times.append(2 * built - start - time.perf_counter())
    return cf, times[0], times[1]


def built(cold, warm, goal=None):
    verdict = "" if goal is None else f"; goal < {goal:.0f} s: {'MET' if cold < goal else 'NOT MET'}"
    return f"compiled in {cold:.2f} s cold, {warm:.2f} s warm{verdict}"


def row(label, value):
    print(f"  {label:<58} {value}")


def oracle_rows(oracles, key, label, ours, ours_value=None, ms=True):
    """One row per oracle: its time for ``key`` (ms, or us when not ``ms``), ours over it, its jit's first call."""
    for name, (result, why) in oracles.items():
        if result is None:
            row(f"{label}{name}", why)
            continue
        seconds = result[key]
        notes = [f"ours / {name} {ours / seconds:.3g}"]
        if key + "_compile" in result:
            notes.append(f"jit's first call {result[key + '_compile']:.2f} s")
        if ours_value is not None and key + "_value" in result:
            notes.append(f"|value - ours| {abs(result[key + '_value'] - ours_value):.1e}")
        time_text = f"{seconds * 1e3:8.2f} ms" if ms else f"{seconds * 1e6:8.2f} us"
        row(f"{label}{name} {result['version']}", f"{time_text}   ({'; '.join(notes)})")


def cheap_gradient(config, oracles):
    n, reps = config["n"], config["repeats"]
    print(f"\n1. Cheap-gradient principle: eq. 5.36 (summed) on {n:,} float64 numbers, best of {reps}")
    x = sample_input(n)
    numpy_time = best_time(lambda: eq_5_36_with(np, x).sum(), 1, reps)
    f = lambda x: ad.sum(eq_5_36(x))
    cf, cold, warm = timed_compile(f, x)
    compiled = best_time(lambda: cf(x), 1, reps)
    eager_vg = ad.value_and_grad(f)
    eager = best_time(lambda: eager_vg(x), 1, reps)
    error = float(np.max(np.abs(cf(x)[1] - eq_5_37(x))))
    row("plain NumPy, the value alone", f"{numpy_time * 1e3:8.2f} ms")
    row("compiled value_and_grad / NumPy (goal <= 1.0)", f"{compiled / numpy_time:8.2f}   "
        f"({compiled * 1e3:.2f} ms; {'MET' if compiled <= numpy_time else 'NOT MET'}; max |error| vs eq. 5.37 "
        f"{error:.1e}; {built(cold, warm)})")
    row("eager value_and_grad / NumPy", f"{eager / numpy_time:8.2f}   ({eager * 1e3:.2f} ms)")
    for name, (result, why) in oracles.items():
        if result is None:
            row(name, why)
            continue
        seconds = result["eq_grad"]
        what = "jit(value_and_grad)" if "eq_grad_compile" in result else "forward + backward"
        ahead = f"; ours ahead: {'MET' if compiled < seconds else 'NOT MET'}" if name == "JAX" else ""
        row(f"{name} {result['version']} {what} / NumPy", f"{seconds / numpy_time:8.2f}   ({seconds * 1e3:.2f} "
            f"ms, {result['threads']} threads; ours / {name} {compiled / seconds:.2f}{ahead})")


def scalar_calls(config, oracles):
    calls, reps = config["scalar_calls"], config["repeats"]
    print(f"\n2. Per call at a scalar: the gradient of eq. 5.36 at 0.5, best of {reps} x {calls:,} calls")
    cf, cold, warm = timed_compile(eq_5_36, 0.5)
    compiled = best_time(lambda: cf(0.5), calls, reps)
    eager_vg = ad.value_and_grad(eq_5_36)
    eager = best_time(lambda: eager_vg(0.5), max(calls // 20, 1), reps)
    row("compiled value_and_grad (goal <= 1 us)", f"{compiled * 1e6:8.2f} us   "
        f"({'MET' if compiled <= 1e-6 else 'NOT MET'}; {built(cold, warm)})")
    row("eager value_and_grad", f"{eager * 1e6:8.2f} us")
    oracle_rows(oracles, "scalar", "", compiled, ms=False)


def objectives(config, oracles, data):
    reps = config["repeats"]
    print(f"\n3. GradBench-style objectives, value and gradient of every parameter, best of {reps}")
    for name, f, shape in (("gmm", gmm_nll, "n, k, d = {}"), ("lstm", lstm_loss, "steps, batch, d, h = {}")):
        args = data[name]
        every = tuple(range(len(args) - 1))
        cf, cold, warm = timed_compile(f, *args, argnums=every)
        eager_vg = ad.value_and_grad(f, argnums=every)
        (y, grads), (y0, grads0) = cf(*args), eager_vg(*args)
        error = max(float(np.max(np.abs(g - g0))) for g, g0 in zip(grads, grads0))
        compiled = best_time(lambda: cf(*args), 1, reps)
        eager = best_time(lambda: eager_vg(*args), 1, reps)
        label = f"{name} ({shape.format(config[name])}): "
        row(f"{label}compiled", f"{compiled * 1e3:8.2f} ms   ({built(cold, warm)}; "
            f"|value - eager| {abs(y - y0):.1e}, max |gradient - eager| {error:.1e})")
        row(f"{label}eager", f"{eager * 1e3:8.2f} ms   (compiled / eager {compiled / eager:.2f})")
        oracle_rows(oracles, name, label, compiled, y)


def loop_rows(oracles, key, label, f, args, argnums, reps):
    """Compile f (a loop), time it beside the eager engine and the oracles; (compiled s, cold s)."""
    cf, cold, warm = timed_compile(f, *args, argnums=argnums)
    eager_vg = ad.value_and_grad(f, argnums=argnums)
    (y, grads), (y0, grads0) = cf(*args), eager_vg(*args)
    if not isinstance(argnums, tuple):
        grads, grads0 = (grads,), (grads0,)
    error = max(float(np.max(np.abs(g - g0))) for g, g0 in zip(grads, grads0))
    compiled = best_time(lambda: cf(*args), 1, reps)
    eager = best_time(lambda: eager_vg(*args), 1, reps)
    row(f"{label}compile (goal < {COMPILE_GOAL:.0f} s)", f"{cold:8.2f} s    (cold, a fresh cache folder; warm "
        f"{warm:.2f} s; {'MET' if cold < COMPILE_GOAL else 'NOT MET'})")
    row(f"{label}compiled value_and_grad", f"{compiled * 1e3:8.2f} ms   (|value - eager| {abs(y - y0):.1e}, "
        f"max |gradient - eager| {error:.1e})")
    row(f"{label}eager engine", f"{eager * 1e3:8.2f} ms   (compiled / eager {compiled / eager:.3f})")
    oracle_rows(oracles, key, label, compiled, y)
    return compiled


def recurrence_section(config, oracles):
    steps, x, reps = config["rec_steps"], config["rec_x"], config["repeats"]
    print(f"\n4. A {steps:,}-step scalar recurrence y <- y + 0.01 sin(y x), y0 = x = {x} (ad.fori_loop), "
          f"value and d/dx, best of {reps}")
    compiled = loop_rows(oracles, "rec", "", recurrence(steps), (x,), 0, reps)
    torch_result = oracles["PyTorch"][0]
    if torch_result:
        row("PyTorch eager / compiled (goal >= 10)", f"{torch_result['rec'] / compiled:8.1f}   "
            f"({'MET' if torch_result['rec'] >= 10 * compiled else 'NOT MET'})")


def long_lstm_section(config, oracles, data):
    reps = config["long_repeats"]
    steps, batch, d, h = config[LONG_LSTM]
    print(f"\n5. The LSTM of 3 over {steps - 1:,} steps with ad.scan (batch, d, h = {batch, d, h}), value and gradient "
          f"of every parameter, best of {reps}")
    args = data[LONG_LSTM]
    loop_rows(oracles, LONG_LSTM, "", lstm_scan, args, tuple(range(len(args) - 1)), reps)


def revision():
    """The commit measured, and whether autodiff/ differs from it in the working tree."""
    git = ["git", "-C", str(REPO_ROOT)]
    head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "autodiff"], capture_output=True, text=True).stdout
    changed = len(dirty.splitlines())
    return f"autodiff at {head or '?'}" + (f" + uncommitted changes in {changed} files" if changed else "")


def has(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: a smoke run")
    parser.add_argument("--torch-python", default=None, help="the Python that has torch (default: this one, if it has)")
    parser.add_argument("--jax-python", default=None, help="the Python that has jax (default: this one, if it has)")
    parser.add_argument("--no-oracles", action="store_true", help="measure neither PyTorch nor JAX")
    parser.add_argument("--only", default="1,2,3,4,5", help="the sections to run, e.g. 1,4,5 (default: all)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for Numba, PyTorch and XLA alike (default: each its own; a shared machine)")
    args = parser.parse_args(argv)
    config = dict(QUICK if args.quick else FULL, threads=args.threads)
    if args.threads:
        numba.set_num_threads(args.threads)
    data = {"gmm": gmm_data(*config["gmm"]), "lstm": lstm_data(*config["lstm"]),
            LONG_LSTM: lstm_data(*config[LONG_LSTM])}
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores; {cpu_flags()}); numpy {np.__version__}; {revision()}; "
          f"Numba {numba.get_num_threads()} threads")
    oracles = {}
    for name, module, python in (("PyTorch", "torch", args.torch_python), ("JAX", "jax", args.jax_python)):
        python = python or (sys.executable if has(module) else None)
        oracles[name] = (None, "not measured (--no-oracles)") if args.no_oracles else run_oracle(module, python,
                                                                                                   config, data)
        if oracles[name][0] is None:
            print(f"{name} {oracles[name][1]}")
    sections = {"1": lambda: cheap_gradient(config, oracles), "2": lambda: scalar_calls(config, oracles),
                "3": lambda: objectives(config, oracles, data), "4": lambda: recurrence_section(config, oracles),
                "5": lambda: long_lstm_section(config, oracles, data)}
    for number in args.only.split(","):
        sections[number.strip()]()

if __name__ == "__main__":
    main()
