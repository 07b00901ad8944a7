"""Training on a CUDA GPU: a model whose parameters live on the device, and the ops that keep a
training step there.

``to_device(model, "cuda")`` (what ``model.to("cuda")`` and ``fit(..., backend="cuda")`` call) moves every
parameter and buffer to the device once, as a ``kernels.device.DeviceArray``; ``to_device(model, "cpu")`` brings them back.
From then on the device follows the data, as in PyTorch: the kernels run on the device because their
inputs are there (ARCHITECTURE.md; ``kernels.backend``), whatever ``kernels.use_backend`` says, and
``fit`` moves each batch in (the inputs and the labels) and reads the loss out (one number per step;
the accuracy's count is summed on the device and read once per epoch). Parameters, gradients, optimiser state and
activations never leave the device. Without a GPU, ``to_device(model, "cuda")`` raises
``kernels.BackendUnavailable`` (set ``NUMBA_ENABLE_CUDASIM=1`` to run in Numba's simulator).

Which ops run how on the device:

- conv2d (with its fused ReLU), max- and average-pooling, flatten, the residual sum: the same autodiff
  primitives as on the host (``nn.convolution``): their kernels take device arrays, and the few
  array operations their rules ask for (a sum over axes, ``+``, a reshape) are DeviceArray's;
- dense layers, activations (PReLU and maxout too), softmax, batch normalisation, the losses (the fused softmax cross-entropy,
  the cross-entropy of probabilities, mse, each with row weights) and the L1/L2 weight penalty: the
  primitives of this module, whose value and reverse rule are ``kernels.dense``, ``kernels.activations``,
  ``kernels.normalization`` and ``kernels.losses`` calls (on the host these ops are compositions of
  autodiff's primitives, which the kernels' NumPy references are tested against);
- dropout and DropConnect: a mask made on the device (``kernels.dropout.dropout_mask``, a
  counter-based hash of a seed drawn from nn's generator: nothing random is copied) times the input.

Why primitives of nn's own, and not NumPy's functions made to work on device arrays: autodiff's
primitives compute with NumPy (``np.asarray`` included), and the engine is the teaching core; a
device version of every NumPy function it uses would spread the device through it. The engine asks
of a device value only ``shape``, ``dtype`` and ``+`` (accumulating adjoints), and keeps it where
it is (``autodiff.tensor._foreign``). These primitives are not in ``autodiff.REGISTRY`` (whose
checks run on the host, to second order): they are held to the host path by the tests instead
(the device step's losses and parameters equal the CPU's). Derivatives of derivatives, forward mode
and ``gradcheck`` need the model on the host: copy it there explicitly (``model.to("cpu")``, or
``nn.device.host_copy(model)``).
"""
from __future__ import annotations

import copy

import numpy as np

import kernels
from autodiff import Primitive, Tensor, value_of
from autodiff.ops import reshape
from autodiff.tensor import apply

__all__ = ["to_device", "device_of", "is_device", "host_copy", "batch_to_device", "input_to_device", "to_host",
           "linear", "activation", "softmax", "prelu", "maxout", "dropout_mask", "batch_norm", "softmax_cross_entropy",
           "cross_entropy", "mse", "weight_penalty", "correct"]

DEVICES = ("cpu", "cuda")


def is_device(x) -> bool:
    """Whether ``x`` (a Tensor or an array) holds a device array: the cheap test nn's ops route on."""
    return kernels.is_device_array(value_of(x))


def device_of(module) -> str:
    """"cuda" when the module's parameters are on the device, else "cpu"."""
    params = module.parameters()
    return "cuda" if params and is_device(params[0]) else "cpu"


def _device_name(device):
    name = str(device)
    if name in ("cuda:0",):
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if name == "cuda":
        with kernels.use_backend("cuda"):     # BackendUnavailable, with its explanation, without a GPU
            pass
    return name


def to_host(a):
    """``a`` as a NumPy array (a device array copied back once; anything else as it is)."""
    return a.copy_to_host() if kernels.is_device_array(a) else np.asarray(a)


