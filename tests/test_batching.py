"""The independent oracle for vmap's batching rules: every primitive against the loop over examples.

For every primitive in the registry (nn's included, so a new primitive is covered by being declared)
and each of its sample cases, a batch of B examples (random perturbations of the sample that keep it
valid) is mapped on ``in_axes`` drawn at random per argument (None, or any axis of the stacked array),
and ``vmap`` of the primitive must equal its NumPy implementation called on each example and stacked
(and again with hypothesis drawing the primitive, the case, negative or positive in_axes and the batch size).
A primitive with a rule must not fall back to the per-example loop (BatchingWarning) unless its rule
itself asks for the loop on those arguments (returns None, checked by calling the rule directly).
Then derivatives under vmap (``vmap(grad)``, ``vmap(vmap)``, ``grad(vmap)``) against the loop of
``grad``, per-example gradients of an MLP (and PyTorch's torch.func where installed), and misuse.
"""
import warnings
import zlib

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
import pytest

import autodiff as ad
import nn  # noqa: F401  (declares nn's primitives and registers their batching rules)
from autodiff import REGISTRY
from autodiff import BatchingWarning       # public: users filter it
from autodiff.primitives import batch_rules
from autodiff.tensor import apply

B = 3                 # examples per batch
DRAWS = 6             # random in_axes per sample case
NAMES = sorted(REGISTRY)
NOISE = 0.05          # relative perturbation of each example: keeps signs, domains and conditioning


def _seed(*parts):
    return zlib.crc32("/".join(map(str, parts)).encode())


def _cases(name):
    prim = REGISTRY[name]
    return prim, prim.samples(np.random.default_rng(_seed(name)))   # the samples test_primitives checks


def _examples(x, rng, n=B):
    """``n`` valid examples like ``x``: x itself, then multiplicative noise (same shape and dtype; integer
    and bool arrays repeated, since noise would make them invalid)."""
    x = np.asarray(x)
    if x.dtype.kind not in "fc":
        return [x.copy() for _ in range(n)]
    return [x] + [(x * (1 + NOISE * rng.uniform(-1, 1, x.shape))).astype(x.dtype) for _ in range(n - 1)]


def _draw_axes(xs, rng):
    """One in_axes: per argument None or an axis of its stacked array (0..ndim), at least one mapped."""
    while True:
        axes = tuple(None if rng.random() < 0.3 else int(rng.integers(0, np.ndim(x) + 1)) for x in xs)
        if any(a is not None for a in axes):
            return axes


def _batch(xs, axes, rng, n=B):
    """Per argument its examples (a list, or None where unmapped) and the value handed to vmap."""
    examples, args = [], []
    for x, axis in zip(xs, axes):
        if axis is None:
            examples.append(None)
            args.append(np.asarray(x))
        else:
            ex = _examples(x, rng, n)
            examples.append(ex)
            args.append(np.moveaxis(np.stack(ex), 0, axis))
    return examples, args


def _example(xs, examples, i):
    return [x if ex is None else ex[i] for x, ex in zip(xs, examples)]


def _assert_same(got, expected, what):
    expected = np.asarray(expected)
    assert np.shape(got) == expected.shape, f"{what}: shape {np.shape(got)} != loop's {expected.shape}"
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300, err_msg=what)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=what)


def _rule_asks_for_loop(prim, args, axes, params):
    """Whether the primitive's rule itself returns None (asks for the loop) on these arguments."""
    rule = batch_rules.get(prim)
    return rule is None or rule(prim, list(args), list(axes), B, -1, **params) is None


def _run_mapped(prim, args, axes, params):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = ad.vmap(lambda *a: apply(prim, a, params), in_axes=axes)(*args)
    looped = [str(w.message) for w in caught if issubclass(w.category, BatchingWarning)]
    return got, looped


#: Primitives whose rule returns None (asks for the per-example loop) on some of their samples: solve with
#: stacked matrices, nn's layers folded into their batch axis when a weight is mapped (getitem with
#: non-adjacent advanced indices too, not among its samples: tested on its own below).
LOOP_BY_DESIGN = {"solve", "conv2d", "conv2d_relu", "conv2d_input_grad", "avg_pool2d_transpose", "dense"}


# --------------------------------------------------------------------------------------------
# 1. Values: every primitive, every sample case, random in_axes, against the loop of its NumPy impl

