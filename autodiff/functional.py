"""The functional API: wrap inputs as leaves, call the function (recording its graph), sweep.

``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``hvp``, ``derivative``
and ``gradients`` all do the same three steps. Given plain numbers or arrays they return plain
NumPy values (a Python float for a Python-scalar argument). An argument may be a pytree (a dict of
parameters, a list of arrays, a namedtuple, a registered dataclass: ``autodiff.pytree``): each of its
leaves is differentiated and the result comes back in its structure, as in JAX. A list or tuple of
plain numbers (``[1.0, 2.0]``, nested too) is one array, as before pytrees. Called inside another
differentiation (given tracked Tensors, or closing over them) they record their own sweep and
return Tensors, so they nest: ``grad(grad(f))``, ``jvp`` of ``grad``, and so on. Each call
differentiates only with respect to its own arguments, so nesting never confuses perturbations.
"""
from __future__ import annotations

import numpy as np

from .batching import examples_as_array, forget_level, new_level, unit_vectors
from .batching import reshape as batched_reshape, stack as batched_stack
from .ops import reshape, stack, transpose
from .sweep import forward_sweep, reverse_sweep, toposort
from .tensor import Batched, Tensor
from .tracing import _Trace, _check_scalar, _seed_like, _seeds_like, _zeros_like, check_function


def value_and_grad(f, argnums=0, has_aux=False):
    """``f`` and its gradient in one reverse sweep: returns ``g(*args) -> (f(*args), df/dargs)``.

    ``f`` must return a scalar (or, with ``has_aux=True``, a pair ``(scalar, aux)``: then the value is
    ``(scalar, aux)``). ``argnums`` picks the argument (an int) or arguments (a tuple, then the
    gradients come as a tuple); each may be a pytree, its gradient then in its structure. Like
    ``jax.value_and_grad``.

    >>> from autodiff import value_and_grad, sin
    >>> value_and_grad(lambda x: x * sin(x))(0.0)
    (0.0, 0.0)
    >>> value_and_grad(lambda p: p["w"] * p["b"])({"w": 2.0, "b": 3.0})
    (6.0, {'b': 2.0, 'w': 3.0})
    """
    check_function(f, "value_and_grad")
    return _value_and_grad(f, argnums, has_aux, "value_and_grad")


def _value_and_grad(f, argnums, has_aux, fname):
    def value_and_grad_f(*args, **kwargs):
        trace = _Trace(f, args, argnums, kwargs, fname, has_aux)
        try:
            out = trace.scalar()
            grads = trace.reverse(np.ones(out.shape, dtype=out.dtype))
        finally:
            trace.release()
        value = trace.value(out)
        return ((value, trace.aux_value()) if has_aux else value), trace.as_args(grads)

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return value_and_grad_f


def grad(f, argnums=0, has_aux=False):
    """The gradient of a scalar function by reverse mode: ``grad(f)(x)`` is df/dx at x, in the
    structure of x when x is a pytree (``has_aux=True``: ``(gradient, aux)``, as ``jax.grad``).

    >>> import numpy as np
    >>> from autodiff import grad, sin, cos
    >>> grad(lambda x: sin(x) ** 2)(0.5) == 2 * float(sin(0.5) * cos(0.5))
    True
    >>> grad(lambda p: (p["w"] ** 2).sum() + p["b"])({"w": np.array([1.0, 2.0]), "b": 0.5})
    {'b': 1.0, 'w': array([2., 4.])}
    """
    check_function(f, "grad")
    vg = _value_and_grad(f, argnums, has_aux, "grad")

    def grad_f(*args, **kwargs):
        (_, *aux), g = vg(*args, **kwargs) if has_aux else ((None,), vg(*args, **kwargs)[1])
        return (g, aux[0]) if has_aux else g

    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return grad_f


def vjp(f, *primals):
    """Reverse mode with a given cotangent: returns ``(f(*primals), vjp_fn)``.

    ``vjp_fn(cotangent)`` returns a tuple with one cotangent per primal: ``u^T J`` for each
    argument. The graph is recorded once; ``vjp_fn`` can be called many times. Like ``jax.vjp``:
    primals may be pytrees (each cotangent in its primal's structure), and so may f's output (the
    cotangent then in its structure).

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
        seeds = _seeds_like(cotangent, trace.out_tree, trace.outs, trace.out_paths, "vjp: the cotangent",
                            "f's output")
        grads = trace.reverse(seeds, create_graph=trace.create_graph or any(isinstance(s, Tensor) for s in seeds))
        return trace.as_args(grads)

    return trace.as_out(trace.outs), vjp_fn


def jvp(f, primals, tangents):
    """Forward mode: returns ``(f(*primals), J @ tangents)``, tangents pushed by the jvp rules.

    ``primals`` and ``tangents`` are tuples of the same length, each tangent of its primal's shape
    (or pytree structure). Like ``jax.jvp``.

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
        seeds = []
        for k, (t, (td, a, b)) in enumerate(zip(tangents, trace.trees)):
            seeds += _seeds_like(t, td, trace.leaves[a:b], trace.paths[a:b], f"jvp: tangents[{k}]", f"primals[{k}]")
        tangent = trace.forward(seeds, create_graph=trace.create_graph or any(isinstance(s, Tensor) for s in seeds))
    finally:
        trace.release()
    return trace.as_out(trace.outs), trace.as_out(tangent if isinstance(tangent, list) else [tangent])


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
    pieces = [p._value if isinstance(p, Tensor) else p if type(p) is Batched else np.asarray(p) for p in pieces]
    return batched_reshape(batched_stack(pieces), tuple(lead_shape) + tuple(trail_shape))   # (vmap: Batched)


