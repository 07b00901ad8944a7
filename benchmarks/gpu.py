"""GPU benchmark and check, in one run of under five minutes on a CUDA GPU (an H200 in mind).

    python benchmarks/gpu.py          # on a GPU: the CUDA tests for real, then the measurements
    python benchmarks/gpu.py --sim    # Numba's CUDA simulator, tiny shapes: a smoke run (tests/nn/test_device.py)

1. The CUDA tests run on the device (``NUMBA_ENABLE_CUDASIM=0``): the kernels' tests against the NumPy
   references, and the device-training tests (transfers counted, CPU equality, save/load).
2. The source material's Keras MNIST CNN (Conv2D 32 3x3 relu, MaxPool 2, Conv2D 64 3x3 relu, MaxPool 2,
   Flatten, Dropout 0.5, Dense 10), one Adam step (forward, loss, backward, update, the loss read
   out) at batch 128 and 1024: ours with the model on the device (``model.to("cuda")``) and PyTorch
   CUDA (cuDNN) in the same run. Goal: ours <= 3x PyTorch at batch 1024.
   Ours is also split into its phases (forward and loss, backward, update), each ended by a synchronize.
3. Each direction of the second convolution (B x 32 x 13 x 13 -> 64 filters 3x3) in GFLOP/s (2 flops per
   multiply-add) at both batches, ours (both variants of kernels/conv2d/tiles.py: register-blocked and one
   output per thread) vs cuDNN (torch.nn.functional.conv2d, torch.nn.grad.conv2d_input / _weight).
   Goal: >= 0.3x cuDNN.
4. The host<->device traffic of one training step: copies and bytes in and out (``numba.cuda.to_device``
   and ``copy_to_host`` counted). Goal: the batch in, the loss out.

PyTorch runs in float32 as ours does (TF32 switched off), with ``cudnn.benchmark`` on. Times are the
median of several calls after warm-up (the first calls compile the kernels), each
ended by ``cuda.synchronize()``. ``--sim`` uses a 10x10 input, 2 and 4 filters and batches of 2 and 4:
its times mean nothing (each GPU thread is a Python thread there); it checks that the script runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

CUDA_TESTS = ["tests/kernels/test_cuda_device.py", "tests/nn/test_device.py", "tests/kernels/test_conv2d.py",
              "tests/kernels/test_pool2d.py", "tests/kernels/test_optim.py", "tests/kernels/test_losses.py"]
FULL = dict(input_shape=(1, 28, 28), filters=(32, 64), batches=(128, 1024), repeats=10)
SIM = dict(input_shape=(1, 10, 10), filters=(2, 4), batches=(2, 4), repeats=1)


def _arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", action="store_true", help="Numba's CUDA simulator, tiny shapes (a smoke run)")
    parser.add_argument("--skip-tests", action="store_true", help="leave out part 1 (the CUDA tests)")
    return parser.parse_args(argv)


def run_tests():
    """Part 1: the CUDA tests on the device; returns pytest's exit status."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-k", "cuda or device", *CUDA_TESTS]
    print("1. CUDA tests on the device:", " ".join(command[3:]), flush=True)
    status = subprocess.run(command, cwd=REPO_ROOT, env=env).returncode
    print(f"   pytest exit status {status}", flush=True)
    return status


def _median_ms(call, repeats, synchronize):
    call()                                           # warm-up (compiles on the first call)
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronize()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def _model(nn, shape, filters):
    return nn.Sequential([nn.Input(shape), nn.Conv2D(filters[0], 3, activation="relu"), nn.MaxPool2D(2),
                          nn.Conv2D(filters[1], 3, activation="relu"), nn.MaxPool2D(2), nn.Flatten(),
                          nn.Dropout(0.5), nn.Dense(10, activation="softmax")])


def _our_step(nn, model, optimizer, x, y):
    def step():
        optimizer.zero_grad()
        xb, yb = nn.device.batch_to_device(x, y)
        loss = nn.functional.softmax_cross_entropy(model.forward(xb, logits=True), yb)
        loss.backward()
        optimizer.step()
        return float(loss.value)
    return step


