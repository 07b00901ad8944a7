"""The functional API: wrap inputs as leaves, call the function (recording its graph), sweep.

``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``hvp``, ``derivative``
and ``gradients`` all do the same three steps. Given plain numbers or arrays they return plain
NumPy values (a Python float for a Python-scalar argument). Called inside another
differentiation (given tracked Tensors, or closing over them) they record their own sweep and
return Tensors, so they nest: ``grad(grad(f))``, ``jvp`` of ``grad``, and so on. Each call
differentiates only with respect to its own arguments, so nesting never confuses perturbations.
"""
from __future__ import annotations

import numpy as np

from .batching import examples_as_array, forget_level, new_level, unit_vectors
from .ops import identity, reshape, stack, transpose
from .sweep import forward_sweep, reverse_sweep, toposort
from .tensor import Batched, Tensor


def check_function(f, fname):
    """``f`` must be callable: ``grad(3)`` failed later with "'int' object is not callable"."""
    if not callable(f):
        raise TypeError(f"{fname}: f must be a function (of Tensors or numbers), got {f!r} ({type(f).__name__})")


def _float_array(x, what):
    if type(x) is Batched:     # one example's value under vmap: stays batched
        return x if x.dtype.kind in "fc" else Batched(x.data.astype(np.float64), x.bdim, x.level)
    arr = np.asarray(x)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{what} must be a number or a numeric array; got dtype {arr.dtype}")
    return arr.astype(np.float64) if arr.dtype.kind in "biu" else arr


def _argnums(argnums, nargs, fname):
    single = isinstance(argnums, (int, np.integer))
    nums = (int(argnums),) if single else tuple(int(a) for a in argnums)
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(f"{fname}: argnums={argnums!r} names argument {a}, but f was called with "
                             f"{nargs} positional argument(s): there is nothing to differentiate with respect to")
    return single, tuple(a % nargs for a in nums)


class _Trace:
    """One differentiation: leaves standing for the chosen arguments, and f's recorded graph."""

    def __init__(self, f, args, argnums, kwargs, fname):
        self.fname = fname
        args = list(args)
        self.single, self.argnums = _argnums(argnums, len(args), fname)
        self.nested = False      # an outer differentiation tracks an input: record our sweeps
        self.tensor_in = False   # a Tensor was given: give Tensors back
        self.plain_scalar = []   # argument i was a Python number: give back a Python float
        self.leaves = []
        for i in self.argnums:
            a = args[i]
            if isinstance(a, Tensor):
                self.tensor_in = True
                if a.requires_grad:  # a fresh node stands for the argument, linked to the outer graph
                    w = identity(a)
                    self.nested = True
                else:
                    w = Tensor._make(_float_array(a._value, f"{fname}: argument {i}"), requires_grad=True,
                                     name=a.name)
                self.plain_scalar.append(False)
            else:
                w = Tensor._make(_float_array(a, f"{fname}: argument {i}"), requires_grad=True)
                self.plain_scalar.append(isinstance(a, (int, float)) and not isinstance(a, bool))
            self.leaves.append(w)
            args[i] = w
        out = f(*args, **kwargs)
        self.out = out if isinstance(out, Tensor) else Tensor._make(_float_array(out, f"{fname}: f's output"))
        self.leaf_ids = frozenset(id(w) for w in self.leaves)
        self.order, self.ids = toposort([self.out], stop=self.leaf_ids)
        if not self.nested:  # f closes over a Tensor that an outer differentiation tracks
            self.nested = any(n.op is None and id(n) not in self.leaf_ids for n in self.order)
        self.create_graph = self.nested

    def release(self):
        """The argument leaves become constants: seen from outside, this call's inputs are fixed."""
        for w in self.leaves:
            if w.op is None:
                w.requires_grad = False

    def reverse(self, seed, create_graph=None):
        """Adjoints of the argument leaves (zeros where the output does not depend on one)."""
        cg = self.create_graph if create_graph is None else create_graph
        adj = reverse_sweep(self.order, self.ids, {id(self.out): seed}, create_graph=cg,
                            keep=self.leaf_ids, stop=self.leaf_ids)
        return [adj.get(id(w), _zeros_like(w)) for w in self.leaves]

    def forward(self, tangents, create_graph=None):
        """The tangent of the output for the given tangents of the argument leaves."""
        cg = self.create_graph if create_graph is None else create_graph
        seeds = {id(w): t for w, t in zip(self.leaves, tangents)}
        tan = forward_sweep(self.order, seeds, create_graph=cg)
        return tan.get(id(self.out), _zeros_like(self.out))

    def value(self, v):
        """A result for the caller: a Tensor when nested, else a NumPy value (float for scalars)."""
        return _to_user(v, self.nested or self.tensor_in, all(self.plain_scalar))

    def result(self, v, k):
        return _to_user(v, self.nested or self.tensor_in, self.plain_scalar[k])


