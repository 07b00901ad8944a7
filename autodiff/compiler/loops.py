"""Loops under compile: the body compiled once, the loop one node of the program (JAX's scan, while_loop).

While ``autodiff.compile`` records f, :func:`autodiff.scan`, :func:`autodiff.while_loop` and
:func:`autodiff.fori_loop` do not run their body once per step (that would unroll the loop into the
program, and compile time would grow with the trip count). They record the body once, as a program
of its own (:class:`Body`: its inputs are the carry, the step's slice of ``xs`` and every traced
value it closes over, found by a first run and given as inputs, JAX's closure conversion), compile
it for its value and for its vector-Jacobian product, and add one ``loop`` node to f's program. The
node's code runs the compiled body step by step; its forward rule is a ``loop_jvp`` node carrying
tangents through the same steps (the body's jvp program); its reverse rule is a ``loop_vjp`` node that runs the
forward loop again keeping every carry (the tape), then the body's vjp from the last step to the
first: the adjoint of a loop is a loop, read backwards. A ``while`` loop's trip count is found at run
time, so it is differentiated in reverse mode too (``jax.lax.while_loop`` is not).
"""
from __future__ import annotations

import numpy as np

from .. import pytree
from ..ops import astype, getitem, reshape
from ..primitives import Primitive, _ArgnumRules
from ..tensor import Batched, Tensor, apply, value_of
from .build import Compiled
from .guards import CompileError, Guards, Script, options, planned
from .loopcode import scalar_loop
from .runtime import impl


def _seq_now():
    return Tensor._make(np.zeros(()))._seq


class Body:
    """One loop function recorded once: ``fn(*inputs)`` with ``inputs`` = the flat carry (and slice) arrays,
    compiled with the traced values it closes over as extra inputs (``consts``, nodes of f's program)."""

    def __init__(self, fn, examples, name, vjp=True, constant=()):
        self.fn, self.n = fn, len(examples)
        self.foreign = self._closed_over(examples)
        args = [np.array(e) for e in examples] + [np.array(c._value) for c in self.foreign]
        closed = self._closed_function(name)
        given = options.current()        # the outer compile's cache folder and parallel=
        self.value = Compiled(closed, tuple(args), mode="value", **given)
        self.outputs = len(self.value.last.program.outputs)
        # the inputs with a cotangent (not ``constant`` ones: a slice of xs that f's program does not trace)
        self.wrt, self.vjp = tuple(k for k in range(len(args)) if k not in constant), None
        if vjp:
            self.vjp = Compiled(closed, tuple(args), mode="vjp", argnums=self.wrt, **given)
            grads = self.vjp.last.program.outputs[self.outputs:]
            nonzero = tuple(k for k, g in zip(self.wrt, grads) if g is not None)
            if nonzero != self.wrt:     # a loop index or a slice the body ignores: no zeros computed each step
                self.wrt = nonzero
                self.vjp = Compiled(closed, tuple(args), mode="vjp", argnums=nonzero, **given) if nonzero else None
        self.call = _entry(self.value)
        self.call_vjp = _entry(self.vjp) if self.vjp is not None else None
        self._closed, self._args, self._jvp = closed, tuple(args), None

    def call_jvp(self, *args_and_tangents):
        """The body's values and tangents (its forward-mode program, compiled when first asked for)."""
        if self._jvp is None:
            program = Compiled(self._closed, self._args, mode="forward", argnums=tuple(range(len(self._args))),
                               **options.current())
            self._jvp = _entry(program)
        return self._jvp(*args_and_tangents)

    def cotangents(self, args, seeds):
        """{input index: cotangent} at ``args`` for the output cotangents ``seeds`` (inputs without one left out)."""
        if self.call_vjp is None:
            return {}
        return dict(zip(self.wrt, self.call_vjp(*args, *seeds)[self.outputs:]))

    def _closed_over(self, examples):
        """The traced values of f's program that fn reads (a first run on fresh leaves finds them)."""
        start = _seq_now()
        leaves = [Tensor._make(np.array(e), requires_grad=True) for e in examples]
        with planned(Script()), Guards(), np.errstate(all="ignore"):
            outs = self.fn(*leaves)
        found, seen, stack = [], set(), list(outs)
        inside = {id(leaf) for leaf in leaves}
        while stack:
            node = stack.pop()
            if not isinstance(node, Tensor) or id(node) in seen or id(node) in inside:
                continue
            seen.add(id(node))
            if node._seq < start:
                if node.requires_grad:
                    found.append(node)
                continue
            stack.extend(node.inputs)
        found.sort(key=lambda n: n._seq)
        return found

    def _closed_function(self, name):
        n, foreign = self.n, self.foreign

        def closed(*leaves):
            start = _seq_now()
            outs = self.fn(*leaves[:n])
            swap = {id(node): leaf for node, leaf in zip(foreign, leaves[n:])}
            outs = tuple(swap.get(id(o), o) for o in outs)
            seen, stack = set(), list(outs)
            while stack:                 # the nodes this run made read the leaves, not f's nodes
                node = stack.pop()
                if not isinstance(node, Tensor) or id(node) in seen or node._seq < start:
                    continue
                seen.add(id(node))
                if any(id(u) in swap for u in node.inputs):
                    node.inputs = tuple(swap.get(id(u), u) for u in node.inputs)
                stack.extend(node.inputs)
            return outs if len(outs) > 1 else outs[0]

        closed.__name__ = name
        return closed


