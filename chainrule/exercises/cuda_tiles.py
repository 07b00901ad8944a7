"""The exercise of the CUDA lesson (``tutorials/kernels_03_cuda_tiles.py``): a tiled matrix product, checked.

You write a numba.cuda kernel ``kernel(a, b, c)`` that sets c = a @ b with TILE x TILE tiles of a and b
in shared memory (``cuda.shared.array``, ``cuda.syncthreads``); ``launch_matmul`` launches it, one
thread per element of c: ``threadIdx.x`` and ``blockIdx.x`` along the columns, ``.y`` along the rows.
``check_tiled_matmul(kernel)`` runs it in Numba's CUDA simulator on a few small products, some of them
not a multiple of TILE, and holds every element to ``np.matmul`` (the tolerances and the report of
:mod:`chainrule.exercises.checking`). Because the simulator runs the kernel as Python, the checker also

- turns a read or write outside an array (a missing bounds check: on a GPU, a silent wrong value or a
  crash) into a sentence naming the thread and the block;
- counts the global-memory loads of a and b (it passes them as arrays that count their reads) and holds
  them to a tiled kernel's: every element of a loaded once per block column, of b once per block row;
- reads the kernel's source for ``cuda.syncthreads()``: a kernel with shared tiles and no barrier may
  pass in the simulator by the luck of its thread schedule and fail on a GPU.

On a GPU (no simulator) the products are checked, but the loads are not counted.

>>> from chainrule.exercises.cuda_tiles import check_tiled_matmul, tiled_matmul_kernel
>>> from chainrule.exercises import attempt
>>> attempt(check_tiled_matmul, tiled_matmul_kernel).status
'not attempted'
"""
from __future__ import annotations

import ast
import contextlib
import inspect
import re
import sys
import textwrap
import threading

import numpy as np

from kernels.backend import INSTALL_CUDA, cuda_import_error

from .checking import ExerciseError
from .values import ValueExercise, ValueReport

if (_why := cuda_import_error()) is not None:      # numba-cuda is the `cuda` extra
    raise ImportError(f"chainrule.exercises.cuda_tiles needs the cuda extra ({_why}): {INSTALL_CUDA}")

from numba import config, cuda  # noqa: E402  (numba-cuda's, checked just above)

from kernels._cudasim import fix_shared_arrays  # noqa: E402

fix_shared_arrays()                                 # the simulator's shared arrays, allocated once per block

__all__ = ["TILE", "SHAPES", "launch_matmul", "tiled_matmul_kernel", "check_tiled_matmul", "CountingArray",
           "naive_loads", "tiled_loads", "quick_threads"]

#: The tiles' side: TILE x TILE threads per block, TILE x TILE tiles of a and b in shared memory.
TILE = 4
#: The products (M, K, N) the checker runs: a (M, K) @ b (K, N). Two are not multiples of TILE.
SHAPES = ((8, 8, 8), (6, 5, 7), (9, 4, 5))


def naive_loads(m: int, k: int, n: int) -> int:
    """Global loads of one thread per output, each reading a row of a and a column of b: 2 M N K.

    >>> naive_loads(8, 8, 8)
    1024
    """
    return 2 * m * n * k