def to_device(module, device):
    """Move every parameter and buffer of ``module`` to ``device`` ("cuda" or "cpu"), in place; returns it.

    Gradients are dropped (an optimiser built before the move has host state: build it after, as in
    PyTorch, or let ``compile`` / ``fit`` build it)."""
    name = _device_name(device)
    move = (lambda a: kernels.device.to_device(a)) if name == "cuda" else to_host
    for _, sub in module.named_modules():
        for p in sub._parameters.values():
            p._value = move(p._value)
            p.grad = None
        for key, b in list(sub._buffers.items()):
            sub._buffers[key] = moved = move(b)
            setattr(sub, key, moved)
    return module


def host_copy(module):
    """A copy of ``module`` on the host, gradients included (for gradcheck, the teaching views such as
    ``nn.diagnostics.gradient_norms``, ``save``); ``module`` stays where it is. Each device array is
    copied to the host once."""
    if device_of(module) == "cpu":
        return copy.deepcopy(module)
    subs = [sub for _, sub in module.named_modules()]
    params = module.parameters()
    values, grads = [p._value for p in params], [p.grad for p in params]
    buffers = [dict(sub._buffers) for sub in subs]
    try:                                   # deep-copy everything but the device arrays
        for p in params:
            p._value = p.grad = None
        for sub in subs:
            for key in sub._buffers:
                sub._buffers[key] = None
                setattr(sub, key, None)
        twin = copy.deepcopy(module)
    finally:
        for p, v, g in zip(params, values, grads):
            p._value, p.grad = v, g
        for sub, saved in zip(subs, buffers):
            for key, b in saved.items():
                sub._buffers[key] = b
                setattr(sub, key, b)
    for q, v, g in zip(twin.parameters(), values, grads):
        q._value, q.grad = to_host(v), None if g is None else to_host(g)
    for twin_sub, saved in zip([sub for _, sub in twin.named_modules()], buffers):
        for key, b in saved.items():
            twin_sub._buffers[key] = host = to_host(b)
            setattr(twin_sub, key, host)
    return twin


def batch_to_device(x, y):
    """A batch moved in for a model on the device: (x as a Tensor on the device, y on the device).
    Labels become int64 (the kernels' index type), target distributions x's dtype; two copies in."""
    x, y = np.asarray(x), np.asarray(y)
    if y.dtype.kind in "iu":
        y = y.astype(np.int64, copy=False)
    elif y.dtype.kind == "f":                 # target distributions: the inputs' (the model's) dtype
        y = y.astype(x.dtype, copy=False)
    return Tensor(kernels.device.to_device(x)), kernels.device.to_device(y)


def input_to_device(x):
    """A batch of inputs moved in for a model on the device (predict's): one copy in."""
    return Tensor(kernels.device.to_device(np.asarray(x)))


# --- the device primitives: value and reverse rule by kernels ------------------------------------------

def _first_order(rule):
    def checked(g, out, *args, **params):
        if isinstance(g, Tensor) or isinstance(out, Tensor):
            raise NotImplementedError(
                "derivatives of derivatives of an op on the CUDA device are not supported: copy the model to the "
                "host first (model.to('cpu') or nn.device.host_copy(model))")
        return rule(g, out, *args, **params)
    return checked


def _no_forward_mode(t, out, *args, **params):
    raise NotImplementedError("forward mode (jvp) on the CUDA device is not supported: copy the model to the host "
                              "first (model.to('cpu') or nn.device.host_copy(model))")


def _declare(name, impl, *vjps):
    return Primitive(name, impl, vjp=tuple(_first_order(r) for r in vjps),
                     jvp=(_no_forward_mode,) * len(vjps), nin=len(vjps))


_DENSE = _declare("dense (device)", lambda x, w, b: kernels.dense.forward(x, w, b),
                  lambda g, out, x, w, b: kernels.dense.backward_input(g, w),
                  lambda g, out, x, w, b: kernels.dense.backward_weight(g, x, bias=False)[0],
                  lambda g, out, x, w, b: g.sum(axis=0))


def linear(x, w, b=None):
    """x @ w + b on the device (kernels.dense); b None adds zeros."""
    if b is None:
        b = kernels.device.zeros(np.shape(value_of(w))[1], value_of(w).dtype)
    return apply(_DENSE, (x, w, b), {})


