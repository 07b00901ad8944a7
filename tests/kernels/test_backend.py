"""One dispatch for every kernel: a default backend, set_backend, use_backend and backend= per call,
through each family's static IMPLEMENTATIONS table (built by kernels.backend.implementations)."""
import inspect

import numpy as np
import pytest

import kernels
from kernels import backend as dispatch
from kernels import activations, conv2d, dense, dropout, losses, normalization, optim, pool2d


@pytest.fixture(autouse=True)
def _restore_default():
    before = kernels.get_backend()
    yield
    dispatch._state.name = before


def _spy(monkeypatch):
    """Record which backend module each conv2d_forward call reaches (through the dispatch table)."""
    seen = []
    for name, load in dict(conv2d.IMPLEMENTATIONS).items():
        def spying(_load=load):
            module = _load()
            seen.append(module.__name__.rsplit(".", 1)[-1])
            return module
        monkeypatch.setitem(conv2d.IMPLEMENTATIONS, name, spying)
    return seen


X = np.ones((1, 1, 3, 3), np.float32)
W = np.ones((1, 1, 2, 2), np.float32)


def test_the_default_is_cpu_and_set_backend_changes_it(monkeypatch):
    seen = _spy(monkeypatch)
    assert kernels.get_backend() == "cpu"
    kernels.conv2d_forward(X, W)
    kernels.set_backend("numpy")
    kernels.conv2d_forward(X, W)
    assert seen == ["cpu", "reference"]


def test_use_backend_is_scoped_and_restores_after_an_error(monkeypatch):
    seen = _spy(monkeypatch)
    with pytest.raises(RuntimeError, match="inside"):
        with kernels.use_backend("numpy"):
            kernels.conv2d_forward(X, W)
            raise RuntimeError("inside")
    kernels.conv2d_forward(X, W)
    assert seen == ["reference", "cpu"]


def test_a_call_argument_beats_the_default(monkeypatch):
    seen = _spy(monkeypatch)
    with kernels.use_backend("numpy"):
        kernels.conv2d_forward(X, W, backend="cpu")
    assert seen == ["cpu"]


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match=r"backend must be one of \('numpy', 'cpu', 'cuda'\), got 'gpu'"):
        kernels.set_backend("gpu")
    assert kernels.get_backend() == "cpu"


def test_cuda_asked_for_without_a_device_is_a_clear_error_and_changes_nothing(monkeypatch):
    monkeypatch.setattr(dispatch, "cuda_available", lambda: False)
    with pytest.raises(kernels.BackendUnavailable, match="numba.cuda.is_available"):
        kernels.set_backend("cuda")
    with pytest.raises(kernels.BackendUnavailable):
        kernels.conv2d_forward(X, W, backend="cuda")
    with pytest.raises(kernels.BackendUnavailable):
        with kernels.use_backend("cuda"):
            pass
    assert kernels.get_backend() == "cpu"


def test_the_simulator_counts_as_cuda_in_the_test_session():
    # conftest.py switches NUMBA_ENABLE_CUDASIM on before numba is imported
    assert kernels.cuda_available()


@pytest.mark.parametrize("family", [conv2d, pool2d, optim], ids=lambda f: f.__name__)
def test_every_family_has_a_static_table_and_the_same_verbs_in_its_three_modules(family):
    """IMPLEMENTATIONS names every backend; reference, cpu and cuda have the same public functions with
    the same arguments, and the family's entry points are those verbs."""
    assert set(family.IMPLEMENTATIONS) == set(kernels.BACKENDS)
    modules = {name: load() for name, load in family.IMPLEMENTATIONS.items()}
    assert [m.__name__.rsplit(".", 1)[-1] for m in modules.values()] == ["reference", "cpu", "cuda"]

    def verbs(module):
        return {name: list(inspect.signature(f).parameters) for name, f in vars(module).items()
                if inspect.isfunction(f) and not name.startswith("_") and f.__module__ == module.__name__}

    reference = verbs(modules["numpy"])
    assert reference and verbs(modules["cpu"]) == reference and verbs(modules["cuda"]) == reference
    for name, arguments in reference.items():
        entry = list(inspect.signature(getattr(family, name)).parameters)
        assert entry[:len(arguments)] == arguments, name


@pytest.mark.parametrize("family", [dense, activations, dropout, losses, normalization], ids=lambda f: f.__name__)
def test_the_light_families_run_numpy_on_the_cpu_and_their_verbs_on_cuda(family):
    """nn's device-path families: "numpy" is the reference, "cpu" the reference too (NumPy is their CPU
    version) except dropout's Numba mask, and every entry point has its function, with the same arguments,
    in each module."""
    modules = {name: load() for name, load in family.IMPLEMENTATIONS.items()}
    cpu = "cpu" if family is dropout else "reference"
    assert [m.__name__.rsplit(".", 1)[-1] for m in modules.values()] == ["reference", cpu, "cuda"]
    entry_points = [name for name in family.__all__ if inspect.isfunction(getattr(family, name))]
    assert entry_points
    for name in entry_points:
        arguments = [list(inspect.signature(getattr(m, name)).parameters) for m in modules.values()]
        assert arguments[0] == arguments[1] == arguments[2], name


def test_a_numba_cuda_that_cannot_compile_with_this_numpy_is_named_before_any_kernel(monkeypatch):
    """numba-cuda 0.30 calls np.row_stack, gone in NumPy 2.5 (seen on a GPU machine): every CUDA kernel then
    failed deep inside numba's compiler; the backend says why in one line instead."""
    import numpy as np
    monkeypatch.setattr(kernels.backend, "_numba_cuda_installed", lambda: True)
    monkeypatch.setattr(kernels.backend, "_numba_cuda_version", lambda: (0, 30, 4))
    monkeypatch.delattr(np, "row_stack", raising=False)
    why = kernels.backend.cuda_import_error()
    assert why == f"numba-cuda 0.30.4 cannot compile kernels with NumPy {np.__version__}, which removed " \
                  f"np.row_stack: pip install 'numpy<2.5'"
    with pytest.raises(kernels.BackendUnavailable, match="numba-cuda 0.30.4 cannot compile kernels"):
        kernels.set_backend("cuda")
    monkeypatch.setattr(kernels.backend, "_numba_cuda_version", lambda: (0, 31, 0))   # a later release: trusted
    assert kernels.backend.cuda_import_error() is None
