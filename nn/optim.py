"""Optimisers with torch.optim's names, arguments and defaults, updating through ``kernels``.

``opt = nn.optim.Adam(model.parameters(), lr=1e-3)``; each training step: ``opt.zero_grad()``,
``loss.backward()``, ``opt.step()``. The state (momentum buffers, running averages) lives in plain
arrays next to each parameter; ``step()`` updates parameter and state in place with one fused
kernel per parameter (section 5.4, eqs. 5.17-5.33; see :mod:`kernels.optim` for each formula and
where PyTorch's convention differs from the book's). The hyper-parameters are validated once per
parameter group, when it is made (or one of its options changed), into the kernels' object (e.g. a
``kernels.AdamHyper``), which every step hands to the kernel as it is.

Keras's habits too: ``learning_rate=`` for ``lr=``; ``Adam(learning_rate=1e-3)`` without parameters,
given to ``model.compile`` (which gives it the model's); ``clipnorm=`` / ``clipvalue=`` /
``global_clipnorm=`` (:mod:`nn.clip`), applied in ``step`` before the update. Parameter groups as
torch's: ``SGD([{"params": body}, {"params": head, "lr": 0.1}], lr=0.01)``, ``opt.param_groups``.

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

from .clip import CLIP_OPTIONS, clip_gradients, clip_options

__all__ = ["Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "StepLR", "ReduceLROnPlateau",
           "get", "adopt", "OPTIMIZERS"]


class Optimizer:
    """Base class. Subclasses name their state arrays (``state_names``) and call one kernel.

    ``params``: parameters, or torch's parameter groups (dicts with "params" and any option, which
    overrides the optimiser's for that group), or None to be given later (``add_param_group``, which
    ``model.compile`` calls). ``opt.param_groups`` are editable dicts: a changed option (a schedule's lr)
    is validated and rebuilt into that group's kernels' object at the next step, and only then."""

    state_names: tuple = ()
    defaults: dict = {}
    hyper_type: type = None          # the kernels' hyper-parameter class, e.g. kernels.AdamHyper

    def __init__(self, params=None, **hyper):
        name = type(self).__name__
        if "learning_rate" in hyper:                 # Keras's name for lr
            if "lr" in hyper:
                raise TypeError(f"{name}: give lr or learning_rate (Keras's name for it), not both; got "
                                f"lr={hyper['lr']!r} and learning_rate={hyper['learning_rate']!r}")
            hyper["lr"] = hyper.pop("learning_rate")
        clip = {k: hyper.pop(k) for k in CLIP_OPTIONS if k in hyper}
        unknown = set(hyper) - set(type(self).defaults)
        if unknown:
            raise TypeError(f"{name} got unexpected arguments {sorted(unknown)}; its arguments are "
                            f"{sorted(type(self).defaults)}, learning_rate (Keras's lr) and {list(CLIP_OPTIONS)}")
        self.clip = clip_options(name, **clip)
        self.hyper = {**type(self).defaults, **hyper}
        self.defaults = self.hyper                   # torch's name for the options a new group starts from
        self.options = self._options(self.hyper)     # validated even before any parameter is given
        self.param_groups, self._built, self._group_of = [], [], []
        self.params, self.steps, self.state = [], [], []
        if params is None:
            return
        if not isinstance(params, (Tensor, dict)) and (hasattr(params, "parameters")
                                                       or not hasattr(params, "__iter__")):
            raise TypeError(f"{name}: params must be an iterable of Parameters or of param groups (e.g. "
                            f"model.parameters()), got {type(params).__name__}")
        params = [params] if isinstance(params, (Tensor, dict)) else list(params)
        if not params:
            raise ValueError(f"{name}: the parameter list is empty")
        for group in (params if isinstance(params[0], dict) else [{"params": params}]):
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """torch's: one more group, a dict with "params" and options overriding the optimiser's."""
        index, name = len(self.param_groups), type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}: param_groups[{index}] must be a dict with 'params', got {param_group!r:.80}")
        unknown = set(param_group) - {"params", *type(self).defaults}
        if unknown:
            raise TypeError(f"{name}: param_groups[{index}] has unexpected keys {sorted(unknown)}; its keys are "
                            f"'params' and {sorted(type(self).defaults)}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}: the parameter list is empty" + (f" (param_groups[{index}])" if index else ""))
        seen = {id(p): i for i, p in enumerate(self.params)}
        for j, p in enumerate(params, start=len(self.params)):  # frozen Parameters are accepted and skipped
            if not (isinstance(p, Tensor) and (p.requires_grad or p.op is None)):
                raise TypeError(f"{name}: parameter {j} is not a Tensor with requires_grad=True "
                                f"(nor a frozen leaf, which is skipped), got {type(p).__name__}")
            if id(p) in seen:   # it would be updated twice per step (torch refuses it too)
                where = f"param_groups[{self._group_of[seen[id(p)]]}]" if seen[id(p)] < len(self.params) else None
                raise ValueError(f"{name}: parameters {seen[id(p)]} and {j} are the same Parameter"
                                 + (f" (already in {where}); a parameter may be in one group only" if where else
                                    "; pass each parameter once (e.g. model.parameters(), which lists shared "
                                    "ones once)"))
            seen[id(p)] = j
        group = {"params": params, **self.hyper, **{k: v for k, v in param_group.items() if k != "params"}}
        key = self._key(group)
        options = self._options(self._hyper_of(key))
        self.param_groups.append(group)
        self._built.append((key, options))
        self._group_of += [index] * len(params)
        self.params += params
        self.steps += [0] * len(params)
        self.state += [None] * len(params)

    def _key(self, group):
        """A group's options as a tuple in ``defaults``' order: what tells a changed group."""
        return tuple(group.get(k) for k in type(self).defaults)

    def _hyper_of(self, key):
        """The options dict of a group's key (the inverse of ``_key``)."""
        return dict(zip(type(self).defaults, key))

    def _options(self, hyper):
        """The kernels' hyper-parameter object for ``hyper``, validated there (errors name the argument)."""
        return self.hyper_type(**hyper)

    def _refresh(self):
        """Rebuild the kernels' object of every group whose options changed (all checked before any is
        kept); a state array an option now needs (momentum turned on) is added."""
        changed = []
        for g, group in enumerate(self.param_groups):
            key = self._key(group)
            if key != self._built[g][0]:
                changed.append((g, key, self._options(self._hyper_of(key))))
        for g, key, options in changed:
            self._built[g] = (key, options)
            hyper = self._hyper_of(key)
            for i, p in enumerate(self.params):
                if self._group_of[i] == g and self.state[i] is not None:
                    for state_name, array in self._new_state(p, hyper).items():
                        self.state[i].setdefault(state_name, array)

    @property
    def lr(self):
        """The (first group's) learning rate; setting it sets every group's (Keras's ``learning_rate``)."""
        return self.param_groups[0]["lr"] if self.param_groups else self.hyper["lr"]

    @lr.setter
    def lr(self, value):
        self._refresh()
        checked = self._options({**self.hyper, "lr": value})
        built = [self._options({**self._hyper_of(key), "lr": value}) for key, _ in self._built]
        self.options, self.hyper["lr"] = checked, checked.lr
        for g, (group, options) in enumerate(zip(self.param_groups, built)):
            group["lr"] = options.lr
            self._built[g] = (self._key(group), options)

    learning_rate = lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def follow_parameters(self):
        """Move each state array to where its parameter now lives (the CUDA device or the host): state made
        before ``model.to(...)`` (or fit's ``backend=``) follows the model, once, instead of failing at the
        next step."""
        for p, state in zip(self.params, self.state):
            if state is None:
                continue
            on_device = kernels.is_device_array(p.value)
            for name, array in state.items():
                if kernels.is_device_array(array) != on_device:
                    state[name] = kernels.device.to_device(array) if on_device else array.copy_to_host()

    def _new_state(self, p, hyper):
        return {name: np.zeros_like(p.value) for name in self.state_names}

    def step(self):
        """Update every parameter that has a gradient (parameters without one, and frozen ones, are
        skipped, like torch), after the optimiser's clipping (clipnorm, clipvalue, global_clipnorm)."""
        if not self.param_groups:
            raise RuntimeError(f"{type(self).__name__}.step: no parameters yet; pass them "
                               f"({type(self).__name__}(model.parameters(), ...)) or give it to model.compile")
        self._refresh()
        todo, grads = [], []
        for i, p in enumerate(self.params):
            if p.grad is None or not p.requires_grad:
                continue
            grad = p.grad if kernels.is_device_array(p.grad) else np.ascontiguousarray(
                np.asarray(p.grad, dtype=p.value.dtype))
            if grad.shape != p.value.shape:
                raise ValueError(f"parameter {i} ({p.name}): gradient of shape {grad.shape} for a parameter "
                                 f"of shape {p.value.shape}")
            todo.append(i)
            grads.append(grad)
        if self.clip is not None:
            grads = clip_gradients(self.clip, grads)
        for i, grad in zip(todo, grads):
            p, g = self.params[i], self._group_of[i]
            if self.state[i] is None:
                self.state[i] = self._new_state(p, self._hyper_of(self._built[g][0]))
            self.steps[i] += 1
            self._update(p.value, grad, self.state[i], self.steps[i], self._built[g][1])

    def _update(self, param, grad, state, step, options):
        raise NotImplementedError

    def state_dict(self):
        """{"hyper": {...}, "param_groups": [{options..., "params": [indices]}], "steps": [...],
        "state": {"<i>.<name>": array}} (plain values, no pickle), as torch's with its indices."""
        state = {f"{i}.{name}": array.copy() for i, s in enumerate(self.state) if s is not None
                 for name, array in s.items()}
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            options = {k: v for k, v in group.items() if k != "params"}
            groups.append({**options, "params": list(range(start, start + n))})
            start += n
        return {"type": type(self).__name__, "hyper": dict(self.hyper), "param_groups": groups,
                "steps": list(self.steps), "state": state}

    def load_state_dict(self, state_dict):
        """Restore options (per group), step counts and state, after checking that they fit."""
        name = type(self).__name__
        if state_dict.get("type") != name:
            raise ValueError(f"load_state_dict: state of a {state_dict.get('type')}, not a {name}")
        steps = list(state_dict["steps"])
        if len(steps) != len(self.params):
            raise ValueError(f"load_state_dict: state for {len(steps)} parameters, this optimiser has "
                             f"{len(self.params)}")
        hyper = {**self.hyper, **state_dict["hyper"]}
        options = self._options(hyper)
        saved = state_dict.get("param_groups")        # absent in a state saved before groups: "hyper" for all
        if saved is None:
            saved = [dict(state_dict["hyper"]) for _ in self.param_groups]
        elif [len(g.get("params", ())) for g in saved] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(f"load_state_dict: groups of {[len(g.get('params', ())) for g in saved]} parameters, "
                             f"this optimiser's have {[len(g['params']) for g in self.param_groups]}")
        groups = []
        for g, (group, new) in enumerate(zip(self.param_groups, saved)):
            unknown = set(new) - {"params", *type(self).defaults}
            if unknown:
                raise ValueError(f"load_state_dict: param_groups[{g}] has unexpected keys {sorted(unknown)}")
            merged = {**group, **{k: v for k, v in new.items() if k != "params"}}
            key = self._key(merged)
            groups.append((merged, key, self._options(self._hyper_of(key))))
        state = [None] * len(self.params)
        for entry, array in state_dict["state"].items():
            index, state_name = entry.split(".", 1)
            i = int(index)
            if state_name not in self.state_names or not 0 <= i < len(self.params):
                raise ValueError(f"load_state_dict: unexpected state entry {entry!r}")
            array = np.asarray(array)
            if array.shape != self.params[i].value.shape:
                raise ValueError(f"load_state_dict: {entry} has shape {array.shape}, parameter {i} has "
                                 f"{self.params[i].value.shape}")
            if state[i] is None:
                state[i] = self._new_state(self.params[i], self._hyper_of(groups[self._group_of[i]][1]))
            state[i].setdefault(state_name, np.zeros_like(self.params[i].value))[...] = array
        self.options, self.hyper, self.steps, self.state = options, hyper, steps, state
        self.defaults = self.hyper
        for g, (merged, key, built) in enumerate(groups):
            self.param_groups[g].update(merged)
            self._built[g] = (key, built)

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (torch.optim.SGD)."""

    state_names = ("momentum_buffer",)
    defaults = dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    hyper_type = kernels.SGDHyper

    def _new_state(self, p, hyper):
        return super()._new_state(p, hyper) if hyper["momentum"] else {}

    def _update(self, param, grad, state, step, options):
        kernels.optim.sgd_step(param, grad, state.get("momentum_buffer"), options, step)


class Adagrad(Optimizer):
    """AdaGrad (eq. 5.21), torch.optim.Adagrad's defaults."""

    state_names = ("state_sum",)
    defaults = dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10)
    hyper_type = kernels.AdagradHyper

    def _options(self, hyper):      # the initial value fills the state; the kernel does not see it
        return super()._options({k: v for k, v in hyper.items() if k != "initial_accumulator_value"})

    def _new_state(self, p, hyper):
        return {"state_sum": np.full_like(p.value, hyper["initial_accumulator_value"])}

    def _update(self, param, grad, state, step, options):
        kernels.optim.adagrad_step(param, grad, state["state_sum"], options, step)


