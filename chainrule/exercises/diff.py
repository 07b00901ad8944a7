"""Gradient-check exercises for lesson 6: write the backward pass (the vjp) of eleven functions.

For each exercise this module gives

- the forward function in NumPy (what you differentiate),
- a stub with the signature your answer must have (it raises ``NotImplementedError``),
- a checker ``check_<name>(your_function)`` that compares your vjp with the engine's reverse
  sweep through the same function written with autodiff ops, element by element. It returns a
  passing report, or raises ``ExerciseError`` with a table naming each wrong element.

Your function receives the forward's inputs and the cotangent ``g = dL/dy`` (shaped like the
output) and returns ``dL/dx = g J`` for each differentiable input: one array for one input, a tuple
in argument order for several. The answers are in :mod:`chainrule.exercises.solutions.diff`: try first.

>>> from chainrule.exercises import check_sigmoid, sigmoid_vjp, attempt
>>> attempt(check_sigmoid, sigmoid_vjp).status
'not attempted'
>>> import numpy as np
>>> def my_sigmoid_vjp(x, g):
...     s = sigmoid(x)
...     return g * s * (1 - s)
>>> print(check_sigmoid(my_sigmoid_vjp))
sigmoid: passed (12 elements agree with the reference, atol=1e-08, rtol=1e-06)
"""
from __future__ import annotations

import numpy as np

import autodiff as ad

from .checking import Exercise

LEAKY_SLOPE = 0.1   # the slides' Leaky ReLU, max(0.1 x, x) (PyTorch's default slope is 0.01)
ELU_ALPHA = 1.0     # the slides' ELU: x for x >= 0, alpha (e^x - 1) otherwise
BN_EPS = 1e-5       # eq. 5.10's epsilon


def _away_from_zero(rng, shape, lo=0.2, hi=3.0):
    """Values of both signs, at least ``lo`` away from 0 (the kink of relu and friends)."""
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


# --- activation functions (slides "CNN Training 1") -----------------------------------------------

def sigmoid(x):
    """sigma(x) = 1 / (1 + e^-x), elementwise."""
    return 1 / (1 + np.exp(-x))


def sigmoid_vjp(x, g):
    """Return dL/dx for y = sigmoid(x), given g = dL/dy (same shape as x)."""
    raise NotImplementedError("write the backward pass of sigmoid")


SIGMOID = Exercise("sigmoid", ("x",), ("x",), sigmoid, lambda x: 1 / (1 + ad.exp(-x)),
                   lambda rng: {"x": rng.uniform(-4, 4, (3, 4))})


def check_sigmoid(student_vjp):
    """Check ``student_vjp(x, g) -> dx`` for y = sigmoid(x)."""
    return SIGMOID.check(student_vjp)


def tanh(x):
    """tanh(x), elementwise."""
    return np.tanh(x)


def tanh_vjp(x, g):
    """Return dL/dx for y = tanh(x), given g = dL/dy."""
    raise NotImplementedError("write the backward pass of tanh")


TANH = Exercise("tanh", ("x",), ("x",), tanh, lambda x: (ad.exp(2 * x) - 1) / (ad.exp(2 * x) + 1),
                lambda rng: {"x": rng.uniform(-3, 3, (3, 4))})


def check_tanh(student_vjp):
    """Check ``student_vjp(x, g) -> dx`` for y = tanh(x)."""
    return TANH.check(student_vjp)


def relu(x):
    """max(0, x), elementwise."""
    return np.maximum(0, x)


def relu_vjp(x, g):
    """Return dL/dx for y = relu(x), given g = dL/dy (inputs are never exactly 0)."""
    raise NotImplementedError("write the backward pass of relu")


RELU = Exercise("relu", ("x",), ("x",), relu, lambda x: ad.relu(x),
                lambda rng: {"x": _away_from_zero(rng, (3, 4))})


def check_relu(student_vjp):
    """Check ``student_vjp(x, g) -> dx`` for y = relu(x)."""
    return RELU.check(student_vjp)


def leaky_relu(x, slope=LEAKY_SLOPE):
    """max(slope x, x), elementwise (the slides' Leaky ReLU with slope 0.1)."""
    return np.maximum(slope * x, x)


def leaky_relu_vjp(x, g):
    """Return dL/dx for y = leaky_relu(x) (slope 0.1), given g = dL/dy."""
    raise NotImplementedError("write the backward pass of leaky relu")


LEAKY_RELU = Exercise("leaky_relu", ("x",), ("x",), leaky_relu, lambda x: ad.maximum(LEAKY_SLOPE * x, x),
                      lambda rng: {"x": _away_from_zero(rng, (3, 4))})


