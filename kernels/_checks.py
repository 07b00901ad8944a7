"""Array checks at the kernels' entry points, run on every call: clear errors naming the argument,
before any work. (The options a call takes besides its arrays are checked once, when they are built:
``kernels.options``.)

``is_device_array`` is the package's one host/device test. Host arrays are converted once to a
C-contiguous array of a supported dtype (so that the compiled kernels see one layout and never
recompile per layout); numba CUDA device arrays are checked in place and never copied to the host.
"""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def is_device_array(x) -> bool:
    """A numba CUDA device array (or another object speaking __cuda_array_interface__).

    Numba's CUDA simulator stands a FakeCUDAArray in for device arrays: it has no
    ``__cuda_array_interface__`` (numba-cuda 0.30) but sets ``__cuda_ndarray__``, so both are looked for.
    """
    if isinstance(x, np.ndarray):
        return False
    return hasattr(x, "__cuda_array_interface__") or bool(getattr(x, "__cuda_ndarray__", False))


def host_only(backend: str, **arrays) -> None:
    """Device arrays are only for backend "cuda": elsewhere say which argument is one."""
    if backend == "cuda":
        return
    for name, a in arrays.items():
        if a is not None and is_device_array(a):
            raise TypeError(f"{name} is a CUDA device array, but backend {backend!r} needs NumPy arrays: "
                            f"pass {name}.copy_to_host(), or use backend='cuda'")


def float_array(x, name: str, ndim: int | None = None, dtype=None, like: str = "the input"):
    """``x`` as a C-contiguous float32/float64 array (device arrays pass through after checks).

    ``dtype`` (if given) is the dtype it must have: that of ``like``, the array it goes with.
    """
    if (x.__class__ is np.ndarray and x.dtype in FLOAT_DTYPES and (ndim is None or x.ndim == ndim)
            and (dtype is None or x.dtype == dtype) and x.flags.c_contiguous):
        return x                       # the common case, every check passed in one test
    if is_device_array(x):
        arr_dtype, shape = np.dtype(x.dtype), tuple(x.shape)
    else:
        if isinstance(x, (list, tuple)) or (np.isscalar(x) and not isinstance(x, (str, bytes))):
            try:
                x = np.asarray(x, dtype=np.float32 if dtype is None else dtype)
            except (TypeError, ValueError) as exc:      # NumPy's words, with the argument named
                raise type(exc)(f"{name} must be numbers (an array, a list or a number): {exc}") from None
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array or a CUDA device array, got {type(x).__name__}")
        arr_dtype, shape = x.dtype, x.shape
    if arr_dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {arr_dtype}")
    if dtype is not None and arr_dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)} (like {like}), got {arr_dtype}")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {shape}")
    if not is_device_array(x) and not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    return x


def same_shape(a, a_name: str, b, b_name: str) -> None:
    """``a`` must have ``b``'s shape (arrays that go together element by element)."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{a_name} must have {b_name}'s shape {tuple(b.shape)}, got {tuple(a.shape)}")


def shape4(shape, name: str):
    """A 4-tuple of positive ints (N, C, H, W)."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{name} must be a shape (N, C, H, W), got {shape!r}") from None
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"{name} must be 4 positive ints (N, C, H, W), got {shape}")
    return shape


def argmax_range_error(argmax, input_shape):
    """Max pooling's backward: the error for an argmax with an index outside its plane (raised by the
    entry point's check of a host argmax, and by the CPU kernel, which finds such an index while it reads
    argmax instead of in a pass of its own)."""
    plane = input_shape[2] * input_shape[3]
    return ValueError(f"argmax must hold flat indices into an input plane of {input_shape[2]}x{input_shape[3]}"
                      f" (0 .. {plane - 1}), got values from {argmax.min()} to {argmax.max()}")
