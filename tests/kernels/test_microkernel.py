"""kernels.microkernel.gemm: the convolutions' products, held to float64 products, to the order of its
sums (one fused multiply-add after another), and to its layouts and edges."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernels import microkernel
from kernels.microkernel import gemm

ROOT = Path(__file__).resolve().parents[2]
WIDTH32 = microkernel.VECTOR_BYTES // 4

# shapes around every edge: fewer rows than a block, columns not whole vectors, one vector, many,
# an inner dimension longer than DEPTH (several chunks), the convolutions' own shapes
SHAPES = [(1, 1, 1), (3, 2, 5), (4, 3, 16), (5, 7, 19), (9, 4, WIDTH32 - 1), (17, 5, 2 * WIDTH32),
          (8, 33, 3 * WIDTH32 + 1), (72, 32, 64), (49, 64, 32), (64, 288, 121), (13, 2 * microkernel.DEPTH + 3, 70)]


def fma_reference(a, b, c0):
    """c0 + a @ b summed as gemm promises: k in order, one float32 fused multiply-add at a time (the
    product of two float32 is exact in float64, and so is adding a float32 to it here; then rounded)."""
    c = c0.astype(np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    for k in range(a.shape[1]):
        c = (np.outer(a64[:, k], b64[k]) + c.astype(np.float64)).astype(np.float32)
    return c


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_matches_the_float64_product_within_the_error_of_its_sums(shape, dtype):
    m, k, n = shape
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype=dtype)
    gemm(a, b, c, False)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = k * np.finfo(dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))  # gamma_k |a||b|
    assert c.dtype == dtype and np.all(np.abs(c - exact) <= bound)


@pytest.mark.parametrize("shape", [(5, 7, 19), (8, 33, 3 * WIDTH32 + 1), (49, 64, 32), (13, 300, 70)])
def test_gemm_sums_in_order_one_fused_multiply_add_at_a_time(shape):
    """Bit for bit the sequential float32 FMA sum, from zero and accumulating: so the result does not
    depend on where an entry falls in the blocks or padding (this is what keeps the kernels bitwise
    reproducible). A plain float32 dot product in order, rounded after each multiply, differs."""
    m, k, n = shape
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    start = rng.standard_normal((m, n)).astype(np.float32)
    c = np.empty((m, n), np.float32)
    gemm(a, b, c, False)
    np.testing.assert_array_equal(c, fma_reference(a, b, np.zeros((m, n), np.float32)))
    acc = start.copy()
    gemm(a, b, acc, True)
    np.testing.assert_array_equal(acc, fma_reference(a, b, start))
    rounded = np.zeros((m, n), np.float32)
    for step in range(k):
        rounded = rounded + np.outer(a[:, step], b[step]).astype(np.float32)
    assert not np.array_equal(c, rounded)           # the reference above is not just any order of sums


def test_gemm_reads_a_through_its_strides_and_writes_only_c():
    rng = np.random.default_rng(1)
    at = rng.standard_normal((40, 23)).astype(np.float32)          # a = at.T, (23, 40), a strided view
    b = rng.standard_normal((40, 37)).astype(np.float32)
    big = np.full((30, 50), 7.0, np.float32)
    c = big[2:25, 3:40]                                            # c: rows contiguous, inside a larger array
    gemm(at.T, b, c, False)
    np.testing.assert_array_equal(c, fma_reference(np.ascontiguousarray(at.T), b, np.zeros((23, 37), np.float32)))
    outside = np.ones(big.shape, bool)
    outside[2:25, 3:40] = False
    assert np.all(big[outside] == 7.0)                             # padding and tails wrote nothing else
    b_view = rng.standard_normal((40, 80)).astype(np.float32)[:, 5:42]   # b: rows contiguous, strided
    c2 = np.empty((23, 37), np.float32)
    gemm(at.T, b_view, c2, False)
    np.testing.assert_array_equal(c2, fma_reference(np.ascontiguousarray(at.T), np.ascontiguousarray(b_view),
                                                    np.zeros((23, 37), np.float32)))


def test_gemm_with_an_empty_inner_dimension_sets_or_keeps_c():
    a, b = np.empty((3, 0), np.float32), np.empty((0, 20), np.float32)
    c = np.full((3, 20), 5.0, np.float32)
    gemm(a, b, c, True)
    assert np.all(c == 5.0)
    gemm(a, b, c, False)
    assert np.all(c == 0.0)


@pytest.mark.parametrize("a_shape, b_shape, c_shape, named", [((3, 4), (5, 6), (3, 6), "b must have"),
                                                                ((3, 4), (4, 6), (3, 7), "c must be"),
                                                                ((3, 4), (4, 6), (2, 6), "c must be")])
def test_gemm_refuses_shapes_that_do_not_match(a_shape, b_shape, c_shape, named):
    c = np.zeros(c_shape, np.float32)
    with pytest.raises(ValueError, match=f"shapes do not match: {named}"):
        gemm(np.ones(a_shape, np.float32), np.ones(b_shape, np.float32), c, False)
    assert np.all(c == 0)


def test_gemm_refuses_columns_that_are_not_contiguous():
    b = np.ones((4, 12), np.float32)[:, ::2]
    with pytest.raises(ValueError, match="contiguous rows"):
        gemm(np.ones((3, 4), np.float32), b, np.zeros((3, 6), np.float32), False)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="reads x86 machine code")
def test_the_block_is_vector_fused_multiply_adds_on_registers(tmp_path):
    """The compiled blocks (in the float32 panel's C function) are what the docstring says: vector FMAs
    (zmm with AVX-512, ymm with AVX2). Compiled afresh (Numba keeps no machine code of a cached function)."""
    code = subprocess.run(
        [sys.executable, "-c", "import numpy as np\nfrom kernels import microkernel as m\n"
         "a = np.ones((64, 32), np.float32); b = np.ones((32, 64), np.float32); c = np.empty((64, 64), np.float32)\n"
         "m.gemm(a, b, c, False)\nprint(m._PANELS[m.types.float32][0]._library.get_asm_str())"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}).stdout
    register = {64: "zmm", 32: "ymm", 16: "xmm"}[microkernel.VECTOR_BYTES]
    assert sum(1 for line in code.splitlines() if "vfmadd" in line and register in line) >= 16


def test_gemm_compiled_for_a_generic_cpu_gives_the_same_bits(tmp_path):
    """With Numba told to compile for a generic x86-64 CPU (NUMBA_CPU_NAME, as for a cache shared
    between machines) the blocks are 16-byte vectors, and the sums are still the FMAs in order."""
    script = ("import numpy as np\nfrom kernels import microkernel as m\n"
              "rng = np.random.default_rng(3)\na = rng.standard_normal((13, 40)).astype(np.float32)\n"
              "b = rng.standard_normal((40, 37)).astype(np.float32)\nc = np.empty((13, 37), np.float32)\n"
              "m.gemm(a, b, c, False)\nnp.save(__import__('sys').argv[1], c)\nprint(m.VECTOR_BYTES)")
    out = tmp_path / "c.npy"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_CPU_NAME": "generic"}
    env.pop("NUMBA_CPU_FEATURES", None)
    proc = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT, capture_output=True, text=True,
                          env=env, check=True)
    assert proc.stdout.strip() == "16"
    rng = np.random.default_rng(3)
    a = rng.standard_normal((13, 40)).astype(np.float32)
    b = rng.standard_normal((40, 37)).astype(np.float32)
    np.testing.assert_array_equal(np.load(out), fma_reference(a, b, np.zeros((13, 37), np.float32)))


def test_the_panels_load_from_the_cache_in_a_new_process(tmp_path):
    """The float32 and float64 panels are compiled at import: the first process compiles and saves them,
    the next loads them (kernels._cache's cfunc stamps the cache as its njit does)."""
    script = ("from kernels import microkernel as m\n"
              "print(sum(p.cache_hits for p, _ in m._PANELS.values()), len(m._PANELS))")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env,
                           check=True).stdout.split() for _ in range(2)]
    assert runs == [["0", "2"], ["2", "2"]]


