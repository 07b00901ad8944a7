"""Optimisers with torch.optim's names, arguments and defaults, updating through ``kernels``.

``opt = nn.optim.Adam(model.parameters(), lr=1e-3)``; each training step: ``opt.zero_grad()``,
``loss.backward()``, ``opt.step()``. The state (momentum buffers, running averages) lives in plain
arrays next to each parameter; ``step()`` updates parameter and state in place with one fused
kernel per parameter (section 5.4, eqs. 5.17-5.33; see :mod:`kernels.optim` for each formula and
where PyTorch's convention differs from the book's). The hyper-parameters are validated once, when
the optimiser is built (or its lr changed), into the kernels' object (``self.options``, e.g. a
``kernels.AdamHyper``), which every step hands to the kernel as it is.

Learning-rate schedules: ``StepLR`` (multiply by gamma every step_size epochs) and
``ReduceLROnPlateau`` (the source material's "divide the learning rate by 10 when the validation
error stops improving").

>>> import numpy as np, nn
>>> w = nn.Parameter(np.array([1.0, -1.0], np.float32))
>>> opt = SGD([w], lr=0.1, momentum=0.9)
>>> w.grad = np.array([1.0, 1.0], np.float32)
>>> opt.step(); opt.step()           # buffer 1, then 0.9 * 1 + 1 = 1.9
>>> w.value.round(4)
array([ 0.71, -1.29], dtype=float32)
"""
from __future__ import annotations

import math

import numpy as np

import kernels
from autodiff import Tensor

__all__ = ["Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "StepLR", "ReduceLROnPlateau",
           "get", "OPTIMIZERS"]


class Optimizer:
    """Base class. Subclasses name their state arrays (``state_names``) and call one kernel."""

    state_names: tuple = ()
    defaults: dict = {}
    hyper_type: type = None          # the kernels' hyper-parameter class, e.g. kernels.AdamHyper

    def __init__(self, params, **hyper):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: the parameter list is empty")
        for i, p in enumerate(params):   # a frozen Parameter (requires_grad=False) is accepted and skipped
            if not (isinstance(p, Tensor) and (p.requires_grad or p.op is None)):
                raise TypeError(f"{type(self).__name__}: parameter {i} is not a Tensor with requires_grad=True "
                                f"(nor a frozen leaf, which is skipped), got {type(p).__name__}")
        seen = {}
        for i, p in enumerate(params):
            if id(p) in seen:   # it would be updated twice per step (torch refuses it too)
                raise ValueError(f"{type(self).__name__}: parameters {seen[id(p)]} and {i} are the same Parameter; "
                                 f"pass each parameter once (e.g. model.parameters(), which lists shared ones once)")
            seen[id(p)] = i
        unknown = set(hyper) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(unknown)}; "
                            f"its arguments are {sorted(self.defaults)}")
        self.params = params
        self.hyper = {**self.defaults, **hyper}
        self.options = self._options(self.hyper)
        self.steps = [0] * len(params)
        self.state = [None] * len(params)

    def _options(self, hyper):
        """The kernels' hyper-parameter object for ``hyper``, validated there (errors name the argument)."""
        return self.hyper_type(**hyper)

    @property
    def lr(self):
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value):
        self.options = self._options({**self.hyper, "lr": value})
        self.hyper["lr"] = self.options.lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def _new_state(self, p):
        return {name: np.zeros_like(p.value) for name in self.state_names}

    def step(self):
        """Update every parameter that has a gradient (parameters without one, and frozen ones, are
        skipped, like torch)."""
        for i, p in enumerate(self.params):
            if p.grad is None or not p.requires_grad:
                continue
            grad = p.grad if kernels.is_device_array(p.grad) else np.ascontiguousarray(
                np.asarray(p.grad, dtype=p.value.dtype))
            if grad.shape != p.value.shape:
                raise ValueError(f"parameter {i} ({p.name}): gradient of shape {grad.shape} for a parameter "
                                 f"of shape {p.value.shape}")
            if self.state[i] is None:
                self.state[i] = self._new_state(p)
            self.steps[i] += 1
            self._update(p.value, grad, self.state[i], self.steps[i])

    def _update(self, param, grad, state, step):
        raise NotImplementedError

    def state_dict(self):
        """{"hyper": {...}, "steps": [...], "state": {"<i>.<name>": array}} (plain values, no pickle)."""
        state = {f"{i}.{name}": array.copy() for i, s in enumerate(self.state) if s is not None
                 for name, array in s.items()}
        return {"type": type(self).__name__, "hyper": dict(self.hyper), "steps": list(self.steps), "state": state}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters, step counts and state, after checking that they fit."""
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(f"load_state_dict: state of a {state_dict.get('type')}, not a {type(self).__name__}")
        steps = list(state_dict["steps"])
        if len(steps) != len(self.params):
            raise ValueError(f"load_state_dict: state for {len(steps)} parameters, this optimiser has "
                             f"{len(self.params)}")
        new = [None] * len(self.params)
        for key, array in state_dict["state"].items():
            index, name = key.split(".", 1)
            i = int(index)
            if name not in self.state_names or not 0 <= i < len(self.params):
                raise ValueError(f"load_state_dict: unexpected state entry {key!r}")
            array = np.asarray(array)
            if array.shape != self.params[i].value.shape:
                raise ValueError(f"load_state_dict: {key} has shape {array.shape}, parameter {i} has "
                                 f"{self.params[i].value.shape}")
            if new[i] is None:
                new[i] = self._new_state(self.params[i])
            new[i][name][...] = array
        hyper = {**self.hyper, **state_dict["hyper"]}
        self.options = self._options(hyper)
        self.hyper, self.steps, self.state = hyper, steps, new

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (torch.optim.SGD)."""

    state_names = ("momentum_buffer",)
    defaults = dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    hyper_type = kernels.SGDHyper

    def _new_state(self, p):
        return super()._new_state(p) if self.hyper["momentum"] else {}

    def _update(self, param, grad, state, step):
        kernels.optim.sgd_step(param, grad, state.get("momentum_buffer"), self.options, step)