class Adadelta(Optimizer):
    """AdaDelta (eqs. 5.22-5.26), torch.optim.Adadelta's defaults."""

    state_names = ("square_avg", "acc_delta")
    defaults = dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0)
    hyper_type = kernels.AdadeltaHyper

    def _update(self, param, grad, state, step, options):
        kernels.optim.adadelta_step(param, grad, state["square_avg"], state["acc_delta"], options, step)


class RMSprop(Optimizer):
    """RMSprop (eqs. 5.27-5.28) with optional momentum and centring, torch.optim.RMSprop's defaults."""

    state_names = ("square_avg", "momentum_buffer", "grad_avg")
    defaults = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False)
    hyper_type = kernels.RMSpropHyper

    def _new_state(self, p, hyper):
        names = ["square_avg"] + (["momentum_buffer"] if hyper["momentum"] else []) + \
                (["grad_avg"] if hyper["centered"] else [])
        return {name: np.zeros_like(p.value) for name in names}

    def _update(self, param, grad, state, step, options):
        kernels.optim.rmsprop_step(param, grad, state["square_avg"], state.get("momentum_buffer"),
                                   state.get("grad_avg"), options, step)


class Adam(Optimizer):
    """Adam (eqs. 5.29-5.33), optionally AMSGrad, torch.optim.Adam's defaults."""

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)
    hyper_type = kernels.AdamHyper

    def _new_state(self, p, hyper):
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if hyper["amsgrad"] else [])
        return {name: np.zeros_like(p.value) for name in names}

    def _update(self, param, grad, state, step, options):
        kernels.optim.adam_step(param, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                                options, step)


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


