"""Recording ``f`` once, and its derivative as a second recorded program (source transformation).

``record`` runs ``f`` at the example arguments on fresh leaves, as the eager engine does, under
:mod:`.guards`: a traced value's numbers cannot be read (a comparison is recorded, a truth test is a
decision of :mod:`.branches`, the rest is refused), so nothing is frozen at the example point.

``reverse`` and ``forward`` then run the engine's own sweeps (:mod:`autodiff.sweep`) with recording
on (the ``create_graph=True`` path of higher derivatives): every vjp or jvp rule applied is itself
recorded as primitives, so the adjoint statements of eq. 5.39 are a graph like the forward ones,
and code generation needs nothing but each primitive's value code: the compiled derivative is the
rule the engine runs. Local derivatives that depend on the values (relu's step, maximum's ties)
are written with engine ops (``heaviside``), so they are recorded and computed, never frozen. The
sweeps' ``on_node`` hook gives each node's adjoint (tangent) a node of its own, ``a_bar``
(``a_dot``), so that eq. 5.39's ``dy/db = dy/dc dc/db`` keeps its line.
"""
from __future__ import annotations

import inspect
import keyword
import re

import numpy as np

from ..batching import batch, forget_level, new_level, unbatch
from ..labels import node_names
from ..ops import identity
from ..primitives import as_array
from ..sweep import forward_sweep, reverse_sweep, toposort
from .. import tensor as _tensor
from ..tensor import Batched, Tensor
from .guards import CompileError, Guards, constant_node
from .sourcemap import locating

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def arg_names(f, n):
    """Names for f's positional arguments: its own parameter names where it has them, else x0, x1..."""
    try:
        params = [p.name for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [params[i] if i < len(params) else f"x{i}" for i in range(n)]
    return [identifier(n) for n in names]


def identifier(name):
    """``name`` as a Python identifier (for the generated code)."""
    name = re.sub(r"\W", "_", str(name)) or "v"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "v_" + name
    return name


def as_input(a, i):
    """Argument ``i`` as a float array (ints and bools become float64), or a clear error."""
    arr = as_array(a.value if isinstance(a, Tensor) else a, f"autodiff.compile: argument {i}")
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    if arr.dtype not in FLOATS:
        raise CompileError(f"autodiff.compile: argument {i} has dtype {arr.dtype}; compiled code takes float32 "
                           f"or float64 arrays (close over anything else as a constant)")
    return arr


class _staged_batches:
    """While f is recorded, vmap's batching rules record the whole batch's operations into the program."""

    def __enter__(self):
        self.saved, _tensor.compiling = _tensor.compiling, True

    def __exit__(self, *exc):
        _tensor.compiling = self.saved
        return False


def record(f, args):
    """Run ``f`` once on fresh leaves standing for ``args``: (leaves, outputs, returned a tuple?)."""
    names = arg_names(f, len(args))
    leaves = [Tensor._make(np.array(as_input(a, i)), requires_grad=True, name=names[i]) for i, a in enumerate(args)]
    with Guards() as script, _staged_batches():
        out = f(*leaves)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if script.taken:     # a branch may return a constant where another computes: a node, so both are programs
            outs = tuple(o if isinstance(o, Tensor) and o.requires_grad else constant_node(o, leaves) for o in outs)
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor) or not o.requires_grad:
            raise CompileError(f"autodiff.compile: output {k} of f does not depend on its arguments (got "
                               f"{type(o).__name__}): there is no program to compile")
        if o.dtype not in FLOATS:
            raise CompileError(f"autodiff.compile: output {k} has dtype {o.dtype}; compiled code is float32 or float64")
    return leaves, outs, isinstance(out, (tuple, list))


# --- the derivative programs ----------------------------------------------------------------------

def _program_node(value):
    """The node of the program that holds ``value``: itself, or for a batch of tangents (a Tensor holding a
    ``Batched`` while compile stages vmap) the stacked node inside it."""
    v = value._value if isinstance(value, Tensor) else value
    return v.data if type(v) is Batched and isinstance(v.data, Tensor) else value


