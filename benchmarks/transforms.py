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

vmap: per-example gradients of a 32-64-10 MLP (float64, tanh, softmax cross-entropy) over 256 examples:
``vmap(grad(loss), in_axes=(None, None, None, None, 0, 0))`` against the Python loop of ``grad`` over the
examples (the values checked equal), and, where installed, ``torch.func.vmap(torch.func.grad(...))``,
``jax.vmap(jax.grad(...))`` and ``jax.jit(jax.vmap(jax.grad(...)))`` on the same data (the last against
``ad.compile(vmap(grad(...)))``, the batched program compiled), in a child
process (``--oracle-python`` names the interpreter that has them; this one by default). They are
benchmark oracles only, never dependencies.

jacobian: a Jacobian with 26 rows (two arguments) by ``ad.jacobian``, which seeds one reverse sweep with
every unit vector at once (as ``jax.jacrev`` maps a vjp), against one vjp per row.

A new section is a function ``section(quick, args)`` that prints its lines, added to ``SECTIONS``.
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


def _best_ms(fn, repeats, collect=True):
    """The best of single calls after one warm-up, in ms; ``collect``: garbage collected before each (the
    checkpoint section's memory-bound runs), else timed as the oracles' process times theirs."""
    fn()   # warm-up
    times = []
    for _ in range(repeats):
        if collect:
            gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def checkpoint_section(quick, args=None):
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


# --- vmap ----------------------------------------------------------------------------------------

VMAP_FULL = dict(examples=256, sizes=(32, 64, 10), repeats=20)
VMAP_QUICK = dict(examples=8, sizes=(4, 5, 3), repeats=2)


def _example_loss(w1, b1, w2, b2, x, t):
    """One example's softmax cross-entropy (t one-hot) through a tanh layer."""
    z = ad.tanh(x @ w1 + b1) @ w2 + b2
    return ad.logsumexp(z) - ad.sum(z * t)


ORACLE = """
import sys, time, json
import numpy as np
data = np.load(sys.argv[1]); repeats = int(sys.argv[2]); out = {}
names = ["w1", "b1", "w2", "b2", "x", "t"]
def best(fn):
    fn(); times = []
    for _ in range(repeats):
        start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    return 1e3 * min(times)
try:
    import torch
    from torch.func import grad, vmap
    torch.set_num_threads(1)
    w1, b1, w2, b2, x, t = (torch.from_numpy(data[k]) for k in names)
    def loss(w1, b1, w2, b2, x, t):
        z = torch.tanh(x @ w1 + b1) @ w2 + b2
        return torch.logsumexp(z, 0) - (z * t).sum()
    f = vmap(grad(loss, argnums=(0, 1, 2, 3)), in_dims=(None,) * 4 + (0, 0))
    out["torch.func.vmap(grad)"] = best(lambda: f(w1, b1, w2, b2, x, t))
    out["torch.func.vmap(grad) dw1"] = f(w1, b1, w2, b2, x, t)[0].numpy().tolist()
except ImportError:
    pass
try:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp
    args = [jnp.asarray(data[k]) for k in names]
    def jloss(w1, b1, w2, b2, x, t):
        z = jnp.tanh(x @ w1 + b1) @ w2 + b2
        return logsumexp(z) - (z * t).sum()
    g = jax.vmap(jax.grad(jloss, argnums=(0, 1, 2, 3)), in_axes=(None,) * 4 + (0, 0))
    out["jax.vmap(grad)"] = best(lambda: jax.block_until_ready(g(*args)))
    jg = jax.jit(g)
    out["jax.jit(jax.vmap(grad))"] = best(lambda: jax.block_until_ready(jg(*args)))
except ImportError:
    pass
print(json.dumps(out))
"""


