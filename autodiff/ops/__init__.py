"""The engine's primitives, each declared once: value, reverse rule, forward rule, SymPy, samples.

- :mod:`.elementwise`: arithmetic and elementwise functions (add ... sigmoid, relu, heaviside, where);
- :mod:`.reductions`: sum, mean, max, min, logsumexp, softmax, log_softmax, prod, cumsum;
- :mod:`.shapes`: reshape, transpose, getitem / scatter_add, concatenate, stack (and, re-exported
  from :mod:`autodiff.primitives`, the broadcasting pair sum_to / broadcast_to);
- :mod:`.linalg`: matmul, einsum, det, slogdet (the logabsdet primitive), inv, solve;
- :mod:`.polynomial`: vander (as ``np.vander``);
- :mod:`.arrays` (composed): squeeze, expand_dims, ravel, moveaxis, swapaxes, flip, roll, take,
  take_along_axis, pad, diagonal, triu, tril, tile, repeat, diag, ``x.at[i].set(v)``; the astype
  primitive;
- :mod:`.constructors`: eye, zeros, ones, full, zeros_like, ones_like, full_like, returning Tensors
  that do not require grad, the graph's constants (``ad.zeros(5).at[2].set(t)`` is differentiable in t;
  full and full_like with a Tensor fill_value: its broadcast);
- :mod:`.vectors` (composed): dot, inner, outer, vdot, tensordot, cross, trace, norm;
- :mod:`.reductions` also: prod, cumsum (primitives), cumprod, var, std (composed).
- :mod:`.control`: stop_gradient (the value, with derivative 0: JAX's).
- :mod:`.special`: log1p, expm1, arctan2, hypot, logaddexp (NumPy's stable ufuncs, stable rules).
- :mod:`.compare`: greater, less, equal... as recorded masks of 0.0 and 1.0 (what compile records for ``x > 0``).

Conventions at non-differentiable points (documented in the README, tested):

- ``relu'(0) = 0``, ``abs'(0) = 0`` (the sign function), ``heaviside``'s derivative is 0, ``clip`` passes the gradient on the closed
  interval ``[a_min, a_max]`` (as ``torch.clamp``);
- ties are split evenly: ``maximum(a, b)`` sends half the gradient to each of ``a`` and ``b`` where
  ``a == b``, and ``max(x)`` shares it equally among all the maxima (as JAX and PyTorch's ``amax``).
  The same weights are used by the forward rule, so both modes agree.

Broadcasting follows NumPy; each reverse rule sums the cotangent back to its input's shape
(``unbroadcast``), each forward rule broadcasts the tangent to its output's shape. Python's
operators on Tensors (``x + y``, ``x @ w``, ``x[i]``) are these ops: see :mod:`autodiff.operators`.
"""
from ..primitives import broadcast_like, broadcast_to, sum_to, unbroadcast
from .elementwise import (abs, add, clip, cos, div, exp, heaviside, identity, log, maximum, minimum, mul, neg, pow,
                          pow_const, relu, select, sigmoid, sign, sin, sqrt, sub, tan, tanh, where)
from .linalg import det, einsum, inv, logabsdet, matmul, slogdet, solve
from .polynomial import vander
from .reductions import cumprod, cumsum, logsumexp, log_softmax, max, mean, min, prod, softmax, std, sum, var
from .shapes import concatenate, getitem, normalize_index, reshape, scatter_add, stack, transpose
from .arrays import (IndexUpdate, astype, diag, diagonal, expand_dims, flip, moveaxis, pad, ravel, repeat, roll,
                     squeeze, swapaxes, take, take_along_axis, tile, tril, triu)
from .constructors import eye, full, full_like, ones, ones_like, zeros, zeros_like
from .vectors import cross, dot, inner, norm, outer, tensordot, trace, vdot
from .control import stop_gradient
from .compare import equal, greater, greater_equal, less, less_equal, not_equal
from .special import arctan2, expm1, hypot, log1p, logaddexp

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "pow_const", "exp", "log", "sin", "cos", "tan", "tanh", "sigmoid",
    "sqrt", "abs", "relu", "heaviside", "maximum", "minimum", "clip", "identity", "where", "select",
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax",
    "sum_to", "broadcast_to", "unbroadcast", "broadcast_like", "reshape", "transpose", "getitem", "scatter_add",
    "concatenate", "stack", "normalize_index", "matmul", "IndexUpdate",
    "sign", "einsum", "vander", "det", "inv", "solve", "prod", "cumsum", "cumprod", "var", "std", "astype", "diagonal",
    "expand_dims", "flip", "moveaxis", "pad", "ravel", "roll", "squeeze", "swapaxes", "take", "take_along_axis",
    "tril", "triu", "cross", "dot", "inner", "norm", "outer", "tensordot", "trace", "vdot",
    "eye", "zeros", "ones", "full", "zeros_like", "ones_like", "stop_gradient",
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
    "tile", "repeat", "diag", "full_like", "slogdet", "logabsdet",
    "log1p", "expm1", "arctan2", "hypot", "logaddexp",
]
