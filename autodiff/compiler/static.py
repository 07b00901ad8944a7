"""``autodiff.compile(f, *args, static_argnums=...)``: arguments f may read as plain Python values.

As in ``jax.jit``, a static argument is not traced: f sees the value itself (a loop count, a flag, a
shape), may branch on it and loop over it, and the program is compiled once per distinct value (so a
static value must be hashable). The other arguments are traced as usual.
"""
from __future__ import annotations

import inspect

import numpy as np


def _positions(nums, n, what):
    single = isinstance(nums, (int, np.integer))
    items = (nums,) if single else tuple(nums)
    out = []
    for a in items:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool) or not -n <= a < n:
            raise ValueError(f"autodiff.compile: {what}={nums!r} must name arguments 0..{n - 1} (or negative "
                             f"positions), got {a!r}")
        out.append(int(a) % n)
    return single, tuple(out)


class StaticCompiled:
    """``f`` compiled once per value of its static arguments; call it with all of f's arguments."""

    def __init__(self, compile_fn, f, example_args, static_argnums, mode="reverse", argnums=0, **options):
        n = len(example_args)
        _, self.static = _positions(static_argnums, n, "static_argnums")
        single, nums = _positions(argnums, n, "argnums")
        clash = sorted(set(nums) & set(self.static))
        if clash and mode != "value":
            raise ValueError(f"autodiff.compile: argument {clash[0]} is both static (static_argnums) and "
                             f"differentiated (argnums): a static argument is a plain value, with no derivative")
        self.dynamic = tuple(i for i in range(n) if i not in self.static)
        if not self.dynamic:
            raise ValueError("autodiff.compile: every argument is static, so there is nothing to trace")
        mapped = tuple(self.dynamic.index(i) for i in nums if i in self.dynamic)
        self.argnums = mapped[0] if single else mapped
        self.compile_fn, self.f, self.n, self.mode, self.options = compile_fn, f, n, mode, options
        self.programs = {}
        self.__name__ = f"compiled({getattr(f, '__name__', 'f')}, mode={mode!r}, static_argnums={self.static})"
        self.last = self._program(example_args)

    def _key(self, args):
        key = []
        for i in self.static:
            try:
                hash(args[i])
            except TypeError:
                raise TypeError(f"{self.__name__}: static argument {i} must be hashable (a number, a string, a "
                                f"tuple), got {type(args[i]).__name__}; pass arrays as traced arguments") from None
            key.append((type(args[i]), args[i]))
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
        if len(args) < self.n:
            raise TypeError(f"{self.__name__} takes f's {self.n} argument(s) first, got {len(args)}")
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
