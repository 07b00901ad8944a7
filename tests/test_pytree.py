"""Pytrees (autodiff.pytree, as jax.tree_util) and pytrees through the functional API and nn.functional_call."""
from __future__ import annotations

import dataclasses
from collections import OrderedDict, namedtuple

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autodiff as ad
import nn
from autodiff.pytree import (PyTreeDef, keystr, register_dataclass, register_pytree_node, tree_flatten,
                             tree_flatten_with_path, tree_leaves, tree_map, tree_structure, tree_unflatten)

Point = namedtuple("Point", "x y")


@register_dataclass
@dataclasses.dataclass
class Linear:
    w: object
    b: object
    name: str = dataclasses.field(default="fc", metadata=dict(static=True))


class Box:
    """A registered class of our own: two children and a label kept as static data."""

    def __init__(self, label, a, b):
        self.label, self.a, self.b = label, a, b


register_pytree_node(Box, lambda box: ((box.a, box.b), box.label), lambda label, ch: Box(label, *ch))

# --- the tree functions ------------------------------------------------------------------------------------
leaf = st.one_of(st.integers(-5, 5), st.floats(-3, 3), st.text(max_size=2))
trees = st.recursive(
    st.one_of(leaf, st.none()),
    lambda c: st.one_of(st.lists(c, max_size=3), st.tuples(c, c), st.dictionaries(st.text(max_size=2), c, max_size=3),
                        st.builds(Point, c, c), st.builds(Linear, c, c)),
    max_leaves=12)


def _get(tree, path):
    for key in path:
        tree = (getattr(tree, key.name) if isinstance(key, ad.pytree.GetAttrKey)
                else tree[key.key if isinstance(key, ad.pytree.DictKey) else key.idx])
    return tree


@settings(max_examples=150, deadline=None)
@given(trees)
def test_flatten_unflatten_round_trip_and_paths_that_index_the_leaves(tree):
    leaves, treedef = tree_flatten(tree)
    assert tree_unflatten(treedef, leaves) == tree
    assert treedef.num_leaves == len(leaves) and tree_structure(tree) == treedef
    assert tree_structure(tree_unflatten(treedef, range(len(leaves)))) == treedef
    assert tree_map(lambda v: v, tree) == tree
    assert tree_leaves(tree_map(lambda v: [v], tree)) == leaves        # a list put at a leaf is a subtree
    pairs, same = tree_flatten_with_path(tree)
    assert same == treedef and [v for _, v in pairs] == leaves
    for path, v in pairs:
        assert _get(tree, path) == v or v != v


def test_containers_dict_sorted_ordereddict_kept_none_empty_and_the_printed_structure():
    leaves, treedef = tree_flatten({"b": 1, "a": [2, (3,)], "c": None, "d": Point(4, 5)})
    assert leaves == [2, 3, 1, 4, 5]
    assert repr(treedef) == "PyTreeDef({'a': [*, (*,)], 'b': *, 'c': None, 'd': Point(x=*, y=*)})"
    assert tree_leaves(OrderedDict([("z", 1), ("a", 2)])) == [1, 2]
    assert tree_flatten(None) == ([], tree_structure(None)) and tree_structure(None).num_leaves == 0
    box = tree_map(lambda v: v * 10, Box("hi", 1, [2]))
    assert (box.label, box.a, box.b) == ("hi", 10, [20])
    assert "CustomNode(Box['hi'], [*, [*]])" in repr(tree_structure(box))
    lin = tree_unflatten(tree_structure(Linear(1, 2, "x")), [3, 4])
    assert lin == Linear(3, 4, "x") and tree_structure(Linear(1, 2, "x")) != tree_structure(Linear(1, 2, "y"))
    assert tree_leaves(np.array([1.0, 2.0]))[0].shape == (2,) and tree_leaves(ad.Tensor(1.0))[0].shape == ()


