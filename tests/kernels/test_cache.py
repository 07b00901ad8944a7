"""The kernels' Numba cache is invalidated by a change to any file of the package (kernels/_cache.py).

A package of three files is written to a temporary folder: ``callee.py`` with a jitted function,
``caller.py`` calling it through ``njit_for(package)(cache=True)``, and ``plain.py`` calling it
through Numba's own ``njit(cache=True)``. Each run is a fresh process that loads from the cache.
After ``callee.py`` changes, Numba's own cache still runs the old callee (the hazard, shown so
that the test could fail), and ours recompiles.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kernels import _cache
from kernels.conv2d import columns as conv_columns
from kernels.optim import cpu as optim_cpu
from kernels.pool2d import cpu as pool_cpu

CALLER = """
from pathlib import Path
from kernels._cache import njit_for
from . import callee

@njit_for(Path(__file__).parent)(cache=True)
def value():
    return callee.value() + 0
"""
PLAIN = """
from numba import njit
from . import callee

@njit(cache=True)
def value():
    return callee.value() + 0
"""
CALLEE = """
from numba import njit

@njit
def value():
    return {number}
"""
RUN = "import stamped.caller as c, stamped.plain as p; print(c.value(), p.value())"


def _package(root, number):
    package = root / "stamped"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "caller.py").write_text(textwrap.dedent(CALLER))
    (package / "plain.py").write_text(textwrap.dedent(PLAIN))
    (package / "callee.py").write_text(textwrap.dedent(CALLEE.format(number=number)))


def _run(root, cache_dir):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.getcwd()]))
    env.pop("NUMBA_CACHE_DIR", None)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    result = subprocess.run([sys.executable, "-c", RUN], cwd=root, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


@pytest.mark.parametrize("where", ["__pycache__", "NUMBA_CACHE_DIR"])
def test_a_change_to_a_callee_s_file_recompiles_the_caller(tmp_path, where):
    cache_dir = tmp_path / "numba-cache" if where == "NUMBA_CACHE_DIR" else None
    _package(tmp_path, 1)
    assert _run(tmp_path, cache_dir) == ["1", "1"]
    assert _run(tmp_path, cache_dir) == ["1", "1"]        # now from the caches
    cached = cache_dir if cache_dir is not None else tmp_path / "stamped" / "__pycache__"
    assert any(p.name.startswith("caller.value") for p in cached.rglob("*.nbi"))
    _package(tmp_path, 2345)                                # only callee.py changes
    assert _run(tmp_path, cache_dir) == ["2345", "1"]     # ours recompiled; Numba's own is stale


def test_the_stamp_follows_every_file_of_the_package(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 1\n")
    before = _cache.package_stamp(tmp_path)
    _cache.package_stamp.cache_clear()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    assert _cache.package_stamp(tmp_path) != before
    _cache.package_stamp.cache_clear()


def test_the_kernels_cached_functions_use_the_package_stamp():
    for dispatcher in (conv_columns.im2col, pool_cpu._max_forward_2x2, optim_cpu._adam_kernel):
        assert type(dispatcher._cache).__name__ == "PackageFunctionCache", dispatcher
        assert dispatcher._cache._impl.locator.get_source_stamp() == _cache.package_stamp(_cache.PACKAGE)


def test_njit_keeps_numbas_behaviour_without_cache_and_used_bare():
    @_cache.njit
    def bare(x):
        return x + 1

    @_cache.njit(fastmath=False)
    def uncached(x):
        return x * 2

    assert bare(1) == 2 and uncached(np.float32(3)) == 6
    assert bare._cache.__class__.__name__ == "NullCache" and uncached._cache.__class__.__name__ == "NullCache"
