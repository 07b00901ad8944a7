"""Keras's model methods and argument names (issue 18), each checked against the nn function it wraps."""
import numpy as np
import pytest

import kernels
import nn


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def _model(seed=0):
    nn.set_seed(seed)
    return nn.Sequential(nn.Dense(8, activation="relu", input_shape=(4,)), nn.Dense(2, activation="softmax"))


def test_sequential_takes_layers_as_arguments_or_a_list_and_input_shape_builds_it():
    a, b = _model(), nn.Sequential([nn.Input((4,)), nn.Dense(8, activation="relu"), nn.Dense(2, activation="softmax")])
    assert a.built and a.output_shape == (2,) and a.count_params() == b.count_params() == 58
    assert [layer.name for layer in a.layers] == ["dense", "dense_1"]
    conv = nn.Sequential(nn.Conv2D(4, 3, strides=2, input_shape=(1, 9, 9)), nn.MaxPool2D(2, strides=1))
    assert conv.output_shape == (4, 3, 3) and conv.layers[0].geometry.stride == (2, 2)
    assert conv.layers[1].geometry.stride == (1, 1)
    assert nn.Conv2D(4, 3, strides=2).get_config() == nn.Conv2D(4, 3, stride=2).get_config()
    with pytest.raises(TypeError, match="Conv2D: give stride= or Keras's strides=, not both"):
        nn.Conv2D(4, 3, stride=2, strides=2)


def test_compile_fit_evaluate_predict_are_nn_fit_evaluate_predict():
    x, y = _data()
    keras, plain = _model(), _model()
    keras.compile(optimizer=nn.optim.SGD(keras.parameters(), lr=0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    h1 = keras.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=0)
    h2 = nn.fit(plain, (x, y), loss="sparse_categorical_crossentropy", optimizer=nn.optim.SGD(plain.parameters(),
                lr=0.1), epochs=3, batch_size=16, verbose=0, seed=0)
    assert h1.history == h2.history
    expected = nn.evaluate(plain, (x, y), loss="sparse_categorical_crossentropy")
    assert keras.evaluate(x, y) == [expected["loss"], expected["accuracy"]]
    assert keras.evaluate(x, y, return_dict=True) == expected
    np.testing.assert_array_equal(keras.predict(x), nn.predict(plain, x))


def test_validation_split_takes_the_last_fraction_and_a_second_fit_keeps_the_optimiser():
    x, y = _data()
    keras, plain = _model(), _model()
    keras.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = keras.fit(x, y, epochs=2, validation_split=0.25, verbose=0, seed=0)
    reference = nn.fit(plain, (x[:45], y[:45]), loss="sparse_categorical_crossentropy", optimizer="adam", epochs=2,
                       validation=(x[45:], y[45:]), verbose=0, seed=0)
    assert history.history == reference.history
    optimiser = keras._compiled["optimizer"]
    keras.fit(x, y, epochs=1, verbose=0)
    assert keras._compiled["optimizer"] is optimiser and isinstance(keras.evaluate(x, y), float)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\), got 1.5"):
        keras.fit(x, y, validation_split=1.5)


def test_fit_before_compile_and_unknown_names_are_refused():
    model = _model()
    with pytest.raises(RuntimeError, match=r"fit: call model.compile\(optimizer=..., loss=...\) first"):
        model.fit(*_data())
    with pytest.raises(ValueError, match="compile: metrics may only hold 'accuracy', got \\['auc'\\]"):
        model.compile(metrics=["auc"])
    with pytest.raises(ValueError, match="compile: optimizer must be one of"):
        model.compile(optimizer="adamx")


def test_save_and_load_weights_round_trip(tmp_path):
    x, _ = _data()
    model = _model(seed=1)
    path = model.save(tmp_path / "m")
    np.testing.assert_array_equal(nn.load(path).predict(x), model.predict(x))
    other = _model(seed=2)
    assert not np.array_equal(other.predict(x), model.predict(x))
    np.testing.assert_array_equal(other.load_weights(path).predict(x), model.predict(x))


def test_to_cpu_is_the_model_and_to_cuda_says_not_yet():
    model = _model()
    assert model.to("cpu") is model
    with pytest.raises(kernels.BackendUnavailable, match="not supported yet"):
        model.to("cuda")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda', got 'tpu'"):
        model.to("tpu")


def test_the_plot_has_round_ticks_a_point_per_epoch_and_shows_in_jupyter():
    ticks = nn.plot.nice_ticks(0.0863, 0.532)
    assert ticks == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    steps = np.diff(ticks)
    np.testing.assert_allclose(steps, steps[0])
    for lo, hi in [(0.05, 2.3), (0.91, 0.985), (-3.0, 7.0), (0.5, 0.5), (1e-4, 3e-4)]:
        got = nn.plot.nice_ticks(lo, hi)
        assert got[0] <= lo and got[-1] >= hi and 3 <= len(got) <= 11
        step = got[1] - got[0]
        assert round(step / 10 ** np.floor(np.log10(step)), 6) in (1.0, 2.0, 5.0)
    history = nn.History()
    history.append(0, {"loss": 0.7, "accuracy": 0.6, "lr": 0.001})
    svg = history._repr_svg_()
    assert svg.startswith("<svg") and svg.count("<circle") == 2          # one epoch: a point per curve
    empty = nn.History()
    assert empty._repr_svg_() is None