def _zeros_like(t):
    return np.zeros(t.shape, dtype=t.dtype)


def _to_user(v, as_tensor, python_scalar):
    if as_tensor:
        return v if isinstance(v, Tensor) else Tensor._make(v if type(v) is Batched else np.array(v))
    if isinstance(v, Tensor):
        v = v._value
    if type(v) is Batched:     # under vmap, which unstacks it
        return v
    v = np.asarray(v)
    if v.ndim == 0:
        return v.item() if python_scalar and v.dtype.kind == "f" else v[()]
    return v


def _check_scalar(out, fname):
    if out.size != 1:
        raise ValueError(f"{fname}: f must return a scalar (one element); it returned shape {out.shape}. "
                         f"For a vector output use jacobian, vjp or jvp.")


def _seed_like(value, reference, what):
    """A seed (tangent or cotangent) with the reference's shape and dtype, or a clear error."""
    if isinstance(value, Tensor):
        if value.shape != reference.shape:
            raise ValueError(f"{what} has shape {value.shape}, expected {reference.shape}")
        return value
    arr = np.asarray(value, dtype=reference.dtype)
    if arr.shape != reference.shape:
        raise ValueError(f"{what} has shape {arr.shape}, expected {reference.shape}")
    return arr


def value_and_grad(f, argnums=0):
    """``f`` and its gradient in one reverse sweep: returns ``g(*args) -> (f(*args), df/dargs)``.

    ``f`` must return a scalar. ``argnums`` picks the argument (an int) or arguments (a tuple, then
    the gradients come as a tuple). Like ``jax.value_and_grad``.

    >>> from autodiff import value_and_grad, sin
    >>> value_and_grad(lambda x: x * sin(x))(0.0)
    (0.0, 0.0)
    """
    check_function(f, "value_and_grad")

    def value_and_grad_f(*args, **kwargs):
        trace = _Trace(f, args, argnums, kwargs, "value_and_grad")
        try:
            _check_scalar(trace.out, "value_and_grad")
            grads = trace.reverse(np.ones(trace.out.shape, dtype=trace.out.dtype))
        finally:
            trace.release()
        grads = tuple(trace.result(g, k) for k, g in enumerate(grads))
        return trace.value(trace.out), grads[0] if trace.single else grads

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return value_and_grad_f


def grad(f, argnums=0):
    """The gradient of a scalar function by reverse mode: ``grad(f)(x)`` is df/dx at x.

    >>> from autodiff import grad, sin, cos
    >>> grad(lambda x: sin(x) ** 2)(0.5) == 2 * float(sin(0.5) * cos(0.5))
    True
    """
    check_function(f, "grad")
    vg = value_and_grad(f, argnums)

    def grad_f(*args, **kwargs):
        return vg(*args, **kwargs)[1]

    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return grad_f


