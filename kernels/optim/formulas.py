"""One scalar update formula per optimiser, shared by the CPU loop and the CUDA kernel.

Each function updates ONE parameter element: it takes the element's value ``p``, its gradient
``g`` and its state (moment estimates, buffers), and returns the new value and the new state.
The loops around it live elsewhere:

- ``kernels/optim/cpu.py`` calls it for every element inside a Numba ``prange`` loop;
- ``kernels/optim/cuda.py`` calls it from a ``@cuda.jit`` kernel, one GPU thread per element.

So the arithmetic of each optimiser is written exactly once. (The loop bodies around the call,
which read an element and write it back, stay in each loop: moved into a shared function here,
Adam's CPU loop was no longer inlined and vectorised, and ran 10x slower.)
The formulas follow PyTorch's documented algorithms (``torch.optim``), which is what the public
functions promise; each docstring names the equation of the source text (section 5.4, eqs.
5.17-5.33) and says where PyTorch's convention differs from it.

Two details shape this file:

``register_jitable``
    A plain ``@njit`` function cannot be called from a ``@cuda.jit`` kernel, and a
    ``@cuda.jit(device=True)`` function cannot be called from ``@njit`` code. A function
    decorated with ``numba.extending.register_jitable`` is compiled *into* whichever kind of
    code calls it (CPU or CUDA), so both loops can share it. Called from plain Python (as the
    CUDA simulator does) it is an ordinary Python function.

Coefficients computed by the caller
    Every number that is the same for all elements is computed once per step, in Python (double
    precision, by the ``*_coefficients`` functions at the end of this file), rounded once to the
    arrays' dtype, and passed in: the step-dependent ones (Adam's bias corrections, AdaGrad's
    decayed learning rate, SGD's "first step?") and the complements ``1 - beta2``, ``1 - rho``,
    ... (as ``one_minus_beta2``, ...).
    Two reasons. Precision: float32(0.999) is 0.99900001, and ``1 - beta2`` computed from it is
    0.00099999 instead of 0.001, a relative error of 1.3e-5 that the subtraction exposes; in
    double precision it is exact to 1e-16 before the one rounding. Type: in Numba a literal such
    as ``1.0`` is a float64, and float32 arithmetic with a float64 is done in float64; with all
    coefficients in the arrays' dtype and no literals, float32 parameters are updated in float32
    arithmetic (as PyTorch does, and as a GPU prefers). Squares are written ``g * g`` for the
    same reason.
"""
from __future__ import annotations

import math

import numpy as np
from numba.extending import register_jitable


@register_jitable
def sgd(p, g, buf, lr, momentum, one_minus_dampening, weight_decay, nesterov, first_step):
    """SGD with momentum / Nesterov momentum, as ``torch.optim.SGD``. Returns ``(p, buf)``.

    Source: eqs. 5.17-5.18 (momentum) and 5.19-5.20 (Nesterov momentum)::

        a_t = eta * grad F(theta_t) + gamma * a_{t-1}          (5.18)
        theta_t = theta_{t-1} - a_t                             (5.17)

    PyTorch keeps the velocity WITHOUT the learning rate and applies it at the end::

        g   <- g + weight_decay * p                             (L2 penalty, if weight_decay != 0)
        buf <- g                                  on the first step (no dampening then)
        buf <- momentum * buf + (1 - dampening) * g             afterwards
        g   <- g + momentum * buf   (Nesterov)    or    g <- buf   (plain momentum)
        p   <- p - lr * g

    With a constant learning rate and no dampening this is the book's rule with
    ``a_t = lr * buf_t`` and ``gamma = momentum``; the two differ when lr changes during training.
    The book's Nesterov rule (5.20) evaluates the gradient at the look-ahead point
    ``theta - gamma a_{t-1}``; PyTorch uses the equivalent reformulation of Sutskever et al.,
    which needs only the gradient at the current parameters: ``p -= lr * (g + momentum * buf)``.

    Without momentum (``momentum == 0``) ``buf`` is not used and is returned unchanged.
    """
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        if first_step:
            buf = g
        else:
            buf = momentum * buf + one_minus_dampening * g
        if nesterov:
            g = g + momentum * buf
        else:
            g = buf
    p = p - lr * g
    return p, buf


