"""1-D layers over NCL sequences: Conv1D, MaxPool1D, AvgPool1D, GlobalAveragePooling1D (Keras's names).

Each is its 2-D counterpart over a height of 1 (``F.conv1d``; the poolings reshape to (N, C, 1, L)
around ``F.max_pool2d`` / ``F.avg_pool2d``), so every kernel backend serves them. Channels first,
as torch: ``input_shape=(C, L)``. The geometry is built once, at construction.

>>> import nn
>>> model = nn.Sequential([nn.Input((4, 32)), nn.Conv1D(8, 5, strides=2, activation="relu"), nn.MaxPool1D(2),
...                        nn.GlobalAveragePooling1D()])
>>> model.output_shape, model.layers[1].weight.shape
((8,), (8, 4, 5))
"""
from __future__ import annotations

import kernels
from autodiff.ops import reshape
from kernels.options import output_size

from .. import functional as F
from .. import init as initialisers
from ..convolution import _one, conv1d_geometry
from ..module import Layer, register
from ..utils import positive_int
from .conv import Convolution, _keras_strides

__all__ = ["Conv1D", "MaxPool1D", "AvgPool1D", "GlobalAveragePooling1D"]


def _length(layer, input_shape):
    """L of a (C, L) input, or an error naming the layer."""
    if len(input_shape) != 2:
        raise ValueError(f"{type(layer).__name__} needs input (C, L), got {input_shape}")
    return input_shape[1]


@register
class Conv1D(Convolution):
    """1-D convolution, weight (filters, C/groups, kernel_size), bias (filters,); Keras's arguments.

    Glorot-uniform weights and zero bias by default, as Keras. ``padding``: an int, "valid" (0) or
    "same" (dilation_rate (kernel_size - 1) / 2 on each side: stride 1 keeps the length).
    ``stride=`` (torch) or ``strides=`` (Keras); ``dilation=`` (torch) or ``dilation_rate=`` (Keras).
    """

    same_dtype = True

    convolve = staticmethod(F.conv1d)

    def __init__(self, filters, kernel_size, stride=1, padding="valid", dilation=1, groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros", name=None,
                 strides=None, dilation_rate=None, input_shape=None):
        super().__init__(activation, name, input_shape)
        stride = _keras_strides(stride, strides, 1, "Conv1D")
        if dilation_rate is not None:
            if dilation != 1:
                raise TypeError(f"Conv1D: give dilation= or Keras's dilation_rate=, not both (got dilation={dilation!r}, "
                                f"dilation_rate={dilation_rate!r})")
            dilation = dilation_rate
        filters, kernel = positive_int(filters, "filters"), _one(kernel_size, "kernel_size", 1)
        self.geometry = g = conv1d_geometry(kernel, stride, padding, dilation, groups)
        self.config = dict(filters=filters, kernel_size=kernel, stride=g.stride[1],
                           padding=padding if isinstance(padding, str) else g.padding[1], dilation=g.dilation[1],
                           groups=g.groups, activation=activation, use_bias=bool(use_bias),
                           kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)
        initialisers.get(kernel_initializer), initialisers.get(bias_initializer)

    def _build(self, input_shape):
        length = _length(self, input_shape)
        c, groups, channels = self.config, self.geometry.groups, input_shape[0]
        if channels % groups or c["filters"] % groups:
            raise ValueError(f"Conv1D: groups={groups} must divide the input channels ({channels}) and "
                             f"filters ({c['filters']})")
        self.add_weight("weight", (c["filters"], channels // groups, c["kernel_size"]), c["kernel_initializer"])
        self.bias = self.add_weight("bias", (c["filters"],), c["bias_initializer"]) if c["use_bias"] else None
        g = self.geometry
        return (c["filters"], output_size(length, c["kernel_size"], g.stride[1], g.padding[1], g.dilation[1],
                                          f"Conv1D over the length of its input of shape {input_shape}"))



class _Pool1D(Layer):
    """A 1-D pooling window: ``pool_size``, ``stride`` (default: the pool size), zero ``padding``."""

    def __init__(self, pool_size=2, stride=None, padding=0, name=None, strides=None, input_shape=None):
        super().__init__(name, input_shape)
        stride = _keras_strides(stride, strides, None, type(self).__name__)
        size = _one(pool_size, "pool_size", 1)
        stride = None if stride is None else _one(stride, "stride", 1)
        self.geometry = kernels.PoolGeometry((1, size), (1, size if stride is None else stride),
                                             (0, _one(padding, "padding", 0)))
        self.config = dict(pool_size=size, stride=stride, padding=self.geometry.padding[1])

    def _build(self, input_shape):
        g = self.geometry
        return (input_shape[0], output_size(_length(self, input_shape), g.kernel_size[1], g.stride[1], g.padding[1], 1,
                                            f"{type(self).__name__} over the length of its input of shape {input_shape}"))

    def forward(self, x):
        self._check_input(x)
        (n, *_), (c, length) = F._shape(x), self.input_shape
        y = self._pool(reshape(x, shape=(n, c, 1, length)), geometry=self.geometry)
        return reshape(y, shape=(n, *self.output_shape))


@register
class MaxPool1D(_Pool1D):
    """Max-pooling over the length (Keras's MaxPooling1D)."""

    _pool = staticmethod(F.max_pool2d)


@register
class AvgPool1D(_Pool1D):
    """Average pooling over the length (Keras's AveragePooling1D); zero padding counts in the divisor."""

    _pool = staticmethod(F.avg_pool2d)


@register
class GlobalAveragePooling1D(Layer):
    """(N, C, L) -> (N, C): the mean over the length (Keras's GlobalAveragePooling1D, channels first)."""

    def _build(self, input_shape):
        self.geometry = kernels.PoolGeometry((1, _length(self, input_shape)))
        return (input_shape[0],)

    def forward(self, x):
        self._check_input(x)
        (n, *_), (c, length) = F._shape(x), self.input_shape
        return reshape(F.avg_pool2d(reshape(x, shape=(n, c, 1, length)), geometry=self.geometry), shape=(n, c))