class _Owner:
    """The sweeps' ``on_node`` hook here: gives each node's adjoint (tangent) a node of its own, and its
    name: ``a`` -> ``a_bar``. Where a rule passes its cotangent through unchanged (``c = a + b`` gives
    ``a_bar = c_bar``), an ``identity`` node stands for the copy, so that eq. 5.39's line stays. ``skip``
    {id(output): id(its seed)}: an output whose adjoint is its seed alone has no statement."""

    def __init__(self, names, suffix, owned, skip=None):
        self.names, self.suffix, self.owned, self.skip = names, suffix, set(owned), skip or {}

    def __call__(self, node, value):
        held = _program_node(value)
        if self.skip.get(id(node)) == id(held) or not isinstance(held, Tensor) or not held.requires_grad:
            return value  # the seed, or a constant derivative (it does not depend on the seed): no statement
        if id(held) in self.owned:
            value = identity(value)
            held = _program_node(value)
        self.owned.add(id(held))
        self.names[id(held)] = self.names[id(node)] + self.suffix
        return value


def reverse(order, seeds, wanted, names):
    """Algorithm 2 with recording on (the engine's reverse sweep, ``create_graph=True``) from ``seeds``
    {id(output): adjoint leaf}: {id(leaf): adjoint node} for the leaves in ``wanted``."""
    ids = {id(n) for n in order if n.op is not None} | set(wanted)
    leaves = {id(n) for n in order if n.op is None}
    return reverse_sweep(order, ids, seeds, create_graph=True, keep=leaves,
                         on_node=_Owner(names, "_bar", [id(s) for s in seeds.values()],
                                        skip={k: id(s) for k, s in seeds.items()}))


def forward(order, seeds, names):
    """Tangents with recording on (the engine's forward sweep): {id(node): tangent node} from the
    seeds {id(leaf): tangent}. A seed may hold a batch of tangents (vmap's ``Batched``, with compile's
    staging on): the batching rules then record the whole batch's statements into the program."""
    return forward_sweep(order, seeds, create_graph=True,
                         on_node=_Owner(names, "_dot", [id(_program_node(s)) for s in seeds.values()]))


def _node_or_zero(derivative):
    """A derivative as the program holds it: a node, or None for a zero. A rule may give a constant (a mask's
    cotangent: zeros of its shape); a derivative is linear in the seed, so a constant one is zero."""
    if derivative is None or (isinstance(derivative, Tensor) and derivative.requires_grad):
        return derivative
    if np.any(np.asarray(derivative.value if isinstance(derivative, Tensor) else derivative) != 0):
        raise CompileError("autodiff.compile: a derivative rule gave a nonzero constant, which no derivative "
                           "(linear in the seed) can be; check the rules of the primitives in f")
    return None


# --- the program ----------------------------------------------------------------------------------

class Program:
    """A straight-line program: its inputs (leaves), outputs (nodes, or None for a zero), every node
    in evaluation order, and the names of the inputs, outputs and named intermediates. ``refs``: the
    shape and dtype of each output (of its zero, where it is None), as arrays or ``(shape, dtype)``."""

    def __init__(self, name, inputs, defaults, outputs, names, output_names, refs=None):
        self.name, self.inputs, self.defaults = name, inputs, defaults
        self.outputs, self.names, self.output_names = outputs, names, output_names
        refs = refs or outputs
        self.refs = [r if isinstance(r, tuple) else (r.shape, r.dtype) for r in refs]
        roots = [o for o in outputs if o is not None]
        _value_inputs_only(toposort(roots)[0])
        self.order, _ = toposort(roots)
        self.locations = {}   # {id(node): (file, line)}: the source map, filled by .sourcemap.locating


def _value_inputs_only(order):
    """A custom rule's node (autodiff.custom) takes its recorded forward value first and the function's
    arguments after it, for its rules; once the sweeps are done, its code needs the value alone."""
    for node in order:
        if getattr(node.op, "value_input_only", False) and len(node.inputs) > 1:
            node.inputs = node.inputs[:1]


