"""2-D max and average pooling: the NumPy reference against independent oracles (direct loops, one-hot
Jacobians, the adjoint identity, finite differences, hand-worked values), then the Numba CPU and CUDA
(simulator) versions against the reference."""
import importlib
import itertools

import numpy as np
import pytest

import kernels
from kernels.pool2d import (avg_pool2d_backward, avg_pool2d_forward, max_pool2d, max_pool2d_backward,
                            max_pool2d_forward, reference)

needs_cuda = pytest.mark.skipif(not kernels.cuda_available(),
                                reason="numba.cuda unavailable (no GPU and NUMBA_ENABLE_CUDASIM is off)")
BACKENDS = ["numpy", "cpu", pytest.param("cuda", marks=needs_cuda)]


def rand(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def geometry(kernel, stride, padding):
    """The kernels.PoolGeometry the backend functions take."""
    return kernels.PoolGeometry(kernel, stride, padding)


def as_pairs(kernel, stride, padding):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    kernel = pair(kernel)
    return kernel, kernel if stride is None else pair(stride), pair(padding)


# --- oracles written out element by element (independent of reference.py's slicing) --------------

def loops_max_pool(x, kernel, stride, padding):
    """Scalar loops: for each window, the first strictly-largest real element and its flat index."""
    (kh, kw), (sh, sw), (ph, pw) = as_pairs(kernel, stride, padding)
    n_, c_, h_, w_ = x.shape
    ho, wo = (h_ + 2 * ph - kh) // sh + 1, (w_ + 2 * pw - kw) // sw + 1
    y = np.empty((n_, c_, ho, wo), x.dtype)
    arg = np.empty((n_, c_, ho, wo), np.int64)
    for n, c, i, j in itertools.product(range(n_), range(c_), range(ho), range(wo)):
        cells = [(r, s) for r in range(i * sh - ph, i * sh - ph + kh) for s in range(j * sw - pw, j * sw - pw + kw)
                 if 0 <= r < h_ and 0 <= s < w_]
        values = [x[n, c, r, s] for r, s in cells]
        k = values.index(max(values))  # list.index: the first of equal maxima
        y[n, c, i, j], arg[n, c, i, j] = values[k], cells[k][0] * w_ + cells[k][1]
    return y, arg


def loops_avg_pool(x, kernel, stride, padding):
    """Scalar loops: sum of the window's real elements / (kh * kw), in float64."""
    (kh, kw), (sh, sw), (ph, pw) = as_pairs(kernel, stride, padding)
    n_, c_, h_, w_ = x.shape
    ho, wo = (h_ + 2 * ph - kh) // sh + 1, (w_ + 2 * pw - kw) // sw + 1
    y = np.zeros((n_, c_, ho, wo))
    for n, c, i, j in itertools.product(range(n_), range(c_), range(ho), range(wo)):
        for r, s in itertools.product(range(i * sh - ph, i * sh - ph + kh), range(j * sw - pw, j * sw - pw + kw)):
            if 0 <= r < h_ and 0 <= s < w_:
                y[n, c, i, j] += x[n, c, r, s]
    return y / (kh * kw)


# (N, C, H, W), kernel, stride, padding
GEOMETRIES = {
    "batch1-channel1": ((1, 1, 5, 5), 2, None, 0),
    "odd-sizes": ((2, 3, 7, 9), 2, None, 0),
    "overlap": ((2, 2, 8, 8), 3, 1, 0),
    "stride>kernel": ((2, 2, 9, 9), 2, 3, 0),
    "padding": ((2, 2, 7, 7), 3, 2, 1),
    "kernel=input": ((2, 3, 5, 5), 5, None, 0),
    "non-square": ((2, 2, 8, 9), (2, 3), (1, 2), (1, 1)),
}
SMALL = ["odd-sizes", "overlap", "padding", "non-square"]  # for the slow Python-loop oracles


# --- the reference, against independent oracles -------------------------------------------------

@pytest.mark.parametrize("case", SMALL)
def test_reference_forward_equals_direct_loops(case):
    shape, k, s, p = GEOMETRIES[case]
    x = rand(shape)
    y, arg = reference.max_forward(x, geometry(k, s, p))
    y_loops, arg_loops = loops_max_pool(x, k, s, p)
    np.testing.assert_array_equal(y, y_loops)
    np.testing.assert_array_equal(arg, arg_loops)
    np.testing.assert_allclose(reference.avg_forward(x, geometry(k, s, p)), loops_avg_pool(x, k, s, p), rtol=1e-13)


def test_hand_worked_values_with_padding():
    """x = 0..15 on 4x4, 3x3 windows, stride 2, padding 1: windows centred on (0,0), (0,2), (2,0), (2,2)."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, arg = max_pool2d_forward(x, 3, stride=2, padding=1, backend="numpy")
    np.testing.assert_array_equal(y[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(arg[0, 0], [[5, 7], [13, 15]])
    # the top-left window holds 0, 1, 4, 5 and five padded zeros, all divided by 9
    np.testing.assert_allclose(avg_pool2d_forward(x, 3, stride=2, padding=1, backend="numpy")[0, 0],
                               [[10 / 9, (1 + 2 + 3 + 5 + 6 + 7) / 9], [(4 + 5 + 8 + 9 + 12 + 13) / 9,
                                                                       (5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15) / 9]])


@pytest.mark.parametrize("case", SMALL)
def test_reference_max_backward_is_a_sum_of_one_hots(case):
    """dx = sum over outputs of g[o] * e_{argmax[o]}: the Jacobian of max pooling has one 1 per row."""
    shape, k, s, p = GEOMETRIES[case]
    x = rand(shape)
    _, arg = loops_max_pool(x, k, s, p)
    g = rand(arg.shape, seed=1)
    expected = np.zeros(shape)
    for n, c, i, j in np.ndindex(*arg.shape):
        one_hot = np.zeros(shape[2] * shape[3])
        one_hot[arg[n, c, i, j]] = 1.0
        expected[n, c] += g[n, c, i, j] * one_hot.reshape(shape[2:])
    np.testing.assert_allclose(reference.max_backward(g, arg, shape), expected, rtol=1e-14)


@pytest.mark.parametrize("case", list(GEOMETRIES))
def test_reference_avg_backward_is_the_adjoint_of_avg_forward(case):
    """<avg(x), g> == <x, avg_backward(g)>: the backward is the transpose of the (linear) forward."""
    shape, k, s, p = GEOMETRIES[case]
    x = rand(shape)
    y = reference.avg_forward(x, geometry(k, s, p))
    g = rand(y.shape, seed=1)
    dx = reference.avg_backward(g, shape, geometry(k, s, p))
    assert np.vdot(y, g) == pytest.approx(np.vdot(x, dx), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", SMALL)
def test_reference_max_backward_equals_finite_differences(case):
    """Central differences of f(x) = sum(g * maxpool(x)); distinct values 0.1 apart, so no ties and
    a step of 1e-3 never changes which element wins: f is linear there and the difference is exact."""
    shape, k, s, p = GEOMETRIES[case]
    x = np.random.default_rng(2).permutation(np.prod(shape)).reshape(shape) * 0.1
    window = geometry(k, s, p)
    y, arg = reference.max_forward(x, window)
    g = rand(y.shape, seed=3)
    f = lambda z: np.sum(g * reference.max_forward(z, window)[0])
    numeric = np.zeros(shape)
    eps = 1e-3
    for idx in np.ndindex(*shape):
        e = np.zeros(shape)
        e[idx] = eps
        numeric[idx] = (f(x + e) - f(x - e)) / (2 * eps)
    np.testing.assert_allclose(reference.max_backward(g, arg, shape), numeric, rtol=1e-9, atol=1e-9)


# --- conventions every backend follows ----------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_send_the_whole_gradient_to_the_first_maximum_in_row_major_order(backend):
    x = np.array([[[[2, 2, 0, 7],
                    [2, 2, 7, 7]]]], dtype=np.float32)
    y, arg = max_pool2d_forward(x, 2, backend=backend)
    np.testing.assert_array_equal(arg, [[[[0, 3]]]])
    dx = max_pool2d_backward(np.array([[[[1.5, 2.5]]]], dtype=np.float32), arg, x.shape, backend=backend)
    np.testing.assert_array_equal(dx, [[[[1.5, 0, 0, 2.5], [0, 0, 0, 0]]]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_padding_never_wins_and_nan_propagates(backend):
    x = np.full((1, 1, 3, 3), -np.inf)
    x[0, 0, 2, 0] = np.nan
    y, arg = max_pool2d_forward(x, 3, stride=1, padding=1, backend=backend)
    # windows without the NaN hold only -inf: the first real element of the window is chosen
    np.testing.assert_array_equal(arg[0, 0], [[0, 0, 1], [6, 6, 1], [6, 6, 4]])
    np.testing.assert_array_equal(y[0, 0], [[-np.inf, -np.inf, -np.inf], [np.nan, np.nan, -np.inf],
                                            [np.nan, np.nan, -np.inf]])


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2)])      # (2, 2): the CPU's unrolled fast path
def test_nans_and_ties_everywhere_in_a_window_match_the_reference(kernel, stride):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (3, 2, 7, 8)).astype(np.float32)         # many ties
    x[rng.random(x.shape) < 0.1] = np.nan                           # NaNs in every position of a window
    y_ref, arg_ref = reference.max_forward(x, geometry(kernel, stride, 0))
    y, arg = max_pool2d_forward(x, kernel, stride=stride, backend="cpu")
    np.testing.assert_array_equal(arg, arg_ref)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(max_pool2d(x, kernel, stride=stride, backend="cpu"), y_ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool2d_gives_the_first_nan_of_a_window_bit_for_bit(backend):
    """Two NaNs of different payloads in one window, in each order: y (alone, or with its argmax) is the
    first in row-major order, its bits unchanged; the other windows hold no NaN and are plain maxima."""
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    quiet = np.array([0x7FC00001, 0xFFC00002], dtype=np.uint32).view(np.float32)   # +NaN, -NaN
    x[0, 0, 0, 1], x[0, 0, 1, 0] = quiet
    x[0, 1, 2, 2], x[0, 1, 3, 3] = quiet[::-1]
    expected = reference.max_forward(x, geometry(2, 2, 0))[0]
    assert expected.view(np.uint32)[0, 0, 0, 0] == 0x7FC00001 and expected.view(np.uint32)[0, 1, 1, 1] == 0xFFC00002
    y = max_pool2d(x, 2, backend=backend)
    assert y.dtype == np.float32 and y.view(np.uint32).tobytes() == expected.view(np.uint32).tobytes()
    assert max_pool2d_forward(x, 2, backend=backend)[0].tobytes() == expected.tobytes()


# --- the Numba CPU version against the reference -----------------------------------------------

def run_all(backend, x, k, s, p, seed=1):
    """All four functions on one case; the gradients g are fixed random arrays."""
    y, arg = max_pool2d_forward(x, k, stride=s, padding=p, backend=backend)
    assert max_pool2d(x, k, stride=s, padding=p, backend=backend).tobytes() == y.tobytes()   # y alone, same bits
    g = rand(y.shape, x.dtype, seed)
    dx_max = max_pool2d_backward(g, arg, x.shape, backend=backend)
    avg = avg_pool2d_forward(x, k, stride=s, padding=p, backend=backend)
    dx_avg = avg_pool2d_backward(g, x.shape, k, stride=s, padding=p, backend=backend)
    return y, arg, dx_max, avg, dx_avg


def assert_matches_reference(result, expected, dtype):
    y, arg, dx_max, avg, dx_avg = result
    y_ref, arg_ref, dx_max_ref, avg_ref, dx_avg_ref = expected
    for got in result:
        assert got.dtype == (np.int64 if got is arg else dtype)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    np.testing.assert_array_equal(dx_max, dx_max_ref)  # same additions, same order
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(avg, avg_ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dx_avg, dx_avg_ref, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(GEOMETRIES) + ["non-contiguous"])
def test_cpu_matches_reference(case, dtype):
    if case == "non-contiguous":  # every other column of a wider array, then NHWC -> NCHW
        x = rand((2, 7, 12, 3), dtype)[:, :, ::2, :].transpose(0, 3, 1, 2)
        assert not x.flags.c_contiguous
        k, s, p = 3, 2, 1
    else:
        shape, k, s, p = GEOMETRIES[case]
        x = rand(shape, dtype)
    assert_matches_reference(run_all("cpu", x, k, s, p), run_all("numpy", x, k, s, p), dtype)


def test_cpu_is_deterministic():
    """Overlapping windows: the backward scatters add several g into one element; twice, same bits."""
    x = rand((4, 8, 17, 17), np.float32)
    first = run_all("cpu", x, 3, 1, 1)
    second = run_all("cpu", x, 3, 1, 1)
    for a, b in zip(first, second):
        assert a.tobytes() == b.tobytes()


# --- the CUDA version (simulator without a GPU: tiny shapes) --------------------------------------

CUDA_CASES = [((2, 2, 6, 6), 2, None, 0, np.float32),
              ((1, 2, 5, 6), 3, (1, 2), 1, np.float64),       # overlap in H, padding
              ((2, 1, 5, 5), (2, 3), (2, 1), (1, 1), np.float32)]  # non-square, overlap in W


@needs_cuda
@pytest.mark.parametrize("shape, k, s, p, dtype", CUDA_CASES)
def test_cuda_matches_reference(shape, k, s, p, dtype):
    x = rand(shape, dtype)
    assert_matches_reference(run_all("cuda", x, k, s, p), run_all("numpy", x, k, s, p), dtype)


@needs_cuda
def test_cuda_device_arrays_stay_on_the_device():
    from numba import cuda
    x = rand((1, 2, 4, 4), np.float32)
    y, arg = max_pool2d_forward(cuda.to_device(x), 2, backend="cuda")
    assert not isinstance(y, np.ndarray) and not isinstance(arg, np.ndarray)
    y_ref, arg_ref = reference.max_forward(x, geometry(2, 2, 0))
    np.testing.assert_array_equal(y.copy_to_host(), y_ref)
    np.testing.assert_array_equal(arg.copy_to_host(), arg_ref)
    dx = max_pool2d_backward(y, arg, x.shape, backend="cuda")  # device g, device argmax
    assert not isinstance(dx, np.ndarray)
    np.testing.assert_array_equal(dx.copy_to_host(), reference.max_backward(y_ref, arg_ref, x.shape))
    avg = avg_pool2d_forward(cuda.to_device(x), 2, backend="cuda")
    dx_avg = avg_pool2d_backward(avg, x.shape, 2, backend="cuda")
    assert not isinstance(avg, np.ndarray) and not isinstance(dx_avg, np.ndarray)
    avg_ref = reference.avg_forward(x, geometry(2, 2, 0))
    np.testing.assert_allclose(dx_avg.copy_to_host(), reference.avg_backward(avg_ref, x.shape, geometry(2, 2, 0)),
                               rtol=1e-6)
    with pytest.raises(TypeError, match=r"x is a CUDA device array, but backend 'cpu'"):
        max_pool2d_forward(cuda.to_device(x), 2, backend="cpu")


# --- max_scatter: the backward from x, without the argmax array --------------------------------------

SCATTER_CASES = list(GEOMETRIES) + ["conv1-pool", "wide"]
SCATTER_SHAPES = {"conv1-pool": ((3, 5, 26, 26), 2, None, 0), "wide": ((2, 2, 6, 41), 2, None, 0), **GEOMETRIES}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case, backend", [(case, backend) for case in SCATTER_CASES for backend in ("numpy", "cpu")]
                         + [pytest.param(case, "cuda", marks=needs_cuda) for case in GEOMETRIES])
def test_max_scatter_is_max_backward_of_the_argmax_found_in_x_bit_for_bit(case, dtype, backend):
    """Every geometry (the 2x2 stride-2 ones take the CPU's vector path: odd sizes, rows longer than a
    vector), ties, NaNs (the first one in a window wins) and g = -0.0 (0 + g, as max_backward adds). The
    simulator (cuda) takes the small shapes only."""
    shape, k, s, p = SCATTER_SHAPES[case]
    x = rand(shape, dtype, seed=3)
    x[0, 0, :2, :2] = 1.5                                   # a window of ties
    x[-1, -1, 0, 1] = np.nan
    x[-1, -1, 1, 0] = -np.nan                               # two NaNs in one window: the first wins
    x[0, -1, -2:, -2:] = np.inf
    geo = geometry(k, s, p)
    y, argmax = kernels.pool2d.max_forward(x, geo, backend="numpy")
    g = rand(y.shape, dtype, seed=4)
    g[0, 0, 0, 0] = -0.0
    expected = kernels.pool2d.max_backward(g, argmax, x.shape, backend="numpy")
    got = kernels.pool2d.max_scatter(g, x, geo, backend=backend)      # host in, host out (cuda too)
    assert isinstance(got, np.ndarray) and got.dtype == dtype and got.tobytes() == expected.tobytes()


def test_max_scatter_reads_x_and_g_with_any_strides_and_leaves_them_as_they_were():
    x = rand((2, 6, 8, 10), np.float32, seed=5)[:, ::2]          # not contiguous
    g = rand((2, 3, 4, 5), np.float32, seed=6)
    before = x.copy(), g.copy()
    expected = kernels.pool2d.max_backward(g, kernels.pool2d.max_forward(x, geometry(2, None, 0))[1], x.shape)
    assert kernels.pool2d.max_scatter(g, x, geometry(2, None, 0)).tobytes() == expected.tobytes()
    assert (x == before[0]).all() and (g == before[1]).all()


# --- validation and dispatch ---------------------------------------------------------------------

X = np.zeros((1, 2, 4, 4), np.float32)
G = np.zeros((1, 2, 2, 2), np.float32)
ARG = np.zeros((1, 2, 2, 2), np.int64)


@pytest.mark.parametrize("call, error, message", [
    (lambda: max_pool2d_forward(X[0], 2), ValueError, r"x must be 4-D, got shape \(2, 4, 4\)"),
    (lambda: max_pool2d_forward(X.astype(int), 2), TypeError, r"x must be float32 or float64, got int"),
    (lambda: avg_pool2d_forward(X, 0), ValueError, r"kernel_size must be >= 1, got \(0, 0\)"),
    (lambda: avg_pool2d_forward(X, 2, stride=(1, 0)), ValueError, r"stride must be >= 1, got \(1, 0\)"),
    (lambda: max_pool2d_forward(X, 2, padding=-1), ValueError, r"padding must be >= 0, got \(-1, -1\)"),
    (lambda: max_pool2d_forward(X, 3, padding=2), ValueError,
     r"padding must be at most kernel_size // 2 = \(1, 1\) \(torch's rule.*got padding \(2, 2\)"),
    (lambda: avg_pool2d_forward(X, (5, 2)), ValueError, r"output would be empty: input size 4 with padding 0"),
    (lambda: avg_pool2d_backward(G, X.shape, 3), ValueError,
     r"g must have the shape of the forward output \(1, 2, 1, 1\), got \(1, 2, 2, 2\)"),
    (lambda: avg_pool2d_backward(G, (1, 2, 4), 2), ValueError, r"input_shape must be 4 positive ints"),
    (lambda: max_pool2d_backward(G, ARG.astype(np.int32), X.shape), TypeError, r"argmax must be int64.*got int32"),
    (lambda: max_pool2d_backward(G, ARG[:, :, :1], X.shape), ValueError,
     r"argmax must have g's shape \(1, 2, 2, 2\), got \(1, 2, 1, 2\)"),
    (lambda: max_pool2d_backward(G, ARG + 16, X.shape), ValueError, r"argmax must hold flat indices .*4x4 \(0 \.\. 15\), got values from 16"),
    (lambda: max_pool2d_backward(G, ARG, (1, 3, 4, 4)), ValueError, r"g must have the batch size and channels"),
    (lambda: max_pool2d_backward(G.astype(np.int16), ARG, X.shape), TypeError, r"g must be float32 or float64"),
    (lambda: kernels.pool2d.max_scatter(G[:, :1], X, kernels.PoolGeometry(2)), ValueError,
     r"g must have the pooled shape \(1, 2, 2, 2\) of x, got \(1, 1, 2, 2\)"),
    (lambda: kernels.pool2d.max_scatter(G, X.astype(np.float64), kernels.PoolGeometry(2)), TypeError,
     r"g must have dtype float64 \(like x\), got float32"),
    (lambda: kernels.pool2d.max_scatter(G, X, 2), TypeError, r"geometry must be a kernels.PoolGeometry"),
    (lambda: kernels.pool2d.max_scatter(G, X[0], kernels.PoolGeometry(2)), ValueError, r"x must be 4-D"),
])
def test_bad_arguments_are_refused_with_a_message_naming_them(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("backend", ["numpy", "cpu", pytest.param("cuda", marks=needs_cuda)])
@pytest.mark.parametrize("shift, shown", [(16, "from 16 to 16"), (-1, "from -1 to -1"), (None, "from -3 to 15")])
def test_an_argmax_outside_the_plane_is_refused_on_every_host_backend(backend, shift, shown):
    """The CPU kernel checks the range while it scatters (no pass of its own): the same message as
    the entry point's check (numpy, and host arrays on cuda), for an index past the plane, a negative
    one, and one bad among good ones."""
    arg = ARG + shift if shift is not None else np.where(np.arange(8).reshape(ARG.shape) == 5, -3, 15)
    with pytest.raises(ValueError, match=rf"argmax must hold flat indices .*4x4 \(0 \.\. 15\), got values {shown}$"):
        max_pool2d_backward(G, arg, X.shape, backend=backend)


@pytest.mark.parametrize("backend, module", [("numpy", "reference"), ("cpu", "cpu")])
def test_dispatch_runs_the_named_backend(monkeypatch, backend, module):
    """The call reaches kernels.pool2d.<module> (spied), both by argument and by use_backend."""
    target = importlib.import_module(f"kernels.pool2d.{module}")
    calls = []
    for name in ("max_forward", "avg_forward"):
        real = getattr(target, name)
        monkeypatch.setattr(target, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    x = rand((1, 1, 4, 4))
    y, _ = max_pool2d_forward(x, 2, backend=backend)
    with kernels.use_backend(backend):
        avg = avg_pool2d_forward(x, 2)
    assert calls == ["max_forward", "avg_forward"]
    np.testing.assert_array_equal(y, loops_max_pool(x, 2, None, 0)[0])
    np.testing.assert_allclose(avg, loops_avg_pool(x, 2, None, 0), rtol=1e-12)


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match=r"backend must be one of \('numpy', 'cpu', 'cuda'\), got 'tpu'"):
        max_pool2d_forward(X, 2, backend="tpu")
