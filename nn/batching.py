"""vmap's batching rules for nn's primitives: the map's examples folded into the layer's own batch axis.

A convolution, a pooling or a dense layer already runs over a batch of N examples; under ``vmap`` each
mapped example is such a batch, so the map's B examples of N make one call on B*N. That holds where only
the batched input carries the map (the weights are shared by every example); otherwise the rule asks
for the per-example loop. A weight gradient sums over N within each example, so its rule makes each
example's channels and filters groups of their own instead (per-example gradients of a CNN, one call).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from autodiff import REGISTRY
from autodiff.batching import broadcast, reshape, to_front
from autodiff.primitives import batch_rules
from autodiff.tensor import apply


def folded(prim, datas, bdims, size, level, **params):
    """One call on the examples of every mapped input folded into the first axis."""
    if bdims[0] is None or any(b is not None for b in bdims[1:]):
        return None
    x = to_front(datas[0], bdims[0])
    shape = tuple(x.shape)
    if "input_shape" in params:
        params = {**params, "input_shape": (size * params["input_shape"][0],) + tuple(params["input_shape"][1:])}
    out = apply(prim, [reshape(x, (size * shape[1],) + shape[2:])] + list(datas[1:]), params)
    return reshape(out, (size, shape[1]) + tuple(out.shape)[1:]), 0


def folded_together(prim, datas, bdims, size, level, **params):
    """One call on the examples of every input folded into the first axis, an unmapped input repeated for
    each example: max-pooling's primitives, whose inputs are all batches of images (the gradient beside
    the pooled input, from which each window's maximum is found)."""
    full = [to_front(d, b) if b is not None else broadcast(d, (size,) + tuple(d.shape)) for d, b in zip(datas, bdims)]
    out = apply(prim, [reshape(f, (size * f.shape[1],) + tuple(f.shape[2:])) for f in full], params)
    return reshape(out, (size, full[0].shape[1]) + tuple(out.shape)[1:]), 0


def weight_gradient(prim, datas, bdims, size, level, *, weight_shape, geometry):
    """Per-example weight gradients in one call: example b's channels and filters become groups of their own
    (groups * B), so that no example's images meet another's filters; then one (F, C, kh, kw) per example."""
    if not all(type(d) is np.ndarray for d in datas):
        return None
    gy, x = [np.broadcast_to(d, (size,) + d.shape) if b is None else to_front(d, b) for d, b in zip(datas, bdims)]
    (n, f), c = gy.shape[1:3], x.shape[2]
    stacked = [np.ascontiguousarray(a.transpose(1, 0, 2, 3, 4)).reshape((n, size * k) + a.shape[3:])
               for a, k in ((gy, f), (x, c))]
    grouped = dataclasses.replace(geometry, groups=geometry.groups * size)
    out = apply(prim, stacked, {"weight_shape": (size * weight_shape[0],) + tuple(weight_shape[1:]),
                                "geometry": grouped})
    return out.reshape((size,) + tuple(weight_shape)), 0


for _name in ("conv2d", "conv2d_relu", "conv2d_input_grad", "avg_pool2d", "avg_pool2d_transpose", "dense"):
    batch_rules[REGISTRY[_name]] = folded
batch_rules[REGISTRY["conv2d_weight_grad"]] = weight_gradient
for _name in ("max_pool2d", "max_pool2d_scatter", "max_pool2d_gather"):
    batch_rules[REGISTRY[_name]] = folded_together
