"""The engine's primitives, each declared once: value, reverse rule, forward rule, SymPy, samples.

- :mod:`.elementwise`: arithmetic and elementwise functions (add ... sigmoid, relu, where);
- :mod:`.reductions`: sum, mean, max, min, logsumexp, softmax, log_softmax;
- :mod:`.shapes`: reshape, transpose, getitem / scatter_add, concatenate, stack (and, re-exported
  from :mod:`autodiff.primitives`, the broadcasting pair sum_to / broadcast_to);
- :mod:`.linalg`: matmul.

Conventions at non-differentiable points (documented in the README, tested):

- ``relu'(0) = 0``, ``abs'(0) = 0`` (the sign function), ``clip`` passes the gradient on the closed
  interval ``[a_min, a_max]`` (as ``torch.clamp``);
- ties are split evenly: ``maximum(a, b)`` sends half the gradient to each of ``a`` and ``b`` where
  ``a == b``, and ``max(x)`` shares it equally among all the maxima (as JAX and PyTorch's ``amax``).
  The same weights are used by the forward rule, so both modes agree.

Broadcasting follows NumPy; each reverse rule sums the cotangent back to its input's shape
(``unbroadcast``), each forward rule broadcasts the tangent to its output's shape. Python's
operators on Tensors (``x + y``, ``x @ w``, ``x[i]``) are these ops: see :mod:`autodiff.operators`.
"""
from ..primitives import broadcast_like, broadcast_to, sum_to, unbroadcast
from .elementwise import (abs, add, clip, cos, div, exp, identity, log, maximum, minimum, mul, neg, pow,
                          pow_const, relu, sigmoid, sin, sqrt, sub, tan, tanh, where)
from .linalg import matmul
from .reductions import logsumexp, log_softmax, max, mean, min, softmax, sum
from .shapes import concatenate, getitem, normalize_index, reshape, scatter_add, stack, transpose

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "pow_const", "exp", "log", "sin", "cos", "tan", "tanh", "sigmoid",
    "sqrt", "abs", "relu", "maximum", "minimum", "clip", "identity", "where",
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax",
    "sum_to", "broadcast_to", "unbroadcast", "broadcast_like", "reshape", "transpose", "getitem", "scatter_add",
    "concatenate", "stack", "normalize_index", "matmul",
]
