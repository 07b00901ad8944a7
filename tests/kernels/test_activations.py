"""The scalar activation formulas (kernels/activations/formulas.py) compiled by Numba for the CPU, held to
the NumPy reference. The CUDA simulator runs them as plain Python, so this is where Numba types them;
the CUDA kernels that call them are held to the reference in test_cuda_device.py."""
import numpy as np
import pytest
from numba import njit

from kernels.activations import ACTIVATIONS, formulas
from kernels.activations import reference as ref


@njit
def _forward(x, code, alpha, y):
    for k in range(x.size):
        y[k] = formulas.activation(code, x[k], alpha)


@njit
def _backward(g, x, y, code, alpha, dx):
    for k in range(x.size):
        dx[k] = formulas.activation_backward(code, g[k], x[k], y[k], alpha)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, alpha", [("relu", 0.0), ("tanh", 0.0), ("sigmoid", 0.0), ("elu", 1.0),
                                         ("leaky_relu", 0.01), ("swish", 1.3)])
def test_the_compiled_formulas_equal_the_reference(name, alpha, dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([[0.0, -80.0, 80.0], rng.normal(size=20) * 3]).astype(dtype)   # 0 and both tails
    g = rng.normal(size=x.size).astype(dtype)
    alpha = dtype(alpha)
    y, dx = np.empty_like(x), np.empty_like(x)
    _forward(x, ACTIVATIONS[name], alpha, y)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y, ref.activation_forward(x, name, alpha), rtol=tol, atol=tol)
    _backward(g, x, y, ACTIVATIONS[name], alpha, dx)
    np.testing.assert_allclose(dx, ref.activation_backward(g, x, y, name, alpha), rtol=tol, atol=tol)


def test_relu_keeps_nan_and_its_derivative_is_0_at_0_and_at_nan():
    x = np.array([np.nan, 0.0, -0.0, 2.0], np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    _forward(x, ACTIVATIONS["relu"], np.float32(0), y)
    np.testing.assert_array_equal(y, [np.nan, 0, 0, 2])
    np.testing.assert_array_equal(ref.activation_forward(x, "relu", 0.0), y)
    _backward(np.full_like(x, 5), x, y, ACTIVATIONS["relu"], np.float32(0), dx)
    np.testing.assert_array_equal(dx, [0, 0, 0, 5])
