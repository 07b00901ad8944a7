"""conv2d by Winograd F(2x2, 3x3) (kernels/conv2d/winograd.py): forward, backward input and backward
weight against the NumPy reference (float64 tight, float32 within a stated factor of im2col's error),
bitwise identical across thread counts, the checks, and the "cpu" backend's dispatch."""
import numba
import numpy as np
import pytest

from kernels.conv2d import cpu, reference, winograd, winograd_transforms
from kernels.options import ConvGeometry

# (N, C, H, W, F, padding): odd and even sizes, H or W below 4, batch 1, one channel, paddings 0 to 3
SHAPES = [
    (2, 3, 7, 7, 4, 0), (1, 1, 5, 6, 2, 1), (3, 2, 4, 3, 3, 2), (2, 5, 13, 13, 6, 1), (1, 2, 2, 2, 3, 2),
    (4, 3, 11, 12, 5, 0), (2, 2, 3, 3, 2, 0), (2, 3, 6, 5, 4, 3), (1, 4, 3, 9, 3, 1), (3, 9, 8, 8, 10, 1),
    (5, 1, 10, 7, 1, 0), (2, 3, 5, 3, 2, (2, 1)),
]


def _case(shape, dtype=np.float64, seed=0):
    n, c, h, w, f, padding = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((f, c, 3, 3)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    geometry = ConvGeometry(padding=padding)
    g = rng.standard_normal(reference.forward(x, wt, b, geometry).shape).astype(dtype)
    return x, wt, b, g, geometry


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_float64_matches_the_reference(shape):
    x, w, b, g, geometry = _case(shape)
    for relu in (False, True):
        np.testing.assert_allclose(winograd.forward(x, w, b, geometry, relu),
                                   reference.forward(x, w, b, geometry, relu), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(winograd.forward(x, w, None, geometry), reference.forward(x, w, None, geometry),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(winograd.backward_input(g, w, x.shape, geometry),
                               reference.backward_input(g, w, x.shape, geometry), rtol=1e-12, atol=1e-12)
    dw, db = winograd.backward_weight(g, x, w.shape, geometry, True)
    dw_ref, db_ref = reference.backward_weight(g, x, w.shape, geometry, True)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, db_ref, rtol=1e-12, atol=1e-12)
    assert winograd.backward_weight(g, x, w.shape, geometry, False)[1] is None


@pytest.mark.parametrize("shape", SHAPES[:6], ids=str)
def test_backward_with_the_fused_relu_matches_the_reference(shape):
    x, w, b, g, geometry = _case(shape, seed=1)
    out = reference.forward(x, w, b, geometry, relu=True)
    assert (out == 0).any() and (out > 0).any()
    got = winograd.backward(g, x, w, geometry, True, True, out)
    want = reference.backward(g, x, w, geometry, True, True, out)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)
    dx, dw, db = winograd.backward(g, x, w, geometry, False, True, None)
    assert dx is None and dw is not None and db is not None
    dx, dw, db = winograd.backward(g, x, w, geometry, True, False, None)
    assert dx is not None and dw is None and db is None


def test_the_transforms_are_exact_on_integers():
    """Small integers and the transforms' halves are exact in float32: Winograd's result is then exact too."""
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, (2, 4, 9, 8)).astype(np.float32)
    w = rng.integers(-3, 4, (5, 4, 3, 3)).astype(np.float32)
    geometry = ConvGeometry(padding=1)
    want = reference.forward(x.astype(np.float64), w.astype(np.float64), None, geometry)
    np.testing.assert_array_equal(winograd.forward(x, w, None, geometry), want.astype(np.float32))


_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


