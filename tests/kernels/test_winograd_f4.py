"""Winograd F(4x4, 3x3), kernels.conv2d.winograd's opt-in larger tile (``tile=4``; winograd_f4.py): the
matrices as an exact identity, the vector transforms against them, every direction against the NumPy
reference (float64 tight, float32 within the stated factor of im2col's error), bitwise identical across
thread counts (tests/kernels/test_winograd.py, with F(2x2, 3x3)), and the tile argument's checks."""
from fractions import Fraction

import numpy as np
import pytest

from kernels.conv2d import cpu, reference, winograd, winograd_f4, winograd_transforms
from kernels.options import ConvGeometry

from test_winograd import SHAPES, _case

TIGHT = {"rtol": 1e-11, "atol": 1e-11}         # float64: G's sixths and the transforms' 5s and 8s round a little


@pytest.mark.parametrize("points, m, r", [((0, 1, -1), 2, 3), (winograd_f4.POINTS, 4, 3), (winograd_f4.POINTS, 3, 4),
                                          ((0, 2, -2, Fraction(1, 3)), 3, 3)], ids=str)
def test_toom_cook_is_the_correlation_exactly(points, m, r):
    """y = A^T [(G g) * (B^T d)] is y[i] = sum_k g[k] d[i + k], in exact rational arithmetic, for every unit d and g
    (so for all of them, by linearity)."""
    at, g_matrix, bt = winograd_f4.toom_cook(points, m, r)
    n = m + r - 1
    for p in range(n):
        for q in range(r):
            d = [Fraction(int(i == p)) for i in range(n)]
            g = [Fraction(int(k == q)) for k in range(r)]
            gg = [sum(g_matrix[j][k] * g[k] for k in range(r)) for j in range(n)]
            bd = [sum(bt[j][i] * d[i] for i in range(n)) for j in range(n)]
            y = [sum(at[i][j] * gg[j] * bd[j] for j in range(n)) for i in range(m)]
            assert y == [sum(g[k] * d[i + k] for k in range(r) if i + k < n) for i in range(m)]


def test_toom_cook_refuses_points_or_sizes_that_do_not_fit():
    with pytest.raises(ValueError, match=r"points: F\(4, 3\) needs 5 distinct points, got \(0, 1, 1, 2, 3\)"):
        winograd_f4.toom_cook((0, 1, 1, 2, 3), 4, 3)
    for m, r in [(0, 3), (2, 2.0), (True, 3)]:
        with pytest.raises(ValueError, match=r"m and r: expected integers >= 1, got m="):
            winograd_f4.toom_cook((0, 1, -1), m, r)


def test_the_matrices_have_the_documented_entries():
    """A^T's entries are powers of 1/2 (exact in float32), B^T's small integers."""
    assert set(np.abs(winograd_f4.AT[winograd_f4.AT != 0])) <= {1, 0.5, 0.25, 0.125}
    assert set(np.abs(winograd_f4.BT.ravel())) == {0, 1, 4, 5, 8}


