"""Exercises for the CNN-training lessons (``tutorials/cnn_0N_*.py``), each with a checker.

Most of these exercises ask for a *value*, not a backward pass: the derivative of an activation,
an initialiser's standard deviation, an optimiser's step, centred data, a confusion matrix, a
penalty's gradient, a max-norm projection, parameter counts, the input of a pre-training stage. A
:class:`~chainrule.exercises.values.ValueExercise` checks it against what the toolkit computes for the same inputs (the
engine, ``nn.init``, ``nn.optim``, ``nn.data``, ``nn.regularizers``, ``nn.transfer``), element by
element, with the tolerances and the report of :mod:`chainrule.exercises.checking`: it passes, or
raises ``ExerciseError`` with a table naming each wrong element. The residual block of lesson 7 is
a backward pass, checked like the differentiation exercises (an ``Exercise``).

For each exercise this module gives a stub with the signature your answer must have (it raises
``NotImplementedError``) and a checker ``check_<name>(your_function)``; ``LESSONS`` says which
lesson asks for which. The answers are in :mod:`chainrule.exercises.solutions.cnn`: try first.

>>> import numpy as np
>>> from chainrule.exercises.cnn import check_elu_derivative, elu_derivative
>>> from chainrule.exercises import attempt
>>> attempt(check_elu_derivative, elu_derivative).status
'not attempted'
>>> print(check_elu_derivative(lambda x: np.where(x > 0, 1.0, np.exp(x))))
elu_derivative: passed (12 elements agree with the reference, atol=1e-08, rtol=1e-06)
>>> try:
...     check_elu_derivative(lambda x: np.where(x > 0, 1.0, np.exp(x) - 1))   # f instead of f'
... except AssertionError as err:
...     print(str(err).splitlines()[0])
elu_derivative: FAILED
"""
from __future__ import annotations

import numpy as np

import autodiff as ad
import nn
from nn import functional as F
from nn.transfer import freeze, frozen_parameters, replace_head, trainable_parameters

from .checking import Exercise
from .values import ValueExercise, ValueReport

ELU_ALPHA = 1.0     # nn.functional.elu's default, the slides' alpha
SWISH_BETA = 1.0    # nn.functional.swish's default: x sigmoid(x)
ADAM_EPS = 1e-8     # torch.optim.Adam's (and nn.optim.Adam's) default epsilon


def _away_from_zero(rng, shape, lo=0.2, hi=4.0):
    """Values of both signs, at least ``lo`` away from 0, where a derivative's value is a convention."""
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


# --- lesson 1: activation functions ----------------------------------------------------------------

def _elementwise_derivative(f, x):
    """f'(x) for an elementwise f, by the engine: the gradient of sum(f(x)) is f'(x), element by element."""
    return ad.grad(lambda v: ad.sum(f(v)))(x)


def elu_derivative(x):
    """Return ELU'(x) elementwise (alpha = 1): 1 for x > 0, alpha e^x otherwise."""
    raise NotImplementedError("write the derivative of ELU")


ELU_DERIVATIVE = ValueExercise(
    "elu_derivative", ("x",), ("f'(x)",),
    lambda x: (_elementwise_derivative(lambda v: F.elu(v, ELU_ALPHA), x),),
    lambda rng: {"x": _away_from_zero(rng, (3, 4))})


def check_elu_derivative(student):
    """Check ``student(x) -> ELU'(x)`` against the engine's derivative of ``nn.functional.elu``."""
    return ELU_DERIVATIVE.check(student)


def swish_derivative(x):
    """Return Swish'(x) elementwise for Swish(x) = x sigmoid(x) (beta = 1)."""
    raise NotImplementedError("write the derivative of Swish")


SWISH_DERIVATIVE = ValueExercise(
    "swish_derivative", ("x",), ("f'(x)",),
    lambda x: (_elementwise_derivative(lambda v: F.swish(v, SWISH_BETA), x),),
    lambda rng: {"x": rng.uniform(-6, 6, (3, 4))})


