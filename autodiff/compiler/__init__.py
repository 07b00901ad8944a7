"""Source transformation: a recorded graph written out as Python and compiled with Numba.

The third way to get derivatives beside operator overloading (the eager engine) is to transform
the program's source (Tapenade, JAX's jaxpr + XLA, Zygote). ``autodiff.compile(f, *example_args)``
records ``f`` once, as the engine does, and writes the recorded straight-line program (eq. 5.38)
and its derivative (eq. 5.39's adjoints, derived by running the reverse sweep with recording on)
as a Python module that Numba compiles. The eager engine stays the reference it is tested against.

- :mod:`.trace`: recording f (refusing control flow on traced values) and the derivative programs;
- :mod:`.fuse`: which statements share a loop and which call NumPy between loops;
- :mod:`.codegen`: the generated source (element functions, loops, a driver);
- :mod:`.build`: the cache of generated modules and the compiled function;
- :mod:`.runtime`: what the generated drivers call.
"""
from .build import Compiled, cache_dir, compile
from .codegen import PARALLEL_MIN
from .trace import CompileError

__all__ = ["CompileError", "Compiled", "PARALLEL_MIN", "cache_dir", "compile"]
