"""Test-session setup shared by every test.

The CUDA kernels are tested in Numba's CUDA simulator unless a real GPU is asked for: the
simulator must be switched on before numba is first imported, so it is done here. On a machine
with a GPU, run ``NUMBA_ENABLE_CUDASIM=0 python -m pytest`` to test the kernels on the device.
The code ``autodiff.compile`` generates goes to a temporary folder of the session.
"""
import os
import tempfile

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
# autodiff.compile writes its generated modules (and Numba their machine code) here, not to ~/.cache
os.environ.setdefault("AUTODIFF_CACHE_DIR", tempfile.mkdtemp(prefix="autodiff-compile-tests-"))
