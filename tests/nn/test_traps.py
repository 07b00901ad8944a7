"""Issue 18's silent traps, each now a correct result or a clear error naming the fix."""
import argparse
import io

import numpy as np
import pytest

import nn
from chainrule.cli import main
from chainrule.commands import train as command
from chainrule.commands.train import SHAPES


def _classifier(softmax=True, seed=0):
    nn.set_seed(seed)
    return nn.Sequential([nn.Input((4,)), nn.Dense(8, activation="relu"),
                          nn.Dense(3, activation="softmax" if softmax else None)])


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, rng.integers(0, 3, size=n)


def test_an_ensemble_evaluated_with_the_default_loss_applies_no_second_softmax():
    x, y = _data()
    members = [_classifier(seed=0), _classifier(softmax=False, seed=1)]
    ensemble = nn.regularizers.Ensemble(members)
    p = ensemble.predict(x)
    oracle = float(-np.mean(np.log(p[np.arange(len(y)), y])))      # the cross-entropy of the averages
    assert nn.evaluate(ensemble, (x, y))["loss"] == pytest.approx(oracle, rel=1e-5)
    assert nn.evaluate(ensemble, (x, y), loss="softmax_cross_entropy")["loss"] == pytest.approx(oracle, rel=1e-5)
    assert ensemble.evaluate(x, y)["loss"] == pytest.approx(oracle, rel=1e-5)


def test_batches_made_outside_the_epoch_loop_give_every_epoch_its_batches():
    x = np.arange(10)
    loader = nn.data.batches(x, batch_size=4, seed=3)
    epochs = [np.concatenate(list(loader)) for _ in range(3)]
    assert all(sorted(e.tolist()) == list(range(10)) for e in epochs)   # not empty after the first
    for e, got in enumerate(epochs):                                    # epoch e: batches(..., epoch=e)
        np.testing.assert_array_equal(got, np.concatenate(list(nn.data.batches(x, batch_size=4, seed=3, epoch=e))))
    assert not np.array_equal(epochs[0], epochs[1])


def test_float64_input_is_cast_by_fit_evaluate_predict_and_named_by_a_layer():
    x, y = _data()
    model = _classifier()
    expected = nn.predict(model, x)
    np.testing.assert_array_equal(nn.predict(model, x.astype(np.float64)), expected)
    assert nn.predict(model, x.astype(np.float64)).dtype == np.float32
    assert nn.evaluate(model, (x.astype(np.float64), y)) == nn.evaluate(model, (x, y))
    nn.fit(model, (x.astype(np.float64), y), epochs=1, verbose=0)
    nn.set_seed(0)
    cnn = nn.Sequential(nn.Conv2D(2, 3, input_shape=(1, 5, 5)), nn.Flatten(), nn.Dense(3))
    images = np.random.default_rng(1).normal(size=(4, 1, 5, 5))                          # float64
    np.testing.assert_array_equal(nn.predict(cnn, images), nn.predict(cnn, images.astype(np.float32)))
    with pytest.raises(TypeError, match=r"conv2d: the input has dtype float64 but the layer's weights float32; "
                                        r"cast it first \(x.astype\(np.float32\)\)"):
        cnn(images)


def test_the_same_parameter_twice_is_refused_and_parameters_lists_a_shared_layer_once():
    model = _classifier()
    params = model.parameters()
    with pytest.raises(ValueError, match="SGD: parameters 0 and 4 are the same Parameter; pass each parameter once"):
        nn.optim.SGD(params + params[:1], lr=0.1)
    shared = nn.Dense(3)
    twice = nn.Sequential([nn.Input((3,)), shared, nn.Sequential([shared], name="again")])
    assert len(twice.parameters()) == 2
    nn.optim.Adam(twice.parameters())


@pytest.mark.parametrize("model", ["lenet5", "keras-mnist-cnn"])
def test_train_refuses_a_model_that_does_not_fit_the_data_set_before_any_work(model, capsys, tmp_path):
    assert main(["train", "--model", model, "--dataset", "digits", "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr()
    assert f"--model {model} cannot take --dataset digits's 8x8 images" in err.err
    assert "models that fit digits: keras-mnist-mlp, resnet-small, digits-cnn" in err.err
    assert "Data:" not in err.out and not (tmp_path / "run").exists()


def test_train_shapes_are_the_data_sets_shapes():
    assert set(SHAPES) == set(nn.datasets.DATASETS)
    x, _ = nn.datasets.load_digits()
    assert tuple(x.shape[1:]) == SHAPES["digits"]


def test_train_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: digits-cnn)", "(default: 10)", "(default: 32)", "(default: adam)", "(default: cpu)"):
        assert default in text
    assert "(default: None)" not in text


def test_train_says_1_epoch(tmp_path):
    out = io.StringIO()
    assert command.train(_command_args(tmp_path, epochs=1), out=out) == 0
    assert "for 1 epoch, batch" in out.getvalue()


def _command_args(tmp_path, **changes):
    defaults = dict(model="keras-mnist-mlp", dataset="digits", data_dir=None, epochs=1, batch_size=64,
                    optimizer="adam", lr=None, backend="numpy", seed=0, output=str(tmp_path / "run"))
    return argparse.Namespace(**{**defaults, **changes})


def test_a_softmax_output_fed_to_softmax_cross_entropy_warns_and_logits_do_not():
    import warnings

    import autodiff as ad

    nn.set_seed(0)
    model = nn.Sequential([nn.Input((4,)), nn.Dense(3, activation="softmax")])
    x = ad.Tensor(np.ones((2, 4), np.float32))
    with pytest.warns(UserWarning, match=r"softmax applied twice\): pass model.forward\(x, logits=True\)"):
        nn.functional.softmax_cross_entropy(model(x), np.array([0, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.functional.softmax_cross_entropy(model.forward(x, logits=True), np.array([0, 1]))
