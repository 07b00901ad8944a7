"""The compiled function: one generated module per signature, written to a cache and run by Numba.

The source of each program is written to ``<cache>/<name>_<hash of the source>.py`` (once: an
existing file is never rewritten, so its timestamp, which Numba's cache checks, stays put) and
imported from there; its functions are ``@njit(cache=True)``, so Numba keeps their machine code
in the ``__pycache__`` beside the file (under ``$NUMBA_CACHE_DIR`` when that is set) and a second
process, generating the same source, loads it instead of compiling. The cache folder is ``$AUTODIFF_CACHE_DIR``, else
``$XDG_CACHE_HOME/autodiff`` (``~/.cache/autodiff``).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..primitives import as_array
from .branches import build_module
from .guards import options
from .static import StaticCompiled
from .trace import CompileError, as_input
from .trees import TreeCompiled, has_trees

MODES = ("value", "reverse", "vjp", "forward")


def cache_dir(path=None) -> Path:
    """Where generated modules (and Numba's machine code beside them) are kept."""
    if path is None:
        path = os.environ.get("AUTODIFF_CACHE_DIR") or (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "autodiff")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def load(source, stem, folder):
    """Import the module of ``source`` from its file in ``folder`` (written first if missing)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"autodiff_compiled_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name], Path(sys.modules[name].__file__)
    path = folder / f"{stem}_{digest}.py"
    # only the code generated here is ever imported: a file of that name with other contents (edited,
    # truncated, planted in a shared folder) is replaced; an unchanged one keeps its timestamp, so
    # Numba's cache of it stays valid
    if not path.exists() or path.read_text(errors="replace") != source:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, path


def _constants(items):
    """A module's constants (a branched module's: its programs' lists), flat."""
    for item in items:
        if isinstance(item, list):
            yield from _constants(item)
        else:
            yield item


class Signature:
    """One compiled program: for arguments of these shapes and dtypes."""

    def __init__(self, key, program, module, python, path):
        self.key, self.program, self.module, self.path = key, program, module, path
        loops = {id(c): c for c in _constants(module.constants) if hasattr(c, "describe")}   # loop_vjp shares it
        self.source = module.source + "".join(c.describe() for c in loops.values())
        self.entry = getattr(python, module.entry)
        self.kernels = [getattr(python, name) for kind, name, _ in module.functions if kind != "driver"]
        if not module.direct:
            constants = module.constants
            driver = self.entry
            self.entry = lambda *args: driver(*args, K=constants)

    def from_cache(self):
        """Whether the Numba functions this program calls were loaded from the cache (after a call)."""
        called = [k.stats for k in self.kernels if k.stats.cache_hits or k.stats.cache_misses]
        return bool(called) and all(s.cache_hits and not s.cache_misses for s in called)


def _key(args):
    key = []
    args = [a if type(a) in (float, np.ndarray) or hasattr(a, "requires_grad") else as_input(a, i)
            for i, a in enumerate(args)]
    for a in args:
        if type(a) is float:
            key.append(_SCALAR)
        elif type(a) is np.ndarray:
            key.append((a.shape, a.dtype.char))
        else:
            arr = np.asarray(a.value if hasattr(a, "value") and hasattr(a, "requires_grad") else a)
            key.append((arr.shape, arr.dtype.char))
    return tuple(key)


_SCALAR = ((), "d")
_SHAPES = {("forward", False): "(a tangent has its argument's shape)",
           ("forward", True): "(k tangents stacked along a new leading axis: (k, *argument's shape))",
           ("vjp", False): "(a cotangent has its output's shape)"}


def _tangent_count(tangents, mode):
    """``tangents=``: None (one tangent per call) or k >= 1 (forward mode: k tangents stacked per call)."""
    if tangents is None:
        return None
    if isinstance(tangents, bool) or not isinstance(tangents, (int, np.integer)) or tangents < 1:
        raise ValueError(f"autodiff.compile: tangents must be a positive int (k tangents per call) or None, "
                         f"got {tangents!r}")
    if mode != "forward":
        raise ValueError(f"autodiff.compile: tangents= batches forward mode's tangents; mode is {mode!r}")
    return int(tangents)


class Compiled:
    """``f`` compiled for one mode; call it like ``f`` (see :func:`autodiff.compile`)."""

    def __init__(self, f, example_args, mode="reverse", argnums=0, parallel=None, cache=None, tangents=None):
        if not isinstance(mode, str) or mode not in MODES:
            raise ValueError(f"autodiff.compile: mode must be one of {MODES}, got {mode!r}")
        self.tangents = _tangent_count(tangents, mode)
        if not example_args:
            raise TypeError("autodiff.compile(f, *example_args): give example arguments (f is recorded at them)")
        self.f, self.mode, self.parallel, self.cache = f, mode, parallel, cache
        self.nargs = len(example_args)
        self.single = isinstance(argnums, (int, np.integer))
        nums = (int(argnums),) if self.single else tuple(int(a) for a in argnums)
        for a in nums:
            if not -self.nargs <= a < self.nargs:
                raise ValueError(f"autodiff.compile: argnums={argnums!r} names argument {a}, but "
                                 f"{self.nargs} example argument(s) were given")
        self.argnums = tuple(a % self.nargs for a in nums)
        # what a call takes after f's arguments: one tangent per differentiated argument, or the cotangent
        self.nextra = len(self.argnums) if mode == "forward" else 1 if mode == "vjp" else 0
        self.signatures = {}
        self.last = self._build(tuple(example_args), self.tangents)
        self.__name__ = f"compiled({getattr(f, '__name__', 'f')}, mode={mode!r})"

    def __repr__(self):
        shapes = ", ".join("(" + ", ".join(f"{s}:{c}" for s, c in key) + ")" for key in self.signatures)
        return f"<{self.__name__}: {len(self.signatures)} signature(s) {shapes}; .source to read it>"

    # --- building -------------------------------------------------------------------------------
    def _build(self, args, k=None):
        key = _key(args) + ((("tangents", k),) if k is not None else ())
        with options(cache=self.cache, parallel=self.parallel):    # for the loop bodies compiled on the way
            program, module = build_module(self.f, args, self.mode, self.argnums, self.parallel, tangents=k)
        python, path = load(module.source, module.entry, cache_dir(self.cache))
        sig = Signature(key, program, module, python, path)
        self.signatures[key] = sig
        if len(self.signatures) == 1:
            self._fast = self._fast_path(sig)
            self._nfast = self.nargs + self.nextra
        elif self._fast is not None:
            self._fast = None  # several signatures: look each call up
        return sig

    @property
    def source(self) -> str:
        """The generated module for the latest signature: element functions, loops, driver."""
        return self.last.source

    @property
    def path(self) -> Path:
        """The file the generated source was written to (Numba's cache sits beside it)."""
        return self.last.path

    def from_cache(self) -> bool:
        """True when the machine code of the latest signature came from Numba's cache (after a call)."""
        return self.last.from_cache()

    # --- calling ---------------------------------------------------------------------------------
    def _fast_path(self, sig):
        """The element function itself, when Python floats in give the result as it comes out."""
        refs_f64 = all(d == np.float64 for _, d in sig.program.refs)
        n = len(sig.program.outputs)
        plain = (self.mode == "value" and n == 1 or self.mode in ("reverse", "vjp") and self.single and n == 2
                 or self.mode == "forward" and n == 2)
        if sig.module.direct and refs_f64 and plain and all(k == _SCALAR for k in sig.key):
            return sig.entry
        return None

    def __call__(self, *args):
        fast = self._fast
        if fast is not None and len(args) == self._nfast:
            for a in args:
                if type(a) is not float:
                    break
            else:
                return fast(*args)
        return self._call(args)

    def _call(self, args):
        expected = self.nargs + self.nextra
        if len(args) != expected:
            what = {"forward": " and one tangent per differentiated argument", "vjp": " and the cotangent"}
            raise TypeError(f"{self.__name__} takes {expected} argument(s) (f's {self.nargs}"
                            f"{what.get(self.mode, '')}), got {len(args)}")
        primals = args[:self.nargs]
        k = self._batch_size(args[self.nargs:]) if self.tangents is not None else None
        sig = self.signatures.get(_key(primals) + ((("tangents", k),) if k is not None else ()))
        if sig is None:  # another shape or dtype (or number of tangents): record f there and compile again
            sig = self.last = self._build(primals, k)
        if self.mode == "vjp":
            args = primals + self._cotangents(sig, args[-1])
        if not sig.module.direct or any(type(a) is not float for a in args):
            args = self._prepare(sig, args)
        out = sig.entry(*args)
        return self._structure(sig, out)

    #: set by TreeCompiled: how each argument leaf and each output leaf is named in errors ("0['w']", "['y']")
    leaf_names = None

    def _what(self, i):
        """How input ``i`` of the program is named in an error: f's argument, a tangent or a cotangent."""
        j = i - self.nargs
        names = self.leaf_names or {}
        if j < 0:
            return f"argument {names.get(('in', i), i)}"
        if self.mode == "forward":
            return f"the tangent of argument {names.get(('in', self.argnums[j]), self.argnums[j])}"
        return "the cotangent" + (f" of output {names.get(('out', j), j)}" if self._outputs > 1 else "")

    def _batch_size(self, tangents):
        """k, the number of tangents a call of ``tangents=`` gives: the leading axis of the first tangent."""
        shape = as_array(tangents[0], f"{self.__name__}: {self._what(self.nargs)}").shape
        if not shape:
            raise ValueError(f"{self.__name__}: {self._what(self.nargs)} is a scalar; compiled with tangents=, each "
                             f"tangent stacks k tangents along a new leading axis, shape (k, *argument's shape)")
        return shape[0]

    def _cotangents(self, sig, cotangent):
        """The cotangent of each of f's outputs: the one given, or the tuple's (f returned several)."""
        self._outputs = m = len(sig.program.outputs) - len(self.argnums)
        if m == 1:
            return (cotangent,)
        if not isinstance(cotangent, (tuple, list)) or len(cotangent) != m:
            got = f"{len(cotangent)} of them" if isinstance(cotangent, (tuple, list)) else type(cotangent).__name__
            raise TypeError(f"{self.__name__}: the cotangent is a tuple of {m} arrays, one per output of f, got {got}")
        return tuple(cotangent)

    def _prepare(self, sig, args):
        prog = sig.program
        ready = []
        for i, (a, leaf) in enumerate(zip(args, prog.inputs)):
            arr = as_input(a, i) if i < self.nargs else self._seed(a, leaf, i)
            if arr.shape != leaf.shape:
                raise ValueError(f"{self.__name__}: {self._what(i)} has shape {arr.shape}, expected {leaf.shape} "
                                 f"{_SHAPES[self.mode, self.tangents is not None]}")
            arr = arr.astype(leaf.dtype, copy=False)
            ready.append(arr[()] if sig.module.direct else arr)
        return ready

    def _seed(self, a, leaf, i):
        """A tangent or cotangent as an array: real numbers (cast to its argument's or output's dtype)."""
        arr = as_array(a.value if hasattr(a, "value") and hasattr(a, "requires_grad") else a,
                       f"{self.__name__}: {self._what(i)}")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{self.__name__}: {self._what(i)} has dtype {arr.dtype}; give real numbers of shape "
                            f"{leaf.shape} ({leaf.dtype})")
        return arr

    def _structure(self, sig, out):
        outs = out if isinstance(out, tuple) else (out,)
        refs = sig.program.refs
        if sig.module.direct:
            if all(d == np.float64 for _, d in refs):
                return self._nest(out, outs)
            outs = tuple(d.type(v) for v, (_, d) in zip(outs, refs))
        else:
            outs = tuple(v[()] if isinstance(v, np.ndarray) and v.ndim == 0 else v for v in outs)
        return self._nest(None, outs)

    def _nest(self, raw, outs):
        if self.mode == "value":
            return outs if len(outs) > 1 else outs[0]
        if self.mode == "reverse":
            if self.single:
                return raw if raw is not None else (outs[0], outs[1])
            return outs[0], tuple(outs[1:])
        if self.mode == "vjp":
            m = len(outs) - len(self.argnums)
            if m == 1 and self.single:
                return raw if raw is not None else (outs[0], outs[1])
            return outs[0] if m == 1 else tuple(outs[:m]), outs[m] if self.single else tuple(outs[m:])
        m = len(outs) // 2
        if m == 1:
            return raw if raw is not None else (outs[0], outs[1])
        return tuple(outs[:m]), tuple(outs[m:])


