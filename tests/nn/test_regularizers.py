"""nn.regularizers: penalties against NumPy sums and hand-written derivatives, max-norm, ensembles."""
import numpy as np
import pytest

import nn
import nn.regularizers as R


def small_model(seed=0):
    nn.set_seed(seed)
    return nn.Sequential([nn.Input((4,)), nn.Dense(5, activation="tanh", bias_initializer="ones"), nn.BatchNorm(),
                          nn.PReLU(), nn.Dense(3)])


def weights(model):
    return [p for name, p in model.named_parameters() if name.endswith(".weight")]


def test_l2_value_and_gradient_follow_the_source_convention():
    model, lam = small_model(), 0.3
    penalty = R.l2(lam)(model)
    ws = [p.value.astype(np.float64) for p in weights(model)]
    assert penalty.dtype == np.float32
    np.testing.assert_allclose(penalty.item(), lam / 2 * sum((w ** 2).sum() for w in ws), rtol=1e-6)
    penalty.backward()
    for p, w in zip(weights(model), ws):
        np.testing.assert_allclose(p.grad, lam * w, rtol=1e-6)          # d/dw (lam/2 w^2) = lam w
    for name, p in model.named_parameters():                           # biases, gamma, beta, alpha untouched
        if not name.endswith(".weight"):
            assert p.grad is None, name


def test_l1_value_and_gradient():
    model, lam = small_model(1), 0.05
    model.layers[1].weight.value[0, 0] = 0.0                           # sign(0) = 0: the subgradient used
    penalty = R.l1(lam)(model)
    ws = [p.value.astype(np.float64) for p in weights(model)]
    np.testing.assert_allclose(penalty.item(), lam * sum(np.abs(w).sum() for w in ws), rtol=1e-6)
    penalty.backward()
    for p, w in zip(weights(model), ws):
        np.testing.assert_allclose(p.grad, lam * np.sign(w), rtol=1e-6)
    assert model.layers[1].weight.grad[0, 0] == 0.0


def test_include_bias_adds_the_biases_and_nothing_else():
    model, lam = small_model(2), 0.2
    penalty = R.l2(lam, include_bias=True)(model)
    ps = [p for name, p in model.named_parameters() if name.endswith((".weight", ".bias"))]
    np.testing.assert_allclose(penalty.item(), lam / 2 * sum((p.value.astype(np.float64) ** 2).sum() for p in ps),
                               rtol=1e-6)
    penalty.backward()
    np.testing.assert_allclose(model.layers[1].bias.grad, lam * model.layers[1].bias.value, rtol=1e-6)
    assert model.layers[2].gamma.grad is None and model.layers[3].alpha.grad is None


def test_elastic_net_is_the_sum_of_its_l1_and_l2_parts():
    model = small_model(3)
    net = R.elastic_net(l1=0.01, l2=0.2)(model)
    parts = R.l1(0.01)(model).item() + R.l2(0.2)(model).item()
    np.testing.assert_allclose(net.item(), parts, rtol=1e-6)
    net.backward()
    for p in weights(model):
        w = p.value.astype(np.float64)
        np.testing.assert_allclose(p.grad, 0.01 * np.sign(w) + 0.2 * w, rtol=1e-5)
    assert R.elastic_net(l2=0.2)(model).item() == R.l2(0.2)(model).item()
    assert R.elastic_net()(model).item() == 0.0


def test_plain_penalty_functions_on_parameter_lists():
    a = nn.Parameter(np.array([[1.0, -2.0]], np.float32))
    b = nn.Parameter(np.array([3.0], np.float32))
    assert R.l1_penalty([a, b], 0.5).item() == pytest.approx(0.5 * 6)
    assert R.l2_penalty([a, b], 0.5).item() == pytest.approx(0.25 * 14)
    assert R.elastic_net_penalty([a, b], l1=0.5, l2=0.5).item() == pytest.approx(3 + 3.5)
    assert float(R.l2_penalty([], 1.0)) == 0.0


