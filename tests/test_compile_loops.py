"""Loops stay loops: scan, fori_loop and while_loop, eager and compiled, held to the eager engine.

The compiled loop is one node of the program whose body is compiled once, so its program text does
not grow with the trip count (checked on the text, not timed); its reverse pass runs the body's vjp
backwards, its forward pass carries tangents through the body's jvp. Every compiled value and
gradient is compared with the eager engine, which runs the same loops step by step, at inputs other
than the example point (other trip counts included).
"""
import numpy as np
import pytest

import autodiff as ad
from autodiff import CompileError


def _close(got, want, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want[0]), rtol=rtol, atol=1e-14)
    grads_got = got[1] if isinstance(got[1], tuple) else (got[1],)
    grads_want = want[1] if isinstance(want[1], tuple) else (want[1],)
    for g, w in zip(grads_got, grads_want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=1e-14)


# --- eager semantics, as jax.lax --------------------------------------------------------------------

def test_eager_scan_fori_and_while_are_the_python_loops():
    xs = np.arange(5.0)
    carry, ys = ad.scan(lambda c, x: (c + x, c * x), 1.0, xs)
    running, expect = 1.0, []
    for x in xs:
        expect.append(running * x)
        running += x
    assert carry == running and np.array_equal(ys, expect)
    assert ad.fori_loop(2, 6, lambda i, v: v * 2 + i, 1.0) == ((((1 * 2 + 2) * 2 + 3) * 2 + 4) * 2 + 5)
    assert ad.while_loop(lambda v: v < 100, lambda v: v * 3, 1) == 243
    assert ad.scan(lambda c, _: (c * 2, None), 1.0, length=3) == (8.0, None)
    with pytest.raises(ValueError, match="different lengths"):
        ad.scan(lambda c, x: (c, None), 0.0, (np.zeros(3), np.zeros(4)))


# --- compiled --------------------------------------------------------------------------------------

def _recurrence(steps):
    def f(x):
        return ad.fori_loop(0, steps, lambda i, y: y + 0.01 * ad.sin(y * x) + 0.001 * i, x)
    return f


def test_a_long_recurrence_compiles_as_one_loop_whose_text_does_not_grow_with_the_trip_count(tmp_path):
    short, long = (ad.compile(_recurrence(n), 0.5, cache=tmp_path) for n in (10, 1000))
    assert long.source.count("impl.loop(") == 1 and long.source.count("impl.loop_vjp(") == 1
    assert len(long.source.splitlines()) == len(short.source.splitlines())
    for x in (0.7, -0.3):
        _close(long(x), ad.value_and_grad(_recurrence(1000))(x))


def _lstm(hidden):
    def loss(wx, wh, b, xs):
        def step(carry, x):
            h, c = carry
            z = x @ wx + h @ wh + b
            i, f, o = ad.sigmoid(z[:hidden]), ad.sigmoid(z[hidden:2 * hidden]), ad.sigmoid(z[2 * hidden:3 * hidden])
            c = f * c + i * ad.tanh(z[3 * hidden:])
            h = o * ad.tanh(c)
            return (h, c), ad.sum(h * h)

        (h, _), ys = ad.scan(step, (np.zeros(hidden), np.zeros(hidden)), xs)
        return ad.sum(ys) + ad.sum(h)
    return loss


def test_an_lstm_scanned_over_a_sequence_matches_the_eager_engine(tmp_path):
    rng = np.random.default_rng(3)
    hidden, d = 5, 3
    params = [rng.normal(size=(d, 4 * hidden)) * 0.4, rng.normal(size=(hidden, 4 * hidden)) * 0.4,
              rng.normal(size=4 * hidden) * 0.1]
    xs = rng.normal(size=(40, d))
    cf = ad.compile(_lstm(hidden), *params, xs, argnums=(0, 1, 2), cache=tmp_path)
    other = [p * 1.3 for p in params]
    _close(cf(*other, xs[::-1].copy()), ad.value_and_grad(_lstm(hidden), argnums=(0, 1, 2))(*other, xs[::-1].copy()))


def test_while_loop_with_a_data_dependent_trip_count_is_differentiated_in_reverse(tmp_path):
    f = lambda x: ad.while_loop(lambda v: v > 1.0, lambda v: v * 0.5 + 0.1 * ad.sin(v), x)
    cf = ad.compile(f, 3.0, cache=tmp_path)
    for x in (3.0, 100.0, 0.5, 1e6):           # 2 steps at the example; 0 and ~20 elsewhere
        _close(cf(x), ad.value_and_grad(f)(x))


def test_fori_loop_with_a_traced_bound_and_a_closed_over_computed_value(tmp_path):
    def f(x, n):
        scale = ad.exp(x) * 2.0            # a node of f's program that the body reads
        return ad.fori_loop(0.0, n, lambda i, v: v * scale * 0.1 + i, x)

    cf = ad.compile(f, 0.5, 3.0, argnums=(0, 1), cache=tmp_path)
    for x, n in ((0.7, 3.0), (0.2, 7.0), (0.4, 0.0)):
        _close(cf(x, n), ad.value_and_grad(f, argnums=(0, 1))(x, n))


def test_nested_loops_and_a_branch_inside_a_body(tmp_path):
    def f(x):
        def outer(i, v):
            inner = ad.fori_loop(0, 3, lambda j, w: w * 0.9 + ad.sin(v), v)
            return ad.tanh(inner) if inner > 0.5 else inner * 2.0
        return ad.fori_loop(0, 4, outer, x)

    cf = ad.compile(f, 0.3, cache=tmp_path)
    for x in (0.3, -0.4, 1.5):
        _close(cf(x), ad.value_and_grad(f)(x))


