"""What a kernel call takes besides its arrays, validated once, when the object is built.

A layer or an optimiser builds its options once (at construction) and hands the same object to
every call. The entry points that take one (``kernels.conv2d.forward``, ``kernels.pool2d.max_forward``,
``kernels.optim.adam_step``, ...) check the arrays on every call (dtype, shape, that they fit the
options) but never the options again. The keyword functions (``kernels.conv2d_forward(x, w,
stride=2)``, ``kernels.adam_update(..., lr=0.1)``) are thin wrappers: they build the object, then call
the entry point.

    ConvGeometry(stride=1, padding=0, dilation=1, groups=1)       conv2d: forward, backward_input, backward_weight
    PoolGeometry(kernel_size, stride=None, padding=0)             pool2d: max_forward, avg_forward, avg_backward
    SGDHyper(lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)          optim.sgd_step
    AdagradHyper(lr=0.01, lr_decay=0, weight_decay=0, eps=1e-10)                   optim.adagrad_step
    AdadeltaHyper(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0)                       optim.adadelta_step
    RMSpropHyper(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False)
    AdamHyper(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)   optim.adam_step
    AdamWHyper(... weight_decay=1e-2): Adam with decoupled weight decay                optim.adam_step

Each is a frozen dataclass: immutable, comparable, printable, and normalised when built (pairs
become tuples of two ints, numbers Python floats). A bad value raises at construction, naming the
argument, what it must be and what it got. The defaults are torch's (torch.nn.functional.conv2d,
max_pool2d, torch.optim).

>>> import kernels
>>> geometry = kernels.ConvGeometry(stride=2, padding=1)
>>> geometry
ConvGeometry(stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1)
>>> geometry.output_hw(28, 28, (3, 3))            # floor((28 + 2 - 2 - 1) / 2) + 1
(14, 14)
>>> kernels.AdamHyper(betas=(0.9, 1.0))
Traceback (most recent call last):
...
ValueError: betas[1] must be in [0.0, 1.0), got 1.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

__all__ = ["ConvGeometry", "PoolGeometry", "SGDHyper", "AdagradHyper", "AdadeltaHyper", "RMSpropHyper",
           "AdamHyper", "AdamWHyper", "pair", "output_size"]


# --- the checks, each naming the argument ---------------------------------------------------------

def pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints -> (int, int), each >= minimum (e.g. a stride, a padding)."""
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    # each entry an int (a str is no pair of ints, and int() would floor 1.5 or overflow at inf)
    if isinstance(value, (str, bytes)) or not all(isinstance(v, (int, np.integer)) for v in _entries(value)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if a < minimum or b < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if max(a, b) >= 2 ** 31:          # the kernels index in int32/int64: a larger one overflows there
        raise ValueError(f"{name} must be < 2**31, got {value!r}")
    return a, b


def _entries(value):
    """The entries of a would-be pair (none for a non-iterable: the caller's error then names it)."""
    try:
        return tuple(value)
    except TypeError:
        return ()


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, what: str, hint: str = "") -> int:
    """floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1, which must be >= 1.

    The output length of a window sliding over one axis (torch's formula for conv2d and pooling);
    ``what`` says where, for the error when the window does not fit, and ``hint`` ends that error.
    """
    out = _slide(size, kernel, stride, padding, dilation)
    if out < 1:
        raise ValueError(f"{what}: the output would be empty: input size {size} with padding {padding} is smaller "
                         f"than the (dilated) kernel {dilation * (kernel - 1) + 1}{hint}")
    return out


def channels_last_hint(channels, height, width) -> str:
    """For an image (C, H, W) that looks like Keras's channels-last (H, W, C) (last size 1 or 3, the first
    two over 4), the end of a message saying so; else ''. ``channels`` None: unknown, ''."""
    if channels is None or width not in (1, 3) or channels <= 4 or height <= 4:
        return ""
    return (f"; the layout is channels-first (channels, height, width), and ({channels}, {height}, {width}) looks "
            f"channels-last (Keras's default): use ({width}, {channels}, {height})")