def compile(f, *example_args, mode="reverse", argnums=0, parallel=None, cache=None, tangents=None,
            static_argnums=None):
    """Compile ``f`` by source transformation: record it once at ``example_args``, write its
    straight-line program (eq. 5.38) and its derivative (the adjoints of eq. 5.39, or tangents) as
    Python source, and compile that with Numba.

    - ``mode="value"``: ``cf(*args)`` is ``f(*args)``;
    - ``mode="reverse"`` (default): ``cf(*args)`` is ``(f(*args), gradient)`` as
      :func:`autodiff.value_and_grad` (``f`` returns a scalar; ``argnums`` as there);
    - ``mode="vjp"``: ``cf(*args, cotangent)`` is ``(f(*args), vjp)`` as ``jax.vjp``'s ``vjp_fun(cotangent)``
      for any output: the cotangent has the output's shape (a tuple of them when f returns several), and
      vjp is ``cotangent^T J``, one array per argument in ``argnums`` (a tuple when argnums is one);
    - ``mode="forward"``: ``cf(*args, *tangents)`` is ``(f(*args), tangent)`` as :func:`autodiff.jvp`,
      one tangent per argument in ``argnums``. With ``tangents=k`` each tangent stacks k of them along a
      new leading axis, ``(k, *arg.shape)``, and so does the result (``jax.vmap`` of ``jax.jvp``): one
      program pushes all k (another k compiles again).

    Arguments may be pytrees (a dict of parameters, a list of arrays): the program takes their leaves,
    and the gradient (tangent, value) comes back in the same structure. ``cf.source`` is the generated code.
    ``f`` is traced, like ``jax.jit``: its numbers cannot be read while it is recorded (a comparison is
    recorded, an ``if`` on a traced value compiles both ways with a dispatcher, ``float()``/``.value``
    are refused); ``static_argnums`` names arguments f sees as plain values, compiled once per value.
    Arguments of another shape or dtype are recorded and compiled again. ``autodiff.scan``, ``fori_loop`` and
    ``while_loop`` stay one loop each, their body compiled once. Elementwise chains become one loop
    (``prange`` over all cores from ``PARALLEL_MIN`` elements, or as ``parallel=`` says); other primitives
    call NumPy.

    >>> import numpy as np, autodiff as ad
    >>> from autodiff.examples import eq_5_36, eq_5_37
    >>> cf = ad.compile(eq_5_36, 0.5)
    >>> y, dy = cf(0.5)
    >>> bool(np.isclose(dy, eq_5_37(0.5), rtol=1e-14))
    True
    """
    if static_argnums is not None and static_argnums != ():
        return StaticCompiled(compile, f, example_args, static_argnums, mode=mode, argnums=argnums, parallel=parallel,
                              cache=cache, tangents=tangents)
    if has_trees(example_args):     # a dict of parameters, a list of arrays...: compiled on their leaves
        return TreeCompiled(Compiled, f, example_args, mode=mode, argnums=argnums, parallel=parallel, cache=cache,
                            tangents=tangents)
    return Compiled(f, example_args, mode=mode, argnums=argnums, parallel=parallel, cache=cache, tangents=tangents)


__all__ = ["CompileError", "Compiled", "cache_dir", "compile"]
