"""The fast paths of indexing and its adjoint: np.bincount for np.add.at, np.take for a gather, column sums
for a short last axis, and the reverse sweep's in-place accumulation into the adjoints it owns. Each must
give NumPy's numbers (to round-off) and never write into an array someone else holds."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import Tensor
from autodiff.ops.shapes import getitem, scatter_add, scatter_into
from autodiff.primitives import sum_axes
from autodiff.sweep import reverse_sweep, toposort

# (shape of the array, an index with one integer array, where the array's axis is)
INDEXED = [((7,), lambda i: (i,)), ((5, 3), lambda i: (i,)), ((4, 6), lambda i: (slice(None), i)),
           ((3, 4, 5), lambda i: (Ellipsis, i)), ((3, 4, 5), lambda i: (slice(None), i, slice(None))),
           ((3, 4, 5), lambda i: (i, Ellipsis)), ((6, 2), lambda i: (i.reshape(4, -1),)),
           ((2, 50), lambda i: (slice(None), i)), ((40, 3), lambda i: (i,))]


def _axis_length(shape, index):
    k = [j for j, item in enumerate(index) if isinstance(item, np.ndarray)][0]
    return shape[k] if Ellipsis not in index[:k] else shape[len(shape) - (len(index) - k)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(INDEXED)))
def test_scatter_add_and_scatter_into_give_np_add_at_numbers_with_negative_and_repeated_indices(case, dtype):
    rng = np.random.default_rng(case)
    shape, make = INDEXED[case]
    n = _axis_length(shape, make(np.zeros(8, dtype=np.intp)))
    idx = rng.integers(-n, n, 8 if case != 8 else 300)       # negative ones, and repeats (8 or 300 draws of n)
    index = make(idx)
    g = rng.normal(size=np.zeros(shape)[index].shape).astype(dtype)
    expected = np.zeros(shape, dtype=dtype)
    np.add.at(expected, index, g)
    out = scatter_add(g, index=index, shape=shape)
    assert out.dtype == dtype and out.shape == shape
    if dtype == np.float64:
        np.testing.assert_array_equal(out, expected)     # np.bincount adds in np.add.at's order
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    start = rng.normal(size=shape).astype(dtype)
    acc, reference = start.copy(), start.copy()
    scatter_into(acc, index, g)
    np.add.at(reference, index, g)
    np.testing.assert_allclose(acc, reference, rtol=1e-12 if dtype == np.float64 else 1e-5, atol=1e-6)
    np.testing.assert_array_equal(getitem(start, index=index), start[index])    # the gather: np.take's copy


def test_the_general_indices_still_give_np_add_at_numbers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5))
    for index in [(np.array([0, 3, 0]), np.array([1, 1, 1])), (x > 0,), (slice(1, 3), np.array([4, -1, 4])),
                  (np.array([1, 2]), slice(0, 2)), (0, np.array([2, 2])), (np.array([[0], [0]]), np.array([1, 1]))]:
        g = rng.normal(size=x[index].shape)
        expected = np.zeros(x.shape)
        np.add.at(expected, index, g)
        np.testing.assert_allclose(scatter_add(g, index=index, shape=x.shape), expected, rtol=1e-14)
        np.testing.assert_array_equal(getitem(x, index=index), x[index])
    c = rng.normal(size=3) + 1j * rng.normal(size=3)       # complex: np.add.at
    expected = np.zeros(4, dtype=complex)
    np.add.at(expected, (np.array([1, 1, 3]),), c)
    np.testing.assert_array_equal(scatter_add(c, index=(np.array([1, 1, 3]),), shape=(4,)), expected)


def test_an_index_out_of_range_raises_numpys_index_error_both_ways():
    x = np.arange(6.0)
    for bad in [np.array([0, 6]), np.array([-7, 1])]:
        with pytest.raises(IndexError):
            getitem(x, index=(bad,))
        with pytest.raises(IndexError):
            scatter_add(np.ones(2), index=(bad,), shape=(6,))
    assert getitem(x, index=(np.zeros(0, dtype=np.intp),)).shape == (0,)
    assert getitem(x, index=(np.array([5, -6], dtype=np.int32),)).tolist() == [5.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sums_over_a_short_last_axis_are_numpys_bit_for_bit(dtype):
    rng = np.random.default_rng(1)
    for k in range(1, 10):
        for shape in [(3000, k), (40, 60, k), (5, k)]:
            x = (rng.normal(size=shape) * 10.0 ** rng.integers(-6, 6, shape)).astype(dtype)
            for axis in [-1, len(shape) - 1, (-1,), (len(shape) - 1,)]:
                for keepdims in (False, True):
                    got = sum_axes(x, axis, keepdims)
                    want = np.sum(x, axis=axis, keepdims=keepdims)
                    assert got.shape == want.shape and got.dtype == want.dtype
                    np.testing.assert_array_equal(got, want)
    x = rng.normal(size=(3000, 3))[:, ::-1]             # a strided view
    np.testing.assert_array_equal(ad.sum(x, axis=1, keepdims=True), np.sum(x, axis=1, keepdims=True))
    assert sum_axes(x, 0).shape == (3,) and sum_axes(x, None) == np.sum(x)


def _f(x, keep=None):
    """x[0:2], x[1:3], x itself and a gather with repeats: four contributions into x's adjoint."""
    a = x[0:2] * np.array([[1.0, 2.0, 3.0]]) + x[1:3] ** 2
    b = x[np.array([2, -1, 0, 2])] * 3.0
    if keep is not None:
        keep.append(a)
    return (a ** 2).sum() + (x * x[::-1]).sum() + b.sum() + (np.sin(x)[:, 1:3] ** 2).sum()


