"""autodiff: an eager computational-graph engine for teaching differentiation.

Record a graph by computing with Tensors, then sweep it: reverse mode (``y.backward()``,
``grad``, ``vjp``) or forward mode (``jvp``), to any order (``hessian``, ``derivative``).
See the README for a tour, and :mod:`autodiff.ops` for the primitives and their rules.

The modules form a ladder, each importing only the rungs below it (ARCHITECTURE.md):

    buffers      the pool of large arrays the ops and sweeps write into
    tensor       the node: value, inputs, op, params; recording on/off (no_grad)
    primitives   declaring an op (value, vjp, jvp, sympy, samples, kinks) and applying it
    ops, sweep   the declared ops; the two sweeps over a recorded graph
    operators    Tensor's operators, methods and backward(), bound in one table; with them the
                 NumPy protocols (interop: np.sin(t), np.sum(t), np.linalg.det(t) run the ops)
    views        functional API (and vmap), numerical, symbolic, checks, compare, labels, tables, draw
    compiler     autodiff.compile: the recorded graph and its derivative written out as Python
                 source (eq. 5.38, eq. 5.39) and compiled with Numba; a view, like the others
"""
from .tensor import Tensor, no_grad, is_grad_enabled, value_of
from .grad_mode import enable_grad, set_grad_enabled
from .primitives import Primitive, primitive, REGISTRY
from .ops import (
    add, sub, mul, div, neg, pow, pow_const, log1p, expm1, arctan2, hypot, logaddexp,
    exp, log, sin, cos, tan, tanh, sigmoid, sqrt, abs, relu, heaviside, maximum, minimum, clip, identity, where, select,
    sum, mean, max, min, logsumexp, softmax, log_softmax,
    sum_to, broadcast_to, reshape, transpose, getitem, scatter_add, concatenate, stack, matmul,
    unbroadcast,
    sign, prod, cumsum, cumprod, var, std, einsum, det, inv, solve, dot, inner, outer, vdot, tensordot, cross,
    trace, norm, astype, diagonal, expand_dims, squeeze, ravel, moveaxis, swapaxes, flip, roll, take,
    take_along_axis, pad, triu, tril, eye, zeros, ones, full, zeros_like, ones_like, stop_gradient,
    tile, repeat, diag, full_like, slogdet, vander,
)
from .sweep import toposort, reverse_sweep, forward_sweep
from .buffers import empty_cache, set_pool_limit
from . import operators  # noqa: F401  (gives Tensor its operators and backward())
from .functional import (
    grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp, derivative, gradients,
)
from .vmap import vmap
from .batching import BatchingWarning
from . import pytree as tree_util  # jax.tree_util's names: ad.tree_util.tree_map, ...
from .pytree import (register_dataclass, register_pytree_node, tree_flatten, tree_leaves, tree_map,
                     tree_structure, tree_unflatten)
from .symbolic import to_sympy
from .numerical import DEFAULT_EPS, EpsSweep, eps_sweep, numerical_derivative, numerical_gradient, numerical_jacobian
from .checks import GradcheckError, GradcheckReport, GradcheckWarning, check_primitive, gradcheck
from .compare import Comparison, compare
from .labels import graph_code, print_graph
from .tables import TraceTable, trace_table
from .draw import GraphvizNotFound, Steps, draw, draw_steps, save
from . import examples
from .compiler import CompileError, Compiled, compile
from .loops import fori_loop, scan, while_loop
from .compiler.explain import Explanation, explain
from .anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled
from .custom import custom_jvp, custom_vjp
from .remat import checkpoint, remat

__all__ = [
    "Tensor", "no_grad", "is_grad_enabled", "value_of", "enable_grad", "set_grad_enabled", "stop_gradient",
    "AnomalyError", "detect_anomaly", "is_anomaly_enabled", "Primitive", "primitive", "REGISTRY",
    "add", "sub", "mul", "div", "neg", "pow", "pow_const", "exp", "log", "sin", "cos", "tan", "tanh",
    "log1p", "expm1", "arctan2", "hypot", "logaddexp",
    "sigmoid", "sqrt", "abs", "relu", "heaviside", "maximum", "minimum", "clip", "identity", "where", "select", "sum", "mean",
    "max", "min", "logsumexp", "softmax", "log_softmax", "sum_to", "broadcast_to", "reshape",
    "transpose", "getitem", "scatter_add", "concatenate", "stack", "matmul", "unbroadcast",
    "sign", "prod", "cumsum", "cumprod", "var", "std", "einsum", "det", "inv", "solve", "dot", "inner", "outer",
    "vdot", "tensordot", "cross", "trace", "norm", "astype", "diagonal", "expand_dims", "squeeze", "ravel",
    "moveaxis", "swapaxes", "flip", "roll", "take", "take_along_axis", "pad", "triu", "tril", "eye", "zeros",
    "ones", "full", "zeros_like", "ones_like", "tile", "repeat", "diag", "full_like", "slogdet", "vander",
    "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "derivative", "gradients", "vmap",
    "BatchingWarning",
    "tree_util", "tree_flatten", "tree_unflatten", "tree_map", "tree_leaves", "tree_structure",
    "register_pytree_node", "register_dataclass",
    "toposort", "reverse_sweep", "forward_sweep", "to_sympy", "examples",
    "DEFAULT_EPS", "EpsSweep", "eps_sweep", "numerical_derivative", "numerical_gradient", "numerical_jacobian",
    "Comparison", "GradcheckError", "GradcheckReport", "GradcheckWarning", "check_primitive", "compare", "gradcheck",
    "GraphvizNotFound", "Steps", "TraceTable", "draw", "draw_steps", "graph_code", "print_graph", "save",
    "trace_table", "CompileError", "Compiled", "compile", "Explanation", "explain",
    "custom_vjp", "custom_jvp", "checkpoint", "remat", "fori_loop", "scan", "while_loop",
    "empty_cache", "set_pool_limit",
]