def test_treedefs_compare_and_a_mismatch_says_where_in_one_line():
    a, b = tree_structure({"w": [1, 2], "b": 0}), tree_structure({"w": [1, 2, 3], "b": 0})
    assert a == tree_structure({"b": 9, "w": [7, 8]}) and a != b
    assert hash(a) == hash(tree_structure({"b": 1, "w": [1, 1]}))
    with pytest.raises(ValueError, match=r"^tree_map: tree 1 does not match the first: the structures differ at "
                                         r"\['w'\]: expected a list of 2, got a list of 3$"):
        tree_map(lambda x, y: x, {"w": [1, 2], "b": 0}, {"w": [1, 2, 3], "b": 0})
    with pytest.raises(ValueError, match=r"at \[0\]\.y: expected a dict with keys \['a'\], got a leaf \(int\)"):
        tree_structure([Point(1, {"a": 2})]).flatten_up_to([Point(1, 2)])
    assert tree_map(lambda x, y: (x, y), [1, 2], [[3, 4], {"k": 5}]) == [(1, [3, 4]), (2, {"k": 5})]   # a prefix
    with pytest.raises(ValueError, match="has 2 leaves, got 3"):
        tree_unflatten(tree_structure([1, 2]), [1, 2, 3])
    with pytest.raises(ValueError, match="already registered"):
        register_pytree_node(Box, lambda b: ((), None), lambda aux, ch: None)
    with pytest.raises(TypeError, match="not a dataclass"):
        register_dataclass(Box)
    assert isinstance(a, PyTreeDef) and keystr((ad.pytree.DictKey("w"), ad.pytree.SequenceKey(0))) == "['w'][0]"


def test_is_leaf_stops_the_descent_and_the_package_exports():
    assert tree_leaves([[1, 2], [3]], is_leaf=lambda x: x == [1, 2]) == [[1, 2], 3]
    assert ad.tree_util.tree_map is ad.tree_map is tree_map and "tree_map" in ad.__all__
    assert nn.functional_call is nn.func.functional_call


# --- pytrees through the functional API ---------------------------------------------------------------------
def _numeric_grads(f, tree):
    """The gradient of a scalar f at each leaf of tree, by central differences, in tree's structure."""
    leaves, treedef = tree_flatten(tree)
    out = []
    for k, leaf_k in enumerate(leaves):
        def at(x, k=k):
            return f(treedef.unflatten(leaves[:k] + [x] + leaves[k + 1:]))
        out.append(ad.numerical_gradient(at, np.asarray(leaf_k, dtype=float)))
    return treedef.unflatten(out)


def _close(a, b):
    la, ta = tree_flatten(a)
    lb, tb = tree_flatten(b)
    assert ta == tb, (ta, tb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), rtol=1e-6, atol=1e-8)


RNG = np.random.default_rng(0)
PARAMS = {"w": RNG.normal(size=(3, 2)), "b": RNG.normal(size=2), "scale": 0.7}
X = RNG.normal(size=(4, 3))


def _loss(p):
    h = ad.tanh(ad.matmul(X, p["w"]) + p["b"])
    return ad.sum(h ** 2) * p["scale"]


def _structured_loss(p):
    if isinstance(p, Point):
        return ad.sum(ad.sin(p.x) * p.y[0]) + ad.sum(p.y[1] ** 3)
    if isinstance(p, Linear):
        return ad.sum(ad.exp(p.w) * p.b)
    return ad.sum(ad.sin(p[0])) * p[1][0] + ad.sum(p[1][1] ** 2)


@pytest.mark.parametrize("params", [
    PARAMS,
    [np.array([0.3, -0.2]), (1.5, np.array([[0.1, 0.2]]))],
    Point(np.array([0.4, 1.1]), (np.array(2.0), np.array([0.5, -0.5]))),
    Linear(np.array([0.2, -0.3]), np.array([1.0, 2.0])),
], ids=["dict", "list-tuple", "namedtuple", "dataclass"])
def test_grad_of_a_pytree_is_a_pytree_equal_to_central_differences(params):
    f = _loss if isinstance(params, dict) else _structured_loss
    g = ad.grad(f)(params)
    _close(g, _numeric_grads(lambda p: float(ad.value_of(f(p))), params))
    if isinstance(params, dict):
        assert isinstance(g["scale"], float)          # a Python number in, a Python float out, as before
    value, g2 = ad.value_and_grad(f)(params)
    _close(g2, g)
    assert value == pytest.approx(float(ad.value_of(f(params))))


