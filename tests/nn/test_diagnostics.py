"""nn.diagnostics: the slides' initialisation experiment and vanishing gradients, against NumPy."""
import numpy as np
import pytest

import nn
from nn.diagnostics import ActivationStats, activation_stats, deep_mlp, gradient_norms, layer_gradient_norms

WIDTH, BATCH = 200, 200


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).standard_normal((BATCH, WIDTH)).astype(np.float32)   # "unit gaussian input"


def experiment(data, activation, init, std=None, seed=1):
    model = deep_mlp(depth=10, width=WIDTH, input_dim=WIDTH, activation=activation, init=init, std=std, rng=seed)
    return model, activation_stats(model, data, bins=30, hist_range=(-1, 1))


def test_activation_stats_match_the_slides_numpy_loop(data):
    """The slides' own code (H = act(X W), layer by layer), run on the model's weights."""
    model, stats = experiment(data, "tanh", "glorot_normal")
    assert isinstance(stats, ActivationStats) and len(stats) == 10
    h = data.astype(np.float64)
    for i, (layer, s) in enumerate(zip(model.layers[1:], stats)):
        h = np.tanh(h @ layer.weight.value.astype(np.float64))
        assert (s.index, s.name, s.layer, s.shape) == (i + 1, layer.name, "Dense", (BATCH, WIDTH))
        assert s.mean == pytest.approx(h.mean(), abs=1e-5)
        assert s.std == pytest.approx(h.std(), rel=1e-4)
        counts, edges = np.histogram(h, bins=30, range=(-1, 1))
        np.testing.assert_allclose(s.edges, edges)
        assert np.abs(s.counts - counts).sum() <= 10          # float32 vs float64 at the bin edges
    assert stats.input.std == pytest.approx(data.std(), rel=1e-6)


def test_small_gaussian_init_shrinks_the_activations_by_orders_of_magnitude(data):
    _, stats = experiment(data, "tanh", "normal", std=0.01)
    stds = np.array(stats.stds)
    ratios = stds[1:] / stds[:-1]
    assert np.all((ratios > 0.1) & (ratios < 0.2))           # 0.01 sqrt(200) = 0.14 per layer
    assert stds[0] == pytest.approx(0.14, abs=0.02) and stds[-1] < 1e-7
    assert abs(stats[-1].counts.argmax() - 14.5) <= 0.5       # all mass in the two bins around 0


def test_unit_gaussian_init_saturates_tanh(data):
    _, stats = experiment(data, "tanh", "normal", std=1.0)
    for s in stats:
        assert s.std > 0.9
        assert (s.counts[0] + s.counts[-1]) / s.counts.sum() > 0.8   # almost all at -1 or 1


def test_xavier_keeps_tanh_alive_but_halves_relu(data):
    _, tanh = experiment(data, "tanh", "glorot_normal")
    stds = np.array(tanh.stds)
    assert 0.5 < stds[0] < 0.75 and stds[-1] > 0.15 and stds.max() / stds.min() < 4
    _, relu = experiment(data, "relu", "glorot_normal")
    ratios = np.array(relu.stds[1:]) / np.array(relu.stds[:-1])
    assert np.all(ratios < 0.85) and relu.stds[-1] < 0.1 * relu.stds[0]


def test_he_init_keeps_relu_stable(data):
    _, stats = experiment(data, "relu", "he_normal")
    stds, means = np.array(stats.stds), np.array(stats.means)
    assert stds.max() / stds.min() < 1.5 and np.all((stds > 0.6) & (stds < 1.1))
    assert np.all(means > 0.4)                                 # ReLU outputs are not centred


def test_pre_activation_records_z_but_feeds_the_activation_on(data):
    model = deep_mlp(depth=3, width=WIDTH, input_dim=WIDTH, init="he_normal", activation="relu", rng=3)
    pre = activation_stats(model, data, pre_activation=True)
    post = activation_stats(model, data)
    h = data.astype(np.float64)
    for layer, p, q in zip(model.layers[1:], pre, post):
        z = h @ layer.weight.value.astype(np.float64)
        h = np.maximum(z, 0)
        assert p.mean == pytest.approx(z.mean(), abs=1e-5) and q.mean == pytest.approx(h.mean(), rel=1e-5)
    assert "pre-activation shape" in pre.table()


def test_activation_stats_runs_in_evaluation_mode_and_restores_the_mode(data):
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((WIDTH,)), nn.Dense(10), nn.Dropout(0.5), nn.BatchNorm()])
    first = activation_stats(model, data[:20])
    assert model.training and model.layers[2].training
    np.testing.assert_array_equal(first[1].counts, activation_stats(model, data[:20])[1].counts)  # no dropout
    assert first[0].std == pytest.approx(first[1].std)                                           # identity
    text = str(first)
    assert text.splitlines()[0].split() == ["#", "layer", "output", "shape", "mean", "std"]
    assert "dropout (Dropout)" in text and "(20, 10)" in text and len(text.splitlines()) == 2 + 4


# --- gradients ----------------------------------------------------------------------------------------

