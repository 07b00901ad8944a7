"""The CNN stack's functional ops: what a layer computes, as autodiff primitives or compositions.

Each heavy op is an autodiff *primitive* declared with its rules (ARCHITECTURE.md: the op owns the
maths, ``kernels`` does the work): conv2d, max- and average-pooling (in :mod:`nn.convolution`, re-exported
here), and the fused, stable ``softmax_cross_entropy`` (here). Their derivative rules are written with primitives again (the gradient
of a convolution is a convolution read the other way round), so a gradient can itself be
differentiated: ``gradcheck(..., order=2)`` and Hessian-vector products work through a CNN.

Everything else (dense layers, activations, dropout, batch normalisation, the other losses) is a
composition of the engine's primitives: its derivative comes from the engine, with nothing new to
get wrong.

On the GPU (a model moved with ``model.to("cuda")``), ``linear``, the activations, ``dropout``,
``batch_norm`` and ``softmax_cross_entropy`` hand device data to :mod:`nn.device`'s fused primitives
(one type test each); conv2d and the poolings run their kernels on the device as they are.

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

import warnings

import numpy as np

import kernels
import autodiff as ad
from autodiff import Tensor, primitive, value_of
from autodiff.primitives import as_array
from autodiff.tensor import Batched
from autodiff.ops import (exp, heaviside, log, matmul, maximum, mean, minimum, relu, reshape, sigmoid,
                          softmax as _softmax, sum, tanh, transpose, where)
from autodiff.ops import max as reduce_max
from . import device
from . import utils  # rng=None: nn's global generator (nn.set_seed), as everywhere in nn
from .convolution import avg_pool2d, conv1d, conv2d, max_pool2d  # the heavy ops (kernels do their work)

__all__ = [
    "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "linear", "flatten", "dropout", "drop_connect", "batch_norm",
    "softmax", "log_softmax", "softmax_cross_entropy", "cross_entropy", "mse",
    "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "swish", "maxout", "ACTIVATIONS", "activation",
]


def _shape(x):
    return tuple(np.shape(value_of(x)))


def _uniform(rng, shape):
    return rng.uniform(-1.0, 1.0, size=shape)


# --- dense, flatten, dropout, drop-connect, batch normalisation ---------------------------------------

def linear(x, w, b=None):
    """Dense layer: x @ w + b, with x (N, in), w (in, units) (Keras's layout), b (units,)."""
    if device.is_device(w):                       # the model is on the device: one fused op there
        return device.linear(x, w, b)
    y = _dense(x, w) if len(_shape(x)) == 2 and len(_shape(w)) == 2 else matmul(x, w)
    return y if b is None else y + b


def _dense_vjp(g, out, x, w, *, wanted):
    """dL/dx = g w^T and dL/dw = x^T g, the wanted ones, in one call (with BLAS on one thread)."""
    if isinstance(g, Tensor) or isinstance(out, Tensor):      # a recorded sweep: the engine's ops
        return (matmul(g, transpose(w)) if wanted[0] else None, matmul(transpose(x), g) if wanted[1] else None)
    with kernels.runtime.single_threaded_blas():
        return (g @ w.T if wanted[0] else None, x.T @ g if wanted[1] else None)


@primitive(vjp_joint=_dense_vjp, jvp=[lambda t, out, x, w: matmul(t, w), lambda t, out, x, w: matmul(x, t)],
           samples=lambda rng: [((_uniform(rng, (3, 4)), _uniform(rng, (4, 2))), {})])
def _dense(x, w):
    """x @ w of a dense layer (x (N, in), w (in, units)), its products with every BLAS on one thread
    (``kernels.runtime.single_threaded_blas``): a multi-threaded BLAS would leave its threads spinning
    against the convolutions' Numba threads that follow; the user's own setting is left as it was."""
    with kernels.runtime.single_threaded_blas():
        return x @ w


def flatten(x):
    """(N, ...) -> (N, product of the rest)."""
    return reshape(x, shape=(_shape(x)[0], -1))


def _real(value):
    """Whether value is a real number or a (rectangular) real array."""
    try:
        return np.asarray(value).dtype.kind in "biuf"
    except ValueError:
        return False


def _check_rate(rate, name="rate"):
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in [0, 1], got {rate!r}")
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {rate!r}")
    return float(rate)


def dropout(x, rate, training=True, rng=None):
    """Inverted dropout: zero each element with probability ``rate`` and scale the rest by 1/(1 - rate).

    In evaluation (``training=False``) it is the identity, so nothing changes at test time. Rate 1
    gives zeros in training (x times a zero mask, as torch's ``p=1``). ``rng``:
    a Generator or an int seed; None draws from nn's global generator, so ``nn.set_seed`` fixes the
    masks (:mod:`nn.utils`). Each mask is kernels.dropout's hash of one seed drawn from ``rng``: the
    same mask on the host and on a CUDA device.
    """
    rate = _check_rate(rate)
    if not training or rate == 0.0:
        return x
    rng = utils.rng(rng)
    if device.is_device(x):                       # a mask made on the device, from one drawn seed
        return x * device.dropout_mask(_shape(x), rate, rng, value_of(x).dtype)
    return x * kernels.dropout.dropout_mask(_shape(x), rate, device.mask_seed(rng), value_of(x).dtype)


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
    if device.is_device(gamma):
        return device.batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps)
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
    return where(heaviside(x, 0.0), x, alpha * x)       # a recorded mask: compiled code computes it


