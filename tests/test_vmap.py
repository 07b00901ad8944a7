"""vmap: a function of one example mapped over a batch; with grad, per-example gradients (issue 18)."""
import collections
import contextlib

import numpy as np
import pytest

import autodiff as ad
import nn
from nn import functional as F


def test_vmap_is_the_loop_over_slices_for_every_in_axes_and_out_axes():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(4, 3)), rng.normal(size=(3, 4)), rng.normal(size=3)

    def f(u, v, w):
        return ad.stack([ad.sum(u * v * w), ad.sin(u[0]) * v[1]])

    got = ad.vmap(f, in_axes=(0, 1, None))(a, b, c)
    expected = np.stack([np.asarray(f(a[i], b[:, i], c)) for i in range(4)])
    np.testing.assert_array_equal(got, expected)
    assert isinstance(got, np.ndarray) and got.shape == (4, 2)
    np.testing.assert_array_equal(ad.vmap(f, in_axes=(0, 1, None), out_axes=1)(a, b, c), expected.T)
    np.testing.assert_array_equal(ad.vmap(ad.vmap(lambda x: x * 2.0))(a), a * 2)           # nested
    two = ad.vmap(lambda x: (ad.sum(x), x * 3.0), out_axes=(0, 1))(a)                       # a tuple out
    np.testing.assert_array_equal(two[0], a.sum(axis=1))
    np.testing.assert_array_equal(two[1], 3 * a.T)
    np.testing.assert_array_equal(ad.vmap(lambda x, k: x * k)(a, k=2.0), 2 * a)             # kwargs whole


def test_grad_of_a_vmap_and_vmap_of_jacobian_match_finite_differences():
    xs = np.array([[0.3, -1.0], [1.2, 0.5], [-0.4, 2.0]])
    w0 = np.array([0.7, -0.2])

    def total(w):
        return ad.sum(ad.vmap(lambda w, x: ad.tanh(ad.sum(w * x)), in_axes=(None, 0))(w, xs))

    h = 1e-6
    central = [(total(w0 + h * e) - total(w0 - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(ad.grad(total)(w0), central, rtol=1e-7)
    per_example = ad.vmap(ad.jacobian(lambda x: ad.sin(x) * x[0]))(xs)                   # (3, 2, 2)
    by_hand = np.stack([np.diag(np.cos(x) * x[0]) + np.outer(np.sin(x), [1.0, 0.0]) for x in xs])
    np.testing.assert_allclose(per_example, by_hand, rtol=1e-14)


def test_vmap_names_what_is_wrong():
    x, y = np.ones((3, 2)), np.ones((4, 2))
    with pytest.raises(ValueError, match=r"different sizes along their in_axes: argument 0: 3, argument 1: 4"):
        ad.vmap(lambda a, b: a + b)(x, y)
    with pytest.raises(ValueError, match=r"in_axes has 1 entries but f was called with 2 positional"):
        ad.vmap(lambda a, b: a + b, in_axes=(0,))(x, x)
    with pytest.raises(ValueError, match=r"in_axes\[0\]=2 but argument 0 has 2 dimension\(s\)"):
        ad.vmap(lambda a: a, in_axes=2)(x)
    with pytest.raises(ValueError, match=r"in_axes maps no argument"):
        ad.vmap(lambda a: a, in_axes=None)(x)
    with pytest.raises(ValueError, match=r"the mapped axis is empty"):
        ad.vmap(lambda a: a)(np.ones((0, 2)))
    with pytest.raises(TypeError, match=r"in_axes must be an int, None, or a tuple"):
        ad.vmap(lambda a: a, in_axes="0")(x)


# --- per-example gradients of a small CNN ---------------------------------------------------------------

def _cnn():
    nn.set_seed(0)
    return nn.Sequential(nn.Conv2D(3, 3, activation="relu", input_shape=(1, 6, 6)), nn.MaxPool2D(2),
                         nn.Flatten(), nn.Dense(4))


@contextlib.contextmanager
def _parameters_as(model, tensors):
    """The model computes with ``tensors`` in place of its parameters (torch.func.functional_call)."""
    owners = [(module, name) for module_name, module in model.named_modules() for name in list(module._parameters)]
    saved = [getattr(module, name) for module, name in owners]
    try:
        for (module, name), t in zip(owners, tensors):
            object.__setattr__(module, name, t)
        yield
    finally:
        for (module, name), p in zip(owners, saved):
            object.__setattr__(module, name, p)


def _data(n=5):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 1, 6, 6)).astype(np.float32), rng.integers(0, 4, size=n)


def _loop_of_single_example_gradients(model, xs, ys):
    grads = []
    for x, y in zip(xs, ys):
        model.zero_grad()
        F.softmax_cross_entropy(model(x[None]), y[None]).backward()
        grads.append([p.grad.copy() for p in model.parameters()])
    model.zero_grad()
    return [np.stack(g) for g in zip(*grads)]


def test_per_example_gradients_of_a_cnn_by_vmap_of_grad_equal_a_loop_of_backward():
    model = _cnn()
    xs, ys = _data()
    params = model.parameters()
    k = len(params)

    def loss(*args):                   # the parameters, then one example and its label
        *weights, x, y = args
        with _parameters_as(model, weights):
            return F.softmax_cross_entropy(model(x[None]), y[None])

    per_example = ad.vmap(ad.grad(loss, argnums=tuple(range(k))), in_axes=(None,) * k + (0, 0))(
        *[p.value for p in params], xs, ys)
    expected = _loop_of_single_example_gradients(model, xs, ys)
    assert len(per_example) == k
    for got, want, p in zip(per_example, expected, params):
        assert got.shape == (len(xs),) + p.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # the mean of the per-example gradients is the batch gradient (the batched kernels, one sweep)
    model.zero_grad()
    F.softmax_cross_entropy(model(xs), ys).backward()
    for got, p in zip(per_example, params):
        np.testing.assert_allclose(got.mean(axis=0), p.grad, rtol=1e-4, atol=1e-6)
    assert not np.allclose(per_example[0][0], per_example[0][1])        # the examples do differ


def test_per_example_gradients_of_the_layers_own_parameters_by_vmap_of_gradients():
    model = _cnn()
    xs, ys = _data()
    params = model.parameters()
    per_example = ad.vmap(lambda x, y: ad.gradients(F.softmax_cross_entropy(model(x[None]), y[None]), params))(xs, ys)
    for got, want in zip(per_example, _loop_of_single_example_gradients(model, xs, ys)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    norms = np.sqrt(sum((g.reshape(len(xs), -1) ** 2).sum(axis=1) for g in per_example))
    assert norms.shape == (5,) and np.all(norms > 0)                    # DP-SGD clips each of these


def test_vmap_of_hessian_equals_the_loop_of_hessian():
    xs = np.linspace(-1.0, 1.0, 6).reshape(3, 2)
    f = lambda x: ad.sum(x ** 3) * x[0]                                                     # noqa: E731
    np.testing.assert_allclose(ad.vmap(ad.hessian(f))(xs), np.stack([ad.hessian(f)(x) for x in xs]), rtol=1e-14)


# --- pytrees, as jax.vmap takes them ----------------------------------------------------------------------

def test_per_example_gradients_of_a_dict_of_parameters_come_back_as_a_dict_of_stacked_arrays():
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    xs, ys = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))

    def loss(p, x, y):
        return ad.sum((x @ p["w"] + p["b"] - y) ** 2)

    batched = ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))(params, xs, ys)
    loop = [ad.grad(loss)(params, x, y) for x, y in zip(xs, ys)]
    assert set(batched) == {"w", "b"}
    for key in batched:
        np.testing.assert_allclose(batched[key], np.stack([g[key] for g in loop]), rtol=1e-13)