def test_argnums_selects_whole_arguments_and_has_aux():
    f = lambda p, x, k: ad.sum(ad.matmul(x, p["w"]) + p["b"]) * k          # noqa: E731
    gp, gx = ad.grad(f, argnums=(0, 1))(PARAMS, X, 2.0)
    assert set(gp) == {"w", "b", "scale"} and gx.shape == X.shape and gp["scale"] == 0.0
    np.testing.assert_allclose(gp["w"], 2 * np.tile(X.sum(0)[:, None], (1, 2)))
    np.testing.assert_allclose(gx, 2 * np.tile(PARAMS["w"].sum(1), (4, 1)))
    g, aux = ad.grad(lambda p: (_loss(p), {"h": p["b"] * 2, "tag": "x"}), has_aux=True)(PARAMS)
    _close(g, ad.grad(_loss)(PARAMS))
    np.testing.assert_allclose(aux["h"], PARAMS["b"] * 2)
    assert aux["tag"] == "x" and not isinstance(aux["h"], ad.Tensor)
    (value, aux), _ = ad.value_and_grad(lambda p: (_loss(p), 3), has_aux=True)(PARAMS)
    assert aux == 3 and value == pytest.approx(float(ad.value_of(_loss(PARAMS))))


def test_lists_of_numbers_stay_one_array_and_lists_of_arrays_are_pytrees():
    np.testing.assert_allclose(ad.grad(lambda x: x[0] ** 2 * x[1])([1.0, 2.0]), [4.0, 1.0])
    np.testing.assert_allclose(ad.hessian(lambda x: x[0] ** 2 * x[1])([1.0, 2.0]), [[4.0, 2.0], [2.0, 0.0]])
    g = ad.grad(lambda xs: ad.sum(xs[0] * xs[1]))([np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    assert isinstance(g, list) and len(g) == 2
    np.testing.assert_allclose(g[0], [3.0, 4.0])
    np.testing.assert_allclose(g[1], [1.0, 2.0])
    assert ad.grad(lambda xs: xs[0] * ad.sum(xs[1]))([2.0, np.array([1.0, 1.0])]) == [2.0, pytest.approx([2.0, 2.0])]


def _two_outputs(p):
    return {"s": ad.sum(p["w"] * p["b"]), "v": ad.sin(p["b"]) * p["scale"]}


def test_vjp_and_jvp_with_pytree_primals_and_outputs_agree_with_the_jacobian():
    out, vjp_fn = ad.vjp(_two_outputs, PARAMS)
    assert set(out) == {"s", "v"} and out["v"].shape == (2,)
    jac = ad.jacobian(_two_outputs)(PARAMS)
    assert jac["v"]["w"].shape == (2, 3, 2) and jac["s"]["b"].shape == (2,) and jac["v"]["scale"].shape == (2,)
    u = {"s": 1.5, "v": np.array([0.3, -2.0])}
    (cot,) = vjp_fn(u)
    for key in PARAMS:
        want = u["s"] * np.asarray(jac["s"][key]) + np.tensordot(u["v"], jac["v"][key], axes=1)
        np.testing.assert_allclose(cot[key], want, atol=1e-12)
    t = {"w": RNG.normal(size=(3, 2)), "b": RNG.normal(size=2), "scale": 0.25}
    primal_out, tangent_out = ad.jvp(_two_outputs, (PARAMS,), (t,))
    _close(primal_out, out)
    for key in ("s", "v"):
        lead = np.ndim(out[key])
        want = sum(np.tensordot(np.asarray(jac[key][k]), np.asarray(t[k]), axes=np.ndim(t[k])) for k in t)
        np.testing.assert_allclose(tangent_out[key], want, atol=1e-12)
        assert np.ndim(tangent_out[key]) == lead


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_jacobian_nests_outputs_outside_inputs_inside_and_matches_differences(mode):
    jac = ad.jacobian(_two_outputs, mode=mode)(PARAMS)
    for key in PARAMS:
        leaves = tree_leaves(PARAMS)
        treedef = tree_structure(PARAMS)
        k = sorted(PARAMS).index(key)
        at = lambda x: ad.value_of(_two_outputs(treedef.unflatten(leaves[:k] + [x] + leaves[k + 1:]))["v"])  # noqa
        np.testing.assert_allclose(jac["v"][key], ad.numerical_jacobian(at, np.asarray(PARAMS[key], float)), atol=1e-7)
    jac2 = ad.jacobian(lambda p, y: (p["b"] * y, ad.sum(y)), argnums=(0, 1), mode=mode)(PARAMS, np.array([1.0, 2.0]))
    assert isinstance(jac2, tuple) and isinstance(jac2[0], tuple) and set(jac2[0][0]) == set(PARAMS)
    np.testing.assert_allclose(jac2[0][0]["b"], np.diag([1.0, 2.0]))
    np.testing.assert_allclose(jac2[1][1], [1.0, 1.0])


def test_hessian_and_hvp_of_a_dict_against_differences_of_the_gradient():
    p = {"a": np.array([0.3, -0.4]), "c": 1.2}
    f = lambda p: ad.sum(p["a"] ** 3) * p["c"] + p["c"] ** 2 * ad.sum(p["a"])       # noqa: E731
    h = ad.hessian(f)(p)
    assert h["a"]["a"].shape == (2, 2) and h["a"]["c"].shape == (2,) and h["c"]["a"].shape == (2,)
    np.testing.assert_allclose(h["a"]["a"], np.diag(6 * p["a"] * p["c"]))
    np.testing.assert_allclose(h["a"]["c"], 3 * p["a"] ** 2 + 2 * p["c"])
    np.testing.assert_allclose(h["c"]["a"], 3 * p["a"] ** 2 + 2 * p["c"])
    assert h["c"]["c"] == pytest.approx(2 * p["a"].sum())
    v = {"a": np.array([1.0, -1.0]), "c": 0.5}
    hv = ad.hvp(f, p, v)
    np.testing.assert_allclose(hv["a"], h["a"]["a"] @ v["a"] + h["a"]["c"] * v["c"])
    assert hv["c"] == pytest.approx(h["c"]["a"] @ v["a"] + h["c"]["c"] * v["c"])


def test_nesting_and_tensor_leaves_give_tensors_back():
    inner = lambda p: ad.sum(p["w"] ** 3)                                          # noqa: E731
    outer = lambda p: ad.sum(ad.grad(inner)(p)["w"])                               # sum 3 w^2
    g = ad.grad(outer)({"w": np.array([1.0, 2.0])})
    np.testing.assert_allclose(g["w"], [6.0, 12.0])
    t = ad.Tensor(np.array([1.0, 2.0]))
    gt = ad.grad(lambda p: ad.sum(p[0] * p[1]))((t, np.array([3.0, 4.0])))
    assert isinstance(gt, tuple) and isinstance(gt[0], ad.Tensor)


def test_errors_name_the_argument_and_the_place_in_one_line():
    with pytest.raises(TypeError, match=r"^grad: argument 0\['name'\] must be a number or a numeric array; "
                                        r"got dtype <U3$"):
        ad.grad(lambda p: ad.sum(p["w"]))({"w": np.ones(2), "name": "abc"})
    _, vjp_fn = ad.vjp(_two_outputs, PARAMS)
    with pytest.raises(ValueError, match=r"^vjp: the cotangent does not match f's output PyTreeDef\(\{'s': \*, "
                                         r"'v': \*\}\): the structures differ at the top: expected a dict with keys "
                                         r"\['s', 'v'\], got a dict with keys \['s'\]$"):
        vjp_fn({"s": 1.0})
    with pytest.raises(ValueError, match=r"^vjp: the cotangent\['v'\] has shape \(3,\), expected \(2,\)$"):
        vjp_fn({"s": 1.0, "v": np.ones(3)})
    with pytest.raises(ValueError, match=r"^jvp: tangents\[0\] does not match primals\[0\] PyTreeDef\(.*\): the "
                                         r"structures differ at the top: expected a dict with keys \['b', 'scale', "
                                         r"'w'\], got a dict with keys \['b', 'w'\]$"):
        ad.jvp(_loss, (PARAMS,), ({"w": np.ones((3, 2)), "b": np.ones(2)},))
    with pytest.raises(TypeError, match=r"^jvp: tangents\[0\]\['b'\] must be a number or an array of shape \(2,\), "
                                        r"got dict$"):
        ad.jvp(_loss, (PARAMS,), ({"w": np.ones((3, 2)), "b": {"x": 1.0}, "scale": 1.0},))
    with pytest.raises(ValueError, match=r"^hvp: v\['a'\] has shape \(3,\), expected \(2,\)$"):
        ad.hvp(lambda p: ad.sum(p["a"] ** 2), {"a": np.ones(2)}, {"a": np.ones(3)})
    with pytest.raises(ValueError, match=r"^grad: f must return a scalar; it returned a pytree "
                                         r"PyTreeDef\(\(\*, \*\)\)"):
        ad.grad(lambda p: (_loss(p), 1.0))(PARAMS)
    with pytest.raises(TypeError, match=r"with has_aux=True f must return a pair"):
        ad.grad(_loss, has_aux=True)(PARAMS)


# --- nn.functional_call -----------------------------------------------------------------------------------
def _model():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((1, 6, 6)), nn.Conv2D(2, 3, activation="relu", name="conv"),
                           nn.Flatten(), nn.Dense(3, name="fc")])
    return model


