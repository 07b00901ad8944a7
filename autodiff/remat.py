"""Rematerialisation: ``checkpoint`` (``jax.checkpoint``, alias ``remat``; ``torch.utils.checkpoint``).

A checkpointed segment is ONE node that keeps only its inputs: the forward pass records none of its
intermediate values, and the reverse rule runs ``f`` again on the saved inputs with recording on and
sweeps that subgraph with the engine's reverse sweep. The same ops on the same values in the same
order: the gradients are the un-checkpointed ones, bit for bit; memory is traded for one more forward
pass. With ``create_graph=True`` the re-run is linked to the inputs, so grad of grad goes through.
"""
from __future__ import annotations

import functools

import numpy as np

from .custom import _PerInput, _name_of, _pullback, _pushforward, _run_detached, _single_output, _tracked
from .ops import identity
from .primitives import Primitive
from . import tensor as _tensor
from .tensor import Tensor, _constant, _grad_mode

__all__ = ["checkpoint", "remat"]


def _is_input(a) -> bool:
    """Tensors, arrays and numbers are the node's inputs (constants where untracked); the rest is static."""
    return isinstance(a, (Tensor, np.ndarray, np.generic, float, int)) and not isinstance(a, bool)


class _Segment:
    """What a checkpoint node keeps besides its inputs: the function and its static arguments (functions,
    strings, keywords...; no values of its own). Shown as the function's name (``fun=layer``)."""

    __slots__ = ("fun", "positions", "statics", "kwargs")

    def __init__(self, fun, args, kwargs):
        self.fun, self.kwargs = fun, kwargs
        self.positions = [i for i, a in enumerate(args) if _is_input(a)]
        self.statics = {i: a for i, a in enumerate(args) if not _is_input(a)}

    def __repr__(self):
        return _name_of(self.fun)

    def call(self, tensors):
        args = dict(self.statics)
        args.update(zip(self.positions, tensors))
        return self.fun(*[args[i] for i in range(len(args))], **self.kwargs)


def _checkpoint_impl(*values, fun):
    what = f"checkpoint({fun})"
    return _single_output(_run_detached(lambda *xs: fun.call(xs), [Tensor._make(v) for v in values], what), what)


def _segment_leaves(args, flags, create_graph):
    """Leaves standing for a segment's inputs: fresh ones, or (create_graph) nodes linked to the inputs."""
    if create_graph:
        return [identity(a) if f and _tracked(a) else a for a, f in zip(args, flags)]
    return [Tensor._make(a, requires_grad=bool(f)) for a, f in zip(args, flags)]


def _checkpoint_vjp(g, out, *args, wanted, fun):
    create_graph = isinstance(out, Tensor)
    leaves = _segment_leaves(args, wanted, create_graph)
    return _pullback(lambda *xs: [fun.call(xs)], leaves, wanted, [g], create_graph or isinstance(g, Tensor))


def _checkpoint_jvp(i, t, out, *args, fun):
    create_graph = isinstance(out, Tensor)
    leaves = _segment_leaves(args, [k == i for k in range(len(args))], create_graph)
    return _pushforward(lambda *xs: fun.call(xs), leaves, i, t, create_graph or isinstance(t, Tensor))


_CHECKPOINT = Primitive("checkpoint", _checkpoint_impl, vjp_joint=_checkpoint_vjp, jvp=_PerInput(_checkpoint_jvp))
_CHECKPOINT.uncompilable = ("it is a checkpoint, whose rule runs a Python function again; compile the "
                            "function without ad.checkpoint")


def checkpoint(fun):
    """``f`` recorded as one node that keeps only its inputs (``jax.checkpoint``, ``torch.utils.checkpoint``).

    The forward pass records none of ``f``'s intermediate values; the reverse sweep runs ``f`` again
    on the saved inputs, with recording, and sweeps that subgraph: memory for time, the same gradients.
    Tensors, arrays and numbers are the node's inputs (untracked ones constants), keywords and other
    arguments (functions, strings) are kept with it as they are.

    >>> import numpy as np
    >>> import autodiff as ad
    >>> layer = lambda h, w: ad.tanh(h @ w)
    >>> w = np.array([[0.5, -1.0], [2.0, 0.25]])
    >>> loss = lambda w: ad.sum(ad.checkpoint(layer)(np.ones(2), w) ** 2)
    >>> np.array_equal(ad.grad(loss)(w), ad.grad(lambda w: ad.sum(layer(np.ones(2), w) ** 2))(w))
    True
    """
    if not callable(fun):
        raise TypeError(f"checkpoint: fun must be a function, got {fun!r} ({type(fun).__name__})")

    @functools.wraps(fun)
    def checkpointed(*args, **kwargs):
        if not (_grad_mode.enabled and any(_tracked(a) for a in args)) or _tensor.compiling:
            return fun(*args, **kwargs)     # (autodiff.compile: the segment's operations, in the program)
        segment = _Segment(fun, args, kwargs)
        what = f"checkpoint({segment})"
        value = _single_output(_run_detached(lambda *xs: segment.call(xs), [args[i] for i in segment.positions],
                                             what), what)
        dtype = getattr(value, "dtype", None)
        inputs = tuple(args[i] if isinstance(args[i], Tensor) else _constant(args[i], dtype) for i in segment.positions)
        return Tensor._make(value, _CHECKPOINT, inputs, {"fun": segment}, requires_grad=True)

    return checkpointed


#: JAX's other name for :func:`checkpoint`.
remat = checkpoint