def test_in_axes_and_out_axes_may_be_pytree_prefixes():
    Pair = collections.namedtuple("Pair", "w b")
    rng = np.random.default_rng(1)
    w, bs, xs = rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), rng.normal(size=(4, 3))
    out = ad.vmap(lambda p, x: Pair(w=p["w"] * x[0], b=p["b"] + x[1]), in_axes=({"w": None, "b": 0}, 0),
                  out_axes=Pair(w=0, b=1))({"w": w, "b": bs}, xs)
    assert isinstance(out, Pair)
    np.testing.assert_allclose(out.w, np.stack([w * x[0] for x in xs]))
    np.testing.assert_allclose(out.b, np.stack([b + x[1] for b, x in zip(bs, xs)], axis=1))
    with pytest.raises(ValueError, match=r"in_axes\[0\] does not fit its value: the structures differ"):
        ad.vmap(lambda p: p["w"], in_axes=({"w": 0},))({"w": np.ones((2, 2)), "b": np.ones(2)})
    with pytest.raises(ValueError, match=r"in_axes\[0\]\['w'\]=5 but argument 0\['w'\] has 2 dimension"):
        ad.vmap(lambda p: p["w"], in_axes=({"w": 5, "b": 0},))({"w": np.ones((2, 2)), "b": np.ones(2)})


# --- autodiff.compile of a map: the batch's operations recorded into one program -------------------------

def _mlp_problem(seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, 0.3, (4, 6)), rng.normal(0, 0.1, 6), rng.normal(0, 0.3, (6, 3)), rng.normal(0, 0.1, 3)]
    return params, rng.normal(size=(5, 4)), np.eye(3)[rng.integers(0, 3, 5)]


def _example_loss(w1, b1, w2, b2, x, t):
    z = ad.tanh(x @ w1 + b1) @ w2 + b2
    return ad.logsumexp(z) - ad.sum(z * t)


