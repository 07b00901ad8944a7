"""Code generation: a scheduled Program as the source of one Python module, readable and compilable.

The module holds one loop per :class:`~autodiff.compiler.fuse.Block` (``for k in prange(n)``),
whose body is the straight-line code for one element: the statements of eq. 5.38 and the adjoints
of eq. 5.39, one line per named value (forward nodes ``a``, adjoints ``a_bar``, tangents
``a_dot``), a temporary used once written into the line that uses it; and a *driver* that
allocates the outputs, runs the loops in order and calls NumPy between them. Loops that are the
same but for their names (an unrolled LSTM's steps) are written once. A program of scalars that
fits in one loop is that body alone, as a plain ``@njit`` function. Expressions are built as Python syntax
trees from each primitive's template, so ``ast.unparse`` writes exactly the parentheses the precedence needs;
a temporary is written into its user only while the line stays within ``INLINE_DEPTH`` nested primitives
and ``INLINE_SIZE`` primitives in all, so a long program (a fan-out sum of a thousand contributions, an ODE's
parameter used at every step) is cut into named temporaries t1, t2... instead of one expression nested as
deep as the program (which Python's own parser and compiler could not take).

Each statement ends with the source map (:mod:`.sourcemap`): ``a = sin(x)  # lesson.py:12``, the line of
the user's code it comes from (an adjoint's: the line it differentiates); the module's header says which
file each short name is, once. The comments are not part of a loop's identity, so identical loops are still
written once (with the comments of their first use).
"""
from __future__ import annotations

import ast
import copy
import math
import re

import numpy as np

from .sourcemap import Comments


NUMPY_NAMES = ("abs", "cos", "exp", "float32", "float64", "inf", "log", "maximum", "minimum", "nan", "sign",
               "sin", "sqrt", "tan", "tanh")
RESERVED = set(NUMPY_NAMES) | {"np", "njit", "prange", "rt", "impl", "K", "n", "k"}
PARALLEL_MIN = 1 << 15   # loops this long (elements) run on all cores when parallel is left to choose
INLINE_DEPTH = 12        # at most this many primitives nested in one line (the rest: named temporaries)
INLINE_SIZE = 32         # at most this many primitives in one line


def literal(v):
    """Python source for a static value, or None when it is not a plain literal (an array...)."""
    if v is None or isinstance(v, (bool, str)) or v is Ellipsis:
        return "..." if v is Ellipsis else repr(v)
    if isinstance(v, (int, np.integer)) and not isinstance(v, np.bool_):
        return repr(int(v))
    if isinstance(v, np.bool_):
        return repr(bool(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, (tuple, list)):
        items = [literal(x) for x in v]
        if any(i is None for i in items):
            return None
        body = ", ".join(items) + ("," if len(items) == 1 and isinstance(v, tuple) else "")
        return f"({body})" if isinstance(v, tuple) else f"[{body}]"
    if isinstance(v, slice):
        parts = [literal(v.start), literal(v.stop), literal(v.step)]
        return None if any(p is None for p in parts) else f"slice({', '.join(parts)})"
    if isinstance(v, np.dtype):
        return f"np.dtype({v.str!r})"
    if isinstance(v, type) and issubclass(v, np.generic):
        return f"np.{v.__name__}"
    return None


class Namer:
    """Unique identifiers for the program's values: its own names first, then t1, t2, ..."""

    def __init__(self, names):
        self.given = names
        self.names = {}
        self.taken = set(RESERVED)
        self.count = 0

    def __call__(self, node):
        key = id(node)
        if key not in self.names:
            base = self.given.get(key)
            if base is None:
                self.count += 1
                base = f"t{self.count}"
            name = base
            k = 1
            while name in self.taken or re.fullmatch(r"_[rws]\d+", name):
                k += 1
                name = f"{base}_{k}"
            self.taken.add(name)
            self.names[key] = name
        return self.names[key]


def _template(node):
    prim = node.op
    if prim.code == "impl":   # a reshape or scalar broadcast inside a loop: the element itself
        return "{0}"
    return prim.code


def _placeholders(node):
    n = len(node.inputs)
    return [f"_p{i}_" for i in range(n)]


def _call_text(node):
    """``name(_p0_, _p1_, key=value)``: a primitive without an element template, written as a call to read."""
    params = [f"{k}={literal(v) if literal(v) is not None else '...'}" for k, v in node.params.items()]
    return f"{node.op.name}({', '.join(_placeholders(node) + params)})"


def template_ast(node, calls=False):
    """The element expression of ``node`` with placeholders _p0_, _p1_... for its inputs (``calls``: a
    primitive computed by NumPy, or by nothing compiled, is written as a call of its name, for reading)."""
    code = _template(node)
    ph = _placeholders(node)
    if calls and node.op.code in (None, "impl"):
        text = _call_text(node)
    elif callable(code):
        text = code(*ph, **node.params)
    else:
        params = {k: literal(v) for k, v in node.params.items()}
        text = code.format(*ph, **params)
    return ast.parse(text, mode="eval").body


def _occurrences(tree):
    counts = {}
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Name) and sub.id.startswith("_p"):
            counts[sub.id] = counts.get(sub.id, 0) + 1
    return counts