@pytest.mark.parametrize("c, h, w, off", [(3, 11, 12, 1), (2, 9, 7, 0), (2, 6, 5, 2), (4, 7, 9, -1)], ids=str)
def test_the_vector_transforms_match_the_matrices(c, h, w, off):
    """input_tiles, inverse and output_tiles against B^T d B and A^T m A written with the matrices (NumPy)."""
    rng = np.random.default_rng(3)
    src = rng.standard_normal((c, h, w))
    th, tw = -(-(h + 2 * off - 2) // 4), -(-(w + 2 * off - 2) // 4)        # the 4x4 output tiles of a 3x3 filter
    padded = np.zeros((c, 4 * th + 2, 4 * tw + 2))
    inside = np.pad(src, ((0, 0), (max(off, 0),) * 2, (max(off, 0),) * 2))[:, max(-off, 0):, max(-off, 0):]
    rows, cols = min(inside.shape[1], 4 * th + 2), min(inside.shape[2], 4 * tw + 2)
    padded[:, :rows, :cols] = inside[:, :rows, :cols]
    xt = np.zeros((4 * th + 2) * 4 * (tw + 1) * c)
    winograd_transforms.channels_last(src, off, off, xt, tw + 1, 4)
    row = th * tw * c + 5
    v = np.full(36 * row, np.nan)
    winograd_f4.input_tiles(xt, th, tw, c, np.empty(24 * (tw + 1) * c), v, row, 3)
    v = v.reshape(36, row)[:, 3:3 + th * tw * c].reshape(6, 6, th, tw, c)
    bt, at = winograd_f4.BT, winograd_f4.AT
    for ti in range(th):
        for tj in range(tw):
            for ch in range(c):
                d = padded[ch, 4 * ti:4 * ti + 6, 4 * tj:4 * tj + 6]
                np.testing.assert_allclose(v[:, :, ti, tj, ch], bt @ d @ bt.T, rtol=1e-13, atol=1e-13)
    f, size = 3, th * tw * 3
    m = rng.standard_normal((36, size + 7))
    y, bias = np.full(16 * (size + 1), np.nan), rng.standard_normal(f)
    winograd_f4.inverse(m.reshape(-1), size + 7, size, np.empty(24 * winograd_transforms.CHUNK_ROW), y, size + 1)
    out = np.full((f, 4 * th - 1, 4 * tw - 2), np.nan)                      # the last tiles cut
    winograd_transforms.output_tiles(y, size + 1, 0, th, tw, bias, False, out, 4)
    for t in range(th * tw):
        ti, tj = divmod(t, tw)
        for k in range(f):
            tile = (at @ m[:, t * f + k].reshape(6, 6) @ at.T + bias[k])[:out.shape[1] - 4 * ti, :out.shape[2] - 4 * tj]
            np.testing.assert_allclose(out[k, 4 * ti:4 * ti + 4, 4 * tj:4 * tj + 4], tile, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("ho, wo", [(11, 11), (4, 6), (5, 2), (1, 3), (8, 9)], ids=str)
def test_the_gradient_tile_transform_matches_the_matrix(ho, wo):
    """grad_quarters and grad_tiles against A t A^T for every 4x4 tile of g (zeros past its last row and
    column), two filters ``width`` columns apart; grad_quarters adds each filter's sum of g to db."""
    rng = np.random.default_rng(4)
    src = rng.standard_normal((2, ho, wo))
    th, tw = -(-ho // 4), -(-wo // 4)
    padded = np.zeros((2, 4 * th, 4 * tw))
    padded[:, :ho, :wo] = src
    width = th * tw + 3
    size, p_row, row = 2 * width + 2, 2 * width + 9, 2 * width + 5
    p, gg, db = np.zeros(16 * p_row), np.full(36 * row, np.nan), np.array([1.5, -2.0])
    p[:] = np.nan
    winograd_f4.grad_quarters(src, th, tw, p, p_row, 2, width, db)
    tile_columns = [2 + f * width + t for f in range(2) for t in range(th * tw)]
    assert not np.isnan(p.reshape(16, p_row)[:, tile_columns]).any()     # the tiles past g: zeros written
    between = np.ones(p_row, bool)
    between[tile_columns] = False
    p.reshape(16, p_row)[:, between] = 0
    np.testing.assert_allclose(db, [1.5 + src[0].sum(), -2.0 + src[1].sum()], rtol=1e-13)
    winograd_f4.grad_tiles(p, p_row, size, np.empty(24 * winograd_transforms.CHUNK_ROW), gg, row)
    gg, a = gg.reshape(36, row), winograd_f4.AT.T
    for f in range(2):
        for ti in range(th):
            for tj in range(tw):
                t = padded[f, 4 * ti:4 * ti + 4, 4 * tj:4 * tj + 4]
                np.testing.assert_allclose(gg[:, 2 + f * width + ti * tw + tj], (a @ t @ a.T).reshape(36),
                                           rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("shape", SHAPES + [(3, 32, 13, 13, 64, 0)], ids=str)
def test_float64_matches_the_reference(shape):
    x, w, b, g, geometry = _case(shape)
    for relu in (False, True):
        np.testing.assert_allclose(winograd.forward(x, w, b, geometry, relu, tile=4),
                                   reference.forward(x, w, b, geometry, relu), **TIGHT)
    np.testing.assert_allclose(winograd.backward_input(g, w, x.shape, geometry, tile=4),
                               reference.backward_input(g, w, x.shape, geometry), **TIGHT)
    dw, db = winograd.backward_weight(g, x, w.shape, geometry, True, tile=4)
    dw_ref, db_ref = reference.backward_weight(g, x, w.shape, geometry, True)
    np.testing.assert_allclose(dw, dw_ref, **TIGHT)
    np.testing.assert_allclose(db, db_ref, **TIGHT)


@pytest.mark.parametrize("shape", [(8, 32, 13, 13, 64, 0), (8, 1, 28, 28, 32, 0), (4, 16, 12, 12, 16, 1)], ids=str)
def test_float32_error_is_within_the_stated_factor_of_im2col(shape, monkeypatch):
    """F(4x4, 3x3)'s float32 max error against the float64 reference: at most FLOAT32_ERROR_FACTOR_F4 times
    im2col's, and larger than F(2x2, 3x3)'s (the cost of the larger tile, which the docstring states)."""
    monkeypatch.setattr(cpu, "WINOGRAD", False)
    x, w, b, g, geometry = _case(shape, np.float32, seed=3)
    x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, w, b, g))
    exact = [reference.forward(x64, w64, b64, geometry), reference.backward_input(g64, w64, x.shape, geometry),
             reference.backward_weight(g64, x64, w.shape, geometry, False)[0]]
    im2col = [cpu.forward(x, w, b, geometry), cpu.backward_input(g, w, x.shape, geometry),
              cpu.backward_weight(g, x, w.shape, geometry, False)[0]]

    def errors(tile):
        got = [winograd.forward(x, w, b, geometry, tile=tile), winograd.backward_input(g, w, x.shape, geometry, tile),
               winograd.backward_weight(g, x, w.shape, geometry, False, tile)[0]]
        return [np.abs(a - e).max() for a, e in zip(got, exact)]

    for err, err_f2, err_im2col, e in zip(errors(4), errors(2), im2col, exact):
        assert err_f2 < err <= winograd.FLOAT32_ERROR_FACTOR_F4 * np.abs(err_im2col - e).max()
        assert err <= 2e-5 * np.abs(e).max()


@pytest.mark.parametrize("tile", [3, 0, "4", 4.0, True, None])
def test_a_tile_other_than_2_or_4_is_refused(tile, monkeypatch):
    """One line naming the argument (or the TILE entry that was set), before any work."""
    x, w, b, g, geometry = _case((1, 2, 6, 6, 2, 0))
    name = "tile"
    if tile is None:
        monkeypatch.setitem(winograd.TILE, "forward", 6)
        name = r"winograd.TILE\['forward'\]"
    with pytest.raises(ValueError, match=name + r": expected 2 \(F\(2x2, 3x3\)\) or 4 \(F\(4x4, 3x3\)\), got"):
        winograd.forward(x, w, b, geometry, tile=tile)
    if tile is not None:
        with pytest.raises(ValueError, match="tile: expected 2"):
            winograd.backward_weight(g, x, w.shape, geometry, True, tile)
        with pytest.raises(ValueError, match="tile: expected 2"):
            winograd.backward_input(g, w, x.shape, geometry, tile)
    by_numpy_int = winograd.forward(x, w, b, geometry, tile=np.int64(4))             # any integer type is taken
    np.testing.assert_allclose(by_numpy_int, reference.forward(x, w, b, geometry), **TIGHT)
