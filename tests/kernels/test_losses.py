"""The losses of nn's device path (kernels.losses): the NumPy reference held to nn's host graph (the same
formulas built from autodiff's primitives) and to finite differences, the CUDA kernels (the simulator
unless a GPU is asked for) to the reference, with and without row weights; bad input refused by name."""
import numpy as np
import pytest

import autodiff as ad
import nn
from kernels import losses
from kernels.backend import cuda_available
from kernels.losses import reference as ref

RNG = np.random.default_rng(3)
N, K = 5, 3
LABELS = np.array([0, 2, 1, 2, 0])
DIST = RNG.dirichlet(np.ones(K), N)
WEIGHTS = np.array([1.0, 0.0, 2.5, 0.5, 1.0])

cuda_only = pytest.mark.skipif(not cuda_available(), reason="numba.cuda is not available (no GPU, simulator off)")


def _probabilities(dtype=np.float64):
    p = RNG.dirichlet(np.ones(K), N)
    p[0] = [1.0, 0.0, 0.0]            # a saturated row: the clip's ties at 1 and below eps
    p[3, 1] = 1e-7                    # exactly eps: a tie at the lower end
    return p.astype(dtype)


def _host_graph(name, x, t, w):
    """(loss, gradient) of nn.functional's host version, built from autodiff's primitives."""
    xt = ad.Tensor(x, requires_grad=True)
    fn = {"softmax_cross_entropy": nn.functional.softmax_cross_entropy, "cross_entropy": nn.functional.cross_entropy,
          "mse": nn.functional.mse}[name]
    loss = fn(xt, t, sample_weight=w)
    loss.backward()
    return float(loss.value), xt.grad


CASES = [("softmax_cross_entropy", lambda: RNG.normal(size=(N, K)) * 3, LABELS),
         ("softmax_cross_entropy", lambda: RNG.normal(size=(N, K)) * 3, DIST),
         ("cross_entropy", _probabilities, LABELS),
         ("cross_entropy", _probabilities, DIST),
         ("mse", lambda: RNG.normal(size=(N, 2, 2)), RNG.normal(size=(N, 2, 2)))]


