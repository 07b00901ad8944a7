"""The source map of a compiled program: the line of the user's code that each node comes from.

While ``autodiff.compile`` traces f (:func:`locating` wraps :func:`.trace.trace`), every node an op
makes is noted with its location (Google's *tangent* maps each adjoint line back to the user's source):

- a node made while f runs: the innermost frame of the user's code (:func:`autodiff.anomaly.user_frame`,
  the project's packages skipped, so a model's ``nn`` layers point at the user's line that called them);
- a node made by a rule of the reverse or forward sweep (an adjoint ``a_bar``, a tangent ``a_dot``,
  the temporaries inside them, a fan-out sum): the location of the forward node whose rule made it, the
  node the sweep is visiting. An adjoint line therefore points at the line it differentiates.

``Program.locations`` holds the map ({id(node): (file, line)}); :mod:`.codegen` writes it as trailing
comments. A node of code that is not the user's (f written inside autodiff, as ``autodiff.examples``)
has no location, and its line no comment.
"""
from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
import threading

from .. import tensor as _tensor
from ..anomaly import user_frame
from ..sweep import forward_sweep, reverse_sweep

_TEMPORARY = os.path.join(tempfile.gettempdir(), "")
_HEADER = ("# source map: ", "#   ")
_COMMENT = re.compile(r"  # [^\n]*(?=\n?$)")
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The project's packages: frames in them are not the user's code.
PACKAGES = tuple(os.path.join(_ROOT, name) + os.sep for name in ("autodiff", "nn", "kernels", "chainrule"))
_SWEEPS = (reverse_sweep.__code__, forward_sweep.__code__)
_lock = threading.Lock()
_local = threading.local()
_hook = None     # the _Hook in tensor._anomaly while some thread traces; None otherwise
_tracing = 0     # how many traces are running (all threads)


class Locations:
    """The locations noted during one trace: {id(node): (node, (file, line))} (the node kept, so that an
    id reused by a later object never inherits a location)."""

    def __init__(self, stop):
        self.stop = stop      # the frame that called the trace: its callers are not f's code
        self.found = {}

    def note(self, node, frame):
        owner = _visited(frame, self.stop)
        if owner is not None:
            entry = self.found.get(id(owner))
            where = entry[1] if entry is not None and entry[0] is owner else None
        else:
            where = user_frame(frame, PACKAGES, self.stop)
            where = None if where is None else where[:2]
        if where is not None:
            self.found[id(node)] = (node, where)

    def of(self, nodes):
        """The source map of ``nodes``: {id(node): (file, line)} for those with a location."""
        out = {}
        for node in nodes:
            entry = self.found.get(id(node))
            if entry is not None and entry[0] is node:
                out[id(node)] = entry[1]
        return out


def _visited(frame, stop):
    """The node a sweep (the innermost one below ``stop``) is visiting, when ``frame`` runs inside its rules."""
    while frame is not None and frame is not stop:
        if frame.f_code in _SWEEPS:
            return frame.f_locals.get("node")
        frame = frame.f_back
    return None


class _Hook:
    """``tensor._anomaly`` while a trace runs: notes each node an op makes for the thread's trace, then
    hands the value to anomaly mode's checker, when that is on."""

    passes_on = True      # not anomaly mode itself: is_anomaly_enabled() looks past it

    def __init__(self, previous):
        self.previous = previous

    def __call__(self, result, prim, args):
        where = getattr(_local, "where", None)
        if where is not None and result.op is not None:
            where.note(result, sys._getframe(1))
        if self.previous is not None:
            self.previous(result, prim, args)

    def cotangent(self, *args):
        if self.previous is not None:
            self.previous.cotangent(*args)


def _start():
    global _hook, _tracing
    with _lock:
        if _tracing == 0:
            _hook = _Hook(_tensor._anomaly)
            _tensor._anomaly = _hook
        _tracing += 1


def _end():
    global _hook, _tracing
    with _lock:
        _tracing -= 1
        if _tracing == 0:
            if _tensor._anomaly is _hook:
                _tensor._anomaly = _hook.previous
            _hook = None


def locating(trace):
    """``trace`` that also gives its Program the source map (``program.locations``)."""

    @functools.wraps(trace)
    def traced(*args, **kwargs):
        outer = getattr(_local, "where", None)
        _local.where = where = Locations(sys._getframe(0))
        _start()
        try:
            program = trace(*args, **kwargs)
        finally:
            _end()
            _local.where = outer
        program.locations = where.of(program.order)
        return program

    return traced


class Comments:
    """The comments of one generated module: ``lesson.py:12`` for a line from one place, ``lesson.py:7,9``
    for a line whose parts come from several (a fan-out sum), the file's name alone (its folder once, in
    the header; two files of one name keep their folder)."""

    def __init__(self, locations):
        self.locations = locations
        files = sorted({file for file, _ in locations.values()})
        names = {}
        for file in files:
            names.setdefault(os.path.basename(file), []).append(file)
        self.short = {}
        for name, same in names.items():
            for file in same:
                self.short[file] = name if len(same) == 1 else os.path.join(os.path.basename(os.path.dirname(file)),
                                                                             name)

    def __call__(self, nodes):
        """The comment of a line made of ``nodes`` (its own node first): empty when none has a location."""
        lines = {}
        for node in nodes:
            where = self.locations.get(id(node))
            if where is not None:
                lines.setdefault(where[0], set()).add(where[1])
        return ", ".join(f"{self.short[file]}:{','.join(map(str, sorted(ls)))}" for file, ls in lines.items())

    def header(self):
        """The module's header lines: which file each short name is. A file in the temporary folder (a Jupyter
        cell's, in a folder named by the kernel's process) keeps its short name alone, so that the next session
        generates the same source and loads Numba's machine code from the cache."""
        if not self.short:
            return []
        paths = [f"#   {name} = {file}" for file, name in self.short.items()
                 if name != file and not file.startswith(_TEMPORARY)]
        return ["# source map: a line ends with the line of the user's code it comes from (an adjoint, the line it "
                "differentiates)"] + paths


def without_source_map(source):
    """``source`` without the source map's comments: the code alone, as it was before them (to compare lines)."""
    lines = [line for line in source.splitlines(keepends=True) if not line.startswith(_HEADER)]
    return "".join(_COMMENT.sub("", line) for line in lines)


__all__ = ["Comments", "Locations", "PACKAGES", "locating", "without_source_map"]
