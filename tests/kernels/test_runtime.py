"""kernels.runtime: the process-wide tuning (one thread pool, a fork-safe threading layer, glibc's
malloc), in one place, applied once by the kernels' first call (or by configure), never by importing
kernels and never by nn.fit itself."""
import ctypes
import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

import kernels
from _requires import DEFAULT_LAYER  # tests/_requires.py
from kernels import runtime

ROOT = Path(__file__).resolve().parents[2]
ONE_STEP = "kernels.sgd_update(np.ones(3, np.float32), np.ones(3, np.float32), step=1, lr=0.1)"
BLAS_THREADS = "sorted({i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'})"


def _python(code, **env):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OPENBLAS_THREAD_TIMEOUT", "CHAINRULE_KEEP_MEMORY", "NUMBA_THREADING_LAYER")}
    environment.update(env, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- in a fresh process ----------------------------------------------------------------------------

@pytest.mark.parametrize("imports", ["import kernels, numpy as np", "import numpy as np, kernels"])
def test_whatever_comes_first_every_blas_gets_one_thread_at_the_first_kernel_call(imports):
    code = (f"import os, threadpoolctl\n{imports}\n"
            f"before = {BLAS_THREADS}\n"
            "untouched = not kernels.runtime.status().configured and 'OPENBLAS_THREAD_TIMEOUT' not in os.environ\n"
            f"{ONE_STEP}\n"
            "s = kernels.runtime.status()\n"
            f"print(untouched, max(before) > 1, {BLAS_THREADS}, s.blas_single_threaded, s.threading_layer)")
    # (this machine has 2 cores: BLAS starts with 2 threads; the kernels' first call leaves one)
    assert _python(code) == f"True True [1] True {DEFAULT_LAYER}"


def test_configure_can_undo_the_blas_limit():
    code = ("import numpy as np, threadpoolctl, kernels\n"
            f"before = {BLAS_THREADS}\n{ONE_STEP}\n"
            "kernels.runtime.configure(limit_blas=False)\n"
            f"print({BLAS_THREADS} == before, kernels.runtime.status().blas_single_threaded)")
    assert _python(code) == "True False"


def test_a_threading_layer_the_user_chose_is_kept():
    code = f"import numpy as np, kernels\n{ONE_STEP}\nprint(kernels.runtime.status().threading_layer)"
    assert _python(code, NUMBA_THREADING_LAYER="omp") == "omp"


FORK_POOL = """
import multiprocessing as mp, sys
import numpy as np, kernels
if "no-tbb" in sys.argv:                                    # as on a machine without TBB's library
    kernels.runtime.TBB_LIBRARY = "no-such-libtbb.so"

def work(seed):
    x = np.random.default_rng(seed).random((2, 3, 9, 9), dtype=np.float32)
    return float(kernels.conv2d_forward(x, np.ones((4, 3, 3, 3), np.float32)).sum())

if __name__ == "__main__":
    parent = [work(s) for s in range(4)]                     # the parallel kernels ran in this process
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        children = pool.map_async(work, range(4)).get(timeout=60)
    print(children == parent, kernels.runtime.status().threading_layer)
"""


def _pool(tmp_path, *arguments):
    """FORK_POOL's output, run in a fresh process (no layer chosen by the environment)."""
    script = tmp_path / "pool.py"
    script.write_text(FORK_POOL)
    environment = {k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER", "LD_LIBRARY_PATH")}
    environment["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, str(script), *arguments], capture_output=True, text=True,
                            env=environment, cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_process_pool_started_after_a_kernel_call_finishes(tmp_path, start_method):
    """With GNU OpenMP (Numba's default here) a fork()ed child is killed at its first parallel loop."""
    assert _pool(tmp_path, start_method) == f"True {DEFAULT_LAYER}"


def test_without_tbb_the_kernels_run_on_numbas_fork_safe_workqueue(tmp_path):
    """Where TBB's library cannot be found (another platform, or a C library without it), the first
    kernel call picks Numba's workqueue layer, which is fork-safe too: a fork pool still finishes."""
    assert _pool(tmp_path, "fork", "no-tbb") == "True workqueue"


def test_malloc_is_tuned_at_the_first_kernel_call_unless_chainrule_keep_memory_is_0():
    code = ("import kernels, numpy as np\n"
            "first = kernels.runtime.status().freed_memory_kept\n"
            f"{ONE_STEP}\n"
            "print(first, kernels.runtime.status().freed_memory_kept)")
    assert _python(code) == "False True"              # glibc (Debian): mallopt exists
    assert _python(code, CHAINRULE_KEEP_MEMORY="0") == "False False"
    refused = "import kernels, numpy as np\nkernels.runtime.configure(keep_freed_memory=False)\n" + \
              f"{ONE_STEP}\nprint(kernels.runtime.status().freed_memory_kept)"
    assert _python(refused) == "False"                # refused before the first call: never done


# --- in this process, with the process-wide calls replaced by counters ----------------------------

@pytest.fixture
def fresh(monkeypatch):
    """A runtime that has done nothing yet, with the C library's mallopt and threadpoolctl replaced
    by counters (other libraries load as usual)."""
    calls = {"mallopt": 0, "limit": 0, "restore": 0}
    real_cdll = ctypes.CDLL

    class Libc:
        def __init__(self):
            self.mallopt = self

        def __call__(self, parameter, value):
            calls["mallopt"] += 1
            return 1

    def cdll(name, *args, **kwargs):
        return Libc() if name in (ctypes.util.find_library("c"), "libc.so.6") else real_cdll(name, *args, **kwargs)

    class Limiter:
        def __init__(self, limits, user_api):
            assert (limits, user_api) == (1, "blas")
            calls["limit"] += 1

        def restore_original_limits(self):
            calls["restore"] += 1

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", Limiter)
    monkeypatch.delenv("CHAINRULE_KEEP_MEMORY", raising=False)
    monkeypatch.setattr(runtime, "_state", runtime._State())
    return calls


def test_configure_is_idempotent(fresh):
    first = runtime.configure()
    assert runtime.configure() == first == runtime.status()
    runtime.ensure_configured()
    assert first == runtime.Tuning(blas_single_threaded=True, threading_layer=first.threading_layer,
                                   freed_memory_kept=True, configured=True)
    assert fresh == {"mallopt": len(runtime.MALLOC_SETTINGS), "limit": 1, "restore": 0}   # each done once
    runtime.configure(limit_blas=False)
    runtime.configure(limit_blas=False)
    assert fresh["restore"] == 1 and not runtime.status().blas_single_threaded


def test_the_first_kernel_call_configures_once(fresh):
    assert not runtime.status().configured
    for step in (1, 2, 3):
        kernels.sgd_update(np.ones(3, np.float32), np.ones(3, np.float32), step=step, lr=0.1, backend="numpy")
    assert runtime.status().configured and fresh["mallopt"] == len(runtime.MALLOC_SETTINGS) and fresh["limit"] == 1


def test_chainrule_keep_memory_0_leaves_malloc_alone(fresh, monkeypatch):
    monkeypatch.setenv("CHAINRULE_KEEP_MEMORY", "0")
    assert not runtime.configure().freed_memory_kept and fresh["mallopt"] == 0


def _tiny_fit():
    import nn

    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    model = nn.Sequential([nn.Input((2,)), nn.Dense(3, activation="softmax")])
    nn.fit(model, (x, (x[:, 0] > 0).astype(np.int64)), epochs=1, batch_size=8, verbose=0, seed=0)


def test_fit_does_not_tune_the_process_itself_the_kernels_do(monkeypatch):
    calls = []

    def counting_configure(**options):
        calls.append(options)
        runtime._state.configured = True
        return runtime.status()

    monkeypatch.setattr(runtime, "configure", counting_configure)
    monkeypatch.setattr(runtime, "_state", runtime._State())
    runtime._state.configured = True                  # already configured: fit must not call it again
    _tiny_fit()
    assert calls == []
    runtime._state.configured = False                 # not yet: the first kernel call (not fit) does it, once
    _tiny_fit()
    _tiny_fit()
    assert calls == [{}]