def prelu(x, alpha):
    """Parametric ReLU: x for x > 0, alpha[c] x otherwise, with a learned slope per channel (axis 1)."""
    if device.is_device(x):
        return device.prelu(x, alpha)
    channel = (1, -1) + (1,) * (len(_shape(x)) - 2)
    return where(heaviside(x, 0.0), x, reshape(alpha, shape=channel) * x)


def elu(x, alpha=1.0):
    """x for x > 0, alpha (exp(x) - 1) otherwise; ELU'(0) = alpha, the left-hand derivative.

    The exponential sees x only where x <= 0 (0 elsewhere), so a large x never overflows; masking
    with ``where`` rather than ``minimum(x, 0)`` matters: minimum splits its gradient at a tie and
    would give alpha / 2 at 0.
    """
    positive = heaviside(x, 0.0)
    return where(positive, x, alpha * (exp(where(positive, 0.0, x)) - 1.0))


def swish(x, beta=1.0):
    """x sigmoid(beta x) (Swish; beta = 1 is SiLU)."""
    return x * sigmoid(beta * x)


def maxout(x, pieces):
    """Maxout over groups of ``pieces`` consecutive channels (axis 1): C channels -> C / pieces."""
    shape = _shape(x)
    if shape[1] % pieces:
        raise ValueError(f"maxout: the {shape[1]} channels of x must split into groups of pieces={pieces}")
    if device.is_device(x):
        return device.maxout(x, pieces)
    grouped = reshape(x, shape=(shape[0], shape[1] // pieces, pieces) + shape[2:])
    return reduce_max(grouped, axis=2)


def log_softmax(x, axis=-1):
    """log(softmax(x)), computed as x - logsumexp(x) (never log of 0)."""
    from autodiff.ops import log_softmax as _log_softmax
    return _log_softmax(x, axis=axis)


ACTIVATIONS = {
    "linear": lambda x: x, "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "leaky_relu": leaky_relu,
    "elu": elu, "swish": swish, "softmax": lambda x: _softmax(x, axis=1),
}


def _routed(name, host):
    """``host`` for host data, the device's activation for device data (one cheap type test)."""
    def run(x, **config):
        return device.activation(x, name, **config) if device.is_device(x) else host(x, **config)
    run.__name__ = run.__qualname__ = name
    run.__doc__ = host.__doc__
    return run


_ROUTED = {name: _routed(name, host) for name, host in ACTIVATIONS.items()}
relu, sigmoid, tanh = _ROUTED["relu"], _ROUTED["sigmoid"], _ROUTED["tanh"]   # F.relu(x) on device data too


def softmax(x, axis=-1):
    """exp(x) / sum exp(x) along ``axis`` (autodiff's softmax); device data: (N, K) along axis 1."""
    if device.is_device(x):
        if axis not in (1, -1) or len(_shape(x)) != 2:
            raise ValueError(f"softmax on the device works on (N, K) along axis 1, got shape {_shape(x)} axis {axis}")
        return device.softmax(x)
    return _softmax(x, axis=axis)


def activation(name):
    """The activation function called ``name`` (None or "linear": the identity); it runs on the device
    for device data (:mod:`nn.device`)."""
    if name is None:
        return ACTIVATIONS["linear"]
    if callable(name):
        return name
    try:
        return _ROUTED[name]
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


def _row_weights(sample_weight, n, dtype, what):
    """Keras's per-example weights as a column (N, 1), or None; each example's loss is scaled by its own."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=dtype)
    if w.shape != (n,):
        raise ValueError(f"{what}: sample_weight must have one weight per example ({n},), got shape {w.shape}")
    return w.reshape(n, 1)


def _sce_rule(g, out, z, *, targets, weights=None):
    """d loss / d z = w (softmax(z) - t) / N: the source material's y - t, averaged over the batch (each
    row scaled by its example's weight w, when given)."""
    n = _shape(z)[0]
    d = softmax(z, axis=1) - _targets_matrix(targets, _shape(z), value_of(z).dtype)
    return g * (d if weights is None else d * weights) / n


def _sce_samples(rng):
    z = rng.normal(0, 2, (4, 3))
    return [((z,), {"targets": np.array([0, 2, 1, 2])}), ((z,), {"targets": rng.dirichlet(np.ones(3), 4)}),
            ((z,), {"targets": np.array([1, 0, 2, 2]), "weights": rng.uniform(0.5, 2, (4, 1))})]


@primitive(vjp=[_sce_rule],
           jvp=[lambda t, out, z, **p: sum(_sce_rule(1.0, out, z, **p) * t)],
           samples=_sce_samples)
def _softmax_cross_entropy(z, *, targets, weights=None):
    z = np.asarray(z)
    m = z.max(axis=1, keepdims=True)
    log_p = z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))
    t = _targets_matrix(targets, z.shape, z.dtype)
    if weights is not None:
        t = t * weights
    return np.asarray(-(t * log_p).sum() / z.shape[0], dtype=z.dtype)


