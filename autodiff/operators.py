"""Python's syntax for Tensors: every operator and method, and ``backward()``, in one visible place.

``x + y`` is the primitive ``add(x, y)``, ``x @ w`` is ``matmul``, ``x[i]`` is ``getitem``, ``x ** 2`` is
``pow_const`` (a number exponent) or ``pow`` (a Tensor exponent), ``y.backward()`` is the reverse sweep
of :mod:`autodiff.sweep`. The class below lists them; ``bind`` copies them onto
:class:`autodiff.tensor.Tensor` once, when ``autodiff`` is imported.

Why here and not in the Tensor class itself: the Tensor is the bottom rung of the engine (the node
and its recording) and the ops and sweeps are declared on top of it, so the Tensor cannot import
them without an import cycle. This module sits above both and joins them, as JAX's
``array_methods`` does for its arrays. For an IDE or a type checker, Tensor derives from this class
(an import under ``TYPE_CHECKING`` in autodiff/tensor.py), so they show each member where it is
written. Comparisons (``x > 0``) are not differentiable; they stay in the Tensor class and return
plain boolean arrays.
"""
from __future__ import annotations

import numpy as np

from . import interop, ops
from .sweep import RemovableHandle, accumulate_into_grads, add_hook
from .primitives import REGISTRY
from .tensor import Tensor, apply

_GETITEM, _ADD, _SUB, _MUL, _DIV = (REGISTRY[name] for name in ("getitem", "add", "sub", "mul", "div"))
_NO_PARAMS = {}
_BASIC = (int, slice)      # index items that normalize_index leaves as they are


