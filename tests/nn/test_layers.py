"""nn's functional ops and layers: shapes, parameter counts, and every gradient against finite differences."""
import io

import numpy as np
import pytest

import autodiff as ad
import nn
from nn import functional as F


def rand(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(0.0, scale, shape)


# --- the source material's models ----------------------------------------------------------------------

def test_keras_cnn_and_mlp_have_the_source_materials_parameter_counts():
    cnn, mlp = nn.models.keras_mnist_cnn(), nn.models.keras_mnist_mlp()
    assert cnn.count_params() == 34_826
    assert mlp.count_params() == 101_770
    shapes = [layer.output_shape for layer in cnn.layers[1:]]
    assert shapes == [(32, 26, 26), (32, 13, 13), (64, 11, 11), (64, 5, 5), (1600,), (1600,), (10,)]


def test_summary_is_a_keras_style_table_with_totals():
    out = io.StringIO()
    nn.models.keras_mnist_cnn().summary(file=out)
    text = out.getvalue()
    assert "conv2d (Conv2D)" in text and "(None, 32, 26, 26)" in text and "18,496" in text
    assert "Total params: 34,826" in text and "Trainable params: 34,826" in text


def test_other_models_build_and_run():
    x = rand(2, 1, 28, 28).astype(np.float32)
    for name in ("lenet5", "resnet-small", "keras-mnist-mlp"):
        model = nn.models.MODELS[name]()
        assert nn.predict(model, x).shape == (2, 10)
    assert nn.models.lenet5().count_params() == 61_706
    assert nn.predict(nn.models.digits_cnn(), x[:, :, :8, :8]).shape == (2, 10)


def test_layers_are_named_like_keras_and_state_dict_follows_the_names():
    model = nn.Sequential([nn.Input((1, 8, 8)), nn.Conv2D(2, 3), nn.Conv2D(2, 3), nn.Flatten(), nn.BatchNorm(),
                           nn.Dense(3)])
    assert [layer.name for layer in model.layers] == ["input", "conv2d", "conv2d_1", "flatten", "batch_norm", "dense"]
    assert list(model.state_dict()) == ["conv2d.weight", "conv2d.bias", "conv2d_1.weight", "conv2d_1.bias",
                                        "batch_norm.gamma", "batch_norm.beta", "dense.weight", "dense.bias",
                                        "batch_norm.running_mean", "batch_norm.running_var"]
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_wrong_input_shape_is_refused_naming_the_shapes():
    model = nn.models.keras_mnist_cnn()
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 1, 28, 28\), got \(N, 1, 8, 8\)"):
        model(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="put a Flatten"):
        nn.Sequential([nn.Input((1, 4, 4)), nn.Dense(3)])
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.Dense(3, activation="rleu")


# --- gradients: every op against central differences (float64) ----------------------------------------

CONV_CASES = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1)),
]


@pytest.mark.parametrize("options", CONV_CASES)
def test_conv2d_gradients(options):
    x, w, b = rand(2, 3, 7, 6), rand(4, 3, 3, 2, seed=1), rand(4, seed=2)
    assert ad.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **options), x, w, b).passed


def test_grouped_conv2d_gradients_and_second_derivatives():
    x, w = rand(1, 4, 5, 5), rand(6, 2, 3, 3, seed=1)
    assert ad.gradcheck(lambda x, w: F.conv2d(x, w, groups=2), x, w).passed
    # the rules are convolutions again, so a gradient can be differentiated (Hessian-vector products)
    assert ad.gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2), x, w, order=2).passed


def test_conv2d_forward_equals_a_direct_sum():
    x, w, b = rand(1, 2, 5, 4), rand(3, 2, 2, 3, seed=1), rand(3, seed=2)
    y = F.conv2d(x, w, b, stride=(2, 1), padding=1)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros(y.shape)
    for f in range(3):
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                expected[0, f, i, j] = b[f] + np.sum(w[f] * xp[0, :, 2 * i:2 * i + 2, j:j + 3])
    np.testing.assert_allclose(y, expected, rtol=1e-12)


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 1, 1), ((2, 3), (1, 2), 0)])
def test_pooling_gradients(kernel, stride, padding):
    x = rand(2, 2, 6, 7)
    assert ad.gradcheck(lambda x: F.max_pool2d(x, kernel, stride, padding), x).passed
    assert ad.gradcheck(lambda x: F.avg_pool2d(x, kernel, stride, padding), x).passed
    assert ad.gradcheck(lambda x: F.max_pool2d(x, kernel, stride, padding), x, order=2).passed


