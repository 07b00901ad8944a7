"""autodiff.compile's mode="vjp" (vector outputs, a given cotangent) and forward mode's batched tangents
(``tangents=k``), held to the eager engine: ``ad.vjp``, k separate ``ad.jvp`` calls and ``ad.jacobian``,
at points other than the example point (the program is recorded once, at the example).
"""
import numpy as np
import pytest

import autodiff as ad
from autodiff.compiler import CompileError
from autodiff.tensor import apply

TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-5, atol=2e-6)}
DTYPES = [np.float64, np.float32]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compiled_vjp")


def _draw(rng, shape, dtype):
    return np.asarray(rng.uniform(-1.5, 1.5, shape), dtype)


def _close(got, want, dtype):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype == dtype, (got.shape, want.shape, got.dtype)
    np.testing.assert_allclose(got, want, **TOL[dtype])


def _pairs(got, want):
    """(got, want) leaf pairs of two results of the same structure (tuples of arrays, or arrays)."""
    if isinstance(want, (tuple, list)):
        assert isinstance(got, tuple) and len(got) == len(want)
        return [p for g, w in zip(got, want) for p in _pairs(g, w)]
    return [(got, want)]


def elementwise(x):
    return ad.sin(x) * ad.exp(x / 2) + x * x


def mixed(x, w):
    """Loops and a NumPy call: a (5, 3) x (3, 2) product between elementwise statements."""
    return ad.tanh(ad.matmul(ad.sin(x), w) * 0.5) + ad.sum(w * w)


def two_outputs(x, y):
    return x * y + ad.sin(x), ad.sum(ad.exp(y) * x)


# --- mode="vjp" ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (3, 1, 4)], ids=str)
def test_vjp_of_a_vector_function_is_the_engines_at_other_points(shape, dtype, cache):
    rng = np.random.default_rng(len(shape))
    cf = ad.compile(elementwise, _draw(rng, shape, dtype), mode="vjp", cache=cache)
    for _ in range(2):
        x, ct = _draw(rng, shape, dtype), _draw(rng, shape, dtype)
        (y, g), (y0, fn) = cf(x, ct), ad.vjp(elementwise, x)
        _close(y, y0, dtype)
        _close(g, fn(ct)[0], dtype)
    assert len(cf.signatures) == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0)], ids=str)