@pytest.mark.parametrize("c, h, w, off", [(3, 7, 8, 1), (5, 6, 5, 0), (2, 9, 7, 2), (4, 5, 6, -1)], ids=str)
def test_the_vector_transforms_match_the_matrices(c, h, w, off):
    """winograd_transforms against B^T d B and A^T m A written with the matrices, tile by tile (NumPy)."""
    rng = np.random.default_rng(3)
    src = rng.standard_normal((c, h, w))
    th, tw = (h + 2 * off - 1) // 2, (w + 2 * off - 1) // 2          # the output tiles of a 3x3 filter
    padded = np.zeros((c, 2 * th + 2, 2 * tw + 2))
    inside = np.pad(src, ((0, 0), (max(off, 0),) * 2, (max(off, 0),) * 2))[:, max(-off, 0):, max(-off, 0):]
    rows, cols = min(inside.shape[1], 2 * th + 2), min(inside.shape[2], 2 * tw + 2)
    padded[:, :rows, :cols] = inside[:, :rows, :cols]
    xt = np.zeros((2 * th + 2) * 2 * (tw + 1) * c)
    winograd_transforms.channels_last(src, off, off, xt, tw + 1)
    row = th * tw * c + 5
    v = np.full(16 * row, np.nan)
    winograd_transforms.input_tiles(xt, th, tw, c, np.empty(8 * (tw + 1) * c), v, row, 3)
    v = v.reshape(16, row)[:, 3:3 + th * tw * c].reshape(4, 4, th, tw, c)
    for ti, tj in [(0, 0), (th - 1, tw - 1), (th // 2, tw - 1)]:
        for ch in range(c):
            d = padded[ch, 2 * ti:2 * ti + 4, 2 * tj:2 * tj + 4]
            np.testing.assert_allclose(v[:, :, ti, tj, ch], _BT @ d @ _BT.T, rtol=1e-12, atol=1e-12)
    f, size = 3, th * tw * 3
    m = rng.standard_normal((16, size + 7))
    y4, bias = np.full(4 * (size + 1), np.nan), rng.standard_normal(f)
    winograd_transforms.inverse(m.reshape(-1), size + 7, size, y4, size + 1)
    out = np.full((f, 2 * th, 2 * tw), np.nan)
    winograd_transforms.output_tiles(y4, size + 1, 0, th, tw, bias, False, out)
    for t in range(th * tw):
        for k in range(f):
            tile = _AT @ m[:, t * f + k].reshape(4, 4) @ _AT.T + bias[k]
            ti, tj = divmod(t, tw)
            got = out[k, 2 * ti:2 * ti + 2, 2 * tj:2 * tj + 2]
            np.testing.assert_allclose(got, tile, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("t", [2, 4])
def test_output_tiles_by_vectors_are_the_plain_loops_bits(dtype, t):
    """output_tiles (a vector of filters turned into each filter's run of an output row) against
    output_tiles_plain: every value's bits, NaN, -0.0 and -inf among them, with and without the ReLU, for
    filter counts and row lengths around the vector width; nothing written past the output."""
    rng = np.random.default_rng(t)
    for f, ho, wo in [(64, 11, 11), (5, 7, 3), (17, 13, 13), (33, 1, 40), (1, 4, 4), (20, 9, 30)]:
        th, tw = -(-ho // t), -(-wo // t)
        size = th * tw * f + 7
        y = rng.standard_normal(t * t * size).astype(dtype)
        for value in (np.nan, -0.0, -np.inf):
            y[rng.integers(0, y.size, 9)] = value
        bias = rng.standard_normal(f).astype(dtype)
        bias[0] = -0.0
        for relu in (False, True):
            fast, plain = np.full((2, 2, f + 1, ho, wo), 7.0, dtype)
            winograd_transforms.output_tiles(y, size, 3, th, tw, bias, relu, fast[0, :f], t)
            winograd_transforms.output_tiles_plain(y, size, 3, th, tw, bias, relu, plain[0, :f], t)
            assert fast[0].tobytes() == plain[0].tobytes(), (f, ho, wo, relu)
            assert (fast[0, f] == 7).all() and (fast[1] == 7).all()                # past the output: untouched


@pytest.mark.parametrize("ho, wo", [(11, 11), (4, 6), (5, 2), (1, 3)], ids=str)
def test_the_gradient_tile_transform_matches_the_matrix(ho, wo):
    """grad_parity and grad_tiles against A t A^T written with the matrix, for every 2x2 tile of g (zeros
    past its last row and column), two filters ``width`` columns apart; grad_parity adds each filter's
    sum of g to db."""
    rng = np.random.default_rng(4)
    src = rng.standard_normal((2, ho, wo))
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    padded = np.zeros((2, 2 * th, 2 * tw))
    padded[:, :ho, :wo] = src
    width = th * tw + 3
    size, p_row, row = 2 * width + 2, 2 * width + 9, 2 * width + 5
    p, gg, db = np.full(4 * p_row, np.nan), np.full(16 * row, np.nan), np.array([1.5, -2.0])
    winograd_transforms.grad_parity(src, th, tw, p, p_row, 2, width, db)
    tile_columns = [2 + f * width + t for f in range(2) for t in range(th * tw)]
    assert not np.isnan(p.reshape(4, p_row)[:, tile_columns]).any()     # the tiles past g: zeros written
    between = np.ones(p_row, bool)
    between[tile_columns] = False
    p.reshape(4, p_row)[:, between] = 0
    np.testing.assert_allclose(db, [1.5 + src[0].sum(), -2.0 + src[1].sum()], rtol=1e-13)
    winograd_transforms.grad_tiles(p, p_row, size, gg, row)
    gg, p = gg.reshape(16, row), p.reshape(4, p_row)
    corners = {k: (entry, sign) for k, entry, sign in winograd_transforms.CORNERS}
    others = [k for k in range(16) if k not in corners]
    assert np.isnan(gg[sorted(corners)]).all() and not np.isnan(gg[others, :size]).any()     # 12 rows written
    for k, (entry, sign) in corners.items():               # the rows grad_tiles leaves out: p's rows, signed
        gg[k, :size] = sign * p[entry, :size]
    for f in range(2):
        for ti in range(th):
            for tj in range(tw):
                t = padded[f, 2 * ti:2 * ti + 2, 2 * tj:2 * tj + 2]
                np.testing.assert_allclose(gg[:, 2 + f * width + ti * tw + tj], (_AT.T @ t @ _AT).reshape(16),
                                           rtol=1e-14, atol=1e-14)


# The benchmark's second convolution (a smaller batch) and its first: float32's max error against the
# float64 reference, Winograd's at most FLOAT32_ERROR_FACTOR times im2col's on the same inputs.
@pytest.mark.parametrize("shape", [(8, 32, 13, 13, 64, 0), (8, 1, 28, 28, 32, 0), (4, 16, 12, 12, 16, 1)], ids=str)
def test_float32_error_is_within_a_factor_of_im2col(shape, monkeypatch):
    monkeypatch.setattr(cpu, "WINOGRAD", False)
    x, w, b, g, geometry = _case(shape, np.float32, seed=3)
    x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, w, b, g))
    pairs = [
        (winograd.forward(x, w, b, geometry), cpu.forward(x, w, b, geometry), reference.forward(x64, w64, b64, geometry)),
        (winograd.backward_input(g, w, x.shape, geometry), cpu.backward_input(g, w, x.shape, geometry),
         reference.backward_input(g64, w64, x.shape, geometry)),
        (winograd.backward_weight(g, x, w.shape, geometry, False)[0],
         cpu.backward_weight(g, x, w.shape, geometry, False)[0],
         reference.backward_weight(g64, x64, w.shape, geometry, False)[0]),
    ]
    for ours, im2col, exact in pairs:
        err, err_im2col = np.abs(ours - exact).max(), np.abs(im2col - exact).max()
        assert 0 < err <= winograd.FLOAT32_ERROR_FACTOR * err_im2col
        assert err <= 1e-6 * np.abs(exact).max()                 # a few float32 roundings of the largest value


def test_a_short_block_multiplies_only_its_own_tiles_over_rows_set_to_zero(monkeypatch):
    """Batch 1 (one short block): the products take the image's tiles rounded up to gemm's block rows, the
    rows past its tiles set to zeros (the scratch held subnormal numbers before), no row of M beyond;
    y the same bits as with fresh scratch."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 8, 11, 11)).astype(np.float32)        # 25 tiles: rounded up on every CPU
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    geometry = ConvGeometry()
    expected = winograd.forward(x, w, b, geometry, True)
    tiles = 5 * 5
    rows = winograd._width(1, tiles, 16, 4)
    assert tiles < rows < winograd._width(max(1, winograd.COLUMNS[2] // tiles), tiles, 16, 4)
    tiny = np.float32(1e-40)                                        # subnormal
    made = []

    def scratch(size, dtype, rows=16):
        made.append(np.full((numba.config.NUMBA_NUM_THREADS, rows, winograd._row(size, 4)), tiny, np.float32))
        return made[-1]

    monkeypatch.setattr(winograd, "_scratch", scratch)
    y = winograd.forward(x, w, b, geometry, True)
    assert y.tobytes() == expected.tobytes()
    v, m = made[0], made[1]
    used = [t for t in range(v.shape[0]) if v[t, 0, 0] != tiny]     # the thread that ran the block
    assert len(used) == 1
    t = used[0]
    assert not v[t, :, tiles * 8:rows * 8].any()                     # zeros past the tiles
    assert (v[t, :, rows * 8:] == tiny).all()                        # nothing past the rounded rows...
    assert (m[t, :, rows * 16:] == tiny).all() and (m[t, :, :rows * 16] != tiny).all()   # ...multiplied


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tile", [2, 4])
def test_bitwise_identical_across_runs_and_thread_counts(dtype, tile, monkeypatch):
    """Every direction by F(tile x tile, 3x3) (winograd.TILE set for all three)."""
    monkeypatch.setattr(winograd, "TILE", dict.fromkeys(winograd.TILE, tile))
    x, w, b, g, geometry = _case((19, 6, 11, 9, 7, 1), dtype, seed=4)
    out = reference.forward(x, w, b, geometry, relu=True)

    def run():
        return [winograd.forward(x, w, b, geometry, True), *winograd.backward(g, x, w, geometry, True, True, out)]

    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
        numba.set_num_threads(2)
        two, again = run(), run()
    finally:
        numba.set_num_threads(previous)
    assert one[0].tobytes() != winograd.forward(x, w, b, geometry, True, tile=6 - tile).tobytes()   # TILE was taken
    for a, b2, c in zip(one, two, again):
        assert a.tobytes() == b2.tobytes() == c.tobytes()


@pytest.mark.parametrize("w_shape, options, word", [
    ((2, 3, 5, 5), {}, "3x3"), ((2, 3, 3, 3), {"stride": 2}, "stride"), ((2, 3, 3, 3), {"dilation": 2}, "dilation"),
    ((3, 1, 3, 3), {"groups": 3}, "groups 3"), ((2, 3, 3, 2), {}, "weight shape (2, 3, 3, 2)"),
])
def test_a_geometry_winograd_does_not_cover_is_refused(w_shape, options, word):
    geometry = ConvGeometry(**options)
    x, w = np.ones((1, 3, 8, 8)), np.ones(w_shape)
    assert not winograd.eligible(w.shape, geometry)
    with pytest.raises(ValueError, match="winograd needs 3x3 filters") as info:
        winograd.forward(x, w, None, geometry)
    assert word in str(info.value)
    with pytest.raises(ValueError, match="winograd needs"):
        winograd.backward_weight(np.ones((1, 2, 4, 4)), x, w.shape, geometry, True)
    with pytest.raises(ValueError, match="winograd needs"):
        winograd.backward_input(np.ones((1, 2, 4, 4)), w, x.shape, geometry)


def test_the_cpu_backend_dispatches_by_the_stated_rule(monkeypatch):
    """winograd.use_winograd (also cpu.use_winograd): eligible, C and F at least MIN_CHANNELS of the direction,
    padding >= 1 for backward input; cpu.WINOGRAD True or False forces a path where eligible (cpu._by_winograd);
    both paths give the reference's results."""
    same, valid = ConvGeometry(padding=1), ConvGeometry()
    assert cpu.use_winograd((32, 32, 3, 3), same, "backward input") and cpu.use_winograd((64, 32, 3, 3), valid)
    assert cpu.use_winograd((64, 32, 3, 3), valid, "backward weight")
    assert not cpu.use_winograd((64, 32, 3, 3), valid, "backward input")          # a full correlation: padding 0
    assert cpu.use_winograd((16, 16, 3, 3), valid) and not cpu.use_winograd((16, 16, 3, 3), valid, "backward weight")
    assert not cpu.use_winograd((32, 1, 3, 3), valid) and not cpu.use_winograd((64, 32, 3, 3), ConvGeometry(stride=2))
    assert cpu.use_winograd is winograd.use_winograd
    assert cpu._by_winograd((64, 32, 3, 3), valid, "forward") and not cpu._by_winograd((32, 1, 3, 3), valid, "forward")
    monkeypatch.setattr(cpu, "WINOGRAD", True)
    assert cpu._by_winograd((32, 1, 3, 3), valid, "backward input")
    assert not cpu._by_winograd((64, 32, 3, 3), ConvGeometry(dilation=2), "forward")
    monkeypatch.setattr(cpu, "WINOGRAD", False)
    assert not cpu._by_winograd((64, 32, 3, 3), valid, "forward")

    x, w, b, g, geometry = _case((3, 8, 9, 10, 16, 1), seed=5)
    out = reference.forward(x, w, b, geometry, relu=True)
    want = reference.backward(g, x, w, geometry, True, True, out)
    plain = reference.backward(g, x, w, geometry, True, True, None)            # g not masked
    for forced in (True, False, None):
        monkeypatch.setattr(cpu, "WINOGRAD", forced)
        np.testing.assert_allclose(cpu.forward(x, w, b, geometry, True), out, rtol=1e-12, atol=1e-12)
        for a, e in zip(cpu.backward(g, x, w, geometry, True, True, out), want):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cpu.backward_input(g, w, x.shape, geometry), plain[0], rtol=1e-12, atol=1e-12)
        for a, e in zip(cpu.backward_weight(g, x, w.shape, geometry, True), plain[1:]):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_backward_takes_each_gradient_on_its_own_path_from_g_masked_once(monkeypatch):
    """With 32 channels and filters, padding 1 gives both gradients to Winograd (one call of its backward),
    padding 0 only dw: then g is masked once (relu_grad), dx is im2col's from it and dw Winograd's from
    it, bit for bit; either way the reference's gradients (g masked by the fused ReLU), and so for
    the single gradients."""
    monkeypatch.setattr(cpu, "WINOGRAD", None)
    calls = []
    monkeypatch.setattr(winograd, "backward", lambda *a: calls.append(1) or reference.backward(*a))
    for padding, by_input in ((0, False), (1, True)):
        x, w, b, g, geometry = _case((2, 32, 6, 7, 32, padding), seed=6)
        assert cpu.use_winograd(w.shape, geometry, "backward weight")
        assert cpu.use_winograd(w.shape, geometry, "backward input") == by_input
        out = reference.forward(x, w, b, geometry, relu=True)
        calls.clear()
        want = reference.backward(g, x, w, geometry, True, True, out)
        got = cpu.backward(g, x, w, geometry, True, True, out)
        for a, e in zip(got, want):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)
        assert len(calls) == by_input
        if not by_input:
            masked = np.where(out > 0, g, 0.0)
            dx = cpu._backward_pass(masked, None, w, x.shape, w.shape, geometry, True, False, None)[0]
            dw, db = winograd.backward_weight(masked, x, w.shape, geometry, True)
            assert got[0].tobytes() == dx.tobytes() and got[1].tobytes() == dw.tobytes()
            assert got[2].tobytes() == db.tobytes()
        calls.clear()
        dx, dw, db = cpu.backward(g, x, w, geometry, False, True, out)        # dw alone: Winograd's
        assert dx is None and len(calls) == 1
