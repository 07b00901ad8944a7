"""The oracles beside ``benchmarks/compile.py``: PyTorch (eager) and JAX (``jax.jit``), each in its own process.

compile.py calls :func:`run_oracle`, which runs this file with the oracle's Python::

    PYTHON benchmarks/compile_oracles.py torch|jax CONFIG_JSON DATA.npz

This file imports only NumPy and the oracle (the oracle's Python need not have autodiff, nor the
other oracle). Each writes the same maths as compile.py's objectives, in float64 with its default
threads, and prints one JSON line of seconds per call (best of ``repeats``, after a warm-up) and the
values, for compile.py to set beside its own. JAX's times are of ``jax.jit(jax.value_and_grad(f))``
(its loops ``lax.fori_loop`` and ``lax.scan``), each ``<name>_compile`` its first call (tracing and
XLA, cold: no persistent cache); PyTorch's are eager forward + ``backward()``, its loops Python loops.
Neither is a dependency of the project: benchmark-only references.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import timeit

import numpy as np

LONG_LSTM = "lstm_long"      # the data key of the long LSTM sequence (a scan under compile and JAX)


def run_oracle(kind, python, config, data):
    """The oracle's times from its own process, or (None, why not)."""
    if python is None:
        return None, f"not measured (no {kind} here; pass --{kind}-python PATH)"
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {f"{name}_{k}": np.asarray(a) for name, parts in data.items() for k, a in enumerate(parts)}
        np.savez(os.path.join(tmp, "data.npz"), **arrays)
        try:
            proc = subprocess.run([python, os.path.abspath(__file__), kind, json.dumps(config),
                                   os.path.join(tmp, "data.npz")], capture_output=True, text=True, cwd=tmp)
        except OSError as error:
            return None, f"failed: {error}"
    if proc.returncode != 0:
        return None, "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def best(fn, number, repeat):
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def load(path):
    """{name: [arrays]} as compile.py saved them."""
    stored = np.load(path)
    data = {}
    for key in sorted(stored.files, key=lambda k: (k.rsplit("_", 1)[0], int(k.rsplit("_", 1)[1]))):
        data.setdefault(key.rsplit("_", 1)[0], []).append(stored[key])
    return data


# --- the maths, for any array library with sin/exp/tanh/sigmoid (``lib``) --------------------------------

def eq(lib, x):
    a, e = lib.sin(x), lib.exp(x)
    return lib.exp(a + a ** 2) + lib.sin(e + e ** 2)


def lstm_step(lib, sigmoid, wx, wh, bias, wo, h, c, x_t, x_next):
    size = wh.shape[0]
    z = x_t @ wx + h @ wh + bias
    i, f = sigmoid(z[:, :size]), sigmoid(z[:, size:2 * size])
    o, g = sigmoid(z[:, 2 * size:3 * size]), lib.tanh(z[:, 3 * size:])
    c = f * c + i * g
    h = o * lib.tanh(c)
    return h, c, ((h @ wo - x_next) ** 2).sum()


def lstm_loop(lib, sigmoid, zeros, wx, wh, bias, wo, xs):
    h = c = zeros((xs.shape[1], wh.shape[0]))
    loss = 0.0
    for t in range(xs.shape[0] - 1):
        h, c, err = lstm_step(lib, sigmoid, wx, wh, bias, wo, h, c, xs[t], xs[t + 1])
        loss = loss + err
    return loss


# --- PyTorch, eager -----------------------------------------------------------------------------

