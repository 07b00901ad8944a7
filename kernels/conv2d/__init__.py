"""2-D convolution (cross-correlation, like torch.nn.functional.conv2d), layout NCHW, and its two gradients.

With x (N, C, H, W), weights w (F, C/groups, kh, kw) and bias b (F,), the forward pass is

    y[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * x[n, g*C/groups + c, i*s + p*d - pad, j*s + q*d - pad]

summed over c < C/groups, p < kh, q < kw, where g = f // (F/groups) is filter f's group, s the stride,
d the dilation and pad the zero padding (each given per direction: height with i and p, width with
j and q; x is 0 outside the image). The output has

    Ho = floor((H + 2*pad - d*(kh - 1) - 1) / s) + 1        (and Wo the same with W, kw)

Given g = dL/dy, conv2d_backward_input returns dL/dx and conv2d_backward_weight returns (dL/dw, dL/db).

The functions check their arguments here, once, and then run one of three implementations with the
same arguments (kernels.backend): "numpy" (reference.py, the oracle), "cpu" (cpu.py, Numba) or
"cuda" (cuda.py, numba.cuda). float32 is the default dtype; float64 is accepted; all arrays of a call
must share one dtype.
"""
from __future__ import annotations

import numpy as np

from .._checks import float_array, host_only, output_size, pair, shape4
from ..backend import implementation, resolve

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"]


# --- argument checks -----------------------------------------------------------------------------

def _options(stride, padding, dilation, groups):
    """stride, padding, dilation as (int, int) pairs (>= 1, >= 0, >= 1) and groups as an int >= 1."""
    stride = pair(stride, "stride", minimum=1)
    padding = pair(padding, "padding", minimum=0)
    dilation = pair(dilation, "dilation", minimum=1)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be an int >= 1, got {groups!r}")
    return stride, padding, dilation, int(groups)


def _output_shape(x_shape, w_shape, stride, padding, dilation, groups, x_name):
    """(N, F, Ho, Wo) of the forward pass, after checking that the shapes of x and w fit together.

    ``x_name`` is what the caller calls the input's shape ("x" or "input_shape"), for the messages.
    """
    n, c, height, width = x_shape
    f, cg, kh, kw = w_shape
    if min(w_shape) < 1:
        raise ValueError(f"w must have 4 positive sizes (F, C/groups, kh, kw), got shape {tuple(w_shape)}")
    if c % groups != 0:
        raise ValueError(f"groups={groups} must divide the number of input channels C: {x_name} has C={c}")
    if cg * groups != c:
        raise ValueError(f"w must have shape (F, C/groups, kh, kw) = (F, {c // groups}, kh, kw) for {x_name} "
                         f"with C={c} channels and groups={groups}, got w.shape {tuple(w_shape)}")
    if f % groups != 0:
        raise ValueError(f"groups={groups} must divide the number of filters F: w has F={f} (w.shape[0])")
    ho = output_size(height, kh, stride[0], padding[0], dilation[0],
                     f"conv2d over the height of {x_name} (H={height}) with w's kh={kh}")
    wo = output_size(width, kw, stride[1], padding[1], dilation[1],
                     f"conv2d over the width of {x_name} (W={width}) with w's kw={kw}")
    return n, f, ho, wo


def _check_g(g, expected):
    if tuple(g.shape) != expected:
        raise ValueError(f"g must have the forward output's shape (N, F, Ho, Wo) = {expected}, "
                         f"got {tuple(g.shape)}")


# --- the public functions ------------------------------------------------------------------------

