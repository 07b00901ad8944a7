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


def test_to_moves_the_parameters_and_refuses_an_unknown_device():
    model = _model()
    assert model.to("cpu") is model
    if kernels.cuda_available():                        # the simulator in the tests (tests/nn/test_device.py)
        assert model.to("cuda") is model and isinstance(model.parameters()[0].value, kernels.device.DeviceArray)
        assert isinstance(model.to("cpu").parameters()[0].value, np.ndarray)
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
    svg = nn.plot.history_svg(history)
    assert svg.startswith("<svg") and svg.count("<circle") == 2          # one epoch: a point per curve
    empty = nn.History()
    assert empty._repr_svg_() is None and empty._repr_png_() is None


def _history(losses, accuracies=None):
    history = nn.History()
    for epoch, loss in enumerate(losses):
        logs = {"loss": loss, "val_loss": loss * 1.1}
        if accuracies is not None:
            logs["accuracy"] = accuracies[epoch]
        history.append(epoch, {**logs, "lr": 0.001})
    return history


def test_the_fallback_svg_keeps_every_point_inside_the_frame_and_on_round_ticks():
    import re

    svg = nn.plot.history_svg(_history([0.532, 0.3, 0.2, 0.0863], [0.6, 0.8, 0.9, 1.0]))
    frames = [tuple(map(float, m)) for m in re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" '
                                                           r'height="([\d.]+)"', svg)]
    assert len(frames) == 2 and svg.count("<circle") == 4 + 4 + 4
    top, height = frames[0]
    cys = [float(c) for c in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert all(top + 2 < cy < top + height - 2 for cy in cys)          # margins: no point on the frame
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert labels == ["0", "0.2", "0.4", "0.6", "0.8",                  # round ticks, not 0.0863...
                      "0.5", "0.6", "0.7", "0.8", "0.9", "1", "1.1"]     # accuracy 1.0 below the top


def test_history_plot_is_a_matplotlib_figure_with_round_ticks_margins_and_a_point_per_epoch(monkeypatch):
    pytest.importorskip("matplotlib")
    figure = _history([0.532, 0.3, 0.2, 0.0863], [0.6, 0.8, 0.9, 0.97]).plot()
    figure.canvas.draw()                                               # rendered by Agg (no pyplot)
    loss, accuracy = figure.axes
    assert [loss.get_title(), accuracy.get_title()] == ["loss", "accuracy"]
    for ax, values in ((loss, [0.0863, 0.532 * 1.1]), (accuracy, [0.6, 0.97])):
        lo, hi = ax.get_ylim()
        assert lo < min(values) and hi > max(values)                   # margins on both sides
        ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
        step = ticks[1] - ticks[0]
        assert round(step / 10 ** np.floor(np.log10(step)), 6) in (1.0, 2.0, 2.5, 5.0)
        assert all(abs(t / step - round(t / step)) < 1e-6 for t in ticks)
        x0, x1 = ax.get_xlim()
        assert x0 < 1 and x1 > 4 and all(float(t).is_integer() for t in ax.get_xticks())
        assert all(line.get_marker() == "o" for line in ax.get_lines())
    assert [line.get_label() for line in loss.get_lines()] == ["loss", "val_loss"]
    single = _history([0.7]).plot()
    single.canvas.draw()
    (ax,) = single.axes
    (x, y), = [line.get_xydata()[0] for line in ax.get_lines()[:1]]
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert (x, y) == (1.0, 0.7) and x0 < 1 < x1 and y0 < 0.7 < y1     # one epoch: a point, inside the axes
    assert [t for t in ax.get_xticks() if x0 <= t <= x1] == [1.0]
    png = _history([0.7])._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and _history([0.7])._repr_svg_() is None     # Jupyter: one image
    monkeypatch.setattr(nn.plot, "HAS_MATPLOTLIB", False)             # without matplotlib: the SVG, and the fix
    assert _history([0.7])._repr_png_() is None and _history([0.7])._repr_svg_().startswith("<svg")
    with pytest.raises(ImportError, match=r"History.plot\(\) needs matplotlib \(pip install matplotlib\)"):
        _history([0.7]).plot()


# --- nn.Model: Keras's methods on a model of one's own ------------------------------------------------

class _Shortcut(nn.Model):
    """A user's model: a hidden layer and a linear shortcut, summed (no Sequential can say it)."""

    def __init__(self, hidden=8):
        super().__init__()
        self.hidden = nn.Dense(hidden, activation="relu")
        self.out = nn.Dense(2)
        self.skip = nn.Dense(2, use_bias=False)

    def forward(self, x):
        return self.out(self.hidden(x)) + self.skip(x)


def test_a_subclass_of_model_has_the_keras_methods_and_fit_is_nn_fit():
    x, y = _data()
    nn.set_seed(0)
    keras = _Shortcut()
    keras.compile(optimizer="sgd", loss="softmax_cross_entropy", metrics=["accuracy"])
    assert not keras.built
    h1 = keras.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=0)
    assert keras.built and keras.input_shape == (4,) and keras.output_shape == (2,)
    assert keras.count_params() == 4 * 8 + 8 + 8 * 2 + 2 + 4 * 2 == 66
    nn.set_seed(0)
    plain = _Shortcut()
    plain.build((4,))                             # the same parameters as the lazily built one
    h2 = nn.fit(plain, (x, y), optimizer=nn.optim.SGD(plain.parameters()), epochs=3, batch_size=16, verbose=0,
                seed=0)
    assert h1.history == h2.history and len(h1.history["loss"]) == 3
    expected = nn.evaluate(plain, (x, y))
    assert keras.evaluate(x, y) == [expected["loss"], expected["accuracy"]]
    np.testing.assert_array_equal(keras.predict(x), nn.predict(plain, x))
    by_hand = np.maximum(x @ plain.hidden.weight.value + plain.hidden.bias.value, 0) @ plain.out.weight.value \
        + plain.out.bias.value + x @ plain.skip.weight.value
    np.testing.assert_allclose(plain.predict(x), by_hand, rtol=1e-5, atol=1e-6)
    assert keras.to("cpu") is keras and isinstance(nn.Sequential(), nn.Model)


