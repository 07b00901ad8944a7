"""The reverse sweep's fused rule for conv2d_relu then max_pool2d (autodiff.primitives.fused_vjp_rules): the
same gradients as the two rules one after the other, bit for bit, and the usual way wherever something looks
at the convolution's own adjoint (a hook, a retained grad, a second consumer, a recorded sweep, a view)."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff as ad
import kernels
import nn
import nn.functional as F
from autodiff import sweep
from autodiff.ops import relu


@pytest.fixture
def spy(monkeypatch):
    """The calls of kernels.conv2d.backward_pooled (the fused rule's work), counted."""
    calls = []
    real = kernels.conv2d.backward_pooled

    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels.conv2d, "backward_pooled", counted)
    return calls


def _unfused(monkeypatch):
    monkeypatch.setattr(sweep, "fused_vjp_rules", {})


# (x shape, w shape, conv geometry, pool geometry): 2x2 windows by the one-pass path and by Winograd, odd sizes
# (a row and a column no window covers), overlapping windows and padding (the mask, then the scatter), groups
CASES = [((3, 1, 12, 12), (4, 1, 3, 3), kernels.ConvGeometry(), kernels.PoolGeometry(2)),
         ((2, 8, 9, 11), (16, 8, 3, 3), kernels.ConvGeometry(), kernels.PoolGeometry(2)),
         ((2, 3, 10, 9), (5, 3, 2, 2), kernels.ConvGeometry(padding=1), kernels.PoolGeometry(2)),
         ((2, 2, 11, 10), (4, 2, 3, 3), kernels.ConvGeometry(stride=(1, 2)), kernels.PoolGeometry(3, stride=2,
                                                                                                padding=1)),
         ((2, 4, 9, 9), (6, 2, 3, 3), kernels.ConvGeometry(groups=2), kernels.PoolGeometry(2)),
         ((2, 32, 13, 13), (64, 32, 3, 3), kernels.ConvGeometry(), kernels.PoolGeometry(2))]


def _grads(case, backend, wants_x=True, seed=0):
    xs, ws, geometry, pool = case
    rng = np.random.default_rng(seed)
    x = ad.Tensor(rng.standard_normal(xs).astype(np.float32), requires_grad=wants_x)
    w = ad.Tensor(rng.standard_normal(ws).astype(np.float32), requires_grad=True)
    b = ad.Tensor(rng.standard_normal(ws[0]).astype(np.float32), requires_grad=True)
    with kernels.use_backend(backend):
        y = F.max_pool2d(F.conv2d(x, w, b, geometry=geometry, activation="relu"), geometry=pool)
        g = rng.standard_normal(y.shape).astype(np.float32)
        (y * ad.Tensor(g)).sum().backward()
    return [t.grad for t in ((x,) if wants_x else ()) + (w, b)]


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_fused_gradients_are_the_two_rules_bit_for_bit(case, backend, spy, monkeypatch):
    for wants_x in (True, False):
        fused = _grads(CASES[case], backend, wants_x)
        assert len(spy) == 1
        spy.clear()
        with monkeypatch.context() as m:
            _unfused(m)
            plain = _grads(CASES[case], backend, wants_x)
        assert not spy
        for a, b in zip(fused, plain):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def test_keras_cnn_step_is_unchanged_by_fusion(spy, monkeypatch):
    def step():
        nn.set_seed(0)
        model = nn.models.keras_mnist_cnn()
        x = np.random.default_rng(1).random((6, 1, 28, 28), dtype=np.float32)
        loss = F.softmax_cross_entropy(model.forward(ad.Tensor(x), logits=True), np.arange(6) % 10)
        loss.backward()
        return [p.grad for p in model.parameters()]

    fused = step()
    assert len(spy) == 2                       # both convolutions are pooled
    with monkeypatch.context() as m:
        _unfused(m)
        plain = step()
    assert all(np.array_equal(a, b) for a, b in zip(fused, plain))


def _pooled_conv(seed=0):
    rng = np.random.default_rng(seed)
    x = ad.Tensor(rng.standard_normal((2, 2, 8, 8)).astype(np.float32))
    w = ad.Tensor(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), requires_grad=True)
    c = F.conv2d(x, w, geometry=kernels.ConvGeometry(), activation="relu")
    return w, c


def test_a_hook_on_the_convolution_output_sees_its_adjoint(spy):
    w, c = _pooled_conv()
    seen = []
    c.register_hook(lambda g: seen.append(np.array(g)))
    F.max_pool2d(c, 2).sum().backward()
    assert not spy and len(seen) == 1
    assert seen[0].shape == c.shape and np.count_nonzero(seen[0]) > 0


def test_a_retained_grad_is_kept(spy):
    w, c = _pooled_conv()
    c.retain_grad()
    F.max_pool2d(c, 2).sum().backward()
    assert not spy and c.grad is not None and c.grad.shape == c.shape


