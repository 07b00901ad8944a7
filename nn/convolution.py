"""The heavy ops of the CNN stack, as autodiff primitives whose work ``kernels`` does: conv2d (with
an optional fused ReLU) and max- and average-pooling, each with its rules (the op owns the
maths, ``kernels`` does the work). The rules are written with primitives again (the gradient of a
convolution is a convolution read the other way round), so a gradient can itself be differentiated:
``gradcheck(..., order=2)`` and Hessian-vector products work through a CNN. ``nn.functional``
re-exports the public functions (``F.conv2d``, ``F.max_pool2d``, ``F.avg_pool2d``).
"""
from __future__ import annotations

import numpy as np

import kernels
from autodiff import Tensor, primitive, value_of
from autodiff.primitives import fuse_vjp
from autodiff.tensor import Batched
from autodiff.ops import broadcast_to, heaviside, reshape, sum

__all__ = ["conv2d", "conv2d_input_grad", "conv2d_weight_grad", "max_pool2d", "max_pool2d_scatter", "max_pool2d_gather",
           "avg_pool2d", "avg_pool2d_transpose", "conv1d", "conv1d_geometry"]


def _shape(x):
    return tuple(np.shape(value_of(x)))


def _uniform(rng, shape):
    return rng.uniform(-1.0, 1.0, size=shape)


# --- convolution: three bilinear primitives, each the others' adjoint --------------------------------
#
# y = conv(x, w) is linear in x and in w. With <a, b> the sum of a * b:
#     <conv(x, w), g> = <x, conv_input_grad(g, w)> = <w, conv_weight_grad(g, x)>
# so the vjp of conv is conv_input_grad / conv_weight_grad, and the vjps of those two are conv
# again (and each other). Bias is conv2d's third input: its vjp is g summed over (N, H, W).

#: The keyword arguments of conv2d and the poolings as their signatures leave them (nothing asked for).
_UNSET = {kernels.ConvGeometry: dict(stride=1, padding=0, dilation=1, groups=1),
          kernels.PoolGeometry: dict(kernel_size=None, stride=None, padding=0)}


def _given(geometry, kind, **keywords):
    """``geometry`` when a layer passes the one it built (``kernels.ConvGeometry`` or ``PoolGeometry``,
    validated once), else one built from the keyword arguments, which must then be left unset."""
    if geometry is None:
        return kind(**keywords)
    if not isinstance(geometry, kind):
        raise TypeError(f"geometry must be a kernels.{kind.__name__}, got {type(geometry).__name__}")
    if keywords != _UNSET[kind]:
        raise TypeError(f"pass either geometry= or {', '.join(_UNSET[kind])}, not both")
    return geometry


def _zeros_bias(w):
    if kernels.is_device_array(value_of(w)):          # made where w is (nothing copied)
        return kernels.device.zeros(_shape(w)[0], value_of(w).dtype)
    return np.zeros(_shape(w)[0], dtype=value_of(w).dtype)


def _conv_samples(rng):
    cases = [((2, 3, 5, 6), (4, 3, 3, 2), kernels.ConvGeometry()),
             ((1, 4, 6, 5), (2, 2, 2, 3), kernels.ConvGeometry((2, 1), (1, 2), dilation=(1, 2), groups=2))]
    return [((_uniform(rng, xs), _uniform(rng, ws), _uniform(rng, ws[0])), {"geometry": g}) for xs, ws, g in cases]


def _engine(*values):
    """Whether a rule must use the engine's ops: a recorded sweep (Tensors), or vmap's values (Batched)."""
    return any(isinstance(v, (Tensor, Batched)) for v in values)