def test_max_pool_sends_the_gradient_to_the_first_maximum_of_a_tie():
    x = ad.Tensor(np.array([[[[1.0, 5.0], [5.0, 2.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[0.0, 1.0], [0.0, 0.0]])


def test_dense_and_activations_gradients():
    x, w, b = rand(3, 4), rand(4, 5, seed=1), rand(5, seed=2)
    assert ad.gradcheck(lambda x, w, b: F.linear(x, w, b), x, w, b).passed
    x = rand(3, 4) + 0.05   # keep away from the kinks at 0
    for f in (F.sigmoid, F.tanh, F.relu, F.leaky_relu, F.elu, F.swish, lambda v: F.swish(v, beta=2.0),
              lambda v: F.elu(v, alpha=0.5), lambda v: F.maxout(v, 2)):
        assert ad.gradcheck(f, x).passed
    alpha = np.array([0.25, 0.1, 0.3, 0.2])
    assert ad.gradcheck(lambda x, a: F.prelu(x, a), x, alpha).passed


def test_activation_values_match_their_definitions():
    x = np.array([-10.0, -1.0, 0.5, 10.0])
    np.testing.assert_allclose(F.leaky_relu(x), np.where(x > 0, x, 0.01 * x))
    np.testing.assert_allclose(F.elu(x, alpha=2.0), np.where(x > 0, x, 2.0 * np.expm1(x)))
    np.testing.assert_allclose(F.swish(x), x / (1 + np.exp(-x)))
    np.testing.assert_allclose(F.maxout(np.array([[1.0, 3.0, -2.0, -5.0]]), 2), [[3.0, -2.0]])
    assert np.isfinite(F.elu(np.array([1000.0]))).all()
    for alpha in (1.0, 0.5):                            # ELU'(0) = alpha (the left-hand derivative)
        assert ad.grad(lambda v: ad.sum(F.elu(v, alpha)))(np.array([0.0]))[0] == alpha


def test_softmax_cross_entropy_value_gradient_and_stability():
    z, labels = rand(5, 4), np.array([0, 3, 1, 1, 2])
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    t = np.eye(4)[labels]
    zt = ad.Tensor(z, requires_grad=True)
    loss = F.softmax_cross_entropy(zt, labels)
    np.testing.assert_allclose(loss.value, -np.mean(np.log(p[np.arange(5), labels])), rtol=1e-12)
    loss.backward()
    np.testing.assert_allclose(zt.grad, (p - t) / 5, rtol=1e-10)          # y - t, averaged over the batch
    assert ad.gradcheck(lambda z: F.softmax_cross_entropy(z, labels), z, order=2).passed
    assert ad.gradcheck(lambda z: F.softmax_cross_entropy(z, t * 0.8 + 0.05), z).passed   # soft targets
    big = np.array([[1000.0, 0.0, -1000.0]])
    assert F.softmax_cross_entropy(big, np.array([0])) == pytest.approx(0.0, abs=1e-12)
    assert F.softmax_cross_entropy(big, np.array([2])) == pytest.approx(2000.0)


def test_other_losses():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert F.cross_entropy(p, np.array([0, 2])) == pytest.approx(-(np.log(0.7) + np.log(0.8)) / 2)
    assert ad.gradcheck(lambda p: F.cross_entropy(p, np.array([0, 2])), p).passed
    assert F.mse(np.array([1.0, 2.0]), np.array([0.0, 4.0])) == pytest.approx(2.5)
    with pytest.raises(ValueError, match=r"labels must be in 0..2, got values from 0 to 3"):
        F.softmax_cross_entropy(p, np.array([0, 3]))
    with pytest.raises(ValueError, match="one entry per row"):
        F.softmax_cross_entropy(p, np.array([0, 1, 2]))


def test_dropout_and_drop_connect():
    x = np.ones((2000,))
    rng = np.random.default_rng(0)
    y = F.dropout(x, 0.25, training=True, rng=rng)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.03 and np.allclose(y[kept], 1 / 0.75)
    assert F.dropout(x, 0.5, training=False) is x
    mask_seed = 3
    assert ad.gradcheck(lambda x: F.dropout(x, 0.5, rng=np.random.default_rng(mask_seed)), rand(4, 3)).passed
    assert ad.gradcheck(lambda x, w: F.linear(x, F.drop_connect(w, 0.5, rng=np.random.default_rng(1))),
                        rand(3, 4), rand(4, 2, seed=1)).passed
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)


def test_batch_norm_gradients_and_running_statistics_as_torch():
    x, gamma, beta = rand(6, 3, 2, 2), rand(3, seed=1), rand(3, seed=2)
    assert ad.gradcheck(lambda x, g, b: F.batch_norm(x, g, b), x, gamma, beta).passed
    assert ad.gradcheck(lambda x, g, b: F.batch_norm(x, g, b), rand(5, 3), gamma, beta).passed
    mean, var = np.zeros(3), np.ones(3)
    y = F.batch_norm(x, gamma, beta, mean, var, training=True, momentum=0.1)
    mu, v = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    expected = (x - mu[None, :, None, None]) / np.sqrt(v[None, :, None, None] + 1e-5) * gamma[None, :, None, None] \
        + beta[None, :, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-10)
    np.testing.assert_allclose(mean, 0.1 * mu)
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1))     # unbiased, as torch
    y_eval = F.batch_norm(x, gamma, beta, mean, var, training=False)
    np.testing.assert_allclose(y_eval, (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
                               * gamma[None, :, None, None] + beta[None, :, None, None], rtol=1e-10)


def test_layers_compute_what_their_functional_op_computes():
    x = rand(2, 3, 6, 6).astype(np.float32)
    conv = nn.Conv2D(4, 3, stride=2, padding="same", activation="relu")
    conv.build((3, 6, 6))
    np.testing.assert_allclose(conv(x).value, np.maximum(F.conv2d(x, conv.weight.value, conv.bias.value, stride=2,
                                                                  padding=1), 0), rtol=1e-6)
    prelu = nn.PReLU()
    prelu.build((3, 6, 6))
    np.testing.assert_allclose(prelu(x).value, np.where(x > 0, x, 0.25 * x))


def test_a_residual_block_adds_its_shortcut_and_has_gradients():
    block = nn.Residual([nn.Conv2D(3, 3, padding=1), nn.ReLU(), nn.Conv2D(3, 3, padding=1)], activation=None)
    block.build((3, 5, 5))
    x = rand(2, 3, 5, 5).astype(np.float32)
    np.testing.assert_allclose(block(x).value, block.body(x).value + x, rtol=1e-6)
    with pytest.raises(ValueError, match="shortcut"):
        nn.Residual([nn.Conv2D(4, 3, padding=1)]).build((3, 5, 5))
    weights = [p for p in block.parameters()]
    assert len(weights) == 4
    loss = (block(x) * block(x)).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in weights)


def test_train_and_eval_modes_switch_dropout_and_batch_norm():
    model = nn.Sequential([nn.Input((4,)), nn.BatchNorm(), nn.Dropout(0.5)])
    x = rand(8, 4).astype(np.float32)
    assert not np.allclose(model(x).value, model(x).value)            # fresh dropout masks
    model.eval()
    np.testing.assert_array_equal(model(x).value, model(x).value)
    assert not model.layers[2].training


def _layer_gradcheck(layer, input_shape, batch=2, order=1):
    """gradcheck of a built layer with respect to its input and every parameter, in float64.

    The layer's Parameters are swapped for the Tensors gradcheck passes in (and put back after);
    random layers draw the same mask on every call (nn.set_seed inside the function).
    """
    layer.build(input_shape)
    slots = [(module, name) for _, module in layer.named_modules() for name in list(module._parameters)]
    values = [getattr(module, name).value.astype(np.float64) for module, name in slots]
    originals = [getattr(module, name) for module, name in slots]

    def f(x, *params):
        nn.set_seed(0)
        for (module, name), p in zip(slots, params):
            object.__setattr__(module, name, p)
        try:
            return layer(x)
        finally:
            for (module, name), p in zip(slots, originals):
                object.__setattr__(module, name, p)

    x = rand(batch, *input_shape, seed=5) + 0.01
    return ad.gradcheck(f, x, *values, order=order)


@pytest.mark.parametrize("make, input_shape", [
    (lambda: nn.Conv2D(3, 3, stride=2, padding=1, activation="tanh"), (2, 5, 5)),
    (lambda: nn.Conv2D(4, (2, 3), groups=2, activation="sigmoid"), (2, 4, 5)),
    (lambda: nn.Dense(3, activation="softmax"), (4,)),
    (lambda: nn.DropConnect(3, rate=0.5, activation="tanh"), (4,)),
    (lambda: nn.Dropout(0.3), (2, 3, 3)),
    (lambda: nn.BatchNorm(), (3, 2, 2)),
    (lambda: nn.BatchNorm(), (5,)),
    (lambda: nn.PReLU(), (3, 2, 2)),
    (lambda: nn.Maxout(pieces=2), (4, 2, 2)),
    (lambda: nn.LeakyReLU(), (3, 4)),
    (lambda: nn.ELU(alpha=0.5), (3, 4)),
    (lambda: nn.Swish(beta=1.5), (3, 4)),
    (lambda: nn.MaxPool2D(2), (2, 4, 5)),
    (lambda: nn.AvgPool2D(3, stride=1, padding=1), (2, 4, 4)),
    (lambda: nn.Residual([nn.Conv2D(3, 3, stride=2, padding=1), nn.BatchNorm(), nn.ReLU(), nn.Conv2D(3, 3, padding=1)],
                         shortcut=[nn.Conv2D(3, 1, stride=2)]), (2, 5, 5)),
])
def test_every_layer_passes_gradcheck(make, input_shape):
    assert _layer_gradcheck(make(), input_shape).passed


def test_mse_matches_n_by_1_against_n_as_keras_and_refuses_other_shapes():
    """(N, 1) predictions against (N,) targets broadcast to N x N in NumPy: a wrong loss, silently."""
    rng = np.random.default_rng(4)
    prediction, target = rng.normal(size=(5, 1)), rng.normal(size=5)
    expected = np.mean((prediction[:, 0] - target) ** 2)
    assert float(ad.value_of(F.mse(prediction, target))) == pytest.approx(expected, rel=1e-12)
    assert float(ad.value_of(F.mse(prediction[:, 0], target[:, None]))) == pytest.approx(expected, rel=1e-12)
    weights = rng.uniform(0.5, 2, 5)
    assert float(ad.value_of(F.mse(prediction, target, sample_weight=weights))) == pytest.approx(
        np.mean(weights * (prediction[:, 0] - target) ** 2), rel=1e-12)
    assert float(ad.value_of(F.mse(prediction, 0.5))) == pytest.approx(np.mean((prediction - 0.5) ** 2))   # a number
    with pytest.raises(ValueError, match=r"mse: the target's shape \(5,\) does not match the prediction's \(5, 2\)"):
        F.mse(rng.normal(size=(5, 2)), target)
    with pytest.raises(ValueError, match=r"mse: the target's shape \(4, 1\) does not match the prediction's \(5, 1\)"):
        F.mse(prediction, target[:4, None])
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)
    runs = []
    for targets in (y, y[:, None]):                     # a regression's (N,) labels train as (N, 1) ones
        nn.set_seed(0)
        runs.append(nn.fit(nn.Sequential([nn.Input((3,)), nn.Dense(1)]), (x, targets), loss="mse", lr=0.05, epochs=20,
                           verbose=0, shuffle=False)["loss"])
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)
    assert runs[0][-1] < 0.2 * runs[0][0]


