"""Switching recording on and off: ``no_grad`` (in autodiff.tensor, the bottom rung), and here
``enable_grad`` and ``set_grad_enabled``, PyTorch's names, each a context manager and a decorator.

>>> import autodiff as ad
>>> x = ad.Tensor(2.0, requires_grad=True)
>>> with ad.no_grad():
...     with ad.enable_grad():
...         y = x * x                      # recorded again inside no_grad
...     z = x * x                          # not recorded
>>> y.requires_grad, z.requires_grad
(True, False)
"""
from __future__ import annotations

import numpy as np

from .tensor import _grad_mode, _GradSwitch


class enable_grad(_GradSwitch):
    """Context manager (and decorator) in which operations are recorded, inside ``no_grad`` too
    (``torch.enable_grad``): a function that must build a graph whoever calls it.

    >>> import autodiff as ad
    >>> @ad.enable_grad()
    ... def square(x):
    ...     return x * x
    >>> with ad.no_grad():
    ...     y = square(ad.Tensor(3.0, requires_grad=True))
    >>> y.requires_grad
    True
    """

    _enabled = True


class set_grad_enabled(_GradSwitch):
    """Recording on (True) or off (False): at once when called, as ``torch.set_grad_enabled``, so that
    ``set_grad_enabled(False)`` alone switches it off; as a context manager (``with
    set_grad_enabled(training):``) the previous mode comes back at the end; as a decorator, around each
    call of the function (decorating changes nothing at once).

    >>> import autodiff as ad
    >>> x = ad.Tensor(1.0, requires_grad=True)
    >>> with ad.set_grad_enabled(False):
    ...     (x * 2).requires_grad
    False
    >>> ad.is_grad_enabled()
    True
    """

    def __init__(self, mode: bool):
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_grad_enabled: mode must be True or False, got {mode!r}")
        self._enabled = bool(mode)
        self._previous = _grad_mode.enabled
        _grad_mode.enabled = self._enabled

    def __enter__(self):
        return self          # switched already, when made

    def __call__(self, func):
        _grad_mode.enabled = self._previous     # a decorator switches around the calls only
        return super().__call__(func)
