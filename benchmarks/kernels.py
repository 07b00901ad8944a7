"""Kernel benchmarks on the source material's Keras MNIST CNN at batch 128 (run by hand).

    python benchmarks/kernels.py                          # all kernels, about a minute or two
    python benchmarks/kernels.py --torch-python PATH      # PyTorch from another environment
    python benchmarks/kernels.py --quick                  # batch 8, a smoke run

Shapes: conv1 128x1x28x28 -> 32 filters 3x3, conv2 128x32x13x13 -> 64 filters 3x3, max-pools 2x2
(after conv1: 128x32x26x26, after conv2: 128x64x11x11), Adam over 34,826 parameters.

Every number is measured in this run: milliseconds (best of several calls after a warm-up) and
GFLOP/s for our Numba CPU kernels, the NumPy reference, and PyTorch CPU when it is installed. Beside
each convolution, "gemm ms" is its matrix products alone, made the way the kernel makes them (one
single-threaded BLAS product per image, the images shared out over Numba's threads), so that the time
around the products (im2col, col2im, bias and ReLU) is the difference.
PyTorch runs in its own process (its thread pool and Numba's must not share one). Compile time is
measured in fresh processes: with an empty Numba cache (cold) and with the cache filled (cached).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _path in (str(REPO), str(REPO / "benchmarks")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

ADAM_PARAMS = 34_826


def shapes(batch):
    """The benchmark's cases: name -> (input shape, weight shape) for convs, input shape for pools."""
    return {
        "conv1": ((batch, 1, 28, 28), (32, 1, 3, 3)),
        "conv2": ((batch, 32, 13, 13), (64, 32, 3, 3)),
        "pool1": (batch, 32, 26, 26),
        "pool2": (batch, 64, 11, 11),
    }


def conv_flops(x_shape, w_shape):
    n, c, h, w = x_shape
    f, _, kh, kw = w_shape
    return 2.0 * n * f * c * kh * kw * (h - kh + 1) * (w - kw + 1)


def best_ms(fn, repeat):
    fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * min(times)


# --- ours ----------------------------------------------------------------------------------------

def measure_ours(batch, repeat, backend):
    """{case: ms} for our kernels on one backend."""
    import kernels
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for name, (xs, ws) in list(shapes(batch).items())[:2]:
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
    for name in ("pool1", "pool2"):
        x = rng.standard_normal(shapes(batch)[name], dtype=np.float32)
        y, arg = kernels.max_pool2d_forward(x, 2, backend=backend)
        g = rng.standard_normal(y.shape, dtype=np.float32)
        out[f"{name} max forward"] = best_ms(lambda: kernels.max_pool2d_forward(x, 2, backend=backend), repeat)
        out[f"{name} max backward"] = best_ms(
            lambda: kernels.max_pool2d_backward(g, arg, x.shape, backend=backend), repeat)
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
    """{conv direction: ms} of only the per-image products each convolution direction makes."""
    import kernels  # noqa: F401  (kernels.runtime: every BLAS on one thread, as in the kernels)
    import numba
    import numpy as np
    from numba import njit, prange

    from kernels import runtime

    runtime.configure()

    @njit(parallel=True)
    def products(a, b, out, transpose_b, images):
        # one buffer per chunk of images, reused image after image as the kernels reuse theirs (so the
        # operands stay in cache, as in the kernels): the time is the products' alone
        per = (images + a.shape[0] - 1) // a.shape[0]
        for t in prange(a.shape[0]):
            for _ in range(t * per, min(images, (t + 1) * per)):
                if transpose_b:
                    np.dot(a[t], b[t].T, out[t])
                else:
                    np.dot(a[t], b[t], out[t])

    rng = np.random.default_rng(0)
    chunks = max(1, min(batch, 4 * numba.get_num_threads()))     # as kernels.conv2d.cpu splits a batch
    out = {}
    for name, (xs, ws) in list(shapes(batch).items())[:2]:
        f, k, hw = ws[0], ws[1] * ws[2] * ws[3], (xs[2] - ws[2] + 1) * (xs[3] - ws[3] + 1)
        def buffers(*shape):
            return rng.standard_normal((chunks, *shape), dtype=np.float32)
        w, wt, cols, g = buffers(f, k), buffers(k, f), buffers(k, hw), buffers(f, hw)
        y, dcols, dw = buffers(f, hw), buffers(k, hw), buffers(f, k)
        out[f"{name} forward"] = best_ms(lambda: products(w, cols, y, False, batch), repeat)
        out[f"{name} backward input"] = best_ms(lambda: products(wt, g, dcols, False, batch), repeat)
        out[f"{name} backward weight"] = best_ms(lambda: products(g, cols, dw, True, batch), repeat)
    return out


# --- PyTorch, in its own process -----------------------------------------------------------------