@pytest.mark.parametrize("weights", [None, WEIGHTS], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name, make, targets", CASES, ids=["sce-labels", "sce-dist", "ce-labels", "ce-dist", "mse"])
def test_the_reference_is_nn_host_graph(name, make, targets, weights):
    x = make()
    value, grad = _host_graph(name, x, targets, weights)
    forward, backward = getattr(ref, name), getattr(ref, name + "_backward")
    extra = (1e-7,) if name == "cross_entropy" else ()
    w = None if weights is None else weights
    assert float(forward(x, targets, *extra, w)) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(backward(np.float64(1.0), x, targets, *extra, w), grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name, make, targets", CASES[::2], ids=["sce", "ce", "mse"])
def test_the_reference_gradient_is_the_finite_difference(name, make, targets):
    x = np.clip(make(), 0.05, None) if name == "cross_entropy" else make()      # away from the clip's kinks
    x = x / x.sum(axis=1, keepdims=True) if name == "cross_entropy" else x
    extra = (1e-7,) if name == "cross_entropy" else ()
    forward = getattr(ref, name)
    g = getattr(ref, name + "_backward")(np.float64(1.0), x, targets, *extra, WEIGHTS)
    h, numeric = 1e-6, np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        difference = float(forward(up, targets, *extra, WEIGHTS)) - float(forward(down, targets, *extra, WEIGHTS))
        numeric[index] = difference / (2 * h)
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


def test_the_weight_penalty_reference_is_the_regularizers_host_graph():
    w = RNG.normal(size=(3, 4))
    w[0, 0] = 0.0
    p = ad.Tensor(w, requires_grad=True)
    total = nn.regularizers.elastic_net_penalty([p], l1=0.3, l2=0.2)
    total.backward()
    assert float(ref.weight_penalty(w, 0.3, 0.2)) == pytest.approx(float(total.value), rel=1e-12)
    np.testing.assert_allclose(ref.weight_penalty_backward(np.float64(1.0), w, 0.3, 0.2), p.grad, rtol=1e-12)


@cuda_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weights", [None, WEIGHTS], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name, make, targets", CASES, ids=["sce-labels", "sce-dist", "ce-labels", "ce-dist", "mse"])
def test_the_cuda_kernels_match_the_reference(name, make, targets, weights, dtype):
    from kernels import device
    x = make().astype(dtype)
    t = targets.astype(dtype) if targets.dtype.kind == "f" else targets.astype(np.int64)
    w = None if weights is None else weights.astype(dtype)
    extra = {"eps": 1e-7} if name == "cross_entropy" else {}
    tol = 2e-6 if dtype == np.float32 else 1e-12
    d = [device.to_device(a) for a in (x, t)] + [None if w is None else device.to_device(w)]
    value = getattr(losses, name)(d[0], d[1], weights=d[2], **extra)
    assert isinstance(value, device.DeviceArray) and value.shape == ()
    expected = getattr(ref, name)(x, t, *extra.values(), w)
    np.testing.assert_allclose(value.copy_to_host(), expected, rtol=tol)
    seed = device.to_device(np.asarray(2.0, dtype))                     # the cotangent on the device: read there
    for g in (seed, 2.0):
        grad = getattr(losses, name + "_backward")(g, d[0], d[1], weights=d[2], **extra)
        assert grad.dtype == dtype and grad.shape == x.shape
        np.testing.assert_allclose(grad.copy_to_host(), getattr(ref, name + "_backward")(2.0, x, t, *extra.values(), w),
                                   rtol=tol, atol=tol)


@cuda_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_cuda_weight_penalty_matches_the_reference(dtype):
    from kernels import device
    w = RNG.normal(size=(7, 5)).astype(dtype)
    w[1, 1], w[2, 2] = 0.0, np.nan
    tol = 2e-6 if dtype == np.float32 else 1e-12
    finite = w.copy()
    finite[2, 2] = 1.0
    value = losses.weight_penalty(device.to_device(finite), l1=0.3, l2=0.2)
    np.testing.assert_allclose(value.copy_to_host(), ref.weight_penalty(finite, 0.3, 0.2), rtol=tol)
    grad = losses.weight_penalty_backward(device.to_device(np.asarray(2.0, dtype)), device.to_device(w), l1=0.3, l2=0.0)
    np.testing.assert_allclose(grad.copy_to_host(), ref.weight_penalty_backward(2.0, w, 0.3, 0.0), rtol=tol)
    assert np.isnan(grad.copy_to_host()[2, 2]) and grad.copy_to_host()[1, 1] == 0


def test_bad_input_is_refused_by_name():
    x = RNG.normal(size=(N, K))
    with pytest.raises(ValueError, match=r"target must have the prediction's shape \(5, 3\) \(no broadcasting\), "
                                         r"got \(5,\)"):
        losses.mse(x, x[:, 0].copy(), backend="numpy")
    with pytest.raises(ValueError, match=r"weights must have shape \(5,\) \(one per row\), got \(4,\)"):
        losses.mse(x, x, weights=np.ones(4), backend="numpy")
    with pytest.raises(TypeError, match="weights must have dtype float64 .like the input., got float32"):
        losses.cross_entropy(np.full((N, K), 1 / K), LABELS, weights=np.ones(N, np.float32), backend="numpy")
    with pytest.raises(ValueError, match=r"eps must be a number in \(0, 1\), got 0"):
        losses.cross_entropy(np.full((N, K), 1 / K), LABELS, eps=0, backend="numpy")
    with pytest.raises(ValueError, match="l1 must be a finite number >= 0, got -1"):
        losses.weight_penalty(x, l1=-1, backend="numpy")
    with pytest.raises(ValueError, match=r"g must be the loss's cotangent, one number, got shape \(2,\)"):
        losses.mse_backward(np.ones(2), x, x, backend="numpy")
