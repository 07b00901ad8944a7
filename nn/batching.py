"""vmap's batching rules for nn's primitives: the map's examples folded into the layer's own batch axis.

A convolution, a pooling or a dense layer already runs over a batch of N examples; under ``vmap`` each
mapped example is such a batch, so the map's B examples of N make one call on B*N. That holds where only
the batched input carries the map (the weights are shared by every example); otherwise the rule asks
for the per-example loop (a weight gradient, which sums over N, is per example).
"""
from __future__ import annotations

from autodiff import REGISTRY
from autodiff.batching import reshape, to_front
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


for _name in ("conv2d", "conv2d_relu", "conv2d_input_grad", "avg_pool2d", "avg_pool2d_transpose", "dense"):
    batch_rules[REGISTRY[_name]] = folded
