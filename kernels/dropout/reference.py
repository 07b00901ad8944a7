"""The dropout mask in NumPy: the oracle of cpu.py and cuda.py, whose kernels call its hash.

The mask is counter-based: element k of a call with seed s keeps its input when u_k >= rate,
u_k = hash32(k + s * 2654435761 mod 2^32) / 2^32 (an integer hash, Wellons' lowbias32 shape, with
multipliers below 2^31 so that every product fits in an int64), so device and host give the same
mask for the same seed, without moving any random numbers.
"""
from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

MASK32 = 0xFFFFFFFF


@register_jitable
def uniform_hash(k, seed):
    """u_k in [0, 1) for integer k and an int64 seed < 2^30 (see the module docstring): on int64 NumPy
    arrays here, and per element in cpu.py's and cuda.py's kernels (register_jitable: one formula)."""
    h = (k + seed * 2654435761) & MASK32
    h ^= h >> 16
    h = (h * 0x7FEB352D) & MASK32
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & MASK32
    h ^= h >> 16
    return h / 4294967296.0


def keep_scale(rate):
    """1 / (1 - rate), the kept elements' factor; 0 for rate 1 (u_k < 1 always: nothing is kept)."""
    return 0.0 if rate >= 1.0 else 1.0 / (1.0 - rate)


def dropout_mask(shape, rate, seed, dtype):
    """0 where u_k < rate, else 1 / (1 - rate) (inverted dropout: E[mask] = 1), of ``shape``."""
    u = uniform_hash(np.arange(int(np.prod(shape)), dtype=np.int64), np.int64(seed)).reshape(shape)
    return np.where(u >= rate, keep_scale(rate), 0.0).astype(dtype)
