"""max, min, prod and max-pooling under autodiff.compile, held to the eager engine at points other than
the example point: ties and zeros the example point does not have are found by the compiled code itself
(the rules read no value as a constant). Also: a log-sum-exp written with ``np.max`` compiles, held to
NumPy; every primitive of the engine and of nn has code; a user's primitive declared code=None is still
refused by name.

Each (dtype, mode) is one program holding every case (one input per case), compiled once per module.
"""
from __future__ import annotations

import numpy as np
import pytest

import autodiff as ad
import nn.functional as F           # (and nn's primitives in the registry, which the walk below includes)
from autodiff.compiler import CompileError

SHAPE = (3, 4, 2)
AXES = [(None, False), (1, False), (0, True), ((0, 2), False), ((2, 0), True), (-1, True)]
CASES = [(op, axis, keepdims) for op in (ad.max, ad.min, ad.prod) for axis, keepdims in AXES]
TOL = {np.float64: 1e-12, np.float32: 2e-5}


def _example(rng, dtype):
    """Distinct nonzero entries: no tie and no zero in any slice."""
    x = rng.uniform(0.5, 2.0, SHAPE) * rng.choice([-1.0, 1.0], SHAPE)
    return x.astype(dtype)


def _others(rng, dtype):
    """Points unlike the example: plain, ties and zeros everywhere ({-1, 0, 1}), and the maximum and the
    minimum of each row tied, with a zero in every row."""
    plain = rng.uniform(-2.0, 2.0, SHAPE)
    coarse = rng.integers(-1, 2, SHAPE).astype(float)
    mixed = rng.uniform(-2.0, 2.0, SHAPE)
    mixed[:, 1, :] = np.max(mixed, axis=1)
    mixed[:, 2, :] = np.min(mixed, axis=1)
    mixed[:, 3, 0] = 0.0
    return [p.astype(dtype) for p in (plain, coarse, mixed)]


def _weights(rng, dtype):
    return [rng.uniform(-1, 1, np.shape(np.max(np.zeros(SHAPE), axis=a, keepdims=k))).astype(dtype)
            for _, a, k in CASES]


def _total(weights):
    def total(*xs):
        y = 0.0
        for (op, axis, keepdims), x, w in zip(CASES, xs, weights):
            y = y + ad.sum(op(x, axis=axis, keepdims=keepdims) * w)
        return y
    return total


def _each(*xs):
    return tuple(op(x, axis=axis, keepdims=keepdims) for (op, axis, keepdims), x in zip(CASES, xs))