def constant_ast(value):
    v = np.asarray(value)
    x = v.reshape(()).item()
    if isinstance(x, float) and not math.isfinite(x):
        tree = ast.parse(literal(x), mode="eval").body
    else:
        tree = ast.Constant(x)
    if v.dtype == np.float32:
        tree = ast.Call(ast.Name("float32"), [tree], [])
    return tree


class _Substitute(ast.NodeTransformer):
    def __init__(self, children):
        self.children = children

    def visit_Name(self, node):
        child = self.children.get(node.id)
        return copy.deepcopy(child) if child is not None else node


def _inlined(nodes, trees, namer, kept):
    """The temporaries written into the line that uses them: unnamed, used once, and small enough there
    (a line holds at most INLINE_DEPTH nested primitives and INLINE_SIZE in all; one pass in program order)."""
    members = {id(n) for n in nodes}
    uses = {}
    for node in nodes:
        counts = _occurrences(trees[id(node)])
        for i, u in enumerate(node.inputs):
            uses[id(u)] = uses.get(id(u), 0) + counts.get(f"_p{i}_", 0)
    inline = {id(n) for n in nodes if id(n) not in namer.given and uses.get(id(n), 0) == 1 and id(n) not in kept}
    depth, size = {}, {}
    for node in nodes:
        children = sorted({id(u) for u in node.inputs if id(u) in inline and id(u) in members},
                          key=lambda k: (depth[k], size[k]), reverse=True)
        while children and (depth[children[0]] >= INLINE_DEPTH or 1 + sum(size[k] for k in children) > INLINE_SIZE):
            inline.discard(children.pop(0))      # the deepest (largest) child gets a line of its own
        depth[id(node)] = 1 + max((depth[k] for k in children), default=0)
        size[id(node)] = 1 + sum(size[k] for k in children)
    return inline


def lines_of(nodes, returns, namer, comments=None, calls=False):
    """``(node, "name = expression", nodes in the line)`` for each line of ``nodes`` (a temporary used once
    written where it is used), with the source map's comment when ``comments`` (:class:`.sourcemap.Comments`)
    is given."""
    members = {id(n) for n in nodes}
    trees = {id(n): template_ast(n, calls) for n in nodes}
    inline = _inlined(nodes, trees, namer, {id(n) for n in returns})

    def expression(node, within):
        within.append(node)
        children = {}
        for i, u in enumerate(node.inputs):
            if id(u) in inline:
                children[f"_p{i}_"] = expression(u, within)
            elif id(u) in members or u.requires_grad or u.size > 1:
                children[f"_p{i}_"] = ast.Name(namer(u))
            else:
                children[f"_p{i}_"] = constant_ast(u.value)
        return _Substitute(children).visit(copy.deepcopy(trees[id(node)]))

    out = []
    for node in nodes:
        if id(node) not in inline:
            within = []
            line = f"{namer(node)} = {ast.unparse(expression(node, within))}"
            note = comments(within) if comments is not None else ""
            out.append((node, f"{line}  # {note}" if note else line, within))
    return out


def statements(block, returns, namer, comments=None):
    """The lines ``name = expression`` of ``block``, a temporary used once written where it is used."""
    return [line for _, line, _ in lines_of(block.nodes, returns, namer, comments)]