def check_swish_derivative(student):
    """Check ``student(x) -> Swish'(x)`` against the engine's derivative of ``nn.functional.swish``."""
    return SWISH_DERIVATIVE.check(student)


# --- lesson 2: initialisation ----------------------------------------------------------------------

def init_std(shape):
    """Return (xavier_std, he_std) for a weight of ``shape``: dense (in, units) or conv (F, C, kh, kw).

    Xavier (eq. 5.1): Var = 2 / (fan_in + fan_out); He (eq. 5.2): Var = 2 / fan_in."""
    raise NotImplementedError("compute the fans, then the two standard deviations")


def _init_std_reference(shape):
    fan_in, fan_out = nn.init.fans(shape)
    return np.sqrt(2.0 / (fan_in + fan_out)), np.sqrt(2.0 / fan_in)


INIT_STD = ValueExercise(
    "init_std", ("shape",), ("xavier_std", "he_std"), _init_std_reference,
    lambda rng: {"shape": (int(rng.choice([16, 32, 64])), int(rng.choice([3, 8, 32])), 3, 3)})


def check_init_std(student):
    """Check ``student(shape) -> (xavier_std, he_std)`` for a convolution weight (F, C, kh, kw)."""
    return INIT_STD.check(student)


# --- lesson 3: solvers -------------------------------------------------------------------------------

def _one_step(optimiser, param, grad, state, steps_before):
    """``param`` and the state after one ``nn.optim`` step from the given state (float64 throughout)."""
    p = nn.Parameter(np.array(param, dtype=np.float64))
    opt = optimiser([p])
    opt.load_state_dict({"type": type(opt).__name__, "hyper": {}, "steps": [steps_before],
                         "state": {f"0.{k}": v for k, v in state.items()}})
    p.grad = np.array(grad, dtype=np.float64)
    opt.step()
    return (p.value.copy(), *(opt.state[0][k].copy() for k in state))


def momentum_step(param, grad, momentum_buffer, lr, momentum):
    """Return (new param, new momentum_buffer) after one step of SGD with momentum (eqs. 5.17-5.18),
    in torch.optim.SGD's form: buf <- momentum buf + grad; param <- param - lr buf. New arrays."""
    raise NotImplementedError("write one step of SGD with momentum")


MOMENTUM_STEP = ValueExercise(
    "momentum_step", ("param", "grad", "momentum_buffer", "lr", "momentum"), ("param", "momentum_buffer"),
    lambda param, grad, momentum_buffer, lr, momentum: _one_step(
        lambda ps: nn.optim.SGD(ps, lr=lr, momentum=momentum), param, grad,
        {"momentum_buffer": momentum_buffer}, steps_before=3),
    lambda rng: {"param": rng.normal(size=5), "grad": rng.normal(size=5), "momentum_buffer": rng.normal(size=5),
                 "lr": 0.1, "momentum": 0.9})


def check_momentum_step(student):
    """Check ``student(param, grad, momentum_buffer, lr, momentum) -> (param, momentum_buffer)``
    against ``nn.optim.SGD(momentum=...)`` started from the same state."""
    return MOMENTUM_STEP.check(student)


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, betas):
    """Return (new param, new exp_avg, new exp_avg_sq) after Adam's step number ``step`` (1, 2, ...):
    eqs. 5.29-5.33 in torch.optim.Adam's form, eps = ADAM_EPS added to sqrt(v_hat). New arrays."""
    raise NotImplementedError("write one step of Adam")