def tiled_loads(m: int, k: int, n: int, tile: int = TILE) -> int:
    """Global loads of the tiled kernel: each element of a once per block column, of b once per block row.

    With M, N multiples of ``tile`` that is naive_loads / tile.

    >>> tiled_loads(8, 8, 8), naive_loads(8, 8, 8) // TILE
    (256, 256)
    """
    return m * k * -(-n // tile) + k * n * -(-m // tile)


class CountingArray:
    """A NumPy array that counts its element reads (thread-safe): the simulator hands it to a kernel
    as it is, so every ``a[i, k]`` the kernel executes is one global load counted."""

    def __init__(self, array):
        self.array = np.asarray(array)
        self.shape, self.dtype, self.ndim = self.array.shape, self.array.dtype, self.array.ndim
        self.size = self.array.size
        self.loads = 0
        self._lock = threading.Lock()

    def __getitem__(self, index):
        value = self.array[index]
        with self._lock:
            self.loads += np.size(value)
        return value

    def __setitem__(self, index, value):
        self.array[index] = value

    def __len__(self):
        return len(self.array)


@contextlib.contextmanager
def quick_threads(interval: float = 1e-4):
    """Python's thread switch interval shortened while simulated kernels run, then restored.

    The simulator runs each thread of a block as a Python thread and waits at ``syncthreads`` until
    all of them arrive; by default Python lets a thread run 5 ms before handing over, a long wait for
    threads that each do a few multiplications. Nothing else changes."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def launch_matmul(kernel, a, b, tile: int = TILE):
    """c = a @ b by ``kernel(a, b, c)``: a grid of ceil(N/tile) x ceil(M/tile) blocks of tile x tile
    threads (x along the columns of c, y along its rows); c starts as NaN, so an element no thread
    writes shows. ``a`` and ``b`` may be CountingArrays (in the simulator)."""
    _check_kernel(kernel)
    if len(a.shape) != 2 or len(b.shape) != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"a and b must be matrices with a.shape[1] == b.shape[0], got shapes {a.shape} and {b.shape}")
    m, n = a.shape[0], b.shape[1]
    c = np.full((m, n), np.nan)
    grid = (-(-n // tile), -(-m // tile))
    with quick_threads():
        kernel[grid, (tile, tile)](a, b, c)
    return c


def _check_kernel(kernel):
    if not hasattr(kernel, "py_func"):
        raise TypeError(f"kernel must be a numba.cuda kernel (a function decorated with @cuda.jit), "
                        f"got {type(kernel).__name__}")


@cuda.jit
def tiled_matmul_kernel(a, b, c):
    """The stub: c[i, j] = sum_k a[i, k] b[k, j] with TILE x TILE tiles of a and b in shared memory."""
    raise NotImplementedError("write the tiled matrix product")


def _inputs(rng):
    arrays = {}
    for s, (m, k, n) in enumerate(SHAPES):
        arrays[f"a{s}"] = rng.uniform(-1, 1, (m, k))
        arrays[f"b{s}"] = rng.uniform(-1, 1, (k, n))
    return arrays


def _products(**arrays):
    return tuple(np.matmul(arrays[f"a{s}"], arrays[f"b{s}"]) for s in range(len(SHAPES)))


_NAMES = tuple(f"c ({m}x{k} @ {k}x{n})" for m, k, n in SHAPES)
_EXACT = tuple(name for name, shape in zip(_NAMES, SHAPES) if not any(d % TILE for d in shape))
MATMUL = ValueExercise("tiled_matmul", tuple(n for s in range(len(SHAPES)) for n in (f"a{s}", f"b{s}")), _NAMES,
                       _products, _inputs)


def _source_mentions(kernel, name, seen=None):
    """How often the kernel's source names ``<x>.<name>`` (``cuda.syncthreads``, ``cuda.shared``), the device
    functions it calls included."""
    function = getattr(kernel, "py_func", kernel)
    seen = set() if seen is None else seen
    if function in seen:
        return 0
    seen.add(function)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return 0
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == name:
            count += 1
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            callee = function.__globals__.get(node.func.id)
            if callee is not None and hasattr(callee, "py_func"):
                count += _source_mentions(callee, name, seen)
    return count


def _thread_and_block(message):
    """'thread (x, y) of block (x, y)' from the simulator's 'tid=[x, y, 0] ctaid=[x, y, 0]: ...'."""
    found = re.search(r"tid=\[(\d+), (\d+), \d+\] ctaid=\[(\d+), (\d+), \d+\]", message)
    return f"thread ({found[1]}, {found[2]}) of block ({found[3]}, {found[4]})" if found else "a thread"


def _problem(message):
    return ExerciseError(ValueReport(MATMUL.name, passed=False, problems=[message]))


def check_tiled_matmul(kernel):
    """Check ``kernel(a, b, c)`` (a numba.cuda kernel) against np.matmul on SHAPES, launched by launch_matmul."""
    _check_kernel(kernel)
    simulated = bool(config.ENABLE_CUDASIM)
    if not simulated and not cuda.is_available():
        raise RuntimeError("check_tiled_matmul runs kernels in Numba's CUDA simulator: set NUMBA_ENABLE_CUDASIM=1 "
                           "before numba is imported (or run it on a machine with a CUDA GPU)")
    counted = []

    def student(*arrays):
        results = []
        for s in range(0, len(arrays), 2):
            a, b = (CountingArray(x) for x in arrays[s:s + 2]) if simulated else arrays[s:s + 2]
            counted.append((a, b))
            results.append(launch_matmul(kernel, a, b))
        return tuple(results)

    try:
        report = MATMUL.check(student)
    except IndexError as err:
        raise _problem(f"{_thread_and_block(str(err))} read or wrote outside an array ({str(err).split(': ')[-1]}): "
                       f"a missing bounds check? With sizes that are not a multiple of TILE = {TILE}, the last tiles "
                       f"run past the matrices: load 0 into the tile there, and store only inside c") from None
    except ExerciseError as err:
        hints, rows = err.report.hints, err.report.rows
        if any(np.isnan(row["got"]) for row in rows):
            hints[:] = [h for h in hints if "NaN" not in h]
            hints.append("Hint: some elements of c were never written (NaN): does every element have a thread "
                         "that stores it?")
        elif rows and not {row["gradient"] for row in rows} & set(_EXACT):
            hints.append(f"Hint: only the products whose sizes are not a multiple of TILE = {TILE} are wrong: where "
                         f"a tile runs past the matrices, does the kernel load 0 into it?")
        barriers = _source_mentions(kernel, "syncthreads")
        if barriers < 2:
            hints.append(f"Hint: the kernel calls cuda.syncthreads() {barriers} time(s): the block must wait after "
                         f"loading the tiles (before any thread reads them) and again after using them (before "
                         f"the next phase overwrites them).")
        raise ExerciseError(err.report) from None
    if simulated:
        loads = sum(x.loads for pair in counted for x in pair)
        expected = sum(tiled_loads(*shape) for shape in SHAPES)
        if loads != expected:
            naive = sum(naive_loads(*shape) for shape in SHAPES)
            raise _problem(f"the products are right, but the kernel made {loads} global loads of a and b where a "
                           f"tiled one makes {expected} (each element of a once per block column, of b once per "
                           f"block row; one thread per output reading its row and column makes {naive}): does it "
                           f"read a and b from the shared tiles in the inner loop?")
    if _source_mentions(kernel, "shared") and not _source_mentions(kernel, "syncthreads"):
        raise _problem("the products are right here by the luck of the simulator's thread schedule: the kernel "
                       "shares tiles between threads and never calls cuda.syncthreads(), so on a GPU a thread "
                       "may read a tile before the others have written it")
    return report
