"""kernels.spans (short runs by masked SIMD vectors) and kernels.conv2d.columns (im2col and col2im, which
use them): the runs' values and edges against NumPy, the lanes past a run neither read nor written,
and both fast paths bit for bit the plain loops they replace."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest
from llvmlite import binding as llvm_binding

from kernels import spans
from kernels.conv2d import columns

ROOT = Path(__file__).resolve().parents[2]
DTYPES = [np.float32, np.float64]


@numba.njit
def _copy(src, s_off, dst, d_off, n):
    spans.copy_run(src[0], src.ctypes.data, s_off, dst.ctypes.data, d_off, n)


@numba.njit
def _split(src, s_off, dst, even, odd, n):
    spans.split_run(src[0], src.ctypes.data, s_off, dst.ctypes.data, even, odd, n)


@numba.njit
def _add(dst, d_off, lanes, src, table, first, count, base):
    spans.add_runs(dst[0], dst.ctypes.data, d_off, lanes, src.ctypes.data, table.ctypes.data, first, count, base)


@pytest.mark.parametrize("dtype", DTYPES)
def test_copy_run_copies_exactly_n_values_for_every_length_around_the_vector_width(dtype):
    width = spans.lanes(np.dtype(dtype).itemsize)
    src = np.arange(1, 4 * width + 8, dtype=dtype)
    src[2], src[3] = np.nan, -0.0
    for n in range(3 * width + 2):
        for s_off, d_off in [(0, 0), (3, 1), (1, 5)]:
            dst = np.full(4 * width + 8, 7, dtype=dtype)
            expected = dst.copy()
            expected[d_off:d_off + n] = src[s_off:s_off + n]
            _copy(src, s_off, dst, d_off, n)
            assert dst.tobytes() == expected.tobytes(), (n, s_off, d_off)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_run_puts_a_runs_even_and_odd_values_apart_for_every_length(dtype):
    width = spans.lanes(np.dtype(dtype).itemsize)
    src = np.arange(1, 6 * width + 8, dtype=dtype)
    src[4], src[7] = np.nan, -0.0
    for n in range(2 * width + 3):
        for s_off in (0, 3):
            dst = np.full(8 * width, 7, dtype=dtype)
            expected = dst.copy()
            even, odd = 1, 3 * width + 2
            expected[even:even + n] = src[s_off:s_off + 2 * n:2]
            expected[odd:odd + n] = src[s_off + 1:s_off + 2 * n:2]
            _split(src, s_off, dst, even, odd, n)
            assert dst.tobytes() == expected.tobytes(), (n, s_off)


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_runs_adds_the_tables_runs_in_order_into_the_first_lanes_only(dtype):
    width = spans.lanes(np.dtype(dtype).itemsize)
    rng = np.random.default_rng(width)
    src = rng.standard_normal(64 + 4 * width).astype(dtype)
    # (offset, first lane, lane past the last): a full vector, a middle part, one lane, none, past the width
    table = np.array([[width, 0, width], [5, 2, width - 3], [40, width - 1, width], [9, 3, 3], [17, 1, 2 * width]],
                     dtype=np.intp)
    for lanes in (width, width - 3, 1):
        dst = rng.standard_normal(3 * width).astype(dtype)
        dst[2 * width - 2] = -0.0                             # a lane no run reaches: stays -0.0
        expected = dst.copy()
        base = 2
        for offset, lo, hi in table[1:]:                     # rows 1..4, in order, each term rounded on the way
            for lane in range(lo, min(hi, lanes, width)):
                expected[width + lane] = expected[width + lane] + src[base + offset + lane]
        _add(dst, width, lanes, src, table, 1, 4, base)
        assert dst.tobytes() == expected.tobytes(), lanes


@numba.njit
def _columns(src, s_off, offsets, k, lanes, bias, b_off, relu, dst, d_off, d_step, n):
    spans.columns_to_rows(src[0], src.ctypes.data, s_off, offsets.ctypes.data, k, lanes, bias.ctypes.data, b_off,
                          relu, dst.ctypes.data, d_off, d_step, n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_columns_to_rows_transposes_with_the_bias_and_relu_and_touches_nothing_else(dtype):
    """dst[d_off + l*d_step + r] = relu(src[s_off + offsets[r] + l] + bias[b_off + l]) for r < n, l < lanes: the
    same bits as NumPy's float additions and formulas.relu (NaN kept, -0.0 kept, x < 0 -> 0); the rest of dst
    as it was, for full and partial vectors of rows and lanes."""
    width = spans.lanes(np.dtype(dtype).itemsize)
    rng = np.random.default_rng(width + 1)
    src = rng.standard_normal(40 * width).astype(dtype)
    src[rng.integers(0, src.size, 3 * width)] = np.nan
    src[rng.integers(0, src.size, 3 * width)] = -0.0
    bias = rng.standard_normal(3 * width).astype(dtype)
    bias[2] = -0.0
    for k, n, lanes in [(width, width, width), (width, width - 1, width - 2), (3, 2, 1), (1, 1, width), (2, 0, 3)]:
        offsets = np.zeros(width, dtype=np.intp)
        offsets[:k] = rng.permutation(30)[:k] * width + rng.integers(0, 3, k)
        for relu in (0, 1):
            dst = np.full(width * (3 * width + 2), 7, dtype=dtype)
            expected = dst.copy()
            d_off, d_step = 3, 3 * width + 1
            for lane in range(lanes):
                y = src[2 + offsets[:n] + lane] + bias[1 + lane]
                expected[d_off + lane * d_step:d_off + lane * d_step + n] = np.where(y < 0, 0, y) if relu else y
            _columns(src, 2, offsets, k, lanes, bias, 1, relu, dst, d_off, d_step, n)
            assert dst.tobytes() == expected.tobytes(), (k, n, lanes, relu)


def test_the_lanes_past_a_run_are_neither_read_nor_written_at_the_end_of_memory():
    """A run that ends where readable memory ends (a page marked unreadable right after it) is copied
    and summed without a fault: the masked vector's switched-off lanes touch nothing. In a child
    process, since a fault would kill it."""
    code = textwrap.dedent("""
        import ctypes, mmap, numba, numpy as np
        from kernels import spans
        page = mmap.PAGESIZE
        buf = mmap.mmap(-1, 2 * page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        libc = ctypes.CDLL(None)
        assert libc.mprotect(ctypes.c_void_p(base + page), page, 0) == 0   # PROT_NONE
        a = np.frombuffer(buf, dtype=np.float32, count=page // 4)      # ends at the unreadable page
        a[:] = np.arange(a.size, dtype=np.float32)
        out = np.zeros(80, np.float32)
        n = spans.lanes(4) - 3                        # a run ending 3 lanes short of a whole vector

        @numba.njit
        def run(a, out, n):
            spans.copy_run(a[0], a.ctypes.data, a.size - n, out.ctypes.data, 0, n)
            t = np.array([[a.size - n - 3, 3, 3 + n]], dtype=np.intp)
            spans.add_runs(a[0], out.ctypes.data, 40, n + 3, a.ctypes.data, t.ctypes.data, 0, 1, 0)
            spans.add_runs(a[0], a.ctypes.data, a.size - n, n, out.ctypes.data, t.ctypes.data, 0, 0, 0)
        run(a, out, n)
        assert (out[:n] == a[-n:]).all() and (out[43:43 + n] == a[-n:]).all() and out[40:43].sum() == 0
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def _im2col_numpy(x, n, c0, cg, kh, kw, stride, padding, dilation, ho, wo):
    """The definition, with NumPy's padding and strided slices."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x[n, c0:c0 + cg], ((0, 0), (ph, ph), (pw, pw)))
    rows = [xp[c, p * dh:p * dh + sh * (ho - 1) + 1:sh, q * dw:q * dw + sw * (wo - 1) + 1:sw].reshape(-1)
            for c in range(cg) for p in range(kh) for q in range(kw)]
    return np.stack(rows)


# (channels, height, width, kernel, padding, stride, dilation): the Keras CNN's two convolutions, padding,
# a wide image (rows of several vectors), tiny images, 1x1 and 7x7 kernels, mixed strides and dilations
GEOMETRIES = [(32, 13, 13, 3, (0, 0), (1, 1), (1, 1)), (1, 28, 28, 3, (0, 0), (1, 1), (1, 1)),
              (3, 9, 7, 3, (1, 1), (1, 1), (1, 1)), (2, 40, 37, 3, (1, 1), (1, 1), (1, 1)),
              (2, 5, 4, 3, (2, 2), (1, 1), (1, 1)), (2, 33, 18, 1, (0, 0), (1, 1), (1, 1)),
              (2, 7, 7, 7, (3, 3), (1, 1), (1, 1)), (4, 11, 10, 5, (2, 2), (1, 1), (2, 2)),
              (2, 8, 9, 3, (2, 0), (1, 1), (2, 1)), (3, 9, 9, 3, (1, 1), (2, 2), (1, 1)),
              (2, 10, 11, 3, (1, 0), (1, 2), (1, 1))]


def _geometry_args(kernel, padding, stride, dilation, height, width):
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    ho = (height + 2 * ph - dh * (kernel - 1) - 1) // sh + 1
    wo = (width + 2 * pw - dw * (kernel - 1) - 1) // sw + 1
    return (kernel, kernel, sh, sw, ph, pw, dh, dw, ho, wo)


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_im2col_is_the_definition_and_col2im_its_adjoint_in_the_plain_loops_order(geometry, dtype):
    c, height, width, kernel, padding, stride, dilation = geometry
    args = _geometry_args(kernel, padding, stride, dilation, height, width)
    ho, wo = args[-2:]
    rng = np.random.default_rng(height * width)
    x = rng.standard_normal((3, c + 2, height, width)).astype(dtype)
    x[1, 1, 0, :3] = [np.nan, -0.0, np.inf]
    for n, c0 in [(0, 0), (1, 1), (2, 2)]:
        cols = np.full((c * kernel * kernel, ho * wo + 5), 7, dtype=dtype)      # padded columns stay as they were
        columns.im2col(x, n, c0, *args, cols)
        expected = _im2col_numpy(x, n, c0, c, kernel, kernel, stride, padding, dilation, ho, wo)
        assert cols[:, :ho * wo].tobytes() == expected.tobytes() and (cols[:, ho * wo:] == 7).all()
        dcols = rng.standard_normal(cols.shape).astype(dtype)
        dcols[0, 0] = -0.0
        dx = rng.standard_normal(x.shape).astype(dtype)
        dx[n, c0, 0, 0] = -0.0
        plain = dx.copy()
        none = (np.empty((0, spans.TABLE_COLUMNS), dtype=np.intp), np.empty(0, dtype=np.intp))
        columns.col2im(dcols, n, c0, *args, plain, none)                  # an empty plan: the plain loops
        plan = columns.col2im_plan(dcols, *args, dx)
        columns.col2im(dcols, n, c0, *args, dx, plan)
        assert dx.tobytes() == plain.tobytes()
        assert (plan[1].size > 0) == (stride == (1, 1))                    # unit strides took the fast path
        # the adjoint: <im2col(x), dcols> == <x, col2im(dcols)> (in float64, from zeros)
        dz = np.zeros(x.shape)
        columns.col2im(dcols[:, :ho * wo].astype(np.float64).copy(), n, c0, *args, dz,
                       columns.col2im_plan(dcols[:, :ho * wo].astype(np.float64).copy(), *args, dz))
        finite = np.nan_to_num(x[n, c0:c0 + c].astype(np.float64), nan=0.0, posinf=0.0)
        lhs = np.sum(np.nan_to_num(expected.astype(np.float64), nan=0.0, posinf=0.0) * dcols[:, :ho * wo])
        assert np.isclose(lhs, np.sum(finite * dz[n, c0:c0 + c]), rtol=1e-9)


# AVX2's code runs only where the CPU has AVX2 (every machine this project meets has; a runner without it
# tests the generic build alone)
NARROWER = [("generic", None, 16)] + [("haswell", "+avx,+avx2,+fma,+sse4.2", 32)] * bool(
    llvm_binding.get_host_cpu_features().get("avx2"))


@pytest.mark.parametrize("cpu, features, width", NARROWER)
def test_the_vector_paths_give_the_same_bits_compiled_for_narrower_vectors(cpu, features, width, tmp_path):
    """Compiled for another CPU (NUMBA_CPU_NAME, as for a cache shared between machines): 16-byte vectors
    (masked loads and stores done lane by lane) and AVX2's 32-byte ones; col2im's, max_scatter's and
    Winograd's output tiles' vector paths still give the plain loops' bits."""
    script = textwrap.dedent("""
        import numpy as np, kernels
        from kernels import microkernel
        from kernels.conv2d import columns
        rng = np.random.default_rng(0)
        args = (3, 3, 1, 1, 0, 0, 1, 1, 11, 11)
        dcols = rng.standard_normal((32 * 9, 128)).astype(np.float32)
        dx, plain = rng.standard_normal((2, 32, 13, 13)).astype(np.float32), None
        plain = dx.copy()
        columns.col2im(dcols, 1, 0, *args, plain, (np.empty((0, 3), np.intp), np.empty(0, np.intp)))
        columns.col2im(dcols, 1, 0, *args, dx, columns.col2im_plan(dcols, *args, dx))
        same = dx.tobytes() == plain.tobytes()
        for shape in [(2, 3, 26, 26), (2, 3, 11, 11), (1, 2, 6, 41)]:
            x = rng.standard_normal(shape).astype(np.float32)
            geometry = kernels.PoolGeometry(2)
            y, argmax = kernels.pool2d.max_forward(x, geometry, backend="numpy")
            g = rng.standard_normal(y.shape).astype(np.float32)
            same &= (kernels.pool2d.max_scatter(g, x, geometry).tobytes()
                     == kernels.pool2d.max_backward(g, argmax, x.shape, backend="numpy").tobytes())
        from kernels.conv2d import winograd_transforms as wt
        for dtype, t in [(np.float32, 2), (np.float32, 4), (np.float64, 2), (np.float64, 4)]:
            y, bias = rng.standard_normal(t * t * 700).astype(dtype), rng.standard_normal(19).astype(dtype)
            fast, plain = np.zeros((2, 19, 11, 13), dtype)
            wt.output_tiles(y, 700, 5, -(-11 // t), -(-13 // t), bias, True, fast, t)
            wt.output_tiles_plain(y, 700, 5, -(-11 // t), -(-13 // t), bias, True, plain, t)
            same &= fast.tobytes() == plain.tobytes()
        print(microkernel.VECTOR_BYTES, same)
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_CPU_NAME": cpu}
    env.pop("NUMBA_CPU_FEATURES", None)
    if features:
        env["NUMBA_CPU_FEATURES"] = features
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0 and proc.stdout.split() == [str(width), "True"], proc.stderr[-2000:]
