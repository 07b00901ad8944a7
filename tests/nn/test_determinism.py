"""The training step gives the same bits on every run, and with 1 or 2 threads: the plain loop that
benchmarks/train_step.py times (NumPy imported first, no nn.fit), in fresh processes on the default
threading layer (kernels/runtime.py). The kernels split their work into fixed chunks, so which thread
runs a chunk, and how many threads there are, changes no sum."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from _requires import DEFAULT_LAYER  # tests/_requires.py

ROOT = Path(__file__).resolve().parents[2]

PLAIN_LOOP = """
import numpy as np, nn, autodiff as ad, kernels
nn.set_seed(0)
model = nn.models.keras_mnist_cnn()
opt = nn.optim.Adam(model.parameters())
rng = np.random.default_rng(0)
x = rng.random((24, 1, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, 24)
losses = []
for _ in range(3):
    opt.zero_grad(); loss = nn.functional.softmax_cross_entropy(model(ad.Tensor(x)), y)
    loss.backward(); opt.step()
    losses.append(float(loss.item()))
print(kernels.runtime.status().threading_layer, losses[0] > losses[-1])
print(b"".join(np.ascontiguousarray(p.value).tobytes() for p in model.parameters()).hex())
"""


def _run(threads):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env.update(NUMBA_NUM_THREADS=threads, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", PLAIN_LOOP], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    layer, parameters = result.stdout.split("\n", 1)
    return layer, hashlib.sha256(parameters.encode()).hexdigest(), len(parameters)


def test_three_adam_steps_give_the_same_parameters_on_every_run_and_thread_count():
    first, second, one_thread = _run("2"), _run("2"), _run("1")
    assert first[0] == f"{DEFAULT_LAYER} True"     # the default layer, and the loss went down
    assert first[2] > 2 * 4 * 34_826               # every parameter is in the bytes (hex: 2 chars a byte)
    assert first[1] == second[1] == one_thread[1]
