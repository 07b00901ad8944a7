"""kernels: compute only. 2-D convolution, pooling and optimiser updates, each in three versions
with one signature: a NumPy reference (``kernels.<family>.reference``), Numba CPU-parallel
(``.cpu``) and numba.cuda (``.cuda``). Layout NCHW; float32 by default, float64 accepted. Knows
nothing of graphs (ARCHITECTURE.md).

The public surface, all importable from ``kernels``:

- options, validated once when built (``kernels.options``): ``ConvGeometry``, ``PoolGeometry`` and
  one hyper-parameter object per optimiser (``SGDHyper``, ``AdagradHyper``, ``AdadeltaHyper``,
  ``RMSpropHyper``, ``AdamHyper``, ``AdamWHyper``);
- entry points that take them and check only the arrays: ``kernels.conv2d.forward /
  backward_input / backward_weight / backward`` (the last gives all three gradients from one pass
  over g, masked by a fused ReLU's output on the way), ``kernels.pool2d.max_forward / max_backward / avg_forward /
  avg_backward``, ``kernels.optim.sgd_step / adagrad_step / adadelta_step / rmsprop_step /
  adam_step``;
- keyword functions that build the options and call them: ``conv2d_forward(x, w, b, stride=...)``,
  ``max_pool2d_forward``, ``adam_update(..., lr=...)``, ...;
- the light ops of nn's device path, with a NumPy reference and a numba.cuda version:
  ``kernels.dense`` (forward / backward_input / backward_weight of a dense layer),
  ``kernels.activations`` (relu, tanh, sigmoid, elu, leaky_relu, swish and their derivatives; softmax),
  ``kernels.dropout`` (counter-based dropout masks), ``kernels.losses`` (the fused softmax
  cross-entropy, the accuracy count) and ``kernels.normalization`` (batch normalisation);
- arrays on the device: ``kernels.device`` (``DeviceArray``, ``to_device``, ``zeros``; imported at its
  first use, as it loads numba.cuda) and ``is_device_array`` (the host/device test, without numba).
  A kernel called with device arrays runs on the device and returns device arrays, whatever the
  current backend: the device follows the data;
- the backend choice (``kernels.backend``): "numpy", "cpu" (the default) or "cuda", per call
  (``backend=``), per block (``use_backend``) or per session (``set_backend``); each family's
  ``IMPLEMENTATIONS`` table says which module runs on which;
- process-wide tuning (``kernels.runtime``): one thread pool (Numba's; every BLAS on one thread), a
  fork-safe Numba threading layer and glibc's malloc, set up once, by the kernels' first call or by
  ``kernels.runtime.configure(...)``; importing ``kernels`` changes nothing.

Inside: ``_checks.py`` (the per-call array checks and the one host/device test), ``_cuda.py`` (the
CUDA launch configuration and host/device moves shared by the ``cuda.py`` modules), ``_jit.py`` (the
typed zero and index helper shared by the compiled kernels); ``optim/formulas.py`` and
``activations/formulas.py`` (each update, activation and derivative written once, as a scalar
function the CPU loops and the CUDA kernels share; conv2d's fused ReLU uses the latter).

>>> import numpy as np, kernels
>>> x = np.ones((1, 1, 4, 4), dtype=np.float32)
>>> kernels.conv2d_forward(x, np.ones((1, 1, 3, 3), dtype=np.float32), backend="numpy")[0, 0]
array([[9., 9.],
       [9., 9.]], dtype=float32)
>>> geometry = kernels.ConvGeometry(padding=1)                 # built once ...
>>> kernels.conv2d.forward(x, np.ones((1, 1, 3, 3), np.float32), None, geometry, backend="numpy").shape
(1, 1, 4, 4)
"""
import importlib

from . import activations, dense, dropout, losses, normalization, runtime
from ._checks import is_device_array
from .backend import BACKENDS, BackendUnavailable, cuda_available, get_backend, set_backend, use_backend
from .options import (AdadeltaHyper, AdagradHyper, AdamHyper, AdamWHyper, ConvGeometry, PoolGeometry,
                      RMSpropHyper, SGDHyper)
from .conv2d import conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from .pool2d import avg_pool2d_backward, avg_pool2d_forward, max_pool2d, max_pool2d_backward, max_pool2d_forward
from .optim import (adadelta_update, adagrad_update, adam_update, adamw_update, rmsprop_update,
                    sgd_update)

__all__ = [
    "BACKENDS", "BackendUnavailable", "cuda_available", "get_backend", "set_backend", "use_backend",
    "ConvGeometry", "PoolGeometry", "SGDHyper", "AdagradHyper", "AdadeltaHyper", "RMSpropHyper", "AdamHyper",
    "AdamWHyper", "runtime", "dense", "activations", "dropout", "losses", "normalization", "device",
    "is_device_array",
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "max_pool2d_forward", "max_pool2d", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "sgd_update", "adagrad_update", "adadelta_update", "rmsprop_update", "adam_update", "adamw_update",
]


def __getattr__(name):
    """``kernels.device`` (DeviceArray, to_device, zeros), imported at its first use: it loads numba.cuda."""
    if name == "device":
        return importlib.import_module(".device", __name__)
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
