"""autodiff: an eager computational-graph engine for teaching differentiation.

Record a graph by computing with Tensors, then sweep it: reverse mode (``y.backward()``,
``grad``, ``vjp``) or forward mode (``jvp``), to any order (``hessian``, ``derivative``).
See the README for a tour, and :mod:`autodiff.ops` for the primitives and their rules.
"""
from .tensor import Tensor, no_grad, is_grad_enabled, value_of
from .primitives import Primitive, primitive, REGISTRY
from .ops import (
    add, sub, mul, div, neg, pow, pow_const,
    exp, log, sin, cos, tan, tanh, sigmoid, sqrt, abs, relu, maximum, minimum, clip, identity, where,
    sum, mean, max, min, logsumexp, softmax, log_softmax,
    sum_to, broadcast_to, reshape, transpose, getitem, scatter_add, concatenate, stack, matmul,
    unbroadcast,
)
from .functional import (
    grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp, derivative, gradients,
)
from .sweep import toposort, reverse_sweep, forward_sweep
from .symbolic import to_sympy
from .numerical import DEFAULT_EPS, EpsSweep, eps_sweep, numerical_derivative, numerical_gradient, numerical_jacobian
from .checks import Comparison, GradcheckError, GradcheckReport, GradcheckWarning, check_primitive, compare, gradcheck
from . import examples

__all__ = [
    "Tensor", "no_grad", "is_grad_enabled", "value_of", "Primitive", "primitive", "REGISTRY",
    "add", "sub", "mul", "div", "neg", "pow", "pow_const", "exp", "log", "sin", "cos", "tan", "tanh",
    "sigmoid", "sqrt", "abs", "relu", "maximum", "minimum", "clip", "identity", "where", "sum", "mean",
    "max", "min", "logsumexp", "softmax", "log_softmax", "sum_to", "broadcast_to", "reshape",
    "transpose", "getitem", "scatter_add", "concatenate", "stack", "matmul", "unbroadcast",
    "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "derivative", "gradients",
    "toposort", "reverse_sweep", "forward_sweep", "to_sympy", "examples",
    "DEFAULT_EPS", "EpsSweep", "eps_sweep", "numerical_derivative", "numerical_gradient", "numerical_jacobian",
    "Comparison", "GradcheckError", "GradcheckReport", "GradcheckWarning", "check_primitive", "compare", "gradcheck",
]
from .draw import GraphvizNotFound, Steps, TraceTable, draw, draw_steps, graph_code, print_graph, save, trace_table

__all__ += ["GraphvizNotFound", "Steps", "TraceTable", "draw", "draw_steps", "graph_code", "print_graph", "save",
            "trace_table"]