def torch_times(config, data):
    import torch
    torch.set_default_dtype(torch.float64)
    if config["threads"]:
        torch.set_num_threads(config["threads"])
    reps = config["repeats"]

    def vg(f, *params):
        ps = [torch.tensor(np.asarray(p), requires_grad=True) for p in params]

        def run():
            for p in ps:
                p.grad = None
            y = f(*ps)
            y.backward()
            return y.item()
        return run

    def gmm(alphas, means, log_sigmas, x):
        n, d = x.shape
        z = (x.reshape(n, 1, d) - means) * torch.exp(-log_sigmas)
        log_p = torch.log_softmax(alphas, 0) - log_sigmas.sum(1) - 0.5 * (z * z).sum(2)
        return -torch.logsumexp(log_p, 1).sum()

    def lstm(wx, wh, bias, wo, xs):
        return lstm_loop(torch, torch.sigmoid, torch.zeros, wx, wh, bias, wo, xs)

    def recurrence(x):
        y = x * 1.0
        for _ in range(config["rec_steps"]):
            y = y + 0.01 * torch.sin(y * x)
        return y

    x = torch.from_numpy(np.random.default_rng(0).uniform(-1.0, 1.0, config["n"]))
    out = {"version": torch.__version__, "threads": torch.get_num_threads()}
    out["eq_grad"] = best(vg(lambda x: eq(torch, x).sum(), x.numpy()), 1, reps)
    out["scalar"] = best(vg(lambda x: eq(torch, x), 0.5), config["scalar_calls"] // 10, reps)
    for name, f in (("gmm", gmm), ("lstm", lstm), (LONG_LSTM, lstm)):
        params, consts = data[name][:-1], torch.from_numpy(data[name][-1])
        run = vg(lambda *ps: f(*ps, consts), *params)
        out[name] = best(run, 1, reps if name != LONG_LSTM else config["long_repeats"])
        out[name + "_value"] = run()
    run = vg(recurrence, config["rec_x"])
    out["rec"] = best(run, 1, reps)
    out["rec_value"] = run()
    return out


# --- JAX, jit -----------------------------------------------------------------------------------

def jax_times(config, data):
    if config["threads"] == 1:     # before XLA starts; Eigen's matrix products on one thread (its fused loops are)
        os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax
    reps = config["repeats"]

    def jitted(f, params, argnums=0, number=1, repeat=reps):
        """(seconds per call, first call's seconds: tracing + XLA, value) of jit(value_and_grad(f))."""
        fn = jax.jit(jax.value_and_grad(f, argnums=argnums))
        ps = [jnp.asarray(p) for p in params]
        start = timeit.default_timer()
        value = jax.block_until_ready(fn(*ps))[0]
        first = timeit.default_timer() - start
        return best(lambda: jax.block_until_ready(fn(*ps)), number, repeat), first, float(value)

    def gmm(alphas, means, log_sigmas, x):
        n, d = x.shape
        z = (x.reshape(n, 1, d) - means) * jnp.exp(-log_sigmas)
        log_p = jax.nn.log_softmax(alphas) - log_sigmas.sum(1) - 0.5 * (z * z).sum(2)
        return -jax.nn.logsumexp(log_p, 1).sum()

    def lstm(wx, wh, bias, wo, xs):
        return lstm_loop(jnp, jax.nn.sigmoid, jnp.zeros, wx, wh, bias, wo, xs)

    def lstm_scan(wx, wh, bias, wo, xs):
        def step(carry, x):
            h, c, loss = carry
            h, c, err = lstm_step(jnp, jax.nn.sigmoid, wx, wh, bias, wo, h, c, x[0], x[1])
            return (h, c, loss + err), None
        zero = jnp.zeros((xs.shape[1], wh.shape[0]))
        return lax.scan(step, (zero, zero, 0.0), (xs[:-1], xs[1:]))[0][2]

    def recurrence(x):
        return lax.fori_loop(0, config["rec_steps"], lambda i, y: y + 0.01 * jnp.sin(y * x), x * 1.0)

    x = np.random.default_rng(0).uniform(-1.0, 1.0, config["n"])
    out = {"version": jax.__version__, "threads": 1 if config["threads"] == 1 else "XLA's own"}
    out["eq_grad"], out["eq_grad_compile"], _ = jitted(lambda x: eq(jnp, x).sum(), [x])
    out["scalar"], out["scalar_compile"], _ = jitted(lambda x: eq(jnp, x), [0.5], number=config["scalar_calls"])
    for name, f in (("gmm", gmm), ("lstm", lstm), (LONG_LSTM, lstm_scan)):
        params, consts = data[name][:-1], jnp.asarray(data[name][-1])
        every = tuple(range(len(params)))
        out[name], out[name + "_compile"], out[name + "_value"] = jitted(lambda *ps: f(*ps, consts), params, every)
    out["rec"], out["rec_compile"], out["rec_value"] = jitted(recurrence, [config["rec_x"]])
    return out


if __name__ == "__main__":
    kind, config, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    print(json.dumps({"torch": torch_times, "jax": jax_times}[kind](config, load(path))))