def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_layer_gradient_norms_match_hand_written_backprop():
    """Softmax cross-entropy through sigmoid layers, back-propagated in NumPy (delta rule)."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.integers(0, 3, 16)
    model = deep_mlp(depth=3, width=6, input_dim=6, activation="sigmoid", init="glorot_normal", classes=3,
                     use_bias=True, rng=5)
    ws = [layer.weight.value.astype(np.float64) for layer in model.layers[1:]]
    bs = [layer.bias.value.astype(np.float64) for layer in model.layers[1:]]
    hs, h = [x.astype(np.float64)], x.astype(np.float64)
    for w, b in zip(ws[:-1], bs[:-1]):
        h = sigmoid(h @ w + b)
        hs.append(h)
    logits = h @ ws[-1] + bs[-1]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    delta = (p - np.eye(3)[y]) / len(y)                        # d loss / d logits = (y - t) / N
    expected = []
    for i in reversed(range(len(ws))):
        expected.append(np.linalg.norm(hs[i].T @ delta))
        delta = (delta @ ws[i].T) * hs[i] * (1 - hs[i])         # sigma' = sigma (1 - sigma)
    expected = expected[::-1]

    norms = layer_gradient_norms(model, x, y)
    assert list(norms) == [layer.name for layer in model.layers[1:]]
    np.testing.assert_allclose(list(norms.values()), expected, rtol=1e-4)


def test_vanishing_gradients_in_a_deep_sigmoid_network():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(128, 64)).astype(np.float32), rng.integers(0, 10, 128)
    model = deep_mlp(depth=10, width=64, input_dim=64, activation="sigmoid", init="glorot_normal", classes=10,
                     rng=2)
    norms = np.array(list(layer_gradient_norms(model, x, y).values()))
    assert np.all(np.diff(norms) > 0)                 # smaller at every layer towards the input
    assert norms[0] < 1e-4 * norms[-1]                # sigma' <= 1/4: about 0.25 per layer


def test_layer_gradient_norms_leave_the_model_as_it_was():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 5)).astype(np.float32), rng.integers(0, 2, 8)
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((5,)), nn.Dense(4), nn.BatchNorm(), nn.ReLU(), nn.Dense(2)])
    model.eval()
    marker = np.full((5, 4), 7.0, np.float32)
    model.layers[1].weight.grad = marker
    state = model.state_dict()
    norms = layer_gradient_norms(model, x, y)
    assert list(norms) == ["dense", "dense_1"] and all(v > 0 for v in norms.values())
    for name, value in model.state_dict().items():             # parameters and running statistics
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    assert model.layers[1].weight.grad is marker and model.layers[4].weight.grad is None
    assert not model.training


def test_gradient_norms_after_backward():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((3,)), nn.Dense(2), nn.Dense(1)])
    with pytest.raises(ValueError, match="call loss.backward"):
        gradient_norms(model)
    x = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    model(x).sum().backward()
    norms = gradient_norms(model)
    w2 = model.layers[2].weight.value
    assert list(norms) == ["dense.weight", "dense.bias", "dense_1.weight", "dense_1.bias"]
    assert norms["dense_1.bias"] == pytest.approx(4.0)                          # d sum / d b = N
    assert norms["dense.bias"] == pytest.approx(4 * np.linalg.norm(w2))          # each row: w2^T
    h = x @ model.layers[1].weight.value + model.layers[1].bias.value
    assert norms["dense_1.weight"] == pytest.approx(np.linalg.norm(h.sum(axis=0)), rel=1e-5)


# --- the builder and the errors ---------------------------------------------------------------------------

def test_deep_mlp_initialisers_have_the_asked_spread():
    for init, std, expected in [("normal", None, 0.01), ("normal", 1.0, 1.0), ("he_normal", None, np.sqrt(2 / 300)),
                                ("glorot_normal", None, np.sqrt(2 / 600))]:
        model = deep_mlp(depth=2, width=300, input_dim=300, init=init, std=std, rng=0)
        for layer in model.layers[1:]:
            assert layer.weight.value.dtype == np.float32 and layer.weight.value.shape == (300, 300)
            assert layer.weight.value.std() == pytest.approx(expected, rel=0.02)
            assert layer.bias is None
    a, b = deep_mlp(depth=2, width=4, input_dim=4, rng=0), deep_mlp(depth=2, width=4, input_dim=4, rng=0)
    np.testing.assert_array_equal(a.layers[1].weight.value, b.layers[1].weight.value)        # seeded
    assert not np.array_equal(a.layers[1].weight.value, a.layers[2].weight.value)            # layers differ


@pytest.mark.parametrize("call, error, message", [
    (lambda: deep_mlp(depth=0), ValueError, "depth must be an int >= 1, got 0"),
    (lambda: deep_mlp(init="he_normal", std=0.1), ValueError, "std is the standard deviation of init='normal'"),
    (lambda: deep_mlp(std=-1.0), ValueError, "std must be a finite number > 0, got -1.0"),
    (lambda: deep_mlp(init="xavier"), ValueError, "initialiser must be one of"),
    (lambda: deep_mlp(activation="tanhh"), ValueError, "activation must be one of"),
    (lambda: activation_stats(nn.Dense(3), np.zeros((2, 3), np.float32)), TypeError, "model must be an nn.Sequential"),
    (lambda: activation_stats(deep_mlp(1, 2, input_dim=2), np.zeros((2, 2)), bins=0), ValueError,
     "bins must be an int >= 1, got 0"),
    (lambda: activation_stats(deep_mlp(1, 2, input_dim=2), np.zeros((2, 2), np.int64)), TypeError,
     "x must be a float array"),
    (lambda: layer_gradient_norms(deep_mlp(1, 2, input_dim=2), np.zeros((2, 2), np.float32), [0], loss="mse"),
     ValueError, "x has 2 samples but y has 1"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