class Adagrad(Optimizer):
    """AdaGrad (eq. 5.21), torch.optim.Adagrad's defaults."""

    state_names = ("state_sum",)
    defaults = dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10)
    hyper_type = kernels.AdagradHyper

    def _options(self, hyper):      # the initial value fills the state; the kernel does not see it
        return super()._options({k: v for k, v in hyper.items() if k != "initial_accumulator_value"})

    def _new_state(self, p):
        return {"state_sum": np.full_like(p.value, self.hyper["initial_accumulator_value"])}

    def _update(self, param, grad, state, step):
        kernels.optim.adagrad_step(param, grad, state["state_sum"], self.options, step)


class Adadelta(Optimizer):
    """AdaDelta (eqs. 5.22-5.26), torch.optim.Adadelta's defaults."""

    state_names = ("square_avg", "acc_delta")
    defaults = dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0)
    hyper_type = kernels.AdadeltaHyper

    def _update(self, param, grad, state, step):
        kernels.optim.adadelta_step(param, grad, state["square_avg"], state["acc_delta"], self.options, step)


class RMSprop(Optimizer):
    """RMSprop (eqs. 5.27-5.28) with optional momentum and centring, torch.optim.RMSprop's defaults."""

    state_names = ("square_avg", "momentum_buffer", "grad_avg")
    defaults = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False)
    hyper_type = kernels.RMSpropHyper

    def _new_state(self, p):
        names = ["square_avg"] + (["momentum_buffer"] if self.hyper["momentum"] else []) + \
                (["grad_avg"] if self.hyper["centered"] else [])
        return {name: np.zeros_like(p.value) for name in names}

    def _update(self, param, grad, state, step):
        kernels.optim.rmsprop_step(param, grad, state["square_avg"], state.get("momentum_buffer"),
                                   state.get("grad_avg"), self.options, step)


class Adam(Optimizer):
    """Adam (eqs. 5.29-5.33), optionally AMSGrad, torch.optim.Adam's defaults."""

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)
    hyper_type = kernels.AdamHyper

    def _new_state(self, p):
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if self.hyper["amsgrad"] else [])
        return {name: np.zeros_like(p.value) for name in names}

    def _update(self, param, grad, state, step):
        kernels.optim.adam_step(param, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                                self.options, step)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (default 1e-2), as torch.optim.AdamW."""

    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)
    hyper_type = kernels.AdamWHyper          # the same kernel, with the weight decay decoupled


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adadelta": Adadelta, "rmsprop": RMSprop, "adam": Adam,
              "adamw": AdamW}


def get(name, params, **hyper):
    """An optimiser by name ("sgd", "adam", ...) over ``params``."""
    try:
        cls = OPTIMIZERS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}") from None
    return cls(params, **hyper)


# --- learning-rate schedules ------------------------------------------------------------------------

class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (call ``step()`` per epoch)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if int(step_size) < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size!r}")
        self.optimizer, self.step_size, self.gamma = optimizer, int(step_size), float(gamma)
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self, metric=None):
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)


class ReduceLROnPlateau:
    """Divide the learning rate by 1/factor (10 by default) when ``metric`` has not improved for
    ``patience`` epochs (by more than ``threshold``, relative), down to ``min_lr``; torch's defaults."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, min_lr=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        self.optimizer, self.mode, self.factor = optimizer, mode, float(factor)
        self.patience, self.threshold, self.min_lr = int(patience), float(threshold), float(min_lr)
        self.best, self.bad_epochs = math.inf if mode == "min" else -math.inf, 0

    def _better(self, value):
        if self.mode == "min":
            return value < self.best * (1 - self.threshold) if self.best > 0 else value < self.best - abs(
                self.best) * self.threshold
        return value > self.best * (1 + self.threshold) if self.best > 0 else value > self.best + abs(
            self.best) * self.threshold

    def step(self, metric):
        metric = float(metric)
        if self._better(metric):
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.bad_epochs = 0
