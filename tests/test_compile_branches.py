"""autodiff.compile never freezes a branch: comparisons recorded, `if` compiled both ways, reads refused.

Every compiled result is held to the eager engine (value_and_grad, jvp) at points on both sides of
each decision, not at the example point alone, where a frozen branch would also agree.
"""
import math
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autodiff as ad
from autodiff import CompileError
from autodiff.compiler.branches import MAX_PATHS


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "compiled"


def _agrees(cf, f, points, **kw):
    for x in points:
        got, want = cf(x), ad.value_and_grad(f, **kw)(x)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-14, atol=0)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-14, atol=0)


# --- the five ways to freeze a branch ----------------------------------------------------

def test_item_in_a_conditional_expression_compiles_both_ways(cache):
    f = lambda x: ad.sin(x) if x.item() > 0 else x * 3.0
    cf = ad.compile(f, 0.5, cache=cache)
    assert cf(-0.5) == pytest.approx((-1.5, 3.0), rel=1e-15)       # the eager engine's answer, not sin's
    _agrees(cf, f, [0.5, -0.5, 2.0, -3.0])


def test_equality_as_a_truth_value_compiles_both_ways(cache):
    def f(x):
        if x == 0.5:
            return x * x
        return ad.exp(x)

    cf = ad.compile(f, 0.5, cache=cache)
    _agrees(cf, f, [0.5, 0.25, -1.0])


@pytest.mark.parametrize("read, what", [
    (lambda x: x.value > 0, r"\.value"),
    (lambda x: x.numpy() > 0, r"numpy\(\)"),
    (lambda x: np.asarray(x) > 0, r"np\.asarray\(\)"),
    (lambda x: float(x) > 0, r"float\(\)"),
    (lambda x: math.sin(x) > 0, r"float\(\)"),
    (lambda x: int(x) > 0, r"int\(\)"),
    (lambda x: np.floor(x) > 0, r"np\.floor"),
    (lambda x: np.argmax(ad.stack([x, x])) > 0, r"np\.argmax"),
    (lambda x: range(int(round(float(x.detach()) * 4))), r"float\(\)"),
])
def test_every_way_to_read_a_traced_number_is_refused_in_one_line_naming_the_line(read, what):
    def f(x):
        if read(x):
            return ad.sin(x)
        return x

    with pytest.raises(CompileError, match=what) as err:
        ad.compile(f, 0.5)
    message = str(err.value)
    assert "\n" not in message and "test_compile_branches.py:" in message and "static_argnums" in message


def test_a_mask_from_equality_is_computed_at_each_input(cache):
    f = lambda v: np.where(v == 0, 1.0, v)
    cf = ad.compile(f, np.array([0.0, 2.0]), mode="value", cache=cache)
    for v in ([3.0, 0.0], [0.0, 0.0], [1.0, 2.0]):
        np.testing.assert_array_equal(cf(np.array(v)), f(np.array(v)))
    assert cf(np.array([3.0, 0.0]))[0] == 3.0


@pytest.mark.parametrize("compare", [np.greater, np.less_equal, np.not_equal, lambda a, b: a >= b,
                                     lambda a, b: b < a, lambda a, b: a != b])
def test_every_comparison_is_recorded_not_frozen(cache, compare):
    f = lambda v: ad.sum(ad.where(compare(v, 0.5), v * v, ad.sin(v)))
    cf = ad.compile(f, np.array([0.1, 0.9, 0.5]), cache=cache)
    for v in ([0.9, 0.1, 0.2], [0.5, 0.5, 0.7], [-1.0, 2.0, 0.4]):
        v = np.array(v)
        got, want = cf(v), ad.value_and_grad(f)(v)
        assert got[0] == pytest.approx(want[0], rel=1e-14)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-14)


def test_detach_inside_compile_is_stop_gradient(cache):
    f = lambda x: x * x.detach()
    cf = ad.compile(f, 0.5, cache=cache)
    assert cf(3.0) == ad.value_and_grad(f)(3.0) == (9.0, 3.0)


def test_the_guards_are_gone_after_compiling():
    ad.compile(lambda x: ad.sin(x) if x > 0 else x, 0.5)
    t = ad.Tensor(1.0, requires_grad=True)
    assert bool(t) and isinstance(t > 0, (np.ndarray, np.bool_)) and t.value == 1.0 and float(t.detach()) == 1.0