def _conv_rules(relu):
    """The rules of y = conv2d(x, w) + b, or of max(y, 0) when ``relu`` (the fused ReLU): those of the
    convolution, with the cotangent (reverse) or the tangent (forward) masked where out = 0
    (relu'(0) = 0). The reverse rule is joint: on plain arrays one kernel call gives every cotangent
    the sweep wants (kernels.conv2d.backward: each image's g read once, the fused ReLU's mask applied
    on the way). The convolution is bilinear, so its rules are convolutions: a recorded sweep (``g``
    a Tensor) runs them as primitives, which differentiates them again."""
    def active(g, out):
        if not relu:
            return g
        if _engine(g, out):      # a recorded sweep (or under vmap): the engine's ops
            return g * heaviside(out, 0.0)
        return kernels.conv2d.relu_grad(g, out)

    def vjp_joint(g, out, x, w, b, *, wanted, geometry):
        if _engine(g, out, x, w):
            g = active(g, out)
            return (conv2d_input_grad(g, w, input_shape=_shape(x), geometry=geometry) if wanted[0] else None,
                    conv2d_weight_grad(g, x, weight_shape=_shape(w), geometry=geometry) if wanted[1] else None,
                    sum(g, axis=(0, 2, 3)) if wanted[2] else None)
        dx, dw, db = kernels.conv2d.backward(g, x, w, geometry, input_grad=wanted[0], weight_grad=wanted[1] or wanted[2],
                                             relu_out=out if relu else None)
        return dx, dw if wanted[1] else None, db if wanted[2] else None

    return dict(
        vjp_joint=vjp_joint,
        jvp=[lambda t, out, x, w, b, **p: active(_conv2d(t, w, _zeros_bias(w), **p), out),
             lambda t, out, x, w, b, **p: active(_conv2d(x, t, _zeros_bias(w), **p), out),
             lambda t, out, x, w, b, **p: active(broadcast_to(reshape(t, shape=(1, -1, 1, 1)), shape=_shape(out)), out)])


@primitive(name="conv2d", **_conv_rules(relu=False), samples=_conv_samples)
def _conv2d(x, w, b, *, geometry):
    """y[n, f, i, j] = b[f] + sum_{c,p,q} w[f, c, p, q] x[n, c, i*s + p*d - pad, j*s + q*d - pad] (kernels)."""
    return kernels.conv2d.forward(x, w, b, geometry)


@primitive(name="conv2d_relu", **_conv_rules(relu=True), samples=_conv_samples,
           kinks=[lambda x, w, b, **p: _conv2d(x, w, b, **p)])
def _conv2d_relu(x, w, b, *, geometry):
    """max(conv2d(x, w) + b, 0), the ReLU fused into the convolution's last pass (kernels.conv2d.forward
    with relu=True): one node for Conv2D(..., activation="relu"), and no separate pass over its output."""
    return kernels.conv2d.forward(x, w, b, geometry, relu=True)


def _input_grad_samples(rng):
    p = dict(input_shape=(2, 3, 6, 5), geometry=kernels.ConvGeometry(stride=(2, 1), padding=(1, 0)))
    return [((_uniform(rng, (2, 4, 3, 4)), _uniform(rng, (4, 3, 3, 2))), p)]


@primitive(vjp=[lambda g, out, gy, w, *, input_shape, **p: _conv2d(g, w, _zeros_bias(w), **p),
                lambda g, out, gy, w, *, input_shape, **p: conv2d_weight_grad(gy, g, weight_shape=_shape(w), **p)],
           jvp=[lambda t, out, gy, w, **p: conv2d_input_grad(t, w, **p),
                lambda t, out, gy, w, **p: conv2d_input_grad(gy, t, **p)],
           samples=_input_grad_samples)
def conv2d_input_grad(gy, w, *, input_shape, geometry):
    """dL/dx of y = conv2d(x, w), given gy = dL/dy (kernels.conv2d.backward_input)."""
    return kernels.conv2d.backward_input(gy, w, input_shape, geometry)


def _weight_grad_samples(rng):
    p = dict(weight_shape=(4, 3, 3, 2), geometry=kernels.ConvGeometry(stride=(2, 1), padding=(1, 0)))
    return [((_uniform(rng, (2, 4, 3, 4)), _uniform(rng, (2, 3, 6, 5))), p)]


@primitive(vjp=[lambda g, out, gy, x, *, weight_shape, **p: _conv2d(x, g, _zeros_bias(g), **p),
                lambda g, out, gy, x, *, weight_shape, **p: conv2d_input_grad(gy, g, input_shape=_shape(x), **p)],
           jvp=[lambda t, out, gy, x, **p: conv2d_weight_grad(t, x, **p),
                lambda t, out, gy, x, **p: conv2d_weight_grad(gy, t, **p)],
           samples=_weight_grad_samples)