def _numerical_grad(f, x, h=1e-6):
    out = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (float(f(x + e)) - float(f(x - e))) / (2 * h)
    return out


def test_gradients_through_overlapping_slices_match_finite_differences_and_the_recorded_path():
    rng = np.random.default_rng(2)
    x1, x2 = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    g1 = ad.grad(_f)(x1)
    kept = g1.copy()
    g2 = ad.grad(_f)(x2)                                 # the user keeps g1 across a second call
    np.testing.assert_array_equal(g1, kept)
    for x, g in [(x1, g1), (x2, g2)]:
        np.testing.assert_allclose(g, _numerical_grad(_f, x), rtol=1e-6, atol=1e-7)
        t = Tensor(x, requires_grad=True)
        _f(t).backward(create_graph=True)                # the recorded rules: scatter_add, no in-place adds
        np.testing.assert_allclose(g, t.grad.value, rtol=1e-13, atol=1e-13)
        t2 = Tensor(x, requires_grad=True)
        _f(t2).backward()
        np.testing.assert_array_equal(t2.grad, g)
        assert not np.shares_memory(t2.grad, g)


def test_the_sweep_never_writes_into_seeds_values_or_what_hooks_and_rules_were_given():
    rng = np.random.default_rng(3)
    x = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    x_value = x.value.copy()
    z = x * 2.0
    seen = []
    z.register_hook(lambda g: seen.append((g, g.copy())))
    w, v = z[1:3], z[np.array([0, 0, -1])]
    seeds = {id(z): rng.normal(size=(4, 3)), id(w): rng.normal(size=(2, 3)), id(v): rng.normal(size=(3, 3))}
    copies = {k: s.copy() for k, s in seeds.items()}
    order, ids = toposort([z, w, v])
    adj = reverse_sweep(order, ids, seeds)
    for k, s in seeds.items():
        np.testing.assert_array_equal(s, copies[k])     # the user's seeds are read, never written
    np.testing.assert_array_equal(x.value, x_value)
    expected_z = copies[id(z)].copy()
    expected_z[1:3] += copies[id(w)]
    np.add.at(expected_z, np.array([0, 0, -1]), copies[id(v)])
    np.testing.assert_allclose(adj[id(z)], expected_z, rtol=1e-14)
    np.testing.assert_allclose(adj[id(x)], 2 * expected_z, rtol=1e-14)
    (hooked, copy), = seen
    np.testing.assert_array_equal(hooked, copy)         # the hook's array: complete, and not written later
    np.testing.assert_array_equal(hooked, adj[id(z)])
    adj2 = reverse_sweep(order, ids, seeds)              # a second sweep leaves the first one's results alone
    np.testing.assert_array_equal(hooked, copy)
    np.testing.assert_array_equal(adj[id(z)], adj2[id(z)])
    assert not np.shares_memory(adj[id(z)], adj2[id(z)])


def test_on_edge_sees_each_contribution_as_the_vjp_rule_makes_it():
    rng = np.random.default_rng(4)
    x = Tensor(rng.normal(size=(5, 2)), requires_grad=True)
    y = (x[0:3] * 2.0).sum() + (x[np.array([1, 1, -1])] ** 2).sum() + x.sum()
    order, ids = toposort([y])
    edges = []
    with_edges = reverse_sweep(order, ids, {id(y): np.array(1.0)},
                               on_edge=lambda node, i, inp, c: edges.append((node, inp, np.array(c))))
    plain = reverse_sweep(order, ids, {id(y): np.array(1.0)})
    into_x = [(node.op.name, c) for node, inp, c in edges if inp is x]
    assert sorted(name for name, _ in into_x) == ["getitem", "getitem", "sum"]
    for name, c in into_x:
        assert c.shape == (5, 2)                         # a full-shape contribution, as scatter_add makes it
    np.testing.assert_allclose(sum(c for _, c in into_x), plain[id(x)], rtol=1e-14)
    np.testing.assert_allclose(with_edges[id(x)], plain[id(x)], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gathers_and_slices_keep_the_dtype_and_agree_with_the_recorded_path(dtype):
    rng = np.random.default_rng(5)
    cams, pts = rng.normal(size=(4, 5)).astype(dtype), rng.normal(size=(6, 3)).astype(dtype)
    ci, pi = rng.integers(0, 4, 300), rng.integers(-6, 6, 300)

    def f(cams, pts):
        c = cams[ci]
        xc = pts[pi] - c[:, 0:3]
        return (np.sum(xc ** 2, axis=1, keepdims=True) * c[:, 3:4] + c[:, 4:5]).sum()

    gc, gp = ad.grad(f, argnums=(0, 1))(cams, pts)
    assert gc.dtype == dtype and gp.dtype == dtype
    tc, tp = Tensor(cams, requires_grad=True), Tensor(pts, requires_grad=True)
    f(tc, tp).backward(create_graph=True)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gc, tc.grad.value, rtol=tol, atol=tol)
    np.testing.assert_allclose(gp, tp.grad.value, rtol=tol, atol=tol)
    if dtype == np.float64:
        np.testing.assert_allclose(gc, _numerical_grad(lambda c: f(c, pts), cams), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(gp, _numerical_grad(lambda p: f(cams, p), pts), rtol=1e-6, atol=1e-6)
