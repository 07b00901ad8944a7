"""Optimiser updates on the CPU: Numba-compiled loops, run in parallel over the elements.

Every kernel has the same shape::

    @njit(parallel=True, cache=True)
    def _adam_kernel(param, grad, exp_avg, ...):
        for i in prange(param.size):              # iterations are shared among the CPU threads
            p, m, ... = formulas.adam(param[i], grad[i], exp_avg[i], ..., hyper-parameters)
            param[i] = p                          # write the new value and state back in place
            exp_avg[i] = m

The arithmetic lives in ``formulas.py`` (shared with the CUDA kernels); this file only loops.
Each element's update is independent of the others, so the loop parallelises without any
synchronisation, and one pass reads and writes each array once: the whole update is "fused"
into a single sweep over memory, where NumPy would make one pass per operation.

The entry points in ``kernels.optim`` validate their arguments and pass flat (1-D),
C-contiguous views; the functions here (the same names and arguments as in reference.py and
cuda.py) only compute the per-step coefficients (once, in Python, in the arrays' dtype:
``formulas.*_coefficients``; ``formulas.py`` says why) and call the kernel. An optional state
that is switched off (no momentum buffer, no AMSGrad maximum, ...) arrives as ``None`` and is
replaced by an empty array of the same type, so that the kernel compiles once per dtype; the
kernel never touches it.

``cache=True`` stores the compiled machine code in ``__pycache__`` (``*.nbi``/``*.nbc`` files), so
only the first run on a machine pays the compilation. Numba checks only this file's timestamp:
after editing ``formulas.py``, delete those cache files (or touch this file).
"""
from __future__ import annotations

import numba
from numba import prange

from .. import _cache
from .._cache import njit, serial
from . import formulas

#: No BLAS call here: the entry points call these functions directly (kernels.runtime.host_kernels).
BLAS_FREE = True

#: Arrays smaller than ONE_THREAD_BELOW are updated by one thread: waking the others costs more than they
#: save, and when another process holds a core, a parallel loop waits milliseconds for its second thread
#: (a 64-16-10 MLP's epoch: 0.2 s serial, 9 s parallel with one core busy). Below SERIAL_BELOW, by the
#: kernel's serial twin, with no thread pool at all; between the two by the parallel kernel on one thread
#: (its loop vectorises, the twin's does not: it writes several arrays that Numba cannot prove apart).
SERIAL_BELOW = 1 << 11
ONE_THREAD_BELOW = _cache.SERIAL_BELOW      # the kernels' own bound for small work


def _run(kernel, param, *args):
    """Call ``kernel(param, *args)``, on one thread when ``param`` is small."""
    if param.size < SERIAL_BELOW:
        serial(kernel)(param, *args)
    elif param.size >= ONE_THREAD_BELOW:
        kernel(param, *args)
    else:
        previous = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            kernel(param, *args)
        finally:
            numba.set_num_threads(previous)


# --- kernels ----------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _sgd_kernel(param, grad, momentum_buffer, lr, momentum, one_minus_dampening, weight_decay,
                nesterov, first_step):
    for i in prange(param.size):
        # a stand-in for the buffer when there is no momentum (the formula ignores it then)
        buf = momentum_buffer[i] if momentum != 0 else grad[i]
        p, buf = formulas.sgd(param[i], grad[i], buf, lr, momentum, one_minus_dampening,
                              weight_decay, nesterov, first_step)
        param[i] = p
        if momentum != 0:
            momentum_buffer[i] = buf


@njit(parallel=True, cache=True)
def _adagrad_kernel(param, grad, state_sum, clr, weight_decay, eps):
    for i in prange(param.size):
        p, s = formulas.adagrad(param[i], grad[i], state_sum[i], clr, weight_decay, eps)
        param[i] = p
        state_sum[i] = s


