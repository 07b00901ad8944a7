"""Test-session setup shared by every test.

The CUDA kernels are tested in Numba's CUDA simulator unless a real GPU is asked for: the
simulator must be switched on before numba is first imported, so it is done here. On a machine
with a GPU, run ``NUMBA_ENABLE_CUDASIM=0 python -m pytest`` to test the kernels on the device.
"""
import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