def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, backend=None):
    """y = conv2d(x, w) + b, of shape (N, F, Ho, Wo).

    y[n, f, i, j] = b[f] + sum_{c,p,q} w[f, c, p, q] x[n, g*C/groups + c, i*s + p*d - pad, j*s + q*d - pad]
    with g = f // (F/groups), and Ho = floor((H + 2*pad - d*(kh - 1) - 1) / s) + 1 (Wo likewise).

    x: (N, C, H, W); w: (F, C/groups, kh, kw); b: (F,) or None. stride, padding, dilation: an int or
    a pair (height, width). groups: input channels and filters split into this many groups, group g's
    filters seeing only group g's channels. backend: "numpy", "cpu" or "cuda" (None: the current
    default). On "cuda", NumPy inputs give a NumPy result and device inputs a device result.

    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 2, 2), dtype=np.float32)              # sums of 2x2 windows
    >>> conv2d_forward(x, w, backend="numpy")[0, 0]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]], dtype=float32)
    >>> conv2d_forward(x, w, np.array([100], np.float32), stride=2, backend="numpy")[0, 0]
    array([[110., 118.],
           [142., 150.]], dtype=float32)
    >>> conv2d_forward(x, w, padding=1, dilation=2, backend="numpy").shape     # (4 + 2 - 2 - 1)//1 + 1 = 4
    (1, 1, 4, 4)
    """
    name = resolve(backend)
    x = float_array(x, "x", 4)
    w = float_array(w, "w", 4, dtype=x.dtype)
    if b is not None:
        b = float_array(b, "b", 1, dtype=x.dtype)
    stride, padding, dilation, groups = _options(stride, padding, dilation, groups)
    shape4(x.shape, "x")
    _n, f, _ho, _wo = _output_shape(x.shape, w.shape, stride, padding, dilation, groups, "x")
    if b is not None and tuple(b.shape) != (f,):
        raise ValueError(f"b must have shape (F,) = ({f},), one bias per filter, got {tuple(b.shape)}")
    host_only(name, x=x, w=w, b=b)
    return implementation("conv2d", name).forward(x, w, b, stride, padding, dilation, groups)


def conv2d_backward_input(g, w, input_shape, *, stride=1, padding=0, dilation=1, groups=1, backend=None):
    """dL/dx of shape ``input_shape``, given g = dL/dy of the forward pass y = conv2d(x, w).

    dx[n, c, h, v] = sum of w[f, c', p, q] g[n, f, i, j] over every (f, p, q, i, j) whose term in the
    forward formula reads x[n, c, h, v] (c' = c mod C/groups, f in c's group). ``input_shape`` is
    needed because with stride > 1 several input sizes give the same output size. Other arguments
    as in conv2d_forward.

    >>> import numpy as np
    >>> g = np.ones((1, 1, 3, 3), dtype=np.float32)
    >>> w = np.ones((1, 1, 2, 2), dtype=np.float32)
    >>> conv2d_backward_input(g, w, (1, 1, 4, 4), backend="numpy")[0, 0]   # how many windows cover each pixel
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]], dtype=float32)
    """
    name = resolve(backend)
    g = float_array(g, "g", 4)
    w = float_array(w, "w", 4, dtype=g.dtype)
    input_shape = shape4(input_shape, "input_shape")
    stride, padding, dilation, groups = _options(stride, padding, dilation, groups)
    _check_g(g, _output_shape(input_shape, w.shape, stride, padding, dilation, groups, "input_shape"))
    host_only(name, g=g, w=w)
    return implementation("conv2d", name).backward_input(g, w, input_shape, stride, padding, dilation, groups)


def conv2d_backward_weight(g, x, weight_shape, *, stride=1, padding=0, dilation=1, groups=1, bias=True,
                           backend=None):
    """(dL/dw, dL/db) given g = dL/dy of y = conv2d(x, w) + b; dL/db is None when ``bias`` is False.

    dw[f, c, p, q] = sum_{n,i,j} g[n, f, i, j] x[n, g*C/groups + c, i*s + p*d - pad, j*s + q*d - pad]
    and db[f] = sum_{n,i,j} g[n, f, i, j]. ``weight_shape`` is (F, C/groups, kh, kw). Other
    arguments as in conv2d_forward.

    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> g = np.ones((1, 1, 3, 3), dtype=np.float32)
    >>> dw, db = conv2d_backward_weight(g, x, (1, 1, 2, 2), backend="numpy")
    >>> dw[0, 0], db          # dw[p, q] = sum of the 3x3 window of x starting at (p, q)
    (array([[45., 54.],
           [81., 90.]], dtype=float32), array([9.], dtype=float32))
    """
    name = resolve(backend)
    g = float_array(g, "g", 4)
    x = float_array(x, "x", 4, dtype=g.dtype)
    weight_shape = shape4(weight_shape, "weight_shape")
    stride, padding, dilation, groups = _options(stride, padding, dilation, groups)
    shape4(x.shape, "x")
    _check_g(g, _output_shape(x.shape, weight_shape, stride, padding, dilation, groups, "x"))
    host_only(name, g=g, x=x)
    return implementation("conv2d", name).backward_weight(g, x, weight_shape, stride, padding, dilation, groups,
                                                          bool(bias))