def element_function(block, name, params, returns, namer, defaults=None, comments=None):
    """Source of ``def name(params): statements; return ...`` for one element of ``block``."""
    lines = ["    " + line for line in statements(block, returns, namer, comments)]
    defaults = defaults or {}
    signature = ", ".join(f"{p}={defaults[p]!r}" if p in defaults else p for p in params)
    names = [namer(n) for n in returns]
    ret = names[0] if len(names) == 1 else ", ".join(names)
    return "\n".join([f"def {name}({signature}):"] + lines + [f"    return {ret}"])


def loop_function(name, block, namer, parallel, comments=None):
    """Source of the loop over ``block``'s elements: it reads the arrays _r0.., writes _w0.. and
    returns the sums _s0.. (``prange``: the iterations are independent, the sums are reductions)."""
    reduced = [r.inputs[0] for r in block.reductions]
    params = ["n"] + [f"_r{j}" for j in range(len(block.reads))] + [f"_w{j}" for j in range(len(block.writes))]
    body = [f"@njit(parallel={parallel}, cache=True, error_model=\"numpy\")", f"def {name}({', '.join(params)}):"]
    sums = [f"_s{j}" for j in range(len(block.reductions))]
    body += [f"    {s} = 0.0" for s in sums]
    body.append("    for k in prange(n):")
    body += [f"        {namer(u)} = _r{j}[{'0' if u.size == 1 and block.size != 1 else 'k'}]"
             for j, u in enumerate(block.reads)]
    body += ["        " + line for line in statements(block, list(block.writes) + reduced, namer, comments)]
    body += [f"        _w{j}[k] = {namer(n)}" for j, n in enumerate(block.writes)]
    body += [f"        {s} += {namer(u)}" for s, u in zip(sums, reduced)]
    if sums:
        body.append(f"    return ({', '.join(sums)},)")
    return "\n".join(body)