def test_a_body_that_changes_the_carry_is_refused(tmp_path):
    with pytest.raises(CompileError, match="keeps its carry's shapes"):
        ad.compile(lambda v: ad.sum(ad.fori_loop(0, 3, lambda i, c: ad.sum(c), v)), np.ones(2), cache=tmp_path)


def test_forward_mode_carries_tangents_through_scan_and_while_loop(tmp_path):
    def f(x, xs):
        carry, ys = ad.scan(lambda c, u: (c * 0.9 + ad.sin(u * x), c * u), x, xs)
        return carry + ad.sum(ys * ys)

    xs = np.linspace(-1.0, 2.0, 20)
    cf = ad.compile(f, 0.5, xs, mode="forward", argnums=(0, 1), cache=tmp_path)
    tangent = np.random.default_rng(0).normal(size=20)
    got, want = cf(0.7, xs, 1.0, tangent), ad.jvp(f, (0.7, xs), (1.0, tangent))
    np.testing.assert_allclose(got, [np.asarray(getattr(w, "value", w)) for w in want], rtol=1e-12)
    g = lambda x: ad.while_loop(lambda v: v > 1.0, lambda v: v * 0.5 + 0.1 * ad.sin(v * x), x * 3.0)
    cg = ad.compile(g, 1.0, mode="forward", cache=tmp_path)
    for x in (1.0, 5.0, 0.2):                 # 2, 4 and 0 steps
        got, want = cg(x, 1.0), ad.jvp(g, (x,), (1.0,))
        np.testing.assert_allclose(got, [np.asarray(getattr(w, "value", w)) for w in want], rtol=1e-12)


def test_a_python_while_on_a_traced_value_points_to_while_loop():
    def f(x):
        while x < 100.0:
            x = x * 2.0
        return x

    with pytest.raises(CompileError, match="autodiff.while_loop"):
        ad.compile(f, 3.0)


def test_a_loop_of_numbers_runs_as_one_numba_loop_and_its_reverse_loop(tmp_path):
    def f(x, xs):
        carry, ys = ad.scan(lambda c, u: (c * 0.9 + ad.sin(u * x), c * u), x, xs)
        return carry + ad.sum(ys * ys)

    xs = np.linspace(-1.0, 2.0, 50)
    cf = ad.compile(f, 0.5, xs, argnums=(0, 1), cache=tmp_path)
    loops = [p for p in tmp_path.iterdir() if "_loops_" in p.name]
    assert len(loops) == 1 and "for t in range(n - 1, -1, -1):" in loops[0].read_text()
    for x in (0.5, -1.2):
        _close(cf(x, xs[::-1].copy()), ad.value_and_grad(f, argnums=(0, 1))(x, xs[::-1].copy()))


def test_a_body_that_ignores_its_index_has_no_cotangent_for_it_and_still_runs_as_numbers(tmp_path):
    f = lambda x: ad.fori_loop(0, 200, lambda i, y: ad.sin(y) * x + 0.5, x)
    cf = ad.compile(f, 0.5, cache=tmp_path)
    assert "# --- <scan loop" in cf.source and "def backward(" in cf.source      # the loops, written out
    assert cf.source.count("def backward(") == 1                               # once, for loop and loop_vjp
    for x in (0.5, -0.9):
        _close(cf(x), ad.value_and_grad(f)(x))


def test_a_scan_of_arrays_keeps_its_tape_for_the_reverse_loop_and_carries_tangents_forward(tmp_path):
    def f(w, xs):
        carry, ys = ad.scan(lambda c, x: (ad.tanh(c * w + x), ad.sum(c * c)), np.zeros(3), xs)
        return ad.sum(carry) + ad.sum(ys)

    rng = np.random.default_rng(5)
    w, xs = rng.normal(size=3), rng.normal(size=(30, 3))
    reverse = ad.compile(f, w, xs, argnums=(0, 1), cache=tmp_path)
    forward = ad.compile(f, w, xs, mode="forward", argnums=(0, 1), cache=tmp_path)
    w2, xs2 = w * 1.4, xs[::-1].copy()
    _close(reverse(w2, xs2), ad.value_and_grad(f, argnums=(0, 1))(w2, xs2))
    tw, txs = rng.normal(size=3), rng.normal(size=(30, 3))
    got, want = forward(w2, xs2, tw, txs), ad.jvp(f, (w2, xs2), (tw, txs))
    np.testing.assert_allclose(got, [np.asarray(getattr(v, "value", v)) for v in want], rtol=1e-12)


def test_a_scan_with_no_carry_is_a_map_and_a_traced_bound_must_be_whole_when_it_runs(tmp_path):
    f = lambda x: ad.sum(ad.scan(lambda c, y: (c, ad.sin(y * x)), None, np.arange(3.0))[1])
    reverse = ad.compile(f, 0.5, cache=tmp_path)
    forward = ad.compile(f, 0.5, mode="forward", cache=tmp_path)
    _close(reverse(0.7), ad.value_and_grad(f)(0.7))
    np.testing.assert_allclose(forward(0.7, 1.0), [float(np.asarray(getattr(v, "value", v)))
                                                  for v in ad.jvp(f, (0.7,), (1.0,))], rtol=1e-14)
    h = lambda x, n: ad.fori_loop(0, n, lambda i, v: v * x, x)
    ch = ad.compile(h, 0.5, 3.0, cache=tmp_path)
    _close(ch(0.7, 4.0), ad.value_and_grad(h)(0.7, 4.0))
    for bad in (2.5, np.nan):          # range(0, 2.5) is an error, not 3 steps: said when the loop runs
        with pytest.raises(ValueError, match="fori_loop: upper must be a whole number"):
            ch(0.7, bad)
