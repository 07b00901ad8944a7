"""The defects the public API's fuzzing found and fixed (issue 27; tests/test_public_api_fuzz*.py), one
reproducer each: a silently wrong result, or an error that named no argument, now a one-line refusal
that names it (or, for nn.predict, the right result)."""
import numpy as np
import pytest

import autodiff as ad
import kernels
import nn
import nn.functional as F
from _hostile import refused_in_one_line  # tests/_hostile.py


def _model():
    return nn.Sequential([nn.Input((3,)), nn.Dense(2)])


REFUSED = {
    # kernels/options.py pair(): int() floored 2.7 to 2, read '22' as (2, 2), overflowed at inf and past int64
    "stride (2.7, 1)": (lambda: kernels.ConvGeometry(stride=(2.7, 1)), TypeError, "stride must be an int or a pair"),
    "stride '22'": (lambda: kernels.ConvGeometry(stride="22"), TypeError, "stride must be an int or a pair"),
    "padding (inf, 1)": (lambda: kernels.ConvGeometry(padding=(np.inf, 1)), TypeError, "padding must be an int"),
    "kernel_size 1.5 in a pair": (lambda: kernels.PoolGeometry((1.5, 2)), TypeError, "kernel_size must be an int"),
    "stride 2**63": (lambda: kernels.ConvGeometry(stride=2 ** 63), ValueError, r"stride must be < 2\*\*31"),
    # autodiff/tracing.py _argnums: (0, 0) gave a zero gradient for the repeat; '' and () differentiated nothing
    "argnums (0, 0)": (lambda: ad.grad(lambda a, b: a * b, argnums=(0, 0))(3.0, 2.0), ValueError,
                       r"grad: argnums=\(0, 0\) names an argument twice"),
    "argnums ''": (lambda: ad.grad(lambda a, b: a * b, argnums="")(3.0, 2.0), TypeError,
                   "grad: argnums must be an int or a non-empty tuple of ints, got ''"),
    "argnums ()": (lambda: ad.value_and_grad(lambda a: a, argnums=())(3.0), TypeError, "argnums must be an int"),
    "argnums 1.0": (lambda: ad.grad(lambda a, b: a * b, argnums=1.0)(3.0, 2.0), TypeError, "argnums must be"),
    # autodiff/tracing.py _seed_like: None became NaN, 1j lost its imaginary part
    "hvp v (None, 0)": (lambda: ad.hvp(lambda v: ad.sum(v ** 3), np.ones(2), (None, 0)), TypeError,
                        "hvp: v must be a number or an array"),
    "jvp complex tangent": (lambda: ad.jvp(ad.sin, (np.ones(2),), (np.ones(2) * 1j,)), TypeError, "must be a number"),
    # autodiff/tensor.py: a ragged list, an axis past C's long, a NumPy error class with its own constructor
    "Tensor of a ragged list": (lambda: ad.Tensor([[1, 2], [3]]), ValueError, "Tensor value must be a number or"),
    "sum axis 2**63": (lambda: ad.sum(ad.Tensor(np.ones(2)), axis=2 ** 63), ValueError, "sum: .*axis=9223372036"),
    "mean axis []": (lambda: ad.mean(ad.Tensor(np.ones(2)), axis=[]), TypeError, r"mean: .*axis=\[\]"),
    "clip of ''": (lambda: ad.clip(ad.Tensor(np.ones(2)), "", 1.0), TypeError, "clip: cannot apply .*a_min=''|clip"),
    # autodiff/numerical.py, functional.py, checks.py, compiler/build.py: an array mode, a str step
    "numerical_gradient eps '2'": (lambda: ad.numerical_gradient(lambda a: a * a, 1.0, eps="2"), TypeError,
                                   "eps must be a positive number"),
    "numerical_gradient eps inf": (lambda: ad.numerical_gradient(lambda a: a * a, 1.0, eps=np.inf), ValueError,
                                   "eps must be positive and finite"),
    "numerical_gradient method array": (lambda: ad.numerical_gradient(lambda a: a * a, 1.0, method=np.zeros(0)),
                                        ValueError, "method must be one of"),
    "jacobian mode array": (lambda: ad.jacobian(ad.sin, mode=np.zeros(0))(np.ones(2)), ValueError,
                            "jacobian: mode must be"),
    "compile mode array": (lambda: ad.compile(ad.sin, 0.5, mode=np.zeros(0)), ValueError,
                           "autodiff.compile: mode must be"),
    "gradcheck atol '2'": (lambda: ad.gradcheck(lambda a: ad.sum(a * a), np.ones(2), atol="2"), ValueError,
                           "gradcheck: atol must be a finite number"),
    "gradcheck eps ''": (lambda: ad.gradcheck(lambda a: ad.sum(a * a), np.ones(2), eps=""), ValueError,
                         "gradcheck: eps must be"),
    # nn/functional.py: '0.5' was a rate; int logits gave a truncated loss (1 for log 3); '' and ragged lists
    "Dropout('0.5')": (lambda: nn.Dropout("0.5"), TypeError, "rate must be a number in"),
    "int logits": (lambda: F.softmax_cross_entropy(ad.Tensor(np.ones((2, 3), int)), np.array([0, 2])), TypeError,
                   "softmax_cross_entropy: logits must be floating-point, got dtype int64"),
    "logits ''": (lambda: F.softmax_cross_entropy("", np.array([0, 1])), ValueError,
                  "softmax_cross_entropy: logits must be an array"),
    "ragged logits": (lambda: F.softmax_cross_entropy([[1.0, 2.0], [3.0]], np.array([0, 1])), TypeError,
                      "softmax_cross_entropy: logits must be a rectangular array"),
    "mse target ''": (lambda: F.mse(ad.Tensor(np.ones((2, 3))), ""), TypeError, "mse: target must be a real"),
    # nn/layers/conv.py: an array padding met == "same"
    "Conv2D padding array": (lambda: nn.Conv2D(2, 3, padding=np.zeros(0)), TypeError, "padding must be an int"),
    # nn/io.py: pathlib's words
    "save to a list": (lambda: nn.save(_model(), []), TypeError, "path must be a str or an os.PathLike"),
    "load bytes": (lambda: nn.load(b"m"), TypeError, "path must be a str or an os.PathLike"),
    "save NUL": (lambda: nn.save(_model(), "/tmp/m\x00"), ValueError, "path must not hold a NUL"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_value_the_fuzzing_found_is_refused_naming_the_argument(name):
    refused_in_one_line(*REFUSED[name])


def test_predict_of_a_model_without_parameters_gives_its_output():
    """nn/training.py predict: a model of pooling (or dropout) alone gives arrays, and `.value` of one raised
    AttributeError."""
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    y = nn.predict(nn.Sequential([nn.Input((1, 4, 4)), nn.MaxPool2D(2)]), x)
    np.testing.assert_array_equal(y, x.reshape(2, 1, 2, 2, 2, 2).max(axis=(3, 5)))


def test_argnums_as_a_list_and_negative_still_work():
    f = lambda a, b: a * b ** 2      # noqa: E731
    assert ad.grad(f, argnums=[0, 1])(3.0, 2.0) == (4.0, 12.0)
    assert ad.grad(f, argnums=-1)(3.0, 2.0) == 12.0