class Module:
    """The generated module: its source, the names of its driver and loops, and its constants."""

    def __init__(self, program, steps, kinds, parallel=None):
        self.program, self.steps, self.kinds = program, steps, kinds
        self.namer = Namer(program.names)
        self.comments = Comments(getattr(program, "locations", {}))
        self.constants = []
        self.functions = []      # (kind, name, source): element functions and loops
        self.seen = {}           # canonical source -> function name (identical loops are shared)
        self.parallel = parallel
        for leaf in program.inputs:
            self.namer(leaf)
        self.direct = self._direct()
        self.entry = program.name     # the element function itself, or the driver
        if self.direct:
            self._emit_direct()
        else:
            self._emit_driver()

    # --- the pieces ---------------------------------------------------------------------------
    def _direct(self):
        """A program of scalars in one loop is its element function alone (no driver)."""
        p = self.program
        if len(self.steps) != 1 or self.steps[0][0] != "block":
            return False
        block = self.steps[0][1]
        members = {id(n) for n in block.nodes}
        inputs = {id(x) for x in p.inputs}
        return (block.size == 1 and not block.reductions and all(x.ndim == 0 for x in p.inputs)
                and all(o is not None and id(o) in members and o.ndim == 0 for o in p.outputs)
                and all(id(u) in inputs for u in block.reads))

    def _emit_direct(self):
        p = self.program
        block = self.steps[0][1]
        params = [self.namer(x) for x in p.inputs]
        src = element_function(block, p.name, params, p.outputs, self.namer, p.defaults, self.comments)
        self.functions.append(("element", p.name, "@njit(cache=True, error_model=\"numpy\")\n" + src))

    def _constant(self, value):
        self.constants.append(value)
        return f"K[{len(self.constants) - 1}]"

    def _block(self, block, lines):
        parallel = self._parallel(block.size)
        key = loop_function("f", block, _Canon(block), parallel)   # positional names: a loop met before?
        if key not in self.seen:
            loop = f"{self.program.name}_loop{len(self.seen) + 1}"
            self.functions.append(("loop", loop, loop_function(loop, block, self.namer, parallel, self.comments)))
            self.seen[key] = loop
        loop = self.seen[key]
        args = [str(block.size)]
        for u in block.reads:
            source = self.namer(u) if u.requires_grad else self._constant(u.value)
            args.append(f"rt.flat({source})")
        for w in block.writes:
            lines.append(f"    {self.namer(w)} = np.empty({w.shape!r}, {w.dtype.name})")
            args.append(f"{self.namer(w)}.reshape(-1)")
        call = f"{loop}({', '.join(args)})"
        if block.reductions:
            sums = [f"_s{j}" for j in range(len(block.reductions))]
            lines.append(f"    {', '.join(sums)}, = {call}")
            for s, r in zip(sums, block.reductions):
                scale = "" if r.op.name == "sum" else f" / {r.inputs[0].size}"
                line = f"    {self.namer(r)} = rt.reduced({s}{scale}, {r.shape!r}, {r.dtype.name})"
                lines.append(self._noted(line, r))
        else:
            lines.append(f"    {call}")

    def _parallel(self, size):
        if self.parallel is None:
            return size >= PARALLEL_MIN
        return bool(self.parallel) and size > 1

    def _call(self, node, lines):
        args = []
        for u in node.inputs:
            if u.requires_grad:
                args.append(self.namer(u))
            elif u.ndim == 0 and u.dtype == node.dtype:   # a number: promotes as the 0-d constant did
                args.append(literal(u.value.item()))
            else:
                args.append(self._constant(u.value))
        for k, v in node.params.items():
            text = literal(v)
            args.append(f"{k}={text if text is not None else self._constant(v)}")
        lines.append(self._noted(f"    {self.namer(node)} = impl.{node.op.name}({', '.join(args)})", node))

    def _noted(self, line, node):
        note = self.comments([node])
        return f"{line}  # {note}" if note else line

    def _emit_driver(self):
        p = self.program
        lines = []
        for kind, item in self.steps:
            if kind == "block":
                self._block(item, lines)
            else:
                self._call(item, lines)
        outs = []
        for o, (shape, dtype) in zip(p.outputs, p.refs):
            outs.append(f"np.zeros({shape!r}, {dtype.name})" if o is None else self.namer(o))
        params = [self.namer(x) for x in p.inputs]
        signature = ", ".join(f"{q}={p.defaults[q]!r}" if q in p.defaults else q for q in params)
        head = [f"def {p.name}({signature}, *, K=()):",
                f'    """{_docline(p)}"""']
        self.functions.append(("driver", p.name, "\n".join(head + lines + [f"    return {', '.join(outs)}"])))

    @property
    def source(self):
        head = [f'"""Generated by autodiff.compile from {self.program.name}: edit the function, not this file."""',
                *self.comments.header(),
                "import numpy as np",
                f"from numpy import {', '.join(NUMPY_NAMES)}",
                "from numba import njit, prange"]
        if not self.direct:
            head.append("from autodiff.compiler import runtime as rt")
            head.append("from autodiff.compiler.runtime import impl")
        return "\n".join(head) + "\n\n\n" + "\n\n\n".join(src for _, _, src in self.functions) + "\n"


class _Canon(Namer):
    """Positional names for the canonical form of a block (inputs first, then the nodes in order)."""

    def __init__(self, block):
        super().__init__({})
        self.given = {id(n): f"v{i}" for i, n in enumerate(list(block.reads) + list(block.nodes))}


def _docline(program):
    outs = ", ".join(program.output_names)
    return f"{outs} of {program.name} at the inputs' shapes and dtypes; the loops run in this order."


def listing(program):
    """The program as one straight line, for reading (autodiff.explain): as :func:`lines_of`, per statement,
    whole arrays at a time, each line with its source-map comment; a primitive that NumPy computes is
    written as a call of its name (``matmul(a, b)``)."""
    nodes = [n for n in program.order if n.op is not None]
    given = dict(program.names)
    constants = [n for n in program.order if n.op is None and not n.requires_grad and n.size > 1]
    given.update({id(c): f"K{k}" for k, c in enumerate(constants)})
    namer = Namer(given)
    for leaf in program.inputs:
        namer(leaf)
    returns = [o for o in program.outputs if o is not None]
    return lines_of(nodes, returns, namer, Comments(getattr(program, "locations", {})), calls=True)


__all__ = ["INLINE_DEPTH", "INLINE_SIZE", "Module", "PARALLEL_MIN", "listing", "literal"]
