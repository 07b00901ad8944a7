"""kernels.runtime: the kernels arrange their own threads, never the user's. Every BLAS runs on one
thread inside the kernels' calls (and nn.fit's steps) and has its own count back after; importing
kernels or nn changes nothing; Numba's threading layer is fork-safe; malloc tuning is opt-in."""
import ast
import ctypes
import ctypes.util
import importlib
import inspect
import os
import re
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS the kernels load: here before a test counts)
import threadpoolctl

import kernels
from _requires import DEFAULT_LAYER  # tests/_requires.py
from kernels import runtime

ROOT = Path(__file__).resolve().parents[2]
ONE_STEP = "kernels.sgd_update(np.ones(3, np.float32), np.ones(3, np.float32), step=1, lr=0.1)"


def blas_threads():
    """{library file: its thread count} for every BLAS library loaded."""
    return {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}


def _python(code, **env):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OPENBLAS_THREAD_TIMEOUT", "CHAINRULE_KEEP_MEMORY", "NUMBA_THREADING_LAYER")}
    environment.update(env, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


# --- in a fresh process ----------------------------------------------------------------------------

TRAINING = """
import numpy as np, scipy.linalg, threadpoolctl                       # the user's NumPy and SciPy
def counts():
    return {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
threadpoolctl.threadpool_limits(limits=THREADS, user_api="blas")       # the user's own setting
before = counts()
import nn, autodiff as ad, kernels
untouched = counts() == before and not kernels.runtime.status().configured
nn.set_seed(0)
model = nn.Sequential([nn.Input((1, 8, 8)), nn.Conv2D(4, 3, activation="relu"), nn.MaxPool2D(2),
                       nn.Flatten(), nn.Dense(3)])
opt = nn.optim.Adam(model.parameters())
rng = np.random.default_rng(0)
x, y = rng.random((16, 1, 8, 8), dtype=np.float32), rng.integers(0, 3, 16)
for _ in range(3):                                                   # a plain training loop
    opt.zero_grad(); loss = nn.functional.softmax_cross_entropy(model(ad.Tensor(x)), y)
    loss.backward(); opt.step()
after_loop = counts()
nn.fit(model, (x, y), epochs=1, batch_size=8, verbose=0, seed=0)
after_fit = counts()
kernels.conv2d_forward(x, np.ones((2, 1, 3, 3), np.float32))          # a kernel called directly
print(untouched, len(before), after_loop == before, after_fit == before, counts() == before,
      kernels.runtime.status().configured, kernels.runtime.status().freed_memory_kept)
"""


@pytest.mark.parametrize("threads", [2, 3])
def test_a_training_step_and_a_kernel_call_leave_every_blas_thread_count_as_it_was(threads):
    """The user's NumPy and SciPy BLAS keep the thread count they had (importing nn, a plain loop,
    nn.fit, a kernel call): the kernels limit them to one thread only while their own work runs."""
    assert _python(TRAINING.replace("THREADS", str(threads))) == "True 2 True True True True False"


def test_importing_kernels_and_nn_changes_nothing():
    code = ("import os, numpy as np, threadpoolctl\n"
            "before = {i['filepath']: i['num_threads'] for i in threadpoolctl.threadpool_info()}\n"
            "environment = dict(os.environ)\n"
            "import kernels, nn\n"
            "s = kernels.runtime.status()\n"
            "print({i['filepath']: i['num_threads'] for i in threadpoolctl.threadpool_info()} == before,"
            " dict(os.environ) == environment, s.configured, s.freed_memory_kept)")
    assert _python(code) == "True True False False"


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


def test_malloc_is_tuned_only_when_asked_for():
    code = ("import kernels, numpy as np\n"
            f"{ONE_STEP}\n"
            "print(kernels.runtime.status().freed_memory_kept)")
    assert _python(code) == "False"                                     # the default: malloc left alone
    assert _python(code, CHAINRULE_KEEP_MEMORY="1") == "True"           # glibc (Debian): mallopt exists
    asked = "import kernels\nprint(kernels.runtime.configure(keep_freed_memory=True).freed_memory_kept)"
    assert _python(asked) == "True"


# --- in this process ------------------------------------------------------------------------------

def _module(**functions):
    module = types.ModuleType("a_kernel_module")
    module.__dict__.update(CONSTANT=7, **functions)
    return module


def test_a_host_kernel_runs_with_every_blas_on_one_thread_and_gives_the_counts_back():
    before = blas_threads()
    seen = []
    module = runtime.host_kernels(_module(verb=lambda a, *, b: seen.append(blas_threads()) or a + b))
    assert module.verb(1, b=2) == 3 and module.CONSTANT == 7
    assert set(seen[0].values()) == {1} and set(seen[0]) >= set(before)
    assert blas_threads() == before
    assert runtime.host_kernels(module._module) is module and module.verb is module.verb   # found once


def test_a_module_that_declares_itself_blas_free_runs_on_the_counts_as_they_are():
    user = threadpoolctl.threadpool_limits(limits=2, user_api="blas")     # a setting of the user's own
    try:
        seen = []
        plain = _module(verb=lambda: seen.append(blas_threads()), BLAS_FREE=True)
        assert runtime.host_kernels(plain) is plain
        runtime.host_kernels(plain).verb()
        assert set(seen[0].values()) == {2}
    finally:
        user.restore_original_limits()


#: What NumPy hands to BLAS, as code spells it.
PRODUCT = r"[\w)\]] @ |\.dot\(|matmul|einsum|tensordot|linalg|\binner\("


def _code_without_docstrings(module):
    """A module's code, its docstrings and comments left out (ast.unparse drops the comments)."""
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def _own_modules(module):
    """``module`` and the modules of its own package it imports, and theirs (conv2d/cpu.py: winograd.py, ...)."""
    package, seen, todo = module.__name__.rsplit(".", 1)[0], {}, [module]
    while todo:
        current = todo.pop()
        if current.__name__ in seen:
            continue
        seen[current.__name__] = current
        for value in vars(current).values():
            home = value if isinstance(value, types.ModuleType) else sys.modules.get(getattr(value, "__module__", ""))
            if isinstance(home, types.ModuleType) and home.__name__.startswith(package + "."):
                todo.append(home)
    return list(seen.values())


@pytest.mark.parametrize("family", ["activations", "conv2d", "dense", "dropout", "losses", "normalization", "optim",
                                    "pool2d"])
def test_the_modules_that_skip_the_blas_context_make_no_matrix_product(family):
    """BLAS_FREE is a promise about the module's code and its own package's modules it uses: no product
    NumPy would hand to BLAS (so no result of theirs depends on which BLAS, or which of its kernels, runs)."""
    package = importlib.import_module(f"kernels.{family}")
    for backend in ("numpy", "cpu"):
        module = package.IMPLEMENTATIONS[backend]()
        if getattr(module, "BLAS_FREE", False):
            for part in _own_modules(module):
                code = _code_without_docstrings(part)
                assert not re.search(PRODUCT, code), part.__name__


def test_the_blas_free_check_sees_a_product_in_a_module_the_kernel_module_uses():
    """The check above reads past docstrings (cpu.py's describe products in words) into the code, and
    into the package's modules a kernel module uses: a product there is seen."""
    conv = importlib.import_module("kernels.conv2d").IMPLEMENTATIONS["cpu"]()
    names = [m.__name__ for m in _own_modules(conv)]
    assert "kernels.conv2d.winograd" in names and "kernels.conv2d.columns" in names
    assert " @ " in inspect.getsource(conv) and " @ " not in _code_without_docstrings(conv)
    dense = importlib.import_module("kernels.dense").IMPLEMENTATIONS["numpy"]()         # NumPy's products
    assert any(re.search(PRODUCT, _code_without_docstrings(m)) for m in _own_modules(dense))


def test_the_counts_come_back_after_an_exception_and_after_nested_uses():
    user = threadpoolctl.threadpool_limits(limits=2, user_api="blas")     # a setting of the user's own
    try:
        before = blas_threads()

        def failing():
            with runtime.single_threaded_blas():          # nested: the outer exit restores
                assert set(blas_threads().values()) == {1}
            assert set(blas_threads().values()) == {1}
            raise RuntimeError("in the kernel")

        with pytest.raises(RuntimeError, match="in the kernel"):
            runtime.host_kernels(_module(verb=failing)).verb()
        assert blas_threads() == before and set(before.values()) == {2}
    finally:
        user.restore_original_limits()


def test_two_threads_in_the_kernels_at_once_give_the_counts_back_once_both_are_done():
    user = threadpoolctl.threadpool_limits(limits=2, user_api="blas")     # a setting of the user's own
    try:
        before = blas_threads()
        inside, leave = threading.Barrier(2), threading.Event()

        def kernel():
            with runtime.single_threaded_blas():
                inside.wait(timeout=10)
                leave.wait(timeout=10)

        other = threading.Thread(target=kernel)
        other.start()
        with runtime.single_threaded_blas():
            inside.wait(timeout=10)
        assert set(blas_threads().values()) == {1}        # the other thread is still inside
        leave.set()
        other.join(timeout=10)
        assert blas_threads() == before
    finally:
        user.restore_original_limits()


def test_configure_limit_blas_false_runs_the_kernels_on_the_counts_as_they_are(monkeypatch):
    monkeypatch.setattr(runtime._state, "limit_blas", True)
    seen = []
    module = runtime.host_kernels(_module(verb=lambda: seen.append(blas_threads())))
    assert not runtime.configure(limit_blas=False).blas_single_threaded
    module.verb()
    assert seen == [blas_threads()]
    assert runtime.configure().blas_single_threaded


def test_a_real_kernel_call_gives_the_counts_back():
    user = threadpoolctl.threadpool_limits(limits=2, user_api="blas")     # a setting of the user's own
    try:
        before = blas_threads()
        for backend in ("numpy", "cpu"):
            x = np.ones((2, 1, 5, 5), np.float32)
            kernels.conv2d_forward(x, np.ones((3, 1, 3, 3), np.float32), backend=backend)
            assert blas_threads() == before
    finally:
        user.restore_original_limits()


@pytest.fixture
def fresh(monkeypatch):
    """A runtime that has done nothing yet, with the C library's mallopt replaced by a counter (other
    libraries load as usual)."""
    calls = {"mallopt": 0}
    real_cdll = ctypes.CDLL

    class Libc:
        def __init__(self):
            self.mallopt = self

        def __call__(self, parameter, value):
            calls["mallopt"] += 1
            return 1

    def cdll(name, *args, **kwargs):
        return Libc() if name in (ctypes.util.find_library("c"), "libc.so.6") else real_cdll(name, *args, **kwargs)

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    monkeypatch.delenv("CHAINRULE_KEEP_MEMORY", raising=False)
    monkeypatch.setattr(runtime, "_state", runtime._State())
    return calls


def test_configure_is_idempotent(fresh):
    first = runtime.configure()
    assert runtime.configure() == first == runtime.status()
    runtime.ensure_configured()
    assert first == runtime.Tuning(blas_single_threaded=True, threading_layer=first.threading_layer,
                                   freed_memory_kept=False, configured=True,
                                   outputs_kept_bytes=first.outputs_kept_bytes)     # what earlier tests left kept
    assert fresh["mallopt"] == 0                                        # opt-in: not by default
    assert runtime.configure(keep_freed_memory=True).freed_memory_kept
    runtime.configure(keep_freed_memory=True)
    assert fresh["mallopt"] == len(runtime.MALLOC_SETTINGS)             # done once


def test_the_first_kernel_call_configures_once(fresh):
    assert not runtime.status().configured
    for step in (1, 2, 3):
        kernels.sgd_update(np.ones(3, np.float32), np.ones(3, np.float32), step=step, lr=0.1, backend="numpy")
    assert runtime.status().configured and fresh["mallopt"] == 0


def test_chainrule_keep_memory_1_tunes_malloc_at_the_first_kernel_call(fresh, monkeypatch):
    monkeypatch.setenv("CHAINRULE_KEEP_MEMORY", "1")
    runtime.ensure_configured()
    assert runtime.status().freed_memory_kept and fresh["mallopt"] == len(runtime.MALLOC_SETTINGS)


def _tiny_fit():
    import nn

    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    model = nn.Sequential([nn.Input((2,)), nn.Dense(3, activation="softmax")])
    nn.fit(model, (x, (x[:, 0] > 0).astype(np.int64)), epochs=1, batch_size=8, verbose=0, seed=0)


def test_fit_does_not_configure_the_process_itself_the_kernels_do(monkeypatch):
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
    assert len(calls) == 1