@njit(parallel=True, cache=True)
def _adadelta_kernel(param, grad, square_avg, acc_delta, lr, rho, one_minus_rho, eps, weight_decay):
    for i in prange(param.size):
        p, sq, acc = formulas.adadelta(param[i], grad[i], square_avg[i], acc_delta[i], lr, rho,
                                       one_minus_rho, eps, weight_decay)
        param[i] = p
        square_avg[i] = sq
        acc_delta[i] = acc


@njit(parallel=True, cache=True)
def _rmsprop_kernel(param, grad, square_avg, momentum_buffer, grad_avg, lr, alpha, one_minus_alpha,
                    eps, weight_decay, momentum, centered):
    for i in prange(param.size):
        # stand-ins for the optional states that are switched off (the formula ignores them)
        buf = momentum_buffer[i] if momentum > 0 else grad[i]
        gavg = grad_avg[i] if centered else grad[i]
        p, sq, buf, gavg = formulas.rmsprop(param[i], grad[i], square_avg[i], buf, gavg, lr, alpha,
                                            one_minus_alpha, eps, weight_decay, momentum, centered)
        param[i] = p
        square_avg[i] = sq
        if momentum > 0:
            momentum_buffer[i] = buf
        if centered:
            grad_avg[i] = gavg


@njit(parallel=True, cache=True)
def _adam_kernel(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, beta1, beta2, one_minus_beta1,
                 one_minus_beta2, eps, weight_decay, decay_factor, step_size, bias_correction2_sqrt,
                 amsgrad, decoupled):
    for i in prange(param.size):
        # a stand-in for the AMSGrad maximum when it is switched off (the formula ignores it)
        vmax = max_exp_avg_sq[i] if amsgrad else exp_avg_sq[i]
        p, m, v, vmax = formulas.adam(param[i], grad[i], exp_avg[i], exp_avg_sq[i], vmax, beta1,
                                      beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay,
                                      decay_factor, step_size, bias_correction2_sqrt, amsgrad,
                                      decoupled)
        param[i] = p
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            max_exp_avg_sq[i] = vmax


# --- the functions the entry points call (same names and arguments in reference.py and cuda.py) ----

def _or_empty(state, param):
    """``state``, or an empty array like ``param`` when the state is switched off (None)."""
    return param[:0] if state is None else state


def sgd_step(param, grad, momentum_buffer, hyper, step):
    """SGD (eqs. 5.17-5.20) on flat arrays, in place; see ``formulas.sgd``."""
    _run(_sgd_kernel, param, grad, _or_empty(momentum_buffer, param),
         *formulas.sgd_coefficients(param.dtype, hyper, step))


def adagrad_step(param, grad, state_sum, hyper, step):
    """AdaGrad (eq. 5.21) on flat arrays, in place; see ``formulas.adagrad``."""
    _run(_adagrad_kernel, param, grad, state_sum, *formulas.adagrad_coefficients(param.dtype, hyper, step))


def adadelta_step(param, grad, square_avg, acc_delta, hyper, step):
    """AdaDelta (eqs. 5.22-5.26) on flat arrays, in place; see ``formulas.adadelta``."""
    _run(_adadelta_kernel, param, grad, square_avg, acc_delta,
         *formulas.adadelta_coefficients(param.dtype, hyper, step))


def rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg, hyper, step):
    """RMSprop (eqs. 5.27-5.28) on flat arrays, in place; see ``formulas.rmsprop``."""
    _run(_rmsprop_kernel, param, grad, square_avg, _or_empty(momentum_buffer, param), _or_empty(grad_avg, param),
         *formulas.rmsprop_coefficients(param.dtype, hyper, step))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, hyper, step):
    """Adam / AMSGrad / AdamW (eqs. 5.29-5.33) on flat arrays, in place; see ``formulas.adam``."""
    _run(_adam_kernel, param, grad, exp_avg, exp_avg_sq, _or_empty(max_exp_avg_sq, param),
         *formulas.adam_coefficients(param.dtype, hyper, step))