ADAM_STEP = ValueExercise(
    "adam_step", ("param", "grad", "exp_avg", "exp_avg_sq", "step", "lr", "betas"),
    ("param", "exp_avg", "exp_avg_sq"),
    lambda param, grad, exp_avg, exp_avg_sq, step, lr, betas: _one_step(
        lambda ps: nn.optim.Adam(ps, lr=lr, betas=betas, eps=ADAM_EPS), param, grad,
        {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, steps_before=step - 1),
    lambda rng: {"param": rng.normal(size=(2, 3)), "grad": rng.normal(size=(2, 3)),
                 "exp_avg": rng.normal(0, 0.1, (2, 3)), "exp_avg_sq": rng.uniform(0.01, 0.5, (2, 3)),
                 "step": 4, "lr": 0.01, "betas": (0.9, 0.999)})


def check_adam_step(student):
    """Check ``student(param, grad, exp_avg, exp_avg_sq, step, lr, betas) -> (param, exp_avg, exp_avg_sq)``
    against ``nn.optim.Adam`` started from the same state."""
    return ADAM_STEP.check(student)


# --- lesson 4: data preparation ----------------------------------------------------------------------

def channel_centre(x_train, x):
    """Return ``x`` (N, C, H, W) minus the per-channel mean of ``x_train`` (VGGNet, ResNet): one
    number per channel, the mean over the training images and their pixels."""
    raise NotImplementedError("centre x with the per-channel means of x_train")


CHANNEL_CENTRE = ValueExercise(
    "channel_centre", ("x_train", "x"), ("centred x",),
    lambda x_train, x: (nn.data.ChannelCentre().fit(x_train).transform(x),),
    lambda rng: {"x_train": rng.normal([0.2, 0.5, 0.9], 0.3, (6, 4, 4, 3)).transpose(0, 3, 1, 2),
                 "x": rng.normal([0.2, 0.5, 0.9], 0.3, (2, 4, 4, 3)).transpose(0, 3, 1, 2)})


def check_channel_centre(student):
    """Check ``student(x_train, x) -> centred x`` against ``nn.data.ChannelCentre``."""
    return CHANNEL_CENTRE.check(student)


# --- lesson 5: training a CNN ------------------------------------------------------------------------

def confusion_matrix(y_true, y_pred, classes):
    """Return the (classes, classes) matrix of counts: entry [i, j] counts the examples of true
    class i predicted as class j (rows: truth, columns: prediction)."""
    raise NotImplementedError("count the (true, predicted) pairs")


def _confusion_reference(y_true, y_pred, classes):
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return (counts,)


CONFUSION_MATRIX = ValueExercise(
    "confusion_matrix", ("y_true", "y_pred", "classes"), ("matrix",), _confusion_reference,
    lambda rng: {"y_true": rng.integers(0, 4, 40), "y_pred": rng.integers(0, 4, 40), "classes": 4})


def check_confusion_matrix(student):
    """Check ``student(y_true, y_pred, classes) -> (classes, classes) counts``."""
    return CONFUSION_MATRIX.check(student)


# --- lesson 6: regularisation ------------------------------------------------------------------------

def elastic_net_grad(w, l1, l2):
    """Return the gradient with respect to ``w`` of the elastic-net penalty (eq. 5.14 with the 1/2
    of section 5.2.6): l1 sum |w| + l2 / 2 sum w^2 (w is never exactly 0)."""
    raise NotImplementedError("differentiate the penalty")


def _penalty_gradient(w, l1, l2):
    weight = ad.Tensor(w, requires_grad=True)
    nn.regularizers.elastic_net_penalty([weight], l1=l1, l2=l2).backward()
    return (weight.grad,)


ELASTIC_NET_GRAD = ValueExercise(
    "elastic_net_grad", ("w", "l1", "l2"), ("dpenalty/dw",), _penalty_gradient,
    lambda rng: {"w": _away_from_zero(rng, (4, 3), lo=0.01, hi=1.0), "l1": 0.01, "l2": 0.1})


def check_elastic_net_grad(student):
    """Check ``student(w, l1, l2) -> d penalty / dw`` against the engine's gradient of
    ``nn.regularizers.elastic_net_penalty``."""
    return ELASTIC_NET_GRAD.check(student)


def max_norm(w, c):
    """Return a copy of the dense weight ``w`` (in, units) in which every unit's incoming weight
    vector (a column) whose L2 norm exceeds ``c`` is scaled back to norm ``c`` (section 5.2.9)."""
    raise NotImplementedError("project the columns onto the ball of radius c")


def _max_norm_reference(w, c):
    nn.regularizers.max_norm_(w, c)
    return (w,)


MAX_NORM = ValueExercise(
    "max_norm", ("w", "c"), ("constrained w",), _max_norm_reference,
    lambda rng: {"w": rng.normal(0, 1, (5, 6)) * rng.uniform(0.2, 1.5, 6), "c": 2.0})


def check_max_norm(student):
    """Check ``student(w, c) -> constrained copy of w`` against ``nn.regularizers.max_norm_``."""
    return MAX_NORM.check(student)


# --- lesson 7: depth ---------------------------------------------------------------------------------

def residual_block(x, W1, W2):
    """y = x + relu(x W1) W2: a residual block of two dense layers (no biases) around an identity
    shortcut, x of shape (N, D), W1 (D, H), W2 (H, D)."""
    return x + np.maximum(x @ W1, 0) @ W2


def residual_block_vjp(x, W1, W2, g):
    """Return (dL/dx, dL/dW1, dL/dW2) for y = residual_block(x, W1, W2), given g = dL/dy."""
    raise NotImplementedError("write the backward pass of the residual block")


RESIDUAL_BLOCK = Exercise(
    "residual_block", ("x", "W1", "W2"), ("x", "W1", "W2"), residual_block,
    lambda x, W1, W2: x + F.linear(F.relu(F.linear(x, W1)), W2),
    lambda rng: {"x": rng.normal(size=(4, 3)), "W1": rng.normal(size=(3, 5)), "W2": rng.normal(size=(5, 3))})


def check_residual_block(student_vjp):
    """Check ``student_vjp(x, W1, W2, g) -> (dx, dW1, dW2)`` against the engine's reverse sweep."""
    return RESIDUAL_BLOCK.check(student_vjp)


# --- lesson 8: architectures ------------------------------------------------------------------------

def conv_params(filters, channels, kernel, groups):
    """Return (weights, biases): the parameters of a Conv2D layer of ``filters`` kernels of size
    ``kernel`` x ``kernel`` over ``channels`` input channels split into ``groups`` groups (AlexNet's
    two GPUs: groups=2, each filter sees channels / groups of them)."""
    raise NotImplementedError("count the weights of one filter, times the filters; then the biases")


def _conv_params_reference(filters, channels, kernel, groups):
    layer = nn.Conv2D(filters, kernel, groups=groups)
    nn.Sequential([nn.Input((channels, kernel, kernel)), layer])    # built: its parameters exist
    weight, bias = layer.parameters()
    return weight.value.size, bias.value.size


CONV_PARAMS = ValueExercise(
    "conv_params", ("filters", "channels", "kernel", "groups"), ("weights", "biases"), _conv_params_reference,
    lambda rng: {"filters": int(rng.choice([64, 96, 256])), "channels": int(rng.choice([48, 96, 192])),
                 "kernel": int(rng.choice([3, 5, 11])), "groups": 2})


def check_conv_params(student):
    """Check ``student(filters, channels, kernel, groups) -> (weights, biases)`` against ``nn.Conv2D``."""
    return CONV_PARAMS.check(student)


# --- lesson 9: pre-training and fine-tuning ---------------------------------------------------------

def transfer_params(widths, classes, frozen):
    """Return (trainable, non_trainable): the parameter counts of a Dense stack (input width widths[0],
    hidden widths widths[1:]) whose head is replaced by Dense(classes) and first ``frozen`` layers frozen."""
    raise NotImplementedError("count each Dense layer's weights and biases; the frozen ones apart")


def _transfer_params_reference(widths, classes, frozen):
    model = nn.Sequential([nn.Input((widths[0],))] + [nn.Dense(w) for w in widths[1:]] + [nn.Dense(2)])
    new = replace_head(model, nn.Dense(classes))
    freeze(*new.layers[1:1 + frozen])
    return sum(p.size for p in trainable_parameters(new)), sum(p.size for p in frozen_parameters(new))


TRANSFER_PARAMS = ValueExercise(
    "transfer_params", ("widths", "classes", "frozen"), ("trainable", "non_trainable"), _transfer_params_reference,
    lambda rng: {"widths": [int(w) for w in rng.choice([16, 32, 64, 100], 4)], "classes": 5, "frozen": 2})


def check_transfer_params(student):
    """Check ``student(widths, classes, frozen) -> (trainable, non_trainable)`` against ``nn.transfer``."""
    return TRANSFER_PARAMS.check(student)


def layerwise_input(x, weights, biases, k):
    """Return what greedy layer-wise pre-training feeds layer ``k``'s auto-encoder (k = 0, 1, ...): ``x``
    through the sigmoid Dense layers 0..k-1 (``weights[i]`` (in, units), ``biases[i]``), already trained."""
    raise NotImplementedError("pass x through the layers before layer k")


def _layerwise_input_reference(x, weights, biases, k):
    h = x
    for w, b in zip(weights[:k], biases[:k]):
        layer = nn.Dense(w.shape[1], activation="sigmoid")
        layer.build((w.shape[0],))
        layer.weight, layer.bias = nn.Parameter(w), nn.Parameter(b)    # float64: the engine keeps the dtype
        with ad.no_grad():
            h = np.asarray(ad.value_of(layer(h)))
    return (h,)


LAYERWISE_INPUT = ValueExercise(
    "layerwise_input", ("x", "weights", "biases", "k"), ("input of layer k",), _layerwise_input_reference,
    lambda rng: {"x": rng.normal(size=(4, 6)), "weights": [rng.normal(size=s) for s in ((6, 5), (5, 4), (4, 3))],
                 "biases": [rng.normal(size=n) for n in (5, 4, 3)], "k": 2})


def check_layerwise_input(student):
    """Check ``student(x, weights, biases, k) -> layer k's input`` against ``nn.Dense`` layers."""
    return LAYERWISE_INPUT.check(student)


# --- the index -------------------------------------------------------------------------------------

#: Every exercise, in the order of the lessons.
EXERCISES = {e.name: e for e in (ELU_DERIVATIVE, SWISH_DERIVATIVE, INIT_STD, MOMENTUM_STEP, ADAM_STEP,
                                 CHANNEL_CENTRE, CONFUSION_MATRIX, ELASTIC_NET_GRAD, MAX_NORM, RESIDUAL_BLOCK,
                                 CONV_PARAMS, TRANSFER_PARAMS, LAYERWISE_INPUT)}

#: Which lesson asks for which exercises.
LESSONS = {"cnn_01_activations": ["elu_derivative", "swish_derivative"], "cnn_02_initialisation": ["init_std"],
           "cnn_03_solvers": ["momentum_step", "adam_step"], "cnn_04_data": ["channel_centre"],
           "cnn_05_training": ["confusion_matrix"], "cnn_06_regularisation": ["elastic_net_grad", "max_norm"],
           "cnn_07_depth": ["residual_block"], "cnn_08_architectures": ["conv_params"],
           "cnn_09_pretraining": ["transfer_params", "layerwise_input"]}

#: The checker of each exercise, by name.
CHECKS = {name: globals()[f"check_{name}"] for name in EXERCISES}

#: The stub of each exercise (raises NotImplementedError), by name.
STUBS = {name: globals()[f"{name}_vjp" if isinstance(e, Exercise) else name] for name, e in EXERCISES.items()}

__all__ = ["ValueExercise", "ValueReport", "EXERCISES", "LESSONS", "CHECKS", "STUBS", "ELU_ALPHA", "SWISH_BETA",
           "ADAM_EPS", "residual_block"] + [f.__name__ for f in STUBS.values()] + [f"check_{n}" for n in EXERCISES]