@register_jitable
def adagrad(p, g, state_sum, clr, weight_decay, eps):
    """AdaGrad, as ``torch.optim.Adagrad``. Returns ``(p, state_sum)``.

    Source: eq. 5.21, ``theta_t = theta_{t-1} - eta / sqrt(sum_tau delta_tau^2 + eps) * delta_t``.

    PyTorch::

        g         <- g + weight_decay * p               (if weight_decay != 0)
        state_sum <- state_sum + g * g
        p         <- p - clr * g / (sqrt(state_sum) + eps)

    Differences from eq. 5.21: epsilon is added OUTSIDE the square root (default 1e-10), the
    sum starts at ``initial_accumulator_value`` (whatever ``state_sum`` holds at the start), and
    the learning rate decays with the step: ``clr = lr / (1 + (step - 1) * lr_decay)``, which the
    caller computes once per step.
    """
    if weight_decay != 0:
        g = g + weight_decay * p
    state_sum = state_sum + g * g
    p = p - clr * (g / (math.sqrt(state_sum) + eps))
    return p, state_sum


@register_jitable
def adadelta(p, g, square_avg, acc_delta, lr, rho, one_minus_rho, eps, weight_decay):
    """AdaDelta, as ``torch.optim.Adadelta``. Returns ``(p, square_avg, acc_delta)``.

    Source: eqs. 5.22-5.26; the running average of squared gradients is eq. 5.23 and the update
    is eq. 5.26, ``theta_t = theta_{t-1} - sqrt(E[dtheta^2]_{t-1} + eps) / sqrt(E[delta^2]_t + eps) * delta_t``.

    PyTorch (``rho`` is the book's gamma)::

        g          <- g + weight_decay * p                              (if weight_decay != 0)
        square_avg <- rho * square_avg + (1 - rho) * g * g              (eq. 5.23)
        delta      <- sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
        acc_delta  <- rho * acc_delta + (1 - rho) * delta * delta      (E[(dtheta)^2])
        p          <- p - lr * delta                                    (eq. 5.26 when lr = 1)

    Epsilon sits inside both square roots, as in the book. PyTorch keeps a learning rate that
    scales the step (default 1.0, which is eq. 5.26 exactly); the accumulated ``delta`` does not
    include it.
    """
    if weight_decay != 0:
        g = g + weight_decay * p
    square_avg = rho * square_avg + one_minus_rho * g * g
    std = math.sqrt(square_avg + eps)
    delta = math.sqrt(acc_delta + eps) / std * g
    acc_delta = rho * acc_delta + one_minus_rho * delta * delta
    p = p - lr * delta
    return p, square_avg, acc_delta


@register_jitable
def rmsprop(p, g, square_avg, buf, grad_avg, lr, alpha, one_minus_alpha, eps, weight_decay, momentum,
            centered):
    """RMSprop, as ``torch.optim.RMSprop``. Returns ``(p, square_avg, buf, grad_avg)``.

    Source: eqs. 5.27-5.28::

        E[delta^2]_t = gamma E[delta^2]_{t-1} + (1 - gamma) delta_t^2        (5.27)
        theta_t = theta_{t-1} - eta / sqrt(E[delta^2]_t + eps) * delta_t      (5.28)

    PyTorch (``alpha`` is the book's gamma; its default is 0.99, the book suggests 0.9)::

        g          <- g + weight_decay * p                          (if weight_decay != 0)
        square_avg <- alpha * square_avg + (1 - alpha) * g * g      (eq. 5.27)
        if centered:  grad_avg <- grad_avg + (1 - alpha) * (g - grad_avg)
                      avg <- sqrt(square_avg - grad_avg^2) + eps     (an estimate of the variance)
        else:         avg <- sqrt(square_avg) + eps
        if momentum > 0:  buf <- momentum * buf + g / avg;   p <- p - lr * buf
        else:             p <- p - lr * g / avg                      (eq. 5.28)

    Differences from eq. 5.28: epsilon is added OUTSIDE the square root; the centred variant and
    the momentum buffer are PyTorch options that the book does not describe. ``buf`` (without
    momentum) and ``grad_avg`` (without centring) are not used and are returned unchanged.
    """
    if weight_decay != 0:
        g = g + weight_decay * p
    square_avg = alpha * square_avg + one_minus_alpha * g * g
    if centered:
        grad_avg = grad_avg + one_minus_alpha * (g - grad_avg)
        avg = math.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = math.sqrt(square_avg) + eps
    if momentum > 0:
        buf = momentum * buf + g / avg
        p = p - lr * buf
    else:
        p = p - lr * (g / avg)
    return p, square_avg, buf, grad_avg