def _entry(compiled):
    """The compiled program's own function, called step after step without compile's argument checks (the
    loop gives it arrays of the recorded shapes and dtypes): a list of its outputs."""
    sig = compiled.last
    entry = sig.entry
    if sig.module.direct:         # a program of scalars: Numba's function of numbers
        def call(*args):
            out = entry(*[a[()] if type(a) is np.ndarray else a for a in args])
            return list(out) if type(out) is tuple else [out]
    else:
        def call(*args):
            out = entry(*args)
            return list(out) if type(out) is tuple else [out]
    return call


class Spec:
    """What a loop node runs: its kind ("scan" or "while"), its Body (and cond), and the sizes of its parts."""

    def __init__(self, kind, body, carry, xs=(), ys=(), length=0, cond=None, n_body_consts=0):
        xs, ys = list(xs), list(ys)
        self.kind, self.body, self.cond, self.length = kind, body, cond, length
        self.carry, self.xs, self.ys = carry, xs, ys          # [(shape, dtype)] of each flat part
        self.n_body_consts = n_body_consts
        self.fast = None        # the loops as one Numba function when every part is a number (.loopcode)
        self.whole = []         # [(input index, name)]: values that must be whole numbers when the loop runs
        self.fast_source = ""

    def __repr__(self):
        return f"<{self.kind} loop of {self.body.value.__name__}>"

    def describe(self):
        """The loop's code, for ``cf.source``: its body's programs (value, vjp, cond) and the loops written out."""
        parts = [self.body.value.source] + [p.source for p in (self.body.vjp, self.cond and self.cond.value) if p]
        if self.fast is not None:
            parts.append(self.fast_source)
        head = f"# --- {self!r}: the body compiled once, then the loop (and its reverse loop) calls it ---"
        return "\n\n" + "\n".join([head] + parts)

    def check(self, inputs):
        """Refuse, when the loop runs, a traced bound of fori_loop that is not a whole number (range's rule)."""
        for k, name in self.whole:
            v = np.asarray(inputs[k])
            if not (np.isfinite(v).all() and np.array_equal(v, np.round(v))):
                got = v.item() if v.size == 1 else v
                raise ValueError(f"autodiff.fori_loop: {name} must be a whole number, got {got}")

    # the parts of a loop node's inputs: carry, xs, the body's closed-over values, cond's
    def split(self, inputs):
        nc, nx = len(self.carry), len(self.xs)
        return (list(inputs[:nc]), list(inputs[nc:nc + nx]), list(inputs[nc + nx:nc + nx + self.n_body_consts]),
                list(inputs[nc + nx + self.n_body_consts:]))

    def _numbers(self, inputs, tape):
        """Spec.run by the compiled loop of numbers: the carry and ys, and the tape's arrays when asked."""
        carry, xs, consts, cond_consts = self.split(inputs)
        c = [np.asarray(v)[()] for v in carry]
        k = [np.asarray(v)[()] for v in consts + cond_consts]
        if self.kind == "scan":
            n = self.length
            ys = [np.empty(n, d) for _, d in self.ys]
            p = [np.empty(n if tape else 0, d) for _, d in self.carry]
            out = self.fast.forward(n, *c, *[np.ascontiguousarray(x) for x in xs], *k, *ys, *p, tape)
        else:
            n = self.fast.forward(*c, *k, *[np.empty(0, d) for _, d in self.carry], False)[0] if tape else 0
            p = [np.empty(n, d) for _, d in self.carry]
            out = self.fast.forward(*c, *k, *p, tape)[1:]
            ys = []
        return [np.asarray(v, d) for v, (_, d) in zip(out, self.carry)], ys, p, n

    def run(self, inputs, tape=None):
        """The loop: final carry and stacked ys (``tape``, a list, gets every carry a step starts from)."""
        if self.fast is not None and tape is None:
            return self._numbers(inputs, False)[:2]
        carry, xs, consts, cond_consts = self.split(inputs)
        nc = len(carry)
        if self.kind == "scan":
            ys = [np.empty((self.length,) + tuple(s), d) for s, d in self.ys]
            for t in range(self.length):
                if tape is not None:
                    tape.append(carry)
                outs = self.body.call(*carry, *(x[t] for x in xs), *consts)
                carry = [np.asarray(o, d) for o, (_, d) in zip(outs[:nc], self.carry)]
                for y, o in zip(ys, outs[nc:]):
                    y[t] = o
            return carry, ys
        while self.cond.call(*carry, *cond_consts)[0]:
            if tape is not None:
                tape.append(carry)
            carry = [np.asarray(o, d) for o, (_, d) in zip(self.body.call(*carry, *consts), self.carry)]
        return carry, []


