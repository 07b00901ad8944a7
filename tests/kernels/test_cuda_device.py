"""Device arrays and the dense, activation, dropout, loss and normalisation kernels on numba.cuda (the
simulator unless a GPU is asked for), held to the NumPy references on tiny shapes; device in, device out;
nothing copied."""
import numpy as np
import pytest

import kernels
from kernels import activations, dense, device, dropout, losses, normalization
from kernels.activations import reference as act_ref
from kernels.backend import cuda_available
from kernels.dropout import reference as dropout_ref
from kernels.losses import reference as loss_ref
from kernels.normalization import reference as norm_ref
from numba import cuda

pytestmark = pytest.mark.skipif(not cuda_available(), reason="numba.cuda is not available (no GPU, simulator off)")
RNG = np.random.default_rng(0)


def _f32(*shape, scale=1.0):
    return (RNG.normal(size=shape) * scale).astype(np.float32)


def _dev(*arrays):
    return [device.to_device(a) for a in arrays]


def _close(d, expected, tol=2e-6):
    assert isinstance(d, device.DeviceArray)
    got = d.copy_to_host()
    assert got.shape == np.shape(expected) and got.dtype == np.asarray(expected).dtype
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


def test_device_array_arithmetic_reductions_and_numpy_functions():
    a, b = _f32(2, 3, 2), _f32(2, 3, 2)
    da, db = _dev(a, b)
    _close(da + db, a + b), _close(da - db, a - b), _close(da * db, a * b), _close(da / (db + 10), a / (b + 10))
    _close(2 - da, 2 - a), _close(1 / (da + 10), 1 / (a + 10)), _close(-da, -a), _close(np.multiply(da, db), a * b)
    _close(da.sum(axis=(0, 2)), a.sum(axis=(0, 2))), _close(np.sum(da, axis=1, keepdims=True), a.sum(1, keepdims=True))
    _close(np.mean(da), np.float32(a.mean())), _close(np.reshape(da, (3, -1)), a.reshape(3, -1))
    _close(np.zeros_like(da), np.zeros_like(a)), _close(np.full_like(da, 3), np.full_like(a, 3)), _close(da.copy(), a)
    assert np.shape(da) == (2, 3, 2) and float(da.sum()) == pytest.approx(float(a.sum()), rel=1e-5)
    with pytest.raises(TypeError, match=r"lives on the CUDA device: copy it to the host explicitly"):
        np.asarray(da)
    with pytest.raises(TypeError, match="np.exp has no device implementation"):
        np.exp(da)
    with pytest.raises(ValueError, match="equal shapes"):
        da + device.zeros((3,))


@pytest.mark.parametrize("tiled", [True, False], ids=["tiled", "one thread per element"])
def test_dense_products_match_numpy_on_the_device(tiled, monkeypatch):
    from kernels.dense import cuda as dense_cuda
    monkeypatch.setattr(dense_cuda, "TILED", tiled)   # the GPU's path, and the simulator's
    x, w, b, g = _f32(5, 19), _f32(19, 7), _f32(7), _f32(5, 7)
    dx_, dw_, db_, dg_ = _dev(x, w, b, g)
    _close(dense.forward(dx_, dw_, db_), x @ w + b, 1e-5)
    _close(dense.forward(dx_, dw_), x @ w, 1e-5)
    _close(dense.backward_input(dg_, dw_), g @ w.T, 1e-5)
    dw, db = dense.backward_weight(dg_, dx_)
    _close(dw, x.T @ g, 1e-5), _close(db, g.sum(0), 1e-5)
    host = dense.forward(x, w, b, backend="cuda")                  # host in, host out
    assert isinstance(host, np.ndarray) and np.allclose(host, x @ w + b, atol=1e-5)
    with pytest.raises(ValueError, match="x has 19 columns but w has 3 rows"):
        dense.forward(dx_, device.zeros((3, 2)))


@pytest.mark.parametrize("name, alpha", [("relu", 0.0), ("tanh", 0.0), ("sigmoid", 0.0), ("elu", 1.0),
                                         ("leaky_relu", 0.01), ("swish", 1.0)])
def test_activations_and_their_derivatives_match_the_reference(name, alpha):
    x, g = _f32(3, 5, scale=3), _f32(3, 5)
    x[0, 0] = 0.0
    dx_, dg_ = _dev(x, g)
    y = activations.activation_forward(dx_, name, alpha)
    _close(y, act_ref.activation_forward(x, name, alpha), 1e-5)
    expected = act_ref.activation_backward(g, x, act_ref.activation_forward(x, name, alpha), name, alpha)
    _close(activations.activation_backward(dg_, dx_, y, name, alpha), expected, 1e-5)


