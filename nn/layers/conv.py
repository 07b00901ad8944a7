"""Convolution and pooling layers over NCHW images: Conv2D, MaxPool2D, AvgPool2D (Keras's arguments).

``stride=`` (PyTorch's name) or Keras's ``strides=``; ``input_shape=`` (C, H, W) on a first layer.

Each builds its geometry once, at construction (``kernels.ConvGeometry`` / ``kernels.PoolGeometry``:
stride, padding, dilation, groups validated there), and hands the same object to every call.

>>> import nn
>>> model = nn.Sequential([nn.Input((1, 28, 28)), nn.Conv2D(32, 3, activation="relu"), nn.MaxPool2D(2)])
>>> model.output_shape, model.layers[1].weight.shape
((32, 13, 13), (32, 1, 3, 3))
>>> model.layers[1].geometry
ConvGeometry(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
"""
from __future__ import annotations

import kernels
from kernels.options import pair

from .. import functional as F
from .. import init as initialisers
from ..module import Activated, Layer, register
from ..utils import positive_int

__all__ = ["Conv2D", "MaxPool2D", "AvgPool2D"]


def _padding(padding, kernel):
    """An int, a pair, "valid" (0) or "same" (kernel // 2 on each side, odd kernels) as a pair."""
    if isinstance(padding, str) and padding == "valid":
        return (0, 0)
    if isinstance(padding, str) and padding == "same":
        if kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
            raise ValueError(f"padding='same' needs an odd kernel_size, got {kernel}")
        return (kernel[0] // 2, kernel[1] // 2)
    return pair(padding, "padding", minimum=0)


def _keras_strides(stride, strides, default, kind):
    """Keras's ``strides=`` as another name for ``stride=`` (PyTorch's); both given is refused."""
    if strides is None:
        return stride
    if stride != default:
        raise TypeError(f"{kind}: give stride= or Keras's strides=, not both (got stride={stride!r}, "
                        f"strides={strides!r})")
    return strides


def _image_hw(layer, input_shape):
    """(H, W) of a (C, H, W) input, or an error naming the layer."""
    if len(input_shape) != 3:
        raise ValueError(f"{type(layer).__name__} needs input (C, H, W), got {input_shape}")
    return input_shape[1:]


class Convolution(Activated):
    """What Conv2D and Conv1D share: ``convolve`` (F.conv2d or F.conv1d) with the layer's geometry, built
    once, and the ReLU fused into it."""

    convolve = None

    def _linear(self, x):
        return self.convolve(x, self.weight, self.bias, geometry=self.geometry)

    def forward(self, x, pre_activation=False):
        if self.activation == "relu" and not pre_activation:   # the ReLU fused into the convolution
            self._check_input(x)
            return self.convolve(x, self.weight, self.bias, geometry=self.geometry, activation="relu")
        return super().forward(x, pre_activation)


@register
class Conv2D(Convolution):
    """2-D convolution, weight (filters, C/groups, kh, kw), bias (filters,); Keras's arguments.

    Default initialisation as in Keras: Glorot-uniform weights (eq. 5.1), zero bias; pass
    ``kernel_initializer="he_normal"`` for deep ReLU stacks (eq. 5.2). ``padding``: an int, a pair,
    "valid" (0) or "same" (kernel_size // 2, odd kernels, stride 1 keeps the size).
    """

    same_dtype = True

    convolve = staticmethod(F.conv2d)

    def __init__(self, filters, kernel_size, stride=1, padding=0, dilation=1, groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros", name=None,
                 strides=None, input_shape=None):
        super().__init__(activation, name, input_shape)
        stride = _keras_strides(stride, strides, 1, "Conv2D")
        filters = positive_int(filters, "filters")
        kernel = pair(kernel_size, "kernel_size")
        self.geometry = g = kernels.ConvGeometry(stride, _padding(padding, kernel), dilation, groups)
        self.config = dict(filters=filters, kernel_size=list(kernel), stride=list(g.stride),
                           padding=padding if isinstance(padding, str) else list(g.padding),
                           dilation=list(g.dilation), groups=g.groups, activation=activation,
                           use_bias=bool(use_bias), kernel_initializer=kernel_initializer,
                           bias_initializer=bias_initializer)
        initialisers.get(kernel_initializer), initialisers.get(bias_initializer)

    def _build(self, input_shape):
        height, width = _image_hw(self, input_shape)
        c, groups = self.config, self.geometry.groups
        channels = input_shape[0]
        if channels % groups or c["filters"] % groups:
            raise ValueError(f"Conv2D: groups={groups} must divide the input channels ({channels}) and "
                             f"filters ({c['filters']})")
        shape = (c["filters"], channels // groups, *c["kernel_size"])
        self.add_weight("weight", shape, c["kernel_initializer"])
        self.bias = self.add_weight("bias", (c["filters"],), c["bias_initializer"]) if c["use_bias"] else None
        return (c["filters"], *self.geometry.output_hw(height, width, tuple(c["kernel_size"]),
                                                       of=f"Conv2D's input of shape {input_shape}", channels=channels))



class _Pool(Layer):
    """A pooling window: ``pool_size``, ``stride`` (default: the pool size) and zero ``padding``."""

    def __init__(self, pool_size=2, stride=None, padding=0, name=None, strides=None, input_shape=None):
        super().__init__(name, input_shape)
        stride = _keras_strides(stride, strides, None, type(self).__name__)
        self.geometry = g = kernels.PoolGeometry(pool_size, stride, padding)
        self.config = dict(pool_size=list(g.kernel_size), stride=None if stride is None else list(g.stride),
                           padding=list(g.padding))

    def _build(self, input_shape):
        height, width = _image_hw(self, input_shape)
        return (input_shape[0], *self.geometry.output_hw(height, width, channels=input_shape[0],
                                                         of=f"{type(self).__name__}'s input of shape {input_shape}"))


@register
class MaxPool2D(_Pool):
    """Max-pooling (Keras's MaxPooling2D): pool_size windows, stride defaults to pool_size."""

    def forward(self, x):
        self._check_input(x)
        return F.max_pool2d(x, geometry=self.geometry)


@register
class AvgPool2D(_Pool):
    """Average pooling (Keras's AveragePooling2D)."""

    def forward(self, x):
        self._check_input(x)
        return F.avg_pool2d(x, geometry=self.geometry)
