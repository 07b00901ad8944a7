"""Python ``if`` on traced values: f recorded once per way through its decisions, and a dispatcher.

While compile records f, the truth of a traced value is a *decision* (:mod:`.guards`): the recording
takes the way it is told (or, the first time, the example point's way) and notes the predicate's
node. Recording f again with each decision turned the other way enumerates the decision tree, one
straight-line program per path (a path reached only through impossible choices is harmless: the
dispatcher never takes it). The generated module holds each path's program, one small program per
predicate, and a dispatcher that keeps the user's structure::

    def f_value_and_grad(x, y_bar=1.0):
        if f_if1(x):            # lesson.py:3 (`if x > 0:`)
            return f_path1(x, y_bar)
        return f_path2(x, y_bar)

This is path enumeration, as symbolic executors do, rather than a rewrite of f's source: it sees
every ``if``, ``elif``, ``a if c else b``, ``and``, ``or`` and ``not``, in lambdas and in the libraries f
calls. A predicate is recomputed from the inputs (a few operations; the paths keep straight-line
code). A Python loop whose trip count depends on a traced value is not a set of paths (a ``while``
would enumerate without end): after ``MAX_PATHS`` paths it is refused, pointing to
:func:`autodiff.while_loop`, :func:`autodiff.fori_loop` and :func:`autodiff.scan`.
"""
from __future__ import annotations

import numpy as np

from ..labels import node_names
from ..sweep import toposort
from .codegen import NUMPY_NAMES, Module
from .fuse import classify, schedule
from .guards import CompileError, Script, located, planned, where_text
from .trace import Program, trace

#: More ways through f's decisions than this is refused (a data-dependent loop, or a long chain of ifs).
MAX_PATHS = 64
#: Python allows 20 nested blocks; the dispatcher nests one per decision taken as true along a path.
MAX_DEPTH = 16


def enumerate_paths(f, args, mode, argnums, **options):
    """[(decisions, program)] for every way through f's decisions, the example point's way first."""
    paths, pending = [], [[]]
    while pending:
        forced = pending.pop()
        script = Script(forced)
        with planned(script), np.errstate(all="ignore"):   # another way's values at the example point
            program = trace(f, args, mode, argnums, **options)
        taken = script.taken
        pending.extend([d.taken for d in taken[:i]] + [not taken[i].taken] for i in range(len(taken) - 1,
                                                                                         len(forced) - 1, -1))
        paths.append((taken, program))
        if len(paths) > MAX_PATHS:
            first = taken[0].where if taken else None
            raise CompileError(f"autodiff.compile: f takes more than {MAX_PATHS} ways through its `if`s on traced "
                               f"values{where_text(first)}: a Python loop whose count depends on a traced value is "
                               f"written with autodiff.while_loop, autodiff.fori_loop or autodiff.scan (one loop "
                               f"in the program); a long chain of ifs with autodiff.where(x > 0, a, b)")
    _same_outputs(paths)
    return paths


def _same_outputs(paths):
    refs = paths[0][1].refs
    for decisions, program in paths[1:]:
        if program.refs != refs:
            where = next((where_text(d.where) for d in decisions if d.where), "")
            raise CompileError(f"autodiff.compile: the branches of f's `if`{where} return different shapes or dtypes "
                               f"({_refs(refs)} and {_refs(program.refs)}); both ways must give the same, as in "
                               f"jax.lax.cond")


def _refs(refs):
    return ", ".join(f"{shape}:{np.dtype(dtype).name}" for shape, dtype in refs)


def predicate_program(name, decision, inputs):
    """The program computing one decision's predicate (a 0-d mask) from f's inputs."""
    pred = decision.predicate
    order, _ = toposort([pred])
    names = dict(node_names(order, pred))
    for leaf in inputs:
        names[id(leaf)] = leaf.name
    return Program(name, list(inputs), {}, [pred], names, [name], [pred])