def check_leaky_relu(student_vjp):
    """Check ``student_vjp(x, g) -> dx`` for y = max(0.1 x, x)."""
    return LEAKY_RELU.check(student_vjp)


def elu(x, alpha=ELU_ALPHA):
    """x for x >= 0, alpha (e^x - 1) for x < 0 (the slides' ELU)."""
    return np.where(x >= 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))


def elu_vjp(x, g):
    """Return dL/dx for y = elu(x) (alpha = 1), given g = dL/dy."""
    raise NotImplementedError("write the backward pass of elu")


ELU = Exercise("elu", ("x",), ("x",), elu, lambda x: ad.where(x >= 0, x, ELU_ALPHA * (ad.exp(x) - 1)),
               lambda rng: {"x": _away_from_zero(rng, (3, 4))})


def check_elu(student_vjp):
    """Check ``student_vjp(x, g) -> dx`` for y = elu(x)."""
    return ELU.check(student_vjp)


# --- soft-max and cross-entropy (lecture "Classification and Optimization in CNNs") ---------------

def softmax(z):
    """y_i = e^{z_i} / sum_j e^{z_j} along the last axis (shifted by the maximum: no overflow)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_vjp(z, g):
    """Return dL/dz for y = softmax(z) along the last axis, given g = dL/dy (shape of z)."""
    raise NotImplementedError("write the backward pass of softmax")


SOFTMAX = Exercise("softmax", ("z",), ("z",), softmax,
                   lambda z: ad.exp(z - ad.logsumexp(z, axis=-1, keepdims=True)),
                   lambda rng: {"z": rng.normal(0, 2, (2, 5))})


def check_softmax(student_vjp):
    """Check ``student_vjp(z, g) -> dz`` for y = softmax(z) (rows of z are independent)."""
    return SOFTMAX.check(student_vjp)


def softmax_cross_entropy(z, t):
    """L = -(1/N) sum_n sum_c t_nc log softmax(z_n)_c: the mean loss of a batch of N logit rows."""
    log_y = z - z.max(axis=-1, keepdims=True)
    log_y = log_y - np.log(np.exp(log_y).sum(axis=-1, keepdims=True))
    return -(t * log_y).sum() / z.shape[0]


def softmax_cross_entropy_vjp(z, t, g):
    """Return dL/dz for the mean loss L = softmax_cross_entropy(z, t), given the scalar g."""
    raise NotImplementedError("write the backward pass of softmax + cross-entropy")


def _one_hot_batch(rng, n, classes):
    return {"z": rng.normal(0, 2, (n, classes)), "t": np.eye(classes)[rng.integers(0, classes, n)]}


SOFTMAX_CROSS_ENTROPY = Exercise(
    "softmax_cross_entropy", ("z", "t"), ("z",), softmax_cross_entropy,
    lambda z, t: -(t * ad.log_softmax(z, axis=-1)).sum() / z.shape[0],
    lambda rng: _one_hot_batch(rng, 3, 4))


def check_softmax_cross_entropy(student_vjp):
    """Check ``student_vjp(z, t, g) -> dz`` for the mean softmax cross-entropy of a batch."""
    return SOFTMAX_CROSS_ENTROPY.check(student_vjp)


# --- layers ------------------------------------------------------------------------------------------

def dense(x, W, b):
    """y = x W + b for a batch x of shape (N, D_in), W of shape (D_in, D_out), b of shape (D_out,)."""
    return x @ W + b


def dense_vjp(x, W, b, g):
    """Return (dL/dx, dL/dW, dL/db) for y = x W + b, given g = dL/dy of shape (N, D_out)."""
    raise NotImplementedError("write the backward pass of the dense layer")


DENSE = Exercise("dense", ("x", "W", "b"), ("x", "W", "b"), dense, lambda x, W, b: x @ W + b,
                 lambda rng: {"x": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 5)), "b": rng.normal(size=5)})


def check_dense(student_vjp):
    """Check ``student_vjp(x, W, b, g) -> (dx, dW, db)`` for y = x W + b."""
    return DENSE.check(student_vjp)


def maxpool2x2(x):
    """2x2 max-pooling with stride 2 of x of shape (N, C, H, W), H and W even: (N, C, H/2, W/2)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def maxpool2x2_vjp(x, g):
    """Return dL/dx for y = maxpool2x2(x), given g = dL/dy of shape (N, C, H/2, W/2) (no ties in x)."""
    raise NotImplementedError("write the backward pass of 2x2 max-pooling")


