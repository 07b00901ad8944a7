"""Fusion: which statements of a program share one loop, and which call NumPy between the loops.

Each node of a :class:`~autodiff.compiler.trace.Program` is one of

- ``LOOP``: an elementwise primitive with an element template (``code="sin({0})"``), and the
  free reshapes and scalar broadcasts between them: computed one element at a time inside a loop;
- ``REDUCE``: ``sum`` or ``mean`` over all axes of a loop's value: accumulated in that same loop;
- ``CALL``: every other primitive (``code="impl"``, the default: matmul, sum over an axis, getitem...): one call
  of its NumPy implementation, between the loops.

Scheduling (a greedy list schedule): a loop node joins the loop of its inputs when they are in a
loop of the same size, and otherwise the first loop after its inputs are ready; a call runs as soon
as its inputs are ready. Loops of the same size and time become one :class:`Block`, a single pass
over the data with no temporaries in memory: for eq. 5.36 the forward statements, the sum and every
adjoint statement share one loop.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..primitives import REGISTRY
from ..tensor import Tensor
from .trace import FLOATS, CompileError

LOOP, REDUCE, CALL = "loop", "reduce", "call"
_WEAK = ("reshape", "broadcast_to")   # free in a loop over the flat index; a view between loops


def _refuse(node):
    why = getattr(node.op, "uncompilable", None) or ("its declaration says code=None (its derivative rules read the "
                                                     "input values, which compiled code would freeze at the example "
                                                     "point)")
    raise CompileError(f"autodiff.compile: primitive {node.op.name!r} cannot be compiled: {why}; the eager engine "
                       f"computes it")


def consumers_of(order):
    users = defaultdict(list)
    for node in order:
        for inp in node.inputs:
            users[id(inp)].append(node)
    return users


def _strong(node):
    return node.op is not None and node.op.code not in (None, "impl")


def spread_inputs(program):
    """Give each elementwise node inputs of its own size or of one element: an input that NumPy
    would broadcast (a bias (3,) added to (2, 3)) becomes a ``broadcast_to`` node before it, which
    the driver writes out (the loops index every input by the flat element number)."""
    order = []
    spread = REGISTRY["broadcast_to"]
    for node in program.order:
        if _strong(node) and any(u.size not in (1, node.size) for u in node.inputs):
            inputs = []
            for u in node.inputs:
                if u.size not in (1, node.size):
                    u = Tensor._make(np.broadcast_to(u.value, node.shape), spread, (u,), {"shape": node.shape},
                                     requires_grad=True)
                    order.append(u)
                inputs.append(u)
            node.inputs = tuple(inputs)
        order.append(node)
    program.order = order


def classify(program):
    """{id(node): LOOP | REDUCE | CALL} for the program's op nodes; refuses a primitive without code."""
    spread_inputs(program)
    kinds = {}
    users = consumers_of(program.order)

    strong = _strong
    for node in program.order:
        prim = node.op
        if prim is None:
            continue
        if prim.code is None:
            _refuse(node)
        if node.dtype not in FLOATS:
            raise CompileError(f"autodiff.compile: {prim.name} makes dtype {node.dtype}; compiled code is float32 "
                               f"or float64 (found at a node of shape {node.shape})")
        tracked = [u for u in node.inputs if u.requires_grad]
        if strong(node):
            kinds[id(node)] = LOOP
        elif prim.name in _WEAK and (prim.name == "reshape" or node.inputs[0].size == 1):
            in_loop = any(kinds.get(id(u)) == LOOP for u in tracked)
            kinds[id(node)] = LOOP if in_loop or any(strong(c) for c in users[id(node)]) else CALL
        elif (prim.name in ("sum", "mean") and node.params.get("axis") is None and tracked
              and kinds.get(id(node.inputs[0])) == LOOP):
            kinds[id(node)] = REDUCE
        else:
            kinds[id(node)] = CALL
    return kinds


class Block:
    """One loop: its nodes (in order), the values it reads, writes and reduces, and its size."""

    def __init__(self, time, size):
        self.time, self.size = time, size
        self.nodes, self.reductions = [], []
        self.reads, self.writes = [], []


def schedule(program, kinds):
    """The program as steps in order: ("block", Block) and ("call", node)."""
    ready = {}        # id -> the time after which the value exists (0: inputs and constants)
    blocks = {}       # (time, size) -> Block
    block_of = {}
    calls = defaultdict(list)
    for node in program.order:
        kind = kinds.get(id(node))
        if kind is None:
            ready[id(node)] = 0
            continue
        tracked = [u for u in node.inputs if u.requires_grad]
        if kind == LOOP:
            t = 1
            for u in tracked:
                same = kinds.get(id(u)) == LOOP and u.size == node.size
                t = max(t, block_of[id(u)].time if same else ready[id(u)] + 1)
            block = blocks.setdefault((t, node.size), Block(t, node.size))
            block.nodes.append(node)
            block_of[id(node)] = block
            ready[id(node)] = t
        elif kind == REDUCE:
            block = block_of[id(node.inputs[0])]
            block.reductions.append(node)
            ready[id(node)] = block.time
        else:
            t = max([ready[id(u)] for u in tracked], default=0)
            calls[t].append(node)
            ready[id(node)] = t
    _wire(program, blocks.values(), block_of)
    steps = [("call", n) for n in calls.get(0, [])]
    last = max([t for t, _ in blocks] + list(calls), default=0)
    for t in range(1, last + 1):
        steps += [("block", b) for (bt, _), b in sorted(blocks.items(), key=lambda kv: kv[0]) if bt == t]
        steps += [("call", n) for n in calls.get(t, [])]
    return steps


def _wire(program, blocks, block_of):
    """Each block's reads (values from outside it) and writes (its values needed outside it)."""
    users = consumers_of(program.order)
    outputs = {id(o) for o in program.outputs if o is not None}
    for block in blocks:
        members = {id(n) for n in block.nodes}
        reduced = {id(r.inputs[0]) for r in block.reductions}
        seen = set()
        for node in block.nodes:
            for u in node.inputs:
                if id(u) not in members and id(u) not in seen and (u.requires_grad or u.size > 1):
                    seen.add(id(u))
                    block.reads.append(u)
        reductions = {id(r) for r in block.reductions}
        for node in block.nodes:
            outside = [c for c in users[id(node)] if block_of.get(id(c)) is not block and id(c) not in reductions]
            if id(node) in outputs or outside:
                block.writes.append(node)
        block.reduced_members = [n for n in block.nodes if id(n) in reduced]
