"""Optimiser updates (kernels.optim) against their update equations written out here.

The oracle below is torch.optim's documented algorithm for each optimiser, written again in
plain Python, one element and one step at a time, in float64. It shares no code with the
package (neither formulas.py nor reference.py), so a slip in either shows up as a difference.
Every backend runs the same few steps from the same seeded start: "numpy" (the reference),
"cpu" (Numba) and "cuda" (in Numba's CUDA simulator, set up by conftest.py, on a tiny array).
"""
import math

import numpy as np
import pytest

from kernels import optim
from kernels.backend import cuda_available

SHAPE = (2, 3)  # 6 elements: enough to see every element handled, small for the CUDA simulator
STEPS = 4
BACKENDS = ["numpy", "cpu",
            pytest.param("cuda", marks=pytest.mark.skipif(not cuda_available(),
                                                          reason="numba.cuda unavailable"))]
TOLERANCE = {np.float64: dict(rtol=1e-12, atol=1e-15), np.float32: dict(rtol=1e-6, atol=1e-7)}


# --- the oracle: torch.optim's algorithms, element by element, in float64 --------------------

def expected_sgd(p0, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p, buf = list(p0), [0.0] * len(p0)
    for t, grad in enumerate(grads, start=1):
        for i, g in enumerate(grad):
            if weight_decay != 0:
                g = g + weight_decay * p[i]
            if momentum != 0:
                buf[i] = g if t == 1 else momentum * buf[i] + (1 - dampening) * g
                g = g + momentum * buf[i] if nesterov else buf[i]
            p[i] = p[i] - lr * g
    return {"param": p, "momentum_buffer": buf}


def expected_adagrad(p0, grads, lr=0.01, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
                     initial_accumulator_value=0.0):
    p, state_sum = list(p0), [initial_accumulator_value] * len(p0)
    for t, grad in enumerate(grads, start=1):
        clr = lr / (1 + (t - 1) * lr_decay)
        for i, g in enumerate(grad):
            if weight_decay != 0:
                g = g + weight_decay * p[i]
            state_sum[i] = state_sum[i] + g * g
            p[i] = p[i] - clr * g / (math.sqrt(state_sum[i]) + eps)
    return {"param": p, "state_sum": state_sum}


def expected_adadelta(p0, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    n = len(p0)
    p, v, u = list(p0), [0.0] * n, [0.0] * n
    for grad in grads:
        for i, g in enumerate(grad):
            if weight_decay != 0:
                g = g + weight_decay * p[i]
            v[i] = rho * v[i] + (1 - rho) * g * g
            delta = math.sqrt(u[i] + eps) / math.sqrt(v[i] + eps) * g
            u[i] = rho * u[i] + (1 - rho) * delta * delta
            p[i] = p[i] - lr * delta
    return {"param": p, "square_avg": v, "acc_delta": u}


def expected_rmsprop(p0, grads, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                     centered=False):
    n = len(p0)
    p, v, buf, g_ave = list(p0), [0.0] * n, [0.0] * n, [0.0] * n
    for grad in grads:
        for i, g in enumerate(grad):
            if weight_decay != 0:
                g = g + weight_decay * p[i]
            v[i] = alpha * v[i] + (1 - alpha) * g * g
            v_tilde = v[i]
            if centered:
                g_ave[i] = alpha * g_ave[i] + (1 - alpha) * g
                v_tilde = v_tilde - g_ave[i] ** 2
            if momentum > 0:
                buf[i] = momentum * buf[i] + g / (math.sqrt(v_tilde) + eps)
                p[i] = p[i] - lr * buf[i]
            else:
                p[i] = p[i] - lr * g / (math.sqrt(v_tilde) + eps)
    return {"param": p, "square_avg": v, "momentum_buffer": buf, "grad_avg": g_ave}


def expected_adam(p0, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                  amsgrad=False, decoupled=False):
    beta1, beta2 = betas
    n = len(p0)
    p, m, v, v_max = list(p0), [0.0] * n, [0.0] * n, [0.0] * n
    for t, grad in enumerate(grads, start=1):
        for i, g in enumerate(grad):
            if weight_decay != 0:
                if decoupled:
                    p[i] = p[i] * (1 - lr * weight_decay)
                else:
                    g = g + weight_decay * p[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1 ** t)
            if amsgrad:
                v_max[i] = max(v_max[i], v[i])
                v_hat = v_max[i] / (1 - beta2 ** t)
            else:
                v_hat = v[i] / (1 - beta2 ** t)
            p[i] = p[i] - lr * m_hat / (math.sqrt(v_hat) + eps)
    return {"param": p, "exp_avg": m, "exp_avg_sq": v, "max_exp_avg_sq": v_max}


def expected_adamw(p0, grads, weight_decay=1e-2, **hyper):
    return expected_adam(p0, grads, weight_decay=weight_decay, decoupled=True, **hyper)


# --- running the package's functions --------------------------------------------------------

OPTIMISERS = {  # name: (update function, its state arrays in positional order, oracle)
    "sgd": (optim.sgd_update, ["momentum_buffer"], expected_sgd),
    "adagrad": (optim.adagrad_update, ["state_sum"], expected_adagrad),
    "adadelta": (optim.adadelta_update, ["square_avg", "acc_delta"], expected_adadelta),
    "rmsprop": (optim.rmsprop_update, ["square_avg", "momentum_buffer", "grad_avg"], expected_rmsprop),
    "adam": (optim.adam_update, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], expected_adam),
    "adamw": (optim.adamw_update, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], expected_adamw),
}

