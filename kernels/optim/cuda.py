"""Optimiser updates on a CUDA GPU: one GPU thread per parameter element.

Every kernel has the same shape::

    @cuda.jit
    def _adam_kernel(param, grad, exp_avg, ...):
        # this thread's elements: its global index (block * block size + thread), then every
        # gridsize-th one after it (on a GPU, one element each; in the simulator, a few threads share them)
        for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
            p, m, ... = formulas.adam(param[i], grad[i], exp_avg[i], ..., hyper-parameters)
            param[i] = p
            exp_avg[i] = m

The arithmetic lives in ``formulas.py``, shared with the CPU loops of ``cpu.py``: the same
``register_jitable`` function is compiled for the GPU here and for the CPU there. The launch
configuration and the host/device moves are shared by the three CUDA modules (``kernels/_cuda.py``).

Arrays may be numba CUDA device arrays (``numba.cuda.to_device(x)``), which are updated on the
device and never leave it (the way to train on a GPU: keep parameters and state there), or
NumPy arrays, which are copied to the device, updated, and copied back into the same NumPy
arrays (correct, but the copies cost far more than the update itself).

Without a GPU the kernels run in Numba's CUDA simulator when ``NUMBA_ENABLE_CUDASIM=1`` is set
before numba is imported (the tests do this): each thread becomes Python code, so keep arrays
tiny there.
"""
from __future__ import annotations

from numba import cuda

from .._cuda import on_device, stride_config, to_device
from . import formulas


# --- kernels ----------------------------------------------------------------------------------

@cuda.jit
def _sgd_kernel(param, grad, momentum_buffer, lr, momentum, one_minus_dampening, weight_decay,
                nesterov, first_step):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        # a stand-in for the buffer when there is no momentum (the formula ignores it then)
        buf = momentum_buffer[i] if momentum != 0 else grad[i]
        p, buf = formulas.sgd(param[i], grad[i], buf, lr, momentum, one_minus_dampening,
                              weight_decay, nesterov, first_step)
        param[i] = p
        if momentum != 0:
            momentum_buffer[i] = buf


@cuda.jit
def _adagrad_kernel(param, grad, state_sum, clr, weight_decay, eps):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        p, s = formulas.adagrad(param[i], grad[i], state_sum[i], clr, weight_decay, eps)
        param[i] = p
        state_sum[i] = s


@cuda.jit
def _adadelta_kernel(param, grad, square_avg, acc_delta, lr, rho, one_minus_rho, eps, weight_decay):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        p, sq, acc = formulas.adadelta(param[i], grad[i], square_avg[i], acc_delta[i], lr, rho,
                                       one_minus_rho, eps, weight_decay)
        param[i] = p
        square_avg[i] = sq
        acc_delta[i] = acc


@cuda.jit
def _rmsprop_kernel(param, grad, square_avg, momentum_buffer, grad_avg, lr, alpha, one_minus_alpha,
                    eps, weight_decay, momentum, centered):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
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


@cuda.jit
def _adam_kernel(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, beta1, beta2, one_minus_beta1,
                 one_minus_beta2, eps, weight_decay, decay_factor, step_size, bias_correction2_sqrt,
                 amsgrad, decoupled):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
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


# --- launching ----------------------------------------------------------------------------------

def _launch(kernel, arrays, scalars):
    """Run ``kernel(*arrays, *scalars)`` with one thread per element of ``arrays[0]``.

    ``arrays`` are the kernel's array arguments in order: the parameter first, the gradient
    second (read only), then the state arrays, ``None`` for an optional state that is switched
    off (it becomes an empty device array, which the kernel never touches). Either all are
    device arrays (updated where they are) or all are NumPy arrays (copied to the device, and
    the parameter and the states copied back into them afterwards).
    """
    param = arrays[0]
    on_host = not on_device(param)
    device_arrays = [cuda.device_array(0, dtype=param.dtype) if array is None else to_device(array)
                     for array in arrays]
    if param.size > 0:  # a launch needs at least one thread with work
        kernel[stride_config(param.size)](*device_arrays, *scalars)
    if on_host:
        for index, (array, device_array) in enumerate(zip(arrays, device_arrays)):
            if array is not None and index != 1:  # index 1 is the gradient: read, not written
                device_array.copy_to_host(array)


# --- the functions the entry points call (same names and arguments in reference.py and cpu.py) ----

def sgd_step(param, grad, momentum_buffer, hyper, step):
    """SGD (eqs. 5.17-5.20) on flat arrays, in place; see ``formulas.sgd``."""
    _launch(_sgd_kernel, [param, grad, momentum_buffer],
            formulas.sgd_coefficients(param.dtype, hyper, step))


def adagrad_step(param, grad, state_sum, hyper, step):
    """AdaGrad (eq. 5.21) on flat arrays, in place; see ``formulas.adagrad``."""
    _launch(_adagrad_kernel, [param, grad, state_sum],
            formulas.adagrad_coefficients(param.dtype, hyper, step))


def adadelta_step(param, grad, square_avg, acc_delta, hyper, step):
    """AdaDelta (eqs. 5.22-5.26) on flat arrays, in place; see ``formulas.adadelta``."""
    _launch(_adadelta_kernel, [param, grad, square_avg, acc_delta],
            formulas.adadelta_coefficients(param.dtype, hyper, step))


def rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg, hyper, step):
    """RMSprop (eqs. 5.27-5.28) on flat arrays, in place; see ``formulas.rmsprop``."""
    _launch(_rmsprop_kernel, [param, grad, square_avg, momentum_buffer, grad_avg],
            formulas.rmsprop_coefficients(param.dtype, hyper, step))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, hyper, step):
    """Adam / AMSGrad / AdamW (eqs. 5.29-5.33) on flat arrays, in place; see ``formulas.adam``."""
    _launch(_adam_kernel, [param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq],
            formulas.adam_coefficients(param.dtype, hyper, step))