@pytest.mark.parametrize("name", NAMES)
def test_vmap_of_every_primitive_is_the_loop_over_examples(name):
    prim, cases = _cases(name)
    rng = np.random.default_rng(_seed("values", name))
    has_rule = batch_rules.get(prim) is not None
    for k, (xs, params) in enumerate(cases):
        for _ in range(DRAWS):
            axes = _draw_axes(xs, rng)
            examples, args = _batch(xs, axes, rng)
            what = f"{name} case {k} (shapes {[np.shape(x) for x in xs]}, params {params}), in_axes={axes}"
            expected = np.stack([np.asarray(prim.impl(*_example(xs, examples, i), **params)) for i in range(B)])
            got, looped = _run_mapped(prim, args, axes, params)
            _assert_same(got, expected, what)
            if has_rule and looped:
                assert _rule_asks_for_loop(prim, args, axes, params), \
                    f"{what}: ran once per example although its rule batches these arguments: {looped}"
                others = [m for m in looped if f"primitive {name!r}" not in m]
                assert not others, f"{what}: a primitive inside the rule fell back to the loop: {others}"


def test_the_rules_that_ask_for_the_loop_are_few_and_named():
    """The cases among the samples where a rule returns None (the loop, on purpose): solve with stacked
    matrices, and nn's folded layers when a weight is mapped. Any other rule batches every sample."""
    asks = set()
    for name in NAMES:
        prim, cases = _cases(name)
        if batch_rules.get(prim) is None:
            continue
        for xs, params in cases:
            for axes in [(0,) * len(xs)] + [tuple(0 if j == i else None for j in range(len(xs)))
                                             for i in range(len(xs))]:
                _, args = _batch(xs, axes, np.random.default_rng(0))
                if _rule_asks_for_loop(prim, args, axes, params):
                    asks.add(name)
    assert asks <= LOOP_BY_DESIGN, f"rules that return None (the loop) beyond the named ones: {asks - LOOP_BY_DESIGN}"
    assert "solve" in asks


def test_getitem_with_non_adjacent_advanced_indices_loops_and_is_right():
    """NumPy moves the axes of non-adjacent advanced indices to the front, so the batch axis would not stay
    first: the rule asks for the loop (a BatchingWarning), and the loop is right."""
    rng = np.random.default_rng(_seed("getitem"))
    xs = rng.normal(size=(3, 2, 3, 4))
    index = (np.array([0, 1, 1]), slice(None), np.array([3, 0, 2]))
    with pytest.warns(BatchingWarning, match="getitem"):
        got = ad.vmap(lambda x: x[index], in_axes=0)(xs)
    np.testing.assert_array_equal(got, np.stack([x[index] for x in xs]))


# --------------------------------------------------------------------------------------------
# 2. Derivatives under vmap: vmap(grad) per primitive, vmap(vmap), grad(vmap)

def _projected(prim, params, w):
    return lambda *a: ad.sum(apply(prim, a, params) * w)


def _loop_grads(f, argnums, xs, examples, n):
    per = [ad.grad(f, argnums=argnums)(*_example(xs, examples, i)) for i in range(n)]
    return [np.stack([np.asarray(p[j]) for p in per]) for j in range(len(argnums))]


@pytest.mark.parametrize("name", NAMES)
def test_vmap_of_grad_of_every_primitive_is_the_loop_of_grad(name):
    prim, cases = _cases(name)            # (every primitive has a reverse rule: @primitive requires one)
    rng = np.random.default_rng(_seed("grad", name))
    for k, (xs, params) in enumerate(cases):      # every case, two in_axes each
        w = rng.normal(size=np.shape(prim.impl(*xs, **params)))
        f = _projected(prim, params, w)
        argnums = tuple(range(len(xs)))
        for _ in range(2):
            axes = _draw_axes(xs, rng)
            examples, args = _batch(xs, axes, rng)
            what = f"grad {name} case {k} params {params}, in_axes={axes}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BatchingWarning)     # a loop inside the sweep is still correct
                got = ad.vmap(ad.grad(f, argnums=argnums), in_axes=axes)(*args)
            for j, expected in enumerate(_loop_grads(f, argnums, xs, examples, B)):
                np.testing.assert_allclose(got[j], expected, rtol=1e-10, atol=1e-13, err_msg=f"{what}, input {j}")