CASES = [  # (optimiser, hyper-parameters): defaults, and each option switched on
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    ("sgd", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("adagrad", dict()),
    ("adagrad", dict(lr=0.1, lr_decay=0.5, weight_decay=0.05, eps=0.1, initial_accumulator_value=0.2)),
    ("adadelta", dict()),
    ("adadelta", dict(lr=0.5, rho=0.5, eps=1e-3, weight_decay=0.05)),
    ("rmsprop", dict()),
    ("rmsprop", dict(lr=0.05, alpha=0.9, eps=0.1, momentum=0.9)),
    ("rmsprop", dict(lr=0.05, alpha=0.9, centered=True, weight_decay=0.05)),
    ("rmsprop", dict(lr=0.05, alpha=0.9, eps=1e-3, centered=True, momentum=0.5, weight_decay=0.05)),
    ("adam", dict()),
    ("adam", dict(lr=0.1, betas=(0.8, 0.9), eps=0.1, weight_decay=0.05)),
    ("adam", dict(lr=0.1, betas=(0.8, 0.9), amsgrad=True)),
    ("adamw", dict()),
    ("adamw", dict(lr=0.1, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1, amsgrad=True)),
]


def start(dtype, seed=0):
    """A seeded parameter and STEPS gradients of SHAPE (gradients shrinking, so AMSGrad's max matters)."""
    rng = np.random.default_rng(seed)
    param = rng.standard_normal(SHAPE).astype(dtype)
    grads = [(rng.standard_normal(SHAPE) / t).astype(dtype) for t in range(1, STEPS + 1)]
    return param, grads


def run(name, hyper, backend, dtype):
    """STEPS updates from the seeded start; returns the oracle's and the package's results."""
    update, state_names, oracle = OPTIMISERS[name]
    hyper = dict(hyper)
    initial = hyper.pop("initial_accumulator_value", 0.0)  # AdaGrad's: the state's starting value
    param, grads = start(dtype)
    states = {state: np.zeros(SHAPE, dtype) for state in state_names}
    if name == "adagrad":
        states["state_sum"][...] = initial
        hyper_oracle = dict(hyper, initial_accumulator_value=initial)
    else:
        hyper_oracle = hyper
    expected = oracle([float(x) for x in param.ravel()],
                      [[float(x) for x in g.ravel()] for g in grads], **hyper_oracle)
    for step, grad in enumerate(grads, start=1):
        update(param, grad, *states.values(), step=step, backend=backend, **hyper)
    actual = dict(states, param=param)
    return expected, actual


# --- tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, hyper", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_update_equals_the_written_out_equations(name, hyper, backend, dtype):
    expected, actual = run(name, hyper, backend, dtype)
    assert set(expected) == set(actual)
    for key, value in actual.items():
        assert value.dtype == dtype and value.shape == SHAPE, key
        np.testing.assert_allclose(value.ravel(), expected[key], err_msg=f"{name} {key}",
                                   **TOLERANCE[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_first_step_moves_each_parameter_by_about_lr(backend):
    """m^ = g and v^ = g^2 after one step, so the step is lr * g / (|g| + eps), about lr * sign(g)."""
    param, (grad, *_) = start(np.float64, seed=1)
    before = param.copy()
    exp_avg, exp_avg_sq = np.zeros_like(param), np.zeros_like(param)
    optim.adam_update(param, grad, exp_avg, exp_avg_sq, step=1, lr=0.01, backend=backend)
    np.testing.assert_allclose(before - param, 0.01 * np.sign(grad), rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_arrays_are_updated_in_place_and_float32_stays_float32(backend):
    param, (grad, *_) = start(np.float32)
    states = [np.zeros(SHAPE, np.float32) for _ in range(3)]
    before = [param.copy()] + [s.copy() for s in states]
    objects = [param] + states
    optim.rmsprop_update(param, grad, *states, step=1, momentum=0.9, centered=True, backend=backend)
    for array, old in zip(objects, before):  # the very arrays passed in now hold new values
        assert array.dtype == np.float32 and array.shape == SHAPE
        assert not np.array_equal(array, old)
    assert all(a is b for a, b in zip(objects, [param] + states))


def test_unused_state_is_left_alone():
    param, (grad, *_) = start(np.float64)
    buffer = np.full(SHAPE, 7.0)
    optim.sgd_update(param, grad, buffer, step=1, lr=0.1, momentum=0.0, backend="cpu")
    np.testing.assert_array_equal(buffer, 7.0)


# --- validation: clear errors that name the argument, before any work --------------------------

def adam_arrays(dtype=np.float32, shape=SHAPE):
    return [np.zeros(shape, dtype) for _ in range(4)]  # param, grad, exp_avg, exp_avg_sq


def test_shape_mismatch_names_both_shapes():
    param, grad, m, v = adam_arrays()
    with pytest.raises(ValueError, match=r"grad has shape \(3, 2\) but param has shape \(2, 3\)"):
        optim.adam_update(param, grad.reshape(3, 2), m, v, step=1, backend="numpy")


def test_dtype_mismatch():
    param, grad, m, v = adam_arrays()
    with pytest.raises(TypeError, match="exp_avg_sq has dtype float64 but param has dtype float32"):
        optim.adam_update(param, grad, m, v.astype(np.float64), step=1, backend="numpy")
    with pytest.raises(TypeError, match="float32 or float64"):
        optim.sgd_update(param.astype(np.int64), grad.astype(np.int64), step=1, lr=0.1, backend="numpy")


def test_non_contiguous_is_refused():
    param, grad, m, v = adam_arrays(shape=(3, 4))
    with pytest.raises(ValueError, match="param must be C-contiguous"):
        optim.adam_update(param[:, ::2], grad[:, ::2], m[:, ::2], v[:, ::2], step=1, backend="numpy")
    every_other_column = np.zeros((3, 8), np.float32)[:, ::2]  # shape (3, 4), not contiguous
    with pytest.raises(ValueError, match="exp_avg must be C-contiguous"):
        optim.adam_update(param, grad, every_other_column, v, step=1, backend="numpy")


def test_lists_read_only_and_shared_memory_are_refused():
    param, grad, m, v = adam_arrays()
    with pytest.raises(TypeError, match="param must be a NumPy array"):
        optim.sgd_update(param.tolist(), grad, step=1, lr=0.1, backend="numpy")
    param.flags.writeable = False
    with pytest.raises(ValueError, match="param is read-only"):
        optim.sgd_update(param, grad, step=1, lr=0.1, backend="numpy")
    param = np.zeros(SHAPE, np.float32)
    with pytest.raises(ValueError, match="exp_avg and exp_avg_sq share memory"):
        optim.adam_update(param, grad, m, m, step=1, backend="numpy")


@pytest.mark.parametrize("call, message", [
    (lambda p, g, b: optim.sgd_update(p, g, step=1, lr=0.1, nesterov=True), "Nesterov momentum needs momentum > 0"),
    (lambda p, g, b: optim.sgd_update(p, g, b, step=1, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "dampening == 0"),
    (lambda p, g, b: optim.sgd_update(p, g, b, step=1, lr=-0.1), "lr must be >= 0"),
    (lambda p, g, b: optim.sgd_update(p, g, step=1, lr=0.1, momentum=0.9), "momentum_buffer is required"),
    (lambda p, g, b: optim.sgd_update(p, g, b, step=0, lr=0.1), "step must be >= 1"),
    (lambda p, g, b: optim.adam_update(p, g, b, b.copy(), step=1, betas=(0.9, 1.0)), r"betas\[1\] must be in"),
    (lambda p, g, b: optim.adam_update(p, g, b, b.copy(), step=1, eps=0.0), "eps must be > 0"),
    (lambda p, g, b: optim.adam_update(p, g, b, b.copy(), step=1, amsgrad=True), "max_exp_avg_sq is required"),
    (lambda p, g, b: optim.rmsprop_update(p, g, b, step=1, centered=True), "grad_avg is required"),
    (lambda p, g, b: optim.adadelta_update(p, g, b, b.copy(), step=1, rho=1.5), "rho must be in"),
    (lambda p, g, b: optim.adagrad_update(p, g, b, step=1, lr=float("nan")), "lr must be finite"),
], ids=["nesterov-without-momentum", "nesterov-with-dampening", "negative-lr", "missing-buffer",
        "step-0", "beta2-1", "eps-0", "missing-max", "missing-grad_avg", "rho-above-1", "nan-lr"])
def test_bad_hyper_parameters_are_refused(call, message):
    param, grad, buffer, _ = adam_arrays()
    with pytest.raises(ValueError, match=message):
        call(param, grad, buffer)


def test_step_must_be_an_int():
    param, grad, _, _ = adam_arrays()
    with pytest.raises(TypeError, match="step must be an int"):
        optim.sgd_update(param, grad, step=1.0, lr=0.1, backend="numpy")


# --- CUDA device arrays: updated on the device --------------------------------------------

@pytest.mark.skipif(not cuda_available(), reason="numba.cuda unavailable")
def test_device_arrays_round_trip():
    from numba import cuda

    param, grads = start(np.float32)
    host = [param.copy(), np.zeros(SHAPE, np.float32), np.zeros(SHAPE, np.float32)]
    device = [cuda.to_device(a) for a in host]
    for step, grad in enumerate(grads, start=1):
        optim.adam_update(host[0], grad, host[1], host[2], step=step, lr=0.1, backend="numpy")
        optim.adam_update(device[0], cuda.to_device(grad), device[1], device[2], step=step, lr=0.1,
                          backend="cuda")
    for d, h in zip(device, host):
        np.testing.assert_allclose(d.copy_to_host(), h, rtol=1e-6, atol=1e-7)
    assert not np.allclose(device[0].copy_to_host(), param)  # it did move

    with pytest.raises(TypeError, match="grad must be one too"):  # no mixing of host and device
        optim.adam_update(device[0], grads[0], device[1], device[2], step=1, backend="cuda")
    with pytest.raises(TypeError, match="needs backend='cuda'"):
        optim.adam_update(*device[:1], cuda.to_device(grads[0]), *device[1:], step=1, backend="cpu")


@pytest.mark.parametrize("size", [100, 5000, 40_000])    # the serial twin, one thread, all threads
def test_cpu_serial_and_parallel_paths_equal_the_reference(size):
    from kernels.optim.cpu import ONE_THREAD_BELOW, SERIAL_BELOW
    assert 100 < SERIAL_BELOW <= 5000 < ONE_THREAD_BELOW <= 40_000
    rng = np.random.default_rng(size)
    start = [rng.standard_normal(size).astype(np.float32) for _ in range(2)] + [np.zeros(size, np.float32)] * 2
    results = {}
    for backend in ("numpy", "cpu"):
        param, grad, m, v = (a.copy() for a in start)
        for step in (1, 2, 3):
            optim.adam_update(param, grad, m, v, step=step, lr=0.01, weight_decay=0.1, backend=backend)
        results[backend] = (param, m, v)
    for got, expected in zip(results["cpu"], results["numpy"]):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_a_kernels_serial_twin_runs_on_one_thread_and_gives_the_parallel_kernels_bits():
    from kernels._cache import serial, sized
    from kernels.optim import cpu, formulas
    from kernels.options import AdamHyper

    twin = serial(cpu._adam_kernel)
    assert twin is serial(cpu._adam_kernel) and "parallel" not in twin.targetoptions
    assert cpu._adam_kernel.targetoptions["parallel"]
    assert sized(cpu._adam_kernel, 99, below=100) is twin and sized(cpu._adam_kernel, 100, below=100) is cpu._adam_kernel
    rng = np.random.default_rng(7)
    start = [rng.standard_normal(5000).astype(np.float32) for _ in range(3)] + [rng.random(5000, np.float32)]
    coefficients = formulas.adam_coefficients(np.dtype(np.float32), AdamHyper(lr=0.01, weight_decay=0.1), 3)
    results = []
    for kernel in (cpu._adam_kernel, twin):
        param, grad, m, v = (a.copy() for a in start)
        kernel(param, grad, m, v, param[:0], *coefficients)
        results.append((param, m, v))
    for parallel, one_thread in zip(*results):
        np.testing.assert_array_equal(parallel, one_thread)
    assert not np.array_equal(results[0][0], start[0])                 # it did update


@pytest.mark.parametrize("backend", BACKENDS)
def test_amsgrad_divides_by_the_largest_second_moment_so_far(backend):
    """AMSGrad (Reddi et al. 2018, as torch.optim.Adam(amsgrad=True)) on one element, numbers by hand:
    gradients 1, then 0.1, lr 1, betas (0.9, 0.9), eps 1e-12. Step 1: m = v = 0.1, a step of 1. Step 2:
    m = 0.9 * 0.1 + 0.1 * 0.1 = 0.1, m^ = 0.1 / 0.19, and v falls to 0.9 * 0.1 + 0.1 * 0.01 = 0.091:
    Adam divides by sqrt(0.091 / 0.19), AMSGrad by sqrt(0.1 / 0.19), a step smaller by sqrt(0.91)."""
    steps = {}
    for amsgrad in (False, True):
        param, m, v, v_max = (np.zeros(1) for _ in range(4))
        sizes = []
        for step, g in enumerate((1.0, 0.1), start=1):
            before = param.copy()
            optim.adam_update(param, np.array([g]), m, v, v_max, step=step, lr=1.0, betas=(0.9, 0.9), eps=1e-12,
                              amsgrad=amsgrad, backend=backend)
            sizes.append(float(before[0] - param[0]))
        steps[amsgrad] = sizes
        if amsgrad:
            np.testing.assert_allclose(v_max, [0.1], rtol=1e-12)        # the maximum, not the last v
    eps = 1e-12
    np.testing.assert_allclose(steps[False], [1 / (1 + eps), (0.1 / 0.19) / (math.sqrt(0.091 / 0.19) + eps)],
                               rtol=1e-12)
    np.testing.assert_allclose(steps[True], [1 / (1 + eps), (0.1 / 0.19) / (math.sqrt(0.1 / 0.19) + eps)],
                               rtol=1e-12)
    assert steps[True][1] < steps[False][1]