def conv2d_weight_grad(gy, x, *, weight_shape, geometry):
    """dL/dw of y = conv2d(x, w), given gy = dL/dy (kernels.conv2d.backward_weight, without bias)."""
    return kernels.conv2d.backward_weight(gy, x, weight_shape, geometry, bias=False)[0]


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, geometry=None, activation=None):
    """2-D cross-correlation with bias, NCHW: x (N, C, H, W), w (F, C/groups, kh, kw), b (F,) or None.

    The output is (N, F, Ho, Wo) with Ho = floor((H + 2 padding - dilation (kh - 1) - 1) / stride) + 1.
    ``geometry``: a ``kernels.ConvGeometry`` built once (a layer builds it at construction), instead of
    stride, padding, dilation and groups, which are then validated once instead of on every call.
    ``activation="relu"``: relu(conv2d(...)) as one fused op (same value and derivatives).
    Runs on the current ``kernels`` backend; shapes are checked there, with errors naming x, w and b.
    """
    geometry = _given(geometry, kernels.ConvGeometry, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if activation not in (None, "relu"):
        raise ValueError(f"conv2d: activation must be None or 'relu' (fused), got {activation!r}")
    op = _conv2d_relu if activation == "relu" else _conv2d
    return op(x, w, _zeros_bias(w) if b is None else b, geometry=geometry)


# --- conv1d: conv2d over a height of 1 ------------------------------------------------------------------
#
# (N, C, L) is read as (N, C, 1, L) and w (F, C/g, k) as (F, C/g, 1, k): the same primitives and kernels
# (numpy, cpu, cuda), and the reshapes are engine ops, so the rules and the fused ReLU carry over.

def _one(value, name, minimum):
    """An int (or a 1-tuple of one, as torch accepts) >= minimum, or an error naming ``name``."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def conv1d_geometry(kernel_size, stride=1, padding=0, dilation=1, groups=1):
    """The ``kernels.ConvGeometry`` of a 1-D convolution read as a 2-D one of height 1: stride (1, s),
    padding (0, p), dilation (1, d). ``padding``: an int, "valid" (0) or "same" (dilation (k - 1) / 2
    on each side, which must be whole: the length is kept at stride 1, ceil(L / s) otherwise)."""
    kernel_size, stride, dilation = _one(kernel_size, "kernel_size", 1), _one(stride, "stride", 1), \
        _one(dilation, "dilation", 1)
    if padding == "valid":
        padding = 0
    elif padding == "same":
        if dilation * (kernel_size - 1) % 2:
            raise ValueError(f"padding='same' needs dilation * (kernel_size - 1) even, got kernel_size={kernel_size}, "
                             f"dilation={dilation}")
        padding = dilation * (kernel_size - 1) // 2
    elif isinstance(padding, str):
        raise ValueError(f"padding must be an int, 'valid' or 'same', got {padding!r}")
    return kernels.ConvGeometry((1, stride), (0, _one(padding, "padding", 0)), (1, dilation), groups)


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, geometry=None, activation=None):
    """1-D cross-correlation with bias, NCL: x (N, C, L), w (F, C/groups, k), b (F,) or None -> (N, F, Lo),

        y[n, f, i] = b[f] + sum_{c, p} w[f, c, p] x[n, g(f) C/groups + c, i stride + p dilation - padding],

    Lo = floor((L + 2 padding - dilation (k - 1) - 1) / stride) + 1. conv2d on (N, C, 1, L) and
    (F, C/groups, 1, k), so every backend and rule of conv2d serves it. ``padding``: also "valid" or
    "same"; ``geometry``: ``conv1d_geometry(...)`` built once (a layer's), instead of the four others.

    >>> x = np.arange(6.0, dtype=np.float32).reshape(1, 1, 6)
    >>> conv1d(x, np.array([[[1.0, -1.0]]], np.float32))          # x[i] - x[i + 1]
    array([[[-1., -1., -1., -1., -1.]]], dtype=float32)
    """
    x_shape, w_shape = _shape(x), _shape(w)
    if len(x_shape) != 3:
        raise ValueError(f"conv1d: x must be (N, C, L), got shape {x_shape}")
    if len(w_shape) != 3:
        raise ValueError(f"conv1d: w must be (F, C/groups, k), got shape {w_shape}")
    if geometry is None:
        geometry = conv1d_geometry(w_shape[2], stride, padding, dilation, groups)
    elif (stride, padding, dilation, groups) != (1, 0, 1, 1):
        raise TypeError("conv1d: pass either geometry= or stride, padding, dilation, groups, not both")
    elif not isinstance(geometry, kernels.ConvGeometry) or geometry.stride[0] != 1 or geometry.padding[0] != 0 \
            or geometry.dilation[0] != 1:
        raise TypeError(f"conv1d: geometry must be a conv1d_geometry(...) (height stride 1, padding 0, dilation 1), "
                        f"got {geometry!r}")
    y = conv2d(reshape(x, shape=(x_shape[0], x_shape[1], 1, x_shape[2])),
               reshape(w, shape=(w_shape[0], w_shape[1], 1, w_shape[2])), b, geometry=geometry, activation=activation)
    return reshape(y, shape=(x_shape[0], w_shape[0], _shape(y)[3]))


# --- pooling ------------------------------------------------------------------------------------------
#
# Max-pooling picks one input per window: y = x[argmax] (a gather), whose vjp scatters g back to the
# chosen inputs (the source material's Jacobian with a single 1 per row; ties go to the first
# maximum in row-major order, kernels.pool2d). Both are linear in their first input for a fixed argmax,
# and the argmax is piecewise constant in x (derivative 0). Each primitive takes the pooled input x and
# finds the argmax from it when it runs: no rule reads a value as a constant, so a recorded rule (a higher
# derivative, autodiff.compile) holds at every input; the reverse sweep pools x once more to find it.

def _gather(x, argmax):
    n, c = x.shape[:2]
    flat = np.reshape(x, (n, c, -1))
    return np.take_along_axis(flat, np.reshape(argmax, (n, c, -1)), axis=2).reshape(argmax.shape)


def _argmax(x, geometry):
    return kernels.pool2d.max_forward(x, geometry)[1]


def _pool_samples(rng, kind):
    """Pooling windows that tile x (2 x 2, stride (2, 1)) and that overlap (3 x 3, stride 1, padding 1)."""
    x, out = _uniform(rng, (2, 2, 5, 4)), []
    for geometry in (kernels.PoolGeometry(2, stride=(2, 1)), kernels.PoolGeometry(3, stride=1, padding=1)):
        pooled = kernels.pool2d.max_forward(x, geometry, backend="numpy")[0]
        first = {"pool": (), "scatter": (_uniform(rng, pooled.shape),), "gather": (_uniform(rng, x.shape),)}[kind]
        out.append((first + (x,), {"geometry": geometry}))
    return out


@primitive(name="max_pool2d",
           vjp=[lambda g, out, x, *, geometry: max_pool2d_scatter(g, x, geometry=geometry)],
           jvp=[lambda t, out, x, *, geometry: max_pool2d_gather(t, x, geometry=geometry)],
           samples=lambda rng: _pool_samples(rng, "pool"))
def _max_pool2d(x, *, geometry):
    """y[n, c, i, j] = the maximum of x over window (i, j), -inf padding (kernels.pool2d.max_values)."""
    return kernels.pool2d.max_values(x, geometry)


@fuse_vjp(_max_pool2d, _conv2d_relu)
def _pooled_conv_vjp(g, out, conv_out, x, w, b, *, wanted, params, inner_params):
    """max_pool2d's adjoint straight into conv2d_relu's inputs (kernels.conv2d.backward_pooled), in an eager
    sweep where the convolution's output feeds the pooling alone: the cotangents of the two rules one after
    the other, bit for bit, without the convolution's full-size adjoint in between."""
    dx, dw, db = kernels.conv2d.backward_pooled(g, out, x, w, conv_out, inner_params["geometry"], params["geometry"],
                                                input_grad=wanted[0], weight_grad=wanted[1] or wanted[2])
    return dx, dw if wanted[1] else None, db if wanted[2] else None


@primitive(vjp=[lambda g, out, gy, x, *, geometry: max_pool2d_gather(g, x, geometry=geometry),
                lambda g, out, gy, x, *, geometry: None],          # argmax is piecewise constant in x
           jvp=[lambda t, out, gy, x, *, geometry: max_pool2d_scatter(t, x, geometry=geometry),
                lambda t, out, gy, x, *, geometry: None],
           samples=lambda rng: _pool_samples(rng, "scatter"))
def max_pool2d_scatter(gy, x, *, geometry):
    """dL/dx of max-pooling x: each gy[n, c, i, j] added to the input its window's maximum came from, the
    argmax found from x (kernels.pool2d.max_scatter)."""
    return kernels.pool2d.max_scatter(gy, x, geometry)


@primitive(vjp=[lambda g, out, dx, x, *, geometry: max_pool2d_scatter(g, x, geometry=geometry),
                lambda g, out, dx, x, *, geometry: None],
           jvp=[lambda t, out, dx, x, *, geometry: max_pool2d_gather(t, x, geometry=geometry),
                lambda t, out, dx, x, *, geometry: None],
           samples=lambda rng: _pool_samples(rng, "gather"))
def max_pool2d_gather(dx, x, *, geometry):
    """dx read where each window of x has its maximum: max-pooling's tangent, and the scatter's adjoint."""
    return _gather(np.asarray(dx), _argmax(x, geometry))


def max_pool2d(x, kernel_size=None, stride=None, padding=0, *, geometry=None):
    """Max-pooling over kernel_size windows (stride defaults to kernel_size; -inf padding), NCHW.

    ``geometry``: a ``kernels.PoolGeometry`` built once (a layer builds it), instead of the three others."""
    geometry = _given(geometry, kernels.PoolGeometry, kernel_size=kernel_size, stride=stride, padding=padding)
    return _max_pool2d(x, geometry=geometry)     # under vmap: the map folded into N (nn/batching.py)


def _avg_samples(rng):
    return [((_uniform(rng, (2, 3, 5, 4)),), {"geometry": kernels.PoolGeometry((2, 3), stride=(1, 2), padding=1)})]


@primitive(name="avg_pool2d",
           vjp=[lambda g, out, x, **p: avg_pool2d_transpose(g, input_shape=_shape(x), **p)],
           jvp=[lambda t, out, x, **p: _avg_pool2d(t, **p)],
           samples=_avg_samples)
def _avg_pool2d(x, *, geometry):
    """Mean over each window, zero padding counted in the divisor (kernels.pool2d.avg_forward)."""
    return kernels.pool2d.avg_forward(x, geometry)


def _avg_t_samples(rng):
    p = {"input_shape": (2, 3, 5, 4), "geometry": kernels.PoolGeometry((2, 3), stride=(1, 2), padding=1)}
    return [((_uniform(rng, (2, 3, 6, 2)),), p)]


@primitive(vjp=[lambda g, out, gy, *, input_shape, **p: _avg_pool2d(g, **p)],
           jvp=[lambda t, out, gy, **p: avg_pool2d_transpose(t, **p)],
           samples=_avg_t_samples)
def avg_pool2d_transpose(gy, *, input_shape, geometry):
    """dL/dx of average pooling: each gy spread evenly over its window (kernels.pool2d.avg_backward)."""
    return kernels.pool2d.avg_backward(gy, input_shape, geometry)


def avg_pool2d(x, kernel_size=None, stride=None, padding=0, *, geometry=None):
    """Average pooling over kernel_size windows (stride defaults to kernel_size), NCHW.

    ``geometry``: a ``kernels.PoolGeometry`` built once (a layer builds it), instead of the three others."""
    geometry = _given(geometry, kernels.PoolGeometry, kernel_size=kernel_size, stride=stride, padding=padding)
    return _avg_pool2d(x, geometry=geometry)
