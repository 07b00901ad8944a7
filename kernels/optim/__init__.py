"""Optimiser updates (section 5.4, eqs. 5.17-5.33): SGD with (Nesterov) momentum, AdaGrad,
AdaDelta, RMSprop, Adam and AdamW, with the formulas and defaults of ``torch.optim``.

Each function performs ONE step for one parameter array: it reads the gradient and updates the
parameter and the optimiser's state arrays IN PLACE, returning None. The caller owns the state
(zero-initialised arrays shaped like the parameter, e.g. ``np.zeros_like(param)``) and counts
the steps: ``step`` is 1 on the first update, 2 on the second, ...

>>> import numpy as np
>>> from kernels.optim import adam_update
>>> param = np.array([1.0, -2.0, 3.0], dtype=np.float32)
>>> grad = np.array([0.5, 0.5, -4.0], dtype=np.float32)
>>> exp_avg, exp_avg_sq = np.zeros_like(param), np.zeros_like(param)
>>> adam_update(param, grad, exp_avg, exp_avg_sq, step=1, lr=0.1, backend="numpy")
>>> param.round(4)  # Adam's first step moves each element by about lr, against the gradient's sign
array([ 0.9, -2.1,  3.1], dtype=float32)

Two ways in. The entry points take the hyper-parameters as an object of ``kernels.options``, built
(and validated) once, e.g. by an optimiser at construction, and check only the arrays and the step::

    sgd_step(param, grad, momentum_buffer, hyper: SGDHyper, step)
    adagrad_step(param, grad, state_sum, hyper: AdagradHyper, step)
    adadelta_step(param, grad, square_avg, acc_delta, hyper: AdadeltaHyper, step)
    rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg, hyper: RMSpropHyper, step)
    adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, hyper: AdamHyper or AdamWHyper, step)

then run the function of the same name and arguments in the backend's module (IMPLEMENTATIONS). The
keyword functions (``sgd_update(param, grad, buf, step=1, lr=0.1, momentum=0.9)``, ...) build the
object and call them.

Arrays may have any shape; all arrays of one call must have the same shape and dtype (float32
or float64) and be C-contiguous (a non-contiguous array would have to be copied, and the update
of the copy would be lost). ``backend`` picks the implementation: "numpy" (the reference),
"cpu" (Numba, parallel; the default) or "cuda" (numba.cuda, which also takes device arrays and
updates them on the device); see ``kernels.backend``.

The arithmetic of each optimiser is written once, in ``kernels/optim/formulas.py``, and shared
by the CPU loop (``cpu.py``) and the CUDA kernel (``cuda.py``); ``reference.py`` is an
independent NumPy version that the tests hold both to.
"""
from __future__ import annotations

import numpy as np

from .._checks import FLOAT_DTYPES, is_device_array
from ..backend import implementation, implementations
from ..options import AdadeltaHyper, AdagradHyper, AdamHyper, AdamWHyper, RMSpropHyper, SGDHyper

__all__ = ["sgd_step", "adagrad_step", "adadelta_step", "rmsprop_step", "adam_step",
           "sgd_update", "adagrad_update", "adadelta_update", "rmsprop_update", "adam_update", "adamw_update"]


# --- the static dispatch table: backend name -> the module with this family's verbs there ------------

IMPLEMENTATIONS = implementations(__name__)


# --- checks of the arrays and the step (every call) ---------------------------------------------