def _check_targets(targets, n, k, what):
    if k == 0:
        raise ValueError(f"{what}: logits must have at least one class (shape (N, K) with K >= 1), got ({n}, 0)")
    t = as_array(targets, f"{what}: labels")
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


def softmax_cross_entropy(logits, labels, sample_weight=None):
    """Mean cross-entropy of softmax(logits) against labels, fused and stable (log-sum-exp).

    ``logits`` (N, K); ``labels`` integer classes (N,) or target distributions (N, K). Its
    gradient is (softmax(logits) - t) / N: the source material's y - t. ``sample_weight`` (N,):
    Keras's weighted loss, sum_i w_i l_i / N. Never takes log of 0, so logits of 1000 are fine. Given the output of a softmax (a model that ends in softmax, called
    in a loop of your own), it warns: softmax would be applied twice, and training stalls.
    """
    if getattr(getattr(logits, "op", None), "name", None) == "softmax":
        warnings.warn("softmax_cross_entropy takes logits but got the output of a softmax (softmax applied "
                      "twice): pass model.forward(x, logits=True), or use nn.functional.cross_entropy(model(x), y)",
                      stacklevel=2)
    if isinstance(logits, (list, tuple)):          # nested lists of numbers: an array, as NumPy reads them
        if not _real(logits):
            raise TypeError(f"softmax_cross_entropy: logits must be a rectangular array of real numbers, got a "
                            f"{type(logits).__name__} that is none")
        logits = np.asarray(logits)
    if len(_shape(logits)) != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be an array (N, classes), got shape {_shape(logits)}")
    if np.dtype(getattr(value_of(logits), "dtype", np.float64)).kind != "f":   # an int loss was truncated: 1, not log 3
        raise TypeError(f"softmax_cross_entropy: logits must be floating-point, got dtype {value_of(logits).dtype} "
                        f"(pass logits.astype(np.float32))")
    n, k = _shape(logits)
    weights = _row_weights(sample_weight, n, value_of(logits).dtype, "softmax_cross_entropy")
    if device.is_device(logits):
        return device.softmax_cross_entropy(logits, labels, None if weights is None else weights.reshape(n))
    if Batched in (type(value_of(logits)), type(value_of(labels))):
        return _mapped_softmax_cross_entropy(logits, value_of(labels), weights, n, k)
    targets = _check_targets(labels, n, k, "softmax_cross_entropy")
    return _softmax_cross_entropy(logits, targets=targets) if weights is None else \
        _softmax_cross_entropy(logits, targets=targets, weights=weights)