def _pack(parts, dtype):
    return np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in parts]) if parts else np.zeros(0, dtype)


def _keeps_tape(spec):
    """A scan run step by step from Python keeps each step's carry after its results (its reverse loop reads
    them instead of running the loop again); a loop of numbers runs again in Numba, a while loop's length varies."""
    return spec.kind == "scan" and spec.fast is None


def _loop_impl(*inputs, spec, dtype):
    spec.check(inputs)
    if not _keeps_tape(spec):
        carry, ys = spec.run(inputs)
        return _pack(carry + ys, dtype)
    tape = []
    carry, ys = spec.run(inputs, tape)
    return _pack(carry + ys + [np.stack([step[k] for step in tape]) for k in range(len(carry))], dtype)


def _numbers_vjp(g, inputs, spec, dtype):
    """_loop_vjp_impl by the compiled loops of numbers: the forward loop with its tape, the reverse loop."""
    _, ys, tape, n = spec._numbers(inputs, True)
    carry, xs, consts, cond_consts = spec.split(inputs)
    nc = len(carry)
    parts = _unpack_values(g, spec.carry + [((spec.length,) + tuple(s), d) for s, d in spec.ys])
    step_x = [np.ascontiguousarray(x) for x in xs]
    ct_xs = [np.zeros(n, x.dtype) for x in xs]
    out = spec.fast.backward(n, *tape, *step_x, *[np.asarray(c)[()] for c in consts],
                             *[np.asarray(v)[()] for v in parts[:nc]], *parts[nc:], *ct_xs)
    ct_carry = [np.asarray(v, d) for v, (_, d) in zip(out[:nc], spec.carry)]
    ct_consts = [np.asarray(v, np.asarray(c).dtype) for v, c in zip(out[nc:], consts)]
    return _pack(ct_carry + ct_xs + ct_consts + [np.zeros_like(c) for c in cond_consts], dtype)


