"""nn's one check of a number argument, ``nn.checks.number_in`` (``nn.utils.number_in``): the penalties'
weights (nn.regularizers) and the clipping limits (nn.clip) use it as the layers' hyper-parameters do, so
each refusal names the argument, the interval expected and what came, in the same words."""
import math

import numpy as np
import pytest

import nn
from nn import regularizers as R
from nn.checks import NotANumber, number_in


@pytest.mark.parametrize("kwargs, expected", [
    ({}, "a finite number"),
    ({"low": 0}, "a finite number >= 0"),
    ({"low": 0, "open_low": True}, "a finite number > 0"),
    ({"high": 1, "open_high": True}, "a finite number < 1"),
    ({"low": 0, "high": 1}, "a finite number in [0, 1]"),
    ({"low": 0, "high": 1, "open_low": True}, "a finite number in (0, 1]"),
    ({"low": 0, "open_low": True, "allow_inf": True}, "a finite number > 0 or inf"),
])
def test_the_interval_in_words(kwargs, expected):
    with pytest.raises(ValueError) as info:
        number_in(float("nan"), "f: a", **kwargs)
    assert str(info.value) == f"f: a must be {expected}, got nan"


def test_what_is_accepted():
    assert number_in(np.float32(0.5), "a", 0, 1) == 0.5 and type(number_in(np.int64(2), "a")) is float
    assert number_in(math.inf, "a", 0, allow_inf=True) == math.inf
    for bad in (-math.inf, math.inf, math.nan):
        with pytest.raises(ValueError):
            number_in(bad, "a")
    with pytest.raises(ValueError, match="got -inf"):
        number_in(-math.inf, "a", allow_inf=True)          # inf only: the upper end


@pytest.mark.parametrize("value", ["0.1", None, True, [1.0], np.array([1.0])])
def test_a_non_number_is_a_type_error_and_a_value_error(value):
    with pytest.raises(NotANumber) as info:
        number_in(value, "l2: lam", 0)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert str(info.value) == f"l2: lam must be a finite number >= 0, got {value!r} ({type(value).__name__})"


def test_utils_reexports_it():
    assert nn.utils.number_in is number_in


@pytest.mark.parametrize("make, message", [
    (lambda: R.l2(-0.1), "l2: lam must be a finite number >= 0, got -0.1"),
    (lambda: R.l1_penalty([], float("inf")), "l1_penalty: lam must be a finite number >= 0, got inf"),
    (lambda: R.elastic_net(l1=0.1, l2="x"), "elastic_net: l2 must be a finite number >= 0, got 'x' (str)"),
    (lambda: R.MaxNorm(float("nan")), "MaxNorm: max_value must be a finite number >= 0, got nan"),
    (lambda: nn.utils.clip_grad_norm_([], max_norm=-1), "clip_grad_norm_: max_norm must be a finite number >= 0, "
                                                        "got -1"),
    (lambda: nn.utils.clip_grad_norm_([], 1.0, norm_type=0), "clip_grad_norm_: norm_type must be a finite number "
                                                             "> 0 or inf, got 0"),
    (lambda: nn.utils.clip_grad_norm_([], 1.0, norm_type="2"), "clip_grad_norm_: norm_type must be a finite number "
                                                               "> 0 or inf, got '2' (str)"),
    (lambda: nn.utils.clip_grad_value_([], math.inf), "clip_grad_value_: clip_value must be a finite number >= 0, "
                                                      "got inf"),
    (lambda: nn.optim.SGD([nn.Parameter(np.zeros(1))], clipnorm=True), "SGD: clipnorm must be a finite number >= 0, "
                                                                       "got True (bool)"),
])
def test_regularizers_and_clipping_refuse_in_number_ins_words(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


def test_clipping_accepts_an_infinite_norm_type():
    w = nn.Parameter(np.zeros(2, np.float32))
    w.grad = np.array([3.0, -4.0], np.float32)
    assert nn.utils.clip_grad_norm_([w], max_norm=1.0, norm_type=math.inf) == 4.0
    np.testing.assert_allclose(w.grad, [0.75, -1.0], rtol=1e-5)