def test_functional_call_gradients_equal_the_model_backward_gradients():
    model = _model()
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, 5)
    params = {name: p.value.copy() for name, p in model.named_parameters()}
    loss = lambda p: nn.functional.softmax_cross_entropy(nn.functional_call(model, p, x), y)  # noqa: E731
    value, grads = ad.value_and_grad(loss)(params)
    model.zero_grad()
    reference = nn.functional.softmax_cross_entropy(model(x), y)
    reference.backward()
    assert value == pytest.approx(float(reference.value), rel=1e-6)
    assert list(grads) == sorted(name for name, _ in model.named_parameters())
    for name, p in model.named_parameters():
        assert grads[name].dtype == p.value.dtype
        np.testing.assert_allclose(grads[name], p.grad, rtol=1e-5, atol=1e-6)
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())      # the originals are back
    np.testing.assert_array_equal(model(x).value, reference_logits := model(x).value)
    zeros = {name: np.zeros_like(v) for name, v in params.items()}
    np.testing.assert_array_equal(nn.functional_call(model, zeros, x), np.zeros((5, 3), np.float32))
    np.testing.assert_array_equal(model(x).value, reference_logits)


def test_functional_call_restores_on_exceptions_and_refuses_unknown_names():
    model = _model()
    before = [(name, p) for name, p in model.named_parameters()]
    with pytest.raises(ValueError):
        nn.functional_call(model, {"fc.weight": np.zeros((2, 3))}, np.zeros((1, 1, 6, 6), np.float32))
    assert [(n, p) for n, p in model.named_parameters()] == before and model.fc.weight is before[2][1]
    with pytest.raises(ValueError, match=r"\['fc.wieght'\] are not parameters or buffers of Sequential"):
        nn.functional_call(model, {"fc.wieght": np.zeros((32, 3))}, np.zeros((1, 1, 6, 6)))
    with pytest.raises(ValueError, match=r"strict=True and no value given for \['conv.bias'"):
        nn.functional_call(model, {"fc.bias": np.zeros(3)}, np.zeros((1, 1, 6, 6)), strict=True)
    with pytest.raises(ValueError, match=r"given in more than one"):
        nn.functional_call(model, ({"fc.bias": np.zeros(3)}, {"fc.bias": np.ones(3)}), np.zeros((1, 1, 6, 6)))