def test_cross_entropy_warns_when_given_logits_rather_than_probabilities():
    """loss="cross_entropy" on a model that outputs logits trained on the log of clipped logits, silently."""
    logits = np.array([[2.0, -1.0, 0.5], [-0.3, 1.2, 3.0]])
    with pytest.warns(UserWarning, match=r"cross_entropy takes probabilities but got values from -1 to 3 \(logits\?\)"):
        F.cross_entropy(logits, np.array([0, 2]))
    x = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    model = nn.Sequential([nn.Input((3,)), nn.Dense(2)])                     # no softmax: logits out
    with pytest.warns(UserWarning, match="use softmax_cross_entropy for logits"):
        nn.fit(model, (x, np.arange(8) % 2), loss="cross_entropy", epochs=1, verbose=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                     # probabilities: no word
        F.cross_entropy(np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]]), np.array([0, 2]))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.BatchNorm(eps=-1.0), r"BatchNorm: eps must be a finite number > 0, got -1.0"),
    (lambda: nn.BatchNorm(momentum=2.0), r"BatchNorm: momentum must be a finite number in \[0, 1\], got 2.0"),
    (lambda: nn.LeakyReLU(alpha=float("nan")), r"LeakyReLU: alpha must be a finite number, got nan"),
    (lambda: nn.ELU(alpha="1"), r"ELU: alpha must be a finite number, got '1' \(str\)"),
    (lambda: nn.PReLU(alpha=float("inf")), r"PReLU: alpha must be a finite number, got inf"),
    (lambda: nn.Maxout(pieces=-2), r"Maxout: pieces must be a positive int, got -2"),
    (lambda: ad.Tensor(1.0, requires_grad="no"), r"Tensor: requires_grad must be True or False, got 'no'"),
])
def test_hyper_parameters_that_would_misbehave_later_are_refused_when_given(make, message):
    """Each was accepted and then misbehaved (a negative variance floor, a NaN slope, 'no' read as True)."""
    with pytest.raises((ValueError, TypeError), match=message):
        make()
