"""Gradient clipping: torch.nn.utils's ``clip_grad_norm_`` and ``clip_grad_value_`` (``nn.utils`` has
them), and the Keras options ``clipnorm`` / ``clipvalue`` / ``global_clipnorm`` that every ``nn.optim``
optimiser takes and applies in ``step``, before the update.

>>> import numpy as np, nn
>>> w = nn.Parameter(np.zeros(2, np.float32)); w.grad = np.array([3.0, 4.0], np.float32)
>>> nn.utils.clip_grad_norm_([w], max_norm=1.0)    # the norm before clipping, as torch returns it
5.0
>>> w.grad.round(4)
array([0.6, 0.8], dtype=float32)
"""
from __future__ import annotations

import math

import numpy as np

import kernels
from autodiff import Tensor

from .checks import number_in

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_options", "clip_gradients"]

#: Keras's clipping options, of which an optimiser takes at most one.
CLIP_OPTIONS = ("clipnorm", "clipvalue", "global_clipnorm")


def _with_grads(parameters, who):
    """The parameters (one Tensor or an iterable of them) that have a gradient."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{who}: parameters[{i}] must be a Tensor, got {type(p).__name__}")
    return [p for p in params if p.grad is not None]


def _norm(g, norm_type):
    """One gradient's ``norm_type``-norm, in float64; a CUDA device gradient's 2-norm is summed there (its
    squares, then one number read out)."""
    if kernels.is_device_array(g):
        if norm_type != 2:
            raise ValueError(f"norm_type must be 2 for gradients on the CUDA device, got {norm_type!r}")
        return math.sqrt(float((g * g).sum()))
    return float(np.linalg.norm(np.ravel(np.asarray(g, dtype=np.float64)), ord=norm_type))


def _total_norm(grads, norm_type):
    """The ``norm_type``-norm of all gradients together (one long vector), in float64."""
    if not grads:
        return 0.0
    return float(np.linalg.norm(np.array([_norm(g, norm_type) for g in grads]), ord=norm_type))


def _scale_in_place(p, factor):
    g = p.grad
    if kernels.is_device_array(g):
        p.grad = g * factor                    # DeviceArray keeps its dtype; made on the device
    elif isinstance(g, np.ndarray) and g.flags.writeable and g.dtype.kind == "f":
        g *= g.dtype.type(factor)
    else:
        p.grad = np.multiply(g, factor)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """torch's: scale every gradient in place by ``max_norm / (total_norm + 1e-6)`` when that is below 1,
    ``total_norm`` being the ``norm_type``-norm of all gradients together; returns ``total_norm``."""
    who = "clip_grad_norm_"
    max_norm = number_in(max_norm, f"{who}: max_norm", 0)
    norm_type = number_in(norm_type, f"{who}: norm_type", 0, open_low=True, allow_inf=True)
    params = _with_grads(parameters, who)
    total = _total_norm([p.grad for p in params], norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"{who}: the total norm of order {norm_type} of the gradients is {total}; "
                           f"pass error_if_nonfinite=False to clip anyway")
    factor = max_norm / (total + 1e-6)
    if not factor >= 1:             # a NaN norm scales by NaN, as torch's clamp(max=1) leaves it
        for p in params:
            _scale_in_place(p, factor)
    return total


def clip_grad_value_(parameters, clip_value):
    """torch's: clip every gradient element into [-clip_value, clip_value], in place."""
    clip_value = number_in(clip_value, "clip_grad_value_: clip_value", 0)
    for p in _with_grads(parameters, "clip_grad_value_"):
        g = p.grad
        if kernels.is_device_array(g):
            p.grad = g.clip(-clip_value, clip_value)
        elif isinstance(g, np.ndarray) and g.flags.writeable and g.dtype.kind == "f":
            np.clip(g, -clip_value, clip_value, out=g)
        else:
            p.grad = np.clip(g, -clip_value, clip_value)


def clip_options(who, clipnorm=None, clipvalue=None, global_clipnorm=None):
    """An optimiser's clipping, checked: None or (name, limit); Keras allows one of the three."""
    given = {name: value for name, value in zip(CLIP_OPTIONS, (clipnorm, clipvalue, global_clipnorm))
             if value is not None}
    if len(given) > 1:
        raise ValueError(f"{who}: give at most one of clipnorm, clipvalue, global_clipnorm (as Keras), "
                         f"got {', '.join(f'{k}={v!r}' for k, v in given.items())}")
    if not given:
        return None
    (name, value), = given.items()
    return name, number_in(value, f"{who}: {name}", 0)


def clip_gradients(clip, grads):
    """Keras's clipping of ``grads`` (host or CUDA device arrays), as new arrays: ``clipnorm`` rescales each
    gradient to norm <= c (g * c / max(|g|, c)), ``global_clipnorm`` all of them together, ``clipvalue``
    clips each element into [-c, c]. On the device the norms read one number per gradient out."""
    name, limit = clip
    if name == "clipvalue":
        return [g.clip(-limit, limit) if kernels.is_device_array(g) else np.clip(g, -limit, limit) for g in grads]
    if name == "clipnorm":
        norms = [_total_norm([g], 2.0) for g in grads]
    else:
        norms = [_total_norm(grads, 2.0)] * len(grads)
    return [g if norm <= limit else g * g.dtype.type(limit / norm) for g, norm in zip(grads, norms)]
