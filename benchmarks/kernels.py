"""Kernel benchmarks on the source material's Keras MNIST CNN at batch 128 (run by hand).

    python benchmarks/kernels.py                          # all kernels, both OpenBLAS settings: minutes
    python benchmarks/kernels.py --no-compile             # without the compile-time measurement
    python benchmarks/kernels.py --torch-python PATH      # PyTorch from another environment
    python benchmarks/kernels.py --quick                  # batch 8, a smoke run
    python benchmarks/kernels.py --coretype Haswell       # OPENBLAS_CORETYPE=Haswell for the first run only

Shapes: conv1 128x1x28x28 -> 32 filters 3x3, conv2 128x32x13x13 -> 64 filters 3x3, max-pools 2x2
(after conv1: 128x32x26x26, after conv2: 128x64x11x11), the dense layer 128x1600 -> 10, Adam over
34,826 parameters. Each convolution's backward is also measured as a training step runs it, through
its ReLU and max pooling from the pooling's gradient ("conv1+pool1 backward (w)": nn's fused reverse
rule, kernels.conv2d.backward_pooled; PyTorch's autograd over max_pool2d(relu(conv2d)) beside it).

Our products go through OpenBLAS, whose speed depends on the kernel it picks for the CPU, which a user
may override (``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``) and the library never does. So everything is
measured twice, each time in child processes: [1] with the environment as it is (``--coretype NAME``
sets ``OPENBLAS_CORETYPE`` in that run's children only), [2] with both variables removed (OpenBLAS's
own choice); PyTorch with the same environment beside each, so each table's ours/torch ratios come
from one pair of processes. Each row also has its place on the roofline (``benchmarks/roofline.py``
explains it): its arithmetic intensity and the share of the bound that limits it, against this
run's own measured peak (the better of a vector-FMA loop and sgemm) and memory bandwidth (triad).

Every number is measured in this run: milliseconds (best of several calls after a warm-up) and
GFLOP/s for our Numba CPU kernels, the NumPy reference, and PyTorch CPU when it is installed. Beside
each convolution: im2col's per-image products alone (the images shared out over Numba's threads) by
our micro-kernel ("gemm ms", kernels.microkernel, as kernels.conv2d.cpu makes them) and by BLAS on one
thread ("blas ms", which follows OpenBLAS's choice of kernels); conv2 goes mostly through Winograd.
PyTorch runs in its own process (its thread pool and Numba's must not share one). Compile time is
measured once, in fresh processes: with an empty Numba cache (cold) and with the cache filled (cached).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:                 # the kernels package before this file, also named kernels
    sys.path.insert(0, str(REPO))
if str(REPO / "benchmarks") not in sys.path:  # train_step, when this file is imported as benchmarks.kernels
    sys.path.append(str(REPO / "benchmarks"))

from kernels_torch import best_ms  # noqa: E402  (PyTorch's worker: the same timing, torch imported only there)
from train_step import OPENBLAS_VARIABLES, cpu_flags, cpu_model, openblas_settings  # noqa: E402

ADAM_PARAMS = 34_826
ADAM_OPS = 13          # per parameter: m 3, v 4, the denominator 3 (sqrt, /, +), p 3 (/, *, -)


def shapes(batch):
    """The benchmark's cases: name -> (input shape, weight shape) for convs and the dense layer, input
    shape for pools."""
    return {
        "conv1": ((batch, 1, 28, 28), (32, 1, 3, 3)),
        "conv2": ((batch, 32, 13, 13), (64, 32, 3, 3)),
        "pool1": (batch, 32, 26, 26),
        "pool2": (batch, 64, 11, 11),
        "dense": ((batch, 1600), (1600, 10)),
    }


#: The convolutions whose backward is also measured through their ReLU and 2x2 max pooling, from the pooling's
#: gradient (kernels.conv2d.backward_pooled, nn's fused reverse rule): name -> whether dx is wanted too.
FUSED = {"conv1": False, "conv2": True}


def fused_case(name):
    return f"{name}+pool{name[-1]} backward ({'x, ' if FUSED[name] else ''}w)"


def conv_flops(x_shape, w_shape):
    n, c, h, w = x_shape
    f, _, kh, kw = w_shape
    return 2.0 * n * f * c * kh * kw * (h - kh + 1) * (w - kw + 1)


def _size(shape):
    out = 1
    for d in shape:
        out *= d
    return out


def counts(batch):
    """{case: (flops, bytes)}, the roofline's model of each kernel: FLOPs of its products (2 per
    multiply-add; bias adds not counted), max-pooling's comparisons counted as operations (3 per 2x2
    window), Adam's ADAM_OPS per parameter, a scatter none; bytes the compulsory traffic, every input
    read once and every output written once (float32; max-pooling's forward writes y alone, as PyTorch's
    max_pool2d without indices, and its backward reads g and x, finding the argmax again as nn's does:
    kernels.pool2d.max_scatter; PyTorch's backward reads its saved int64 indices instead)."""
    f4, out = 4.0, {}
    for name in ("conv1", "conv2"):
        (n, c, h, w), (f, _, kh, kw) = xs, ws = shapes(batch)[name]
        x, wt, y = _size(xs), _size(ws), n * f * (h - kh + 1) * (w - kw + 1)
        flops = conv_flops(xs, ws)
        out[f"{name} forward"] = flops, f4 * (x + wt + f + y)
        out[f"{name} backward input"] = flops, f4 * (y + wt + x)
        out[f"{name} backward weight"] = flops, f4 * (y + x + wt + f)
    for name, wants_x in FUSED.items():        # g, pooled y, relu_out and x in, dw and db out (and w in, dx out)
        (n, c, h, w), (f, _, kh, kw) = xs, ws = shapes(batch)[name]
        x, wt, y = _size(xs), _size(ws), n * f * (h - kh + 1) * (w - kw + 1)
        pooled = n * f * ((h - kh + 1) // 2) * ((w - kw + 1) // 2)
        out[fused_case(name)] = (1 + wants_x) * conv_flops(xs, ws), f4 * (2 * pooled + y + x + wt + f + wants_x * (x + wt))
    for name in ("pool1", "pool2"):
        n, c, h, w = shapes(batch)[name]
        x, y = n * c * h * w, n * c * (h // 2) * (w // 2)
        out[f"{name} max forward"] = 3.0 * y, f4 * (x + y)
        out[f"{name} max backward"] = 3.0 * y, f4 * (y + 2 * x)
    (n, fan_in), (_, units) = shapes(batch)["dense"]
    x, wt, y, flops = n * fan_in, fan_in * units, n * units, 2.0 * n * fan_in * units
    out["dense forward"] = flops, f4 * (x + wt + units + y)
    out["dense backward input"] = flops, f4 * (y + wt + x)
    out["dense backward weight"] = flops, f4 * (y + x + wt + units)
    out["adam update (34,826 params)"] = ADAM_OPS * ADAM_PARAMS, f4 * 7 * ADAM_PARAMS   # p g m v in, p m v out
    return out


# --- ours ----------------------------------------------------------------------------------------

def measure_ours(batch, repeat, backend):
    """{case: ms} for our kernels on one backend."""
    import kernels
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for name in ("conv1", "conv2"):
        xs, ws = shapes(batch)[name]
        x = rng.standard_normal(xs, dtype=np.float32)
        w = rng.standard_normal(ws, dtype=np.float32)
        b = rng.standard_normal(ws[0], dtype=np.float32)
        y = kernels.conv2d_forward(x, w, b, backend=backend)
        g = rng.standard_normal(y.shape, dtype=np.float32)
        out[f"{name} forward"] = best_ms(lambda: kernels.conv2d_forward(x, w, b, backend=backend), repeat)
        out[f"{name} backward input"] = best_ms(
            lambda: kernels.conv2d_backward_input(g, w, xs, backend=backend), repeat)
        out[f"{name} backward weight"] = best_ms(
            lambda: kernels.conv2d_backward_weight(g, x, ws, backend=backend), repeat)
    geometry, pool = kernels.ConvGeometry(), kernels.PoolGeometry(2)
    for name, wants_x in FUSED.items():
        xs, ws = shapes(batch)[name]
        x, w = rng.standard_normal(xs, dtype=np.float32), rng.standard_normal(ws, dtype=np.float32)
        relu_out = kernels.conv2d.forward(x, w, rng.standard_normal(ws[0], dtype=np.float32), geometry, relu=True,
                                          backend=backend).copy()
        pooled = kernels.pool2d.max_values(relu_out, pool, backend=backend).copy()
        g = rng.standard_normal(pooled.shape, dtype=np.float32)
        out[fused_case(name)] = best_ms(lambda: kernels.conv2d.backward_pooled(
            g, pooled, x, w, relu_out, geometry, pool, input_grad=wants_x, backend=backend), repeat)
    for name in ("pool1", "pool2"):
        x = rng.standard_normal(shapes(batch)[name], dtype=np.float32)
        g, pool = rng.standard_normal(kernels.max_pool2d(x, 2).shape, dtype=np.float32), kernels.PoolGeometry(2)
        out[f"{name} max forward"] = best_ms(lambda: kernels.max_pool2d(x, 2, backend=backend), repeat)
        out[f"{name} max backward"] = best_ms(lambda: kernels.pool2d.max_scatter(g, x, pool, backend=backend), repeat)
    xs, ws = shapes(batch)["dense"]
    x, w = rng.standard_normal(xs, dtype=np.float32), rng.standard_normal(ws, dtype=np.float32)
    b, g = rng.standard_normal(ws[1], dtype=np.float32), rng.standard_normal((xs[0], ws[1]), dtype=np.float32)
    out["dense forward"] = best_ms(lambda: kernels.dense.forward(x, w, b, backend=backend), repeat * 5)
    out["dense backward input"] = best_ms(lambda: kernels.dense.backward_input(g, w, backend=backend), repeat * 5)
    out["dense backward weight"] = best_ms(lambda: kernels.dense.backward_weight(g, x, backend=backend), repeat * 5)
    p = rng.standard_normal(ADAM_PARAMS, dtype=np.float32)
    grad = rng.standard_normal(ADAM_PARAMS, dtype=np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    step = [0]

    def adam():
        step[0] += 1
        kernels.adam_update(p, grad, m, v, step=step[0], backend=backend)

    out["adam update (34,826 params)"] = best_ms(adam, repeat * 20)
    return out


# --- the products alone ------------------------------------------------------------------------------

def measure_gemm(batch, repeat):
    """{"gemm": {conv direction: ms}, "gemm_blas": {...}}: im2col's products alone, by gemm and by BLAS."""
    import numba
    import numpy as np
    from numba import njit, prange

    from kernels import runtime
    from kernels.microkernel import gemm

    runtime.configure()

    @njit(parallel=True)
    def products(a, b, out, blas, weight, images):
        # one buffer per chunk of images, reused image after image as the kernels reuse theirs (so the
        # operands stay in cache, as in the kernels): the time is the products' alone. Backward weight
        # as cpu.py makes it, dw.T (+)= cols @ g.T (b = g.T given transposed), BLAS the same product
        per = (images + a.shape[0] - 1) // a.shape[0]
        for t in prange(a.shape[0]):
            for _ in range(t * per, min(images, (t + 1) * per)):
                if blas:
                    np.dot(a[t], b[t], out[t])
                else:
                    gemm(a[t], b[t], out[t], weight)

    rng = np.random.default_rng(0)
    chunks = max(1, min(batch, 4 * numba.get_num_threads()))     # as kernels.conv2d.cpu splits a batch
    out = {"gemm": {}, "gemm_blas": {}}
    for name in ("conv1", "conv2"):
        xs, ws = shapes(batch)[name]
        f, k, hw = ws[0], ws[1] * ws[2] * ws[3], (xs[2] - ws[2] + 1) * (xs[3] - ws[3] + 1)

        def buffers(*shape):
            return rng.standard_normal((chunks, *shape), dtype=np.float32)
        cases = {"forward": (buffers(f, k), buffers(k, hw), buffers(f, hw)),          # w @ cols
                 "backward input": (buffers(k, f), buffers(f, hw), buffers(k, hw)),   # w.T @ g
                 "backward weight": (buffers(k, hw), buffers(hw, f), buffers(k, f))}  # cols @ g.T
        with runtime.single_threaded_blas():                     # every BLAS on one thread, as in the kernels
            for kind, blas in (("gemm", False), ("gemm_blas", True)):
                for direction, (a, b, c) in cases.items():
                    out[kind][f"{name} {direction}"] = best_ms(
                        lambda: products(a, b, c, blas, direction == "backward weight", batch), repeat)
    return out


# --- the machine: its roofline ---------------------------------------------------------------------

def measure_machine(quick, sgemm_sizes=(1024, 2048)):
    """The roofline's measurements (kernels.roofline): FLOP/s of the FMA loop and of NumPy's sgemm at
    each size on all threads and on one, bytes/s of the triad beyond the caches and within them."""
    import numba
    import numpy as np

    from kernels import roofline

    sizes = (256,) if quick else sgemm_sizes
    seconds = 0.05 if quick else 0.5
    return {"fma": roofline.peak_flops(seconds=seconds), "fma_instructions": roofline.fma_instructions(),
            "threads": numba.get_num_threads(),
            "sgemm": [(n, threads, roofline.sgemm_flops(n, threads=threads, seconds=seconds))
                      for n in sizes for threads in (numba.get_num_threads(), 1)],
            "dram": roofline.triad_bandwidth(1 << (20 if quick else 25), seconds=seconds),
            "dram_mib": 4 << (20 if quick else 25) >> 20,
            "cache": roofline.triad_bandwidth(1 << 14, seconds=seconds), "numpy": np.__version__,
            "numba": numba.__version__}


def roof_of(machine):
    """(Roofline, which measurement is its compute roof): the better of the FMA loop and the best
    sgemm (a BLAS faster than our loop means the loop is not the machine's peak), and the triad beyond
    the caches as the bandwidth."""
    from kernels.roofline import Roofline

    n, threads, sgemm = max(machine["sgemm"], key=lambda row: row[2])
    if sgemm > machine["fma"]:
        return Roofline(sgemm, machine["dram"]), f"sgemm {n}^3 on {threads} thread(s)"
    return Roofline(machine["fma"], machine["dram"]), "FMA loop"


def place(roof, case, ms, batch):
    """(arithmetic intensity, share of the bound that limits the case, 'compute' or 'memory')."""
    flops, nbytes = counts(batch)[case]
    limit = "memory" if flops == 0 or flops / nbytes < roof.ridge else "compute"
    return flops / nbytes, roof.fraction(flops, nbytes, ms / 1e3), limit


# --- PyTorch, in its own process -----------------------------------------------------------------

#: PyTorch's worker script (run by path with the Python that has torch).
TORCH_WORKER = Path(__file__).resolve().parent / "kernels_torch.py"


def measure_torch(batch, repeat, python=sys.executable, env=None):
    cases = {**shapes(batch), "fused": FUSED, "fused_names": {name: fused_case(name) for name in FUSED},
             "adam_params": ADAM_PARAMS}
    proc = subprocess.run([python, str(TORCH_WORKER), str(batch), str(repeat), json.dumps(cases)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


# --- compile time --------------------------------------------------------------------------------

COMPILE_WORKER = r"""
import time
t0 = time.perf_counter()
import kernels
import numpy as np
x = np.ones((2, 3, 6, 6), np.float32); w = np.ones((4, 3, 3, 3), np.float32)
y = kernels.conv2d_forward(x, w, None)
kernels.conv2d_backward_input(y, w, x.shape); kernels.conv2d_backward_weight(y, x, w.shape)
p, a = kernels.max_pool2d_forward(x, 2); kernels.max_pool2d_backward(p, a, x.shape); kernels.max_pool2d(x, 2)
kernels.pool2d.max_scatter(p, x, kernels.PoolGeometry(2))          # nn's backward: from x
q = kernels.avg_pool2d_forward(x, 2); kernels.avg_pool2d_backward(q, x.shape, 2)
v, dv = np.ones(10, np.float32), np.ones(10, np.float32); s = [np.zeros_like(v) for _ in range(3)]
kernels.sgd_update(v, dv, s[0], step=1, lr=0.1, momentum=0.9)
kernels.adagrad_update(v, dv, s[0], step=1)
kernels.adadelta_update(v, dv, s[0], s[1], step=1)
kernels.rmsprop_update(v, dv, s[0], step=1)
kernels.adam_update(v, dv, s[0], s[1], step=1)
kernels.adamw_update(v, dv, s[0], s[1], step=1)
print(time.perf_counter() - t0)
"""


def measure_compile():
    """Seconds for import + first call of every CPU kernel: cold (empty cache), then cached."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(REPO))
        runs = []
        for _ in range(2):
            proc = subprocess.run([sys.executable, "-c", COMPILE_WORKER], capture_output=True, text=True, env=env,
                                  cwd=REPO)
            if proc.returncode != 0:
                return None, proc.stderr.strip().splitlines()[-1]
            runs.append(float(proc.stdout.strip().splitlines()[-1]))
    return runs, None


# --- one OpenBLAS setting, in a child process ---------------------------------------------------------

def measure_setting(quick):
    """Everything but PyTorch and compile time, in this process (the --worker child of one setting)."""
    import numba
    import threadpoolctl

    from kernels import runtime

    batch, repeat = (8, 2) if quick else (128, 7)
    result = {"ours": measure_ours(batch, repeat, "cpu"), **measure_gemm(batch, repeat),
              "reference": measure_ours(batch, max(1, repeat // 3), "numpy"), "machine": measure_machine(quick),
              "openblas": {k: os.environ.get(k) for k in OPENBLAS_VARIABLES}}
    result["blas"] = sorted({f"{i.get('architecture')} ({Path(i['filepath']).name})"
                             for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"})
    status = runtime.status()
    result["runtime"] = (f"numba threads {numba.get_num_threads()} ({status.threading_layer} layer); "
                         f"BLAS {'on one thread' if status.blas_single_threaded else 'multi-threaded'} in the kernels")
    return result


def run_setting(env, args, batch, repeat):
    """(our worker's result or None, its note, PyTorch's result or None, its note) under ``env``."""
    proc = subprocess.run([sys.executable, __file__, "--worker"] + ["--quick"] * args.quick, env=env, cwd=REPO,
                          capture_output=True, text=True)
    ours = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    note = None if ours else (proc.stderr.strip().splitlines() or ["failed"])[-1]
    torch, torch_note = ((None, "skipped (--no-torch)") if args.no_torch
                         else measure_torch(batch, repeat, args.torch_python, env))
    return ours, note, torch, torch_note


# --- report --------------------------------------------------------------------------------------

def flops_of(case, batch):
    """The products' FLOPs of a convolution or dense case (its GFLOP/s column), else None."""
    return counts(batch)[case][0] if case.startswith(("conv", "dense")) else None


def machine_line(machine, roof, which):
    sgemm = ", ".join(f"{n}^3 on {t} thread{'s' * (t > 1)} {f / 1e9:.0f}" for n, t, f in machine["sgemm"])
    fmas = ", ".join(f"{n} on {kind}" for kind, n in machine["fma_instructions"].items())
    return (f"  roof: {roof.peak / 1e9:.0f} GFLOP/s ({which}), {roof.bandwidth / 1e9:.1f} GB/s (triad, 3 arrays "
            f"of {machine['dram_mib']} MiB; {machine['cache'] / 1e9:.0f} GB/s in cache), ridge {roof.ridge:.1f} "
            f"FLOP/byte; FMA loop {machine['fma'] / 1e9:.0f} GFLOP/s ({fmas} FMA instructions), sgemm GFLOP/s: {sgemm}")


def report(title, result, note, torch, batch):
    """One setting's table: ours, the products alone, NumPy, PyTorch, ours/torch and the roofline."""
    print(title)
    if result is None:
        print(f"  not measured: {note}")
        return
    roof, which = roof_of(result["machine"])
    header = (f"{'kernel':30} {'ours ms':>9} {'GFLOP/s':>8} {'gemm ms':>8} {'blas ms':>8} {'numpy ms':>9} "
              f"{'torch ms':>9} "
              f"{'GFLOP/s':>8} {'ours/torch':>10} {'AI':>6} {'of roof':>16}")
    print(header)
    print("-" * len(header))
    for case, ms in result["ours"].items():
        flops = flops_of(case, batch)
        t = torch.get(case) if torch else None
        gf = f"{flops / ms / 1e6:8.1f}" if flops else " " * 8
        tgf = f"{flops / t / 1e6:8.1f}" if flops and t else " " * 8
        ratio = f"{t / ms:9.2f}x" if t else " " * 10
        products = " ".join(f"{result[kind][case]:8.3f}" if case in result[kind] else " " * 8
                            for kind in ("gemm", "gemm_blas"))
        ai, fraction, limit = place(roof, case, ms, batch)
        print(f"{case:30} {ms:9.3f} {gf} {products} {result['reference'][case]:9.2f} "
              f"{t if t else float('nan'):9.3f} {tgf} {ratio} {ai:6.2f} {100 * fraction:6.1f}% {limit:>8}")
    print(machine_line(result["machine"], roof, which))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 8 and few repeats (a smoke run)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--torch-python", default=sys.executable, help="the Python that has torch")
    parser.add_argument("--coretype", default=None, help="OPENBLAS_CORETYPE for run [1]'s processes only")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure_setting(args.quick)))
        return
    batch, repeat = (8, 2) if args.quick else (128, 7)
    runs = [(title, *run_setting(env, args, batch, repeat)) for title, env in openblas_settings(args.coretype)]
    compile_runs, compile_note = (None, "skipped (--no-compile)") if args.no_compile else measure_compile()

    first = next((r[1] for r in runs if r[1]), None)
    torch = next((r[3] for r in runs if r[3]), None)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores; {cpu_flags()})")
    print(f"kernels benchmark, batch {batch}, float32; "
          + (f"numpy {first['machine']['numpy']}, numba {first['machine']['numba']}, {first['runtime']}; "
             if first else "") + (f"PyTorch {torch['version']} (own process, {torch['threads']} threads)" if torch
                                  else f"PyTorch not measured: {runs[0][4]} (pip install torch==2.13.0)"))
    for n, (title, result, note, torch_result, _) in enumerate(runs, 1):
        seen = result and ", ".join(f"{k}={v}" if v is not None else f"{k} unset"
                                    for k, v in result["openblas"].items())
        blas = f"; its processes see {seen}; OpenBLAS's kernels: {', '.join(result['blas'])}" if result else ""
        report(f"[{n}] {title}{blas}", result, note, torch_result, batch)
    print("ours/torch = torch time / our time: above 1 means we are faster (throughput ratio); of roof = our "
          "share of min(peak, AI x bandwidth), AI in FLOP/byte of compulsory traffic (benchmarks/roofline.py)")
    if compile_runs:
        print(f"import + first call of every CPU kernel: cold (empty cache) {compile_runs[0]:.1f} s, "
              f"cached {compile_runs[1]:.2f} s (goal: cached < 2 s)")
    else:
        print(f"compile time not measured: {compile_note}")


if __name__ == "__main__":
    main()
