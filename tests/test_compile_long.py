"""A long program compiles: code generation has no recursion limit (issue 33).

An ODE integrator uses its parameter at every step, so the parameter's adjoint is the sum of one
contribution per step. The code generator wrote that sum as one expression nested as deep as the
program (a temporary used once is written into the line that uses it), and building, copying and
unparsing it recursed once per step: from about 250 steps, a RecursionError inside compiler/codegen.py.
Now a line holds at most INLINE_DEPTH nested primitives, the rest named temporaries.

Held to the eager engine and to the closed form of Euler's method for dy/dt = -k y:
y_N = y0 (1 - h k)^N.
"""
from __future__ import annotations

import ast

import numpy as np
import pytest

import autodiff as ad
from autodiff.compiler.codegen import INLINE_DEPTH

STEPS = 300     # the code before the cap stopped at about 250
H = 0.01


def euler(k, y0):
    """Euler's method for dy/dt = -k y, STEPS steps of H: k is used at every step."""
    y = y0
    for _ in range(STEPS):
        y = y + H * (-k * y)
    return ad.sum(y)


def closed_form(k, y0):
    """y_N and its partials in k and y0."""
    r = 1.0 - H * k
    return np.sum(y0 * r ** STEPS), -H * STEPS * y0 * r ** (STEPS - 1), r ** STEPS


def rk4(k, y0, steps=STEPS, h=H):
    """The classical Runge-Kutta method for dy/dt = sin(y) - k y: k is used four times a step."""
    def rhs(y):
        return ad.sin(y) - k * y

    y = y0
    for _ in range(steps):
        k1 = rhs(y)
        k2 = rhs(y + 0.5 * h * k1)
        k3 = rhs(y + 0.5 * h * k2)
        k4 = rhs(y + h * k3)
        y = y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return y


def nesting(source):
    """The deepest nest of operations and calls in any expression of ``source``."""
    def depth(node):
        deepest, stack = 0, [(node, 0)]
        while stack:
            n, d = stack.pop()
            d += isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call, ast.Compare, ast.IfExp))
            deepest = max(deepest, d)
            stack.extend((c, d) for c in ast.iter_child_nodes(n))
        return deepest

    return max(depth(node.value) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assign))


@pytest.mark.parametrize("k, y0", [(0.7, 1.5), (np.array([0.3, 0.7, 1.1]), np.array([1.0, -0.5, 2.0]))],
                         ids=["scalars", "arrays"])
def test_a_long_euler_integration_compiles_and_equals_the_engine(k, y0, tmp_path):
    cf = ad.compile(euler, k, y0, argnums=(0, 1), cache=tmp_path)
    value, (dk, dy0) = cf(k, y0)
    ref_value, (ref_dk, ref_dy0) = ad.value_and_grad(euler, argnums=(0, 1))(k, y0)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_allclose(dk, ref_dk, rtol=1e-12)
    np.testing.assert_allclose(dy0, ref_dy0, rtol=1e-12)
    for got, exact in zip((value, dk, dy0), closed_form(k, y0)):
        np.testing.assert_allclose(got, exact, rtol=1e-9)
    # the sum of STEPS contributions is cut into lines a reader can read, none nested deeper than the cap
    assert max(len(line) for line in cf.source.splitlines()) < 200
    assert nesting(cf.source) <= 3 * INLINE_DEPTH


def test_a_long_rk4_integration_is_generated_in_both_modes(tmp_path):
    """Four uses of k a step: code generation and Python's compiler take the program (Numba compiles it at
    the first call, which the Euler test above makes)."""
    for mode in ("reverse", "forward"):
        cf = ad.compile(rk4, 0.7, 1.5, mode=mode, cache=tmp_path)
        compile(cf.source, "generated", "exec")
        assert nesting(cf.source) <= 3 * INLINE_DEPTH
    short = ad.compile(lambda k, y0: rk4(k, y0, steps=3), 0.7, 1.5, cache=tmp_path)
    np.testing.assert_allclose(short(0.7, 1.5), ad.value_and_grad(lambda k, y0: rk4(k, y0, steps=3))(0.7, 1.5),
                               rtol=1e-13)
