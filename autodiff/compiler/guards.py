"""Abstract tracing: while compile records f, a traced value cannot be read, only computed with.

``autodiff.compile`` runs f once on leaves that stand for its arguments. Whatever f reads from a
traced value's numbers would be frozen at the example point, so while f is recorded every way to a
concrete value either stays in the program or stops with a one-line :class:`CompileError` naming
the user's line and the way out (JAX's ConcretizationTypeError, with ``static_argnums``):

- a comparison (``x > 0``, ``x == y``, ``np.greater``) is a recorded mask (:mod:`autodiff.ops.compare`),
  so ``where(x > 0, a, b)`` selects at run time;
- the truth of a traced value (``if``, ``while``, ``and``, ``or``, ``not``, ``a if c else b``) is a
  branch: :mod:`.branches` records f once per way through its decisions;
- ``x.item()`` is the 0-d node itself, ``x.detach()`` is ``stop_gradient(x)``;
- ``float()``, ``int()``, ``x.value``, ``x.numpy()``, ``np.asarray(x)``, and NumPy functions that
  read values (``np.argmax``, ``np.any``, ``np.floor``...) raise.

The guards are Tensor's methods swapped for the recording (under a lock: one recording at a time).
"""
from __future__ import annotations

import linecache
import os
import sys
import threading

import numpy as np

from .. import interop
from ..anomaly import user_frame as find_user_frame
from ..ops import compare, getitem, reshape, select, stop_gradient
from ..tensor import Batched, Tensor, every_example, value_of
from .sourcemap import PACKAGES

_lock = threading.RLock()
_state = threading.local()


class CompileError(TypeError):
    """Something autodiff.compile cannot turn into a program, said with the way out."""


class Decision:
    """One truth test of a traced value met while recording f: its predicate node, the way taken, where."""

    __slots__ = ("predicate", "taken", "where")

    def __init__(self, predicate, taken, where):
        self.predicate, self.taken, self.where = predicate, taken, where


def user_frame(depth=1):
    """(file, line, function) of the innermost frame of the user's code (the project's packages skipped)."""
    return find_user_frame(sys._getframe(depth + 1), PACKAGES)


def located(frame):
    """``file.py:12 (`code`)``: a frame as messages and generated comments name it."""
    code = linecache.getline(frame[0], frame[1]).strip()
    return f"{os.path.basename(frame[0])}:{frame[1]}" + (f" (`{code}`)" if code else "")


def where_text(frame):
    """`` at file.py:12 (`code`)`` for messages; empty when the frame is unknown."""
    return "" if frame is None else " at " + located(frame)


def _from_user():
    """Whether the caller of the guarded method is the user's code (the engine reads values freely)."""
    return not sys._getframe(2).f_code.co_filename.startswith(PACKAGES)


def _recording():
    """Whether this thread is recording f (the swapped methods are the class's, seen by every thread)."""
    return getattr(_state, "script", None) is not None


def _traced(x):
    return isinstance(x, Tensor) and x.requires_grad and type(x._value) is not Batched and _recording()


def _recorded(x):
    """A traced value, or a vmap value whose examples are nodes of the program being recorded."""
    if not isinstance(x, Tensor) or not _recording():
        return False
    data = every_example(x)
    return x.requires_grad or (isinstance(data, Tensor) and data.requires_grad)


def refuse(what, way_out):
    """The one-line CompileError for reading a traced value, naming the user's line."""
    return CompileError(f"autodiff.compile: {what} reads a traced value{where_text(user_frame(2))}, whose number "
                        f"would be frozen at the example point; {way_out}, or mark the argument static "
                        f"(autodiff.compile(f, *args, static_argnums=(i,)), as jax.jit)")


_STAY = "keep it in the program (autodiff's ops and NumPy's functions on Tensors are recorded)"
_COUNT = ("a count or an index must be known when f is recorded: write a loop over a traced count with "
          "autodiff.fori_loop, autodiff.while_loop or autodiff.scan (one loop in the program)")
_READS = {"__float__": ("float()", "use autodiff's ops (autodiff.sin, not math.sin) to " + _STAY),
          "__int__": ("int()", _COUNT), "__index__": ("using it as an index or a count", _COUNT),
          "__complex__": ("complex()", _STAY)}


def _reading(name, original):
    what, way_out = _READS[name]

    def method(self):
        if _traced(self):
            raise refuse(what, way_out)
        return original(self)

    return method


def _user_only(original, what, replacement=None):
    """A method that reads values: for the user's code on a traced value, the replacement or a refusal."""
    def method(self, *args, **kwargs):
        if _traced(self) and _from_user():
            if replacement is not None:
                return replacement(self)
            raise refuse(what, _STAY)
        return original(self, *args, **kwargs)

    return method


def _comparing(name, original):
    op = compare.BY_METHOD[name]

    def method(self, other):      # a mapped value's too: the masks of every example, recorded (vmap's rule)
        if _recorded(self) or _recorded(other):
            return op(self, other)
        return original(self, other)

    return method


def _truth(original):
    def method(self):
        if not _traced(self):
            return original(self)
        return decide(self, user_frame(1))

    return method


def _item(self):
    if self.size != 1:
        raise ValueError(f"item(): can only convert a Tensor of one element, got shape {self.shape}")
    return reshape(self, shape=())


