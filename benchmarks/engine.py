"""Benchmarks for the autodiff engine: four measurements, every number taken in this run.

Run from the repository root::

    python benchmarks/engine.py            # full sizes, about a minute
    python benchmarks/engine.py --quick    # small sizes, a few seconds (a smoke test)
    python benchmarks/engine.py --torch-python /path/to/python --only gmm,det --profile

1. Cheap-gradient principle. A gradient by reverse mode should cost a small constant times one
   evaluation of the function. We time ``value_and_grad`` of eq. 5.36 (summed) on a large array
   and divide by the time of the same function in plain NumPy. Goal: ratio <= 2.0.
2. Per-call overhead. ``grad(eq_5_36)`` at the scalar 0.5 does almost no arithmetic, so its time
   is the engine's bookkeeping: wrapping, recording nodes, sorting, sweeping. Goal: below PyTorch.
3. Long chains. A graph of hundreds of thousands of nodes must record, sweep backwards and sweep
   forwards without a RecursionError, at a steady number of nodes per second.
4. Problems (``engine_problems.py``, run by ``engine_problems_run.py``): a Gaussian mixture, a
   log-sum-exp, an RK4 integration, a cofactor determinant, bundle adjustment, a Vandermonde least
   squares and a tiny function through NumPy's dispatch, each written as NumPy-style code on Tensors
   and line for line in PyTorch; primal and gradient times beside PyTorch's, one thread on each side.
   Goal: gradient <= 1.0 x PyTorch, primal <= 1.2 x. ``--only NAMES`` runs only these problems
   (sections 1-3 skipped), ``--profile`` adds cProfile's top functions of each of our gradients.

HIPS autograd and PyTorch (CPU) are measured beside the engine when they are installed. PyTorch
runs in a separate process (this file, started again with ``--torch-worker``; ``--torch-python PATH``
for a Python of another environment), so that its thread pools never share a process with the other
numeric work.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
import timeit
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "benchmarks"):
    if str(path) not in sys.path:  # run from a checkout without installing the package
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff.examples import eq_5_36, eq_5_37  # noqa: E402

SEED = 0
FULL = dict(n=1_000_000, array_repeats=9, scalar_calls=2_000, scalar_repeats=7, chain_steps=100_000)
QUICK = dict(n=100_000, array_repeats=3, scalar_calls=200, scalar_repeats=3, chain_steps=10_000)
GOAL_RATIO = 2.0
INSTALL_HINTS = {"autograd": "pip install autograd", "torch": "pip install torch==2.13.0"}


# --- helpers ----------------------------------------------------------------------------------

def eq_5_36_with(lib, x):
    """Eq. 5.36 written with a library's ``sin`` and ``exp`` (NumPy, autograd.numpy or torch).

    Written as the decomposition of eq. 5.38, so sin(x) and exp(x) are computed once each: the
    same nine operations that the engine records for ``eq_5_36``.
    """
    a = lib.sin(x)
    e = lib.exp(x)
    return lib.exp(a + a ** 2) + lib.sin(e + e ** 2)


def eq_5_36_literal_with(lib, x):
    """Eq. 5.36 exactly as printed: sin(x) and exp(x) appear twice, so each is computed twice."""
    return lib.exp(lib.sin(x) + lib.sin(x) ** 2) + lib.sin(lib.exp(x) + lib.exp(x) ** 2)


def sample_input(n):
    """The benchmark input: n float64 numbers drawn uniformly from [-1, 1) with a fixed seed."""
    return np.random.default_rng(SEED).uniform(-1.0, 1.0, n)


def best_time(fn, number, repeat):
    """Seconds per call of ``fn``: the best of ``repeat`` samples, each the mean of ``number`` calls.

    One call first, untimed, as a warm-up. ``timeit`` switches the garbage collector off while
    it times, for every library alike.
    """
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def max_abs_error(a, b):
    """The largest absolute difference between two arrays."""
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def has_module(name):
    """Whether ``name`` can be imported, found without importing it."""
    return importlib.util.find_spec(name) is not None


def torch_missing(torch_python=None):
    """Why there is no PyTorch number."""
    if not has_module("torch") and not torch_python:
        return f"not installed ({INSTALL_HINTS['torch']}, or pass --torch-python PATH)"
    return "not measured (--no-torch, or its worker failed)"


def header(title):
    """Print a section title."""
    print()
    print(title)
    print("-" * len(title))


def row(label, value):
    """Print one aligned 'label: value' line of the report."""
    print(f"  {label:<46} {value}")


def verdict(ok):
    """'MET' or 'NOT MET', for a goal."""
    return "MET" if ok else "NOT MET"


# --- PyTorch, in its own process ----------------------------------------------------------------

def torch_worker(config):
    """Everything measured with PyTorch; runs in a subprocess and prints one JSON line.

    Array: forward + backward with ``requires_grad`` (grad reset each call) against PyTorch's own
    forward under ``no_grad``. Scalar: a fresh float64 tensor with ``requires_grad`` each call,
    forward, ``backward()``, and the gradient read back as a Python float.
    """
    import torch

    torch.set_default_dtype(torch.float64)
    x_np = sample_input(config["n"])

    x = torch.from_numpy(x_np).requires_grad_(True)

    def forward_backward():
        x.grad = None
        eq_5_36_with(torch, x).sum().backward()

    def forward_no_grad():
        with torch.no_grad():
            eq_5_36_with(torch, x).sum()

    def scalar_grad():
        s = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        eq_5_36_with(torch, s).backward()
        return s.grad.item()

    reps = config["array_repeats"]
    result = {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "grad_time": best_time(forward_backward, 1, reps),
        "no_grad_time": best_time(forward_no_grad, 1, reps),
        "scalar_time": best_time(scalar_grad, config["scalar_calls"], config["scalar_repeats"]),
    }
    forward_backward()
    result["grad_error"] = max_abs_error(x.grad.numpy(), eq_5_37(x_np))
    result["scalar_error"] = abs(scalar_grad() - float(eq_5_37(0.5)))
    print(json.dumps(result))


def torch_command(config, python=None):
    """This file again, as a PyTorch worker under ``python`` (default: this one)."""
    return [python or sys.executable, str(Path(__file__).resolve()), "--torch-worker", json.dumps(config)]


def run_torch_worker(config, python=None):
    """Start this file again as a PyTorch worker (under ``python``, default this one); its results, or None."""
    cmd = torch_command(config, python)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    except OSError as error:
        print(f"  PyTorch worker failed to start: {error}")
        return None
    if proc.returncode != 0:
        print("  PyTorch worker failed:\n    " + proc.stderr.strip().replace("\n", "\n    "))
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the report -----------------------------------------------------------------------------------

def machine_facts(config, quick, torch_python=None):
    """Print the versions and the machine, and how to install a missing comparator."""
    header("Machine")
    row("python", f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})")
    row("numpy", np.__version__)
    row("platform", platform.platform())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    row("cpu count", f"{os.cpu_count()} (usable by this process: {usable})")
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    row("cpu model", models[0] if models else platform.processor() or "unknown")
    row("mode", ("--quick" if quick else "full") + f": {config}")
    if torch_python:
        row("torch", f"measured in a subprocess of --torch-python {torch_python}")
    for name in ("autograd",) if torch_python else ("autograd", "torch"):
        if has_module(name):
            where = "measured in a subprocess" if name == "torch" else "measured in this process"
            row(name, f"installed, {where}")
        else:
            row(name, f"not installed; to compare, run: {INSTALL_HINTS[name]}")


def cheap_gradient(config, torch_result):
    """Measurement 1: time(value and gradient) / time(plain NumPy evaluation) on a large array."""
    n, reps = config["n"], config["array_repeats"]
    header(f"1. Cheap-gradient principle: eq. 5.36 on {n:,} float64 numbers, best of {reps}")
    x = sample_input(n)

    numpy_time = None
    for form, written in ((eq_5_36_with, "eq. 5.38 form"), (eq_5_36_literal_with, "as printed in eq. 5.36")):
        base = best_time(lambda: form(np, x).sum(), 1, reps)
        numpy_time = numpy_time or base  # PyTorch below is compared with the eq. 5.38 form
        value_and_grad = ad.value_and_grad(lambda x: form(ad, x).sum())
        ours_time = best_time(lambda: value_and_grad(x), 1, reps)
        error = max_abs_error(value_and_grad(x)[1], eq_5_37(x))
        ratio = ours_time / base
        print(f"  -- written {written}")
        row("plain NumPy eval, .sum()", f"{base * 1e3:8.2f} ms")
        row("autodiff value_and_grad", f"{ours_time * 1e3:8.2f} ms   (max |grad - eq. 5.37| = {error:.1e})")
        row("autodiff ratio (grad / NumPy eval)", f"{ratio:8.2f}   goal <= {GOAL_RATIO}: {verdict(ratio <= GOAL_RATIO)}")
        if has_module("autograd"):
            import autograd
            import autograd.numpy as anp

            ag_value_and_grad = autograd.value_and_grad(lambda x: form(anp, x).sum())
            ag_time = best_time(lambda: ag_value_and_grad(x), 1, reps)
            ag_error = max_abs_error(ag_value_and_grad(x)[1], eq_5_37(x))
            row("HIPS autograd value_and_grad", f"{ag_time * 1e3:8.2f} ms   (max |grad - eq. 5.37| = {ag_error:.1e})")
            row("HIPS autograd ratio (grad / NumPy eval)", f"{ag_time / base:8.2f}")
        else:
            row("HIPS autograd", f"not installed ({INSTALL_HINTS['autograd']})")

    print("  -- PyTorch, eq. 5.38 form")
    if torch_result is not None:
        t = torch_result
        row(f"PyTorch {t['version']} forward+backward", f"{t['grad_time'] * 1e3:8.2f} ms   "
            f"(max |grad - eq. 5.37| = {t['grad_error']:.1e}, {t['threads']} threads)")
        row("PyTorch forward under no_grad", f"{t['no_grad_time'] * 1e3:8.2f} ms")
        row("PyTorch ratio (vs its own no_grad forward)", f"{t['grad_time'] / t['no_grad_time']:8.2f}")
        row("PyTorch ratio (vs the NumPy eval above)", f"{t['grad_time'] / numpy_time:8.2f}")
    else:
        row("PyTorch", torch_missing(config.get("torch_python")))


def per_call_overhead(config, torch_result):
    """Measurement 2: microseconds per call of grad(eq_5_36) at the scalar 0.5."""
    calls, reps = config["scalar_calls"], config["scalar_repeats"]
    header(f"2. Per-call overhead: grad(eq_5_36)(0.5), best of {reps} x {calls:,} calls")
    grad = ad.grad(eq_5_36)
    ours = best_time(lambda: grad(0.5), calls, reps)
    error = abs(grad(0.5) - float(eq_5_37(0.5)))
    row("autodiff grad", f"{ours * 1e6:8.1f} us/call   (|grad - eq. 5.37| = {error:.1e})")

    if has_module("autograd"):
        import autograd
        import autograd.numpy as anp

        ag_grad = autograd.grad(lambda x: eq_5_36_with(anp, x))
        row("HIPS autograd grad", f"{best_time(lambda: ag_grad(0.5), calls, reps) * 1e6:8.1f} us/call")
    else:
        row("HIPS autograd", f"not installed ({INSTALL_HINTS['autograd']})")

    if torch_result is not None:
        theirs = torch_result["scalar_time"]
        row("PyTorch (fresh tensor, backward, .grad.item())", f"{theirs * 1e6:8.1f} us/call   "
            f"(|grad - eq. 5.37| = {torch_result['scalar_error']:.1e})")
        row("ratio autodiff / PyTorch", f"{ours / theirs:8.2f}   goal < 1 (below PyTorch): {verdict(ours < theirs)}")
    else:
        row("PyTorch", torch_missing(config.get("torch_python")) + "; goal 'below PyTorch' not checked")


def chain(x, steps):
    """``steps`` Euler steps of y' = sin(y) over [0, 1]: y <- sin(y) * h + y with h = 1 / steps.

    Each step records three nodes (sin, mul, add) and one constant leaf (h). With h = 1 / steps
    the derivative dy/dx stays of order one; a fixed factor such as 0.5 would drive y to pi, where
    each step multiplies the derivative by about 0.5, and the gradient would underflow to zero.
    """
    h = 1.0 / steps
    y = x
    for _ in range(steps):
        y = ad.sin(y) * h + y
    return y


def chain_derivative(x, steps):
    """dy/dx of ``chain`` with plain floats: d <- d * (1 + h cos(y)) alongside each step."""
    h = 1.0 / steps
    y, d = x, 1.0
    for _ in range(steps):
        d *= 1.0 + h * math.cos(y)
        y += h * math.sin(y)
    return d


def timed(fn):
    """(seconds, result) of one call of ``fn``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def long_chain(config):
    """Measurement 3: record, sweep backwards and sweep forwards through a long chain of ops."""
    steps = config["chain_steps"]
    header(f"3. A long chain: {steps:,} steps of y = ad.sin(y) * (1/{steps}) + y from x = 0.1")
    print("  (one run of each phase, garbage collector on as in normal use)")
    x0 = 0.1
    expected = chain_derivative(x0, steps)
    failures = []
    try:
        x = ad.Tensor(x0, requires_grad=True)
        record_s, y = timed(lambda: chain(x, steps))
        order, _ = ad.toposort([y])  # the nodes a sweep visits: x and the recorded ops
        ops = sum(node.op is not None for node in order)
        constants = sum(not inp.requires_grad for node in order for inp in node.inputs)
        row("graph recorded", f"{ops:,} op nodes (sin, mul, add) + {len(order) - ops} leaf (x)")
        row("", f"+ {constants:,} constant leaves (h), held but not swept")
        row("record (forward pass, building the graph)", f"{record_s:8.3f} s   {ops / record_s:12,.0f} op nodes/s")

        backward_s, _ = timed(y.backward)
        row("y.backward()", f"{backward_s:8.3f} s   {ops / backward_s:12,.0f} op nodes/s"
            f"   (rel. error {abs(float(x.grad) - expected) / abs(expected):.1e})")
        row("reverse total (record + backward)", f"{record_s + backward_s:8.3f} s")
        del y, order, x  # free the graph before the forward-mode run

        jvp_s, (_, tangent) = timed(lambda: ad.jvp(lambda x: chain(x, steps), (x0,), (1.0,)))
        row("ad.jvp (records the chain, then sweeps forward)", f"{jvp_s:8.3f} s   {ops / jvp_s:12,.0f} op nodes/s"
            f"   (rel. error {abs(float(tangent) - expected) / abs(expected):.1e})")
        row("dy/dx (plain-float recurrence, for the checks)", f"{expected:.12g}")
    except RecursionError as exc:
        failures.append(exc)
        row("RecursionError", str(exc))
    row("RecursionError", f"{'none' if not failures else 'YES'} (recursion limit {sys.getrecursionlimit()})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (1e5 elements, a 10,000-step chain, fewer repeats): a smoke run")
    parser.add_argument("--no-torch", action="store_true", help="do not start the PyTorch subprocess")
    parser.add_argument("--torch-python", metavar="PATH", default=None,
                        help="the Python that has torch, for the PyTorch worker (default: this one, if it has)")
    parser.add_argument("--only", metavar="NAMES", default=None,
                        help="run only these problems of section 4, comma-separated (sections 1-3 skipped): "
                             "gmm, logsumexp, ode, det, ba, vander, tiny (tiny-numpy, tiny-autodiff)")
    parser.add_argument("--profile", action="store_true",
                        help="section 4: print cProfile's top 5 functions (by own time) of each of our gradients")
    parser.add_argument("--torch-worker", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.torch_worker:
        config = json.loads(args.torch_worker)
        if config.get("problems"):
            import engine_problems_run

            engine_problems_run.torch_worker(config)
        else:
            torch_worker(config)
        return

    import engine_problems_run  # noqa: E402  (benchmarks/, on sys.path above)

    if args.only:
        engine_problems_run.select(args.only)  # an unknown name stops here, before anything is measured
    config = dict(QUICK if args.quick else FULL)
    start = time.perf_counter()
    print("autodiff engine benchmarks (every number below was measured in this run)")
    machine_facts(config, args.quick, args.torch_python)
    python = None if args.no_torch else args.torch_python or (sys.executable if has_module("torch") else None)
    config["torch_python"] = args.torch_python
    if not args.only:
        torch_result = run_torch_worker(config, python) if python else None  # before ours: never overlapping
        cheap_gradient(config, torch_result)
        per_call_overhead(config, torch_result)
        long_chain(config)
    missing = "not measured (--no-torch)" if args.no_torch else None if python else torch_missing(args.torch_python)
    engine_problems_run.section(args.quick, args.only, SEED, lambda c: torch_command(c, python), missing,
                                args.profile)
    print(f"\nTotal wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