def test_the_reference_derivatives_are_the_finite_differences():
    x = np.linspace(-2, 2, 9)[np.abs(np.linspace(-2, 2, 9)) > 0.1]
    for name, alpha in [("tanh", 0), ("sigmoid", 0), ("elu", 0.7), ("leaky_relu", 0.1), ("swish", 1.3)]:
        h = 1e-6
        fd = (act_ref.activation_forward(x + h, name, alpha) - act_ref.activation_forward(x - h, name, alpha)) / (2 * h)
        d = act_ref.activation_backward(np.ones_like(x), x, act_ref.activation_forward(x, name, alpha), name, alpha)
        np.testing.assert_allclose(d, fd, rtol=1e-5, atol=1e-7)


def test_dropout_masks_are_the_same_on_the_device_and_keep_about_one_minus_rate():
    mask = dropout.dropout_mask((4, 50), 0.3, seed=12345, dtype=np.float32, device=True)
    host = dropout.dropout_mask((4, 50), 0.3, seed=12345, dtype=np.float32, backend="numpy")
    _close(mask, host)
    big = dropout_ref.dropout_mask((100_000,), 0.3, 7, np.float32)
    assert set(np.unique(big)) == {0.0, np.float32(1 / 0.7)} and abs((big > 0).mean() - 0.7) < 0.01
    assert not np.array_equal(big, dropout_ref.dropout_mask((100_000,), 0.3, 8, np.float32))


def test_softmax_and_the_fused_cross_entropy_match_the_reference():
    z, g = _f32(4, 3, scale=3), _f32(4, 3)
    labels = np.array([0, 2, 1, 2])
    dist = RNG.dirichlet(np.ones(3), 4).astype(np.float32)
    dz_, dg_ = _dev(z, g)
    y = activations.softmax(dz_)
    _close(y, act_ref.softmax(z), 1e-6)
    _close(activations.softmax_backward(dg_, y), act_ref.softmax_backward(g, act_ref.softmax(z)), 1e-6)
    for t in (labels, dist):
        dt = device.to_device(t)
        _close(losses.softmax_cross_entropy(dz_, dt), loss_ref.softmax_cross_entropy(z, t), 1e-6)
        seed = np.ones((), np.float32) * 2
        _close(losses.softmax_cross_entropy_backward(seed, dz_, dt), loss_ref.softmax_cross_entropy_backward(2, z, t))
        _close(losses.softmax_cross_entropy_backward(device.to_device(seed), dz_, dt),
               loss_ref.softmax_cross_entropy_backward(2, z, t))
        assert losses.correct(dz_, dt).item() == loss_ref.correct(z, t)
    assert loss_ref.correct(z, labels) == np.sum(z.argmax(1) == labels)
    with pytest.raises(ValueError, match=r"labels must be in 0..2, got values from 0 to 3"):
        losses.softmax_cross_entropy(dz_, np.array([0, 3, 1, 2]))
    assert np.isnan(losses.softmax_cross_entropy(dz_, device.to_device(np.array([0, 3, 1, 2]))).item())