def _slide(size, kernel, stride, padding, dilation):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _number(value, name: str) -> float:
    """A hyper-parameter as a Python float (NumPy scalars too), refusing NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _at_least(value, name: str, low: float) -> float:
    value = _number(value, name)
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def _between(value, name: str, low: float, high: float, high_included: bool) -> float:
    """low <= value <= high (or < high when ``high_included`` is False)."""
    value = _number(value, name)
    ok = low <= value <= high if high_included else low <= value < high
    if not ok:
        raise ValueError(f"{name} must be in [{low}, {high}{']' if high_included else ')'}, got {value}")
    return value


def _positive(value, name: str) -> float:
    value = _number(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _store(options, **values):
    """Set the normalised fields of a frozen dataclass (its own ``__setattr__`` refuses: that is the
    point of frozen; ``object.__setattr__`` in ``__post_init__`` is the dataclasses idiom for this)."""
    for name, value in values.items():
        object.__setattr__(options, name, value)


# --- geometry -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvGeometry:
    """How a 2-D convolution slides: stride, zero padding and dilation per axis (height, width), and
    the number of groups (input channels and filters split into ``groups`` groups, group g's filters
    seeing only group g's channels). Each of stride, padding, dilation: an int or a pair."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self):
        groups = self.groups
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"groups must be an int >= 1, got {groups!r}")
        _store(self, stride=pair(self.stride, "stride", 1), padding=pair(self.padding, "padding", 0),
               dilation=pair(self.dilation, "dilation", 1), groups=int(groups))

    def output_hw(self, height: int, width: int, kernel, of: str = "the input", channels=None) -> tuple[int, int]:
        """(Ho, Wo) for a (kh, kw) kernel over a (height, width) input, each >= 1 or a ValueError:
        Ho = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1, likewise Wo. ``of`` names the input; with its
        ``channels``, the error also says when (channels, height, width) looks channels-last."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, self.stride, self.padding, self.dilation
        ho, wo = _slide(height, kh, sh, ph, dh), _slide(width, kw, sw, pw, dw)
        if ho < 1 or wo < 1:          # the messages are written only when needed (this runs on every call)
            hint = channels_last_hint(channels, height, width)
            output_size(height, kh, sh, ph, dh, f"conv2d over the height of {of} (H={height}) with kh={kh}", hint)
            output_size(width, kw, sw, pw, dw, f"conv2d over the width of {of} (W={width}) with kw={kw}", hint)
        return ho, wo


@dataclass(frozen=True)
class PoolGeometry:
    """A pooling window: kernel size, stride (default: the kernel size) and padding per axis, each an
    int or a pair. Padding may be at most kernel_size // 2 (torch's rule: every window then holds at
    least one element of the input)."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self):
        kernel = pair(self.kernel_size, "kernel_size", 1)
        stride = kernel if self.stride is None else pair(self.stride, "stride", 1)
        padding = pair(self.padding, "padding", 0)
        half = (kernel[0] // 2, kernel[1] // 2)
        if padding[0] > half[0] or padding[1] > half[1]:
            raise ValueError(f"padding must be at most kernel_size // 2 = {half} (torch's rule: every window must "
                             f"hold at least one element of the input), got padding {padding} with kernel_size "
                             f"{kernel}")
        _store(self, kernel_size=kernel, stride=stride, padding=padding)

    def output_hw(self, height: int, width: int, of: str = "the input", channels=None) -> tuple[int, int]:
        """(Ho, Wo), Ho = floor((H + 2 ph - kh) / sh) + 1 (likewise Wo), each >= 1 or a ValueError (with
        ``channels``, saying when (channels, height, width) looks channels-last)."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        ho, wo = _slide(height, kh, sh, ph, 1), _slide(width, kw, sw, pw, 1)
        if ho < 1 or wo < 1:          # the messages are written only when needed (this runs on every call)
            hint = channels_last_hint(channels, height, width)
            output_size(height, kh, sh, ph, 1, f"pooling over the height of {of} (H={height}) with kh={kh}", hint)
            output_size(width, kw, sw, pw, 1, f"pooling over the width of {of} (W={width}) with kw={kw}", hint)
        return ho, wo


# --- optimiser hyper-parameters (section 5.4; torch.optim's names and defaults) -------------------

@dataclass(frozen=True)
class SGDHyper:
    """SGD with momentum / Nesterov momentum (eqs. 5.17-5.20). Nesterov needs momentum > 0 and
    dampening == 0 (PyTorch's rule)."""

    lr: float
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self):
        momentum = _at_least(self.momentum, "momentum", 0.0)
        dampening = _between(self.dampening, "dampening", 0.0, 1.0, True)
        nesterov = bool(self.nesterov)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"Nesterov momentum needs momentum > 0 and dampening == 0, got "
                             f"momentum={momentum}, dampening={dampening}")
        _store(self, lr=_at_least(self.lr, "lr", 0.0), momentum=momentum, dampening=dampening,
               weight_decay=_at_least(self.weight_decay, "weight_decay", 0.0), nesterov=nesterov)


