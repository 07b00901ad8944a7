"""The CNN stack's functional ops: what a layer computes, as autodiff primitives or compositions.

Each heavy op is an autodiff *primitive* declared here with its rules (DESIGN.md: the op owns the
maths, ``kernels`` does the work): conv2d, max- and average-pooling, and the fused, stable
``softmax_cross_entropy``. Their derivative rules are written with primitives again (the gradient
of a convolution is a convolution read the other way round), so a gradient can itself be
differentiated: ``gradcheck(..., order=2)`` and Hessian-vector products work through a CNN.

Everything else (dense layers, activations, dropout, batch normalisation, the other losses) is a
composition of the engine's primitives: its derivative comes from the engine, with nothing new to
get wrong.

Layout NCHW; float32 in, float32 out (float64 works too, for gradient checks).

>>> import numpy as np, autodiff as ad
>>> x = ad.Tensor(np.ones((1, 1, 4, 4), np.float32), requires_grad=True)
>>> w = ad.Tensor(np.ones((2, 1, 3, 3), np.float32), requires_grad=True)
>>> y = conv2d(x, w)
>>> y.shape
(1, 2, 2, 2)
>>> max_pool2d(y, 2).sum().backward()
>>> x.grad[0, 0]                  # how many of the 2 filters' 3x3 windows cover each pixel, per max
array([[2., 2., 2., 0.],
       [2., 2., 2., 0.],
       [2., 2., 2., 0.],
       [0., 0., 0., 0.]], dtype=float32)
"""
from __future__ import annotations

import numpy as np

import kernels
from autodiff import primitive, value_of
from autodiff.ops import (broadcast_to, exp, log, matmul, maximum, mean, minimum, relu, reshape, sigmoid,
                          softmax, sum, tanh, where)
from autodiff.ops import max as reduce_max
from . import utils  # rng=None: nn's global generator (nn.set_seed), as everywhere in nn

__all__ = [
    "conv2d", "max_pool2d", "avg_pool2d", "linear", "flatten", "dropout", "drop_connect", "batch_norm",
    "softmax", "log_softmax", "softmax_cross_entropy", "cross_entropy", "mse",
    "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "swish", "maxout", "ACTIVATIONS", "activation",
]


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
    return np.zeros(_shape(w)[0], dtype=value_of(w).dtype)


def _conv_samples(rng):
    cases = [((2, 3, 5, 6), (4, 3, 3, 2), kernels.ConvGeometry()),
             ((1, 4, 6, 5), (2, 2, 2, 3), kernels.ConvGeometry((2, 1), (1, 2), dilation=(1, 2), groups=2))]
    return [((_uniform(rng, xs), _uniform(rng, ws), _uniform(rng, ws[0])), {"geometry": g}) for xs, ws, g in cases]


@primitive(name="conv2d",
           vjp=[lambda g, out, x, w, b, **p: conv2d_input_grad(g, w, input_shape=_shape(x), **p),
                lambda g, out, x, w, b, **p: conv2d_weight_grad(g, x, weight_shape=_shape(w), **p),
                lambda g, out, x, w, b, **p: sum(g, axis=(0, 2, 3))],
           jvp=[lambda t, out, x, w, b, **p: _conv2d(t, w, _zeros_bias(w), **p),
                lambda t, out, x, w, b, **p: _conv2d(x, t, _zeros_bias(w), **p),
                lambda t, out, x, w, b, **p: broadcast_to(reshape(t, shape=(1, -1, 1, 1)), shape=_shape(out))],
           samples=_conv_samples)
