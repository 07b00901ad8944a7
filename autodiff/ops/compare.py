"""Comparisons as recorded ops (JAX's ``lax.gt`` and the rest): a mask of 0.0 and 1.0, derivative 0.

The eager engine answers ``x > 0`` with a plain boolean array (the comparison has no derivative to
keep). While :func:`autodiff.compile` records f, a comparison of a traced value is one of these ops
instead, so the compiled program computes the mask at each input rather than freezing it at the
example point; ``where(mask, a, b)`` then selects with it and ``if`` on it becomes a branch of the
program. The mask is a float array (1.0 where true), so it flows through the graph like any value.
"""
from __future__ import annotations

import numpy as np

from ..primitives import primitive
from ..samples import uniform


def _zero(out, a, b):
    return np.zeros(np.shape(out), dtype=out.dtype if hasattr(out, "dtype") else np.float64)


def _samples(rng):
    """Points away from ties (the finite-difference checks need a neighbourhood where the mask is constant)."""
    a, b = uniform(rng, -2, 2, (2, 3)), uniform(rng, -2, 2, (3,))
    return [((a, b), {}), ((a, np.float64(0.5)), {})]


def _mask(truth, a, b):
    """``truth`` as 0.0/1.0 in the float type the inputs promote to (float64 for plain numbers)."""
    dtype = np.result_type(a, b, np.float32) if np.result_type(a, b).kind == "f" else np.float64
    return np.asarray(truth, dtype=dtype)


def _comparison(name, ufunc, symbol):
    @primitive(name, partials=[_zero, _zero], samples=_samples, kinks=[lambda a, b: np.subtract(a, b)],
               code=f"(1.0 if {{0}} {symbol} {{1}} else 0.0)")
    def compare(a, b):
        return _mask(ufunc(a, b), a, b)

    compare.__doc__ = (f"1.0 where ``a {symbol} b``, else 0.0 (NaN compares as NumPy's ``{ufunc.__name__}``); "
                       f"derivative 0. A comparison recorded in the graph, so compiled code computes it.")
    return compare


greater = _comparison("greater", np.greater, ">")
greater_equal = _comparison("greater_equal", np.greater_equal, ">=")
less = _comparison("less", np.less, "<")
less_equal = _comparison("less_equal", np.less_equal, "<=")
equal = _comparison("equal", np.equal, "==")
not_equal = _comparison("not_equal", np.not_equal, "!=")

#: Tensor's comparison methods and the recorded op each becomes while compile records f.
BY_METHOD = {"__gt__": greater, "__ge__": greater_equal, "__lt__": less, "__le__": less_equal,
             "__eq__": equal, "__ne__": not_equal}
#: NumPy's comparison ufuncs and their recorded op.
BY_UFUNC = {np.greater: greater, np.greater_equal: greater_equal, np.less: less, np.less_equal: less_equal,
            np.equal: equal, np.not_equal: not_equal}

__all__ = ["equal", "greater", "greater_equal", "less", "less_equal", "not_equal"]
