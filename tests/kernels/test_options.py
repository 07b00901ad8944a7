"""kernels.options: geometry and hyper-parameters validated once, when built, and then reused by
the entry points without being checked again."""
import dataclasses

import numpy as np
import pytest

import kernels
from kernels import conv2d, optim, options, pool2d


@pytest.mark.parametrize("build, error, message", [
    (lambda: kernels.ConvGeometry(stride=0), ValueError, r"stride must be >= 1, got \(0, 0\)"),
    (lambda: kernels.ConvGeometry(padding=(1, -1)), ValueError, r"padding must be >= 0, got \(1, -1\)"),
    (lambda: kernels.ConvGeometry(dilation="2"), TypeError, r"dilation must be an int or a pair of ints, got '2'"),
    (lambda: kernels.ConvGeometry(groups=0), ValueError, r"groups must be an int >= 1, got 0"),
    (lambda: kernels.ConvGeometry(groups=True), ValueError, r"groups must be an int >= 1, got True"),
    (lambda: kernels.PoolGeometry(0), ValueError, r"kernel_size must be >= 1, got \(0, 0\)"),
    (lambda: kernels.PoolGeometry(2, stride=(1, 0)), ValueError, r"stride must be >= 1, got \(1, 0\)"),
    (lambda: kernels.PoolGeometry(3, padding=2), ValueError, r"padding must be at most kernel_size // 2 = \(1, 1\)"),
    (lambda: kernels.SGDHyper(lr=-0.1), ValueError, r"lr must be >= 0.0, got -0.1"),
    (lambda: kernels.SGDHyper(lr=0.1, nesterov=True), ValueError, r"Nesterov momentum needs momentum > 0"),
    (lambda: kernels.SGDHyper(lr=0.1, dampening=2), ValueError, r"dampening must be in \[0.0, 1.0\], got 2.0"),
    (lambda: kernels.SGDHyper(lr="0.1"), TypeError, r"lr must be a real number, got '0.1'"),
    (lambda: kernels.AdagradHyper(eps=0), ValueError, r"eps must be > 0, got 0.0"),
    (lambda: kernels.AdagradHyper(lr_decay=-1), ValueError, r"lr_decay must be >= 0.0, got -1.0"),
    (lambda: kernels.AdadeltaHyper(rho=1.5), ValueError, r"rho must be in \[0.0, 1.0\], got 1.5"),
    (lambda: kernels.RMSpropHyper(alpha=float("nan")), ValueError, r"alpha must be finite, got nan"),
    (lambda: kernels.RMSpropHyper(momentum=-1), ValueError, r"momentum must be >= 0.0, got -1.0"),
    (lambda: kernels.AdamHyper(betas=0.9), TypeError, r"betas must be a pair \(beta1, beta2\), got 0.9"),
    (lambda: kernels.AdamHyper(betas=(1.0, 0.9)), ValueError, r"betas\[0\] must be in \[0.0, 1.0\), got 1.0"),
    (lambda: kernels.AdamWHyper(weight_decay=-1), ValueError, r"weight_decay must be >= 0.0, got -1.0"),
])
def test_bad_values_are_refused_when_built_naming_the_argument(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_options_are_normalised_frozen_and_comparable():
    geometry = kernels.ConvGeometry(np.int64(2), padding=[1, 0])
    assert (geometry.stride, geometry.padding, geometry.dilation, geometry.groups) == ((2, 2), (1, 0), (1, 1), 1)
    assert geometry == kernels.ConvGeometry((2, 2), (1, 0)) and hash(geometry) == hash(kernels.ConvGeometry(2, (1, 0)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        geometry.stride = (1, 1)
    assert kernels.PoolGeometry(3).stride == (3, 3) and kernels.PoolGeometry((2, 3), 1).stride == (1, 1)
    adam = kernels.AdamHyper(lr=np.float32(0.5), betas=[0.8, 0.9])
    assert adam.betas == (0.8, 0.9) and type(adam.lr) is float and not adam.decoupled
    adamw = kernels.AdamWHyper()
    assert adamw.weight_decay == 1e-2 and adamw.decoupled and isinstance(adamw, kernels.AdamHyper)
    assert dataclasses.replace(adam, lr=0.1).lr == 0.1


def test_output_sizes_with_a_clear_error():
    assert kernels.ConvGeometry(stride=2, padding=1, dilation=(1, 2)).output_hw(28, 28, (3, 3)) == (14, 13)
    assert kernels.PoolGeometry(2).output_hw(5, 4) == (2, 2)
    with pytest.raises(ValueError, match=r"conv2d over the width of the image \(W=4\) with kw=5: the output would "
                                         r"be empty: input size 4 with padding 0 is smaller than the \(dilated\) "
                                         r"kernel 5"):
        kernels.ConvGeometry().output_hw(8, 4, (3, 5), of="the image")
    with pytest.raises(ValueError, match=r"pooling over the height of the input \(H=1\) with kh=2"):
        kernels.PoolGeometry(2).output_hw(1, 4)
    assert options.output_size(28, 3, 1, 0, 1, "x") == 26 and options.pair(3, "kernel_size") == (3, 3)


def test_an_entry_point_refuses_something_that_is_not_its_options():
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(TypeError, match=r"geometry must be a kernels.ConvGeometry .*got PoolGeometry"):
        conv2d.forward(x, np.ones((1, 1, 2, 2), np.float32), None, kernels.PoolGeometry(2))
    with pytest.raises(TypeError, match=r"geometry must be a kernels.PoolGeometry .*got dict"):
        pool2d.max_forward(x, {"kernel_size": 2})
    with pytest.raises(TypeError, match=r"hyper must be a kernels.SGDHyper .*got AdamHyper"):
        optim.sgd_step(np.ones(2), np.ones(2), None, kernels.AdamHyper(), 1)


@pytest.fixture
def validators_counted(monkeypatch):
    """The validators of kernels.options' values replaced by counting ones (every pair goes through pair,
    every number through _number; output_size is a check of the arrays' shapes, which runs per call)."""
    calls = []
    for name in ("pair", "_number"):
        real = getattr(options, name)
        monkeypatch.setattr(options, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    return calls


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_options_built_once_are_not_validated_again_by_the_entry_points(validators_counted, backend):
    rng = np.random.default_rng(0)
    x, w = rng.random((2, 2, 6, 6), np.float32), rng.random((4, 2, 3, 3), np.float32)
    conv, pool = kernels.ConvGeometry(stride=1, padding=1), kernels.PoolGeometry(2)
    hypers = [kernels.SGDHyper(0.1, momentum=0.9), kernels.AdagradHyper(), kernels.AdadeltaHyper(),
              kernels.RMSpropHyper(momentum=0.5, centered=True), kernels.AdamHyper(amsgrad=True), kernels.AdamWHyper()]
    built = len(validators_counted)
    assert built > 0                                  # building them did validate
    for _ in range(2):
        y = conv2d.forward(x, w, None, conv, backend=backend)
        conv2d.backward_input(y, w, x.shape, conv, backend=backend)
        conv2d.backward_weight(y, x, w.shape, conv, backend=backend)
        pooled, argmax = pool2d.max_forward(y, pool, backend=backend)
        pool2d.max_backward(pooled, argmax, y.shape, backend=backend)
        pool2d.avg_backward(pool2d.avg_forward(y, pool, backend=backend), y.shape, pool, backend=backend)
        p, g = np.ones(5, np.float32), np.ones(5, np.float32)
        s = [np.zeros(5, np.float32) for _ in range(3)]
        optim.sgd_step(p, g, s[0], hypers[0], 1, backend=backend)
        optim.adagrad_step(p, g, s[0], hypers[1], 1, backend=backend)
        optim.adadelta_step(p, g, s[0], s[1], hypers[2], 1, backend=backend)
        optim.rmsprop_step(p, g, s[0], s[1], s[2], hypers[3], 1, backend=backend)
        optim.adam_step(p, g, s[0], s[1], s[2], hypers[4], 1, backend=backend)
        optim.adam_step(p, g, s[0], s[1], s[2], hypers[5], 2, backend=backend)
    assert len(validators_counted) == built           # ... and the entry points did not
    kernels.conv2d_forward(x, w, stride=1, padding=1, backend=backend)
    assert len(validators_counted) > built            # the keyword form builds (validates) per call


def test_the_keyword_forms_equal_the_entry_points():
    rng = np.random.default_rng(1)
    x, w = rng.random((1, 2, 7, 5)), rng.random((2, 1, 3, 2))
    geometry = kernels.ConvGeometry(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    np.testing.assert_array_equal(conv2d.forward(x, w, None, geometry),
                                  kernels.conv2d_forward(x, w, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2))
    a, b = np.full(4, 0.5), np.full(4, 0.5)
    m1, v1, m2, v2 = (np.zeros(4) for _ in range(4))
    kernels.adamw_update(a, np.ones(4), m1, v1, step=1, lr=0.1)
    optim.adam_step(b, np.ones(4), m2, v2, None, kernels.AdamWHyper(lr=0.1), 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.full(4, 0.5))