def jacobian(f, argnums=0, mode="reverse"):
    """The Jacobian of ``f`` with respect to one argument: shape ``out.shape + in.shape``.

    ``argnums`` picks the argument (an int) or arguments (a tuple: then a tuple of Jacobians, one per
    argument, as ``jax.jacobian``). Pytrees nest as in JAX: the output's structure outside, the
    argument's inside (``jac[out_key][in_key]`` of shape ``out.shape + in.shape``).
    ``mode="reverse"`` runs one reverse sweep per output element (cheap for few outputs; each sweep
    gives a row of every argument's Jacobian); ``mode="forward"`` one forward sweep per input element
    (cheap for few inputs). The graph is recorded once and swept many times.

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
    if not isinstance(mode, str) or mode not in ("reverse", "forward"):
        raise ValueError(f"jacobian: mode must be 'reverse' or 'forward', got {mode!r}")
    if not isinstance(argnums, (int, np.integer)) and not (
            isinstance(argnums, tuple) and argnums and all(isinstance(a, (int, np.integer)) for a in argnums)):
        raise TypeError(f"jacobian: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")

    def jacobian_f(*args, **kwargs):
        whole = _Trace(f, args, argnums, kwargs, "jacobian")
        try:
            per_output = [_jacobians(trace, mode) for trace in whole.per_output()]
        finally:
            whole.release()
        return whole.as_out([whole.as_args(jacs) for jacs in per_output], convert=False)

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
    """Reverse sweep with create_graph: the gradient (one per leaf) as a graph, and its sweep order."""
    out = trace.scalar()
    gs = [g if isinstance(g, Tensor) else Tensor._make(np.asarray(g))
          for g in trace.reverse(np.ones(out.shape, dtype=out.dtype), create_graph=True)]
    order, _ = toposort(gs, stop=trace.leaf_ids)
    return gs, order


def hessian(f, argnums=0):
    """The Hessian of a scalar ``f`` by forward-over-reverse: shape ``in.shape + in.shape``.

    One reverse sweep records the gradient as a graph; one forward sweep over that graph per input
    element gives a column of the Hessian. For a pytree argument, ``H[a][b]`` (nested in its
    structure, as ``jax.hessian``) has shape ``a.shape + b.shape``.

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
            gs, order = _gradient_graph(trace)
            xs = trace.leaves
            blocks = [[None] * len(xs) for _ in xs]          # blocks[a][b]: d grad_a / d x_b
            for b, xb in enumerate(xs):
                cols = [[] for _ in xs]
                for e in _basis(xb.shape, xb.dtype):
                    tan = forward_sweep(order, {id(xb): e}, create_graph=trace.nested)
                    for a, g in enumerate(gs):
                        cols[a].append(tan[id(g)] if id(g) in tan else _zeros_like(g))
                for a, xa in enumerate(xs):
                    block = _assemble(cols[a], xb.shape, xa.shape, trace.nested)
                    blocks[a][b] = block if a == b else _move_leading(block, xb.ndim, xa.ndim)
        finally:
            trace.release()
        (td, _, _), = trace.trees
        return td.unflatten([td.unflatten([trace.result(h, a) for h in row]) for a, row in enumerate(blocks)])

    return hessian_f


def hvp(f, x, v):
    """The Hessian-vector product H(x) v of a scalar ``f`` of one array (or pytree: ``v`` in its
    structure, and the result), without forming H.

    Forward-over-reverse: one reverse sweep records the gradient, one forward sweep pushes ``v``.

    >>> import numpy as np
    >>> from autodiff import hvp
    >>> hvp(lambda x: (x ** 3).sum(), np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    array([ 6., 12.])
    """
    check_function(f, "hvp")
    trace = _Trace(f, (x,), 0, {}, "hvp")
    try:
        (td, _, _), = trace.trees
        tangents = _seeds_like(v, td, trace.leaves, trace.paths, "hvp: v", "x")
        gs, order = _gradient_graph(trace)
        tan = forward_sweep(order, {id(w): t for w, t in zip(trace.leaves, tangents)},
                            create_graph=trace.nested or any(isinstance(t, Tensor) for t in tangents))
        out = [tan[id(g)] if id(g) in tan else _zeros_like(g) for g in gs]
    finally:
        trace.release()
    return trace.as_args(out)


#: The highest order ``derivative`` takes: each order records the previous one's graph again (2**31 never ends).
MAX_ORDER = 100


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
    if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or not 0 <= order <= MAX_ORDER:
        raise ValueError(f"derivative: order must be an integer from 0 to {MAX_ORDER}, got {order!r} (each order "
                         f"is one more forward sweep over a graph that grows with it)")

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
                current = tan[id(current)] if id(current) in tan else np.zeros(current.shape, dtype=current.dtype)
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
    return tuple(adj[id(w)] if id(w) in adj else _zeros_like(w) for w in wrt)