#: A handful of ops (elementwise, matmul, einsum, reductions) for nested maps and grad of a map.
HANDFUL = {
    "sin": (lambda x: ad.sin(x), [(2, 3)]),
    "mul": (lambda x, y: x * y, [(3,), (2, 3)]),
    "tanh_div": (lambda x, y: ad.tanh(x) / (2.0 + y * y), [(2, 3), (3,)]),
    "matmul": (lambda a, b: a @ b, [(2, 3), (3, 4)]),
    "matvec": (lambda a, b: a @ b, [(2, 3), (3,)]),
    "einsum": (lambda a, b: ad.einsum("ij,jk->ik", a, b), [(2, 3), (3, 2)]),
    "sum_axis": (lambda x: ad.sum(x, axis=1), [(2, 3)]),
    "logsumexp": (lambda x: ad.logsumexp(x, axis=0), [(4, 2)]),
    "softmax": (lambda x: ad.softmax(x, axis=-1), [(2, 3)]),
}


def _plain(f, *xs):
    return np.asarray(f(*xs))


@pytest.mark.parametrize("key", sorted(HANDFUL))
def test_vmap_of_vmap_is_the_double_loop(key):
    f, shapes = HANDFUL[key]
    rng = np.random.default_rng(_seed("nested", key))
    xs = [rng.uniform(-1.5, 1.5, (2, 3) + s) for s in shapes]        # outer 2 examples, inner 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchingWarning)
        got = ad.vmap(ad.vmap(f))(*xs)
        expected = np.stack([np.stack([_plain(f, *[x[i, j] for x in xs]) for j in range(3)]) for i in range(2)])
        np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=key)
        # other axes: the outer map along axis 1 of (3, 2, ...) arrays, the inner one along axis 0; with two
        # or more arguments the first is mapped by the outer map only (axis 0), whole in every inner call
        args = [np.moveaxis(x, 0, 1) for x in xs]
        if len(xs) > 1:
            args[0] = xs[0][:, 0]
            inner = ad.vmap(f, in_axes=(None,) + (0,) * (len(xs) - 1))
            got = ad.vmap(inner, in_axes=(0,) + (1,) * (len(xs) - 1))(*args)
            expected = np.stack([np.stack([_plain(f, args[0][i], *[a[j, i] for a in args[1:]]) for j in range(3)])
                                 for i in range(2)])
        else:
            got = ad.vmap(ad.vmap(f), in_axes=1)(*args)
            expected = np.stack([np.stack([_plain(f, args[0][j, i]) for j in range(3)]) for i in range(2)])
        np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=f"{key} (other axes)")


@pytest.mark.parametrize("key", sorted(HANDFUL))
def test_grad_of_vmap_sums_the_per_example_gradients(key):
    f, shapes = HANDFUL[key]
    rng = np.random.default_rng(_seed("grad-of-vmap", key))
    xs = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    axes = tuple(int(rng.integers(0, len(s) + 1)) for s in shapes)
    if len(xs) > 1:
        axes = (None,) + axes[1:]                 # a shared (unmapped) argument: its gradient sums over examples
    examples, args = _batch(xs, axes, rng, n=4)
    out = np.stack([_plain(f, *_example(xs, examples, i)) for i in range(4)])
    weights = rng.normal(size=out.shape)
    argnums = tuple(range(len(xs)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchingWarning)
        got = ad.grad(lambda *a: ad.sum(ad.vmap(f, in_axes=axes)(*a) * weights), argnums=argnums)(*args)
    per = [ad.grad(lambda *a, i=i: ad.sum(f(*a) * weights[i]), argnums=argnums)(*_example(xs, examples, i))
           for i in range(4)]
    for j, axis in enumerate(axes):
        stacked = np.stack([np.asarray(p[j]) for p in per])
        expected = stacked.sum(axis=0) if axis is None else np.moveaxis(stacked, 0, axis)
        np.testing.assert_allclose(got[j], expected, rtol=1e-10, atol=1e-13, err_msg=f"{key} input {j}")


# --------------------------------------------------------------------------------------------
# 3. Per-example gradients of an MLP (32-64-10, tanh, softmax cross-entropy by logsumexp)

def _mlp_problem(n=8):
    rng = np.random.default_rng(_seed("mlp"))
    w1, b1 = rng.normal(0, 32 ** -0.5, (32, 64)), rng.normal(0, 0.1, 64)
    w2, b2 = rng.normal(0, 64 ** -0.5, (64, 10)), rng.normal(0, 0.1, 10)
    x = rng.normal(size=(n, 32))
    y = np.eye(10)[rng.integers(0, 10, n)]          # one-hot targets
    return (w1, b1, w2, b2), x, y


def _mlp_loss(w1, b1, w2, b2, x, y):
    logits = ad.tanh(x @ w1 + b1) @ w2 + b2
    return ad.logsumexp(logits) - ad.sum(logits * y)


def _per_example_grads():
    params, x, y = _mlp_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchingWarning)
        got = ad.vmap(ad.grad(_mlp_loss, argnums=(0, 1, 2, 3)), in_axes=(None,) * 4 + (0, 0))(*params, x, y)
    return params, x, y, got