def adopt(optimizer, params, where):
    """Give an optimiser made without parameters (Keras's ``Adam(learning_rate=...)``) the model's ``params``;
    refuse one that holds none of them (given to another model: it would train nothing here, silently)."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{where}: optimizer must be an nn.optim optimiser or its name, got {type(optimizer).__name__}")
    params = list(params)
    if not optimizer.param_groups:
        optimizer.add_param_group({"params": params})
        return
    ours = {id(p) for p in params}
    if not any(id(p) in ours for p in optimizer.params):
        raise ValueError(f"{where}: optimizer holds {len(optimizer.params)} parameters, none of them this model's "
                         f"(was it given to another model?); make one optimiser per model")


# --- learning-rate schedules ------------------------------------------------------------------------

class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (call ``step()`` per epoch)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if int(step_size) < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size!r}")
        self.optimizer, self.step_size, self.gamma = optimizer, int(step_size), float(gamma)
        self.base_lrs, self.epoch = [group["lr"] for group in optimizer.param_groups], 0

    def step(self, metric=None):
        """Each group's lr from its first one (a group given later, e.g. at compile, from its lr then)."""
        groups = self.optimizer.param_groups
        self.base_lrs += [group["lr"] for group in groups[len(self.base_lrs):]]
        self.epoch += 1
        for group, base in zip(groups, self.base_lrs):
            group["lr"] = base * self.gamma ** (self.epoch // self.step_size)


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
            for group in self.optimizer.param_groups:     # each group's lr, as torch's
                group["lr"] = max(group["lr"] * self.factor, self.min_lr)
            self.bad_epochs = 0