class TensorSyntax:
    """The operators and methods that :func:`bind` gives the Tensor class (each one op or sweep)."""

    # --- arithmetic: elementwise with NumPy broadcasting -----------------------------------------
    # The primitives add, sub, mul and div, applied directly: these run for every small op of a user's
    # loop, so they skip the op function's check of its arguments (two Tensors or numbers, always).
    def __add__(self, other) -> Tensor:
        return apply(_ADD, (self, other), _NO_PARAMS)

    def __radd__(self, other) -> Tensor:
        return apply(_ADD, (other, self), _NO_PARAMS)

    def __sub__(self, other) -> Tensor:
        return apply(_SUB, (self, other), _NO_PARAMS)

    def __rsub__(self, other) -> Tensor:
        return apply(_SUB, (other, self), _NO_PARAMS)

    def __mul__(self, other) -> Tensor:
        return apply(_MUL, (self, other), _NO_PARAMS)

    def __rmul__(self, other) -> Tensor:
        return apply(_MUL, (other, self), _NO_PARAMS)

    def __truediv__(self, other) -> Tensor:
        return apply(_DIV, (self, other), _NO_PARAMS)

    def __rtruediv__(self, other) -> Tensor:
        return apply(_DIV, (other, self), _NO_PARAMS)

    def __matmul__(self, other) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other) -> Tensor:
        return ops.matmul(other, self)

    def __pow__(self, exponent) -> Tensor:
        """``x ** 2`` (a number: pow_const, as eq. 5.38's b = a^2) or ``x ** y`` (a Tensor: pow)."""
        if not isinstance(exponent, Tensor) and np.ndim(exponent) == 0:
            return ops.pow_const(self, p=exponent.item() if isinstance(exponent, np.generic) else exponent)
        return ops.pow(self, exponent)

    def __rpow__(self, base) -> Tensor:
        return ops.pow(base, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.abs(self)

    def __getitem__(self, index) -> Tensor:
        """``x[index]``: NumPy indexing, basic and advanced (Tensors in the index are constants)."""
        kind = index.__class__
        if kind is int or kind is slice or kind is tuple and all(i.__class__ in _BASIC for i in index):
            return apply(_GETITEM, (self,), {"index": index if kind is tuple else (index,)})   # as normalized
        return ops.getitem(self, index=ops.normalize_index(index))

    def __setitem__(self, index, value):
        """Refused: writing into a Tensor would change a value the graph saved for its rules. The message
        spells the functional update with the index written (``a[0] = t``: ``a = a.at[0].set(t)``)."""
        at = _index_text(index)
        raise TypeError(f"a Tensor does not support item assignment (a[{at}] = t would change a value the graph "
                        f"may have saved, and gradients computed from it would be wrong); write "
                        f"a = a.at[{at}].set(t) (or .add(t)), which records the update so that gradients flow "
                        f"through a and t")

    @property
    def at(self) -> ops.IndexUpdate:
        """``x.at[index].set(v)`` / ``.add(v)`` / ``.get()``: a new Tensor with x updated at index (JAX's)."""
        return ops.IndexUpdate(self)

    # --- NumPy's functions and ufuncs on Tensors run the engine's ops (autodiff.interop) --------
    __array_ufunc__ = interop.array_ufunc
    __array_function__ = interop.array_function

    # --- methods: the ops of the same name ------------------------------------------------------
    def sum(self, axis=None, keepdims=False) -> Tensor:
        return ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False) -> Tensor:
        return ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False) -> Tensor:
        return ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False) -> Tensor:
        return ops.min(self, axis=axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False) -> Tensor:
        return ops.prod(self, axis=axis, keepdims=keepdims)

    def cumsum(self, axis=None) -> Tensor:
        return ops.cumsum(self, axis=axis)

    def cumprod(self, axis=None) -> Tensor:
        return ops.cumprod(self, axis=axis)

    def var(self, axis=None, ddof=0, keepdims=False) -> Tensor:
        return ops.var(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False) -> Tensor:
        return ops.std(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def dot(self, other) -> Tensor:
        return ops.dot(self, other)

    def trace(self, offset=0, axis1=0, axis2=1) -> Tensor:
        return ops.trace(self, offset, axis1, axis2)

    def diagonal(self, offset=0, axis1=0, axis2=1) -> Tensor:
        return ops.diagonal(self, offset, axis1, axis2)

    def flatten(self) -> Tensor:
        """The elements in one dimension (a reshape: no copy is needed, values are never written)."""
        return ops.ravel(self)

    def ravel(self) -> Tensor:
        return ops.ravel(self)

    def squeeze(self, axis=None) -> Tensor:
        return ops.squeeze(self, axis)

    def swapaxes(self, axis1, axis2) -> Tensor:
        return ops.swapaxes(self, axis1, axis2)

    def astype(self, dtype) -> Tensor:
        """``x`` converted to ``dtype`` (differentiable between float dtypes; see autodiff.astype)."""
        return ops.astype(self, dtype)

    def logsumexp(self, axis=None, keepdims=False) -> Tensor:
        return ops.logsumexp(self, axis=axis, keepdims=keepdims)

    def softmax(self, axis=-1) -> Tensor:
        return ops.softmax(self, axis=axis)

    def log_softmax(self, axis=-1) -> Tensor:
        return ops.log_softmax(self, axis=axis)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sin(self) -> Tensor:
        return ops.sin(self)

    def cos(self) -> Tensor:
        return ops.cos(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def clip(self, a_min=None, a_max=None) -> Tensor:
        return ops.clip(self, a_min=a_min, a_max=a_max)

    def reshape(self, *shape) -> Tensor:
        """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
        return ops.reshape(self, shape=shape[0] if len(shape) == 1 and not np.isscalar(shape[0]) else shape)

    def transpose(self, *axes) -> Tensor:
        """``x.transpose()``, ``x.transpose(1, 0)`` or ``x.transpose((1, 0))``."""
        if len(axes) == 1 and not np.isscalar(axes[0]):
            axes = axes[0]
        return ops.transpose(self, axes=tuple(axes) if axes else None)

    @property
    def T(self) -> Tensor:
        """The transpose (axes reversed)."""
        return ops.transpose(self)

    # --- reverse mode -----------------------------------------------------------------------------
    def backward(self, gradient=None, create_graph: bool = False) -> None:
        """Reverse mode: accumulate d(self)/d(leaf) into ``.grad`` of every leaf with requires_grad.

        ``gradient`` is the seed (the adjoint of this Tensor), required when it is not a scalar.
        Gradients *accumulate*: calling ``backward()`` twice adds the gradient twice, as in PyTorch
        (the graph is kept, so a second call is allowed). Call ``x.zero_grad()`` (or an
        optimiser's ``zero_grad()``) between steps. With ``create_graph=True`` the sweep itself is
        recorded and ``.grad`` holds a Tensor that can be differentiated again; otherwise ``.grad``
        is a NumPy array. Non-leaf Tensors keep their adjoint only after ``retain_grad()``.
        """
        accumulate_into_grads(self, gradient, create_graph)

    def register_hook(self, hook) -> RemovableHandle:
        """Call ``hook(grad)`` whenever a reverse sweep completes this Tensor's gradient (PyTorch's).

        ``grad`` is the adjoint as the sweep holds it (a NumPy array; a Tensor under
        ``create_graph=True``); the hook may return a replacement of the same shape (None keeps it).
        On a leaf it runs before the gradient is added to ``.grad``; on a non-leaf it gets the complete
        adjoint (every consumer's contribution summed) before it flows into the inputs, so what it
        returns is what flows further back. Several hooks run in the order registered. Every reverse
        sweep runs them: ``backward()``, ``grad`` and the functional API (of Tensors recorded inside
        f, as ``torch.autograd.grad`` does), gradcheck, the trace tables, the drawings and the player;
        the forward sweep (``jvp``) does not, as in PyTorch. Returns a handle: ``handle.remove()``.

        >>> from autodiff import Tensor
        >>> x = Tensor(3.0, requires_grad=True)
        >>> h = x * 2
        >>> handle = h.register_hook(lambda g: g * 10)     # the adjoint of h, times 10
        >>> (h * h + x).backward()                          # dy/dh = 2h = 12, dy/dx = 12*2 + 1
        >>> x.grad                                          # 120*2 + 1: the path through h is scaled
        array(241.)
        >>> handle.remove()
        """
        return add_hook(self, hook)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return this Tensor (PyTorch's): a leaf starts (or stops)
        being tracked. Refused for a non-floating dtype, and for a recorded result turned off (its
        gradient comes from its inputs: ``t.detach()`` gives an untracked leaf).

        >>> from autodiff import Tensor
        >>> w = Tensor([1.0, 2.0]).requires_grad_()
        >>> (w * w).sum().backward(); w.grad
        array([2., 4.])
        """
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"requires_grad_(): requires_grad must be True or False, got {requires_grad!r}")
        if requires_grad and self.dtype.kind not in "fc":
            raise RuntimeError(f"requires_grad_(): requires_grad=True needs a floating-point dtype, got {self.dtype} "
                               f"(convert first: t.astype(np.float64))")
        if not requires_grad and self.op is not None:
            raise RuntimeError("requires_grad_(): requires_grad=False is refused on a recorded result (not a leaf): "
                               "its gradient comes from its inputs; use t.detach() for an untracked copy")
        self.requires_grad = bool(requires_grad)
        return self


def _index_text(index) -> str:
    """An index as it is written between brackets (``0``, ``1:3``, ``..., 0``), ``i`` for an array."""
    if isinstance(index, tuple):
        return ", ".join(map(_index_text, index)) if index else "()"
    if index is Ellipsis or index is None:
        return "..." if index is Ellipsis else "None"
    if isinstance(index, slice):
        ends = ["" if e is None else _index_text(e) for e in (index.start, index.stop)]
        return ":".join(ends + ([] if index.step is None else [_index_text(index.step)]))
    if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
        return str(int(index))
    return "i"


_NOT_SYNTAX = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__firstlineno__",
               "__static_attributes__"}


def bind(cls=Tensor, syntax=TensorSyntax) -> None:
    """Give ``cls`` every operator and method of ``syntax`` (done once, by ``import autodiff``). Static
    tools see the same members through Tensor's ``TYPE_CHECKING`` base (autodiff/tensor.py)."""
    for name, member in vars(syntax).items():
        if name not in _NOT_SYNTAX:
            setattr(cls, name, member)


bind()