def test_vjp_with_argnums_gives_the_cotangent_of_those_arguments(argnums, dtype, cache):
    rng = np.random.default_rng(7)
    cf = ad.compile(mixed, _draw(rng, (5, 3), dtype), _draw(rng, (3, 2), dtype), mode="vjp", argnums=argnums,
                    cache=cache)
    x, w, ct = _draw(rng, (5, 3), dtype), _draw(rng, (3, 2), dtype), _draw(rng, (5, 2), dtype)
    (y, vjp), (y0, fn) = cf(x, w, ct), ad.vjp(mixed, x, w)
    every = fn(ct)
    want = every[argnums] if isinstance(argnums, int) else tuple(every[a] for a in argnums)
    assert isinstance(vjp, tuple) == isinstance(argnums, tuple)
    for g, g0 in _pairs(vjp, want) + [(y, y0)]:
        _close(g, g0, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_vjp_of_two_outputs_takes_a_tuple_of_cotangents(dtype, cache):
    rng = np.random.default_rng(2)
    cf = ad.compile(two_outputs, _draw(rng, 4, dtype), _draw(rng, 4, dtype), mode="vjp", argnums=(0, 1),
                    cache=cache)
    program = cf.last.program
    seeds = [leaf.name for leaf in program.inputs[2:]]
    assert seeds == [name + "_bar" for name in program.output_names[:2]] and not program.defaults
    assert f"{seeds[0]}, {seeds[1]}, *, K=()" in cf.source          # inputs of the program, with no default
    for _ in range(2):
        x, y = _draw(rng, 4, dtype), _draw(rng, 4, dtype)
        ct = (_draw(rng, 4, dtype), dtype(rng.uniform(-1, 1)))
        (values, grads), (values0, fn) = cf(x, y, ct), ad.vjp(two_outputs, x, y)
        for g, g0 in _pairs(values, values0) + _pairs(grads, fn(ct)):
            _close(g, g0, dtype)
    # a zero cotangent on one output: the vjp is the other output's alone
    _, (gx, gy) = cf(x, y, (np.zeros(4, dtype), ct[1]))
    _, fn = ad.vjp(lambda x, y: two_outputs(x, y)[1], x, y)
    for g, g0 in zip((gx, gy), fn(ct[1])):
        _close(g, g0, dtype)


def test_vjp_of_an_output_returned_twice_and_of_an_argument_returned(cache):
    """The adjoint of a node that is several outputs (or an input as well) sums every cotangent it gets."""
    rng = np.random.default_rng(3)
    fs = [lambda x: (ad.sin(x), ad.sin(x) * 1.0, x), lambda x: (x, ad.exp(x))]
    for f in fs:
        cf = ad.compile(f, rng.normal(size=3), mode="vjp", cache=cache)
        x = rng.normal(size=3)
        ct = tuple(rng.normal(size=(len(f(x)), 3)))
        (values, g), (values0, fn) = cf(x, ct), ad.vjp(f, x)
        np.testing.assert_allclose(g, fn(ct)[0], rtol=1e-13, atol=1e-14)
        for v, v0 in zip(values, values0):
            np.testing.assert_allclose(v, v0, rtol=1e-14)
    twice = lambda x: (ad.sin(x) * 2.0,) * 2                                                    # noqa: E731
    cf = ad.compile(twice, rng.normal(size=3), mode="vjp", cache=cache)
    x, ct = rng.normal(size=3), tuple(rng.normal(size=(2, 3)))
    np.testing.assert_allclose(cf(x, ct)[1], 2.0 * np.cos(x) * (ct[0] + ct[1]), rtol=1e-13)


def test_vjp_at_scalars_and_of_lists(cache):
    """Python floats give Python floats (the element function itself); lists and ints are taken as arrays."""
    f = lambda x, y: ad.sin(x) * ad.exp(y)                                                    # noqa: E731
    cf = ad.compile(f, 0.3, 0.2, mode="vjp", argnums=(0, 1), cache=cache)
    y, (gx, gy) = cf(0.7, -0.4, 2.0)
    y0, fn = ad.vjp(f, 0.7, -0.4)
    assert type(y) is float and y == pytest.approx(y0, rel=1e-15)
    assert (gx, gy) == pytest.approx(fn(2.0), rel=1e-14)
    cv = ad.compile(elementwise, [0.1, 0.2], mode="vjp", cache=cache)
    _, g = cv([0.5, -1.0], [1, 2])
    np.testing.assert_allclose(g, ad.vjp(elementwise, np.array([0.5, -1.0]))[1](np.array([1.0, 2.0]))[0], rtol=1e-13)


def test_vjp_of_pytrees_takes_the_cotangent_in_the_results_structure(cache):
    rng = np.random.default_rng(4)
    params, x = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}, rng.normal(size=(5, 3))
    f = lambda p, x: {"y": ad.tanh(x @ p["w"] + p["b"]), "norm": ad.sum(p["w"] ** 2)}          # noqa: E731
    cf = ad.compile(f, params, x, mode="vjp", argnums=(0, 1), cache=cache)
    params = {k: v + 0.1 for k, v in params.items()}
    ct = {"y": rng.normal(size=(5, 2)), "norm": 0.3}
    (value, (gp, gx)), (value0, fn) = cf(params, x, ct), ad.vjp(f, params, x)
    gp0, gx0 = fn(ct)
    assert set(value) == {"y", "norm"} and set(gp) == {"w", "b"}
    for g, g0 in [(value["y"], value0["y"]), (value["norm"], value0["norm"]), (gp["w"], gp0["w"]),
                  (gp["b"], gp0["b"]), (gx, gx0)]:
        np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-14)
    with pytest.raises(CompileError, match=r"the cotangent has the structure PyTreeDef\(\{'y': \*\}\), but f's"):
        cf(params, x, {"y": ct["y"]})
    with pytest.raises(ValueError, match=r"the cotangent of output \['y'\] has shape \(5, 3\), expected \(5, 2\)"):
        cf(params, x, {**ct, "y": np.ones((5, 3))})
    one = ad.compile(lambda p: {"s": ad.sin(p["w"])}, params, mode="value", cache=cache)    # one leaf in a dict
    np.testing.assert_allclose(one(params)["s"], np.sin(params["w"]), rtol=1e-15)