def _close(got, want, dtype, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype == dtype, (what, got.dtype, want.dtype)
    tol = TOL[dtype]
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def _name(k):
    op, axis, keepdims = CASES[k]
    return f"{op.__name__}(axis={axis}, keepdims={keepdims})"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compiled")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_value_and_gradient_are_the_engines_at_ties_and_zeros_the_example_lacks(dtype, cache):
    rng = np.random.default_rng(0)
    example = [_example(rng, dtype) for _ in CASES]
    assert all(np.all(x != 0) and np.unique(x).size == x.size for x in example)
    total = _total(_weights(rng, dtype))
    every = tuple(range(len(CASES)))
    cf = ad.compile(total, *example, argnums=every, cache=cache)
    points = [_others(rng, dtype) for _ in CASES]
    for p in range(3):
        xs = [pts[p] for pts in points]
        value, grads = cf(*xs)
        want_value, want_grads = ad.value_and_grad(total, argnums=every)(*xs)
        _close(value, want_value, dtype, f"value at point {p}")
        for k, (got, want) in enumerate(zip(grads, want_grads)):
            _close(got, want, dtype, f"gradient of {_name(k)} at point {p}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_value_and_tangent_are_the_engines_at_ties_and_zeros_the_example_lacks(dtype, cache):
    rng = np.random.default_rng(1)
    example = [_example(rng, dtype) for _ in CASES]
    every = tuple(range(len(CASES)))
    cf = ad.compile(_each, *example, mode="forward", argnums=every, cache=cache)
    points = [_others(rng, dtype) for _ in CASES]
    for p in range(3):
        xs = [pts[p] for pts in points]
        ts = [rng.uniform(-1, 1, SHAPE).astype(dtype) for _ in CASES]
        values, tangents = cf(*xs, *ts)
        for k, (op, axis, keepdims) in enumerate(CASES):
            want_value, want_tangent = ad.jvp(lambda v: op(v, axis=axis, keepdims=keepdims), (xs[k],), (ts[k],))
            _close(values[k], want_value, dtype, f"value of {_name(k)} at point {p}")
            _close(tangents[k], want_tangent, dtype, f"tangent of {_name(k)} at point {p}")


def test_the_other_points_hold_the_ties_and_zeros_the_example_lacks():
    """The precondition of the two tests above: what they compare is not what the example had."""
    rng = np.random.default_rng(0)
    plain, coarse, mixed = _others(rng, np.float64)
    for x in (coarse, mixed):
        assert np.any(np.sum(x == np.max(x, axis=1, keepdims=True), axis=1) > 1)      # tied maxima
        assert np.any(np.sum(x == np.min(x, axis=1, keepdims=True), axis=1) > 1)      # tied minima
        assert np.any(x == 0)
    assert np.sum(coarse == 0) >= 2                                                  # a slice with two zeros


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # the value is inf - inf
def test_a_tie_at_an_infinite_extremum_shares_the_gradient_as_the_engine_does(cache):
    f = lambda v: ad.max(v, axis=1) @ np.array([1.0, 2.0, 3.0]) + ad.min(v, axis=1) @ np.array([1.0, 1.0, 1.0])
    cf = ad.compile(f, np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), cache=cache)
    x = np.array([[np.inf, np.inf], [-np.inf, -np.inf], [1.0, -np.inf]])
    _, grad = cf(x)
    np.testing.assert_array_equal(grad, ad.grad(f)(x))
    # by hand: row 0 ties at +inf (max and min), row 1 at -inf (both), row 2 has max 1 and min -inf
    np.testing.assert_array_equal(grad, [[1.0, 1.0], [1.5, 1.5], [3.0, 1.0]])


def _lse(v):
    m = np.max(v)                       # NumPy's max on a Tensor: ad.max, recorded
    return m + ad.log(ad.sum(ad.exp(v - m)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_log_sum_exp_written_with_np_max_compiles_and_is_numpys(dtype, cache):
    rng = np.random.default_rng(2)
    cf = ad.compile(_lse, rng.normal(size=6).astype(dtype), cache=cache)
    tied = np.array([700.0, 700.0, -3.0, 1.0, 700.0, 0.0])        # the maximum tied, exp(700) past float32
    for x in (rng.normal(size=6) * 50, tied):
        x = x.astype(dtype)
        value, grad = cf(x)
        shifted = np.exp(x.astype(np.float64) - np.max(x))
        want_value = np.log(np.sum(shifted)) + np.max(x)               # NumPy, shifted by hand
        want_grad = shifted / np.sum(shifted)                          # softmax
        tol = TOL[dtype]
        assert value.dtype == grad.dtype == dtype
        assert value == pytest.approx(want_value, rel=tol)
        np.testing.assert_allclose(grad, want_grad, rtol=tol, atol=tol)
        engine_value, engine_grad = ad.value_and_grad(_lse)(x)
        _close(value, engine_value, dtype, "value")
        _close(grad, engine_grad, dtype, "gradient")


def test_max_pooling_of_ties_the_example_lacks_follows_the_engine(cache):
    f = lambda x: ad.sum(F.max_pool2d(x, 3, stride=1, padding=1) ** 2)
    rng = np.random.default_rng(3)
    cf = ad.compile(f, rng.normal(size=(1, 2, 4, 4)), cache=cache)
    x = np.round(rng.normal(size=(1, 2, 4, 4)))                    # ties: the first maximum of each window
    value, grad = cf(x)
    want_value, want_grad = ad.value_and_grad(f)(x)
    assert value == want_value
    np.testing.assert_array_equal(grad, want_grad)


def _example_loss(w, x):
    pooled = F.max_pool2d(x * w, 2, stride=1)
    v = ad.reshape(pooled, shape=(2, 9))
    return ad.sum(ad.prod(v[:, :4], axis=1)) + ad.sum(ad.max(v, axis=0) ** 2) - ad.sum(ad.min(v, axis=1))


def test_compiled_per_example_gradients_find_each_examples_ties_and_zeros(cache):
    """compile(vmap(grad(f))): the map staged into one program, its rules computed per example at run time."""
    rng = np.random.default_rng(4)
    w = rng.uniform(0.5, 1.5, (1, 2, 4, 4))
    per_example = ad.vmap(ad.grad(_example_loss), in_axes=(None, 0))
    cf = ad.compile(per_example, w, rng.normal(size=(3, 1, 2, 4, 4)), mode="value", cache=cache)
    xs = np.round(rng.normal(size=(3, 1, 2, 4, 4)))                 # ties in the windows, zeros in prod
    xs[1] = 1.0                                                       # one example all tied
    loop = np.stack([ad.grad(_example_loss)(w, x) for x in xs])
    np.testing.assert_allclose(cf(w, xs), loop, rtol=1e-12, atol=1e-12)


def test_every_primitive_of_the_engine_and_of_nn_has_compile_code():
    """A future primitive declared code=None (refused by compile) fails here, by name."""
    ours = {n: p for n, p in ad.REGISTRY.items() if p.impl.__module__.split(".")[0] in ("autodiff", "nn")}
    assert {"max", "min", "prod", "max_pool2d", "max_pool2d_scatter", "max_pool2d_gather"} <= set(ours)
    assert [n for n, p in ours.items() if p.code is None] == []


@pytest.fixture
def declared():
    before = set(ad.REGISTRY)
    yield
    for name in set(ad.REGISTRY) - before:
        del ad.REGISTRY[name]


def test_a_users_primitive_without_code_is_refused_by_name(declared, cache):
    @ad.primitive(partials=[lambda out, x: 2 * x], code=None)
    def squared_no_code(x):
        return np.asarray(x) ** 2

    with pytest.raises(CompileError, match="primitive 'squared_no_code' cannot be compiled: .*code=None"):
        ad.compile(lambda v: ad.sum(squared_no_code(v)), np.ones(3), cache=cache)