def vjp(f, *primals):
    """Reverse mode with a given cotangent: returns ``(f(*primals), vjp_fn)``.

    ``vjp_fn(cotangent)`` returns a tuple with one cotangent per primal: ``u^T J`` for each
    argument. The graph is recorded once; ``vjp_fn`` can be called many times. Like ``jax.vjp``.

    >>> import numpy as np
    >>> from autodiff import vjp
    >>> out, vjp_fn = vjp(lambda x: x * x, np.array([1.0, 2.0]))
    >>> vjp_fn(np.array([1.0, 10.0]))
    (array([ 2., 40.]),)
    """
    check_function(f, "vjp")
    trace = _Trace(f, primals, tuple(range(len(primals))), {}, "vjp")
    trace.release()

    def vjp_fn(cotangent):
        seed = _seed_like(cotangent, trace.out, "vjp: the cotangent")
        grads = trace.reverse(seed, create_graph=trace.create_graph or isinstance(seed, Tensor))
        return tuple(trace.result(g, k) for k, g in enumerate(grads))

    return trace.value(trace.out), vjp_fn


def jvp(f, primals, tangents):
    """Forward mode: returns ``(f(*primals), J @ tangents)``, tangents pushed by the jvp rules.

    ``primals`` and ``tangents`` are tuples of the same length and shapes. Like ``jax.jvp``.

    >>> from autodiff import jvp, exp
    >>> jvp(lambda x: exp(2 * x), (0.0,), (1.0,))
    (1.0, 2.0)
    """
    check_function(f, "jvp")
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primal(s) but {len(tangents)} tangent(s)")
    trace = _Trace(f, primals, tuple(range(len(primals))), {}, "jvp")
    try:
        seeds = [_seed_like(t, w, f"jvp: tangents[{k}]") for k, (t, w) in enumerate(zip(tangents, trace.leaves))]
        tangent = trace.forward(seeds, create_graph=trace.create_graph or any(isinstance(s, Tensor) for s in seeds))
    finally:
        trace.release()
    return trace.value(trace.out), trace.value(tangent)


def _basis(shape, dtype):
    """The unit vectors e_k of an array space, as arrays of that shape."""
    n = int(np.prod(shape))
    for k in range(n):
        e = np.zeros(n, dtype=dtype)
        e[k] = 1
        yield e.reshape(shape)


def _assemble(pieces, lead_shape, trail_shape, as_tensor):
    """Stack the per-sweep results into an array of shape lead_shape + trail_shape."""
    if as_tensor:
        pieces = [p if isinstance(p, Tensor) else Tensor._make(np.asarray(p)) for p in pieces]
        return reshape(stack(pieces), tuple(lead_shape) + tuple(trail_shape))
    return np.stack([np.asarray(p) for p in pieces]).reshape(tuple(lead_shape) + tuple(trail_shape))


def jacobian(f, argnums=0, mode="reverse"):
    """The Jacobian of ``f`` with respect to one argument: shape ``out.shape + in.shape``.

    ``argnums`` picks the argument (an int) or arguments (a tuple: then a tuple of Jacobians, one per
    argument, as ``jax.jacobian``). ``mode="reverse"`` runs one reverse sweep per output element
    (cheap for few outputs; each sweep gives a row of every argument's Jacobian); ``mode="forward"``
    one forward sweep per input element (cheap for few inputs). The graph is recorded once and swept
    many times.

    >>> import numpy as np
    >>> from autodiff import jacobian
    >>> jacobian(lambda x: x ** 2, mode="forward")(np.array([1.0, 3.0]))
    array([[2., 0.],
           [0., 6.]])
    >>> jacobian(lambda x, y: x * y, argnums=(0, 1))(np.array([1.0, 3.0]), 2.0)
    (array([[2., 0.],
           [0., 2.]]), array([1., 3.]))
    """
    check_function(f, "jacobian")
    if mode not in ("reverse", "forward"):
        raise ValueError(f"jacobian: mode must be 'reverse' or 'forward', got {mode!r}")
    if not isinstance(argnums, (int, np.integer)) and not (
            isinstance(argnums, tuple) and argnums and all(isinstance(a, (int, np.integer)) for a in argnums)):
        raise TypeError(f"jacobian: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")

    def jacobian_f(*args, **kwargs):
        trace = _Trace(f, args, argnums, kwargs, "jacobian")
        try:
            jacs = _jacobians(trace, mode)
        finally:
            trace.release()
        jacs = tuple(trace.result(jac, k) for k, jac in enumerate(jacs))
        return jacs[0] if trace.single else jacs

    return jacobian_f