def _phases(nn, model, optimizer, x, y, repeats, synchronize):
    """Median ms of the step's phases: forward and loss, backward, update (each ended by a synchronize)."""
    times = {"forward+loss": [], "backward": [], "update": []}
    for _ in range(repeats + 1):                     # the first round is a warm-up
        optimizer.zero_grad()
        xb, yb = nn.device.batch_to_device(x, y)
        synchronize()
        start = time.perf_counter()
        loss = nn.functional.softmax_cross_entropy(model.forward(xb, logits=True), yb)
        synchronize()
        middle = time.perf_counter()
        loss.backward()
        synchronize()
        end = time.perf_counter()
        optimizer.step()
        synchronize()
        for name, ms in zip(times, (middle - start, end - middle, time.perf_counter() - end)):
            times[name].append(1e3 * ms)
    return {name: statistics.median(ms[1:]) for name, ms in times.items()}


def _torch():
    """torch when it can run on CUDA here, else None."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cudnn.benchmark = True                  # cuDNN's fastest algorithm for each shape
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False   # float32 against float32
    return torch


def _torch_step(torch, shape, filters, x, y):
    f = torch.nn
    model = f.Sequential(f.Conv2d(shape[0], filters[0], 3), f.ReLU(), f.MaxPool2d(2), f.Conv2d(filters[0], filters[1], 3),
                         f.ReLU(), f.MaxPool2d(2), f.Flatten(), f.Dropout(0.5), f.LazyLinear(10)).cuda()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model(xt.cuda())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = f.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(xt.cuda()), yt.cuda())
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def measure_steps(nn, cuda, config, torch):
    """Part 2: ms per Adam step of the Keras MNIST CNN, ours vs PyTorch CUDA."""
    import numpy as np

    print(f"2. Keras MNIST CNN, one Adam step (input {config['input_shape']}, filters {config['filters']}):")
    rng = np.random.default_rng(0)
    for batch in config["batches"]:
        x = rng.random((batch, *config["input_shape"]), dtype=np.float32)
        y = rng.integers(0, 10, batch).astype(np.int64)
        nn.set_seed(0)
        model = _model(nn, config["input_shape"], config["filters"]).to("cuda")
        optimizer = nn.optim.Adam(model.parameters())
        ours = _median_ms(_our_step(nn, model, optimizer, x, y), config["repeats"], cuda.synchronize)
        phases = _phases(nn, model, optimizer, x, y, config["repeats"], cuda.synchronize)
        line = f"   batch {batch:5d}: ours {ours:9.2f} ms"
        if torch is not None:
            theirs = _median_ms(_torch_step(torch, config["input_shape"], config["filters"], x, y), config["repeats"],
                                torch.cuda.synchronize)
            line += f"   PyTorch CUDA {theirs:8.2f} ms   ratio {ours / theirs:6.2f} (goal <= 3 at batch 1024)"
        else:
            line += "   PyTorch CUDA: not available here"
        print(line, flush=True)
        print("                 ours by phase: " + ", ".join(f"{k} {v:.2f} ms" for k, v in phases.items()), flush=True)


def measure_convolution(kernels, cuda, config, torch):
    """Part 3: GFLOP/s of the second convolution in each direction at each batch, ours (both variants of
    kernels/conv2d/tiles.py: register-blocked and one output per thread) vs cuDNN."""
    import numpy as np
    from kernels.conv2d import tiles

    side = (config["input_shape"][1] - 2) // 2
    c, f = config["filters"]
    rng = np.random.default_rng(0)
    geometry = kernels.ConvGeometry()
    saved = tiles.VARIANT          # (in the simulator, --sim, both run the gather kernels: TILED is off there)
    try:
        for batch in config["batches"]:
            shape_x, shape_w = (batch, c, side, side), (f, c, 3, 3)
            x, w = rng.random(shape_x, dtype=np.float32), rng.random(shape_w, dtype=np.float32)
            g = rng.random((batch, f, side - 2, side - 2), dtype=np.float32)
            flops = 2.0 * batch * f * (side - 2) ** 2 * c * 9
            xd, wd, gd = (kernels.device.to_device(a) for a in (x, w, g))
            ours = {"forward": lambda: kernels.conv2d.forward(xd, wd, None, geometry),
                    "backward input": lambda: kernels.conv2d.backward_input(gd, wd, shape_x, geometry),
                    "backward weight": lambda: kernels.conv2d.backward_weight(gd, xd, shape_w, geometry, bias=False)}
            theirs = {}
            if torch is not None:
                xt, wt, gt = (torch.from_numpy(a).cuda() for a in (x, w, g))
                theirs = {"forward": lambda: torch.nn.functional.conv2d(xt, wt),
                          "backward input": lambda: torch.nn.grad.conv2d_input(shape_x, wt, gt),
                          "backward weight": lambda: torch.nn.grad.conv2d_weight(xt, shape_w, gt)}
            print(f"3. conv {shape_x} -> {f} filters 3x3, {flops / 1e9:.3f} GFLOP per direction:")
            for direction, call in ours.items():
                ref = _median_ms(theirs[direction], config["repeats"], torch.cuda.synchronize) if theirs else None
                for variant in ("blocked", "simple"):
                    tiles.VARIANT = variant
                    ms = _median_ms(call, config["repeats"], cuda.synchronize)
                    line = f"   {direction:16s} ours {variant:7s} {flops / ms / 1e6:9.1f} GFLOP/s ({ms:8.3f} ms)"
                    if ref is not None:
                        line += f"   cuDNN {flops / ref / 1e6:9.1f} GFLOP/s   ratio {ref / ms:5.2f} (goal >= 0.3)"
                    print(line, flush=True)
    finally:
        tiles.VARIANT = saved


def measure_traffic(nn, cuda, config):
    """Part 4: the copies between host and device during one training step, counted by wrapping them."""
    import numpy as np

    counts = {"in": [0, 0], "out": [0, 0]}
    array_type = type(cuda.device_array(1))
    to_device, copy_to_host = cuda.to_device, array_type.copy_to_host

    def counted_to_device(a, *args, **kwargs):
        counts["in"][0] += 1
        counts["in"][1] += int(np.asarray(a).nbytes)
        return to_device(a, *args, **kwargs)

    def counted_copy_to_host(array, *args, **kwargs):
        counts["out"][0] += 1
        counts["out"][1] += int(np.prod(array.shape)) * np.dtype(array.dtype).itemsize
        return copy_to_host(array, *args, **kwargs)

    batch = config["batches"][0]
    rng = np.random.default_rng(0)
    x, y = rng.random((batch, *config["input_shape"]), dtype=np.float32), rng.integers(0, 10, batch)
    nn.set_seed(0)
    model = _model(nn, config["input_shape"], config["filters"]).to("cuda")
    step = _our_step(nn, model, nn.optim.Adam(model.parameters()), x, y)
    step()                                         # the optimiser's state is made (on the device) here
    cuda.to_device, array_type.copy_to_host = counted_to_device, counted_copy_to_host
    try:
        step()
    finally:
        cuda.to_device, array_type.copy_to_host = to_device, copy_to_host
    print(f"4. traffic of one step at batch {batch}: in {counts['in'][0]} copies, {counts['in'][1]:,} bytes "
          f"(x {x.nbytes:,} + labels {y.astype(np.int64).nbytes:,}); out {counts['out'][0]} copies, "
          f"{counts['out'][1]:,} bytes (the loss)", flush=True)
    return counts


def main(argv=None):
    args = _arguments(argv)
    if args.sim:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"       # before numba is imported
    config = SIM if args.sim else FULL
    status = 0
    if not (args.sim or args.skip_tests):
        status = run_tests()
    from numba import cuda

    import kernels
    import nn

    if not kernels.cuda_available():
        print("no CUDA device (and the simulator is off): nothing to measure; try --sim")
        return 1
    torch = None if args.sim else _torch()
    measure_steps(nn, cuda, config, torch)
    measure_convolution(kernels, cuda, config, torch)
    measure_traffic(nn, cuda, config)
    return status


if __name__ == "__main__":
    sys.exit(main())
