"""Test-session setup shared by every test.

The CUDA kernels are tested in Numba's CUDA simulator unless a real GPU is asked for: the
simulator must be switched on before numba is first imported, so it is done here. On a machine
with a GPU, run ``NUMBA_ENABLE_CUDASIM=0 python -m pytest`` to test the kernels on the device.
The code ``autodiff.compile`` generates goes to a temporary folder of the session, removed when the
session ends (unless the folder was given in ``AUTODIFF_CACHE_DIR``).
"""
import os
import shutil
import tempfile

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
# autodiff.compile writes its generated modules (and Numba their machine code) here, not to ~/.cache
_OWN_CACHE = None if os.environ.get("AUTODIFF_CACHE_DIR") else tempfile.mkdtemp(prefix="autodiff-compile-tests-")
if _OWN_CACHE:
    os.environ["AUTODIFF_CACHE_DIR"] = _OWN_CACHE


def pytest_unconfigure(config):
    """The session's own compile folder goes with it (child processes only inherit its name)."""
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
