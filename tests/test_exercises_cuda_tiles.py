"""The CUDA lesson's checker (chainrule/exercises/cuda_tiles.py) tells a tiled matrix product from wrong ones.

The kernels run in Numba's CUDA simulator (conftest.py switches it on). A right tiled kernel must pass;
kernels with a classic mistake must fail with the explanation that names it: a missing bounds check, a
tile left stale past the edge, a missing barrier, an element never stored, no tiles at all. The load
counts are held to an independent count: every block, phase and thread enumerated in plain Python.
"""
import re
import sys
import types

import numpy as np
import pytest

pytest.importorskip("numba_cuda", reason="the CUDA exercise needs the cuda extra: pip install 'chainrule[cuda]'")

from numba import cuda, float64  # noqa: E402

from chainrule.exercises import ExerciseError, attempt  # noqa: E402
from chainrule.exercises import cuda_tiles as ct  # noqa: E402
from chainrule.exercises.cuda_tiles import TILE, check_tiled_matmul  # noqa: E402
from kernels.dense.cuda import TILE as DENSE_TILE, accumulate_tile  # noqa: E402


@cuda.jit
def right(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float64)
    sb = cuda.shared.array((TILE, TILE), float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i, j = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    m, inner = a.shape
    n = b.shape[1]
    acc = 0.0
    for t in range((inner + TILE - 1) // TILE):
        k = t * TILE + tx
        sa[ty, tx] = a[i, k] if i < m and k < inner else 0.0
        k = t * TILE + ty
        sb[ty, tx] = b[k, j] if k < inner and j < n else 0.0
        cuda.syncthreads()
        for kk in range(TILE):
            acc += sa[ty, kk] * sb[kk, tx]
        cuda.syncthreads()
    if i < m and j < n:
        c[i, j] = acc


@cuda.jit
def with_a_device_function(a, b, c):
    """Right, its barriers inside the project's own device function (kernels.dense.cuda.accumulate_tile)."""
    sa = cuda.shared.array((TILE, TILE), float64)
    sb = cuda.shared.array((TILE, TILE), float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i, j = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    m, inner = a.shape
    n = b.shape[1]
    acc = 0.0
    for t in range((inner + TILE - 1) // TILE):
        k = t * TILE + tx
        sa[ty, tx] = a[i, k] if i < m and k < inner else 0.0
        k = t * TILE + ty
        sb[ty, tx] = b[k, j] if k < inner and j < n else 0.0
        acc = accumulate_tile(sa, sb, ty, tx, acc)
    if i < m and j < n:
        c[i, j] = acc


@cuda.jit
def unguarded(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float64)
    sb = cuda.shared.array((TILE, TILE), float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i, j = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    acc = 0.0
    for t in range((a.shape[1] + TILE - 1) // TILE):
        sa[ty, tx] = a[i, t * TILE + tx]
        sb[ty, tx] = b[t * TILE + ty, j]
        cuda.syncthreads()
        for kk in range(TILE):
            acc += sa[ty, kk] * sb[kk, tx]
        cuda.syncthreads()
    c[i, j] = acc


@cuda.jit
def stale_tiles(a, b, c):
    """Guards its loads but leaves the tile's old values past the edge (no 0 loaded there)."""
    sa = cuda.shared.array((TILE, TILE), float64)
    sb = cuda.shared.array((TILE, TILE), float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i, j = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    m, inner = a.shape
    n = b.shape[1]
    acc = 0.0
    for t in range((inner + TILE - 1) // TILE):
        if i < m and t * TILE + tx < inner:
            sa[ty, tx] = a[i, t * TILE + tx]
        if t * TILE + ty < inner and j < n:
            sb[ty, tx] = b[t * TILE + ty, j]
        cuda.syncthreads()
        for kk in range(TILE):
            acc += sa[ty, kk] * sb[kk, tx]
        cuda.syncthreads()
    if i < m and j < n:
        c[i, j] = acc


@cuda.jit
def no_barrier(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float64)
    sb = cuda.shared.array((TILE, TILE), float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i, j = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    m, inner = a.shape
    n = b.shape[1]
    acc = 0.0
    for t in range((inner + TILE - 1) // TILE):
        k = t * TILE + tx
        sa[ty, tx] = a[i, k] if i < m and k < inner else 0.0
        k = t * TILE + ty
        sb[ty, tx] = b[k, j] if k < inner and j < n else 0.0
        for kk in range(TILE):
            acc += sa[ty, kk] * sb[kk, tx]
    if i < m and j < n:
        c[i, j] = acc


@cuda.jit
def last_row_never_stored(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float64)
    sb = cuda.shared.array((TILE, TILE), float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i, j = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    m, inner = a.shape
    n = b.shape[1]
    acc = 0.0
    for t in range((inner + TILE - 1) // TILE):
        k = t * TILE + tx
        sa[ty, tx] = a[i, k] if i < m and k < inner else 0.0
        k = t * TILE + ty
        sb[ty, tx] = b[k, j] if k < inner and j < n else 0.0
        cuda.syncthreads()
        for kk in range(TILE):
            acc += sa[ty, kk] * sb[kk, tx]
        cuda.syncthreads()
    if i < m - 1 and j < n:                      # off by one
        c[i, j] = acc


@cuda.jit
def one_thread_per_output(a, b, c):
    j, i = cuda.grid(2)
    if i < c.shape[0] and j < c.shape[1]:
        acc = 0.0
        for k in range(a.shape[1]):
            acc += a[i, k] * b[k, j]
        c[i, j] = acc


def _failure(kernel):
    with pytest.raises(ExerciseError) as info:
        check_tiled_matmul(kernel)
    return info.value.report, str(info.value)


def test_shapes_include_products_that_are_not_a_multiple_of_the_tile():
    assert any(m % TILE or k % TILE or n % TILE for m, k, n in ct.SHAPES)
    assert any(not (m % TILE or k % TILE or n % TILE) for m, k, n in ct.SHAPES)


@pytest.mark.parametrize("kernel", [right, with_a_device_function], ids=["right", "device-function"])
def test_a_right_tiled_kernel_passes(kernel):
    assert DENSE_TILE == TILE            # accumulate_tile's tile: the same size in the simulator
    report = check_tiled_matmul(kernel)
    assert report.passed and report.compared == sum(m * n for m, _, n in ct.SHAPES)
    assert str(report).startswith("tiled_matmul: passed")


def test_the_stub_is_not_attempted():
    assert attempt(check_tiled_matmul, ct.tiled_matmul_kernel).status == "not attempted"


def test_a_missing_bounds_check_is_named_with_the_thread_and_block():
    report, message = _failure(unguarded)
    assert not report.rows and report.problems
    assert "missing bounds check" in message
    assert "out of bounds" in message and re.search(r"thread \(\d, \d\) of block \(\d, \d\)", message)


def test_stale_tiles_past_the_edge_give_wrong_elements_only_in_products_that_are_not_a_multiple():
    report, message = _failure(stale_tiles)
    assert report.wrong > 0 and "tiled_matmul: FAILED" in message
    exact = {ct._NAMES[s] for s, shape in enumerate(ct.SHAPES) if not any(d % TILE for d in shape)}
    assert exact and not {row["gradient"] for row in report.rows} & exact      # (the output's name: ValueReport)
    assert "only the products whose sizes are not a multiple of TILE = 4 are wrong" in message


def test_a_missing_barrier_is_explained():
    _, message = _failure(no_barrier)     # wrong elements, or right by the simulator's luck: named either way
    assert "cuda.syncthreads()" in message


def test_an_element_never_stored_is_named():
    report, message = _failure(last_row_never_stored)
    assert all(np.isnan(row["got"]) for row in report.rows)
    assert "never written (NaN)" in message and "NaN or infinite" not in message
    assert report.wrong == sum(n for _, _, n in ct.SHAPES)        # the last row of each product


def test_a_kernel_without_tiles_is_right_but_fails_on_its_loads():
    _, message = _failure(one_thread_per_output)
    naive = sum(ct.naive_loads(*shape) for shape in ct.SHAPES)
    tiled = sum(ct.tiled_loads(*shape) for shape in ct.SHAPES)
    assert f"made {naive} global loads" in message and f"a tiled one makes {tiled}" in message


def _loads_by_enumeration(m, k, n, tile):
    """The tiled kernel's loads, every block, phase and thread visited: one load where the guard lets it."""
    loads = 0
    for by in range(-(-m // tile)):
        for bx in range(-(-n // tile)):
            for t in range(-(-k // tile)):
                for ty in range(tile):
                    for tx in range(tile):
                        loads += (by * tile + ty < m and t * tile + tx < k) + (t * tile + ty < k and bx * tile + tx < n)
    return loads


@pytest.mark.parametrize("shape", [(8, 8, 8), (6, 5, 7), (9, 4, 5), (1, 1, 1), (12, 3, 17)])
@pytest.mark.parametrize("tile", [1, 2, 4, 5])
def test_the_load_formulas_agree_with_an_enumeration(shape, tile):
    m, k, n = shape
    assert ct.tiled_loads(m, k, n, tile) == _loads_by_enumeration(m, k, n, tile)
    assert ct.naive_loads(m, k, n) == _loads_by_enumeration(m, k, n, 1)
    if m % tile == 0 and n % tile == 0:
        assert ct.tiled_loads(m, k, n, tile) * tile == ct.naive_loads(m, k, n)


def test_the_counters_count_what_the_simulated_kernel_reads():
    a, b = ct.CountingArray(np.ones((6, 5))), ct.CountingArray(np.ones((5, 7)))
    np.testing.assert_array_equal(ct.launch_matmul(right, a, b), np.full((6, 7), 5.0))
    assert (a.loads, b.loads) == (6 * 5 * 2, 5 * 7 * 2)           # 2 block columns, 2 block rows
    a[1:3, 0]                                                       # a slice is as many loads as elements
    assert a.loads == 62


def test_quick_threads_restores_the_switch_interval():
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), ct.quick_threads(1e-4):
        assert sys.getswitchinterval() == pytest.approx(1e-4)
        raise RuntimeError
    assert sys.getswitchinterval() == before


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(TypeError, match="kernel must be a numba.cuda kernel .*got function"):
        check_tiled_matmul(lambda a, b, c: None)
    with pytest.raises(ValueError, match=r"a.shape\[1\] == b.shape\[0\], got shapes \(2, 3\) and \(2, 3\)"):
        ct.launch_matmul(right, np.ones((2, 3)), np.ones((2, 3)))


def test_without_the_simulator_or_a_gpu_the_checker_says_how_to_run(monkeypatch):
    monkeypatch.setattr(ct, "config", types.SimpleNamespace(ENABLE_CUDASIM=0))
    monkeypatch.setattr(ct.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="NUMBA_ENABLE_CUDASIM=1"):
        check_tiled_matmul(right)
