"""``autodiff.compile(f, *args, static_argnums=...)``: arguments f may read as plain Python values.

As in ``jax.jit``, a static argument is not traced: f sees the value itself (a loop count, a flag, a
shape), may branch on it and loop over it, and the program is compiled once per distinct value (so a
static value must be hashable). The other arguments are traced as usual.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..tensor import Tensor


def _positions(nums, n, what):
    single = isinstance(nums, (int, np.integer)) and not isinstance(nums, bool)
    if not single and not isinstance(nums, (tuple, list)):
        raise TypeError(f"autodiff.compile: {what} must be an int or a tuple of ints (argument positions), got "
                        f"{type(nums).__name__}: {repr(nums)[:40]}")
    if n == 0:
        raise ValueError(f"autodiff.compile: {what}={nums!r} names arguments, but no example arguments were given")
    items = (nums,) if single else tuple(nums)
    out = []
    for a in items:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool) or not -n <= a < n:
            raise ValueError(f"autodiff.compile: {what}={nums!r} must name arguments 0..{n - 1} (or negative "
                             f"positions), got {a!r}")
        if int(a) % n in out:
            raise ValueError(f"autodiff.compile: {what}={nums!r} names argument {int(a) % n} twice")
        out.append(int(a) % n)
    return single, tuple(out)


class StaticCompiled:
    """``f`` compiled once per value of its static arguments; call it with all of f's arguments."""

    def __init__(self, compile_fn, f, example_args, static_argnums, mode="reverse", argnums=0, **options):
        n = len(example_args)
        _, self.static = _positions(static_argnums, n, "static_argnums")
        single, nums = _positions(argnums, n, "argnums")
        self.dynamic = tuple(i for i in range(n) if i not in self.static)
        if not self.dynamic:
            raise ValueError(f"autodiff.compile: static_argnums={static_argnums!r} makes every argument static, so "
                             f"there is nothing to trace (call f itself)")
        clash = sorted(set(nums) & set(self.static))
        if clash and mode != "value":
            raise ValueError(f"autodiff.compile: argument {clash[0]} is both static (static_argnums) and "
                             f"differentiated (argnums): a static argument is a plain value, with no derivative")
        mapped = tuple(self.dynamic.index(i) for i in nums if i in self.dynamic)
        if mode == "value":              # nothing is differentiated: argnums only has to name a traced argument
            mapped = mapped or (0,)
        self.argnums = mapped[0] if single else mapped
        self.extra = {"forward": len(mapped), "vjp": 1}.get(mode, 0)     # the tangents or the cotangent after f's
        self.compile_fn, self.f, self.n, self.mode, self.options = compile_fn, f, n, mode, options
        self.programs = {}
        self.__name__ = f"compiled({getattr(f, '__name__', 'f')}, mode={mode!r}, static_argnums={self.static})"
        self.last = self._program(example_args)

    def _key(self, args):
        key = []
        for i in self.static:
            if isinstance(args[i], (Tensor, np.ndarray)):
                raise TypeError(f"{self.__name__}: static argument {i} must be a hashable plain value (a number, a "
                                f"string, a tuple), got {type(args[i]).__name__}; pass arrays as traced arguments")
            try:
                hash(args[i])
            except TypeError:
                raise TypeError(f"{self.__name__}: static argument {i} must be hashable (a number, a string, a "
                                f"tuple), got {type(args[i]).__name__}; pass arrays as traced arguments") from None
            value = args[i]
            if isinstance(value, (float, np.floating)) and value != value:
                value = "nan"            # NaN != NaN: one program for every NaN, not one per call
            key.append((type(args[i]), value))
        return tuple(key)

    def _program(self, args):
        key = self._key(args)
        compiled = self.programs.get(key)
        if compiled is None:
            static = {i: args[i] for i in self.static}
            f, n, dynamic = self.f, self.n, self.dynamic

            def traced(*values):
                merged = dict(static)
                merged.update(zip(dynamic, values))
                return f(*(merged[i] for i in range(n)))

            traced.__name__ = getattr(f, "__name__", "f")
            traced.__signature__ = _dynamic_signature(f, dynamic)
            compiled = self.compile_fn(traced, *(args[i] for i in dynamic), mode=self.mode, argnums=self.argnums,
                                       **self.options)
            self.programs[key] = compiled
        self.last = compiled
        return compiled

    def __call__(self, *args):
        if len(args) != self.n + self.extra:
            what = {"forward": " and one tangent per differentiated argument", "vjp": " and the cotangent"}
            raise TypeError(f"{self.__name__} takes {self.n + self.extra} argument(s) (f's {self.n}"
                            f"{what.get(self.mode, '')}), got {len(args)}")
        compiled = self._program(args)
        return compiled(*(args[i] for i in self.dynamic), *args[self.n:])

    def __getattr__(self, name):            # source, path, from_cache... of the latest static values' program
        return getattr(self.__dict__["last"], name)


def _dynamic_signature(f, dynamic):
    """f's signature with the static parameters left out, so the program's inputs keep f's names."""
    try:
        params = [p for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return None
    kept = [params[i].replace(default=inspect.Parameter.empty) for i in dynamic if i < len(params)]
    return inspect.Signature(kept) if len(kept) == len(dynamic) else None


__all__ = ["StaticCompiled"]
