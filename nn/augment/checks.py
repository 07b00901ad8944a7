"""The argument checks the augmentations (and their transforms) share; an error names the argument."""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_batch", "is_number", "range_pair", "symmetric_range", "factor_range", "shift_ranges",
           "probability", "size_pair", "padding_pair", "uniform"]


def check_batch(x, name="x") -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-D NCHW batch (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    return x


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def range_pair(value, name: str) -> tuple:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(is_number(v) for v in value) or value[0] > value[1]):
        raise ValueError(f"{name} must be a number or a (low, high) pair with low <= high, got {value!r}")
    return value[0], value[1]


def symmetric_range(value, name: str, limit: float = np.inf) -> tuple:
    """A number d >= 0 means (-d, d); a pair (low, high) is taken as it is. |ends| < limit."""
    if is_number(value):
        if value < 0:
            raise ValueError(f"{name} must be >= 0 (meaning the range (-{name}, {name})), got {value}")
        low, high = -value, value
    else:
        low, high = range_pair(value, name)
    if max(abs(low), abs(high)) >= limit:
        raise ValueError(f"{name} must lie within (-{limit}, {limit}), got {value!r}")
    return low, high


def factor_range(value, name: str) -> tuple:
    """A factor range around 1: a number z in [0, 1) means (1 - z, 1 + z); a pair (low, high)
    with 0 < low <= high is taken as it is."""
    if is_number(value):
        if not 0 <= value < 1:
            raise ValueError(f"{name} as a number z means the range (1 - z, 1 + z) and must be in "
                             f"[0, 1), got {value}; pass a (low, high) pair for other ranges")
        return 1 - value, 1 + value
    low, high = range_pair(value, name)
    if low <= 0:
        raise ValueError(f"{name} must be a range of positive factors, got {value!r}")
    return low, high


def shift_ranges(value, name: str = "max_shift"):
    """max_shift m (both axes) or (m_rows, m_cols), in pixels: ((low, high) per axis, integer?)."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(is_number(v) and v >= 0 for v in values):
        raise ValueError(f"{name} must be a number >= 0 or a pair (rows, cols) of them, got {value!r}")
    integer = all(isinstance(v, numbers.Integral) for v in values)
    return tuple((-v, v) for v in values), integer


def probability(p, name="p") -> float:
    if not is_number(p) or not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def size_pair(value, name: str) -> tuple:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                   for v in values):
        raise ValueError(f"{name} must be an int or a pair (rows, cols) of ints, got {value!r}")
    return tuple(int(v) for v in values)


def padding_pair(value) -> tuple:
    pad = size_pair(value, "padding")
    if min(pad) < 0:
        raise ValueError(f"padding must be >= 0, got {value!r}")
    return pad


def uniform(rng, low_high, n):
    low, high = low_high
    return rng.uniform(low, high, size=n)