def _conv2d(x, w, b, *, geometry):
    """y[n, f, i, j] = b[f] + sum_{c,p,q} w[f, c, p, q] x[n, c, i*s + p*d - pad, j*s + q*d - pad] (kernels)."""
    return kernels.conv2d.forward(x, w, b, geometry)


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


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, geometry=None):
    """2-D cross-correlation with bias, NCHW: x (N, C, H, W), w (F, C/groups, kh, kw), b (F,) or None.

    The output is (N, F, Ho, Wo) with Ho = floor((H + 2 padding - dilation (kh - 1) - 1) / stride) + 1.
    ``geometry``: a ``kernels.ConvGeometry`` built once (a layer builds it at construction), instead of
    stride, padding, dilation and groups, which are then validated once instead of on every call.
    Runs on the current ``kernels`` backend; shapes are checked there, with errors naming x, w and b.
    """
    geometry = _given(geometry, kernels.ConvGeometry, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _conv2d(x, w, _zeros_bias(w) if b is None else b, geometry=geometry)


# --- pooling ------------------------------------------------------------------------------------------
#
# Max-pooling picks one input per window: y = x[argmax] (a gather), whose vjp scatters g back to the
# chosen inputs (the source material's Jacobian with a single 1 per row; ties go to the first
# maximum in row-major order, kernels.pool2d). Both are linear in their input for a fixed argmax.

def _gather(x, argmax):
    n, c = x.shape[:2]
    flat = np.reshape(x, (n, c, -1))
    return np.take_along_axis(flat, np.reshape(argmax, (n, c, -1)), axis=2).reshape(argmax.shape)


def _max_pool_samples(rng):
    x = _uniform(rng, (2, 2, 5, 4))
    _, argmax = kernels.pool2d.max_forward(x, kernels.PoolGeometry(2, stride=(2, 1)), backend="numpy")
    return [((x,), {"argmax": argmax, "pooled": None})]


@primitive(name="max_pool2d",
           vjp=[lambda g, out, x, *, argmax, pooled: max_pool2d_scatter(g, argmax=argmax, input_shape=_shape(x))],
           jvp=[lambda t, out, x, *, argmax, pooled: _max_pool_select(t, argmax=argmax, pooled=None)],
           samples=_max_pool_samples)
def _max_pool_select(x, *, argmax, pooled=None):
    """y[n, c, i, j] = x[n, c].flat[argmax[n, c, i, j]]; ``pooled`` is that value when already known."""
    return pooled if pooled is not None else _gather(np.asarray(x), argmax)


def _scatter_samples(rng):
    x = _uniform(rng, (2, 2, 5, 4))
    _, argmax = kernels.pool2d.max_forward(x, kernels.PoolGeometry(3, stride=1, padding=1), backend="numpy")  # overlap
    return [((_uniform(rng, argmax.shape),), {"argmax": argmax, "input_shape": (2, 2, 5, 4)})]


@primitive(vjp=[lambda g, out, gy, *, argmax, input_shape: _max_pool_select(g, argmax=argmax, pooled=None)],
           jvp=[lambda t, out, gy, *, argmax, input_shape: max_pool2d_scatter(t, argmax=argmax,
                                                                              input_shape=input_shape)],
           samples=_scatter_samples)
def max_pool2d_scatter(gy, *, argmax, input_shape):
    """dL/dx of max-pooling: each gy[n, c, i, j] added to x[n, c].flat[argmax[n, c, i, j]] (kernels)."""
    return kernels.pool2d.max_backward(gy, argmax, input_shape)


def max_pool2d(x, kernel_size=None, stride=None, padding=0, *, geometry=None):
    """Max-pooling over kernel_size windows (stride defaults to kernel_size; -inf padding), NCHW.

    ``geometry``: a ``kernels.PoolGeometry`` built once (a layer builds it), instead of the three others."""
    geometry = _given(geometry, kernels.PoolGeometry, kernel_size=kernel_size, stride=stride, padding=padding)
    pooled, argmax = kernels.pool2d.max_forward(value_of(x), geometry)
    return _max_pool_select(x, argmax=argmax, pooled=pooled)


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


# --- dense, flatten, dropout, drop-connect, batch normalisation ---------------------------------------

def linear(x, w, b=None):
    """Dense layer: x @ w + b, with x (N, in), w (in, units) (Keras's layout), b (units,)."""
    y = matmul(x, w)
    return y if b is None else y + b


def flatten(x):
    """(N, ...) -> (N, product of the rest)."""
    return reshape(x, shape=(_shape(x)[0], -1))


def _check_rate(rate, name="rate"):
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
    return float(rate)


def _keep_mask(shape, rate, rng, dtype):
    """Inverted-dropout mask: 0 with probability ``rate``, else 1 / (1 - rate) (so E[mask] = 1)."""
    keep = rng.random(shape) >= rate
    return (keep / (1.0 - rate)).astype(dtype)


def dropout(x, rate, training=True, rng=None):
    """Inverted dropout: zero each element with probability ``rate`` and scale the rest by 1/(1 - rate).

    In evaluation (``training=False``) it is the identity, so nothing changes at test time. ``rng``:
    a Generator or an int seed; None draws from nn's global generator, so ``nn.set_seed`` fixes the
    masks (:mod:`nn.utils`).
    """
    rate = _check_rate(rate)
    if not training or rate == 0.0:
        return x
    rng = utils.rng(rng)
    return x * _keep_mask(_shape(x), rate, rng, value_of(x).dtype)


def drop_connect(w, rate, training=True, rng=None):
    """DropConnect: dropout applied to the weights instead of the activations (one mask per step)."""
    return dropout(w, rate, training, rng)


def batch_norm(x, gamma, beta, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
    """Batch normalisation over N (and H, W for NCHW input), per channel (axis 1).

    Training: normalise with the batch's mean and (biased) variance, then scale by gamma and shift
    by beta; the running statistics (NumPy arrays, updated in place) move by ``momentum`` towards
    the batch's mean and unbiased variance, as in torch.nn.BatchNorm2d. Evaluation
    (``training=False``): normalise with the running statistics.
    """
    shape = _shape(x)
    if len(shape) not in (2, 4):
        raise ValueError(f"batch_norm: x must be (N, C) or (N, C, H, W), got shape {shape}")
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    channel = (1, -1) if len(shape) == 2 else (1, -1, 1, 1)
    if training:
        mu = mean(x, axis=axes, keepdims=True)
        centred = x - mu
        var = mean(centred * centred, axis=axes, keepdims=True)
        if running_mean is not None:
            count = int(np.prod([shape[a] for a in axes]))
            batch_var = value_of(var).reshape(-1) * (count / max(count - 1, 1))
            running_mean *= 1.0 - momentum
            running_mean += momentum * value_of(mu).reshape(-1)
            running_var *= 1.0 - momentum
            running_var += momentum * batch_var
    else:
        if running_mean is None:
            raise ValueError("batch_norm in evaluation needs running_mean and running_var")
        centred = x - np.reshape(running_mean, channel)
        var = np.reshape(running_var, channel)
    x_hat = centred / (var + eps) ** 0.5
    return x_hat * reshape(gamma, shape=channel) + reshape(beta, shape=channel)


# --- activations --------------------------------------------------------------------------------------

def leaky_relu(x, alpha=0.01):
    """x for x > 0, alpha x otherwise (the slides' Leaky ReLU, alpha = 0.01)."""
    return where(value_of(x) > 0, x, alpha * x)


def prelu(x, alpha):
    """Parametric ReLU: x for x > 0, alpha[c] x otherwise, with a learned slope per channel (axis 1)."""
    channel = (1, -1) + (1,) * (len(_shape(x)) - 2)
    return where(value_of(x) > 0, x, reshape(alpha, shape=channel) * x)


def elu(x, alpha=1.0):
    """x for x > 0, alpha (exp(x) - 1) otherwise; ELU'(0) = alpha, the left-hand derivative.

    The exponential sees x only where x <= 0 (0 elsewhere), so a large x never overflows; masking
    with ``where`` rather than ``minimum(x, 0)`` matters: minimum splits its gradient at a tie and
    would give alpha / 2 at 0.
    """
    negative = value_of(x) <= 0
    return where(~negative, x, alpha * (exp(where(negative, x, 0.0)) - 1.0))


def swish(x, beta=1.0):
    """x sigmoid(beta x) (Swish; beta = 1 is SiLU)."""
    return x * sigmoid(beta * x)


def maxout(x, pieces):
    """Maxout over groups of ``pieces`` consecutive channels (axis 1): C channels -> C / pieces."""
    shape = _shape(x)
    if shape[1] % pieces:
        raise ValueError(f"maxout: the {shape[1]} channels of x must split into groups of pieces={pieces}")
    grouped = reshape(x, shape=(shape[0], shape[1] // pieces, pieces) + shape[2:])
    return reduce_max(grouped, axis=2)


def log_softmax(x, axis=-1):
    """log(softmax(x)), computed as x - logsumexp(x) (never log of 0)."""
    from autodiff.ops import log_softmax as _log_softmax
    return _log_softmax(x, axis=axis)


ACTIVATIONS = {
    "linear": lambda x: x, "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "leaky_relu": leaky_relu,
    "elu": elu, "swish": swish, "softmax": lambda x: softmax(x, axis=1),
}


def activation(name):
    """The activation function called ``name`` (None or "linear": the identity)."""
    if name is None:
        return ACTIVATIONS["linear"]
    if callable(name):
        return name
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} (or a function), got {name!r}") from None


# --- losses -------------------------------------------------------------------------------------------

def _targets_matrix(targets, logits_shape, dtype):
    """Integer labels (N,) as one-hot rows, or (N, K) target distributions as they are."""
    t = np.asarray(targets)
    if t.ndim == 1:
        onehot = np.zeros(logits_shape, dtype=dtype)
        onehot[np.arange(t.shape[0]), t] = 1
        return onehot
    return t.astype(dtype, copy=False)


def _sce_rule(g, out, z, *, targets):
    """d loss / d z = (softmax(z) - t) / N: the source material's y - t, averaged over the batch."""
    n = _shape(z)[0]
    return g * (softmax(z, axis=1) - _targets_matrix(targets, _shape(z), value_of(z).dtype)) / n


def _sce_samples(rng):
    z = rng.normal(0, 2, (4, 3))
    return [((z,), {"targets": np.array([0, 2, 1, 2])}), ((z,), {"targets": rng.dirichlet(np.ones(3), 4)})]


@primitive(vjp=[_sce_rule],
           jvp=[lambda t, out, z, *, targets: sum(_sce_rule(1.0, out, z, targets=targets) * t)],
           samples=_sce_samples)
def _softmax_cross_entropy(z, *, targets):
    z = np.asarray(z)
    m = z.max(axis=1, keepdims=True)
    log_p = z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))
    t = _targets_matrix(targets, z.shape, z.dtype)
    return np.asarray(-(t * log_p).sum() / z.shape[0], dtype=z.dtype)


def _check_targets(targets, n, k, what):
    t = np.asarray(targets)
    if t.ndim == 1:
        if t.shape[0] != n:
            raise ValueError(f"{what}: labels must have one entry per row of the input ({n}), got {t.shape[0]}")
        if t.dtype.kind not in "iu":
            raise TypeError(f"{what}: labels must be integers (class indices), got dtype {t.dtype}")
        if t.size and (t.min() < 0 or t.max() >= k):
            raise ValueError(f"{what}: labels must be in 0..{k - 1}, got values from {t.min()} to {t.max()}")
    elif t.shape != (n, k):
        raise ValueError(f"{what}: targets must be labels (N,) or a distribution (N, K) = ({n}, {k}), got {t.shape}")
    return t


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against labels, fused and stable (log-sum-exp).

    ``logits`` (N, K); ``labels`` integer classes (N,) or target distributions (N, K). Its
    gradient is (softmax(logits) - t) / N: the source material's y - t. Never takes log of 0, so
    logits of 1000 are fine.
    """
    n, k = _shape(logits)
    return _softmax_cross_entropy(logits, targets=_check_targets(labels, n, k, "softmax_cross_entropy"))


def cross_entropy(probabilities, labels, eps=1e-7):
    """Mean -sum t log p for probabilities (N, K), clipped to [eps, 1] (Keras's categorical_crossentropy)."""
    n, k = _shape(probabilities)
    t = _targets_matrix(_check_targets(labels, n, k, "cross_entropy"), (n, k), value_of(probabilities).dtype)
    return -sum(t * log(minimum(maximum(probabilities, eps), 1.0))) / n


def mse(prediction, target):
    """Mean squared error over every element."""
    diff = prediction - np.asarray(value_of(target))
    return mean(diff * diff)
