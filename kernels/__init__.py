"""kernels: compute only. 2-D convolution, pooling and optimiser updates, each in three versions
with one signature: a NumPy reference (``kernels.<family>.reference``), Numba CPU-parallel
(``.cpu``) and numba.cuda (``.cuda``), behind one dispatch (``kernels.backend``).

Layout NCHW; float32 by default, float64 accepted. Knows nothing of graphs (DESIGN.md).

>>> import numpy as np, kernels
>>> x = np.ones((1, 1, 4, 4), dtype=np.float32)
>>> kernels.conv2d_forward(x, np.ones((1, 1, 3, 3), dtype=np.float32), backend="numpy")[0, 0]
array([[9., 9.],
       [9., 9.]], dtype=float32)
"""
from . import _env  # noqa: F401  (first: sets BLAS threading before NumPy loads)
from .backend import BACKENDS, BackendUnavailable, cuda_available, get_backend, set_backend, use_backend
from .conv2d import conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from .pool2d import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from .optim import adadelta_update, adagrad_update, adam_update, adamw_update, rmsprop_update, sgd_update

__all__ = [
    "BACKENDS", "BackendUnavailable", "cuda_available", "get_backend", "set_backend", "use_backend",
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "sgd_update", "adagrad_update", "adadelta_update", "rmsprop_update", "adam_update", "adamw_update",
]