def _jacobians(trace, mode):
    """The Jacobian of f's (one) output with respect to each argument leaf: out.shape + in.shape.

    As ``jax.jacrev`` maps a vjp over the rows (and ``jax.jacfwd`` a jvp over the columns): the seeds are
    the unit vectors as one batched value, so one sweep gives every row (column)."""
    y = trace.out
    level = new_level()
    try:
        if mode == "reverse":
            rows = trace.reverse(unit_vectors(y.shape, y.dtype, level))
            return [examples_as_array(r, level, y.shape, x.shape, trace.nested) for r, x in zip(rows, trace.leaves)]
        jacs = []
        for k, x in enumerate(trace.leaves):
            seeds = [_zeros_like(w) for w in trace.leaves]
            seeds[k] = unit_vectors(x.shape, x.dtype, level)
            cols = examples_as_array(trace.forward(seeds), level, x.shape, y.shape, trace.nested)
            jacs.append(_move_leading(cols, x.ndim, y.ndim))
        return jacs
    finally:
        forget_level(level)


def _move_leading(jac, nx, ny):
    """Reorder axes from in.shape + out.shape to out.shape + in.shape."""
    axes = tuple(range(nx, nx + ny)) + tuple(range(nx))
    if isinstance(jac, Tensor):
        return transpose(jac, axes=axes)
    return np.transpose(jac, axes)


def _gradient_graph(trace):
    """Reverse sweep with create_graph: the gradient as a graph, and that graph's sweep order."""
    _check_scalar(trace.out, trace.fname)
    g = trace.reverse(np.ones(trace.out.shape, dtype=trace.out.dtype), create_graph=True)[0]
    if not isinstance(g, Tensor):
        g = Tensor._make(np.asarray(g))
    order, ids = toposort([g], stop=trace.leaf_ids)
    return g, order


def hessian(f, argnums=0):
    """The Hessian of a scalar ``f`` by forward-over-reverse: shape ``in.shape + in.shape``.

    One reverse sweep records the gradient as a graph; one forward sweep over that graph per input
    element gives a column of the Hessian.

    >>> from autodiff import hessian
    >>> hessian(lambda x: x[0] ** 2 * x[1])([1.0, 2.0])
    array([[4., 2.],
           [2., 0.]])
    """
    check_function(f, "hessian")
    if not isinstance(argnums, (int, np.integer)):
        raise TypeError(f"hessian: argnums must be one int, got {argnums!r}")

    def hessian_f(*args, **kwargs):
        trace = _Trace(f, args, argnums, kwargs, "hessian")
        try:
            x = trace.leaves[0]
            g, order = _gradient_graph(trace)
            cols = []
            for e in _basis(x.shape, x.dtype):
                tan = forward_sweep(order, {id(x): e}, create_graph=trace.nested)
                cols.append(tan.get(id(g), _zeros_like(g)))
            hess = _assemble(cols, x.shape, x.shape, trace.nested)
        finally:
            trace.release()
        return trace.result(hess, 0)

    return hessian_f


