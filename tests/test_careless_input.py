"""Careless calls across the public API (issue 27's audit): each is refused in one line that names the
argument, what was expected and what came, where Python's or NumPy's words came from deep inside before."""
import numpy as np
import pytest

import autodiff as ad
import nn
from _hostile import refused_in_one_line  # tests/_hostile.py


def _model():
    return nn.Sequential([nn.Input((3,)), nn.Dense(2, activation="softmax")])


X, Y = np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1])

CASES = {
    "grad of a number": (lambda: ad.grad(3), TypeError,
                         r"grad: f must be a function \(of Tensors or numbers\), got 3 \(int\)"),
    "gradcheck of a number": (lambda: ad.gradcheck(2.0, np.ones(2)), TypeError, "gradcheck: f must be a function"),
    "backward of a string": (lambda: (ad.Tensor(np.ones(2), requires_grad=True) * 2).backward("abc"), TypeError,
                             r"backward\(\): gradient must be a number or an array of the output's shape \(2,\), "
                             r"got 'abc'"),
    "fit without x": (lambda: nn.fit(_model(), (None, Y), verbose=0), TypeError,
                      r"data: x must be an array with one row per sample, got NoneType \(\)"),
    "Input of an int": (lambda: nn.Input(5), TypeError, r"Input: shape must be a tuple of ints without the batch axis "
                                                      r"\(e.g. \(5,\)\), got 5"),
    "Input of a zero size": (lambda: nn.Input((3, 0)), ValueError,
                             "Input: each size of shape must be a positive int, got 0"),
    "an optimiser given the model": (lambda: nn.optim.SGD(_model(), lr=0.1), TypeError,
                                     r"SGD: params must be an iterable of Parameters .* \(e.g. model.parameters\(\)\), "
                                     r"got Sequential"),
    "one callback, not a list": (lambda: nn.fit(_model(), (X, Y), callbacks=nn.EarlyStopping(), verbose=0), TypeError,
                                 r"fit: callbacks must be a list of callbacks \(e.g. \[nn.EarlyStopping\(\)\]\), got "
                                 r"EarlyStopping"),
    "a string for an axis": (lambda: ad.sum(ad.Tensor(np.ones(2)), axis="x"), TypeError,
                             r"sum: cannot apply to shapes \(2,\) with axis='x', keepdims=False: "),
    "grad of complex input": (lambda: ad.grad(lambda v: ad.relu(v))(np.array(1.0 + 1j)), TypeError,
                              r"^relu is not complex-analytic and takes real input only, got a complex one: .*"
                              r"grad, predict and the rest take real arrays \(x.real\)$"),
    "predict of no samples": (lambda: nn.predict(_model(), X[:0]), ValueError,
                              r"predict: x must hold at least one sample, got shape \(0, 3\)"),
    "a layer larger than the machine": (lambda: nn.Sequential([nn.Input((3,)), nn.Dense(10**12)]), ValueError,
                                        r"dense: parameter 'weight' of shape \(3, 1000000000000\) needs "
                                        r"3,000,000,000,000 values .* more than this machine's memory"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_careless_call_is_refused_in_one_line_naming_the_argument(name):
    refused_in_one_line(*CASES[name])


def test_compile_takes_one_metric_as_a_string_as_keras():
    """metrics='accuracy' was read letter by letter ('a', 'c', 'c', ...) and refused."""
    model = _model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics="accuracy")
    assert "accuracy" in model.fit(X, Y, epochs=1, verbose=0).history
    with pytest.raises(ValueError, match=r"compile: metrics may only hold 'accuracy', got \['mae'\]"):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics="mae")


def test_model_checkpoint_refuses_a_folder_it_cannot_write_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match=r"ModelCheckpoint: path .* cannot be written: .*a_file' is not a folder"):
        nn.ModelCheckpoint(blocker / "sub" / "model.safetensors")
    nn.ModelCheckpoint(tmp_path / "new" / "deeper" / "model.safetensors")       # a folder nn.save will make
