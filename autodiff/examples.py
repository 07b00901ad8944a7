"""Functions from the source material, written with the engine's ops (used by the demo, tests, tutorials).

``eq_5_36`` is written exactly as the decomposition of eq. 5.38, so its recorded graph holds the
nodes a = sin(x), b = a^2, c = a + b, d = exp(c), e = exp(x), f = e^2, g = e + f, h = sin(g),
y = d + h.
"""
from __future__ import annotations

import numpy as np

from .ops import exp, sin


def eq_5_36(x):
    """y = exp(sin(x) + sin(x)^2) + sin(exp(x) + exp(x)^2), source material eq. 5.36."""
    a = sin(x)
    b = a ** 2
    c = a + b
    d = exp(c)
    e = exp(x)
    f = e ** 2
    g = e + f
    h = sin(g)
    return d + h


def eq_5_37(x):
    """dy/dx of eq. 5.36 as the source material writes it (eq. 5.37), in plain NumPy."""
    x = np.asarray(x, dtype=np.float64) if not hasattr(x, "dtype") else x
    return (np.cos(np.exp(2 * x) + np.exp(x)) * (2 * np.exp(2 * x) + np.exp(x))
            + np.exp(np.sin(x) ** 2 + np.sin(x)) * (np.cos(x) + 2 * np.cos(x) * np.sin(x)))


def rosenbrock(x, a=1.0, b=100.0):
    """The Rosenbrock function sum_i b (x_{i+1} - x_i^2)^2 + (a - x_i)^2."""
    return (b * (x[1:] - x[:-1] ** 2) ** 2 + (a - x[:-1]) ** 2).sum()


def rosenbrock_hessian(x, a=1.0, b=100.0):
    """The analytic Hessian of ``rosenbrock`` (NumPy), for checks."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    hess = np.zeros((n, n))
    for i in range(n - 1):
        hess[i, i] += 12 * b * x[i] ** 2 - 4 * b * x[i + 1] + 2
        hess[i + 1, i + 1] += 2 * b
        hess[i, i + 1] += -4 * b * x[i]
        hess[i + 1, i] += -4 * b * x[i]
    return hess


__all__ = ["eq_5_36", "eq_5_37", "rosenbrock", "rosenbrock_hessian"]