_ACTIVATION = _declare("activation (device)",
                       lambda x, *, name, alpha: kernels.activations.activation_forward(x, name, alpha),
                       lambda g, out, x, *, name, alpha:
                       kernels.activations.activation_backward(g, x, out, name, alpha))
_SOFTMAX = _declare("softmax (device)", lambda z: kernels.activations.softmax(z),
                    lambda g, out, z: kernels.activations.softmax_backward(g, out))

#: nn's activation names -> (the kernels' name, the keyword that is its parameter, its default).
_KERNEL_ACTIVATIONS = {"relu": ("relu", None, 0.0), "tanh": ("tanh", None, 0.0), "sigmoid": ("sigmoid", None, 0.0),
                       "elu": ("elu", "alpha", 1.0), "leaky_relu": ("leaky_relu", "alpha", 0.01),
                       "swish": ("swish", "beta", 1.0)}


def activation(x, name, **config):
    """The activation ``name`` of nn.functional on device data (softmax over axis 1 of (N, K))."""
    if name == "softmax":
        if len(np.shape(value_of(x))) != 2:
            raise ValueError(f"softmax on the device works on (N, K) logits, got shape {np.shape(value_of(x))}")
        return apply(_SOFTMAX, (x,), {})
    if name == "linear":
        return x
    kernel_name, keyword, default = _KERNEL_ACTIVATIONS[name]
    alpha = config.pop(keyword, default) if keyword else default
    if config:
        raise TypeError(f"{name} on the device takes no argument(s) {sorted(config)}")
    return apply(_ACTIVATION, (x,), {"name": kernel_name, "alpha": float(alpha)})


def softmax(x):
    return activation(x, "softmax")


def _prelu_vjp(g, out, x, alpha, *, wanted):
    """(dx, dalpha) from one kernel call: a joint rule."""
    return tuple(kernels.activations.prelu_backward(g, x, alpha))


_PRELU = Primitive("prelu (device)", lambda x, alpha: kernels.activations.prelu_forward(x, alpha),
                   vjp_joint=_first_order(_prelu_vjp), jvp=(_no_forward_mode,) * 2, nin=2)
_MAXOUT = _declare("maxout (device)", lambda x, *, pieces: kernels.activations.maxout_forward(x, pieces),
                   lambda g, out, x, *, pieces: kernels.activations.maxout_backward(g, x, pieces))


def prelu(x, alpha):
    """PReLU of device data, one slope per channel (axis 1): one op (kernels.activations)."""
    return apply(_PRELU, (x, alpha), {})


def maxout(x, pieces):
    """Maxout of device data over groups of ``pieces`` channels (axis 1): one op (kernels.activations)."""
    return apply(_MAXOUT, (x,), {"pieces": int(pieces)})


def mask_seed(rng) -> int:
    """The seed of one dropout mask, drawn from ``rng`` (host and device draw it alike: the same masks)."""
    return int(rng.integers(kernels.dropout.SEEDS))


def dropout_mask(shape, rate, rng, dtype):
    """The inverted-dropout mask, made on the device from one seed drawn from ``rng`` (nothing copied)."""
    return kernels.dropout.dropout_mask(shape, rate, mask_seed(rng), dtype, device=True)


def _bn_vjp(g, out, x, gamma, beta, *, wanted, running_mean, running_var, training, momentum, eps):
    """(dx, dgamma, dbeta) of a batch-norm node from one kernel call: a joint rule (no state kept)."""
    return tuple(kernels.normalization.batch_norm_backward(g, x, gamma, running_mean, running_var, training, eps))


