"""The open core: a transformation is a table of rules and an interpreter over the recorded graph.

A new transformation (interval bounds, below) adds a table and touches no op's declaration; a joint
reverse rule is called once per node; a primitive declared with rules and no code template compiles
(the compiler prints the rules the engine runs); and the compiled derivatives equal the engine's at
the points where the value-dependent ones jump (ties, zeros, interval ends)."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff as ad
from autodiff.primitives import REGISTRY, TABLES, RuleTable, jvp_rules, vjp_rules
from autodiff.sweep import toposort


# --- a toy transformation: interval arithmetic over the recorded graph ------------------------------

interval_rules = RuleTable("interval")


@interval_rules.register(ad.add)
def _(a, b):
    return a[0] + b[0], a[1] + b[1]


@interval_rules.register(ad.mul)
def _(a, b):
    corners = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return np.minimum.reduce(corners), np.maximum.reduce(corners)


@interval_rules.register(ad.exp)
def _(a):
    return np.exp(a[0]), np.exp(a[1])


def bounds(y, box):
    """Evaluate y's graph on intervals: box {leaf: (lo, hi)}; a constant is its own interval."""
    order, _ = toposort([y])
    at = {}
    for node in order:
        if node.op is None:
            at[id(node)] = box[id(node)]
            continue
        args = [at.get(id(i), (i.value, i.value)) for i in node.inputs]
        at[id(node)] = interval_rules[node.op](*args, **node.params)
    return at[id(y)]


def test_a_new_transformation_is_a_table_and_an_interpreter_and_edits_no_op():
    declared = {name: tuple(table.get(prim) for table in TABLES) for name, prim in REGISTRY.items()}
    x = ad.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    y = ad.exp(x * x + 1.0) * 2.0
    lo, hi = bounds(y, {id(x): (np.array([0.4, -1.5]), np.array([0.6, -0.5]))})
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = np.array([rng.uniform(0.4, 0.6), rng.uniform(-1.5, -0.5)])
        value = 2.0 * np.exp(v * v + 1.0)
        assert np.all(lo <= value) and np.all(value <= hi)
    assert np.all(lo <= y.value) and np.all(y.value <= hi)
    with pytest.raises(NotImplementedError, match="primitive 'sin' has no interval rule"):
        bounds(ad.sin(x), {id(x): (x.value, x.value)})
    assert declared == {name: tuple(table.get(prim) for table in TABLES) for name, prim in REGISTRY.items()}


# --- joint rules ------------------------------------------------------------------------------------

CALLS = []


def _hypot_joint(g, out, a, b, *, wanted):
    CALLS.append(wanted)
    scale = g / out
    return (ad.unbroadcast(scale * a, ad.primitives.shape_of(a)) if wanted[0] else None,
            ad.unbroadcast(scale * b, ad.primitives.shape_of(b)) if wanted[1] else None)


@ad.primitive(vjp_joint=_hypot_joint,
              jvp=[lambda t, out, a, b: t * a / out, lambda t, out, a, b: t * b / out],
              samples=lambda rng: [((rng.uniform(0.5, 2, (3,)), rng.uniform(0.5, 2, (3,))), {})])
def joint_hypot(a, b):
    return np.hypot(a, b)


def test_a_joint_rule_is_called_once_per_node_with_the_inputs_that_need_a_cotangent():
    a, b = np.array([3.0, 1.0]), np.array([4.0, 2.0])
    CALLS.clear()
    ga, gb = ad.grad(lambda a, b: ad.sum(joint_hypot(a, b)), argnums=(0, 1))(a, b)
    assert CALLS == [(True, True)]
    np.testing.assert_allclose(ga, a / np.hypot(a, b), rtol=1e-15)
    np.testing.assert_allclose(gb, b / np.hypot(a, b), rtol=1e-15)
    CALLS.clear()
    ad.grad(lambda a: ad.sum(joint_hypot(a, b)))(a)
    assert CALLS == [(True, False)]
    ad.check_primitive(joint_hypot)                                          # central differences
    ad.check_primitive(joint_hypot, order=2)                                 # the rule recorded, differentiated


@pytest.mark.parametrize("returned", [None, (), ("a", "b")], ids=["None", "empty", "two"])
def test_a_joint_rule_that_returns_no_cotangent_per_input_is_named(returned):
    @ad.primitive(name=f"bad_joint_{len(returned) if returned is not None else 'none'}",
                  vjp_joint=lambda g, out, x, *, wanted: returned, jvp=[lambda t, out, x: t])
    def bad(x):
        return x

    with pytest.raises(RuntimeError, match="joint vjp rule of 'bad_joint_.*' returned .* a tuple of 1 cotangents"):
        ad.grad(lambda x: ad.sum(ad.sin(bad(ad.sin(x)))))(np.array([1.0, 2.0]))