@dataclass(frozen=True)
class AdagradHyper:
    """AdaGrad (eq. 5.21) with a learning rate decaying with the step."""

    lr: float = 0.01
    lr_decay: float = 0.0
    weight_decay: float = 0.0
    eps: float = 1e-10

    def __post_init__(self):
        _store(self, lr=_at_least(self.lr, "lr", 0.0), lr_decay=_at_least(self.lr_decay, "lr_decay", 0.0),
               weight_decay=_at_least(self.weight_decay, "weight_decay", 0.0), eps=_positive(self.eps, "eps"))


@dataclass(frozen=True)
class AdadeltaHyper:
    """AdaDelta (eqs. 5.22-5.26); ``rho`` is the book's gamma."""

    lr: float = 1.0
    rho: float = 0.9
    eps: float = 1e-6
    weight_decay: float = 0.0

    def __post_init__(self):
        _store(self, lr=_at_least(self.lr, "lr", 0.0), rho=_between(self.rho, "rho", 0.0, 1.0, True),
               eps=_positive(self.eps, "eps"), weight_decay=_at_least(self.weight_decay, "weight_decay", 0.0))


@dataclass(frozen=True)
class RMSpropHyper:
    """RMSprop (eqs. 5.27-5.28); ``alpha`` is the book's gamma; momentum and centring are PyTorch's."""

    lr: float = 0.01
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False

    def __post_init__(self):
        _store(self, lr=_at_least(self.lr, "lr", 0.0), alpha=_between(self.alpha, "alpha", 0.0, 1.0, True),
               eps=_positive(self.eps, "eps"), weight_decay=_at_least(self.weight_decay, "weight_decay", 0.0),
               momentum=_at_least(self.momentum, "momentum", 0.0), centered=bool(self.centered))


@dataclass(frozen=True)
class AdamHyper:
    """Adam (eqs. 5.29-5.33; ``betas`` are the book's gamma_1, gamma_2), AMSGrad with ``amsgrad``.
    Weight decay is the L2 penalty added to the gradient; AdamWHyper decouples it."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False
    #: AdamW's decoupled weight decay (p <- p * (1 - lr * weight_decay) first) instead of the L2 penalty
    decoupled: ClassVar[bool] = False

    def __post_init__(self):
        try:
            beta1, beta2 = self.betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {self.betas!r}") from None
        _store(self, lr=_at_least(self.lr, "lr", 0.0),
               betas=(_between(beta1, "betas[0]", 0.0, 1.0, False), _between(beta2, "betas[1]", 0.0, 1.0, False)),
               eps=_positive(self.eps, "eps"), weight_decay=_at_least(self.weight_decay, "weight_decay", 0.0),
               amsgrad=bool(self.amsgrad))


@dataclass(frozen=True)
class AdamWHyper(AdamHyper):
    """AdamW (Loshchilov and Hutter, "Decoupled Weight Decay Regularization"; not in the book):
    Adam's fields, PyTorch's default weight_decay=1e-2 (Adam's is 0), the decay decoupled."""

    weight_decay: float = 1e-2
    decoupled: ClassVar[bool] = True
