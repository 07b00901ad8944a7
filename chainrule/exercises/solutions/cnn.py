"""Answers to the CNN-training lessons' exercises, in plain NumPy.

Each function has the signature of its stub in :mod:`chainrule.exercises.cnn` and passes its
checker there. ``SOLUTIONS`` maps each exercise name to its answer.
"""
from __future__ import annotations

import numpy as np

from ..cnn import ADAM_EPS, ELU_ALPHA, SWISH_BETA


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# --- lesson 1 --------------------------------------------------------------------------------------

def elu_derivative(x):
    """1 for x > 0; alpha e^x = elu(x) + alpha for x < 0."""
    return np.where(x > 0, 1.0, ELU_ALPHA * np.exp(np.minimum(x, 0)))


def swish_derivative(x):
    """d/dx x s(bx) = s(bx) + b x s(bx) (1 - s(bx)), with s the sigmoid."""
    s = _sigmoid(SWISH_BETA * x)
    return s + SWISH_BETA * x * s * (1 - s)


# --- lesson 2 --------------------------------------------------------------------------------------

def init_std(shape):
    """A convolution weight (F, C, kh, kw): fan_in = C kh kw, fan_out = F kh kw (dense: (in, units))."""
    if len(shape) == 2:
        fan_in, fan_out = shape
    else:
        receptive = int(np.prod(shape[2:]))
        fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    return np.sqrt(2 / (fan_in + fan_out)), np.sqrt(2 / fan_in)


# --- lesson 3 --------------------------------------------------------------------------------------

def momentum_step(param, grad, momentum_buffer, lr, momentum):
    """buf <- momentum buf + grad; param <- param - lr buf (the book's a_t = lr buf, eq. 5.18)."""
    buf = momentum * momentum_buffer + grad
    return param - lr * buf, buf


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, betas):
    """Running moments (eqs. 5.29-5.30), bias-corrected (5.31-5.32), then the step (5.33)."""
    beta1, beta2 = betas
    m = beta1 * exp_avg + (1 - beta1) * grad
    v = beta2 * exp_avg_sq + (1 - beta2) * grad ** 2
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return param - lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS), m, v


# --- lesson 4 --------------------------------------------------------------------------------------

def channel_centre(x_train, x):
    """One mean per channel: over the images (axis 0) and the pixels (axes 2, 3)."""
    return x - x_train.mean(axis=(0, 2, 3), keepdims=True)


# --- lesson 5 --------------------------------------------------------------------------------------

def confusion_matrix(y_true, y_pred, classes):
    """Each (true, predicted) pair as one number true * classes + predicted, counted by bincount."""
    return np.bincount(y_true * classes + y_pred, minlength=classes * classes).reshape(classes, classes)


# --- lesson 6 --------------------------------------------------------------------------------------

def elastic_net_grad(w, l1, l2):
    """d/dw (l1 |w| + l2 / 2 w^2) = l1 sign(w) + l2 w."""
    return l1 * np.sign(w) + l2 * w


def max_norm(w, c):
    """Scale the columns whose norm exceeds c by c / norm; leave the others exactly as they are."""
    norms = np.linalg.norm(w, axis=0)
    return w * np.where(norms > c, c / norms, 1.0)


# --- lesson 7 --------------------------------------------------------------------------------------

def residual_block_vjp(x, W1, W2, g):
    """y = x + relu(x W1) W2. The shortcut passes g to x unchanged: dx = g + (the body's dx)."""
    a = x @ W1
    h = np.maximum(a, 0)
    dh = g @ W2.T
    da = dh * (a > 0)
    return g + da @ W1.T, x.T @ da, h.T @ g


# --- lesson 8 --------------------------------------------------------------------------------------

def conv_params(filters, channels, kernel, groups):
    """Each filter spans channels / groups input channels over kernel x kernel; one bias per filter."""
    return filters * (channels // groups) * kernel * kernel, filters


# --- lesson 9 --------------------------------------------------------------------------------------

def transfer_params(widths, classes, frozen):
    """Dense layer i has widths[i] widths[i+1] weights and widths[i+1] biases; the new head sits on
    the last hidden layer (the old head is gone), and the first ``frozen`` layers count apart."""
    sizes = [(a + 1) * b for a, b in zip(widths, widths[1:])] + [(widths[-1] + 1) * classes]
    return sum(sizes[frozen:]), sum(sizes[:frozen])


def layerwise_input(x, weights, biases, k):
    """Each trained layer's output, sigmoid(h W + b), is the next one's input: k of them."""
    h = x
    for w, b in zip(weights[:k], biases[:k]):
        h = 1 / (1 + np.exp(-(h @ w + b)))
    return h


#: Every answer, by exercise name.
SOLUTIONS = {"elu_derivative": elu_derivative, "swish_derivative": swish_derivative, "init_std": init_std,
             "momentum_step": momentum_step, "adam_step": adam_step, "channel_centre": channel_centre,
             "confusion_matrix": confusion_matrix, "elastic_net_grad": elastic_net_grad, "max_norm": max_norm,
             "residual_block": residual_block_vjp, "conv_params": conv_params,
             "transfer_params": transfer_params, "layerwise_input": layerwise_input}