def _seed(like, name, names, shape=None):
    """A leaf of the program standing for a seed (cotangent or tangent) of ``like``'s shape (or ``shape``)."""
    seed = Tensor._make(np.ones(like.shape if shape is None else shape, dtype=like.dtype), requires_grad=True,
                        name=name)
    names[id(seed)] = name
    return seed


@locating
def trace(f, args, mode, argnums, tangents=None):
    """Record ``f`` at ``args`` and build the Program of ``mode``: "value", "reverse", "vjp" or "forward"
    (``tangents=k``: each tangent input holds k tangents along a new leading axis)."""
    leaves, outs, _ = record(f, args)
    order, _ = toposort(list(outs))
    names = dict(node_names(order, outs[0] if len(outs) == 1 else None))
    for leaf in leaves:
        names[id(leaf)] = leaf.name
    fname = getattr(f, "__name__", "f")
    fname = "f" if fname == "<lambda>" else identifier(fname.strip("_") or "f")
    out_names = [names[id(o)] for o in outs]
    wrt = [leaves[k] for k in argnums]
    if mode == "value":
        return Program(fname, leaves, {}, list(outs), names, out_names)
    if mode in ("reverse", "vjp"):
        if mode == "reverse" and (len(outs) != 1 or outs[0].size != 1):
            raise CompileError(f"autodiff.compile(mode='reverse'): f must return one scalar; it returned "
                               f"{[o.shape for o in outs]} (use mode='vjp' or mode='forward' for vector outputs)")
        seeds = [_seed(y, n + "_bar", names) for y, n in zip(outs, out_names)]
        adjoints = reverse(order, _sum_per_node(outs, seeds), {id(w) for w in wrt}, names)
        grads = [_node_or_zero(adjoints.get(id(w))) for w in wrt]
        # reverse mode's seed is the same leaf, with 1.0 for its default; vjp's is an input without one
        name, defaults = (fname + "_vjp", {}) if mode == "vjp" else (fname + "_value_and_grad", {seeds[0].name: 1.0})
        return Program(name, leaves + seeds, defaults, list(outs) + grads, names,
                       out_names + [w.name + "_bar" for w in wrt], list(outs) + wrt)
    if mode == "forward":
        return _jvp_program(fname, leaves, outs, wrt, order, names, out_names, tangents)
    raise ValueError(f"autodiff.compile: mode must be 'value', 'reverse', 'vjp' or 'forward', got {mode!r}")


def _sum_per_node(outs, seeds):
    """{id(output): its seed}; an output that f returns twice gets the sum of its seeds."""
    total = {}
    for y, s in zip(outs, seeds):
        total[id(y)] = s if id(y) not in total else total[id(y)] + s
    return total


def _jvp_program(fname, leaves, outs, wrt, order, names, out_names, k):
    """Forward mode: the tangent inputs ``x_dot`` and the outputs' tangents. With ``k`` (batched tangents)
    each ``x_dot`` is (k, *x.shape), entered as one value of a vmap level, and each output's tangent
    leaves the map stacked along axis 0, (k, *y.shape): one program pushes all k tangents."""
    lead = () if k is None else (k,)
    seeds = [_seed(w, w.name + "_dot", names, lead + w.shape) for w in wrt]
    if k is None:
        tangents = forward(order, {id(w): s for w, s in zip(wrt, seeds)}, names)
        outputs = [_node_or_zero(tangents.get(id(o))) for o in outs]
    else:
        level = new_level()
        try:
            with _staged_batches():     # the map's data are the program's nodes: the seeds themselves, stacked
                tangents = forward(order, {id(w): batch(s, 0, level) for w, s in zip(wrt, seeds)}, names)
                ts = [tangents.get(id(o)) for o in outs]
                outputs = [_node_or_zero(None if t is None else unbatch(t, level, 0, k)) for t in ts]
        finally:
            forget_level(level)
    refs = [(lead + o.shape, o.dtype) for o in outs]
    name = fname + ("_jvp" if k is None else "_jvp_batched")
    return Program(name, leaves + seeds, {}, list(outs) + outputs, names, out_names + [n + "_dot" for n in out_names],
                   list(outs) + refs)