_BATCH_NORM = Primitive("batch_norm (device)",
                        lambda x, gamma, beta, *, running_mean, running_var, training, momentum, eps:
                        kernels.normalization.batch_norm_forward(x, gamma, beta, running_mean, running_var,
                                                                 training, momentum, eps),
                        vjp_joint=_first_order(_bn_vjp), jvp=(_no_forward_mode,) * 3, nin=3)


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """Batch normalisation of (N, C) or (N, C, H, W) device data, one fused op (kernels.normalization)."""
    shape = tuple(np.shape(value_of(x)))
    if running_mean is None:
        raise ValueError("batch_norm on the device needs running_mean and running_var (device arrays)")
    flat = len(shape) == 2
    if flat:
        x = reshape(x, shape=shape + (1, 1))
    y = apply(_BATCH_NORM, (x, gamma, beta), dict(running_mean=running_mean, running_var=running_var,
                                                  training=bool(training), momentum=float(momentum), eps=float(eps)))
    return reshape(y, shape=shape) if flat else y


def _on_device(a, dtype):
    """A host float array (a target, weights) in ``dtype``, copied in once for a loss on the device (its value
    and its gradient read it); a device one as it is."""
    if a is None or kernels.is_device_array(a):
        return a
    return kernels.device.to_device(np.asarray(a, dtype=dtype))


def _labels(targets, dtype):
    """Host labels stay on the host, for kernels.losses to check their range (a device label out of range
    gives NaN); host distributions in the model's dtype."""
    if kernels.is_device_array(targets):
        return targets
    targets = np.asarray(targets)
    return targets.astype(dtype, copy=False) if targets.dtype.kind == "f" else targets


_SCE = _declare("softmax_cross_entropy (device)",
                lambda z, *, targets, weights: kernels.losses.softmax_cross_entropy(z, targets, weights=weights),
                lambda g, out, z, *, targets, weights:
                kernels.losses.softmax_cross_entropy_backward(g, z, targets, weights=weights))
_CROSS_ENTROPY = _declare("cross_entropy (device)",
                          lambda p, *, targets, eps, weights:
                          kernels.losses.cross_entropy(p, targets, eps=eps, weights=weights),
                          lambda g, out, p, *, targets, eps, weights:
                          kernels.losses.cross_entropy_backward(g, p, targets, eps=eps, weights=weights))
_MSE = _declare("mse (device)", lambda p, *, target, weights: kernels.losses.mse(p, target, weights=weights),
                lambda g, out, p, *, target, weights: kernels.losses.mse_backward(g, p, target, weights=weights))
_PENALTY = _declare("weight_penalty (device)", lambda w, *, l1, l2: kernels.losses.weight_penalty(w, l1=l1, l2=l2),
                    lambda g, out, w, *, l1, l2: kernels.losses.weight_penalty_backward(g, w, l1=l1, l2=l2))


def softmax_cross_entropy(logits, targets, weights=None):
    """The fused softmax cross-entropy of device logits (a 0-d device loss); host labels are checked
    and copied in, device labels used as they are (an out-of-range label gives a NaN loss). ``weights``
    (N,): each row's factor (Keras's sample_weight)."""
    dtype = value_of(logits).dtype
    return apply(_SCE, (logits,), {"targets": _labels(targets, dtype), "weights": _on_device(weights, dtype)})


def cross_entropy(probabilities, targets, eps, weights=None):
    """Mean -w_i sum t log clip(p, eps, 1) of device probabilities (N, K), nn.functional.cross_entropy's maths."""
    dtype = value_of(probabilities).dtype
    return apply(_CROSS_ENTROPY, (probabilities,), {"targets": _labels(targets, dtype), "eps": float(eps),
                                                    "weights": _on_device(weights, dtype)})


def mse(prediction, target, weights=None):
    """Mean squared error of a device prediction; the target must have its shape (no broadcasting)."""
    dtype = value_of(prediction).dtype
    return apply(_MSE, (prediction,), {"target": _on_device(value_of(target), dtype),
                                       "weights": _on_device(weights, dtype)})


def weight_penalty(w, l1=0.0, l2=0.0):
    """l1 sum |w| + l2 / 2 sum w^2 of a parameter on the device (one op: nn.regularizers' penalties there)."""
    return apply(_PENALTY, (w,), {"l1": float(l1), "l2": float(l2)})


def correct(output, targets):
    """How many rows of ``output`` have their argmax at the label: a 0-d device array (read it once, at the end)."""
    return kernels.losses.correct(value_of(output), targets)