# --- forward mode, tangents=k ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=str)
def test_batched_tangents_are_k_separate_jvps(shape, dtype, cache):
    rng = np.random.default_rng(5)
    k = 3
    cf = ad.compile(elementwise, _draw(rng, shape, dtype), mode="forward", tangents=k, cache=cache)
    x, ts = _draw(rng, shape, dtype), _draw(rng, (k,) + shape, dtype)
    y, dys = cf(x, ts)
    assert np.shape(dys) == (k,) + shape
    _close(y, elementwise(x), dtype)
    for t, dy in zip(ts, dys):
        _close(dy, ad.jvp(elementwise, (x,), (t,))[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_batched_tangents_of_two_arguments_and_two_outputs(dtype, cache):
    rng = np.random.default_rng(6)
    k = 4
    cf = ad.compile(two_outputs, _draw(rng, 5, dtype), _draw(rng, 5, dtype), mode="forward", argnums=(0, 1),
                    tangents=k, cache=cache)
    x, y, tx, ty = _draw(rng, 5, dtype), _draw(rng, 5, dtype), _draw(rng, (k, 5), dtype), _draw(rng, (k, 5), dtype)
    values, (d0, d1) = cf(x, y, tx, ty)
    assert np.shape(d0) == (k, 5) and np.shape(d1) == (k,)
    for i in range(k):
        values0, (e0, e1) = ad.jvp(two_outputs, (x, y), (tx[i], ty[i]))
        for v, v0 in zip(values, values0):
            _close(v, v0, dtype)
        _close(d0[i], e0, dtype)
        _close(d1[i], e1, dtype)
    assert cf.source.count("def two_outputs_jvp_batched(") == 1        # one program for all k


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_batched_unit_tangents_give_the_forward_jacobian(dtype, cache):
    rng = np.random.default_rng(8)
    x0, w = _draw(rng, (2, 3), dtype), _draw(rng, (3, 2), dtype)
    n = x0.size
    cf = ad.compile(mixed, x0, w, mode="forward", tangents=n, cache=cache)
    x = _draw(rng, (2, 3), dtype)
    _, cols = cf(x, w, np.eye(n, dtype=dtype).reshape((n,) + x.shape))
    jac = ad.jacobian(mixed, mode="forward")(x, w)                      # out.shape + in.shape
    _close(np.moveaxis(cols, 0, -1).reshape(jac.shape), jac, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_every_compilable_primitive_pushes_a_batch_of_tangents(dtype, cache):
    """Each primitive's jvp rule, batched by its vmap rule into the program: one program of them all (each
    contributing its own outputs), held to two eager jvp calls per primitive."""
    rng = np.random.default_rng(11)
    cases, spans = [], []
    for name, prim in sorted(ad.REGISTRY.items()):
        if prim.code is not None and prim.impl.__module__.startswith("autodiff.") and prim.samples is not None:
            for args, params in prim.samples(rng)[:1]:
                params = {**params, "dtype": dtype} if "dtype" in params else params
                start = spans[-1][1] if spans else 0
                cases.append((name, prim, [np.asarray(a, dtype) for a in args], params))
                spans.append((start, start + len(args)))
    inputs = [a for case in cases for a in case[2]]

    def each(*xs):
        return tuple(apply(prim, xs[a:b], params) for (_, prim, _, params), (a, b) in zip(cases, spans))

    cf = ad.compile(each, *inputs, mode="forward", argnums=tuple(range(len(inputs))), tangents=2, cache=cache)
    ts = [_draw(rng, (2,) + np.shape(x), dtype) for x in inputs]
    _, got = cf(*inputs, *ts)
    for (name, prim, _, params), (a, b), dys in zip(cases, spans, got):
        for i in range(2):
            _, want = ad.jvp(lambda *xs, p=prim, q=params: apply(p, xs, q), inputs[a:b], [t[i] for t in ts[a:b]])
            scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
            np.testing.assert_allclose(dys[i], want, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * scale,
                                       err_msg=name)


def test_batched_tangents_and_vjp_run_the_users_custom_rules(cache):
    """custom_jvp's rule (the stable one: 1 at x = 100, where the naive derivative is nan) and custom_vjp's
    (a clipped cotangent) are what the batched and vjp programs run."""
    @ad.custom_jvp
    def log1pexp(x):
        return ad.log(1.0 + ad.exp(x))

    log1pexp.defjvp(lambda p, t: (log1pexp(p[0]), (1.0 - 1.0 / (1.0 + ad.exp(p[0]))) * t[0]))
    f = lambda x: log1pexp(x) * 2.0                                                          # noqa: E731
    at, ts = np.array([100.0, 1.0, -2.0]), np.random.default_rng(12).normal(size=(4, 3))
    _, dys = ad.compile(f, np.zeros(3), mode="forward", tangents=4, cache=cache)(at, ts)
    np.testing.assert_allclose(dys, [ad.jvp(f, (at,), (t,))[1] for t in ts], rtol=1e-14)
    assert np.all(np.isfinite(dys))
    clip = ad.custom_vjp(lambda lo, hi, x: x, nondiff_argnums=(0, 1))
    clip.defvjp(lambda lo, hi, x: (x, None), lambda lo, hi, res, g: (ad.clip(g, lo, hi),))
    g = lambda x: clip(-0.5, 0.5, ad.sin(x)) * 4.0                                           # noqa: E731
    ct = np.array([1.0, -0.05, 0.3])
    _, vjp = ad.compile(g, np.zeros(3), mode="vjp", cache=cache)(at, ct)
    np.testing.assert_allclose(vjp, ad.vjp(g, at)[1](ct)[0], rtol=1e-14)
    np.testing.assert_allclose(vjp, np.clip(4.0 * ct, -0.5, 0.5) * np.cos(at), rtol=1e-14)


def test_another_number_of_tangents_compiles_again(cache):
    rng = np.random.default_rng(9)
    x = rng.normal(size=4)
    cf = ad.compile(elementwise, x, mode="forward", tangents=2, cache=cache)
    for k in (2, 5, 1):
        ts = rng.normal(size=(k, 4))
        _, dys = cf(x, ts)
        np.testing.assert_allclose(dys, [ad.jvp(elementwise, (x,), (t,))[1] for t in ts], rtol=1e-13, atol=1e-14)
    assert len(cf.signatures) == 3 and "tangents:5" in repr(cf)


def test_batched_tangents_of_pytrees(cache):
    rng = np.random.default_rng(10)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    f = lambda p: ad.sin(p["w"]) * p["b"]                                                    # noqa: E731
    cf = ad.compile(f, params, mode="forward", tangents=3, cache=cache)
    ts = {"w": rng.normal(size=(3, 3, 2)), "b": rng.normal(size=(3, 2))}
    _, dys = cf(params, ts)
    for i in range(3):
        want = ad.jvp(f, (params,), ({"w": ts["w"][i], "b": ts["b"][i]},))[1]
        np.testing.assert_allclose(dys[i], want, rtol=1e-13, atol=1e-14)
    with pytest.raises(ValueError, match=r"the tangent of argument 0\['b'\] has shape \(3, 3\), expected \(3, 2\)"):
        cf(params, {**ts, "b": np.ones((3, 3))})


# --- errors: one line, naming the argument --------------------------------------------------------------

def _one_line(excinfo):
    assert "\n" not in str(excinfo.value)


def test_a_call_with_the_wrong_number_of_arguments_is_refused(cache):
    cf = ad.compile(two_outputs, np.ones(3), np.ones(3), mode="vjp", cache=cache)
    with pytest.raises(TypeError, match=r"takes 3 argument\(s\) \(f's 2 and the cotangent\), got 2") as e:
        cf(np.ones(3), np.ones(3))
    _one_line(e)
    cb = ad.compile(elementwise, np.ones(3), mode="forward", tangents=2, cache=cache)
    with pytest.raises(TypeError, match=r"takes 2 argument\(s\) \(f's 1 and one tangent per differentiated"):
        cb(np.ones(3))


def test_a_cotangent_of_the_wrong_shape_dtype_or_count_is_refused_by_name(cache):
    cf = ad.compile(two_outputs, np.ones(3), np.ones(3), mode="vjp", cache=cache)
    x = np.ones(3)
    cases = [((np.ones(3), np.ones(2)), ValueError, r"the cotangent of output 1 has shape \(2,\), expected \(\)"),
             ((np.ones(4), 1.0), ValueError, r"the cotangent of output 0 has shape \(4,\), expected \(3,\)"),
             ((np.ones(3, complex), 1.0), TypeError, r"the cotangent of output 0 has dtype complex128"),
             ((np.ones(3), "a"), TypeError, r"the cotangent of output 1 has dtype <U1"),
             (np.ones(3), TypeError, r"the cotangent is a tuple of 2 arrays, one per output of f, got ndarray"),
             ((np.ones(3),), TypeError, r"the cotangent is a tuple of 2 arrays, one per output of f, got 1 of them"),
             (([1.0, [2.0, 3.0]], 1.0), ValueError, r"the cotangent of output 0 is a ragged nested list")]
    for ct, kind, message in cases:
        with pytest.raises(kind, match=message) as e:
            cf(x, x, ct)
        _one_line(e)
    single = ad.compile(elementwise, np.ones(3), mode="vjp", cache=cache)
    with pytest.raises(ValueError, match=r"the cotangent has shape \(3, 1\), expected \(3,\) \(a cotangent has its"):
        single(x, np.ones((3, 1)))


def test_batched_tangents_of_the_wrong_shape_are_refused_by_name(cache):
    cf = ad.compile(two_outputs, np.ones(3), np.ones(3), mode="forward", argnums=(0, 1), tangents=2, cache=cache)
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"the tangent of argument 1 has shape \(3, 3\), expected \(2, 3\) \(k "
                                         r"tangents stacked along a new leading axis") as e:
        cf(x, x, np.ones((2, 3)), np.ones((3, 3)))
    _one_line(e)
    with pytest.raises(ValueError, match=r"the tangent of argument 0 has shape \(3,\), expected \(3, 3\)"):
        cf(x, x, np.ones(3), np.ones(3))          # one tangent (no leading axis): k would be 3, its shape wrong
    with pytest.raises(ValueError, match=r"the tangent of argument 0 is a scalar; compiled with tangents="):
        cf(x, x, 1.0, np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"the tangent of argument 1 has dtype complex128"):
        cf(x, x, np.ones((2, 3)), np.ones((2, 3), complex))


def test_bad_compile_options_are_refused_in_one_line():
    cases = [(dict(mode="vjp", tangents=2), r"tangents= batches forward mode's tangents; mode is 'vjp'"),
             (dict(mode="forward", tangents=0), r"tangents must be a positive int .* got 0"),
             (dict(mode="forward", tangents=True), r"tangents must be a positive int .* got True"),
             (dict(mode="forward", tangents=2.0), r"tangents must be a positive int .* got 2.0")]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            ad.compile(elementwise, np.ones(3), **options)
    with pytest.raises(CompileError, match=r"f must return one scalar.*use mode='vjp' or mode='forward'"):
        ad.compile(elementwise, np.ones(3))
