"""Arrays that live on the CUDA device, and the few kernels they need to be used like arrays.

``DeviceArray`` wraps a numba.cuda device array (``.data``). Every kernel of the package called with
device arrays runs on the device and returns DeviceArrays: the device follows the data, as in
PyTorch (ARCHITECTURE.md). A DeviceArray has what autodiff's graph and nn's optimisers ask of a value:
``shape``, ``dtype``, ``ndim``, ``size``, ``+ - * /`` with another DeviceArray of the same shape or
with a number, ``-x``, ``reshape`` / ``ravel`` (views), ``sum`` / ``mean`` over axes, ``copy``,
and the NumPy functions ``np.shape``, ``np.reshape``, ``np.sum``, ``np.mean``, ``np.zeros_like``,
``np.full_like`` (``__array_function__``) and ``np.add`` / ``np.multiply`` / ... (``__array_ufunc__``).

It never leaves the device without being asked: ``np.asarray(d)`` is a TypeError (a silent copy
per op would cost more than the op), ``d.copy_to_host()`` (or ``.numpy()``) is the way out, and
``float(d)`` / ``d.item()`` read one number. Every host<->device copy of the package goes through
``numba.cuda.to_device`` (``to_device`` here) and ``copy_to_host``, so a test can count them.

Each kernel gives one GPU thread one element of the result (``launch_config``); they run in Numba's
CUDA simulator too (``NUMBA_ENABLE_CUDASIM=1``). Importing this module loads numba.cuda (~0.5 s):
``kernels`` imports it at first use (``kernels.device``), and nn tests for device data with
``kernels.is_device_array``, which does not.

>>> import numpy as np
>>> from kernels import device
>>> d = device.to_device(np.arange(6, dtype=np.float32).reshape(2, 3))
>>> (d * 2 + 1).sum(axis=0).copy_to_host()
array([ 8., 12., 16.], dtype=float32)
>>> d.clip(1, 4).copy_to_host()
array([[1., 1., 2.],
       [3., 4., 4.]], dtype=float32)
"""
from __future__ import annotations

import operator

import numpy as np

from ._checks import is_device_array
from .backend import INSTALL_CUDA, cuda_import_error

if (_why := cuda_import_error()) is not None:      # numba-cuda is the `cuda` extra; the core install is CPU only
    raise ImportError(f"kernels.device needs the cuda extra ({_why}): {INSTALL_CUDA}")

from numba import config, cuda  # noqa: E402  (numba-cuda's, checked just above)

from ._cudasim import fix_shared_arrays  # noqa: E402

fix_shared_arrays()                                 # the simulator's shared arrays, allocated once per block

__all__ = ["DeviceArray", "to_device", "to_host", "zeros", "full", "raw", "wrap", "launch_config", "on_device"]

THREADS_PER_BLOCK = 128
SIMULATED_THREADS = 32
_ADD, _SUB, _MUL, _DIV = range(4)


