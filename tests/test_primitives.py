"""Table-driven over the registry: every declared primitive is checked by being declared.

For each primitive and each of its sample arguments, at random directions u (inputs) and v (output):
- forward mode gives <v, J u> from the jvp rules, reverse mode gives <J^T v, u> from the vjp rules,
  and the two agree with each other and with central differences of the value;
- the rules are themselves differentiable (written with the engine's ops): forward-over-reverse
  gives the derivative of the gradient of <v, f> along u, equal to central differences of gradients;
- the SymPy counterpart, where one is declared, has the same value as the NumPy implementation and
  its derivative is the engine's, at every sample that maps one number to one number (at least one
  per primitive: a counterpart that no sample reaches fails the test instead of going unchecked).
"""
import zlib

import numpy as np
import pytest
import sympy as sp

from autodiff import REGISTRY, Tensor
from autodiff.sweep import forward_sweep, reverse_sweep, toposort
from autodiff.tensor import apply

BUILTIN = sorted(REGISTRY)
#: Primitives whose derivative is zero by definition, not their value's (JAX's stop_gradient: the value is x,
#: the rules are 0): there the rules are held to 0 instead of to central differences of the value.
ZERO_BY_DEFINITION = {"stop_gradient"}


def _cases(name):
    prim = REGISTRY[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # the same samples in every run (hash() is salted)
    return prim, rng, prim.samples(rng)


def _record(prim, xs, params):
    leaves = [Tensor._make(np.array(x, dtype=np.float64), requires_grad=True) for x in xs]
    out = apply(prim, leaves, params)
    return leaves, out


def _value(prim, xs, params):
    return np.asarray(prim.impl(*xs, **params), dtype=np.float64)


def test_every_primitive_declares_samples():
    missing = [name for name in BUILTIN if REGISTRY[name].samples is None]
    assert not missing, f"primitives without samples (so untested): {missing}"


@pytest.mark.parametrize("name", BUILTIN)
def test_forward_and_reverse_agree_with_each_other_and_central_differences(name):
    prim, rng, cases = _cases(name)
    for xs, params in cases:
        leaves, out = _record(prim, xs, params)
        us = [rng.normal(size=np.shape(x)) for x in xs]
        v = rng.normal(size=out.shape)
        order, ids = toposort([out])
        tangent = forward_sweep(order, {id(w): u for w, u in zip(leaves, us)})[id(out)]
        forward = float(np.sum(v * tangent))
        adj = reverse_sweep(order, ids, {id(out): v}, keep={id(w) for w in leaves})
        reverse = float(sum(np.sum(adj[id(w)] * u) for w, u in zip(leaves, us) if id(w) in adj))   # absent: zero
        h = 1e-6
        plus = _value(prim, [x + h * u for x, u in zip(xs, us)], params)
        minus = _value(prim, [x - h * u for x, u in zip(xs, us)], params)
        central = 0.0 if name in ZERO_BY_DEFINITION else float(np.sum(v * (plus - minus) / (2 * h)))
        scale = max(1.0, abs(forward))
        assert abs(forward - reverse) <= 1e-12 * scale, (name, params, forward, reverse)
        assert abs(forward - central) <= 1e-6 * scale, (name, params, forward, central)


def _gradient_of_projection(prim, xs, params, v, create_graph):
    leaves, out = _record(prim, xs, params)
    order, ids = toposort([out])
    adj = reverse_sweep(order, ids, {id(out): v}, create_graph=create_graph, keep={id(w) for w in leaves})
    return leaves, [adj.get(id(w), np.zeros(w.shape)) for w in leaves]


@pytest.mark.parametrize("name", BUILTIN)
def test_rules_are_differentiable_forward_over_reverse(name):
    prim, rng, cases = _cases(name)
    for xs, params in cases:
        out_shape = np.shape(_value(prim, xs, params))
        v = rng.normal(size=out_shape)
        us = [rng.normal(size=np.shape(x)) for x in xs]
        leaves, grads = _gradient_of_projection(prim, xs, params, v, create_graph=True)
        graphs = [g for g in grads if isinstance(g, Tensor) and g.requires_grad]
        order, _ = toposort(graphs)
        tangents = forward_sweep(order, {id(w): u for w, u in zip(leaves, us)})
        h = 1e-5
        _, plus = _gradient_of_projection(prim, [x + h * u for x, u in zip(xs, us)], params, v, False)
        _, minus = _gradient_of_projection(prim, [x - h * u for x, u in zip(xs, us)], params, v, False)
        for g, gp, gm in zip(grads, plus, minus):
            engine = tangents.get(id(g), np.zeros(np.shape(g))) if isinstance(g, Tensor) else np.zeros(np.shape(g))
            central = (np.asarray(gp) - np.asarray(gm)) / (2 * h)
            np.testing.assert_allclose(np.broadcast_to(engine, central.shape), central, rtol=1e-5, atol=1e-5,
                                       err_msg=f"{name} {params}")


def _sympy_rule(prim):
    """The primitive's SymPy counterpart as ``rule(*sympy_args, **params)``, or None: the one place
    that reads it off the primitive (adapt it here if where the rule is declared moves)."""
    return None if prim.sympy is None else prim.to_sympy


SYMPY = [n for n in BUILTIN if _sympy_rule(REGISTRY[n]) is not None]


def _scalar_cases(prim, cases):
    """The cases where the op maps one number to one number, so that its scalar SymPy counterpart
    applies: each sample whose inputs and output have one element each, else the sample's first
    elements as 0-d inputs (same params, naming no axis: NumPy's reductions take axis=0 of a 0-d
    array, which a 0-d array does not have), where the op takes them and gives one number."""
    out = []
    for xs, params in cases:
        candidates = [tuple(xs)]
        if all(params.get(k) is None for k in ("axis", "axes")):
            candidates.append(tuple(np.asarray(np.asarray(x).flat[0]) for x in xs))
        for candidate in candidates:
            try:
                value = _value(prim, candidate, params)
            except (ValueError, IndexError, TypeError):   # e.g. axis=1 of a 0-d input
                continue
            if value.size == 1 and all(np.size(x) == 1 for x in candidate):
                out.append((candidate, params))
                break
    return out


def test_the_sympy_cross_check_covers_the_elementwise_ops():
    assert {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "sin", "exp", "log", "sum"} <= set(SYMPY)


@pytest.mark.parametrize("name", SYMPY)
def test_sympy_counterpart_has_the_same_value_and_derivative(name):
    prim, rng, cases = _cases(name)
    rule = _sympy_rule(prim)
    scalars = _scalar_cases(prim, cases)
    assert scalars, f"{name}: no sample maps one number to one number, so its SymPy counterpart is never checked"
    for xs, params in scalars:
        symbols = sp.symbols(f"s0:{len(xs)}", real=True)
        expr = rule(*symbols, **params)
        point = {s: sp.Float(float(np.asarray(x).item()), 30) for s, x in zip(symbols, xs)}
        value = float(expr.evalf(30, subs=point))
        assert value == pytest.approx(_value(prim, xs, params).item(), rel=1e-13, abs=1e-13), (name, xs, params)
        leaves, out = _record(prim, xs, params)
        order, _ = toposort([out])
        for k, s in enumerate(symbols):
            seeds = {id(w): np.full(w.shape, float(i == k)) for i, w in enumerate(leaves)}
            tangent = forward_sweep(order, seeds).get(id(out))
            engine = 0.0 if tangent is None else np.asarray(tangent).item()
            exact = float(sp.diff(expr, s).evalf(30, subs=point))
            assert engine == pytest.approx(exact, rel=1e-10, abs=1e-10), (name, k, xs, params)