def test_a_kernel_calling_gemm_links_a_call_not_the_blocks(tmp_path):
    """A compiled caller of gemm calls the panel's C function by name (so a cold cache compiles the
    blocks once, not once per kernel), and a cached caller finds it again in a new process."""
    script = ("import numpy as np\nfrom kernels import microkernel as m\nfrom kernels._cache import njit\n"
              "@njit(cache=True)\ndef twice(a, b, c):\n    m.gemm(a, b, c, False)\n    m.gemm(a, b, c, True)\n"
              "a = np.ones((8, 3), np.float32); b = np.ones((3, 64), np.float32); c = np.empty((8, 64), np.float32)\n"
              "twice(a, b, c)\nllvm = list(twice.inspect_llvm().values())[0] if not twice.stats.cache_hits else ''\n"
              "print(c[7, 63], 'fma' in llvm, 'chainrule_microkernel_panel_float32' in llvm,\n"
              "      sum(twice.stats.cache_hits.values()))")
    (tmp_path / "caller.py").write_text(script)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, str(tmp_path / "caller.py")], cwd=tmp_path, capture_output=True, text=True,
                           env=env, check=True).stdout.split() for _ in range(2)]
    assert runs == [["6.0", "False", "True", "0"], ["6.0", "False", "False", "1"]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aligned_empty_starts_each_array_on_a_cache_line_and_gives_distinct_memory(dtype):
    from numba import njit

    @njit
    def two(rows, cols, like):
        first = microkernel.aligned_empty(rows, cols, like)
        second = microkernel.aligned_empty(rows, cols, like)
        first[:, :] = 1
        second[:, :] = 2
        return first, second

    for rows, cols in [(1, 1), (3, 5), (7, 16), (64, 128)]:
        first, second = two(rows, cols, np.zeros(1, dtype))
        for a in (first, second):
            assert a.shape == (rows, cols) and a.dtype == dtype and a.flags.c_contiguous
            assert a.ctypes.data % microkernel.ALIGN == 0
        assert (first == 1).all() and (second == 2).all()        # neither wrote into the other
