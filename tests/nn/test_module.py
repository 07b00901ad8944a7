"""nn.module's protocol: the one softmax rule its three callers share, rng=None as nn's seeded generator,
layer specs and the LAYERS whitelist, attributes set without bypassing Module.__setattr__."""
import numpy as np
import pytest

import nn
import nn.regularizers as R
from nn import functional as F
from nn.module import LAYERS, ends_in_softmax, from_spec, layer_spec, register


def val(t):
    return np.asarray(getattr(t, "value", t))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- the softmax rule: Sequential.forward(logits=True), fit/evaluate's loss, Ensemble ----------------

W = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
B = np.array([0.5, -1.0, 0.0, 2.0], np.float32)
X = np.random.default_rng(1).normal(size=(12, 3)).astype(np.float32)
Y = np.arange(12) % 4
LOGITS = X.astype(np.float64) @ W + B                 # the oracle: NumPy, not the engine


def dense(**kwargs):
    return nn.Dense(4, kernel_initializer=lambda shape: W.copy(), bias_initializer=lambda shape: B.copy(), **kwargs)


SOFTMAX_MODELS = {
    "Softmax() layer": lambda: nn.Sequential([nn.Input((3,)), dense(), nn.Softmax()]),
    "Activation('softmax')": lambda: nn.Sequential([nn.Input((3,)), dense(), nn.Activation("softmax")]),
    "Dense(activation='softmax')": lambda: nn.Sequential([nn.Input((3,)), dense(activation="softmax")]),
    "nested Sequential": lambda: nn.Sequential([nn.Input((3,)), nn.Sequential([dense(), nn.Softmax()], name="head")]),
}


@pytest.mark.parametrize("make", SOFTMAX_MODELS.values(), ids=SOFTMAX_MODELS.keys())
def test_sequential_evaluate_and_ensemble_agree_that_a_model_ends_in_softmax(make):
    model = make()
    probabilities, oracle_loss = softmax(LOGITS), -np.mean(np.log(softmax(LOGITS)[np.arange(12), Y]))
    assert ends_in_softmax(model) and model.ends_in_softmax()
    np.testing.assert_allclose(nn.predict(model, X), probabilities, rtol=1e-5, atol=1e-6)
    # Sequential: logits=True stops before the softmax
    np.testing.assert_allclose(val(model.forward(X, logits=True)), LOGITS, rtol=1e-5, atol=1e-5)
    # evaluate (fit's loss_function): the cross-entropies are the fused one, on those logits
    for loss in ("sparse_categorical_crossentropy", "cross_entropy", "softmax_cross_entropy"):
        assert nn.evaluate(model, (X, Y), loss=loss)["loss"] == pytest.approx(oracle_loss, rel=1e-5)
    value, out = nn.training.loss_function(model, "sparse_categorical_crossentropy")(X, Y)
    np.testing.assert_allclose(out.value, LOGITS, rtol=1e-5, atol=1e-5)
    # Ensemble: the model's outputs are probabilities already, not logits to pass through softmax again
    np.testing.assert_allclose(R.Ensemble([model]).predict(X), probabilities, rtol=1e-5, atol=1e-6)
    assert not ends_in_softmax(R.Ensemble([model]))


def test_a_model_without_softmax_gives_logits_to_all_three():
    model = nn.Sequential([nn.Input((3,)), dense()])
    assert not ends_in_softmax(model) and not ends_in_softmax(nn.Sequential([]))
    np.testing.assert_allclose(val(model.forward(X, logits=True)), LOGITS, rtol=1e-5, atol=1e-5)
    assert nn.evaluate(model, (X, Y))["loss"] == pytest.approx(-np.mean(np.log(softmax(LOGITS)[np.arange(12), Y])),
                                                                rel=1e-5)
    np.testing.assert_allclose(R.Ensemble([model]).predict(X), softmax(LOGITS), rtol=1e-5, atol=1e-6)


def test_a_residual_block_ending_in_softmax_is_fused_on_its_own_logits():
    block = nn.Residual([nn.Dense(4, kernel_initializer="ones")], activation="softmax")
    block.build((4,))
    x = X[:, :1] * np.ones((1, 4), np.float32)
    z = x.astype(np.float64) @ np.ones((4, 4)) + x                  # body(x) + x, before the softmax
    assert ends_in_softmax(block)
    np.testing.assert_allclose(block.forward(x, pre_activation=True).value, z, rtol=1e-5)
    assert nn.evaluate(block, (x, Y))["loss"] == pytest.approx(-np.mean(np.log(softmax(z)[np.arange(12), Y])),
                                                                rel=1e-5)


# --- rng=None: nn's global generator, the one nn.set_seed seeds --------------------------------------

def test_rng_none_follows_nn_set_seed_in_dropout_and_drop_connect():
    x = np.ones((4, 50), np.float32)
    nn.set_seed(7)
    first, second = F.dropout(x, 0.5), F.drop_connect(x, 0.5)
    assert not np.array_equal(first, second)                                   # the generator moved on
    nn.set_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5), first)
    np.testing.assert_array_equal(F.drop_connect(x, 0.5), second)
    np.testing.assert_array_equal(F.dropout(x, 0.5, rng=np.random.default_rng(7)), first)   # seed 7's first draw
    nn.set_seed(7)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x), first)                   # the layer too


def test_rng_none_means_the_same_generator_in_data_and_augment():
    nn.set_seed(3)
    assert nn.data.as_generator(None) is nn.utils.rng(None)
    x = np.random.default_rng(0).random((8, 1, 3, 3), dtype=np.float32)
    nn.set_seed(3)
    flipped = nn.augment.random_flip(x, None)
    np.testing.assert_array_equal(flipped, nn.augment.random_flip(x, 3))
    with pytest.raises(TypeError, match="rng must be an int, None or a np.random.Generator, got float"):
        nn.init.he_normal((2, 2), rng=0.5)


# --- layer specs, the whitelist, plain attributes -------------------------------------------------------

def test_every_layer_class_is_registered_and_a_spec_rebuilds_the_layer():
    assert set(nn.layers.__all__) - {"LAYERS"} == set(LAYERS) and nn.LAYERS is LAYERS
    model = nn.models.resnet_small()
    again = from_spec(layer_spec(model))
    assert layer_spec(again) == layer_spec(model) and again.count_params() == model.count_params()
    with pytest.raises(ValueError, match=r"unknown layer class 'Lambda'; known: \['Activation', "):
        from_spec({"class": "Lambda", "config": {}})


def test_a_registered_layer_of_ones_own_saves_and_loads(tmp_path):
    @register
    class Scale(nn.Layer):
        def __init__(self, factor=2.0, name=None):
            super().__init__(name)
            self.config = {"factor": factor}

        def forward(self, x):
            self._check_input(x)
            return x * self.config["factor"]

    try:
        model = nn.Sequential([nn.Input((3,)), Scale(3.0), nn.Dense(4)])
        nn.save(model, tmp_path / "scaled")
        np.testing.assert_allclose(nn.predict(nn.load(tmp_path / "scaled"), X), nn.predict(model, X))
    finally:
        del LAYERS["Scale"]


def test_attributes_go_through_module_setattr():
    layer = nn.Dense(3, use_bias=False)
    layer.build((2,))
    assert layer.bias is None and list(layer._parameters) == ["weight"]
    model = nn.Sequential([nn.Input((2,)), layer, nn.Dropout(0.5)])
    model.eval()
    assert not any(module.training for _, module in model.named_modules())
    with pytest.raises(ValueError, match="Sequential: two layers are named 'a'"):
        nn.Sequential([nn.Dense(1, name="a"), nn.Dense(1, name="a")])
