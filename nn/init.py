"""Weight initialisers (section 5.1 of the source material), with torch.nn.init's names.

Each takes a shape (or a Parameter, which it fills in place) and a ``rng`` (a seeded
``np.random.Generator``; default: nn's global one, see :func:`nn.utils.set_seed`) and returns a float32
array. Fans follow PyTorch for convolution weights (F, C, kh, kw): fan_in = C kh kw, fan_out = F kh kw;
for dense weights in Keras's layout (in, units): fan_in = in, fan_out = units.

- ``zeros`` / ``constant``: every unit of a layer computes the same thing and gets the same gradient,
  so they stay identical forever (the symmetry problem): fine for biases, useless for weights.
- ``normal(std)`` / ``uniform(a)``: the slides' N(0, 0.01^2) shrinks activations layer after layer.
- ``xavier_normal`` / ``xavier_uniform`` (Glorot, eq. 5.1): Var(w) = 2 / (fan_in + fan_out).
- ``he_normal`` / ``he_uniform`` (eq. 5.2): Var(w) = 2 / fan_in, for ReLU networks.
- ``orthogonal(gain)``: a (semi-)orthogonal matrix from the QR decomposition of a Gaussian one.
- ``lsuv(model, x)``: layer-sequential unit variance (Mishkin and Matas): orthogonal, then each
  layer's weights rescaled until its output variance on a data batch is 1.

>>> import numpy as np
>>> w = he_normal((256, 512), rng=np.random.default_rng(0))
>>> w.dtype, round(float(w.std() * np.sqrt(256 / 2)), 2)      # std = sqrt(2 / fan_in)
(dtype('float32'), 1.0)
"""
from __future__ import annotations

import math

import numpy as np

from autodiff import no_grad

from . import utils

__all__ = ["fans", "zeros", "ones", "constant", "normal", "uniform", "xavier_normal", "xavier_uniform",
           "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "kaiming_normal", "kaiming_uniform",
           "orthogonal", "lsuv", "get", "INITIALISERS"]


def fans(shape):
    """(fan_in, fan_out) of a weight: (in, units) dense, or (F, C, kh, kw) convolution."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"fans need a weight of at least 2 dimensions, got shape {shape}")
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fill(target, values):
    """Return ``values`` (float32), or copy them into the Parameter / array ``target`` in place."""
    if isinstance(target, tuple):
        return values.astype(np.float32)
    array = target.value if hasattr(target, "value") else target
    array[...] = values
    return target


def _shape(target):
    if isinstance(target, (tuple, list)):
        return tuple(int(s) for s in target)
    if isinstance(target, (int, np.integer)):
        return (int(target),)
    return tuple((target.value if hasattr(target, "value") else target).shape)


def _prepare(target, rng):
    shape = _shape(target)
    return (shape if isinstance(target, (tuple, list, int, np.integer)) else target), shape, utils.rng(rng)


def zeros(target, rng=None):
    """All zeros (biases; for weights see the module docstring: symmetry)."""
    target, shape, _ = _prepare(target, rng)
    return _fill(target, np.zeros(shape))


def ones(target, rng=None):
    """All ones (batch normalisation's scale)."""
    return constant(target, 1.0)


def constant(target, value=0.0, rng=None):
    """Every element ``value``."""
    target, shape, _ = _prepare(target, rng)
    return _fill(target, np.full(shape, float(value)))


def normal(target, mean=0.0, std=0.01, rng=None):
    """N(mean, std^2) (default the slides' N(0, 0.01^2))."""
    target, shape, rng = _prepare(target, rng)
    return _fill(target, rng.normal(mean, std, shape))


def uniform(target, a=-0.05, b=0.05, rng=None):
    """U(a, b) (default Keras's RandomUniform(-0.05, 0.05))."""
    target, shape, rng = _prepare(target, rng)
    return _fill(target, rng.uniform(a, b, shape))


def xavier_normal(target, gain=1.0, rng=None):
    """Glorot/Xavier normal (eq. 5.1): N(0, gain^2 2 / (fan_in + fan_out))."""
    target, shape, rng = _prepare(target, rng)
    fan_in, fan_out = fans(shape)
    return _fill(target, rng.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape))