# --- through autodiff.compile ------------------------------------------------------------------------------

def _linear_problem():
    rng = np.random.default_rng(4)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    return params, rng.normal(size=(5, 3)), rng.normal(size=(5, 2))


def _linear_loss(p, x, y):
    return ad.sum((x @ p["w"] + p["b"] - y) ** 2)


def test_compile_takes_and_gives_pytrees_in_every_mode():
    params, xs, ys = _linear_problem()

    def total(p, xs, ys):
        return ad.sum(ad.vmap(_linear_loss, in_axes=(None, 0, 0))(p, xs, ys))

    value, gradient = ad.compile(total, params, xs, ys)(params, xs, ys)
    expected = ad.grad(total)(params, xs, ys)
    assert np.isclose(value, total(params, xs, ys), rtol=1e-13) and set(gradient) == {"w", "b"}
    for key in gradient:
        np.testing.assert_allclose(gradient[key], expected[key], rtol=1e-12)
    per_example = ad.vmap(ad.grad(_linear_loss), in_axes=(None, 0, 0))
    out = ad.compile(per_example, params, xs, ys, mode="value")(params, xs, ys)
    assert isinstance(out, dict) and out["w"].shape == (5, 3, 2)
    np.testing.assert_allclose(out["w"], per_example(params, xs, ys)["w"], rtol=1e-12)
    tangent = {"w": np.ones((3, 2)), "b": np.zeros(2)}
    f = lambda p: ad.sum(ad.sin(p["w"])) * p["b"]                                             # noqa: E731
    got = ad.compile(f, params, mode="forward")(params, tangent)
    for a, b in zip(got, ad.jvp(f, (params,), (tangent,))):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_compiled_pytree_function_refuses_another_structure_in_one_line():
    params, xs, ys = _linear_problem()
    compiled = ad.compile(_linear_loss, params, xs[0], ys[0])
    with pytest.raises(ad.CompileError, match=r"argument 0 has the structure PyTreeDef\(\{'w': \*\}\), but f was "
                                              r"compiled for PyTreeDef\(\{'b': \*, 'w': \*\}\)"):
        compiled({"w": params["w"]}, xs[0], ys[0])