def launch_config(n_threads: int) -> tuple[int, int]:
    """(blocks, threads per block) for one thread per element of an ``n_threads``-element result.

    A result smaller than a block gets one block of just that many threads (legal on any GPU, and
    in the simulator, which runs each thread as a Python thread, it saves starting idle ones)."""
    per_block = min(THREADS_PER_BLOCK, max(int(n_threads), 1))
    return max(1, (n_threads + per_block - 1) // per_block), per_block


def stride_config(n_threads: int) -> tuple[int, int]:
    """The launch of a grid-stride kernel (``for k in range(cuda.grid(1), n, cuda.gridsize(1))``): on a GPU
    one thread per element, as ``launch_config``; in Numba's simulator, which runs every thread as a Python
    thread, one block of at most SIMULATED_THREADS threads, each taking every so-many-th element (the
    same work, without starting a thread per element)."""
    if config.ENABLE_CUDASIM:
        return 1, max(1, min(int(n_threads), SIMULATED_THREADS))
    return launch_config(n_threads)


def on_device(*arrays) -> bool:
    """Whether any of the (non-None) arrays is a device array (a DeviceArray or a numba one)."""
    return any(a is not None and is_device_array(a) for a in arrays)


def raw(a):
    """The numba device array behind ``a`` (a DeviceArray or a numba device array); a host array is
    copied to the device (``numba.cuda.to_device``, once)."""
    if isinstance(a, DeviceArray):
        return a.data
    return a if is_device_array(a) else cuda.to_device(np.ascontiguousarray(a))


def wrap(data) -> "DeviceArray":
    """A numba device array as a DeviceArray."""
    return DeviceArray(data)


def to_device(a) -> "DeviceArray":
    """``a`` on the device: a host array is copied there once; a device array is used as it is."""
    return a if isinstance(a, DeviceArray) else DeviceArray(raw(a))


def to_host(a):
    """``a`` as a NumPy array: a device array copied back, anything else through ``np.asarray``."""
    return a.copy_to_host() if is_device_array(a) else np.asarray(a)


def _flat(data):
    return data.reshape(max(int(np.prod(data.shape, dtype=np.int64)), 1))


def full(shape, value, dtype=np.float32) -> "DeviceArray":
    """A new device array of ``shape`` filled with ``value`` (made on the device: nothing is copied)."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    data = cuda.device_array(shape, dtype=np.dtype(dtype))
    flat = _flat(data)
    _fill_kernel[stride_config(flat.size)](flat, np.dtype(dtype).type(value))
    return DeviceArray(data)


def zeros(shape, dtype=np.float32) -> "DeviceArray":
    return full(shape, 0, dtype)


# --- kernels ---------------------------------------------------------------------------------------

@cuda.jit
def _fill_kernel(out, value):
    for k in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[k] = value


@cuda.jit
def _copy_kernel(src, out):
    k = cuda.grid(1)
    if k < out.size:
        out[k] = src[k]


@cuda.jit(device=True)
def _apply(x, y, op):
    """x (op) y; op: 0 +, 1 -, 2 *, 3 /."""
    if op == 0:
        return x + y
    if op == 1:
        return x - y
    if op == 2:
        return x * y
    return x / y


@cuda.jit
def _binary_kernel(a, b, op, out):
    """out = a (op) b elementwise, flat arrays of one size."""
    k = cuda.grid(1)
    if k < out.size:
        out[k] = _apply(a[k], b[k], op)


@cuda.jit
def _clip_kernel(a, low, high, out):
    """out = a clipped into [low, high] (NaN stays NaN, as np.clip's)."""
    for k in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        v = a[k]
        out[k] = low if v < low else (high if v > high else v)


@cuda.jit
def _scalar_kernel(a, s, op, reverse, out):
    """out = a (op) s with a number s, or s (op) a when ``reverse``."""
    k = cuda.grid(1)
    if k < out.size:
        out[k] = _apply(s, a[k], op) if reverse else _apply(a[k], s, op)


@cuda.jit
def _sum_kernel(x, r0, r1, r2, r3, out):
    """out[o] = sum of x over the axes k with r_k = 1 (x and out 4-D; out has size 1 on those axes)."""
    t = cuda.grid(1)
    d0, d1, d2, d3 = out.shape
    if t < d0 * d1 * d2 * d3:
        o3 = t % d3
        o2 = (t // d3) % d2
        o1 = (t // (d3 * d2)) % d1
        o0 = t // (d3 * d2 * d1)
        acc = x[0, 0, 0, 0] * 0
        for i0 in range(x.shape[0] if r0 else 1):
            for i1 in range(x.shape[1] if r1 else 1):
                for i2 in range(x.shape[2] if r2 else 1):
                    for i3 in range(x.shape[3] if r3 else 1):
                        acc += x[i0 if r0 else o0, i1 if r1 else o1, i2 if r2 else o2, i3 if r3 else o3]
        out[o0, o1, o2, o3] = acc


@cuda.jit
def _sum_piece_kernel(x, r0, r1, r2, r3, per_piece, partial):
    """partial[z, o] = the sum of piece z (``per_piece`` consecutive elements, in C order) of the elements
    of x that sum into output o (flat); the pieces of a long reduction run in parallel."""
    t = cuda.grid(1)
    pieces, size = partial.shape
    if t < pieces * size:
        z, o = t // size, t % size
        d1 = 1 if r1 else x.shape[1]
        d2 = 1 if r2 else x.shape[2]
        d3 = 1 if r3 else x.shape[3]
        o3, o2, o1, o0 = o % d3, (o // d3) % d2, (o // (d3 * d2)) % d1, o // (d3 * d2 * d1)
        n0, n1 = x.shape[0] if r0 else 1, x.shape[1] if r1 else 1
        n2, n3 = x.shape[2] if r2 else 1, x.shape[3] if r3 else 1
        acc = x[0, 0, 0, 0] * 0
        for r in range(z * per_piece, min(n0 * n1 * n2 * n3, (z + 1) * per_piece)):
            i3, i2, i1, i0 = r % n3, (r // n3) % n2, (r // (n3 * n2)) % n1, r // (n3 * n2 * n1)
            acc += x[i0 if r0 else o0, i1 if r1 else o1, i2 if r2 else o2, i3 if r3 else o3]
        partial[z, o] = acc


@cuda.jit
def _add_pieces_kernel(partial, out):
    """out[o] = sum over z of partial[z, o], in order."""
    o = cuda.grid(1)
    if o < out.size:
        acc = partial[0, o]
        for z in range(1, partial.shape[0]):
            acc += partial[z, o]
        out[o] = acc


#: A sum of more than LONG_SUM elements per output, with few outputs, is cut into pieces of PIECE.
LONG_SUM, PIECE = 8192, 2048


# --- the array type --------------------------------------------------------------------------------

def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"axis {a} is out of range for an array of {ndim} dimensions")
        out.append(int(a) % ndim)
    return tuple(sorted(set(out)))


def _is_number(x):
    return isinstance(x, (int, float, np.integer, np.floating)) or (
        isinstance(x, np.ndarray) and x.size == 1 and x.dtype.kind in "biuf")


class DeviceArray:
    """An array on the CUDA device (see the module docstring); ``.data`` is the numba device array."""

    __slots__ = ("data",)
    __cuda_ndarray__ = True          # kernels._checks.is_device_array says yes (the simulator's arrays too)
    __array_priority__ = 1000        # NumPy defers to us in mixed operations

    def __init__(self, data):
        self.data = data

    # --- what it is -----------------------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return np.dtype(self.data.dtype)

    @property
    def ndim(self):
        return len(self.data.shape)

    @property
    def size(self):
        return int(np.prod(self.data.shape, dtype=np.int64))

    @property
    def __cuda_array_interface__(self):  # interop with CuPy, PyTorch (a real GPU; absent in the simulator)
        return self.data.__cuda_array_interface__

    def __dlpack_device__(self):
        """(2, 0): a CUDA device (DLPack's kDLCUDA): how autodiff recognises an array of another library."""
        return (2, 0)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d DeviceArray")
        return self.shape[0]

    def __repr__(self):
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype})"

    # --- the ways out (explicit) ----------------------------------------------------------------
    def copy_to_host(self, ary=None):
        """A NumPy copy (into ``ary`` if given): the one way off the device."""
        return self.data.copy_to_host() if ary is None else self.data.copy_to_host(ary)

    numpy = copy_to_host

    def item(self):
        if self.size != 1:
            raise ValueError(f"item(): the DeviceArray has {self.size} elements, not 1")
        return self.copy_to_host().item()

    def __float__(self):
        return float(self.item())

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"a DeviceArray {self.shape} lives on the CUDA device: copy it to the host explicitly "
                        f"with .copy_to_host() (or move the model with model.to('cpu'))")

    # --- views and copies -----------------------------------------------------------------------
    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = tuple(int(s) for s in shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
            shape = tuple(self.size // max(known, 1) if s == -1 else s for s in shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise ValueError(f"cannot reshape a DeviceArray of {self.size} elements into shape {shape}")
        if shape == self.shape:
            return self
        return DeviceArray(self.data.reshape(shape))

    def ravel(self):
        return self.reshape(-1)

    def is_c_contiguous(self):
        return self.data.is_c_contiguous()

    def copy(self):
        out = cuda.device_array(self.shape, dtype=self.dtype)
        _copy_kernel[launch_config(self.size)](_flat(self.data), _flat(out))
        return DeviceArray(out)

    def clip(self, low, high):
        """A new array with every element clipped into [low, high] (numbers; NaN stays NaN)."""
        out = cuda.device_array(self.shape, dtype=self.dtype)
        kind = self.dtype.type
        _clip_kernel[stride_config(self.size)](_flat(self.data), kind(low), kind(high), _flat(out))
        return DeviceArray(out)

    # --- arithmetic -----------------------------------------------------------------------------
    def _binary(self, other, op, reverse=False):
        if isinstance(other, DeviceArray) or is_device_array(other):
            other = to_device(other)
            if other.shape != self.shape:
                raise ValueError(f"DeviceArray arithmetic needs equal shapes, got {self.shape} and {other.shape}")
            out = cuda.device_array(self.shape, dtype=np.result_type(self.dtype, other.dtype))
            _binary_kernel[launch_config(self.size)](_flat(self.data), _flat(other.data), op, _flat(out))
            return DeviceArray(out)
        if _is_number(other):
            scalar = self.dtype.type(np.asarray(other).item())
            out = cuda.device_array(self.shape, dtype=self.dtype)
            _scalar_kernel[launch_config(self.size)](_flat(self.data), scalar, op, bool(reverse), _flat(out))
            return DeviceArray(out)
        return NotImplemented

    def __add__(self, other):
        return self._binary(other, _ADD)

    def __sub__(self, other):
        return self._binary(other, _SUB)

    def __mul__(self, other):
        return self._binary(other, _MUL)

    def __truediv__(self, other):
        return self._binary(other, _DIV)

    __radd__, __rmul__ = __add__, __mul__

    def __rsub__(self, other):
        return self._binary(other, _SUB, reverse=True)

    def __rtruediv__(self, other):
        return self._binary(other, _DIV, reverse=True)

    def __neg__(self):
        return self * -1

    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **unused):
        if out is not None:
            raise TypeError("DeviceArray.sum: out= is not supported")
        axes = _axes(axis, self.ndim)
        x4 = self.data.reshape(self.shape + (1,) * (4 - self.ndim)) if self.ndim <= 4 else None
        if x4 is None:
            raise ValueError(f"DeviceArray.sum works on arrays of up to 4 dimensions, got {self.ndim}")
        reduced = [k in axes for k in range(4)]
        kept = tuple(1 if reduced[k] else x4.shape[k] for k in range(4))
        result = cuda.device_array(kept, dtype=self.dtype)
        outputs, count = int(np.prod(kept)), self.size // max(int(np.prod(kept)), 1)
        if count > LONG_SUM and outputs < LONG_SUM:      # few long sums (a bias gradient): in pieces, then added
            pieces = -(-count // PIECE)
            partial = cuda.device_array((pieces, outputs), dtype=self.dtype)
            _sum_piece_kernel[launch_config(partial.size)](x4, *[bool(r) for r in reduced], PIECE, partial)
            _add_pieces_kernel[launch_config(outputs)](partial, result.reshape(outputs))
        else:
            _sum_kernel[launch_config(outputs)](x4, *[bool(r) for r in reduced], result)
        shape = tuple(1 if k in axes else n for k, n in enumerate(self.shape)) if keepdims else \
            tuple(n for k, n in enumerate(self.shape) if k not in axes)
        return DeviceArray(result).reshape(shape)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **unused):
        axes = _axes(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes], dtype=np.int64))
        return self.sum(axis=axis, keepdims=keepdims) / max(count, 1)

    # --- NumPy's functions and ufuncs -----------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        binary = _UFUNCS.get(ufunc)
        for x in inputs:
            if isinstance(x, np.ndarray) and x.size != 1:
                raise TypeError(f"np.{ufunc.__name__} of a DeviceArray and a host array of shape {x.shape}: move the "
                                f"host array to the device first (kernels.device.to_device)")
        if method != "__call__" or kwargs or binary is None:
            raise TypeError(f"np.{ufunc.__name__} has no device implementation for a DeviceArray; copy to the "
                            f"host with .copy_to_host() (or use model.to('cpu'))")
        return binary(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        implementation = _FUNCTIONS.get(func)
        if implementation is None:
            raise TypeError(f"np.{func.__name__} has no device implementation for a DeviceArray; copy to the "
                            f"host with .copy_to_host() (or use model.to('cpu'))")
        return implementation(*args, **kwargs)


def _like(a, dtype=None, shape=None, value=0):
    return full(a.shape if shape is None else shape, value, a.dtype if dtype is None else dtype)


_UFUNCS = {np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
           np.true_divide: operator.truediv, np.negative: operator.neg}
_FUNCTIONS = {
    np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: lambda a, axis=None: a.size,
    np.reshape: lambda a, shape=None, order="C", **k: a.reshape(k.get("newshape", shape)),
    np.ravel: lambda a, order="C": a.ravel(), np.copy: lambda a, **k: a.copy(),
    np.sum: lambda a, axis=None, dtype=None, out=None, keepdims=False, **k: a.sum(axis, dtype, out, keepdims),
    np.clip: lambda a, a_min=None, a_max=None, out=None, **k: a.clip(k.get("min", a_min), k.get("max", a_max)),
    np.mean: lambda a, axis=None, dtype=None, out=None, keepdims=False, **k: a.mean(axis, dtype, out, keepdims),
    np.zeros_like: lambda a, dtype=None, order="K", subok=True, shape=None, **k: _like(a, dtype, shape, 0),
    np.ones_like: lambda a, dtype=None, order="K", subok=True, shape=None, **k: _like(a, dtype, shape, 1),
    np.full_like: lambda a, fill_value, dtype=None, order="K", subok=True, shape=None, **k:
        _like(a, dtype, shape, fill_value),
}