def _loop_vjp_impl(g, out, *inputs, spec, dtype):
    """The reverse loop: the tape (kept by the forward loop in ``out``, or the loop run again for it), then the
    body's vjp from the last step back."""
    spec.check(inputs)
    if spec.fast is not None:
        return _numbers_vjp(g, inputs, spec, dtype)
    carry, xs, consts, cond_consts = spec.split(inputs)
    nc = len(carry)
    results = spec.carry + [((spec.length,) + tuple(s), d) for s, d in spec.ys]
    if _keeps_tape(spec):
        kept = _unpack_values(out, results + [((spec.length,) + tuple(s), d) for s, d in spec.carry])[len(results):]
        tape = [[part[t] for part in kept] for t in range(spec.length)]
    else:
        tape = []
        spec.run(inputs, tape)
    parts = _unpack_values(g, results)
    ct_carry, ct_ys = parts[:nc], parts[nc:]
    ct_xs = [np.zeros_like(x) for x in xs]
    ct_consts = [np.zeros_like(c) for c in consts]
    for t in range(len(tape) - 1, -1, -1):
        step_x = [x[t] for x in xs] if spec.kind == "scan" else []
        cts = spec.body.cotangents(list(tape[t]) + step_x + consts, ct_carry + [y[t] for y in ct_ys])
        ct_carry = [np.asarray(cts[k], d) if k in cts else np.zeros(s, d) for k, (s, d) in enumerate(spec.carry)]
        for k in range(len(step_x)):
            if nc + k in cts:
                ct_xs[k][t] = cts[nc + k]
        for k in range(len(consts)):
            if nc + len(step_x) + k in cts:
                ct_consts[k] += cts[nc + len(step_x) + k]
    ct_cond = [np.zeros_like(c) for c in cond_consts]        # the condition is not differentiated
    return _pack(ct_carry + ct_xs + ct_consts + ct_cond, dtype)


def _unpack_values(flat, parts):
    out, at = [], 0
    for shape, dtype in parts:
        size = int(np.prod(shape))
        out.append(np.asarray(flat[at:at + size], dtype=dtype).reshape(shape))
        at += size
    return out


def unpack(node, parts):
    """The parts of a packed loop node as nodes of the program (a slice, a reshape, the dtype back)."""
    out, at = [], 0
    for shape, dtype in parts:
        size = int(np.prod(shape))
        part = reshape(getitem(node, index=(slice(at, at + size),)), shape=tuple(shape))
        out.append(part if part.dtype == dtype else astype(part, dtype=np.dtype(dtype)))
        at += size
    return out


