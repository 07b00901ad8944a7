"""Careless and hostile calls of compile's new features: loops, static_argnums, mode="vjp", tangents=, explain, if.

Each careless call is refused before any step runs, in one line naming the argument (what was expected,
what came), eagerly and under compile alike; each call that should work is held to the eager engine.
"""
import math

import numpy as np
import pytest

import autodiff as ad
from autodiff import CompileError
from _hostile import EXPECTED, refused_in_one_line

XS = np.arange(3.0)


def _in_compile(call):
    """call(x) recorded by autodiff.compile (mode='value') at x = 0.5 and run at 0.7."""
    return lambda cache: ad.compile(lambda x: call(x), 0.5, mode="value", cache=cache)(0.7)


def _eager(call):
    return lambda cache: call(ad.Tensor(0.5))


def _both(name, call, error, message):
    """The same careless loop, on the eager engine and under compile."""
    return {f"{name} (eager)": (_eager(call), error, message),
            f"{name} (compiled)": (_in_compile(call), error, message)}


def _compile(f, *args, **kw):
    return lambda cache: ad.compile(f, *args, cache=cache, **kw)


def _double(x, n):
    return x * n


CASES = {
    # --- scan ------------------------------------------------------------------------------------
    **_both("scan of a non-function", lambda x: ad.scan(None, x, XS), TypeError, r"scan: f must be a function, got "
            r"NoneType"),
    **_both("scan whose f returns one value", lambda x: ad.scan(lambda c, u: c + u, x, XS), TypeError,
            r"scan: f must return a pair \(carry, y\), got Tensor"),
    **_both("scan whose f returns three", lambda x: ad.scan(lambda c, u: (c, u, u), x, XS), TypeError,
            r"scan: f must return a pair \(carry, y\), got a 3-tuple"),
    **_both("scan of xs of two lengths", lambda x: ad.scan(lambda c, u: (c, None), x, (np.zeros(3), np.zeros(4))),
            ValueError, r"scan: the arrays of xs have different lengths along axis 0: \[3, 4\]"),
    **_both("scan without xs or length", lambda x: ad.scan(lambda c, u: (c, None), x), ValueError,
            r"scan: give xs \(arrays with a leading axis\) or length="),
    **_both("scan of a negative length", lambda x: ad.scan(lambda c, u: (c * 2, None), x, length=-1), ValueError,
            r"scan: length must be >= 0, got -1"),
    **_both("scan of a fractional length", lambda x: ad.scan(lambda c, u: (c * 2, None), x, length=2.5), ValueError,
            r"scan: length must be a whole number, got 2.5"),
    **_both("scan of a NaN length", lambda x: ad.scan(lambda c, u: (c * 2, None), x, length=math.nan), ValueError,
            r"scan: length must be a whole number, got nan"),
    **_both("scan of a string length", lambda x: ad.scan(lambda c, u: (c * 2, None), x, length="3"), TypeError,
            r"scan: length must be an int, got str: '3'"),
    **_both("scan of a bool length", lambda x: ad.scan(lambda c, u: (c * 2, None), x, length=True), TypeError,
            r"scan: length must be an int, got bool"),
    **_both("scan of length and xs that disagree", lambda x: ad.scan(lambda c, u: (c, u), x, XS, length=4),
            ValueError, r"scan: length=4 but xs has length 3"),
    **_both("scan of a list of numbers", lambda x: ad.scan(lambda c, u: (c + u, u), x, [1.0, 2.0]), ValueError,
            r"scan: each array of xs needs a leading axis to scan over; got a 0-d float"),
    **_both("scan of a string xs", lambda x: ad.scan(lambda c, u: (c, u), x, "abc"), TypeError,
            r"scan: xs must hold numbers or arrays of numbers, got a leaf of type str: 'abc'"),
    **_both("scan of a string init", lambda x: ad.scan(lambda c, u: (c, u * x), "a", XS), TypeError,
            r"scan: init must hold numbers or arrays of numbers, got a leaf of type str: 'a'"),
    **_both("scan whose carry changes structure", lambda x: ad.scan(lambda c, u: ((c, c), u), x, XS), TypeError,
            r"scan: f must return a carry of (the initial value's|init's) structure PyTreeDef\(\*\), got "
            r"PyTreeDef\(\(\*, \*\)\)"),
    **_both("scan whose carry changes shape", lambda x: ad.scan(lambda c, u: (ad.stack([c, c]), u), x, XS), TypeError,
            r"scan: .* turns carry part 0 of shape \(\), float64 into \(2,\), float64; a loop keeps its carry's"),
    # --- fori_loop -------------------------------------------------------------------------------
    **_both("fori_loop of a fractional lower", lambda x: ad.fori_loop(0.5, 3, lambda i, v: v + i * x, x), ValueError,
            r"fori_loop: lower must be a whole number, got 0.5"),
    **_both("fori_loop of a fractional upper", lambda x: ad.fori_loop(0, 2.7, lambda i, v: v + i * x, x), ValueError,
            r"fori_loop: upper must be a whole number, got 2.7"),
    **_both("fori_loop of a string upper", lambda x: ad.fori_loop(0, "3", lambda i, v: v + i * x, x), TypeError,
            r"fori_loop: upper must be an int, got str: '3'"),
    **_both("fori_loop of a NaN upper", lambda x: ad.fori_loop(0, math.nan, lambda i, v: v + i * x, x), ValueError,
            r"fori_loop: upper must be a whole number, got nan"),
    **_both("fori_loop of an infinite upper", lambda x: ad.fori_loop(0, math.inf, lambda i, v: v + x, x), ValueError,
            r"fori_loop: upper must be a whole number, got inf"),
    **_both("fori_loop of a None upper", lambda x: ad.fori_loop(0, None, lambda i, v: v + x, x), TypeError,
            r"fori_loop: upper must be an int, got NoneType"),
    **_both("fori_loop of a vector upper", lambda x: ad.fori_loop(0, np.array([3]), lambda i, v: v + x, x),
            TypeError, r"fori_loop: upper must be an int \(a scalar\), got an array of shape \(1,\)"),
    **_both("fori_loop of a non-function", lambda x: ad.fori_loop(0, 3, None, x), TypeError,
            r"fori_loop: body_fun must be a function, got NoneType"),
    **_both("fori_loop whose body changes shape", lambda x: ad.fori_loop(0, 3, lambda i, v: ad.stack([v, v]), x),
            TypeError, r"fori_loop: body_fun turns carry part 0 of shape \(\), float64 into \(2,\), float64"),
    **_both("fori_loop whose body changes structure", lambda x: ad.fori_loop(0, 3, lambda i, v: (v, v), x),
            TypeError, r"fori_loop: body_fun must return a carry of the initial value's structure"),
    **_both("fori_loop whose body changes dtype", lambda x: ad.fori_loop(0, 3, lambda i, v: v + 0.5 * x, 1),
            TypeError, r"fori_loop: body_fun turns carry part 0 of shape \(\), int64 into \(\), float64"),
    "fori_loop of a Tensor upper of 2.5": (_eager(lambda x: ad.fori_loop(0, ad.Tensor(2.5), lambda i, v: v * x, x)),
                                           ValueError, r"fori_loop: upper must be a whole number, got 2.5"),
    "fori_loop of a traced upper, NaN at the example": (
        _compile(lambda x, n: ad.fori_loop(0, n, lambda i, v: v * x, x), 0.5, math.nan, mode="value"), ValueError,
        r"fori_loop: upper must be a whole number, got nan"),
    "fori_loop of a traced vector upper": (
        _compile(lambda x, n: ad.fori_loop(0, n, lambda i, v: v * x, x), 0.5, np.ones(2), mode="value"), TypeError,
        r"fori_loop: upper must be an int \(a scalar\), got an array of shape \(2,\)"),
    # --- while_loop ------------------------------------------------------------------------------
    **_both("while_loop whose cond gives a vector", lambda x: ad.while_loop(lambda v: v < 3, lambda v: v + 1,
                                                                           ad.stack([x, x])),
            ValueError, r"while_loop: cond_fun must return a boolean scalar, got shape \(2,\) \(reduce it"),
    **_both("while_loop whose cond gives a string", lambda x: ad.while_loop(lambda v: "yes", lambda v: v + 1, x),
            TypeError, r"while_loop: cond_fun must return a boolean scalar, got str"),
    **_both("while_loop of a non-function cond", lambda x: ad.while_loop(None, lambda v: v + 1, x), TypeError,
            r"while_loop: cond_fun must be a function, got NoneType"),
    **_both("while_loop of a non-function body", lambda x: ad.while_loop(lambda v: v < 3, 2, x), TypeError,
            r"while_loop: body_fun must be a function, got int"),
    **_both("while_loop whose body changes structure", lambda x: ad.while_loop(lambda v: v[0] < 3, lambda v: v[0] + 1,
                                                                              (x, x)),
            TypeError, r"while_loop: body_fun must return (a carry of the initial value's|init_val's) structure"),
    **_both("while_loop of a string init", lambda x: ad.while_loop(lambda v: v < 3, lambda v: v + 1, "a"), TypeError,
            r"while_loop: init_val must hold numbers or arrays of numbers, got a leaf of type str"),
    "while_loop whose cond is a constant, compiled": (
        _in_compile(lambda x: ad.while_loop(lambda v: False, lambda v: v + 1, x)), CompileError,
        r"while_loop: under compile cond_fun must compare the loop's value; it returned the constant False"),
    # --- static_argnums --------------------------------------------------------------------------
    "static_argnums out of range": (_compile(_double, 0.5, 3, static_argnums=2), ValueError,
                                    r"static_argnums=2 must name arguments 0..1 .*got 2"),
    "static_argnums twice": (_compile(_double, 0.5, 3, static_argnums=(1, 1)), ValueError,
                             r"static_argnums=\(1, 1\) names argument 1 twice"),
    "static_argnums a bool": (_compile(_double, 0.5, 3, static_argnums=True), TypeError,
                              r"static_argnums must be an int or a tuple of ints .*got bool: True"),
    "static_argnums a float": (_compile(_double, 0.5, 3, static_argnums=1.0), TypeError,
                               r"static_argnums must be an int or a tuple of ints .*got float: 1.0"),
    "static_argnums a string": (_compile(_double, 0.5, 3, static_argnums="1"), TypeError,
                                r"static_argnums must be an int or a tuple of ints .*got str: '1'"),
    "static_argnums without examples": (_compile(_double, static_argnums=1), ValueError,
                                        r"static_argnums=1 names arguments, but no example arguments were given"),
    "a static list": (_compile(lambda x, n: x * len(n), 0.5, [1, 2], static_argnums=1), TypeError,
                      r"static argument 1 must be hashable .*got list"),
    "a static array": (_compile(_double, 0.5, np.array(3.0), static_argnums=1), TypeError,
                       r"static argument 1 must be a hashable plain value .*got ndarray"),
    "a static Tensor": (_compile(_double, 0.5, ad.Tensor(3.0), static_argnums=1), TypeError,
                        r"static argument 1 must be a hashable plain value .*got Tensor"),
    "static and differentiated": (_compile(_double, 0.5, 3, static_argnums=1, argnums=1), ValueError,
                                  r"argument 1 is both static \(static_argnums\) and differentiated \(argnums\)"),
    "every argument static": (_compile(_double, 0.5, 3, static_argnums=(0, 1)), ValueError,
                              r"static_argnums=\(0, 1\) makes every argument static, so there is nothing to trace"),
    "a static call short of an argument": (lambda cache: _compile(_double, 0.5, 3, static_argnums=1)(cache)(0.7),
                                           TypeError, r"takes 2 argument\(s\) \(f's 2\), got 1"),
    "a static call with one too many": (lambda cache: _compile(_double, 0.5, 3, static_argnums=1)(cache)(0.7, 4, 5),
                                        TypeError, r"static_argnums=\(1,\)\) takes 2 argument\(s\) \(f's 2\), got 3"),
    "a static vjp call without the cotangent": (
        lambda cache: _compile(_double, 0.5, 3, static_argnums=1, mode="vjp")(cache)(0.7, 4), TypeError,
        r"takes 3 argument\(s\) \(f's 2 and the cotangent\), got 2"),
    # --- mode="vjp", tangents=, explain ----------------------------------------------------------
    "a cotangent of another shape": (
        lambda cache: _compile(lambda x: x * 2, np.ones(3), mode="vjp")(cache)(np.ones(3), np.ones(4)), ValueError,
        r"the cotangent has shape \(4,\), expected \(3,\)"),
    "a string cotangent": (lambda cache: _compile(lambda x: x * 2, np.ones(3), mode="vjp")(cache)(np.ones(3), "a"),
                           TypeError, r"the cotangent has dtype <U1; give real numbers of shape \(3,\)"),
    "one cotangent for two outputs": (
        lambda cache: _compile(lambda x: (x * 2, ad.sum(x)), np.ones(3), mode="vjp")(cache)(np.ones(3), np.ones(3)),
        TypeError, r"the cotangent is a tuple of 2 arrays, one per output of f, got ndarray"),
    "tangents=0": (_compile(lambda x: x * 2, 0.5, mode="forward", tangents=0), ValueError,
                   r"tangents must be a positive int .*got 0"),
    "tangents=-1": (_compile(lambda x: x * 2, 0.5, mode="forward", tangents=-1), ValueError,
                    r"tangents must be a positive int .*got -1"),
    "tangents=2.5": (_compile(lambda x: x * 2, 0.5, mode="forward", tangents=2.5), ValueError,
                     r"tangents must be a positive int .*got 2.5"),
    "tangents=True": (_compile(lambda x: x * 2, 0.5, mode="forward", tangents=True), ValueError,
                      r"tangents must be a positive int .*got True"),
    "tangents in reverse mode": (_compile(lambda x: x * 2, 0.5, tangents=2), ValueError,
                                 r"tangents= batches forward mode's tangents; mode is 'reverse'"),
    "explain without arguments": (lambda cache: ad.explain(lambda x: x), TypeError,
                                  r"explain\(f, \*args\): give the arguments f is explained at"),
    "explain of a number": (lambda cache: ad.explain(3, 0.5), TypeError, r"explain: f must be a function, got int"),
    "explain at a string": (lambda cache: ad.explain(lambda x: x, "a"), TypeError,
                            r"explain: argument 0 must be a number or an array, got str"),
    "explain of a constant": (lambda cache: ad.explain(lambda x: 1.0, 0.5), CompileError,
                              r"explain: output 0 of f does not depend on its arguments"),
    # --- if on traced values ---------------------------------------------------------------------
    "branches of two dtypes": (_compile(lambda x: x * 2 if x > 0 else ad.astype(x, np.float32), 0.5, mode="value"),
                               CompileError, r"the branches of f's `if` at .* return different shapes or dtypes "
                                             r"\(\(\):float64 and \(\):float32\)"),
    "branches of two shapes": (_compile(lambda x: x * 2 if x > 0 else ad.stack([x, x]), 0.5, mode="value"),
                               CompileError, r"return different shapes or dtypes \(\(\):float64 and \(2,\):float64\)"),
    "float() of a traced value": (_compile(lambda x: x * float(x), 0.5), CompileError,
                                  r"float\(\) reads a traced value at .*static_argnums"),
    "a loop inside vmap inside compile": (
        _compile(ad.vmap(lambda x: ad.fori_loop(0, 3, lambda i, v: v * x + i, x)), np.ones(2), mode="value"),
        CompileError, r"scan's init is mapped by vmap; a loop inside vmap is not compiled"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_careless_call_is_refused_in_one_line_naming_the_argument(name, tmp_path):
    call, error, message = CASES[name]
    assert isinstance(refused_in_one_line(lambda: call(tmp_path), error, message), EXPECTED)


# --- what should work does, and agrees with the eager engine ---------------------------------------

def test_empty_and_backward_ranges_run_no_step_eager_and_compiled(tmp_path):
    assert ad.fori_loop(5, 2, lambda i, v: v + i, 1.0) == 1.0          # as range(5, 2): no step, as jax.lax
    assert ad.scan(lambda c, u: (c * 2, None), 1.0, length=0) == (1.0, None)
    cf = ad.compile(lambda x: ad.fori_loop(5, 2, lambda i, v: v * x, x), 0.5, cache=tmp_path)
    assert cf(0.7) == (0.7, 1.0)


def test_whole_float_bounds_and_numpy_ints_count_as_ints(tmp_path):
    body = lambda i, v: v * 2 + i      # noqa: E731
    assert ad.fori_loop(np.int64(0), 3.0, body, 1.0) == ad.fori_loop(0, 3, body, 1.0) == 12.0
    assert ad.scan(lambda c, u: (c + 1, None), 0.0, length=np.int32(2))[0] == 2.0
    cf = ad.compile(lambda x: ad.fori_loop(0, 3.0, lambda i, v: v * x + i, x), 0.5, cache=tmp_path)
    want = ad.value_and_grad(lambda x: ad.fori_loop(0, 3, lambda i, v: v * x + i, x))(0.7)
    np.testing.assert_allclose(cf(0.7), want, rtol=1e-14)


def test_a_traced_upper_bound_counts_steps_at_run_time(tmp_path):
    f = lambda x, n: ad.fori_loop(0, n, lambda i, v: v * x, x)      # noqa: E731
    cf = ad.compile(f, 0.5, 3.0, mode="value", cache=tmp_path)
    for n in (0.0, 1.0, 4.0):
        assert cf(0.7, n) == pytest.approx(0.7 ** (n + 1), rel=1e-14)


def test_eager_loops_run_under_vmap_and_match_the_loop_per_example():
    xs = np.array([0.7, 0.2])
    mapped = ad.vmap(lambda x: ad.fori_loop(0, 3, lambda i, v: v * x + i, x))(xs)
    np.testing.assert_allclose(ad.Tensor(mapped).value if isinstance(mapped, ad.Tensor) else mapped,
                               [ad.fori_loop(0, 3, lambda i, v: v * x + i, x) for x in xs], rtol=1e-15)
    with pytest.raises(TypeError, match="vmap: a mapped value has no single truth value") as info:
        ad.vmap(lambda x: ad.while_loop(lambda v: v < 3, lambda v: v * 2 + 0.1, x))(xs)
    assert "\n" not in str(info.value)


def test_static_values_compile_once_per_value_and_nan_once(tmp_path):
    cf = ad.compile(_double, 0.5, 3, static_argnums=-1, mode="value", cache=tmp_path)
    assert cf(0.7, 4) == pytest.approx(2.8) and cf(0.7, 3) == pytest.approx(2.1)
    assert len(cf.programs) == 2
    for _ in range(2):
        assert math.isnan(cf(0.7, float("nan")))       # a new NaN object each call: one program, not one per call
    assert len(cf.programs) == 3
    value_only = ad.compile(_double, 0.5, 3, static_argnums=1, argnums=1, mode="value", cache=tmp_path)
    assert value_only(0.7, 4) == pytest.approx(2.8)    # argnums means nothing in value mode: no clash


def test_a_nan_at_the_example_point_freezes_no_branch(tmp_path):
    f = lambda x: ad.sin(x) if x > 0 else x * 3.0      # noqa: E731
    cf = ad.compile(f, math.nan, cache=tmp_path)
    for x in (1.0, -1.0, 0.5):
        np.testing.assert_allclose(cf(x), ad.value_and_grad(f)(x), rtol=1e-15)
    got = cf(math.nan)
    assert math.isnan(got[0]) and got[1] == 3.0       # NaN > 0 is False, as on the eager engine
    assert ad.value_and_grad(f)(math.nan)[1] == 3.0


def test_explain_lets_the_users_own_error_through_and_explains_a_vector_output():
    with pytest.raises(ZeroDivisionError):
        ad.explain(lambda x: 1 / 0, 0.5)
    text = str(ad.explain(lambda x: x * 2, np.ones(3)))
    assert "reverse mode needs f to return one scalar" in text and "tangent program" in text