@register_jitable
def adam(p, g, m, v, vmax, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay,
         decay_factor, step_size, bias_correction2_sqrt, amsgrad, decoupled):
    """Adam / AMSGrad / AdamW, as ``torch.optim.Adam`` and ``torch.optim.AdamW``.

    Returns ``(p, m, v, vmax)``.

    Source: eqs. 5.29-5.33 (``beta1, beta2`` are the book's gamma_1, gamma_2)::

        m_t = beta1 m_{t-1} + (1 - beta1) g_t                   (5.29)
        v_t = beta2 v_{t-1} + (1 - beta2) g_t^2                 (5.30)
        m^_t = m_t / (1 - beta1^t),  v^_t = v_t / (1 - beta2^t)  (5.31, 5.32)
        theta_t = theta_{t-1} - eta / sqrt(v^_t + eps) * m^_t    (5.33)

    PyTorch::

        if weight_decay != 0:
            decoupled (AdamW):  p <- p * (1 - lr * weight_decay)     (before anything else)
            otherwise (Adam):   g <- g + weight_decay * p            (L2 penalty in the gradient)
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g * g
        if amsgrad: vmax <- max(vmax, v); use vmax instead of v below
        p <- p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)

    with ``step_size = lr / (1 - beta1**step)`` and ``bias_correction2_sqrt = sqrt(1 -
    beta2**step)`` computed by the caller (and ``decay_factor = 1 - lr * weight_decay``). That
    is ``p - lr * m^ / (sqrt(v^) + eps)``: epsilon is added OUTSIDE the square root, unlike
    eq. 5.33. AMSGrad keeps the running maximum of the uncorrected ``v`` and bias-corrects that
    maximum. Without amsgrad ``vmax`` is not used and is returned unchanged.
    """
    if weight_decay != 0:
        if decoupled:
            p = p * decay_factor
        else:
            g = g + weight_decay * p
    m = beta1 * m + one_minus_beta1 * g
    v = beta2 * v + one_minus_beta2 * g * g
    if amsgrad:
        vmax = max(vmax, v)
        denom = math.sqrt(vmax) / bias_correction2_sqrt + eps
    else:
        denom = math.sqrt(v) / bias_correction2_sqrt + eps
    p = p - step_size * (m / denom)
    return p, m, v, vmax


# --- the per-step coefficients, computed once in Python for all elements ----------------------
# Each function returns the scalar arguments of its formula (everything after the arrays'
# elements), in the formula's order, as numbers of the arrays' dtype (np.float32 or np.float64).
# ``hyper`` is the optimiser's object of kernels.options (SGDHyper, ...), ``step`` the step number.

def sgd_coefficients(dtype, hyper, step):
    """``(lr, momentum, one_minus_dampening, weight_decay, nesterov, first_step)`` for ``sgd``."""
    s = np.dtype(dtype).type
    return (s(hyper.lr), s(hyper.momentum), s(1 - hyper.dampening), s(hyper.weight_decay), hyper.nesterov,
            step == 1)


def adagrad_coefficients(dtype, hyper, step):
    """``(clr, weight_decay, eps)`` for ``adagrad``; ``clr = lr / (1 + (step - 1) * lr_decay)``."""
    s = np.dtype(dtype).type
    return s(hyper.lr / (1 + (step - 1) * hyper.lr_decay)), s(hyper.weight_decay), s(hyper.eps)


def adadelta_coefficients(dtype, hyper, step):
    """``(lr, rho, one_minus_rho, eps, weight_decay)`` for ``adadelta`` (``step`` is not needed)."""
    s = np.dtype(dtype).type
    return s(hyper.lr), s(hyper.rho), s(1 - hyper.rho), s(hyper.eps), s(hyper.weight_decay)


def rmsprop_coefficients(dtype, hyper, step):
    """``(lr, alpha, one_minus_alpha, eps, weight_decay, momentum, centered)`` for ``rmsprop``."""
    s = np.dtype(dtype).type
    return (s(hyper.lr), s(hyper.alpha), s(1 - hyper.alpha), s(hyper.eps), s(hyper.weight_decay),
            s(hyper.momentum), hyper.centered)


def adam_coefficients(dtype, hyper, step):
    """``(beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay, decay_factor,
    step_size, bias_correction2_sqrt, amsgrad, decoupled)`` for ``adam``."""
    s = np.dtype(dtype).type
    (beta1, beta2), lr = hyper.betas, hyper.lr
    step_size = lr / (1 - beta1 ** step)             # lr / bias_correction1
    bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
    decay_factor = 1 - lr * hyper.weight_decay       # AdamW's shrinking factor
    return (s(beta1), s(beta2), s(1 - beta1), s(1 - beta2), s(hyper.eps), s(hyper.weight_decay), s(decay_factor),
            s(step_size), s(bias_correction2_sqrt), hyper.amsgrad, hyper.decoupled)