def _loop_jvp_impl(tangent, *inputs, spec, dtype, argnum):
    """The loop carrying tangents: input ``argnum``'s tangent in, the final carry's and the ys' tangents out."""
    spec.check(inputs)
    carry, xs, consts, cond_consts = spec.split(inputs)
    nc, nx, nk = len(carry), len(xs), len(consts)
    tangents = [np.zeros_like(np.asarray(v)) for v in carry + xs + consts]
    ys = [np.zeros((spec.length,) + tuple(s), d) for s, d in spec.ys]
    if argnum >= nc + nx + nk:          # the condition's closed-over values: no derivative flows from them
        tape = [np.zeros((spec.length,) + tuple(s), d) for s, d in spec.carry] if _keeps_tape(spec) else []
        return _pack(tangents[:nc] + ys + tape, dtype)
    tangents[argnum] = np.asarray(tangent)
    tc, txs, tk = tangents[:nc], tangents[nc:nc + nx], tangents[nc + nx:]
    kept = []       # the tape's tangents, where the loop's value keeps its tape (its output's shape)
    t = 0
    while (t < spec.length) if spec.kind == "scan" else spec.cond.call(*carry, *cond_consts)[0]:
        kept.append(tc)
        step_x = [x[t] for x in xs]
        outs = spec.body.call_jvp(*carry, *step_x, *consts, *tc, *[v[t] for v in txs], *tk)
        n_out = spec.body.outputs
        carry = [np.asarray(o, d) for o, (_, d) in zip(outs[:nc], spec.carry)]
        tc = [np.asarray(o, d) for o, (_, d) in zip(outs[n_out:n_out + nc], spec.carry)]
        for y, o in zip(ys, outs[n_out + nc:]):
            y[t] = o
        t += 1
    tape = [np.stack([step[k] for step in kept]) for k in range(nc)] if _keeps_tape(spec) else []
    return _pack(tc + ys + tape, dtype)


def _loop_jvp(tangent, out, *inputs, argnum, spec, dtype):
    return apply(LOOP_JVP, (tangent,) + inputs, {"spec": spec, "dtype": dtype, "argnum": argnum})


def _loop_vjp_joint(g, out, *inputs, wanted, spec, dtype):
    packed = apply(LOOP_VJP, (g, out) + inputs, {"spec": spec, "dtype": dtype})
    return unpack(packed, [(np.shape(i._value if isinstance(i, Tensor) else i),
                            (i._value if isinstance(i, Tensor) else np.asarray(i)).dtype) for i in inputs])


def _no_second(*args, **params):
    raise CompileError("autodiff.compile: a second derivative through a compiled loop is not supported")


LOOP = Primitive("loop", _loop_impl, vjp_joint=_loop_vjp_joint, jvp=_ArgnumRules(_loop_jvp), code="impl",
                 variadic=True)
LOOP_JVP = Primitive("loop_jvp", _loop_jvp_impl, vjp_joint=_no_second, jvp=_ArgnumRules(_no_second), code="impl",
                     variadic=True)
LOOP_VJP = Primitive("loop_vjp", _loop_vjp_impl, vjp_joint=_no_second, jvp=_ArgnumRules(_no_second), code="impl",
                     variadic=True)
impl.loop, impl.loop_vjp, impl.loop_jvp = _loop_impl, _loop_vjp_impl, _loop_jvp_impl   # what the driver calls


def _flat(tree, what):
    leaves, treedef = pytree.tree_flatten(tree)
    for leaf in leaves:
        if isinstance(leaf, Tensor) and type(leaf._value) is Batched:
            raise CompileError(f"autodiff.compile: {what} is mapped by vmap; a loop inside vmap is not compiled")
    return leaves, treedef


def _value(x):
    return np.asarray(value_of(x))


def _dtype(parts):
    kinds = [np.dtype(d) for _, d in parts]
    return np.result_type(*kinds, np.float32) if kinds else np.dtype(np.float64)


def _node(carry, xs, consts, spec, outer):
    parts = spec.carry + [((spec.length,) + tuple(s), d) for s, d in spec.ys]
    dtype = _dtype(parts)
    inputs = tuple(carry) + tuple(xs) + tuple(consts)
    packed = apply(LOOP, inputs, {"spec": spec, "dtype": dtype})
    if not isinstance(packed, Tensor) or not packed.requires_grad:
        raise CompileError(f"autodiff.compile: the loop of {outer} does not depend on f's arguments")
    return unpack(packed, parts)


def _parts(values):
    return [(np.shape(_value(v)), _value(v).dtype) for v in values]


