"""autodiff.compile, held to the eager engine (the reference) and to the source material.

- table-driven over the registry: every primitive with code= gives the engine's value, gradient
  and tangent at its random samples (float64 to 1e-12 relative, float32 to round-off); every
  primitive without it is refused by name;
- eq. 5.36's generated source is the 9 statements of eq. 5.38 and the 9 adjoints of eq. 5.39, and
  its gradient is eq. 5.37, on a scalar and on an array (one fused parallel loop);
- tracing: control flow on a traced value is refused; masks (relu) are computed, not frozen;
  another shape compiles again; Numba's cache is found by a second process.

Numba compiles take about a second each here, so the registry is checked through a few large
programs (all primitives at once, each contributing its own terms) built once per module.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import autodiff as ad
from autodiff.compiler import PARALLEL_MIN, CompileError
from autodiff.examples import eq_5_36, eq_5_37
from autodiff.labels import graph_code
from autodiff.tensor import apply

ROOT = Path(__file__).resolve().parents[1]
# the engine's own primitives (nn's, registered when a test imports nn, have tests/nn/test_compile_nn.py)
COMPILABLE = sorted(n for n, p in ad.REGISTRY.items() if p.code is not None and p.impl.__module__.startswith("autodiff."))
TOL = {np.float64: 1e-12, np.float32: 2e-5}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compiled")


def _in(dtype, params):
    """astype's samples cast to the table's dtype (a float64 one would promote the whole table)."""
    return {**params, "dtype": dtype} if "dtype" in params else params


def registry_cases(dtype, per_template, per_call, seed=0):
    """(name, prim, args, params) for every compilable primitive: ``per_template`` samples of an
    elementwise one (its loop code is what differs by dtype), ``per_call`` of one run by NumPy."""
    rng = np.random.default_rng(seed)
    out = []
    for name in COMPILABLE:
        prim = ad.REGISTRY[name]
        for args, params in prim.samples(rng)[:per_call if prim.code == "impl" else per_template]:
            out.append((name, prim, tuple(np.asarray(a, dtype) for a in args), _in(dtype, params)))
    return out


class Table:
    """All the cases as one program: f(*every input) = sum_k <w_k, op_k(inputs_k)> (reverse mode),
    or the tuple of every op_k(inputs_k) (forward mode), compiled once."""

    def __init__(self, dtype, mode, cache, per_template, per_call):
        self.dtype, self.cases = dtype, registry_cases(dtype, per_template, per_call)
        rng = np.random.default_rng(1)
        self.spans, k = [], 0
        for _, _, args, _ in self.cases:
            self.spans.append((k, k + len(args)))
            k += len(args)
        self.inputs = [a for c in self.cases for a in c[2]]
        self.weights = [rng.uniform(-1, 1, np.shape(apply(p, a, q))).astype(dtype) for _, p, a, q in self.cases]
        self.tangents = [rng.uniform(-1, 1, x.shape).astype(dtype) for x in self.inputs]
        every = tuple(range(len(self.inputs)))
        if mode == "reverse":
            self.compiled = ad.compile(self.total, *self.inputs, argnums=every, cache=cache)
            self.got = self.compiled(*self.inputs)
            self.want = ad.value_and_grad(self.total, argnums=every)(*self.inputs)
        else:
            self.compiled = ad.compile(self.each, *self.inputs, mode="forward", argnums=every, cache=cache)
            self.got = self.compiled(*self.inputs, *self.tangents)
            pairs = [ad.jvp(lambda *xs, p=p, q=q: apply(p, xs, q), self.inputs[a:b], self.tangents[a:b])
                     for (_, p, _, q), (a, b) in zip(self.cases, self.spans)]
            self.want = (tuple(v for v, _ in pairs), tuple(t for _, t in pairs))

    def total(self, *xs):
        y = 0.0
        for (_, prim, _, params), (a, b), w in zip(self.cases, self.spans, self.weights):
            out = apply(prim, xs[a:b], params)
            axes = "abcdefgh"[:out.ndim]   # a contraction run by NumPy: the glue needs no loop
            y = y + (ad.einsum(f"{axes},{axes}->", w, out) if out.ndim else w * out)
        return y

    def each(self, *xs):
        return tuple(apply(prim, xs[a:b], params) for (_, prim, _, params), (a, b) in zip(self.cases, self.spans))

    def check(self, name, got, want, what):
        got, want = np.asarray(got), np.asarray(want)
        assert got.dtype == want.dtype == self.dtype, (name, what, got.dtype, want.dtype)
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        tol = TOL[self.dtype]
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=f"{name}: {what}")


TABLES = {}


@pytest.fixture(scope="module", params=[("reverse", np.float64), ("forward", np.float64), ("reverse", np.float32),
                                        ("forward", np.float32)], ids=lambda p: f"{p[0]}-{p[1].__name__}")
def table(request, cache):
    mode, dtype = request.param
    if request.param not in TABLES:
        per = (9, 1) if dtype == np.float64 and mode == "reverse" else (2, 1)
        TABLES[request.param] = (mode, Table(dtype, mode, cache, *per))
    return TABLES[request.param]


@pytest.mark.parametrize("name", COMPILABLE)
def test_every_compilable_primitive_matches_the_eager_engine(table, name):
    mode, t = table
    found = [k for k, c in enumerate(t.cases) if c[0] == name]
    assert found, f"{name}: no float sample"
    for k in found:
        a, b = t.spans[k]
        if mode == "reverse":
            (_, grads), (_, want) = t.got, t.want
            for i in range(a, b):
                t.check(name, grads[i], want[i], f"gradient of input {i - a}, sample {k}")
        else:
            (values, tangents), (want_v, want_t) = t.got, t.want
            t.check(name, values[k], want_v[k], f"value, sample {k}")
            t.check(name, tangents[k], want_t[k], f"tangent, sample {k}")
    if mode == "reverse":
        t.check("total", t.got[0], t.want[0], "value")


def test_no_engine_primitive_is_refused():
    """max, min and prod find their ties and zeros with engine ops, not by reading the values: all compile."""
    ours = {n for n, p in ad.REGISTRY.items() if p.impl.__module__.startswith("autodiff") and p.code is None}
    assert ours == set()


# --- eq. 5.36: the source material's worked example ------------------------------------------------

EQ_5_39 = """\
    h_bar = y_bar
    g_bar = h_bar * cos(g)
    f_bar = g_bar
    e_bar = g_bar + f_bar * (2.0 * e)
    d_bar = y_bar
    c_bar = d_bar * d
    b_bar = c_bar
    a_bar = c_bar + b_bar * (2.0 * a)
    x_bar = e_bar * e + a_bar * cos(x)"""


@pytest.fixture(scope="module")
def eq_5_36_scalar(cache):
    return ad.compile(eq_5_36, 0.5, cache=cache)


def test_eq_5_36_source_is_eq_5_38_then_the_adjoints_of_eq_5_39(eq_5_36_scalar):
    source = eq_5_36_scalar.source
    body = source.split("def eq_5_36_value_and_grad(x, y_bar=1.0):\n")[1].split("\n    return y, x_bar")[0]
    lines = body.splitlines()
    forward = "\n".join("    " + line for line in graph_code(eq_5_36(ad.Tensor(0.5, requires_grad=True, name="x")))
                        .splitlines())
    assert len(lines) == 18
    assert "\n".join(lines[:9]) == forward                   # a = sin(x) ... y = d + h: eq. 5.38
    assert "\n".join(lines[9:]) == EQ_5_39                   # Algorithm 2's order, fan-out sums explicit
    assert '@njit(cache=True, error_model="numpy")' in source and "prange" not in source.split("def ")[1]


def test_eq_5_36_gradient_is_eq_5_37_at_scalars(eq_5_36_scalar):
    for x in (0.5, -1.3, 2.0):
        y, dy = eq_5_36_scalar(x)
        assert isinstance(dy, float)
        assert y == pytest.approx(float(eq_5_36(ad.Tensor(x)).value), rel=1e-14)
        assert dy == pytest.approx(eq_5_37(x), rel=1e-13)
    y, dy = eq_5_36_scalar(np.float32(0.5))   # another dtype: compiled again, float32 out
    assert np.asarray(dy).dtype == np.float32 and dy == pytest.approx(eq_5_37(0.5), rel=1e-6)
    assert len(eq_5_36_scalar.signatures) == 2


def test_eq_5_36_on_an_array_is_one_fused_parallel_loop(cache):
    x = np.random.default_rng(0).uniform(-1, 1, PARALLEL_MIN + 5)
    cf = ad.compile(lambda x: ad.sum(eq_5_36(x)), x, cache=cache)
    y, dx = cf(x)
    a, e = np.sin(x), np.exp(x)
    assert y == pytest.approx(np.sum(np.exp(a + a ** 2) + np.sin(e + e ** 2)), rel=1e-12)
    np.testing.assert_allclose(dx, eq_5_37(x), rtol=1e-12, atol=1e-12)
    driver = cf.source.split("def f_value_and_grad(")[1]
    assert cf.source.count("for k in prange(n):") == 1 and "parallel=True" in cf.source
    assert driver.count("np.empty(") == 1                      # x_bar: no temporary array at all
    value = ad.compile(lambda x: ad.sum(eq_5_36(x)), x, mode="value", cache=cache)
    assert value(x) == pytest.approx(y, rel=1e-13)


# --- tracing -----------------------------------------------------------------------------------------

def test_masks_are_computed_not_frozen_at_the_example_point(cache):
    f = lambda x: ad.relu(x) * 3.0 + ad.abs(x)
    cf = ad.compile(f, 0.5, cache=cache)
    assert "(x > 0)" in cf.source and "sign(x)" in cf.source
    for x in (0.5, -0.5, 2.0, -3.0):
        assert cf(x) == ad.value_and_grad(f)(x)


def test_mixed_program_loops_and_numpy_calls_and_another_shape(cache):
    def loss(w, b, x):
        return ad.mean(ad.logsumexp(ad.tanh(x @ w + b), axis=1) ** 2)

    rng = np.random.default_rng(2)
    w, b, x = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(5, 4))
    cf = ad.compile(loss, w, b, x, argnums=(0, 1), cache=cache)
    assert "impl.matmul(" in cf.source and "impl.logsumexp(" in cf.source
    for xs in (x, rng.normal(size=(7, 4))):                  # (7, 4): recorded and compiled again
        (y, grads), (y0, grads0) = cf(w, b, xs), ad.value_and_grad(loss, argnums=(0, 1))(w, b, xs)
        assert y == pytest.approx(y0, rel=1e-12)
        for g, g0 in zip(grads, grads0):
            np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-14)
    assert len(cf.signatures) == 2
    with pytest.raises(TypeError, match="takes 3 argument"):
        cf(w, b)


def test_forward_mode_is_jvp(cache):
    f = lambda x, y: ad.sin(x) * ad.exp(y)
    cf = ad.compile(f, 0.3, 0.7, mode="forward", argnums=(0, 1), cache=cache)
    assert "x_dot" in cf.source and "y_dot" in cf.source
    got = cf(0.3, 0.7, 1.0, -2.0)
    want = ad.jvp(f, (0.3, 0.7), (1.0, -2.0))
    assert got[0] == pytest.approx(want[0], rel=1e-15) and got[1] == pytest.approx(want[1], rel=1e-14)


def test_repeated_loops_are_written_once(cache):
    """An unrolled recurrence: the steps' loops are the same but for their names."""
    def rnn(w, h):
        for _ in range(4):
            h = ad.tanh(ad.matmul(w, h)) * 0.5 + h
        return ad.sum(h * h)

    rng = np.random.default_rng(3)
    w, h = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=3)
    cf = ad.compile(rnn, w, h, argnums=(0, 1), cache=cache)
    calls = cf.source.split("def rnn_value_and_grad(")[1].count("_loop")
    assert calls == 12 and cf.source.count("@njit") == 7     # 12 loops run, 7 written
    (y, (gw, gh)), (y0, (gw0, gh0)) = cf(w, h), ad.value_and_grad(rnn, argnums=(0, 1))(w, h)
    assert y == pytest.approx(y0, rel=1e-12)
    np.testing.assert_allclose(gw, gw0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gh, gh0, rtol=1e-12, atol=1e-14)