def xavier_uniform(target, gain=1.0, rng=None):
    """Glorot/Xavier uniform (eq. 5.1): U(-a, a), a = gain sqrt(6 / (fan_in + fan_out)); Keras's default."""
    target, shape, rng = _prepare(target, rng)
    fan_in, fan_out = fans(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(target, rng.uniform(-a, a, shape))


def he_normal(target, rng=None):
    """He/Kaiming normal (eq. 5.2): N(0, 2 / fan_in), for ReLU layers."""
    target, shape, rng = _prepare(target, rng)
    return _fill(target, rng.normal(0.0, math.sqrt(2.0 / fans(shape)[0]), shape))


def he_uniform(target, rng=None):
    """He/Kaiming uniform (eq. 5.2): U(-a, a), a = sqrt(6 / fan_in), so Var = 2 / fan_in."""
    target, shape, rng = _prepare(target, rng)
    a = math.sqrt(6.0 / fans(shape)[0])
    return _fill(target, rng.uniform(-a, a, shape))


glorot_normal, glorot_uniform = xavier_normal, xavier_uniform
kaiming_normal, kaiming_uniform = he_normal, he_uniform


def orthogonal(target, gain=1.0, rng=None):
    """A (semi-)orthogonal matrix, reshaped to the weight: rows (or columns) orthonormal, times gain.

    As torch.nn.init.orthogonal_: the weight is flattened to (shape[0], rest), the QR decomposition
    of a Gaussian matrix of that shape (transposed if it is wide) gives Q, signs fixed by diag(R).
    """
    target, shape, rng = _prepare(target, rng)
    rows, cols = shape[0], math.prod(shape[1:])
    a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(target, gain * q.reshape(shape))


INITIALISERS = {
    "zeros": zeros, "ones": ones, "normal": normal, "uniform": uniform,
    "xavier_normal": xavier_normal, "xavier_uniform": xavier_uniform,
    "glorot_normal": xavier_normal, "glorot_uniform": xavier_uniform,
    "he_normal": he_normal, "he_uniform": he_uniform, "orthogonal": orthogonal,
}


def get(name):
    """The initialiser called ``name`` (or ``name`` itself if it is a function)."""
    if callable(name):
        return name
    try:
        return INITIALISERS[name]
    except KeyError:
        raise ValueError(f"initialiser must be one of {sorted(INITIALISERS)} (or a function), got {name!r}") from None


def lsuv(model, x, tol=0.1, max_iter=10, rng=None):
    """Layer-sequential unit-variance initialisation (Mishkin and Matas, 2016; section 5.1).

    Every layer with a ``weight`` is first made orthogonal; then, layer by layer from the input,
    its weight is divided by the standard deviation of its output on the batch ``x`` until that
    variance is within ``tol`` of 1 (at most ``max_iter`` times). Biases are left at zero.
    Returns {layer name: output variance after the last rescaling}.
    """
    rng = utils.rng(rng)
    layers = [layer for layer in model.layers if getattr(layer, "weight", None) is not None]
    if not layers:
        raise ValueError("lsuv: the model has no layer with a weight")
    for layer in layers:
        orthogonal(layer.weight, rng=rng)
    variances = {}
    was_training = model.training
    model.eval()
    try:
        for layer in layers:
            for _ in range(max_iter):
                with no_grad():
                    out = model.forward_until(x, layer, pre_activation=True)
                var = float(np.var(out.value if hasattr(out, "value") else out))
                if var == 0.0 or abs(var - 1.0) < tol:
                    break
                layer.weight.value[...] /= np.float32(math.sqrt(var))
            variances[layer.name] = var
    finally:
        model.train(was_training)
    return variances