def test_compile_of_vmap_of_grad_is_the_loop_of_grad_at_every_input():
    params, xs, ts = _mlp_problem(0)
    per_example = ad.vmap(ad.grad(_example_loss, argnums=(0, 1, 2, 3)), in_axes=(None,) * 4 + (0, 0))
    compiled = ad.compile(per_example, *params, xs, ts, mode="value")
    code = "\n".join(line.split("#")[0] for line in compiled.source.splitlines())   # the source map's comments aside
    assert "vmap" not in code.replace("vmap_grad", "")                 # no map left: one batched program
    assert "prange" in compiled.source                                 # elementwise chains fused into loops
    for seed in (0, 1):                                                # recorded at seed 0, run at others too
        params, xs, ts = _mlp_problem(seed)
        loop = [ad.grad(_example_loss, argnums=(0, 1, 2, 3))(*params, x, t) for x, t in zip(xs, ts)]
        for got, expected in zip(compiled(*params, xs, ts), zip(*loop)):
            np.testing.assert_allclose(got, np.stack(expected), rtol=1e-12, atol=1e-15)


def test_compile_differentiates_through_a_map_in_f():
    params, xs, _ = _mlp_problem(2)
    w = params[0]

    def total(w, xs):
        return ad.sum(ad.vmap(lambda w, x: ad.tanh(x @ w) ** 2, in_axes=(None, 0))(w, xs))

    value, gradient = ad.compile(total, w, xs)(w, xs)
    assert np.isclose(value, total(w, xs), rtol=1e-13)
    np.testing.assert_allclose(gradient, ad.grad(total)(w, xs), rtol=1e-12)


def test_an_index_per_example_gathers_and_its_gradient_scatters_per_example():
    rng = np.random.default_rng(5)
    w, xs, labels = rng.normal(size=(4, 3)), rng.normal(size=(6, 4)), rng.integers(0, 3, 6)

    def loss(w, x, y):                         # cross-entropy with the label as an index: z[y]
        z = x @ w
        return ad.logsumexp(z) - z[y]

    per_example = ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))(w, xs, labels)
    np.testing.assert_allclose(per_example, np.stack([ad.grad(loss)(w, x, y) for x, y in zip(xs, labels)]),
                               rtol=1e-13)
    table = rng.normal(size=(5, 2))            # a shared array, one row per example (an embedding lookup)
    rows = ad.vmap(lambda i: ad.Tensor(table)[i] * 2.0)(np.array([4, 0, 4]))
    np.testing.assert_array_equal(rows, table[[4, 0, 4]] * 2.0)


# --- found by review: maps of plain arrays inside a differentiation, custom rules outside a map ------------

def test_grad_through_a_map_of_plain_arrays_reaches_the_tensor_it_closes_over():
    rng = np.random.default_rng(6)
    xs, w, table, idx = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(5, 2)), np.array([0, 3, 3])
    np.testing.assert_allclose(ad.grad(lambda w: ad.sum(ad.vmap(lambda x: ad.sum(w * x))(xs)))(w), xs.sum(0))
    expected = np.zeros_like(table)
    np.add.at(expected, idx, 2 * table[idx])
    np.testing.assert_allclose(ad.grad(lambda t: ad.sum(ad.vmap(lambda i: t[i] ** 2)(idx)))(table), expected)
    ys = rng.normal(size=(2, 3))                       # an inner map of plain arrays using an outer mapped value
    np.testing.assert_allclose(ad.vmap(lambda x: ad.vmap(lambda y: ad.sum(y) * x)(ys))(xs[:, 0]),
                               xs[:, 0][:, None] * ys.sum(1)[None, :])


def test_custom_rules_differentiated_from_outside_a_map_keep_one_derivative_per_example():
    @ad.custom_jvp
    def lse(x):
        return ad.log(ad.sum(ad.exp(x)))

    lse.defjvp(lambda p, t: (lse(p[0]), ad.sum(ad.softmax(p[0], axis=-1) * t[0])))

    @ad.custom_vjp
    def square(x):
        return x ** 2

    square.defvjp(lambda x: (x ** 2, x), lambda x, g: (2.0 * x * g,))
    xs = np.array([[0.0, 1.0], [2.0, -1.0]])
    softmax = np.exp(xs) / np.exp(xs).sum(1, keepdims=True)
    np.testing.assert_allclose(ad.grad(lambda xs: ad.sum(ad.vmap(lse)(xs)))(xs), softmax, rtol=1e-14)
    np.testing.assert_allclose(ad.jvp(lambda xs: ad.vmap(square)(xs), (xs,), (np.ones((2, 2)),))[1], 2 * xs)


def test_compile_records_a_comparison_on_a_mapped_value_and_refuses_an_index_per_example():
    x0 = np.array([[1.0, -2.0], [-1.0, 2.0]])
    masked = lambda xs: ad.sum(ad.vmap(lambda r: ad.sum(ad.where(r > 0, r ** 2, 0.0 * r)))(xs))    # noqa: E731
    cf = ad.compile(masked, x0)
    other = np.array([[-1.0, 2.0], [3.0, -0.5]])           # every mask turned over: nothing frozen at x0
    value, grad = cf(other)
    want_value, want_grad = ad.value_and_grad(masked)(other)
    assert value == pytest.approx(want_value, rel=1e-15)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-15)
    with pytest.raises(TypeError, match=r"an index per example \(x\[labels\] under vmap\) cannot be compiled"):
        ad.compile(ad.vmap(lambda z, label: z[label]), x0, np.array([0, 1]), mode="value")