def test_a_second_consumer_adds_its_share(spy, monkeypatch):
    w, c = _pooled_conv()
    (F.max_pool2d(c, 2).sum() + (c * c).sum()).backward()
    assert not spy
    with monkeypatch.context() as m:
        _unfused(m)
        w2, c2 = _pooled_conv()
        (F.max_pool2d(c2, 2).sum() + (c2 * c2).sum()).backward()
    assert np.array_equal(w.grad, w2.grad)


def test_a_recorded_sweep_goes_the_usual_way(spy):
    w, c = _pooled_conv()
    F.max_pool2d(c, 2).sum().backward(create_graph=True)
    assert not spy and isinstance(w.grad, ad.Tensor)
    w2, c2 = _pooled_conv()
    F.max_pool2d(c2, 2).sum().backward()                      # the same graph, eager: fused, the same values
    assert len(spy) == 1 and np.array_equal(w.grad.value, w2.grad)


def test_relu_after_pool_is_not_fused(spy):
    rng = np.random.default_rng(0)
    x = ad.Tensor(rng.standard_normal((2, 2, 8, 8)).astype(np.float32))
    w = ad.Tensor(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), requires_grad=True)
    relu(F.max_pool2d(F.conv2d(x, w), 2)).sum().backward()      # no fused ReLU in the convolution
    assert not spy and w.grad is not None


def test_backward_pooled_refuses_shapes_that_do_not_fit():
    rng = np.random.default_rng(0)
    x, w = rng.random((2, 1, 8, 8), dtype=np.float32), rng.random((3, 1, 3, 3), dtype=np.float32)
    out = kernels.conv2d.forward(x, w, None, kernels.ConvGeometry(), relu=True)
    pooled = kernels.pool2d.max_values(out, kernels.PoolGeometry(2))
    args = (x, w, out, kernels.ConvGeometry(), kernels.PoolGeometry(2))
    with pytest.raises(ValueError, match="g must have relu_out's pooled shape"):
        kernels.conv2d.backward_pooled(pooled[:, :, :2], pooled, *args)
    with pytest.raises(ValueError, match="pooled must have"):
        kernels.conv2d.backward_pooled(pooled, pooled[:1], *args)
    with pytest.raises(ValueError, match="relu_out must have"):
        kernels.conv2d.backward_pooled(pooled, pooled, x, w, out[:, :2], *args[3:])
    with pytest.raises(TypeError, match="pool_geometry must be a kernels.PoolGeometry"):
        kernels.conv2d.backward_pooled(pooled, pooled, x, w, out, kernels.ConvGeometry(), 2)


@pytest.mark.skipif(not kernels.cuda_available(), reason="needs numba.cuda (the simulator in the test session)")
def test_backward_pooled_on_cuda_is_the_host_result():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 1, 5, 5)).astype(np.float32), rng.standard_normal((2, 1, 2, 2)).astype(np.float32)
    geometry, pool = kernels.ConvGeometry(), kernels.PoolGeometry(2)
    out = kernels.conv2d.forward(x, w, None, geometry, relu=True)
    pooled = kernels.pool2d.max_values(out, pool)
    g = rng.standard_normal(pooled.shape).astype(np.float32)
    host = kernels.conv2d.backward_pooled(g, pooled, x, w, out, geometry, pool, backend="cpu")
    device = kernels.conv2d.backward_pooled(g, pooled, x, w, out, geometry, pool, backend="cuda")
    for a, b in zip(host, device):
        assert np.allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [((3, 1, 10, 9), (4, 1, 3, 3)), ((2, 32, 13, 13), (64, 32, 3, 3))],
                         ids=["one pass", "masked scatter"])
def test_backward_pooled_is_the_composition_on_zeros_and_nans(shape):
    """Whole windows of 0 (the mask's case), a NaN (its window takes it: masked too), -0.0, odd sizes."""
    xs, ws = shape
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    geometry, pool = kernels.ConvGeometry(), kernels.PoolGeometry(2)
    out = kernels.conv2d.forward(x, w, None, geometry, relu=True).copy()
    out[:, :, :4, :4] = 0.0
    out[0, 0, 5, 5], out[-1, -1, 1, 6] = np.nan, -0.0
    pooled = kernels.pool2d.max_values(out, pool)
    g = rng.standard_normal(pooled.shape).astype(np.float32)
    g[0, 1, 0, 0] = np.nan                                     # under a window of zeros: masked to 0
    fused = kernels.conv2d.backward_pooled(g, pooled, x, w, out, geometry, pool, backend="cpu")
    dy = kernels.pool2d.max_scatter(kernels.conv2d.relu_grad(g, pooled, backend="cpu"), out, pool, backend="cpu")
    plain = kernels.conv2d.backward(dy, x, w, geometry, backend="cpu")
    for a, b in zip(fused, plain):
        assert np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))