def _mapped_softmax_cross_entropy(logits, labels, weights, n, k):
    """Under vmap (labels may differ per example): the same loss written with engine ops, which batch."""
    log_p = ad.log_softmax(logits, axis=1)
    t = labels if len(np.shape(labels)) == 2 else ad.reshape(labels, (n, 1)) == np.arange(k)
    t = ad.astype(t, value_of(logits).dtype)
    if weights is not None:
        t = t * np.reshape(weights, (n, 1))
    return -ad.sum(t * log_p) / n


def cross_entropy(probabilities, labels, eps=1e-7, sample_weight=None):
    """Mean -sum t log p for probabilities (N, K), clipped to [eps, 1] (Keras's categorical_crossentropy);
    ``sample_weight`` (N,): Keras's weighted loss, sum_i w_i l_i / N."""
    n, k = _shape(probabilities)
    dtype = value_of(probabilities).dtype
    weights = _row_weights(sample_weight, n, dtype, "cross_entropy")
    if device.is_device(probabilities):      # one op there (kernels.losses), the same maths
        return device.cross_entropy(probabilities, labels, eps, None if weights is None else weights.reshape(n))
    t = _targets_matrix(_check_targets(labels, n, k, "cross_entropy"), (n, k), dtype)
    values = np.asarray(value_of(probabilities))
    if values.size and not (np.nanmin(values) >= 0 and np.nanmax(values) <= 1):    # logits, most likely
        warnings.warn(f"cross_entropy takes probabilities but got values from {np.nanmin(values):.3g} to "
                      f"{np.nanmax(values):.3g} (logits?): clipped to [{eps:g}, 1] they train on nonsense; use "
                      f"softmax_cross_entropy for logits, or end the model in softmax", stacklevel=2)
    return -sum((t if weights is None else t * weights) * log(minimum(maximum(probabilities, eps), 1.0))) / n


def _matched_target(target, shape, what):
    """``target`` in the prediction's ``shape``, as Keras matches them: equal shapes, a number, or (N,)
    against (N, 1) either way round (reshaped); anything else is refused (NumPy would broadcast (N,)
    against (N, 1) to N x N and report a wrong loss, silently)."""
    got = tuple(np.shape(target))
    if got == tuple(shape) or got == ():
        return target
    column = len(shape) >= 1 and shape[-1] == 1 and got == tuple(shape[:-1])
    if column or (got[-1:] == (1,) and got[:-1] == tuple(shape)):
        return target.reshape(shape)
    raise ValueError(f"{what}: the target's shape {got} does not match the prediction's {tuple(shape)} (only (N,) and "
                     f"(N, 1) are matched, as in Keras); reshape one of them")


def mse(prediction, target, sample_weight=None):
    """Mean squared error over every element; ``sample_weight`` (N,): each example's squared errors scaled
    by its weight (Keras's weighted loss). The target has the prediction's shape (or (N,) against (N, 1),
    matched as in Keras)."""
    shape = _shape(prediction)
    weights = _row_weights(sample_weight, shape[0], value_of(prediction).dtype, "mse")
    target = value_of(target)
    if not kernels.is_device_array(target) and not _real(target):
        raise TypeError(f"mse: target must be a real number or array, got {target!r}")
    target = _matched_target(target if kernels.is_device_array(target) else np.asarray(target), shape, "mse")
    if device.is_device(prediction):         # one op there (kernels.losses)
        return device.mse(prediction, target, None if weights is None else weights.reshape(shape[0]))
    diff = prediction - target
    if weights is None:
        return mean(diff * diff)
    return mean(weights.reshape((shape[0],) + (1,) * (len(shape) - 1)) * diff * diff)