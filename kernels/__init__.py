"""kernels: Numba kernels for conv2d, pooling and optimiser updates (NumPy reference, CPU, CUDA).

Being built: nothing here yet.
"""
