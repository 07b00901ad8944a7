"""Valid random arguments for each declared primitive, so that the test suite checks every one.

A primitive's ``samples`` is a function ``samples(rng) -> [(inputs, params), ...]``; these helpers
build the common ones. The shapes include broadcasting pairs and 0-d arrays, so that every rule is
checked where shapes differ (a rule must return its input's shape, reverse, or its output's, forward),
and a case of 0-d inputs only, where a scalar SymPy counterpart is checked (value and derivative).
"""
from __future__ import annotations

import numpy as np

SHAPES_1 = [(), (3,), (2, 3)]
SHAPES_2 = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((4,), ()), ((), ())]


def uniform(rng, lo, hi, shape):
    """An array of ``shape`` drawn uniformly from (lo, hi)."""
    return np.asarray(rng.uniform(lo, hi, shape))


def unary(lo=-2.0, hi=2.0, **params):
    """Samples of a one-input op on each of SHAPES_1, inputs uniform in (lo, hi)."""
    return lambda rng: [((uniform(rng, lo, hi, s),), dict(params)) for s in SHAPES_1]


def binary(lo=-2.0, hi=2.0, lo2=None, hi2=None):
    """Samples of a two-input op on each pair of SHAPES_2: broadcasting ones, and two 0-d inputs."""
    lo2 = lo if lo2 is None else lo2
    hi2 = hi if hi2 is None else hi2
    return lambda rng: [((uniform(rng, lo, hi, a), uniform(rng, lo2, hi2, b)), {}) for a, b in SHAPES_2]


def cases(*shape_cases):
    """Samples from (input shapes, params) pairs: inputs uniform in (-2, 2)."""
    return lambda rng: [(tuple(uniform(rng, -2, 2, s) for s in shapes), dict(params))
                        for shapes, params in shape_cases]


def cases1(*shape_cases):
    """Samples of a one-input op from (shape, params) pairs."""
    return cases(*[((shape,), params) for shape, params in shape_cases])