# --- Python control flow: if / elif / else, and, or, not -------------------------------------------

def test_if_elif_else_with_a_constant_branch(cache):
    def f(x):
        if x > 1.0:
            return ad.sin(x)
        elif x > 0:
            return x * x
        return 0.0

    cf = ad.compile(f, 0.5, cache=cache)
    _agrees(cf, f, [2.0, 0.5, -1.0, 1.0, 0.0])
    dispatcher = cf.source.split("def f_value_and_grad(")[-1]
    assert dispatcher.count("if f_value_and_grad_if") == 2 and dispatcher.count("return f_value_and_grad_path") == 3
    assert "`if x > 1.0:`" in dispatcher and "`elif x > 0:`" in dispatcher      # the user's lines, mapped


def test_and_or_not_and_nested_decisions(cache):
    def f(v):
        s = ad.sum(v)
        if (s > 0 and v[0] < 3) or not v[1] > -1:
            return ad.sum(v * v)
        if s < -5:
            return ad.sum(ad.exp(v)) * 2.0
        return ad.sum(ad.exp(v))

    cf = ad.compile(f, np.array([1.0, 2.0]), cache=cache)
    for v in ([1.0, 2.0], [-3.0, 1.0], [4.0, 1.0], [0.5, -2.0], [-4.0, -2.0], [-0.1, -0.5]):
        v = np.array(v)
        got, want = cf(v), ad.value_and_grad(f)(v)
        assert got[0] == pytest.approx(want[0], rel=1e-14)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-14)


def test_truth_of_a_value_itself_is_nonzero(cache):
    f = lambda x: ad.exp(x) if x else x + 1.0
    cf = ad.compile(f, 0.5, cache=cache)
    _agrees(cf, f, [0.5, 0.0, -2.0])


def test_forward_mode_and_float32_branch_with_a_python_constant(cache):
    f = lambda x: ad.tanh(x) if x < 0 else 2.0
    cf = ad.compile(f, np.float32(-0.5), mode="forward", cache=cache)
    for x in (np.float32(-0.5), np.float32(3.0)):
        y, dy = cf(x, np.float32(1.0))
        wy, wdy = ad.jvp(f, (x,), (np.float32(1.0),))
        assert y.dtype == np.float32 and y == pytest.approx(float(np.asarray(getattr(wy, "value", wy))), rel=1e-6)
        assert dy == pytest.approx(float(np.asarray(getattr(wdy, "value", wdy))), rel=1e-6)


def test_branches_of_different_shapes_are_refused_naming_the_if():
    def f(v):
        if ad.sum(v) > 0:
            return v * 2.0
        return ad.sum(v)

    with pytest.raises(CompileError, match=r"`if ad.sum\(v\) > 0:`\) return different shapes"):
        ad.compile(f, np.array([1.0, 2.0]), mode="value")


def test_a_loop_with_a_traced_trip_count_is_refused_not_unrolled_forever():
    def f(x):
        while x < 100.0:
            x = x * 2.0
        return x

    with pytest.raises(CompileError, match=f"more than {MAX_PATHS} ways.*while x < 100.0"):
        ad.compile(f, 3.0)


def test_an_ambiguous_truth_value_of_a_vector_says_so():
    with pytest.raises(ValueError, match=r"truth value of a Tensor of shape \(2,\) is ambiguous.*autodiff.where"):
        ad.compile(lambda v: ad.sum(v) if v > 0 else ad.sum(v * v), np.array([1.0, 2.0]))


# --- static_argnums --------------------------------------------------------------------------------

def test_static_argnums_compile_once_per_value(cache):
    def power(x, n):
        y = x
        for _ in range(n):
            y = y * x
        return y

    cf = ad.compile(power, 0.5, 3, static_argnums=1, cache=cache)
    for n in (3, 1, 3, 5):
        assert cf(1.5, n) == pytest.approx(ad.value_and_grad(power)(1.5, n), rel=1e-15)
    assert len(cf.programs) == 3
    with pytest.raises(TypeError, match="static argument 1 must be hashable"):
        cf(1.5, [3])
    with pytest.raises(ValueError, match="both static .* and differentiated"):
        ad.compile(power, 0.5, 3, static_argnums=1, argnums=1)
    with pytest.raises(ValueError, match="static_argnums=5"):
        ad.compile(power, 0.5, 3, static_argnums=5)