def test_l2_penalty_in_fit_is_torch_weight_decay_of_sgd():
    """One SGD step on loss + l2(lam) equals one step of SGD(weight_decay=lam): g + lam w."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype(np.float32), rng.integers(0, 3, 16)

    def model():
        nn.set_seed(7)
        return nn.Sequential([nn.Input((4,)), nn.Dense(6, activation="relu", use_bias=False),
                              nn.Dense(3, use_bias=False)])
    a, b = model(), model()
    nn.fit(a, (x, y), optimizer=nn.optim.SGD(a.parameters(), lr=0.5), regularizer=R.l2(0.1), epochs=1,
           batch_size=16, shuffle=False, verbose=0)
    nn.fit(b, (x, y), optimizer=nn.optim.SGD(b.parameters(), lr=0.5, weight_decay=0.1), epochs=1, batch_size=16,
           shuffle=False, verbose=0)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_allclose(pa.value, pb.value, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("make, message", [
    (lambda: R.l2(-0.1), "lam must be a finite number >= 0, got -0.1"),
    (lambda: R.l1(float("nan")), "lam must be a finite number >= 0"),
    (lambda: R.elastic_net(l1=0.1, l2=-1), "l2 must be a finite number >= 0, got -1"),
    (lambda: R.l2_penalty([np.ones(2)], 0.1), "item 0 is a ndarray"),
    (lambda: R.l2(0.1)(np.ones(3)), "model must be an nn Module"),
    (lambda: R.MaxNorm(0), "max_value must be > 0, got 0"),
    (lambda: R.MaxNorm(-2.0), "max_value must be a finite number >= 0, got -2.0"),
    (lambda: R.Ensemble([]), "at least one model"),
    (lambda: R.Ensemble([small_model()], weights=[1, 2]), "one entry per model (1), got 2"),
    (lambda: R.Ensemble([small_model()], average="vote"), "average must be 'probabilities' or 'outputs'"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert message in str(info.value)


def test_lam_must_be_a_number():
    with pytest.raises(TypeError, match=r"l2: lam must be a finite number >= 0, got '0.1' \(str\)"):
        R.l2("0.1")


# --- max-norm ---------------------------------------------------------------------------------------

def test_max_norm_dense_columns_and_conv_filters():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((2, 6, 6)), nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(5)])
    conv, dense = model.layers[1].weight, model.layers[3].weight
    conv.value[:2] *= 50.0                                # filters 0, 1 far too long; 2, 3 as they were
    dense.value[:, ::2] *= 50.0                           # columns (units) 0, 2, 4 too long
    before = {"conv": conv.value.copy(), "dense": dense.value.copy()}
    c = 1.5
    conv_norms = np.sqrt((before["conv"].astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
    dense_norms = np.sqrt((before["dense"].astype(np.float64) ** 2).sum(axis=0))
    assert (conv_norms[:2] > c).all() and (conv_norms[2:] < c).all()
    assert (dense_norms[::2] > c).all() and (dense_norms[1::2] < c).all()

    counts = R.MaxNorm(c).apply(model)

    assert counts == {"conv2d.weight": 2, "dense.weight": 3}
    after_conv = np.sqrt((conv.value.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
    after_dense = np.sqrt((dense.value.astype(np.float64) ** 2).sum(axis=0))
    assert (after_conv <= c * (1 + 1e-6)).all() and (after_dense <= c * (1 + 1e-6)).all()
    np.testing.assert_allclose(after_conv[:2], c, rtol=1e-6)
    np.testing.assert_array_equal(conv.value[2:], before["conv"][2:])            # small ones: exactly as before
    np.testing.assert_array_equal(dense.value[:, 1::2], before["dense"][:, 1::2])
    np.testing.assert_allclose(dense.value[:, ::2], before["dense"][:, ::2] * (c / dense_norms[::2]), rtol=1e-6)
    np.testing.assert_array_equal(model.layers[1].bias.value, np.zeros(4, np.float32))


def test_max_norm_explicit_axis_and_bad_axis_changes_nothing():
    w = np.array([[3.0, 4.0], [0.3, 0.4]], np.float32)    # row norms 5 and 0.5
    assert R.max_norm_(w, 1.0, axis=1) == 1
    np.testing.assert_allclose(w, [[0.6, 0.8], [0.3, 0.4]], rtol=1e-6)

    nn.set_seed(1)
    model = nn.Sequential([nn.Input((1, 5, 5)), nn.Conv2D(2, 3), nn.Flatten(), nn.Dense(2)])
    model.layers[1].weight.value[...] *= 100
    state = model.state_dict()
    with pytest.raises(ValueError, match=r"MaxNorm \(dense.weight\): axis must be axes of the weight of shape "
                                         r"\(18, 2\), got axis=3"):
        R.MaxNorm(1.0, axis=3).apply(model)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)


def test_max_norm_callback_holds_during_training_with_a_large_learning_rate():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)).astype(np.float32) * 5, rng.integers(0, 2, 64)
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((8,)), nn.Dense(16, activation="relu"), nn.Dense(2)])
    nn.fit(model, (x, y), optimizer="sgd", lr=5.0, epochs=2, batch_size=16, verbose=0, callbacks=[R.MaxNorm(0.5)])
    for p in weights(model):
        assert np.linalg.norm(p.value.astype(np.float64), axis=0).max() <= 0.5 * (1 + 1e-6)


# --- ensembles --------------------------------------------------------------------------------------

def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_ensemble_predicts_the_mean_of_the_members_probabilities():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)).astype(np.float32), rng.integers(0, 4, 40)
    nn.set_seed(0)
    a = nn.Sequential([nn.Input((3,)), nn.Dense(4, activation="softmax")])           # gives probabilities
    b = nn.Sequential([nn.Input((3,)), nn.Dense(8, activation="tanh"), nn.Dropout(0.5), nn.Dense(4)])  # logits
    la, lb1, lb2 = a.layers[1], b.layers[1], b.layers[3]
    pa = softmax(x @ la.weight.value + la.bias.value)
    pb = softmax(np.tanh(x @ lb1.weight.value + lb1.bias.value) @ lb2.weight.value + lb2.bias.value)
    mean = (pa + pb) / 2

    ensemble = R.Ensemble([a, b])
    np.testing.assert_allclose(ensemble.predict(x), mean, rtol=1e-5, atol=1e-6)   # eval mode: no dropout
    np.testing.assert_allclose(nn.predict(ensemble, x), mean, rtol=1e-5, atol=1e-6)
    assert ensemble.training and b.training                                          # mode restored

    metrics = ensemble.evaluate(x, y)
    assert metrics["accuracy"] == pytest.approx(np.mean(mean.argmax(axis=1) == y))
    assert metrics["loss"] == pytest.approx(-np.mean(np.log(mean[np.arange(40), y])), rel=1e-5)
    assert R.ensemble_accuracy([a, b], x, y) == metrics["accuracy"]

    weighted = R.Ensemble([a, b], weights=[3, 1]).predict(x)
    np.testing.assert_allclose(weighted, 0.75 * pa + 0.25 * pb, rtol=1e-5, atol=1e-6)
    assert len(ensemble.parameters()) == len(a.parameters()) + len(b.parameters())


def test_ensemble_members_must_agree_on_the_output_shape():
    a = nn.Sequential([nn.Input((3,)), nn.Dense(4)])
    b = nn.Sequential([nn.Input((3,)), nn.Dense(5)])
    with pytest.raises(ValueError, match=r"outputs differ in shape: \[\(2, 4\), \(2, 5\)\]"):
        R.Ensemble([a, b]).predict(np.zeros((2, 3), np.float32))
