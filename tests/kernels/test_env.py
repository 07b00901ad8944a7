"""kernels._env: BLAS threading set up before NumPy loads, or limited afterwards; malloc reuse."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    environment.update(env, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_kernels_first_sets_the_openblas_timeout():
    out = _python("import os, kernels; from kernels import _env; "
                  "print(os.environ['OPENBLAS_THREAD_TIMEOUT'], _env.ARRANGED, type(_env.blas_guard()).__name__)")
    assert out == "4 True nullcontext"


def test_numpy_first_limits_blas_to_one_thread_inside_the_guard():
    code = ("import numpy, threadpoolctl, kernels; from kernels import _env\n"
            "with _env.blas_guard():\n"
            "    inside = {i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'}\n"
            "print(_env.ARRANGED, 'OPENBLAS_THREAD_TIMEOUT' in __import__('os').environ, sorted(inside))")
    assert _python(code) == "False False [1]"


def test_keep_freed_memory_takes_effect_once_and_can_be_switched_off():
    code = "from kernels import _env; print(_env.keep_freed_memory(), _env.keep_freed_memory())"
    assert _python(code) == "True True"              # glibc (Debian): mallopt exists
    assert _python(code, CHAINRULE_KEEP_MEMORY="0") == "False False"
