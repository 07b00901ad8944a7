"""nn's primitives under autodiff.compile: declared without code templates, they compile as calls of
their kernels, and their derivatives are their own rules recorded (conv2d's joint rule, the fused
ReLU's step computed from the output); max-pooling, whose argmax each of its primitives finds again from the
pooled input, at whatever input the compiled code is given."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff as ad
import nn.functional as F


def loss(x, w, b):
    h = F.avg_pool2d(F.conv2d(x, w, b, padding=1, activation="relu"), 2)
    return F.softmax_cross_entropy(ad.reshape(h, shape=(2, -1)), np.array([1, 3]))


def test_a_small_cnn_loss_compiles_and_its_gradient_is_the_engines_at_other_inputs(tmp_path):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 1, 4, 4)), rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2)
    cf = ad.compile(loss, x, w, b, argnums=(0, 1, 2), cache=tmp_path)
    assert "impl.conv2d_relu(" in cf.source and "impl.conv2d_weight_grad(" in cf.source
    for _ in range(3):
        x2, w2, b2 = rng.normal(size=x.shape), rng.normal(size=w.shape), rng.normal(size=b.shape)   # other ReLU masks
        value, grads = cf(x2, w2, b2)
        want_value, want_grads = ad.value_and_grad(loss, argnums=(0, 1, 2))(x2, w2, b2)
        assert value == pytest.approx(want_value, rel=1e-12)
        for got, want in zip(grads, want_grads):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_max_pooling_compiles_and_its_argmax_moves_with_the_input(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(2, 3, 4, 3))
    f = lambda x: ad.sum(F.max_pool2d(x, 2, stride=1) * w) ** 2            # noqa: E731  (overlapping windows)
    x = rng.normal(size=(2, 3, 5, 4))
    cf = ad.compile(f, x, cache=tmp_path)
    cj = ad.compile(lambda x: F.max_pool2d(x, 2, stride=1), x, mode="forward", cache=tmp_path)
    tied = np.round(rng.normal(size=x.shape))                               # ties: the first maximum, as eager
    for other in (rng.normal(size=x.shape), -x, tied):
        value, grad = cf(other)
        want_value, want_grad = ad.value_and_grad(f)(other)
        assert value == pytest.approx(want_value, rel=1e-12)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-12)
        t = rng.normal(size=x.shape)
        for got, want in zip(cj(other, t), ad.jvp(lambda v: F.max_pool2d(v, 2, stride=1), (other,), (t,))):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "prelu"])
def test_masked_activations_compile_with_their_masks_computed_not_frozen(activation, tmp_path):
    alpha = np.array([0.1, 0.3])
    act = {"leaky_relu": lambda v: F.leaky_relu(v, 0.2), "elu": F.elu, "prelu": lambda v: F.prelu(v, alpha)}[activation]
    f = lambda x: ad.sum(act(x) * np.arange(1.0, 9.0).reshape(4, 2))     # noqa: E731
    x = np.array([[1.0, -2.0], [0.5, -0.5], [2.0, 3.0], [-1.0, 0.0]])
    cf = ad.compile(f, x, cache=tmp_path)
    other = -x                                                             # every mask flips (0 stays)
    value, grad = cf(other)
    want_value, want_grad = ad.value_and_grad(f)(other)
    assert value == pytest.approx(want_value, rel=1e-14)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-14)