@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 3, 2)], ids=["dense", "conv"])
def test_prelu_and_maxout_match_the_reference_and_nn_host_graph(shape):
    import autodiff as ad
    import nn
    x, g = _f32(*shape, scale=2), _f32(*shape)
    x[0, 0], x[1, 1] = 0.0, np.float32(np.nan)                     # PReLU's kink, and a NaN that stays NaN
    alpha = np.array([0.25, -0.5, 2.0, 0.0], np.float32)
    dx_, dg_, da_ = _dev(x, g, alpha)
    _close(activations.prelu_forward(dx_, da_), act_ref.prelu_forward(x, alpha))
    dx, dalpha = activations.prelu_backward(dg_, dx_, da_)
    expected = act_ref.prelu_backward(g, x, alpha)
    _close(dx, expected[0]), _close(dalpha, expected[1], 1e-5)
    finite = np.nan_to_num(x)
    xt, at = ad.Tensor(finite, requires_grad=True), ad.Tensor(alpha, requires_grad=True)
    ad.sum(nn.functional.prelu(xt, at) * g).backward()            # the host graph: where(H(x), x, alpha x)
    ref_dx, ref_dalpha = act_ref.prelu_backward(g, finite, alpha)
    np.testing.assert_allclose(ref_dx, xt.grad, rtol=1e-6), np.testing.assert_allclose(ref_dalpha, at.grad, rtol=1e-5)
    ties = np.round(x[:, :4] * 2) / 2                              # equal values in some groups: shared gradient
    ties[0, :2] = 1.5
    gy = _f32(*((shape[0], 2) + shape[2:]))
    dt_, dgy_ = _dev(np.nan_to_num(ties), gy)
    _close(activations.maxout_forward(dt_, 2), act_ref.maxout_forward(np.nan_to_num(ties), 2))
    _close(activations.maxout_backward(dgy_, dt_, 2), act_ref.maxout_backward(gy, np.nan_to_num(ties), 2))
    tt = ad.Tensor(np.nan_to_num(ties), requires_grad=True)
    ad.sum(nn.functional.maxout(tt, 2) * gy).backward()            # the host graph: autodiff's max, ties split
    np.testing.assert_allclose(act_ref.maxout_backward(gy, np.nan_to_num(ties), 2), tt.grad, rtol=1e-6)
    with pytest.raises(ValueError, match=r"pieces must be an int >= 1 dividing the 4 channels, got 3"):
        activations.maxout_forward(dt_, 3)
    with pytest.raises(ValueError, match=r"alpha must have one slope per channel \(4,\), got \(3,\)"):
        activations.prelu_forward(dx_, alpha[:3])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_forward_backward_and_running_statistics_match_the_reference(training):
    x, g, gamma, beta = _f32(3, 2, 2, 3, scale=2), _f32(3, 2, 2, 3), _f32(2), _f32(2)
    rm, rv = np.array([0.5, -1.0], np.float32), np.array([2.0, 0.5], np.float32)
    d_rm, d_rv = _dev(rm, rv)
    y = normalization.batch_norm_forward(*_dev(x, gamma, beta), d_rm, d_rv, training, 0.1, 1e-5)
    expected = norm_ref.batch_norm_forward(x, gamma, beta, rm, rv, training, 0.1, 1e-5)    # updates rm, rv
    _close(y, expected, 1e-5), _close(d_rm, rm, 1e-6), _close(d_rv, rv, 1e-6)
    got = normalization.batch_norm_backward(*_dev(g, x, gamma), d_rm, d_rv, training, 1e-5)
    for d, e in zip(got, norm_ref.batch_norm_backward(g, x, gamma, rm, rv, training, 1e-5)):
        _close(d, e, 1e-5)


def test_the_batch_norm_reference_gradient_is_the_finite_difference():
    x, g, gamma, beta = (RNG.normal(size=s) for s in [(2, 2, 2, 2), (2, 2, 2, 2), (2,), (2,)])
    stats = np.zeros(2), np.ones(2)

    def loss(x_, gamma_):
        return float((g * norm_ref.batch_norm_forward(x_, gamma_, beta, *map(np.copy, stats), True, 0.1, 1e-5)).sum())

    dx, dgamma, dbeta = norm_ref.batch_norm_backward(g, x, gamma, *stats, True, 1e-5)
    h, k = 1e-6, (1, 0, 1, 0)
    xp, xm = x.copy(), x.copy()
    xp[k] += h
    xm[k] -= h
    assert dx[k] == pytest.approx((loss(xp, gamma) - loss(xm, gamma)) / (2 * h), rel=1e-5)
    assert dgamma[1] == pytest.approx((loss(x, gamma + [0, h]) - loss(x, gamma - [0, h])) / (2 * h), rel=1e-5)
    assert np.allclose(dbeta, g.sum(axis=(0, 2, 3)))


def test_conv_without_bias_and_the_optimisers_keep_device_arrays_on_the_device_in_a_cpu_context():
    x, w = _f32(1, 2, 4, 4), _f32(3, 2, 3, 3)
    with kernels.use_backend("cpu"):                       # the data decides, not the context
        y = kernels.conv2d.forward(*_dev(x, w), None, kernels.ConvGeometry())
        p, gr, m, v = _dev(_f32(5), _f32(5), np.zeros(5, np.float32), np.zeros(5, np.float32))
        kernels.optim.adam_step(p, gr, m, v, None, kernels.AdamHyper(lr=0.1), 1)
    _close(y, kernels.conv2d.forward(x, w, None, kernels.ConvGeometry(), backend="numpy"), 1e-5)
    assert isinstance(p, device.DeviceArray) and isinstance(m, device.DeviceArray)


