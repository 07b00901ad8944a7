"""The one check of a number argument shared across nn: ``number_in`` (a layer's hyper-parameter, a
penalty's weight, a clipping limit). It lives apart from :mod:`nn.utils` so that :mod:`nn.clip`, which
``nn.utils`` re-exports, can use it without an import cycle; ``nn.utils.number_in`` is the same function.
"""
from __future__ import annotations

import math
import numbers

__all__ = ["number_in", "NotANumber"]


class NotANumber(TypeError, ValueError):
    """A number was expected and something else came (a str, a bool, None): a TypeError, and a
    ValueError too, as every other refusal of ``number_in`` is (either ``except`` catches it)."""


def _expected(low, high, open_low, open_high, allow_inf) -> str:
    """The interval in words: 'a finite number in [0, 1]', '... >= 0', '... > 0 or inf', 'a finite number'."""
    text = "a finite number"
    if low > -math.inf and high < math.inf:
        text += f" in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    elif low > -math.inf:
        text += f" {'>' if open_low else '>='} {low:g}"
    elif high < math.inf:
        text += f" {'<' if open_high else '<='} {high:g}"
    return text + (" or inf" if allow_inf and high == math.inf else "")


def number_in(value, name: str, low=-math.inf, high=math.inf, *, open_low=False, open_high=False,
              allow_inf=False) -> float:
    """``value`` as a float in [low, high] (an end ``open_*`` excluded), finite unless ``allow_inf`` (then
    inf too, where ``high`` is inf), or an error naming ``name``, what was expected and what came: a
    ValueError, or :class:`NotANumber` (a TypeError and a ValueError) for something that is not a number.

    >>> number_in(0.1, "BatchNorm: momentum", 0, 1)
    0.1
    >>> number_in(float("nan"), "LeakyReLU: alpha")
    Traceback (most recent call last):
    ...
    ValueError: LeakyReLU: alpha must be a finite number, got nan
    >>> number_in(-1, "l2_penalty: lam", 0)
    Traceback (most recent call last):
    ...
    ValueError: l2_penalty: lam must be a finite number >= 0, got -1
    >>> number_in("2", "clip_grad_norm_: norm_type", 0, open_low=True, allow_inf=True)
    Traceback (most recent call last):
    ...
    nn.checks.NotANumber: clip_grad_norm_: norm_type must be a finite number > 0 or inf, got '2' (str)
    """
    expected = _expected(low, high, open_low, open_high, allow_inf)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise NotANumber(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    number = float(value)
    inside = (number > low if open_low else number >= low) and (number < high if open_high else number <= high)
    if not (inside and (math.isfinite(number) or allow_inf and number == math.inf == high)):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return number
