"""2-D convolution (cross-correlation, like torch.nn.functional.conv2d), layout NCHW, and its two gradients.

With x (N, C, H, W), weights w (F, C/groups, kh, kw) and bias b (F,), the forward pass is

    y[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * x[n, g*C/groups + c, i*s + p*d - pad, j*s + q*d - pad]

summed over c < C/groups, p < kh, q < kw, where g = f // (F/groups) is filter f's group, s the stride,
d the dilation and pad the zero padding (each given per direction: height with i and p, width with
j and q; x is 0 outside the image). The output has

    Ho = floor((H + 2*pad - d*(kh - 1) - 1) / s) + 1        (and Wo the same with W, kw)

Given g = dL/dy, backward_input returns dL/dx and backward_weight returns (dL/dw, dL/db).

Two ways in. The entry points take the geometry as a ``kernels.ConvGeometry``, built (and validated)
once, e.g. by a layer at construction::

    forward(x, w, b, geometry)                       -> y
    backward_input(g, w, input_shape, geometry)      -> dx
    backward_weight(g, x, weight_shape, geometry, bias=True) -> (dw, db)
    backward(g, x, w, geometry, input_grad=True, weight_grad=True, relu_out=None) -> (dx, dw, db)

``backward`` gives all three from one call, g masked once by the fused ReLU's output ``relu_out``
when given (on the CPU by im2col: one pass over g, each image's g used for both products while it
is in cache; where one gradient goes by Winograd, each from g masked once).

They check the arrays on every call (dtype, shape, that they fit the geometry), not the geometry,
and run the function of the same name and arguments in the backend's module (IMPLEMENTATIONS):
"numpy" (reference.py, the oracle), "cpu" (cpu.py, Numba) or "cuda" (cuda.py, numba.cuda). The
keyword functions ``conv2d_forward(x, w, b, stride=, padding=, dilation=, groups=)``,
``conv2d_backward_input`` and ``conv2d_backward_weight`` build a geometry and call them. float32 is
the default dtype; float64 is accepted; all arrays of a call must share one dtype.
"""
from __future__ import annotations

from .._checks import float_array, shape4
from ..backend import implementation, implementations
from ..options import ConvGeometry, PoolGeometry

__all__ = ["forward", "backward_input", "backward_weight", "backward", "backward_pooled", "relu_grad",
           "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"]


# --- the static dispatch table: backend name -> the module with this family's verbs there ------------

IMPLEMENTATIONS = implementations(__name__)


# --- array checks (every call) ---------------------------------------------------------------------

def _geometry(geometry):
    if not isinstance(geometry, ConvGeometry):
        raise TypeError(f"geometry must be a kernels.ConvGeometry (built once, e.g. ConvGeometry(stride=2)), "
                        f"got {type(geometry).__name__}")
    return geometry


def _output_shape(x_shape, w_shape, geometry, x_name):
    """(N, F, Ho, Wo) of the forward pass, after checking that the shapes of x and w fit together.

    ``x_name`` is what the caller calls the input's shape ("x" or "input_shape"), for the messages.
    """
    n, c, height, width = x_shape
    f, cg, kh, kw = w_shape
    groups = geometry.groups
    if min(w_shape) < 1:
        raise ValueError(f"w must have 4 positive sizes (F, C/groups, kh, kw), got shape {tuple(w_shape)}")
    if c % groups != 0:
        raise ValueError(f"groups={groups} must divide the number of input channels C: {x_name} has C={c}")
    if cg * groups != c:
        raise ValueError(f"w must have shape (F, C/groups, kh, kw) = (F, {c // groups}, kh, kw) for {x_name} "
                         f"with C={c} channels and groups={groups}, got w.shape {tuple(w_shape)}")
    if f % groups != 0:
        raise ValueError(f"groups={groups} must divide the number of filters F: w has F={f} (w.shape[0])")
    return (n, f, *geometry.output_hw(height, width, (kh, kw), of=x_name, channels=c))


def _check_g(g, expected):
    if tuple(g.shape) != expected:
        raise ValueError(f"g must have the forward output's shape (N, F, Ho, Wo) = {expected}, "
                         f"got {tuple(g.shape)}")


# --- the entry points: a geometry built once ----------------------------------------------------------