#: Shapes none of whose sizes is a multiple of a tile's: (geometry, x's shape, w's shape).
AWKWARD_CONVOLUTIONS = [(kernels.ConvGeometry(stride=(2, 1), padding=(1, 2), dilation=(1, 2)), (1, 3, 5, 4), (3, 3, 3, 2)),
                        (kernels.ConvGeometry(stride=2, padding=1, dilation=2), (1, 1, 6, 5), (5, 1, 3, 3))]


@pytest.mark.parametrize("variant, shapes, dtype, cases", [("simple", None, np.float32, [1]),
                                                           ("simple", None, np.float64, [0]),
                                                           ("blocked", None, np.float32, [0, 1]),
                                                           ("blocked", None, np.float64, [0, 1]),
                                                           ("blocked", 1, np.float32, [0]), ("blocked", 2, np.float64, [1])])
def test_the_tiled_convolution_matches_the_reference_in_all_three_directions(variant, shapes, dtype, cases, monkeypatch):
    from kernels.conv2d import cuda as conv_cuda, tiles
    monkeypatch.setattr(conv_cuda, "TILED", True)          # the GPU's path (the simulator uses the gather kernels)
    monkeypatch.setattr(tiles, "VARIANT", variant)
    if shapes is not None:                                 # one block shape forced (else: picked per product)
        monkeypatch.setattr(tiles, "SHAPES", tiles.SHAPES[shapes:shapes + 1])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for geometry, x_shape, w_shape in (AWKWARD_CONVOLUTIONS[case] for case in cases):
        x, w, b = _f32(*x_shape).astype(dtype), _f32(*w_shape).astype(dtype), _f32(w_shape[0]).astype(dtype)
        y_ref = kernels.conv2d.forward(x, w, b, geometry, relu=True, backend="numpy")
        g = _f32(*y_ref.shape).astype(dtype)
        xd, wd, bd, gd = _dev(x, w, b, g)
        _close(kernels.conv2d.forward(xd, wd, bd, geometry, relu=True), y_ref, tol)
        _close(kernels.conv2d.backward_input(gd, wd, x.shape, geometry),
               kernels.conv2d.backward_input(g, w, x.shape, geometry, backend="numpy"), tol)
        dw, db = kernels.conv2d.backward_weight(gd, xd, w.shape, geometry)
        dw_ref, db_ref = kernels.conv2d.backward_weight(g, x, w.shape, geometry, backend="numpy")
        _close(dw, dw_ref, tol), _close(db, db_ref, tol)


@pytest.mark.parametrize("variant", ["simple", "blocked"])
def test_backward_weight_split_along_the_batch_adds_its_pieces_in_order(variant, monkeypatch):
    from kernels.conv2d import tiles
    monkeypatch.setattr(tiles, "VARIANT", variant)
    geometry = kernels.ConvGeometry(stride=2, padding=1, dilation=(2, 1))
    x, w = _f32(2, 2, 7, 6), _f32(3, 2, 2, 3)
    g = _f32(2, 3, 4, 3)                              # N Ho Wo = 24: 6 steps of 4 (TILE and BK in the simulator)
    expected, _ = kernels.conv2d.backward_weight(g, x, w.shape, geometry, backend="numpy")
    for pieces in (1, 4, 10):                         # 4: 2 + 2 + 2 + 0 steps; 10: the spare pieces add 0
        dw = cuda.device_array(w.shape, np.float32)
        tiles.backward_weight(cuda.to_device(g), cuda.to_device(x), geometry, dw, pieces=pieces)
        np.testing.assert_allclose(dw.copy_to_host(), expected, rtol=1e-5, atol=1e-5)
    assert tiles.splits(blocks=2, inner_tiles=43_264) == 256 and tiles.splits(blocks=600, inner_tiles=10_000) == 1
    assert tiles.splits(blocks=2, inner_tiles=20) == 2                    # at least MIN_TILES tiles a piece


def test_a_long_sum_is_cut_into_pieces_and_added_in_order(monkeypatch):
    monkeypatch.setattr(device, "LONG_SUM", 10)
    monkeypatch.setattr(device, "PIECE", 7)
    a = _f32(3, 2, 4, 5)
    da = device.to_device(a)
    _close(da.sum(axis=(0, 2, 3)), a.sum(axis=(0, 2, 3)), 1e-5)        # 60 terms an output: 9 pieces of 7
    _close(da.sum(axis=0), a.sum(axis=0), 1e-5)                         # 3 terms: one pass
    _close(da.sum(), np.float32(a.sum()), 1e-5)