def _oracles(arrays, repeats, python):
    """The oracles' times (ms) in a child process on one thread: {name: ms}, empty where none is installed."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, **arrays)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}
        done = subprocess.run([python, "-c", ORACLE, path, str(repeats)], capture_output=True, text=True, env=env,
                              timeout=600)
    if done.returncode != 0:
        print(f"vmap: the oracles' process failed: {done.stderr.strip().splitlines()[-1:]}")
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def vmap_section(quick, args=None):
    """Per-example gradients: vmap(grad) against the loop, and against torch.func and JAX where installed."""
    c = VMAP_QUICK if quick else VMAP_FULL
    n_in, n_hidden, n_out = c["sizes"]
    rng = np.random.default_rng(0)
    arrays = dict(w1=rng.normal(0, 0.3, (n_in, n_hidden)), b1=rng.normal(0, 0.1, n_hidden),
                  w2=rng.normal(0, 0.3, (n_hidden, n_out)), b2=rng.normal(0, 0.1, n_out),
                  x=rng.normal(size=(c["examples"], n_in)),
                  t=np.eye(n_out)[rng.integers(0, n_out, c["examples"])])
    params = [arrays[k] for k in ("w1", "b1", "w2", "b2")]
    xs, ts = arrays["x"], arrays["t"]
    per_example = ad.grad(_example_loss, argnums=(0, 1, 2, 3))
    mapped = ad.vmap(per_example, in_axes=(None,) * 4 + (0, 0))

    def loop():
        return [per_example(*params, x, t) for x, t in zip(xs, ts)]

    batched = mapped(*params, xs, ts)
    looped = [np.stack(g) for g in zip(*loop())]
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(batched, looped))
    print(f"vmap: MLP {n_in}-{n_hidden}-{n_out}, float64, {c['examples']} examples; largest difference between "
          f"vmap(grad) and the loop of grad: {worst:.1e}")
    ms_loop = _best_ms(loop, max(2, c["repeats"] // 4), collect=False)
    ms_vmap = _best_ms(lambda: mapped(*params, xs, ts), c["repeats"], collect=False)
    print(f"vmap: loop of grad {ms_loop:.2f} ms, vmap(grad) {ms_vmap:.2f} ms ({ms_loop / ms_vmap:.1f} x faster)")
    compiled = ad.compile(mapped, *params, xs, ts, mode="value")
    worst_compiled = max(float(np.max(np.abs(a - b))) for a, b in zip(compiled(*params, xs, ts), looped))
    ms_compiled = _best_ms(lambda: compiled(*params, xs, ts), c["repeats"], collect=False)
    print(f"vmap: ad.compile(vmap(grad)) {ms_compiled:.2f} ms (largest difference from the loop {worst_compiled:.1e})")
    python = getattr(args, "oracle_python", None) or sys.executable
    oracles = {} if getattr(args, "no_oracles", False) else _oracles(arrays, c["repeats"], python)
    reference = oracles.pop("torch.func.vmap(grad) dw1", None)
    if reference is not None:
        print(f"vmap: largest difference from torch.func's dw1: {float(np.max(np.abs(batched[0] - reference))):.1e}")
    for name, ms in oracles.items():
        print(f"vmap: {name} {ms:.2f} ms; vmap(grad) takes {ms_vmap / ms:.2f} x its time, compiled "
              f"{ms_compiled / ms:.2f} x")
    if not oracles:
        print("vmap: torch.func and JAX not measured (neither importable by the oracle interpreter: "
              "pip install torch==2.13.0 'jax[cpu]', or --oracle-python)")
    if worst > 1e-12 or worst_compiled > 1e-12:
        raise SystemExit("vmap: vmap(grad) or its compiled program differs from the loop of grad")


# --- jacobian --------------------------------------------------------------------------------------

JACOBIAN_FULL = dict(inputs=64, outputs=26, repeats=20)
JACOBIAN_QUICK = dict(inputs=5, outputs=4, repeats=2)


def jacobian_section(quick, args=None):
    """A Jacobian with many rows: one batched reverse sweep (ad.jacobian) against one vjp per row."""
    c = JACOBIAN_QUICK if quick else JACOBIAN_FULL
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(c["outputs"], c["inputs"])), rng.normal(size=c["inputs"])

    def f(x, y):
        return ad.tanh(a @ (x * y)) * ad.sum(ad.sin(x))

    x, y = rng.normal(size=c["inputs"]), b

    def per_row():
        _, pullback = ad.vjp(f, x, y)
        rows = [pullback(e) for e in np.eye(c["outputs"])]
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    jac = ad.jacobian(f, argnums=(0, 1))
    worst = max(float(np.max(np.abs(p - q))) for p, q in zip(jac(x, y), per_row()))
    ms_rows = _best_ms(per_row, c["repeats"])
    ms_jac = _best_ms(lambda: jac(x, y), c["repeats"])
    print(f"jacobian: R^{c['inputs']} x R^{c['inputs']} -> R^{c['outputs']}, argnums=(0, 1): one vjp per row "
          f"{ms_rows:.2f} ms, ad.jacobian (one batched sweep) {ms_jac:.2f} ms ({ms_rows / ms_jac:.1f} x faster); "
          f"largest difference {worst:.1e}")
    if worst > 1e-12:
        raise SystemExit("jacobian: the batched sweep differs from the rows")


SECTIONS = {"checkpoint": checkpoint_section, "vmap": vmap_section, "jacobian": jacobian_section}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append",
                        help="run this section only (may be repeated); all by default")
    parser.add_argument("--oracle-python", help="the interpreter with torch and/or jax (default: this one)")
    parser.add_argument("--no-oracles", action="store_true", help="do not start the torch/JAX process")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores; {cpu_flags()}); numpy {np.__version__}")
    start = time.perf_counter()
    for name, section in SECTIONS.items():
        if not args.only or name in args.only:
            section(args.quick, args)
    print(f"Total wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
