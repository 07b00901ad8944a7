"""Issue 29, the training-loop rows: each Keras habit written as a Keras user writes it."""
import csv
import math

import numpy as np
import pytest

import nn


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)


def _model(seed=0, softmax=True, optimizer="sgd", loss="sparse_categorical_crossentropy"):
    nn.set_seed(seed)
    model = nn.Sequential(nn.Dense(8, activation="relu", input_shape=(4,)),
                          nn.Dense(2, activation="softmax" if softmax else None))
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


class _Batches(nn.Callback):
    def on_train_begin(self, model):
        self.steps = []

    def on_train_batch_end(self, batch, logs, model):
        self.steps.append(batch)


# --- row 1: verbose= on evaluate and predict ---------------------------------------------------------

def test_evaluate_and_predict_take_verbose_and_print_keras_one_line(capsys):
    x, y = _data()
    model = _model()
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert model.predict(x, verbose=0).shape == (60, 2)
    assert capsys.readouterr().out == ""
    assert model.evaluate(x, y, batch_size=32, verbose=1) == pytest.approx([loss, accuracy])
    line = capsys.readouterr().out
    assert line.startswith("2/2 - ") and f"loss: {loss:.4f}" in line and line.count("\n") == 1
    model.predict(x, batch_size=32)                          # Keras's default verbose="auto" prints
    assert capsys.readouterr().out.startswith("2/2 - ")
    assert nn.evaluate(model, (x, y), verbose=1)["loss"] == loss and capsys.readouterr().out.startswith("1/1 - ")
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto', got 3"):
        model.predict(x, verbose=3)


# --- row 2: batch_size=None ------------------------------------------------------------------------

def test_fit_batch_size_none_is_keras_default_32():
    x, y = _data(100)
    counted = _Batches()
    h_none = _model().fit(x, y, batch_size=None, epochs=2, verbose=0, seed=0, callbacks=[counted])
    h_32 = _model().fit(x, y, batch_size=32, epochs=2, verbose=0, seed=0)
    assert counted.steps == [0, 1, 2, 3] * 2 and h_none.history == h_32.history
    assert _model().fit(x, y, verbose=0, seed=0).history["loss"] == h_32.history["loss"][:1]


@pytest.mark.parametrize("bad", [0, 2.5, "32", True])
def test_a_bad_batch_size_is_named_before_anything_changes(bad):
    x, y = _data()
    nn.set_seed(0)
    model = nn.Sequential(nn.Dense(8, activation="relu"), nn.Dense(2, activation="softmax"))   # not built yet
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=rf"batch_size must be a positive integer or None \(32\), got {bad!r}"):
        model.fit(x, y, batch_size=bad, verbose=0)
    assert not model.built


# --- row 3: integer images -------------------------------------------------------------------------

def test_uint8_images_are_cast_to_the_models_dtype_as_keras_does():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 1, 6, 6)).astype(np.uint8)
    labels = rng.integers(0, 3, size=12)
    nn.set_seed(0)
    model = nn.Sequential(nn.Conv2D(2, 3, input_shape=(1, 6, 6)), nn.Flatten(), nn.Dense(3, activation="softmax"))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    as_float = images.astype(np.float32)                    # Keras casts the values, no scaling
    np.testing.assert_array_equal(model.predict(images, verbose=0), model.predict(as_float, verbose=0))
    assert model.evaluate(images, labels, verbose=0) == model.evaluate(as_float, labels, verbose=0)
    assert np.isfinite(model.fit(images, labels, epochs=1, verbose=0).history["loss"][0])


# --- row 4: class_weight and sample_weight ---------------------------------------------------------

def _per_example_loss(model, x, y, loss):
    out = model.predict(x, verbose=0)
    if loss == "mse":
        return np.mean((out - y) ** 2, axis=1)
    if loss == "softmax_cross_entropy":                     # logits
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return -np.log(out[np.arange(len(y)), y])


@pytest.mark.parametrize("loss, softmax", [("sparse_categorical_crossentropy", True),
                                           ("softmax_cross_entropy", False), ("mse", False)])