class Branched:
    """The generated module of a branched f: each path's and predicate's code, and the dispatcher."""

    def __init__(self, base, paths, nargs, parallel):
        self.entry = base
        paths = sorted(paths, key=lambda p: [not d.taken for d in p[0]])     # as the dispatcher reads: true first
        self.program = paths[0][1]
        self.modules, tree, count = [], {}, 0
        for i, (decisions, program) in enumerate(paths, 1):
            program.name = f"{base}_path{i}"
            self.modules.append(_module(program, parallel))
            outcomes = tuple(d.taken for d in decisions)
            tree[outcomes] = len(self.modules) - 1
            for k, d in enumerate(decisions):
                if outcomes[:k] not in tree:
                    count += 1
                    pred = predicate_program(f"{base}_if{count}", d, program.inputs[:nargs])
                    self.modules.append(_module(pred, parallel))
                    tree[outcomes[:k]] = (len(self.modules) - 1, d)
        self.tree = tree
        self.nargs = nargs
        self.direct = all(m.direct for m in self.modules)
        self.constants = [m.constants for m in self.modules]
        self.functions = [fn for m in self.modules for fn in m.functions]
        self.functions.append(("element" if self.direct else "driver", base, self._dispatcher()))

    def _call(self, index, params):
        module = self.modules[index]
        if module.direct and not self.direct:
            params = [f"np.asarray({p})[()]" for p in params]
        k = "" if module.direct else f", K=K[{index}]"
        return f"{module.entry}({', '.join(params)}{k})"

    def _dispatcher(self):
        first = self.modules[0]
        params = [first.namer(x) for x in self.program.inputs]
        defaults = self.program.defaults
        signature = ", ".join(f"{p}={defaults[p]!r}" if p in defaults else p for p in params)
        if self.direct:
            head = ["@njit(cache=True, error_model=\"numpy\")", f"def {self.entry}({signature}):"]
        else:
            head = [f"def {self.entry}({signature}, *, K=()):"]
        head.append(f'    """{self.entry}: which way through the `if`s, then that way\'s program."""')
        lines = []
        self._emit((), params, "    ", lines)
        return "\n".join(head + lines)

    def _emit(self, prefix, params, indent, lines):
        """The dispatcher's code below ``prefix`` (the outcomes so far): an if per decision, a return per path."""
        while True:
            node = self.tree[prefix]
            if isinstance(node, int):
                lines.append(f"{indent}return {self._call(node, params)}")
                return
            index, decision = node
            if len(indent) // 4 > MAX_DEPTH:
                raise CompileError(f"autodiff.compile: f's `if`s on traced values nest more than {MAX_DEPTH} deep"
                                   f"{where_text(decision.where)}: select elementwise with autodiff.where instead")
            note = f"  # {located(decision.where)}" if decision.where else ""
            lines.append(f"{indent}if {self._call(index, params[:self.nargs])}:{note}")
            if prefix + (True,) in self.tree:
                self._emit(prefix + (True,), params, indent + "    ", lines)
            else:
                lines.append(f"{indent}    raise RuntimeError('unreachable')")
            prefix = prefix + (False,)
            if prefix not in self.tree:
                lines.append(f"{indent}raise RuntimeError('unreachable')")
                return

    @property
    def source(self):
        head = [f'"""Generated by autodiff.compile from {self.entry}: edit the function, not this file."""',
                "import numpy as np",
                f"from numpy import {', '.join(NUMPY_NAMES)}",
                "from numba import njit, prange"]
        if not self.direct or not all(m.direct for m in self.modules):
            head += ["from autodiff.compiler import runtime as rt", "from autodiff.compiler.runtime import impl"]
        return "\n".join(head) + "\n\n\n" + "\n\n\n".join(src for _, _, src in self.functions) + "\n"


def _module(program, parallel):
    """A straight-line program's generated module (its loops and NumPy calls scheduled)."""
    kinds = classify(program)
    return Module(program, schedule(program, kinds), kinds, parallel)


def build_module(f, args, mode, argnums, parallel, **options):
    """(program, module) for f at ``args``: the straight-line Module, or a Branched one when f decides
    (``options`` go to :func:`.trace.trace`)."""
    paths = enumerate_paths(f, args, mode, argnums, **options)
    if len(paths) == 1 and not paths[0][0]:
        return paths[0][1], _module(paths[0][1], parallel)
    module = Branched(paths[0][1].name, paths, len(args), parallel)
    return module.program, module


__all__ = ["Branched", "MAX_PATHS", "build_module", "enumerate_paths"]