def test_a_subclass_builds_without_touching_its_statistics_and_prints_its_summary(capsys):
    class Normed(nn.Model):
        def __init__(self):
            super().__init__(name="normed")
            self.dense = nn.Dense(3)
            self.norm = nn.BatchNorm()

        def forward(self, x):
            return self.norm(self.dense(x))

    model = Normed()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    assert model.build((4,)) == (3,) and model.training and model.norm.training
    state = model.state_dict()
    assert [k for k in state if "running" in k] and all(np.array_equal(state[k], v) for k, v in before.items())
    model.summary()
    out = capsys.readouterr().out
    assert 'Model: "normed"' in out and "dense (Dense)" in out and "(None, 3)" in out
    assert "Total params: 27" in out and "Non-trainable params: 6" in out


def test_a_subclass_saves_when_registered_and_says_how_otherwise(tmp_path):
    x, _ = _data()
    nn.set_seed(3)
    model = _Shortcut()
    model.build((4,))
    with pytest.raises(ValueError, match=r"save: _Shortcut is not registered.*@nn.module.register"):
        model.save(tmp_path / "m")
    assert not list(tmp_path.iterdir())

    @nn.module.register
    class Saved(_Shortcut):
        pass

    try:
        nn.set_seed(4)
        saved = Saved()
        saved.build((4,))
        again = nn.load(saved.save(tmp_path / "m"))
        assert type(again) is Saved
        np.testing.assert_array_equal(again.predict(x), saved.predict(x))
        other = Saved()
        other.build((4,))
        np.testing.assert_array_equal(other.load_weights(tmp_path / "m.safetensors").predict(x), saved.predict(x))
    finally:
        del nn.LAYERS["Saved"]