def test_redeclaring_a_primitive_as_a_notebook_cell_rerun_keeps_the_old_op_working():
    def declare():
        @ad.primitive(partials=[lambda out, x: ad.cos(x)], samples=lambda rng: [((rng.uniform(-2, 2, (3,)),), {})])
        def rerun_sin(x):
            return np.sin(x)
        return rerun_sin

    old, new = declare(), declare()
    assert REGISTRY["rerun_sin"] is new.primitive
    for op in (old, new):
        assert ad.grad(op)(0.5) == np.cos(0.5)


def test_value_dependent_steps_give_0_at_nan_as_pytorchs_relu():
    x = np.array([np.nan, -1.0, 0.0, 2.0])
    np.testing.assert_array_equal(ad.heaviside(x, 0.5), [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(ad.grad(lambda v: ad.sum(ad.relu(v)))(x), [0.0, 0.0, 0.0, 1.0])
    assert ad.heaviside(np.float32(1.0), 0.5).dtype == np.float32


def test_a_joint_rule_or_per_input_rules_are_required_and_checked():
    with pytest.raises(TypeError, match="needs a vjp"):
        ad.primitive(jvp=[lambda t, out, x: t])(lambda x: x)
    with pytest.raises(TypeError, match="vjp_joint must be one function"):
        ad.primitive(vjp_joint=[lambda g, out, x: g], jvp=[lambda t, out, x: t])(lambda x: x)


# --- compile reads the engine's rules -----------------------------------------------------------------

@ad.primitive(partials=[lambda out, x: 1 - out * out], samples=lambda rng: [((rng.uniform(-2, 2, (3,)),), {})])
def untemplated_tanh(x):
    return np.tanh(x)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compiled")


def test_a_primitive_with_rules_and_no_template_compiles(cache):
    assert untemplated_tanh.primitive.code == "impl"
    f = lambda x, w: ad.sum(untemplated_tanh(x * w) * joint_hypot(x, w))    # noqa: E731
    x, w = np.array([0.3, -1.2, 2.0]), np.array([1.5, 0.5, -0.7])
    cf = ad.compile(f, x, w, argnums=(0, 1), cache=cache)
    assert "impl.untemplated_tanh(" in cf.source and "impl.joint_hypot(" in cf.source
    x2, w2 = np.array([-0.8, 0.1, 1.1]), np.array([0.9, -2.0, 0.4])          # another point than the example's
    value, grads = cf(x2, w2)
    want_value, want_grads = ad.value_and_grad(f, argnums=(0, 1))(x2, w2)
    assert value == pytest.approx(want_value, rel=1e-14)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-13)


STEPS = {  # value-dependent derivatives, at points where they jump: ties, zeros, interval ends
    "relu": (lambda x: ad.relu(x), [np.array([-1.0, 0.0, 2.0])]),
    "abs": (lambda x: ad.abs(x), [np.array([-1.0, 0.0, 2.0])]),
    "sign": (lambda x: ad.sign(x) * x, [np.array([-1.0, 0.0, 2.0])]),
    "heaviside": (lambda x: ad.heaviside(x, 0.5) * x, [np.array([-1.0, 0.0, 2.0])]),
    "maximum": (lambda a, b: ad.maximum(a, b), [np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])]),
    "minimum": (lambda a, b: ad.minimum(a, b), [np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])]),
    "clip": (lambda x: ad.clip(x, a_min=-1.0, a_max=1.0), [np.array([-2.0, -1.0, 0.0, 1.0, 2.0])]),
    "pow": (lambda x, y: x ** y, [np.array([0.0, 2.0, 0.5]), np.array([2.0, 0.5, 3.0])]),
    "norm": (lambda x: ad.norm(x) * x, [np.array([0.0, 0.0])]),              # sqrt'(0): the subgradient 0
    "norm3": (lambda x: ad.norm(x, ord=3) * x, [np.array([0.0, 0.0])]),
}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_compiled_derivatives_equal_the_engine_where_the_local_derivative_jumps(name, cache):
    op, args = STEPS[name]
    f = lambda *xs: ad.sum(op(*xs) * np.arange(1.0, 1.0 + xs[0].size))      # noqa: E731
    every = tuple(range(len(args)))
    rng = np.random.default_rng(3)
    example = [a + rng.uniform(0.1, 0.2, a.shape) for a in args]              # compiled away from the jumps
    cf = ad.compile(f, *example, argnums=every, cache=cache)
    value, grads = cf(*args)
    want_value, want_grads = ad.value_and_grad(f, argnums=every)(*args)
    assert value == want_value
    for got, want in zip(grads, want_grads):
        np.testing.assert_array_equal(got, want)
    tangents = [np.ones_like(a) for a in args]
    fwd = ad.compile(lambda *xs: op(*xs), *example, mode="forward", argnums=every, cache=cache)
    _, tangent = fwd(*args, *tangents)
    np.testing.assert_array_equal(tangent, ad.jvp(op, tuple(args), tuple(tangents))[1])


def test_heavisides_value_at_zero_must_be_a_number():
    with pytest.raises(TypeError, match=r"^heaviside: h0 \(the value at 0\) must be a real number, got 'a'$"):
        ad.heaviside(np.ones(2), "a")