# --- property: random programs with branches and loops, compiled once, agree with the eager engine ----

_OPS = [ad.sin, ad.tanh, lambda v: v * v, lambda v: 3.0 * v - 1.0, lambda v: ad.exp(-v * v)]
_TESTS = [lambda v, c: v > c, lambda v, c: v <= c, lambda v, c: v == c, lambda v, c: not v < c,
          lambda v, c: (v > c) and (v < c + 1.0)]


def _programs():
    step = st.one_of(st.tuples(st.just("op"), st.integers(0, len(_OPS) - 1)),
                     st.tuples(st.just("loop"), st.integers(0, 6), st.integers(0, len(_OPS) - 1)),
                     st.tuples(st.just("if"), st.integers(0, len(_TESTS) - 1), st.sampled_from([-0.5, 0.0, 0.5]),
                               st.lists(st.tuples(st.just("op"), st.integers(0, len(_OPS) - 1)), max_size=2),
                               st.lists(st.tuples(st.just("op"), st.integers(0, len(_OPS) - 1)), max_size=2)))
    return st.lists(step, min_size=1, max_size=4)


def _run(steps, v):
    for step in steps:
        if step[0] == "op":
            v = _OPS[step[1]](v)
        elif step[0] == "loop":          # a loop of a few steps, the body with a branch of its own
            op = _OPS[step[2]]
            v = ad.fori_loop(0, step[1], lambda i, w, op=op: op(w) * 0.5 if w > 0.25 else w * 0.9 + 0.1, v)
        elif _TESTS[step[1]](v, step[2]):
            v = _run(step[3], v)
        else:
            v = _run(step[4], v)
    return v * 1.0


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compiled")


@settings(max_examples=15, deadline=None)
@given(steps=_programs(), at=st.sampled_from([-0.5, 0.0, 0.3, 1.2]),
       points=st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.25, 0.5, 0.9, 1.5]), min_size=3, max_size=5))
def test_random_programs_with_branches_agree_with_the_eager_engine(shared_cache, steps, at, points):
    f = lambda x: _run(steps, x)
    cf = ad.compile(f, at, cache=shared_cache)
    for x in points:
        got, want = cf(x), ad.value_and_grad(f)(x)
        assert got[0] == pytest.approx(want[0], rel=1e-13, abs=1e-15), (steps, x)
        # a saturated tanh's derivative 1 - y^2 cancels: round-off of order eps times the O(1) terms, absolute
        assert got[1] == pytest.approx(want[1], rel=1e-13, abs=1e-13), (steps, x)


def test_a_comparison_under_vmap_is_recorded_per_example_and_an_if_on_it_is_vmaps_error(cache):
    f = ad.vmap(lambda x: ad.sum(ad.where(x > 0, x * x, ad.sin(x))))
    cf = ad.compile(f, np.array([[1.0, -2.0], [0.5, 3.0]]), mode="value", cache=cache)
    for xs in ([[-1.0, 2.0], [0.5, -3.0]], [[2.0, 2.0], [-1.0, -1.0]]):
        np.testing.assert_allclose(cf(np.array(xs)), f(np.array(xs)), rtol=1e-15)
    g = ad.vmap(lambda x: ad.sum(x * x) if ad.sum(x) > 0 else ad.sum(x))
    with pytest.raises(TypeError, match="vmap: a mapped value has no single truth value"):
        ad.compile(g, np.ones((2, 2)), mode="value")


def test_another_thread_meets_tensors_as_ever_while_one_records(cache):
    """The guards swap Tensor's methods on the class: only the recording thread may see them act."""
    inside, done, seen = threading.Event(), threading.Event(), {}

    def other():
        inside.wait(10)
        t = ad.Tensor(2.0, requires_grad=True)
        seen.update(compare=type(t > 0), truth=bool(t), number=float(t.detach()), ufunc=type(np.greater(t.value, 0)),
                    value=t.value.item())
        done.set()

    def f(x):
        inside.set()
        done.wait(10)
        return ad.sin(x)

    worker = threading.Thread(target=other)
    worker.start()
    ad.compile(f, 0.5, mode="value", cache=cache)
    worker.join(10)
    assert seen == {"compare": np.bool_, "truth": True, "number": 2.0, "ufunc": np.bool_, "value": 2.0}


def test_the_readme_states_the_limit_of_ways_the_code_has():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"refused after {MAX_PATHS} ways" in readme