def test_fit_weights_each_examples_loss_and_averages_over_the_batch(loss, softmax):
    x, y = _data(40)
    if loss == "mse":
        y = np.eye(2, dtype=np.float32)[y]
    w = np.random.default_rng(1).uniform(0, 3, size=40)
    model = _model(softmax=softmax, loss=loss)
    expected = np.sum(w * _per_example_loss(model, x, y, loss)) / 40    # Keras: sum_i w_i l_i / N
    history = model.fit(x, y, sample_weight=w, batch_size=40, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_class_weight_is_each_examples_weight_by_its_class():
    x, y = _data(40)
    model = _model()
    w = np.where(y == 1, 5.0, 1.0)
    expected = np.sum(w * _per_example_loss(model, x, y, "sparse_categorical_crossentropy")) / 40
    history = model.fit(x, y, class_weight={0: 1.0, 1: 5.0}, batch_size=40, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_weights_scale_the_gradient_and_leave_validation_unweighted():
    x, y = _data()
    doubled = _model()
    doubled.compile(optimizer=nn.optim.SGD(doubled.parameters(), lr=0.1), loss="sparse_categorical_crossentropy")
    plain = _model()
    plain.compile(optimizer=nn.optim.SGD(plain.parameters(), lr=0.2), loss="sparse_categorical_crossentropy")
    doubled.fit(x, y, sample_weight=np.full(60, 2.0), epochs=2, batch_size=16, verbose=0, seed=0)
    plain.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
    np.testing.assert_allclose(doubled.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
    frozen = _model()
    frozen.compile(optimizer=nn.optim.SGD(frozen.parameters(), lr=0.0), loss="sparse_categorical_crossentropy")
    h = frozen.fit(x, y, sample_weight=np.full(60, 3.0), batch_size=60, validation_data=(x, y), verbose=0)
    assert h.history["loss"][0] == pytest.approx(3 * h.history["val_loss"][0], rel=1e-5)


def test_a_heavily_weighted_rare_class_is_predicted_more():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + rng.normal(0, 0.8, 200) > 1.3).astype(np.int64)            # about 1 in 10
    recall = {}
    for weights in (None, {0: 1.0, 1: 10.0}):
        model = _model(optimizer="adam")
        model.fit(x, y, class_weight=weights, epochs=30, batch_size=32, verbose=0, seed=0)
        recall[weights is None] = np.mean(model.predict(x, verbose=0).argmax(axis=1)[y == 1] == 1)
    assert recall[False] > recall[True] + 0.2


def test_bad_weights_are_named():
    x, y = _data()
    model = _model()
    with pytest.raises(ValueError, match="give class_weight or sample_weight, not both"):
        model.fit(x, y, class_weight={1: 2.0}, sample_weight=np.ones(60), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight must be 60 finite numbers .* got shape \(59,\)"):
        model.fit(x, y, sample_weight=np.ones(59), verbose=0)
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        model.fit(x, y, class_weight=[1.0, 2.0], verbose=0)
    with pytest.raises(ValueError, match="need a named loss"):
        nn.fit(model, (x, y), loss=lambda out, t: out.sum(), sample_weight=np.ones(60), verbose=0)


def test_fit_trains_with_a_loss_function_of_the_callers_own():
    """loss=f(output, y): the same losses as the named loss it writes out (fit once passed it three arguments)."""
    x, y = _data()
    runs = [nn.fit(_model(), (x, y), loss=loss, optimizer="sgd", lr=0.1, epochs=2, batch_size=20, verbose=0,
                   shuffle=False)["loss"]
            for loss in ("cross_entropy", lambda out, t: nn.functional.cross_entropy(out, t))]
    assert runs[0][1] < runs[0][0]
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-6)


def test_validation_split_splits_sample_weight_too():
    x, y = _data()
    w = np.random.default_rng(2).uniform(0, 2, size=60)
    h_split = _model().fit(x, y, sample_weight=w, validation_split=0.25, epochs=2, verbose=0, seed=0)
    h_by_hand = _model().fit(x[:45], y[:45], sample_weight=w[:45], validation_data=(x[45:], y[45:]), epochs=2,
                             verbose=0, seed=0)
    assert h_split.history == h_by_hand.history


# --- row 5: TerminateOnNaN, CSVLogger --------------------------------------------------------------

def test_terminate_on_nan_stops_after_the_first_bad_batch(capsys):
    x, y = _data(16)
    x[5] = np.nan
    counted = _Batches()
    with pytest.warns(RuntimeWarning, match="fit: the loss is nan at epoch 1, batch 2"):   # fit's own stop too
        h = _model().fit(x, y, batch_size=4, epochs=5, shuffle=False, verbose=0,
                         callbacks=[nn.TerminateOnNaN(), counted])
    assert counted.steps == [0, 1] and len(h.epoch) == 1 and math.isnan(h.history["loss"][0])
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out
    assert len(_model().fit(x, y, batch_size=4, epochs=5, shuffle=False, verbose=0, terminate_on_nan=False).epoch) == 5


@pytest.mark.parametrize("spoil", ["nan in x", "inf in x", "nan target", "lr 1e6"])
def test_fit_stops_on_a_non_finite_loss_before_its_update_and_says_where(spoil):
    """Training on through a NaN loss left every weight NaN, silently: fit now stops at the first such batch,
    before its update, and warns with the epoch, the batch and what to try."""
    x, y = _data(16)
    model, lr, loss = _model(), 0.1, "sparse_categorical_crossentropy"
    if spoil == "nan in x":
        x[9] = np.nan
    elif spoil == "inf in x":
        x[9] = np.inf
    elif spoil == "nan target":
        y = np.where(np.arange(16) == 9, np.nan, 1.0).astype(np.float32)[:, None] * np.ones((1, 2), np.float32)
        loss = "mse"
    else:
        lr = 1e6
    with pytest.warns(RuntimeWarning, match=r"fit: the loss is (nan|inf) at epoch \d+, batch \d+: training stopped") \
            as caught, np.errstate(all="ignore"):
        h = nn.fit(model, (x, y), loss=loss, optimizer="sgd", lr=lr, batch_size=4, epochs=50, shuffle=False,
                   verbose=0)
    ours = [str(w.message) for w in caught if str(w.message).startswith("fit:")]   # (NumPy's overflows aside)
    assert len(ours) == 1 and "smaller learning rate than" in ours[0]
    assert len(h.epoch) < 50 and not np.isfinite(h.history["loss"][-1])
    assert all(np.isfinite(p.value).all() for p in model.parameters())          # the last good weights
    if spoil != "lr 1e6":
        assert "epoch 1, batch 3" in ours[0]                                   # x[9] is in the third batch
    with pytest.raises(ValueError, match=r"fit: epochs must be an int >= 0, got 1.9"):
        nn.fit(_model(), (x, y), epochs=1.9, verbose=0)
    with pytest.raises(TypeError, match="fit: terminate_on_nan must be True or False, got 'no'"):
        nn.fit(_model(), (x, y), terminate_on_nan="no", verbose=0)


def test_csv_logger_writes_epoch_and_every_metric_and_appends(tmp_path):
    x, y = _data()
    path = tmp_path / "log.csv"
    path.write_text("stale\n")
    model = _model()
    h = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[nn.CSVLogger(path, separator=";")])
    rows = list(csv.reader(path.open(), delimiter=";"))
    assert rows[0] == ["epoch", "accuracy", "loss", "lr", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    np.testing.assert_allclose([float(r[5]) for r in rows[1:]], h.history["val_loss"])
    model.fit(x, y, epochs=2, verbose=0, callbacks=[nn.CSVLogger(path, separator=";", append=True)])
    rows = list(csv.reader(path.open(), delimiter=";"))
    assert len(rows) == 6 and [r[0] for r in rows[4:]] == ["0", "1"] and len(rows[5]) == 4     # no header again


@pytest.mark.parametrize("path", ["best.keras", "epoch{epoch}.h5", "model.pt"])
def test_model_checkpoint_refuses_another_librarys_suffix_when_made(path, tmp_path):
    with pytest.raises(ValueError, match="nn.save writes .safetensors files"):
        nn.ModelCheckpoint(tmp_path / path)
    nn.ModelCheckpoint(tmp_path / "epoch{epoch}")                   # a name without a suffix is fine


def test_weighted_losses_check_their_targets_as_the_unweighted_ones():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 2)).astype(np.float32)
    model = nn.Sequential([nn.Input((2,)), nn.Dense(2)])
    with pytest.raises(ValueError, match="softmax_cross_entropy: labels must be in 0..1, got values from 0 to 5"):
        nn.fit(model, (x, np.array([0, 5] * 10)), loss="softmax_cross_entropy", sample_weight=np.ones(20), verbose=0)
    with pytest.raises(ValueError, match=r"mse: the target's shape \(20,\) does not match the prediction's \(20, 2\)"):
        nn.fit(model, (x, np.zeros(20, np.float32)), loss="mse", sample_weight=np.ones(20), verbose=0)