def forward(x, w, b, geometry: ConvGeometry, *, relu=False, backend=None):
    """y = conv2d(x, w) + b (N, F, Ho, Wo); b may be None. ``relu=True``: max(y, 0), fused (the
    activation applied while each result is still in cache). See the module docstring."""
    geometry = _geometry(geometry)
    x = float_array(x, "x", 4)
    w = float_array(w, "w", 4, dtype=x.dtype)
    if b is not None:
        b = float_array(b, "b", 1, dtype=x.dtype)
    shape4(x.shape, "x")
    _n, f, _ho, _wo = _output_shape(x.shape, w.shape, geometry, "x")
    if b is not None and tuple(b.shape) != (f,):
        raise ValueError(f"b must have shape (F,) = ({f},), one bias per filter, got {tuple(b.shape)}")
    return implementation(IMPLEMENTATIONS, backend, x=x, w=w, b=b).forward(x, w, b, geometry, bool(relu))


def backward_input(g, w, input_shape, geometry: ConvGeometry, *, backend=None):
    """dL/dx of shape ``input_shape`` given g = dL/dy. See conv2d_backward_input."""
    geometry = _geometry(geometry)
    g = float_array(g, "g", 4)
    w = float_array(w, "w", 4, dtype=g.dtype, like="g")
    input_shape = shape4(input_shape, "input_shape")
    _check_g(g, _output_shape(input_shape, w.shape, geometry, "input_shape"))
    return implementation(IMPLEMENTATIONS, backend, g=g, w=w).backward_input(g, w, input_shape, geometry)


def backward_weight(g, x, weight_shape, geometry: ConvGeometry, *, bias=True, backend=None):
    """(dL/dw, dL/db) given g = dL/dy; dL/db is None when ``bias`` is False. See conv2d_backward_weight."""
    geometry = _geometry(geometry)
    g = float_array(g, "g", 4)
    x = float_array(x, "x", 4, dtype=g.dtype, like="g")
    weight_shape = shape4(weight_shape, "weight_shape")
    shape4(x.shape, "x")
    _check_g(g, _output_shape(x.shape, weight_shape, geometry, "x"))
    module = implementation(IMPLEMENTATIONS, backend, g=g, x=x)
    return module.backward_weight(g, x, weight_shape, geometry, bool(bias))


def backward(g, x, w, geometry: ConvGeometry, *, input_grad=True, weight_grad=True, relu_out=None, backend=None):
    """(dL/dx, dL/dw, dL/db) of y = conv2d(x, w) + b given g = dL/dy, from one call; dL/dx is None
    unless ``input_grad``, dL/dw and dL/db None unless ``weight_grad``. ``relu_out``: the output of
    ``forward(..., relu=True)``; g is then masked where it is 0 (relu'(0) = 0), as ``relu_grad`` does.

    >>> import numpy as np
    >>> x, w = np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 2, 2), np.float32)
    >>> dx, dw, db = backward(np.ones((1, 1, 2, 2), np.float32), x, w, ConvGeometry(), backend="numpy")
    >>> dx[0, 0], dw.ravel(), db                 # windows covering each pixel; 4 windows; sum of g
    (array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32), array([4., 4., 4., 4.], dtype=float32), array([4.], dtype=float32))
    """
    geometry = _geometry(geometry)
    g = float_array(g, "g", 4)
    x = float_array(x, "x", 4, dtype=g.dtype, like="g")
    w = float_array(w, "w", 4, dtype=g.dtype, like="g")
    shape4(x.shape, "x")
    _check_g(g, _output_shape(x.shape, w.shape, geometry, "x"))
    if relu_out is not None:
        relu_out = float_array(relu_out, "relu_out", 4, dtype=g.dtype, like="g")
        if tuple(relu_out.shape) != tuple(g.shape):
            raise ValueError(f"relu_out must have g's shape {tuple(g.shape)}, got {tuple(relu_out.shape)}")
    module = implementation(IMPLEMENTATIONS, backend, g=g, x=x, w=w, relu_out=relu_out)
    return module.backward(g, x, w, geometry, bool(input_grad), bool(weight_grad), relu_out)