def test_per_example_gradients_of_an_mlp_are_the_loop_of_grad():
    params, x, y, got = _per_example_grads()
    per = [ad.grad(_mlp_loss, argnums=(0, 1, 2, 3))(*params, x[i], y[i]) for i in range(len(x))]
    for j, p in enumerate(params):
        expected = np.stack([g[j] for g in per])
        assert got[j].shape == (len(x),) + p.shape
        np.testing.assert_allclose(got[j], expected, rtol=1e-10, atol=1e-14, err_msg=f"parameter {j}")


def test_per_example_gradients_of_an_mlp_equal_torch_func():
    torch = pytest.importorskip("torch", reason="PyTorch is a test-only oracle, never a dependency")
    from torch.func import grad as tgrad, vmap as tvmap
    params, x, y, got = _per_example_grads()

    def loss(w1, b1, w2, b2, xi, yi):
        logits = torch.tanh(xi @ w1 + b1) @ w2 + b2
        return torch.logsumexp(logits, dim=0) - torch.sum(logits * yi)

    tparams = [torch.tensor(p, dtype=torch.float64) for p in params]
    expected = tvmap(tgrad(loss, argnums=(0, 1, 2, 3)), in_dims=(None,) * 4 + (0, 0))(
        *tparams, torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64))
    for j in range(4):
        np.testing.assert_allclose(got[j], expected[j].numpy(), rtol=1e-10, atol=1e-14, err_msg=f"parameter {j}")


# --------------------------------------------------------------------------------------------
# 4. Hostile use

def test_python_if_on_a_mapped_value_says_to_use_where():
    def f(x):
        return x if ad.sum(x) > 0 else -x

    with pytest.raises(TypeError, match=r"ad\.where"):
        ad.vmap(f)(np.array([[1.0, 2.0], [-3.0, 1.0]]))
    with pytest.raises(TypeError, match=r"ad\.where"):
        ad.vmap(lambda x: x * 2.0 if x > 0 else x)(np.array([1.0, -2.0]))


def test_numpy_array_of_a_mapped_value_is_refused_with_the_vmap_message():
    with pytest.raises(TypeError, match=r"vmap: a mapped value cannot become one NumPy array"):
        ad.vmap(lambda x: np.asarray(x) * 2.0)(np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"vmap: a mapped value"):
        ad.vmap(lambda x: float(x))(np.ones(3))


@pytest.mark.parametrize("out_axes", [3, -4, (0, 1)])
def test_wrong_out_axes_is_a_one_line_value_error_naming_out_axes(out_axes):
    with pytest.raises(ValueError) as info:
        ad.vmap(lambda x: x * 2.0, out_axes=out_axes)(np.ones((3, 2)))
    message = str(info.value)
    assert "out_axes" in message and "\n" not in message, message


# --------------------------------------------------------------------------------------------
# 1b. The same oracle with hypothesis choosing the primitive, the case, in_axes and the batch size

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_draws_primitive_case_in_axes_and_batch_size(data):
    name = data.draw(st.sampled_from(NAMES), label="primitive")
    prim, cases = _cases(name)
    xs, params = cases[data.draw(st.integers(0, len(cases) - 1), label="case")]
    axes = tuple(data.draw(st.one_of(st.none(), st.integers(-np.ndim(x) - 1, np.ndim(x))), label=f"in_axes[{k}]")
                 for k, x in enumerate(xs))
    assume(any(a is not None for a in axes))
    n = data.draw(st.integers(1, 4), label="batch size")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    examples, args = _batch(xs, [None if a is None else a % (np.ndim(x) + 1) for a, x in zip(axes, xs)], rng, n)
    expected = np.stack([np.asarray(prim.impl(*_example(xs, examples, i), **params)) for i in range(n)])
    got, _ = _run_mapped(prim, args, axes, params)      # negative in_axes as given: vmap normalises them
    _assert_same(got, expected, f"{name}, in_axes={axes}, batch {n}")


def test_a_column_times_a_row_per_example_is_bit_identical_to_the_broadcast_product():
    rng = np.random.default_rng(3)
    cols, rows = rng.normal(size=(6, 4, 1)), rng.normal(size=(6, 1, 5))
    got = ad.vmap(lambda c, r: c * r)(cols, rows)          # the einsum path of the mul rule
    assert got.shape == (6, 4, 5) and np.array_equal(got, cols * rows)
