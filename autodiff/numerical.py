"""Numerical differentiation (source material section 5.5.2): difference quotients and the complex step.

Four methods, each with a default step ``eps`` chosen to balance its two errors (truncation, which
shrinks with eps, and round-off, which grows as eps shrinks), for float64 (machine epsilon
``u = 2.2e-16``):

- ``forward``: (f(x + h) - f(x)) / h, Newton's difference quotient (eq. 5.35). Truncation O(h),
  round-off O(u / h): best at ``h ~ sqrt(u) = 1.5e-8``, giving ~8 correct digits.
- ``backward``: (f(x) - f(x - h)) / h. The same orders and the same default.
- ``central``: (f(x + h) - f(x - h)) / 2h. Truncation O(h^2), round-off O(u / h): best at
  ``h ~ u^(1/3) = 6e-6``, ~11 digits.
- ``complex``: Im f(x + ih) / h (the complex step). No subtraction, hence no round-off: any tiny
  ``h`` works; the default ``1e-20`` makes the O(h^2) truncation vanish below round-off, so the
  result is exact to machine precision. It needs every op to be complex-analytic: ``abs``, ``relu``,
  ``maximum``, ``clip`` and the like refuse complex input.

Steps are relative: ``h = eps * max(1, |x|)`` per element (the forward/central defaults assume a
function of scale 1). Inputs are evaluated in float64 (float32 loses most digits to round-off).
``eps_sweep`` measures the U-shaped error curve that these choices come from.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .functional import grad
from .tensor import value_of

METHODS = ("forward", "backward", "central", "complex")
_U = np.finfo(np.float64).eps

#: Default step of each method for float64, with the reason in the module docstring.
DEFAULT_EPS = {"forward": float(np.sqrt(_U)), "backward": float(np.sqrt(_U)),
               "central": float(np.cbrt(_U)), "complex": 1e-20}


def _check_method(method):
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _plain(y):
    return np.asarray(value_of(y))


def _difference(f, x, direction, method, h):
    """Directional difference quotient of f at x along ``direction`` with step h (scalar or elementwise)."""
    if method == "complex":
        return np.imag(_plain(f(x + 1j * h * direction))) / h
    if method == "forward":
        return (_plain(f(x + h * direction)) - _plain(f(x))) / h
    if method == "backward":
        return (_plain(f(x)) - _plain(f(x - h * direction))) / h
    return (_plain(f(x + h * direction)) - _plain(f(x - h * direction))) / (2 * h)


def _prepare(x, method, eps):
    _check_method(method)
    x = np.asarray(x, dtype=np.float64)
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating))):
        raise TypeError(f"eps must be a positive number or None, got {eps!r}")
    eps = DEFAULT_EPS[method] if eps is None else float(eps)
    if not 0 < eps < np.inf:
        raise ValueError(f"eps must be positive and finite, got {eps}")
    return x, eps


def numerical_derivative(f, x, method="central", eps=None):
    """df/dx of a scalar function f: R -> R by a difference quotient (elementwise on arrays).

    >>> import numpy as np
    >>> round(numerical_derivative(np.sin, 0.0, method="complex"), 15)
    1.0
    """
    x, eps = _prepare(x, method, eps)
    result = _difference(f, x, 1.0, method, eps * np.maximum(1.0, np.abs(x)))
    return result.item() if np.ndim(result) == 0 else result


def numerical_jacobian(f, x, method="central", eps=None):
    """The Jacobian of f at x by differences, one input element at a time: shape out.shape + x.shape.

    >>> import numpy as np
    >>> numerical_jacobian(lambda v: v ** 2, np.array([1.0, 2.0]), method="complex")
    array([[2., 0.],
           [0., 4.]])
    """
    x, eps = _prepare(x, method, eps)
    out_shape = np.shape(_plain(f(x)))
    columns = []
    for k in range(x.size):
        direction = np.zeros(x.size)
        direction[k] = 1.0
        direction = direction.reshape(x.shape)
        h = eps * max(1.0, abs(x.flat[k]))
        columns.append(np.asarray(_difference(f, x, direction, method, h), dtype=np.float64).reshape(out_shape))
    if not columns:
        return np.zeros(out_shape + x.shape)
    return np.moveaxis(np.stack(columns), 0, -1).reshape(out_shape + x.shape)


def numerical_gradient(f, x, method="central", eps=None):
    """The gradient of a scalar f at x by differences: shape x.shape.

    >>> import numpy as np
    >>> numerical_gradient(lambda v: (v ** 2).sum(), np.array([1.0, 2.0]), method="complex")
    array([2., 4.])
    """
    jac = numerical_jacobian(f, x, method, eps)
    size = int(np.prod(jac.shape[:jac.ndim - np.ndim(x)]))
    if size != 1:
        raise ValueError(f"numerical_gradient: f must return a scalar; it returned shape {jac.shape[:jac.ndim - np.ndim(x)]}")
    return jac.reshape(np.shape(x))


@dataclass
class EpsSweep:
    """Errors of a difference quotient against the exact derivative, for a range of steps."""

    method: str
    eps: np.ndarray
    estimate: np.ndarray
    exact: float
    error: np.ndarray   # |estimate - exact| / max(|exact|, tiny): relative error

    def slope(self, lo: float, hi: float) -> float:
        """The fitted slope of log10(error) against log10(eps) for eps in [lo, hi]: the method's order."""
        mask = (self.eps >= lo) & (self.eps <= hi) & (self.error > 0)
        if mask.sum() < 2:
            raise ValueError(f"slope: fewer than two usable points with eps in [{lo}, {hi}]")
        return float(np.polyfit(np.log10(self.eps[mask]), np.log10(self.error[mask]), 1)[0])

    def best(self) -> tuple[float, float]:
        """(eps, error) at the bottom of the U-curve."""
        k = int(np.argmin(self.error))
        return float(self.eps[k]), float(self.error[k])

    def plot(self, ax=None):
        """A log-log plot of the error against eps (needs matplotlib); returns the figure."""
        import matplotlib.pyplot as plt

        fig = ax.figure if ax is not None else plt.figure(figsize=(5, 3.5))
        ax = ax if ax is not None else fig.add_subplot()
        floor = np.finfo(np.float64).tiny
        ax.loglog(self.eps, np.maximum(self.error, floor), "o-", label=self.method)
        ax.set_xlabel("step eps")
        ax.set_ylabel("relative error")
        ax.invert_xaxis()
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        return fig


def eps_sweep(f, x, method="forward", eps=None, exact=None) -> EpsSweep:
    """Error of ``numerical_derivative(f, x, method, eps)`` for eps from 1e-1 down to 1e-14.

    ``exact`` defaults to the engine's reverse-mode derivative. The result holds the data of the
    truncation / round-off U-curve; ``.plot()`` draws it, ``.slope(lo, hi)`` fits its order.

    >>> import autodiff as ad
    >>> sweep = eps_sweep(ad.sin, 1.0, "central")
    >>> 1.5 < sweep.slope(1e-4, 1e-1) < 2.5
    True
    """
    _check_method(method)
    eps = np.logspace(-1, -14, 14) if eps is None else np.asarray(eps, dtype=np.float64)
    if exact is None:
        exact = grad(lambda t: f(t))(float(x))
    estimates = np.array([numerical_derivative(f, float(x), method, e) for e in eps])
    scale = max(abs(exact), np.finfo(np.float64).tiny)
    return EpsSweep(method, eps, estimates, float(exact), np.abs(estimates - exact) / scale)