def decide(value, frame):
    """The truth of traced ``value`` (``if value:``): the way the current recording is told to take, or the
    example point's way for a decision met for the first time. Noted with its predicate node."""
    if value.size != 1:
        raise ValueError(f"the truth value of a Tensor of shape {value.shape} is ambiguous{where_text(frame)}: "
                         f"use .any() / .all() on plain arrays, or autodiff.where(mask, a, b) to select elementwise")
    predicate = value if value.op in _MASKS else compare.not_equal(value, 0.0)
    script = getattr(_state, "script", None)
    if script is None:
        raise CompileError(f"autodiff.compile: a Python `if`, `while`, `and`, `or` or `not` on a traced "
                           f"value{where_text(frame)} cannot be recorded here")
    taken = script.forced[len(script.taken)] if len(script.taken) < len(script.forced) else bool(
        predicate._value.item())
    script.taken.append(Decision(predicate, taken, frame))
    return taken


_MASKS = {op.primitive for op in compare.BY_METHOD.values()}


class Script:
    """The decisions one recording is told to take (``forced``, in order) and those it took."""

    def __init__(self, forced=()):
        self.forced, self.taken = list(forced), []


def _methods():
    value = Tensor.__dict__["value"]
    detach, numpy, array, item = (Tensor.__dict__[n] for n in ("detach", "numpy", "__array__", "item"))
    swapped = {name: _reading(name, Tensor.__dict__.get(name, _missing(name))) for name in _READS}
    swapped.update({name: _comparing(name, Tensor.__dict__[name]) for name in compare.BY_METHOD})
    swapped["__bool__"] = _truth(Tensor.__dict__["__bool__"])
    swapped["item"] = _user_only(item, "item()", _item)
    swapped["detach"] = _user_only(detach, "detach()", stop_gradient)
    swapped["numpy"] = _user_only(numpy, "numpy()")
    swapped["__array__"] = _user_only(array, "np.asarray()")
    swapped["value"] = property(_user_only(value.fget, ".value"), doc=value.__doc__)
    return swapped


def _missing(name):
    def method(self):
        raise TypeError(f"{name[2:-2]}() of a Tensor")

    return method


def _numpy_hook(func, name, args):
    """interop's hook while recording, for a NumPy function without an engine equivalent called on a traced
    value: a comparison ufunc is recorded, anything else reads the value and is refused (in the recording
    thread; NotImplemented elsewhere, where NumPy's call goes on as it would)."""
    if not _recording():
        return NotImplemented
    op = compare.BY_UFUNC.get(func)
    if op is not None and len(args) == 2:
        return op(*args)
    raise refuse(name, _STAY)


class _Setting:
    """``with _Setting(name, value):`` this thread's ``_state.<name>`` is ``value``, then what it was before."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __enter__(self):
        self.saved = getattr(_state, self.name, None)
        setattr(_state, self.name, self.value)
        return self.value

    def __exit__(self, *exc):
        setattr(_state, self.name, self.saved)
        return False


class options(_Setting):
    """``with options(cache=..., parallel=...):`` what compile was given, for the programs compiled while f is
    recorded (a loop's body, :mod:`.loops`): ``options.current()`` reads them."""

    def __init__(self, **given):
        super().__init__("options", given)

    @staticmethod
    def current():
        return dict(getattr(_state, "options", None) or {})


def planned(script):
    """``with planned(script):`` the next recording takes its decisions from ``script`` (see :mod:`.branches`)."""
    return _Setting("planned", script)


def constant_node(value, leaves):
    """A program node holding the constant ``value``: the output of a branch that computes nothing from f's
    arguments (``if x > 0: return x`` / ``return 0.0``), which the program must still return."""
    leaf = next((leaf for leaf in leaves if leaf.size), None)
    if leaf is None:
        raise CompileError("autodiff.compile: a branch of f returns a constant and every argument is empty")
    anchor = getitem(leaf, index=(0,) * leaf.ndim) if leaf.ndim else leaf
    weak = isinstance(value, (bool, int, float)) or value is None   # a Python number takes the arguments' dtype
    value = np.asarray(value_of(value))
    return select(0.0, anchor, value.astype(leaf.dtype if weak or value.dtype.kind != "f" else value.dtype))


class Guards:
    """While f is being recorded: Tensor's value-reading methods as above, decisions taken from the planned
    script (a fresh one, taking the example point's ways, when none is planned); ``with`` gives the script."""

    def __init__(self):
        self.script = getattr(_state, "planned", None) or Script()
        _state.planned = None       # taken: a recording nested in this one (a loop's body) plans its own

    def __enter__(self):
        _lock.acquire()
        self.saved = {name: Tensor.__dict__.get(name) for name in _READS.keys() | compare.BY_METHOD.keys()
                      | {"__bool__", "item", "detach", "numpy", "__array__", "value"}}
        for name, method in _methods().items():
            setattr(Tensor, name, method)
        self.saved_hook, interop.compile_hook = interop.compile_hook, _numpy_hook
        self.saved_script, _state.script = getattr(_state, "script", None), self.script
        return self.script

    def __exit__(self, *exc):
        _state.script = self.saved_script
        interop.compile_hook = self.saved_hook
        for name, method in self.saved.items():
            if method is None:
                delattr(Tensor, name)
            else:
                setattr(Tensor, name, method)
        _lock.release()
        return False


__all__ = ["CompileError", "Decision", "Guards", "Script", "constant_node", "decide", "located", "options", "planned",
           "refuse", "user_frame", "where_text"]
