"""``backward_pooled`` made of a backend's own verbs: the composition every backend's result is, bit for bit.

Shared by reference.py, cpu.py (for the geometries its one pass does not cover) and cuda.py; no array
operation of its own, so the cpu backend stays free of BLAS products (kernels.runtime's BLAS_FREE).
"""
from __future__ import annotations


def by_parts(relu_grad, max_scatter, backward, g, pooled, x, w, relu_out, geometry, pool_geometry, input_grad,
             weight_grad):
    """The ReLU's mask on the pooling's gradient g (where the pooled value is positive), max pooling's scatter
    to relu_out's windows, then the convolution's backward (no relu_out: the mask is already on)."""
    dy = max_scatter(relu_grad(g, pooled), relu_out, pool_geometry)
    return backward(dy, x, w, geometry, input_grad, weight_grad, None)
