"""kernels.runtime: the process-wide tuning (OpenBLAS's idle threads, glibc's malloc), in one place,
applied once by the kernels' first call (or by configure), and never by nn.fit itself."""
import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

import kernels
from kernels import runtime

ROOT = Path(__file__).resolve().parents[2]
ONE_STEP = "kernels.sgd_update(np.ones(3, np.float32), np.ones(3, np.float32), step=1, lr=0.1)"
BLAS_THREADS = "sorted({i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'})"


def _python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "CHAINRULE_KEEP_MEMORY")}
    environment.update(env, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- in a fresh process ----------------------------------------------------------------------------

def test_importing_kernels_first_sets_the_openblas_timeout_and_blas_keeps_its_threads():
    code = ("import os, kernels, numpy as np, threadpoolctl\n"
            f"before = {BLAS_THREADS}\n{ONE_STEP}\n"
            f"s = kernels.runtime.status()\n"
            f"print(os.environ['OPENBLAS_THREAD_TIMEOUT'], s.blas_timeout, s.blas_single_threaded, "
            f"{BLAS_THREADS} == before)")
    assert _python(code) == "4 True False True"


def test_a_user_setting_of_the_timeout_is_kept():
    assert _python("import os, kernels; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])",
                   OPENBLAS_THREAD_TIMEOUT="7") == "7"


def test_numpy_first_limits_blas_to_one_thread_at_the_first_kernel_call_and_configure_can_undo_it():
    code = ("import os, numpy as np, threadpoolctl, kernels\n"
            f"before = {BLAS_THREADS}\n"
            f"untouched = kernels.runtime.status().configured is False and {BLAS_THREADS} == before\n"
            f"{ONE_STEP}\n"
            f"limited = {BLAS_THREADS}\n"
            "kernels.runtime.configure(limit_blas=False)\n"
            f"print(kernels.runtime.status().blas_timeout, 'OPENBLAS_THREAD_TIMEOUT' in os.environ, untouched, "
            f"limited, {BLAS_THREADS} == before)")
    assert _python(code) == "False False True [1] True"


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
    """A runtime that has done nothing yet (as if NumPy came first), with mallopt and threadpoolctl
    replaced by counters."""
    calls = {"mallopt": 0, "limit": 0, "restore": 0}

    class Libc:
        def __init__(self, name):
            self.mallopt = self

        def __call__(self, parameter, value):
            calls["mallopt"] += 1
            return 1

    class Limiter:
        def __init__(self, limits, user_api):
            assert (limits, user_api) == (1, "blas")
            calls["limit"] += 1

        def restore_original_limits(self):
            calls["restore"] += 1

    monkeypatch.setattr(ctypes, "CDLL", Libc)
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", Limiter)
    monkeypatch.delenv("CHAINRULE_KEEP_MEMORY", raising=False)
    monkeypatch.setattr(runtime, "_state", runtime._State())
    return calls


def test_configure_is_idempotent(fresh):
    first = runtime.configure()
    assert runtime.configure() == first == runtime.status()
    runtime.ensure_configured()
    assert first == runtime.Tuning(blas_timeout=False, blas_single_threaded=True, freed_memory_kept=True,
                                   configured=True)
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