def _ad_maxpool2x2(x):
    n, c, h, w = x.shape
    return ad.max(ad.reshape(x, (n, c, h // 2, 2, w // 2, 2)), axis=(3, 5))


MAXPOOL2X2 = Exercise("maxpool2x2", ("x",), ("x",), maxpool2x2, _ad_maxpool2x2,
                      lambda rng: {"x": rng.normal(size=(2, 2, 4, 6))})


def check_maxpool2x2(student_vjp):
    """Check ``student_vjp(x, g) -> dx`` for 2x2 max-pooling."""
    return MAXPOOL2X2.check(student_vjp)


def batchnorm(x, gamma, beta, eps=BN_EPS):
    """Batch normalisation in training mode (eqs. 5.8-5.11): x of shape (m, n), statistics over the
    batch axis 0, y = gamma (x - mu) / sqrt(sigma^2 + eps) + beta."""
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def batchnorm_vjp(x, gamma, beta, g):
    """Return (dL/dx, dL/dgamma, dL/dbeta) for y = batchnorm(x, gamma, beta), given g = dL/dy.

    Remember that mu and sigma^2 are functions of x too."""
    raise NotImplementedError("write the backward pass of batch normalisation")


def _ad_batchnorm(x, gamma, beta):
    mu = ad.mean(x, axis=0)
    var = ad.mean((x - mu) ** 2, axis=0)
    return gamma * (x - mu) / ad.sqrt(var + BN_EPS) + beta


BATCHNORM = Exercise("batchnorm", ("x", "gamma", "beta"), ("x", "gamma", "beta"), batchnorm, _ad_batchnorm,
                     lambda rng: {"x": rng.normal(1.0, 2.0, (6, 4)), "gamma": rng.uniform(0.5, 2, 4),
                                  "beta": rng.normal(size=4)})


def check_batchnorm(student_vjp):
    """Check ``student_vjp(x, gamma, beta, g) -> (dx, dgamma, dbeta)`` for batch normalisation."""
    return BATCHNORM.check(student_vjp)


def conv2d(x, w):
    """Cross-correlation, stride 1, no padding (what CNN libraries call conv2d).

    x: (N, C, H, W) images, w: (O, C, kh, kw) kernels; returns (N, O, H - kh + 1, W - kw + 1) with
    y[n, o, i, j] = sum_{c, p, q} w[o, c, p, q] x[n, c, i + p, j + q]. One einsum per kernel offset.
    """
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = h - kh + 1, wd - kw + 1
    y = np.zeros((n, o, ho, wo))
    for p in range(kh):
        for q in range(kw):
            y += np.einsum("nchw,oc->nohw", x[:, :, p:p + ho, q:q + wo], w[:, :, p, q])
    return y


def conv2d_vjp(x, w, g):
    """Return (dL/dx, dL/dw) for y = conv2d(x, w), given g = dL/dy of shape (N, O, H', W')."""
    raise NotImplementedError("write the backward pass of conv2d")


def _ad_conv2d(x, w):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = h - kh + 1, wd - kw + 1
    y = 0.0
    for p in range(kh):
        for q in range(kw):
            patch = ad.transpose(x[:, :, p:p + ho, q:q + wo], (0, 2, 3, 1))        # (N, H', W', C)
            y = y + ad.transpose(patch @ ad.transpose(w[:, :, p, q]), (0, 3, 1, 2))  # (N, O, H', W')
    return y


CONV2D = Exercise("conv2d", ("x", "w"), ("x", "w"), conv2d, _ad_conv2d,
                  lambda rng: {"x": rng.normal(size=(2, 3, 6, 5)), "w": rng.normal(size=(4, 3, 3, 2))})


def check_conv2d(student_vjp):
    """Check ``student_vjp(x, w, g) -> (dx, dw)`` for the stride-1 cross-correlation."""
    return CONV2D.check(student_vjp)


#: Every exercise, in the order of lesson 6.
EXERCISES = {e.name: e for e in (SIGMOID, TANH, RELU, LEAKY_RELU, ELU, SOFTMAX, SOFTMAX_CROSS_ENTROPY, DENSE,
                                 MAXPOOL2X2, BATCHNORM, CONV2D)}

#: The checker of each exercise, by name.
CHECKS = {name: globals()[f"check_{name}"] for name in EXERCISES}

#: The stub of each exercise (raises NotImplementedError), by name.
STUBS = {name: globals()[f"{name}_vjp"] for name in EXERCISES}

__all__ = ["EXERCISES", "CHECKS", "STUBS", "LEAKY_SLOPE", "ELU_ALPHA", "BN_EPS"] + [
    f"{kind}{name}{suffix}" for name in EXERCISES for kind, suffix in (("", ""), ("", "_vjp"), ("check_", ""))]