TORCH_WORKER = r"""
import json, sys, time
import torch
batch, repeat = int(sys.argv[1]), int(sys.argv[2])
cases = json.loads(sys.argv[3])
torch.manual_seed(0)
def best_ms(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return 1e3 * min(ts)
out = {"version": torch.__version__, "threads": torch.get_num_threads()}
F = torch.nn.functional
for name in ("conv1", "conv2"):
    xs, ws = cases[name]
    x, w, b = torch.randn(xs), torch.randn(ws), torch.randn(ws[0])
    y = F.conv2d(x, w, b)
    g = torch.randn(y.shape)
    out[name + " forward"] = best_ms(lambda: F.conv2d(x, w, b), repeat)
    out[name + " backward input"] = best_ms(lambda: torch.nn.grad.conv2d_input(xs, w, g), repeat)
    out[name + " backward weight"] = best_ms(lambda: torch.nn.grad.conv2d_weight(x, ws, g), repeat)
for name in ("pool1", "pool2"):
    x = torch.randn(cases[name], requires_grad=True)
    out[name + " max forward"] = best_ms(lambda: F.max_pool2d(x.detach(), 2), repeat)
    y = F.max_pool2d(x, 2)
    g = torch.randn(y.shape)
    out[name + " max backward"] = best_ms(lambda: torch.autograd.grad(y, x, g, retain_graph=True), repeat)
p = torch.nn.Parameter(torch.randn(%d))
p.grad = torch.randn(%d)
opt = torch.optim.Adam([p])
out["adam update (34,826 params)"] = best_ms(opt.step, repeat * 20)
print(json.dumps(out))
""" % (ADAM_PARAMS, ADAM_PARAMS)


def measure_torch(batch, repeat, python=sys.executable):
    cases = {k: v for k, v in shapes(batch).items()}
    proc = subprocess.run([python, "-c", TORCH_WORKER, str(batch), str(repeat), json.dumps(cases)],
                          capture_output=True, text=True)
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
p, a = kernels.max_pool2d_forward(x, 2); kernels.max_pool2d_backward(p, a, x.shape)
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


# --- report --------------------------------------------------------------------------------------

def flops_of(case, batch):
    name = case.split()[0]
    if name.startswith("conv"):
        return conv_flops(*shapes(batch)[name])
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 8 and few repeats (a smoke run)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--torch-python", default=sys.executable, help="the Python that has torch")
    args = parser.parse_args(argv)
    batch, repeat = (8, 2) if args.quick else (128, 7)

    torch_result, torch_note = ((None, "skipped (--no-torch)") if args.no_torch
                                else measure_torch(batch, repeat, args.torch_python))
    compile_runs, compile_note = measure_compile()
    ours = measure_ours(batch, repeat, "cpu")
    gemm = measure_gemm(batch, repeat)
    reference = measure_ours(batch, max(1, repeat // 3), "numpy")

    import numba
    import numpy as np

    from kernels import runtime

    from train_step import cpu_flags, cpu_model

    status = runtime.status()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores; {cpu_flags()})")
    print(f"kernels benchmark, batch {batch}, float32; numpy {np.__version__}, numba {numba.__version__}, "
          f"numba threads {numba.get_num_threads()} ({status.threading_layer} layer); "
          f"BLAS {'on one thread' if status.blas_single_threaded else 'multi-threaded'}")
    if torch_result:
        print(f"PyTorch {torch_result['version']} (own process, {torch_result['threads']} threads)")
    else:
        print(f"PyTorch not measured: {torch_note} (pip install torch==2.13.0)")
    header = (f"{'kernel':34} {'ours ms':>9} {'GFLOP/s':>8} {'gemm ms':>8} {'numpy ms':>9} {'torch ms':>9} "
              f"{'GFLOP/s':>8} {'ours/torch':>10}")
    print(header)
    print("-" * len(header))
    for case, ms in ours.items():
        flops = flops_of(case, batch)
        t = torch_result.get(case) if torch_result else None
        gf = f"{flops / ms / 1e6:8.1f}" if flops else " " * 8
        tgf = f"{flops / t / 1e6:8.1f}" if flops and t else " " * 8
        ratio = f"{t / ms:9.2f}x" if t else ""
        products = f"{gemm[case]:8.3f}" if case in gemm else " " * 8
        print(f"{case:34} {ms:9.3f} {gf} {products} {reference[case]:9.2f} {t if t else float('nan'):9.3f} {tgf} {ratio}")
    print("ours/torch = torch time / our time: above 1 means we are faster (throughput ratio).")
    if compile_runs:
        print(f"import + first call of every CPU kernel: cold (empty cache) {compile_runs[0]:.1f} s, "
              f"cached {compile_runs[1]:.2f} s (goal: cached < 2 s)")
    else:
        print(f"compile time not measured: {compile_note}")


if __name__ == "__main__":
    main()
