"""One scalar formula per activation and per derivative, shared by the compiled kernels.

Each function takes ONE element: ``x`` the activation's input, ``y`` its output (some derivatives are
written with it), ``g`` the gradient dL/dy reaching it, ``alpha`` the activation's parameter. The
loops around them live elsewhere:

- ``kernels/activations/cuda.py`` calls ``activation`` / ``activation_backward`` from ``@cuda.jit``
  kernels, one GPU thread per element;
- the convolution's fused ReLU calls ``relu`` / ``relu_backward``: in the Numba CPU loops of
  ``kernels/conv2d/cpu.py`` and in the CUDA kernels of ``kernels/conv2d/cuda.py`` and ``tiles.py``.

So each formula is written once for the compiled code; ``reference.py`` is the independent NumPy
version that the tests hold them to. ``register_jitable`` compiles a function into whichever kind of
code calls it (``@njit`` or ``@cuda.jit``; plain Python in the CUDA simulator), as
``kernels/optim/formulas.py`` explains. Numba's on-disk cache (``cache=True`` in conv2d/cpu.py) looks
only at the calling file's timestamp: after editing this file, touch that one.

    relu        max(x, 0) (NaN stays NaN, as np.maximum)      relu'(x) = 1 for x > 0, else 0 (also at 0)
    tanh        tanh(x)                                       1 - y^2
    sigmoid     1 / (1 + e^-x) (e^x / (1 + e^x) for x < 0)    y (1 - y)
    elu         x for x > 0, alpha (e^x - 1) else             1 for x > 0, alpha e^x else
    leaky_relu  x for x > 0, alpha x else                     1 for x > 0, alpha else
    swish       x sigmoid(alpha x)                            s + alpha x s (1 - s), s = sigmoid(alpha x)

The ReLU's derivative selects g (``g if x > 0 else 0``) rather than multiplying by 0 or 1, so a
masked gradient is exactly g or exactly 0. The others, like the CUDA kernels before them, are
written with the literals 1 and 0 (Numba computes them in double precision and rounds once, on the
store). ``ACTIVATIONS`` (reference.py) gives the codes ``activation`` dispatches on.
"""
from __future__ import annotations

import math

from numba.extending import register_jitable

from .._jit import ZERO


@register_jitable
def relu(x):
    return ZERO if x < ZERO else x


@register_jitable
def relu_backward(g, x):
    """g relu'(x): g where x > 0, else 0. ``x`` may be the ReLU's input or its output (positive at the
    same places)."""
    return g if x > ZERO else ZERO


@register_jitable
def sigmoid(x):
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)                      # never e^-x for a very negative x: it would overflow
    return e / (1 + e)


@register_jitable
def elu(x, alpha):
    return x if x > 0 else alpha * (math.exp(x) - 1)


@register_jitable
def leaky_relu(x, alpha):
    return x if x > 0 else alpha * x


@register_jitable
def swish(x, alpha):
    return x * sigmoid(alpha * x)


@register_jitable
def swish_derivative(x, alpha):
    s = sigmoid(alpha * x)
    return s + alpha * x * s * (1 - s)


@register_jitable
def activation(code, x, alpha):
    """y = the activation of code ``code`` (reference.ACTIVATIONS) at x."""
    if code == 0:
        return relu(x)
    if code == 1:
        return math.tanh(x)
    if code == 2:
        return sigmoid(x)
    if code == 3:
        return elu(x, alpha)
    if code == 4:
        return leaky_relu(x, alpha)
    return swish(x, alpha)


@register_jitable
def activation_backward(code, g, x, y, alpha):
    """dL/dx = g f'(x) for the activation of code ``code``, y = f(x)."""
    if code == 0:
        return relu_backward(g, x)
    if code == 1:
        d = 1 - y * y
    elif code == 2:
        d = y * (1 - y)
    elif code == 3:
        d = 1 if x > 0 else alpha * math.exp(x)
    elif code == 4:
        d = 1 if x > 0 else alpha
    else:
        d = swish_derivative(x, alpha)
    return g * d
