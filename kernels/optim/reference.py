"""Optimiser updates in plain NumPy: the reference the compiled versions are held to.

Written directly from PyTorch's documented algorithms (``torch.optim.SGD``, ``Adagrad``,
``Adadelta``, ``RMSprop``, ``Adam``, ``AdamW``), one whole-array operation per line, and
independent of ``formulas.py`` (it does not call it), so that a mistake there shows up as a
difference here. Each function updates ``param`` and the state arrays in place (``*=``, ``+=``,
``out=``) and returns None, like the CPU and CUDA versions.

Arrays arrive flat, validated and of one dtype; ``hyper`` is the optimiser's object of
``kernels.options`` (SGDHyper, ...), ``step`` the step number (1 on the first update). cpu.py and
cuda.py have the same functions with the same arguments. With NumPy 2 a Python float next to a float32
array does not promote it (NEP 50), so float32 arrays are updated in float32 arithmetic.
"""
from __future__ import annotations

import math

import numpy as np


def sgd_step(param, grad, momentum_buffer, hyper, step):
    """SGD with optional (Nesterov) momentum, eqs. 5.17-5.20 in PyTorch's form (velocity without lr)."""
    lr, momentum, dampening, weight_decay = hyper.lr, hyper.momentum, hyper.dampening, hyper.weight_decay
    if weight_decay != 0:
        grad = grad + weight_decay * param
    if momentum != 0:
        if step == 1:
            momentum_buffer[...] = grad  # the first step copies the gradient, undampened
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - dampening) * grad
        if hyper.nesterov:
            grad = grad + momentum * momentum_buffer
        else:
            grad = momentum_buffer
    param -= lr * grad


def adagrad_step(param, grad, state_sum, hyper, step):
    """AdaGrad, eq. 5.21 with epsilon outside the square root and a decaying learning rate."""
    lr, lr_decay, weight_decay, eps = hyper.lr, hyper.lr_decay, hyper.weight_decay, hyper.eps
    if weight_decay != 0:
        grad = grad + weight_decay * param
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += grad * grad
    param -= clr * (grad / (np.sqrt(state_sum) + eps))


def adadelta_step(param, grad, square_avg, acc_delta, hyper, step):
    """AdaDelta, eqs. 5.23 and 5.26, the step scaled by lr (default 1)."""
    lr, rho, eps, weight_decay = hyper.lr, hyper.rho, hyper.eps, hyper.weight_decay
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg *= rho
    square_avg += (1 - rho) * grad * grad
    delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * grad
    acc_delta *= rho
    acc_delta += (1 - rho) * delta * delta
    param -= lr * delta


def rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg, hyper, step):
    """RMSprop, eqs. 5.27-5.28 with epsilon outside the root; optional centring and momentum."""
    lr, alpha, eps, weight_decay, momentum = hyper.lr, hyper.alpha, hyper.eps, hyper.weight_decay, hyper.momentum
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg *= alpha
    square_avg += (1 - alpha) * grad * grad
    if hyper.centered:
        grad_avg += (1 - alpha) * (grad - grad_avg)
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += grad / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * (grad / avg)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, hyper, step):
    """Adam (eqs. 5.29-5.33, epsilon outside the root), AMSGrad, and AdamW when ``hyper.decoupled``."""
    lr, (beta1, beta2), eps, weight_decay = hyper.lr, hyper.betas, hyper.eps, hyper.weight_decay
    if weight_decay != 0:
        if hyper.decoupled:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    exp_avg *= beta1
    exp_avg += (1 - beta1) * grad
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    if hyper.amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    denom = np.sqrt(second_moment) / math.sqrt(bias_correction2) + eps
    param -= (lr / bias_correction1) * (exp_avg / denom)