def hvp(f, x, v):
    """The Hessian-vector product H(x) v of a scalar ``f`` of one array, without forming H.

    Forward-over-reverse: one reverse sweep records the gradient, one forward sweep pushes ``v``.

    >>> import numpy as np
    >>> from autodiff import hvp
    >>> hvp(lambda x: (x ** 3).sum(), np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    array([ 6., 12.])
    """
    check_function(f, "hvp")
    trace = _Trace(f, (x,), 0, {}, "hvp")
    try:
        leaf = trace.leaves[0]
        tangent = _seed_like(v, leaf, "hvp: v")
        g, order = _gradient_graph(trace)
        tan = forward_sweep(order, {id(leaf): tangent}, create_graph=trace.nested or isinstance(tangent, Tensor))
        out = tan.get(id(g), _zeros_like(g))
    finally:
        trace.release()
    return trace.result(out, 0)


def derivative(f, order=1):
    """The ``order``-th derivative of a scalar function f: R -> R, by repeated forward mode.

    Each step is a forward sweep with ``create_graph=True`` over the graph of the previous
    derivative, so ``derivative(f, 10)`` is the forward mode applied ten times. Applied to an array,
    ``f`` must act elementwise; the result is then the elementwise derivative.

    >>> from autodiff import derivative, exp, sin
    >>> round(derivative(lambda x: exp(sin(x)), order=2)(0.0), 12)
    1.0
    """
    check_function(f, "derivative")
    if not isinstance(order, (int, np.integer)) or order < 0:
        raise ValueError(f"derivative: order must be an integer >= 0, got {order!r}")

    def derivative_f(x, *args, **kwargs):
        trace = _Trace(f, (x,) + args, 0, kwargs, "derivative")
        try:
            leaf = trace.leaves[0]
            current = trace.out
            ones = np.ones(leaf.shape, dtype=leaf.dtype)
            for k in range(order):
                last = k == order - 1
                if not isinstance(current, Tensor) or not current.requires_grad:
                    current = np.zeros(np.shape(current), dtype=leaf.dtype)
                    break
                sweep, _ = toposort([current], stop=trace.leaf_ids)
                tan = forward_sweep(sweep, {id(leaf): ones}, create_graph=trace.nested or not last)
                current = tan.get(id(current), np.zeros(current.shape, dtype=current.dtype))
        finally:
            trace.release()
        return trace.result(current, 0)

    return derivative_f


def gradients(y, wrt, seed=None, *, create_graph=False):
    """Adjoints dy/dv of an already recorded ``y`` for each Tensor in ``wrt`` (leaves or not).

    Like ``torch.autograd.grad``: nothing is written to ``.grad``. Intermediate nodes may be asked
    for (eq. 5.39's dy/da, dy/de, ...). A Tensor that ``y`` does not depend on is an error.

    >>> from autodiff import Tensor, gradients, sin
    >>> x = Tensor(0.0, requires_grad=True)
    >>> a = sin(x)
    >>> y = a * a + x
    >>> [float(g) for g in gradients(y, [a, x])]
    [0.0, 1.0]
    """
    if not isinstance(y, Tensor) or not y.requires_grad:
        raise ValueError("gradients: y is not a recorded result (it does not depend on a Tensor with requires_grad=True)")
    wrt = list(wrt)
    if seed is None:
        _check_scalar(y, "gradients")
        seed = np.ones(y.shape, dtype=y.dtype)
    seed = _seed_like(seed, y, "gradients: seed")
    order, ids = toposort([y])
    for k, w in enumerate(wrt):
        if not isinstance(w, Tensor) or id(w) not in ids:
            name = f" (named {w.name!r})" if isinstance(w, Tensor) and w.name else ""
            raise ValueError(f"gradients: wrt[{k}]{name} is not an input of the graph of y: "
                             f"y does not depend on it through tracked operations")
    keep = {id(w) for w in wrt}
    adj = reverse_sweep(order, ids, {id(y): seed}, create_graph=create_graph or isinstance(seed, Tensor), keep=keep)
    return tuple(adj.get(id(w), _zeros_like(w)) for w in wrt)
