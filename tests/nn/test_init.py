"""nn.init: fans, the variances of eqs. 5.1 and 5.2, orthogonality, symmetry, LSUV."""
import numpy as np
import pytest

import nn
from nn import init


def test_fans_of_dense_and_convolution_weights():
    assert init.fans((300, 100)) == (300, 100)                 # Dense (in, units)
    assert init.fans((64, 32, 3, 3)) == (32 * 9, 64 * 9)       # Conv2D (F, C, kh, kw), as torch
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(5,\)"):
        init.fans((5,))


@pytest.mark.parametrize("name, expected_var", [
    ("xavier_normal", 2.0 / (400 + 200)), ("xavier_uniform", 2.0 / (400 + 200)),   # eq. 5.1
    ("he_normal", 2.0 / 400), ("he_uniform", 2.0 / 400),                           # eq. 5.2
])
def test_variances_follow_the_equations(name, expected_var):
    w = init.get(name)((400, 200), rng=np.random.default_rng(0))
    assert w.dtype == np.float32 and w.shape == (400, 200)
    assert abs(w.var() / expected_var - 1) < 0.02               # 80,000 draws: ~0.5% standard error
    assert abs(w.mean()) < 4 * np.sqrt(expected_var / w.size)
    if name.endswith("uniform"):
        assert np.abs(w).max() <= np.sqrt(3 * expected_var) + 1e-7


def test_normal_uniform_constant_and_in_place_filling():
    rng = np.random.default_rng(1)
    assert abs(init.normal((1000, 100), std=0.01, rng=rng).std() - 0.01) < 2e-4
    u = init.uniform((1000, 10), a=-0.05, b=0.05, rng=rng)
    assert u.min() >= -0.05 and u.max() <= 0.05
    p = nn.Parameter(np.ones((3, 4), np.float32))
    assert init.constant(p, 0.5) is p and np.all(p.value == 0.5)
    assert np.all(init.zeros((2, 2)) == 0)


@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (8, 3, 3, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    w = init.orthogonal(shape, gain=2.0, rng=np.random.default_rng(2)).reshape(shape[0], -1).astype(np.float64)
    small = min(w.shape)
    gram = w @ w.T if w.shape[0] == small else w.T @ w
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-5)


def test_constant_initialisation_keeps_units_identical_symmetry():
    x = np.random.default_rng(3).normal(size=(32, 4)).astype(np.float32)
    y = np.arange(32) % 3
    model = nn.Sequential([nn.Input((4,)), nn.Dense(5, activation="tanh", kernel_initializer="ones"),
                           nn.Dense(3, kernel_initializer="ones")])
    nn.fit(model, (x, y), epochs=5, optimizer="sgd", lr=0.5, verbose=0)
    hidden = model.layers[1].weight.value
    assert not np.allclose(hidden, 1.0)                                 # it did learn something ...
    np.testing.assert_allclose(hidden, hidden[:, :1] * np.ones((1, 5)))  # ... but every unit the same thing


def test_unknown_initialiser_is_named():
    with pytest.raises(ValueError, match="initialiser must be one of .* got 'glorot'"):
        nn.Dense(3, kernel_initializer="glorot")


def test_lsuv_gives_unit_output_variance_layer_by_layer():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 3.0, (256, 1, 8, 8)).astype(np.float32)
    model = nn.Sequential([nn.Input((1, 8, 8)), nn.Conv2D(8, 3, activation="relu"), nn.Flatten(),
                           nn.Dense(32, activation="tanh"), nn.Dense(10)])
    variances = init.lsuv(model, x, tol=0.05, rng=rng)
    assert list(variances) == ["conv2d", "dense", "dense_1"]
    for layer in (model.layers[1], model.layers[3], model.layers[4]):
        out = model.forward_until(x, layer, pre_activation=True).value
        assert abs(out.var() - 1.0) < 0.1, layer.name
    assert model.training                                # the mode is given back
