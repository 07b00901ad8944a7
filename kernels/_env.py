"""BLAS threading, arranged before NumPy loads OpenBLAS (imported first by ``kernels``).

The CPU convolution alternates Numba ``prange`` loops (im2col, col2im) with one OpenBLAS matrix
product called from Python, outside every ``prange``: the two thread pools never run at once, and
no BLAS call is made from inside a Numba thread (which is what floods "OpenBLAS Warning: Detect
OpenMP Loop" and runs erratically). One thing remains: after a call, OpenBLAS's worker threads
busy-wait for about 2**28 cycles (~0.1 s) before they sleep, and on a small machine they take the
cores from the ``prange`` loop that follows (measured on 2 cores: conv2 forward 24 ms instead of
11 ms). ``OPENBLAS_THREAD_TIMEOUT=4`` (2**4 cycles) makes them sleep at once. OpenBLAS reads it
only when it is loaded, so it is set here, if the user has not set it, and only when NumPy has not
been imported yet; otherwise the kernels still give the same results, only slower. Import
``kernels`` (or ``nn``) before NumPy, or export the variable, to get the speed.
"""
import os
import sys

BLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}

ARRANGED = "numpy" not in sys.modules
if ARRANGED:
    for _name, _value in BLAS_ENV.items():
        os.environ.setdefault(_name, _value)