def test_bad_input_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="mode must be one of"):
        ad.compile(eq_5_36, 0.5, mode="sideways")
    with pytest.raises(CompileError, match="argument 0 has dtype complex128"):
        ad.compile(eq_5_36, 0.5 + 1j)
    with pytest.raises(CompileError, match="one scalar"):
        ad.compile(ad.sin, np.ones(3))
    with pytest.raises(ValueError, match="argnums=3"):
        ad.compile(eq_5_36, 0.5, argnums=3)


@pytest.mark.parametrize("numba_cache_dir", [False, True], ids=["beside-the-source", "NUMBA_CACHE_DIR"])
def test_numba_cache_is_found_by_another_process(tmp_path, numba_cache_dir):
    """Numba keeps its cache in ``__pycache__`` beside the generated source, or under
    ``NUMBA_CACHE_DIR`` where that is set (clusters, read-only installs): found either way, whatever
    the environment the tests run in says."""
    source_dir, numba_dir = tmp_path / "source", tmp_path / "numba"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import autodiff as ad
        from autodiff.examples import eq_5_36
        cf = ad.compile(eq_5_36, 0.25, cache={str(source_dir)!r})
        y, dy = cf(0.25)
        print(cf.from_cache(), cf.path.name, round(dy, 12))
    """)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(NUMBA_DISABLE_JIT="0", **({"NUMBA_CACHE_DIR": str(numba_dir)} if numba_cache_dir else {}))
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    first, second = (r.stdout.split() for r in runs)
    assert first[0] == "False" and second[0] == "True"       # compiled, then loaded from the cache
    assert first[1:] == second[1:] and first[1].startswith("eq_5_36_value_and_grad_")
    beside = list(source_dir.glob("__pycache__/*.nbi"))       # Numba's index beside the source...
    under = list(numba_dir.rglob("*.nbi"))                    # ... or under NUMBA_CACHE_DIR
    assert [p.name.startswith(first[1].removesuffix(".py")) for p in beside + under] == [True]
    assert bool(under) == numba_cache_dir


def test_a_cached_module_with_other_contents_is_replaced_not_imported(tmp_path):
    """The cache folder may be shared: a file under a generated module's name but with other code in
    it (planted, edited, truncated) is rewritten with the generated source before it is imported."""
    from autodiff.compiler.build import load

    source = "VALUE = 1\n"
    module, path = load(source, "planted", tmp_path)
    assert module.VALUE == 1 and path.read_text() == source
    sys.modules.pop(module.__name__)
    path.write_text("raise RuntimeError('planted code ran')\n")
    again, same = load(source, "planted", tmp_path)
    assert same == path and again.VALUE == 1 and path.read_text() == source