def stage_scan(f, init, xs, length):
    """``autodiff.scan`` while compile records: one loop node, the body compiled once."""
    carry, carry_def = _flat(init, "scan's init")
    xleaves, x_def = _flat(xs, "scan's xs")
    state = {}

    def step(*leaves):
        c = pytree.tree_unflatten(carry_def, list(leaves[:len(carry)]))
        x = pytree.tree_unflatten(x_def, list(leaves[len(carry):])) if xleaves else None
        new, y = f(c, x)
        flat_c, new_def = pytree.tree_flatten(new)
        flat_y, state["y_def"] = pytree.tree_flatten(y)
        if new_def != carry_def:
            raise CompileError(f"autodiff.scan: f must return a carry of init's structure {carry_def}, got {new_def}")
        return tuple(flat_c) + tuple(flat_y)

    examples = [_value(c) for c in carry] + [_value(x)[0] for x in xleaves]
    untraced = [len(carry) + k for k, x in enumerate(xleaves) if not (isinstance(x, Tensor) and x.requires_grad)]
    body = Body(step, examples, getattr(f, "__name__", "body").strip("<>") + "_step", constant=untraced)
    outs = body.value.last.program.refs
    _same_carry(carry, outs[:len(carry)], "scan")
    spec = Spec("scan", body, _parts(carry), _parts([_value(x)[0] for x in xleaves]),
                [(s, d) for s, d in outs[len(carry):]], length, n_body_consts=len(body.foreign))
    spec.fast, spec.fast_source = scalar_loop(spec)
    results = _node(carry, xleaves, body.foreign, spec, "scan")
    final = pytree.tree_unflatten(carry_def, results[:len(carry)])
    ys = pytree.tree_unflatten(state["y_def"], results[len(carry):])
    return final, ys


def stage_while(cond_fun, body_fun, init, whole=()):
    """``autodiff.while_loop`` while compile records: one loop node, its trip count found at run time.
    ``whole``: [(value, name)] of inputs that must be whole numbers at run time (fori_loop's traced bounds)."""
    carry, carry_def = _flat(init, "while_loop's init_val")

    def tree_of(leaves):
        return pytree.tree_unflatten(carry_def, list(leaves))

    def step(*leaves):
        new, new_def = pytree.tree_flatten(body_fun(tree_of(leaves)))
        if new_def != carry_def:
            raise CompileError(f"autodiff.while_loop: body_fun must return init_val's structure {carry_def}, got "
                               f"{new_def}")
        return tuple(new)

    def test(*leaves):
        return (cond_fun(tree_of(leaves)) * 1.0,)

    examples = [_value(c) for c in carry]
    body = Body(step, examples, getattr(body_fun, "__name__", "body").strip("<>") + "_step")
    cond = Body(test, examples, getattr(cond_fun, "__name__", "cond").strip("<>") + "_test", vjp=False)
    _same_carry(carry, body.value.last.program.refs, "while_loop")
    spec = Spec("while", body, _parts(carry), cond=cond, n_body_consts=len(body.foreign))
    spec.fast, spec.fast_source = scalar_loop(spec)
    inputs = list(carry) + list(body.foreign) + list(cond.foreign)
    spec.whole = [(next(k for k, v in enumerate(inputs) if v is value), name) for value, name in whole
                  if any(v is value for v in inputs)]
    results = _node(carry, (), inputs[len(carry):], spec, "while_loop")
    return pytree.tree_unflatten(carry_def, results)


def _same_carry(carry, refs, what):
    for k, (c, (shape, dtype)) in enumerate(zip(carry, refs)):
        if (np.shape(_value(c)), _value(c).dtype) != (tuple(shape), np.dtype(dtype)):
            raise CompileError(f"autodiff.{what}: the body turns carry part {k} of shape {np.shape(_value(c))}, "
                               f"{_value(c).dtype} into {tuple(shape)}, {np.dtype(dtype)}; a loop keeps its "
                               f"carry's shapes and dtypes")


__all__ = ["Body", "LOOP", "LOOP_JVP", "LOOP_VJP", "Spec", "stage_scan", "stage_while"]