def _flat_arrays(named, backend):
    """Check the arrays of one call and return flat (1-D) views of them, in the same order.

    ``named`` is a list of (name, array) pairs, the parameter first; None (an optional state
    that is switched off) passes through as None. Every array must be a NumPy array (or, for the
    "cuda" backend, a numba device array), float32 or float64, C-contiguous, and of the
    parameter's shape and dtype; those that the step writes must be writeable and must not
    share memory with one another. ``backend`` is the call's: a device parameter runs on "cuda"
    unless the call names a host backend.
    """
    param_name, param = named[0]
    on_device = is_device_array(param)
    if on_device and backend in ("numpy", "cpu"):
        raise TypeError(f"{param_name} is a CUDA device array, which needs backend='cuda' "
                        f"(got backend={backend!r})")
    flat = []
    for name, array in named:
        if array is None:
            flat.append(None)
            continue
        if on_device:
            if not is_device_array(array):
                raise TypeError(f"{param_name} is a CUDA device array, so {name} must be one too, "
                                f"got {type(array).__name__}")
        elif not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array (updated in place), got {type(array).__name__}")
        dtype = np.dtype(array.dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float32 or float64, got {dtype}")
        if dtype != np.dtype(param.dtype):
            raise TypeError(f"{name} has dtype {dtype} but {param_name} has dtype {np.dtype(param.dtype)}; "
                            f"all arrays of one update must have the same dtype")
        if tuple(array.shape) != tuple(param.shape):
            raise ValueError(f"{name} has shape {tuple(array.shape)} but {param_name} has shape "
                             f"{tuple(param.shape)}; they must be the same")
        contiguous = array.is_c_contiguous() if on_device else array.flags.c_contiguous
        if not contiguous:
            raise ValueError(f"{name} must be C-contiguous: the update is done in place, and a "
                             f"non-contiguous array would have to be copied, so the result would be "
                             f"lost. Keep parameters and state in contiguous arrays (np.ascontiguousarray "
                             f"once, when they are created).")
        if not on_device and name != "grad" and not array.flags.writeable:
            raise ValueError(f"{name} is read-only, but the update writes into it")
        flat.append(array.ravel())
    if not on_device:  # two names for one memory would make the update wrong (cheap bounds test)
        present = [(name, array) for name, array in named if array is not None]
        for i, (name_a, a) in enumerate(present):
            for name_b, b in present[i + 1:]:
                if np.may_share_memory(a, b):
                    raise ValueError(f"{name_a} and {name_b} share memory; each must be its own array")
    return flat


def _step(step) -> int:
    """The step number: an int >= 1 (1 on the first update)."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step must be an int >= 1 (1 on the first update), got {step!r}")
    if step < 1:
        raise ValueError(f"step must be >= 1 (1 on the first update), got {step}")
    return int(step)


def _required(array, name: str, reason: str):
    if array is None:
        raise ValueError(f"{name} is required {reason} (a zero-initialised array like param)")


def _hyper(hyper, kind):
    if not isinstance(hyper, kind):
        raise TypeError(f"hyper must be a kernels.{kind.__name__} (built once, e.g. {kind.__name__}(lr=0.01)), "
                        f"got {type(hyper).__name__}")


# --- the entry points: hyper-parameters built once ----------------------------------------------------

def sgd_step(param, grad, momentum_buffer, hyper: SGDHyper, step: int, *, backend=None) -> None:
    """One SGD step (eqs. 5.17-5.20) in place; ``momentum_buffer`` is required when momentum > 0
    and ignored otherwise. See sgd_update."""
    _hyper(hyper, SGDHyper)
    step = _step(step)
    if hyper.momentum > 0:
        _required(momentum_buffer, "momentum_buffer", "when momentum > 0")
    else:
        momentum_buffer = None  # not used without momentum
    flat = _flat_arrays([("param", param), ("grad", grad), ("momentum_buffer", momentum_buffer)], backend)
    implementation(IMPLEMENTATIONS, backend, param=param).sgd_step(*flat, hyper, step)


def adagrad_step(param, grad, state_sum, hyper: AdagradHyper, step: int, *, backend=None) -> None:
    """One AdaGrad step (eq. 5.21) in place. See adagrad_update."""
    _hyper(hyper, AdagradHyper)
    step = _step(step)
    _required(state_sum, "state_sum", "for AdaGrad")
    flat = _flat_arrays([("param", param), ("grad", grad), ("state_sum", state_sum)], backend)
    implementation(IMPLEMENTATIONS, backend, param=param).adagrad_step(*flat, hyper, step)


def adadelta_step(param, grad, square_avg, acc_delta, hyper: AdadeltaHyper, step: int, *, backend=None) -> None:
    """One AdaDelta step (eqs. 5.22-5.26) in place. See adadelta_update."""
    _hyper(hyper, AdadeltaHyper)
    step = _step(step)
    _required(square_avg, "square_avg", "for AdaDelta")
    _required(acc_delta, "acc_delta", "for AdaDelta")
    flat = _flat_arrays([("param", param), ("grad", grad), ("square_avg", square_avg),
                         ("acc_delta", acc_delta)], backend)
    implementation(IMPLEMENTATIONS, backend, param=param).adadelta_step(*flat, hyper, step)


def rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg, hyper: RMSpropHyper, step: int, *,
                 backend=None) -> None:
    """One RMSprop step (eqs. 5.27-5.28) in place; ``momentum_buffer`` is required when momentum > 0
    and ``grad_avg`` when centered, each ignored otherwise. See rmsprop_update."""
    _hyper(hyper, RMSpropHyper)
    step = _step(step)
    _required(square_avg, "square_avg", "for RMSprop")
    if hyper.momentum > 0:
        _required(momentum_buffer, "momentum_buffer", "when momentum > 0")
    else:
        momentum_buffer = None
    if hyper.centered:
        _required(grad_avg, "grad_avg", "when centered=True")
    else:
        grad_avg = None
    flat = _flat_arrays([("param", param), ("grad", grad), ("square_avg", square_avg),
                         ("momentum_buffer", momentum_buffer), ("grad_avg", grad_avg)], backend)
    implementation(IMPLEMENTATIONS, backend, param=param).rmsprop_step(*flat, hyper, step)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, hyper: AdamHyper, step: int, *,
              backend=None) -> None:
    """One Adam / AMSGrad step (eqs. 5.29-5.33) in place, AdamW's when ``hyper`` is an AdamWHyper;
    ``max_exp_avg_sq`` is required with amsgrad and ignored otherwise. See adam_update."""
    _hyper(hyper, AdamHyper)
    step = _step(step)
    _required(exp_avg, "exp_avg", "for Adam")
    _required(exp_avg_sq, "exp_avg_sq", "for Adam")
    if hyper.amsgrad:
        _required(max_exp_avg_sq, "max_exp_avg_sq", "when amsgrad=True")
    else:
        max_exp_avg_sq = None
    flat = _flat_arrays([("param", param), ("grad", grad), ("exp_avg", exp_avg),
                         ("exp_avg_sq", exp_avg_sq), ("max_exp_avg_sq", max_exp_avg_sq)], backend)
    implementation(IMPLEMENTATIONS, backend, param=param).adam_step(*flat, hyper, step)


# --- the keyword functions: build the hyper-parameters, call the entry point ---------------------------

def sgd_update(param, grad, momentum_buffer=None, *, step, lr, momentum=0.0, dampening=0.0,
               weight_decay=0.0, nesterov=False, backend=None) -> None:
    """One step of SGD with optional momentum or Nesterov momentum, as ``torch.optim.SGD``.

    Source: eqs. 5.17-5.18 (momentum) and 5.19-5.20 (Nesterov). PyTorch's form, used here::

        g <- g + weight_decay * p
        buf <- g (step 1),   buf <- momentum * buf + (1 - dampening) * g (later steps)
        p <- p - lr * (g + momentum * buf)   (nesterov)   or   p <- p - lr * buf

    The book writes ``a_t = eta g + gamma a_{t-1}; theta_t = theta_{t-1} - a_t``: the learning
    rate inside the velocity. PyTorch keeps it outside (``a_t = lr * buf_t``), which is the same
    for a constant lr. The book's Nesterov rule takes the gradient at the look-ahead point
    ``theta - gamma a_{t-1}``; PyTorch's reformulation uses the gradient at ``p`` and steps by
    ``g + momentum * buf``. On the first step the buffer is the gradient itself, not dampened.

    ``momentum_buffer`` (zeros like ``param``) is required when ``momentum > 0`` and ignored
    otherwise. Nesterov needs ``momentum > 0`` and ``dampening == 0`` (PyTorch's rule).
    """
    sgd_step(param, grad, momentum_buffer,
             SGDHyper(lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov),
             step, backend=backend)


def adagrad_update(param, grad, state_sum, *, step, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                   eps=1e-10, backend=None) -> None:
    """One step of AdaGrad, as ``torch.optim.Adagrad``.

    Source: eq. 5.21, ``theta_t = theta_{t-1} - eta / sqrt(sum_tau delta_tau^2 + eps) * delta_t``.
    PyTorch, used here::

        g <- g + weight_decay * p
        state_sum <- state_sum + g * g
        p <- p - lr / (1 + (step - 1) * lr_decay) * g / (sqrt(state_sum) + eps)

    Differences from eq. 5.21: epsilon is added outside the square root, and the learning rate
    may decay with the step. PyTorch's ``initial_accumulator_value`` is the value ``state_sum``
    starts with: fill it with that value (zeros by default) before the first step.
    """
    adagrad_step(param, grad, state_sum, AdagradHyper(lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps),
                 step, backend=backend)


def adadelta_update(param, grad, square_avg, acc_delta, *, step, lr=1.0, rho=0.9, eps=1e-6,
                    weight_decay=0.0, backend=None) -> None:
    """One step of AdaDelta, as ``torch.optim.Adadelta``.

    Source: eqs. 5.22-5.26 (``rho`` is the book's gamma). PyTorch, used here::

        g <- g + weight_decay * p
        square_avg <- rho * square_avg + (1 - rho) * g * g                  (eq. 5.23)
        delta <- sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g         (eq. 5.26)
        acc_delta <- rho * acc_delta + (1 - rho) * delta * delta
        p <- p - lr * delta

    Epsilon sits inside both square roots, as in the book. Eq. 5.26 has no learning rate;
    PyTorch keeps one (default 1.0, which is eq. 5.26 exactly) to scale the step.
    ``square_avg`` and ``acc_delta`` start as zeros.
    """
    adadelta_step(param, grad, square_avg, acc_delta,
                  AdadeltaHyper(lr, rho=rho, eps=eps, weight_decay=weight_decay), step, backend=backend)


def rmsprop_update(param, grad, square_avg, momentum_buffer=None, grad_avg=None, *, step, lr=0.01,
                   alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                   backend=None) -> None:
    """One step of RMSprop, as ``torch.optim.RMSprop``.

    Source: eqs. 5.27-5.28 (``alpha`` is the book's gamma; PyTorch's default is 0.99, the book
    suggests 0.9). PyTorch, used here::

        g <- g + weight_decay * p
        square_avg <- alpha * square_avg + (1 - alpha) * g * g              (eq. 5.27)
        centered:   grad_avg <- alpha * grad_avg + (1 - alpha) * g
                    avg <- sqrt(square_avg - grad_avg^2) + eps
        otherwise:  avg <- sqrt(square_avg) + eps
        momentum > 0:  buf <- momentum * buf + g / avg;  p <- p - lr * buf
        otherwise:     p <- p - lr * g / avg                                  (eq. 5.28)

    Differences from eq. 5.28: epsilon is added outside the square root; centring (dividing by
    an estimate of the gradient's standard deviation instead of its root mean square) and
    momentum are PyTorch options not in the book. ``momentum_buffer`` is required when
    ``momentum > 0`` and ``grad_avg`` when ``centered``; both start as zeros and are ignored
    otherwise.
    """
    rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg,
                 RMSpropHyper(lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                              centered=centered), step, backend=backend)


def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3,
                betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                backend=None) -> None:
    """One step of Adam (or AMSGrad), as ``torch.optim.Adam``.

    Source: eqs. 5.29-5.33 (``betas`` are the book's gamma_1, gamma_2). PyTorch, used here::

        g <- g + weight_decay * p                     (L2 penalty added to the gradient)
        exp_avg <- beta1 * exp_avg + (1 - beta1) * g                           (eq. 5.29)
        exp_avg_sq <- beta2 * exp_avg_sq + (1 - beta2) * g * g                 (eq. 5.30)
        m^ = exp_avg / (1 - beta1^step),  v^ = exp_avg_sq / (1 - beta2^step)   (eqs. 5.31, 5.32)
        p <- p - lr * m^ / (sqrt(v^) + eps)

    Difference from eq. 5.33, ``eta / sqrt(v^ + eps) * m^``: epsilon is added outside the square
    root. With ``amsgrad`` the running maximum of ``exp_avg_sq`` (kept in ``max_exp_avg_sq``,
    required then) replaces it before the bias correction. ``exp_avg`` and ``exp_avg_sq`` start
    as zeros. Weight decay here is the L2 penalty; for decoupled decay use ``adamw_update``.
    """
    adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq,
              AdamHyper(lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad), step, backend=backend)


def adamw_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3,
                 betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 backend=None) -> None:
    """One step of AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay.

    First ``p <- p * (1 - lr * weight_decay)``, then the Adam step of ``adam_update`` with the
    plain gradient: the decay shrinks the weights directly instead of entering the moment
    estimates (Loshchilov and Hutter, "Decoupled Weight Decay Regularization"; not in the book).
    Note the default ``weight_decay=1e-2``, PyTorch's, where Adam's is 0.
    """
    adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq,
              AdamWHyper(lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad), step, backend=backend)