def backward_pooled(g, pooled, x, w, relu_out, geometry: ConvGeometry, pool_geometry, *, input_grad=True,
                    weight_grad=True, backend=None):
    """``backward`` of y = max_pool2d(relu_out, pool_geometry), relu_out = forward(x, w, b, relu=True), given
    g = dL/dy and ``pooled`` = y: the same (dx, dw, db) as ``pool2d.max_scatter`` followed by
    ``backward(..., relu_out=relu_out)``, bit for bit. The ReLU's mask goes on g (where the pooled value is
    positive: the window's maximum is the value the mask reads), and a backend that can ("cpu", im2col
    with 2x2 windows) scatters each image while it is in cache instead of storing relu_out's full-size
    gradient and reading it back.

    >>> import numpy as np
    >>> from kernels import pool2d
    >>> from kernels.options import PoolGeometry
    >>> x, w = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) - 6, np.ones((1, 1, 2, 2), np.float32)
    >>> out = forward(x, w, None, ConvGeometry(), relu=True, backend="numpy")     # (1, 1, 3, 3), its top row 0
    >>> pooled = pool2d.max_values(out, PoolGeometry(2), backend="numpy")        # one window: 2x2 of 3x3
    >>> dx, dw, db = backward_pooled(np.ones_like(pooled), pooled, x, w, out, ConvGeometry(), PoolGeometry(2),
    ...                              backend="numpy")
    >>> dw.ravel(), db          # the window's maximum, out[1, 1] (= x's 2x2 block at (1, 1) summed), gets g = 1
    (array([-1.,  0.,  3.,  4.], dtype=float32), array([1.], dtype=float32))
    """
    geometry = _geometry(geometry)
    relu_out = float_array(relu_out, "relu_out", 4)
    x = float_array(x, "x", 4, dtype=relu_out.dtype, like="relu_out")
    w = float_array(w, "w", 4, dtype=relu_out.dtype, like="relu_out")
    expected = _output_shape(x.shape, w.shape, geometry, "x")
    if tuple(relu_out.shape) != expected:
        raise ValueError(f"relu_out must have the forward output's shape (N, F, Ho, Wo) = {expected}, "
                         f"got {tuple(relu_out.shape)}")
    g = float_array(g, "g", 4, dtype=relu_out.dtype, like="relu_out")
    pooled = float_array(pooled, "pooled", 4, dtype=relu_out.dtype, like="relu_out")
    if not isinstance(pool_geometry, PoolGeometry):
        raise TypeError(f"pool_geometry must be a kernels.PoolGeometry, got {type(pool_geometry).__name__}")
    expected = (*expected[:2], *pool_geometry.output_hw(*expected[2:]))
    for name, array in (("g", g), ("pooled", pooled)):
        if tuple(array.shape) != expected:
            raise ValueError(f"{name} must have relu_out's pooled shape {expected}, got {tuple(array.shape)}")
    module = implementation(IMPLEMENTATIONS, backend, g=g, x=x, w=w, relu_out=relu_out, pooled=pooled)
    return module.backward_pooled(g, pooled, x, w, relu_out, geometry, pool_geometry, bool(input_grad),
                                  bool(weight_grad))


def relu_grad(g, out, *, backend=None):
    """g where ``out`` (the output of ``forward(..., relu=True)``) is positive, else 0: the gradient
    that reaches the convolution through its fused ReLU (relu'(0) = 0, as ``autodiff.relu``).

    >>> import numpy as np
    >>> out = np.array([0.0, 2.0, 0.0, 0.5], np.float32).reshape(1, 1, 2, 2)
    >>> relu_grad(np.ones_like(out), out, backend="numpy").ravel()
    array([0., 1., 0., 1.], dtype=float32)
    """
    g = float_array(g, "g", 4)
    out = float_array(out, "out", 4, dtype=g.dtype, like="g")
    if tuple(out.shape) != tuple(g.shape):
        raise ValueError(f"out must have g's shape {tuple(g.shape)}, got {tuple(out.shape)}")
    return implementation(IMPLEMENTATIONS, backend, g=g, out=out).relu_grad(g, out)


# --- the keyword functions: build the geometry, call the entry point -------------------------------

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
    return forward(x, w, b, ConvGeometry(stride, padding, dilation, groups), backend=backend)


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
    return backward_input(g, w, input_shape, ConvGeometry(stride, padding, dilation, groups), backend=backend)


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
    return backward_weight(g, x, weight_shape, ConvGeometry(stride, padding, dilation, groups), bias=bias,
                           backend=backend)
