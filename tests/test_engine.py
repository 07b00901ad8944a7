"""The Tensor and the sweeps: dtypes, accumulation, fan-out, conventions, errors, deep graphs."""
import sys

import numpy as np
import pytest

import autodiff as ad
from autodiff import Tensor


# --- values and dtypes -------------------------------------------------------------------------

def test_tensor_keeps_dtype_and_copies_its_input():
    assert Tensor(1.5).dtype == np.float64
    assert Tensor(3).dtype == np.int64
    arr = np.array([1.0, 2.0], dtype=np.float32)
    t = Tensor(arr)
    assert t.dtype == np.float32 and t.shape == (2,) and t.ndim == 1 and t.size == 2
    arr[0] = 100.0
    assert t.value[0] == 1.0  # a copy: the caller's array cannot change the graph
    assert np.asarray(t).dtype == np.float32
    assert Tensor(2.5).item() == 2.5 and float(Tensor(2.5)) == 2.5


def test_float32_stays_float32_through_ops_constants_and_gradients():
    x = Tensor(np.array([0.5, 1.5], dtype=np.float32), requires_grad=True)
    y = (ad.exp(x) * 2.0 + x ** 2 - 1 / (x + 3.0)).sum()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32
    xv = x.value.astype(np.float64)
    np.testing.assert_allclose(x.grad, 2 * np.exp(xv) + 2 * xv + 1 / (xv + 3) ** 2, rtol=1e-6)
    assert ad.grad(lambda t: (t * t).sum())(np.ones(3, dtype=np.float32)).dtype == np.float32


def test_requires_grad_needs_a_float_dtype():
    with pytest.raises(TypeError, match="floating-point dtype; got int64"):
        Tensor(3, requires_grad=True)
    with pytest.raises(TypeError, match="numeric"):
        Tensor("abc")


def test_plain_arguments_give_plain_results_and_comparisons_give_arrays():
    assert isinstance(ad.sin(np.array([1.0])), np.ndarray)
    x = Tensor([1.0, -2.0], requires_grad=True)
    mask = x > 0
    assert isinstance(mask, np.ndarray) and mask.dtype == bool and mask.tolist() == [True, False]
    assert isinstance(np.array([2.0, 3.0]) * x, Tensor)  # NumPy defers to the Tensor's operators


def test_no_grad_and_detach_record_nothing():
    x = Tensor(2.0, requires_grad=True)
    with ad.no_grad():
        y = x * x
        assert not ad.is_grad_enabled()
    assert ad.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    z = x.detach() * x
    z.backward()
    assert x.grad == 2.0  # the detached factor is a constant


# --- reverse mode into .grad -------------------------------------------------------------------

def test_backward_accumulates_and_zero_grad_resets():
    x = Tensor(3.0, requires_grad=True)
    y = x * x
    y.backward()
    assert x.grad == 6.0
    y.backward()  # documented: a second call adds the gradient again (the graph is kept)
    assert x.grad == 12.0
    x.zero_grad()
    assert x.grad is None
    (x * 2.0).backward()
    assert x.grad == 2.0


def test_fan_out_sums_contributions_for_leaves_and_intermediate_nodes():
    x = Tensor(0.7, requires_grad=True)
    a = ad.sin(x).retain_grad()       # used by three consumers below
    y = a * a + ad.exp(a) + 3.0 * a
    y.backward()
    av = np.sin(0.7)
    assert a.grad == pytest.approx(2 * av + np.exp(av) + 3.0, rel=1e-15)
    assert x.grad == pytest.approx(a.grad * np.cos(0.7), rel=1e-15)
    b = ad.exp(x)
    (dy_db,) = ad.gradients(b * b + b, [b])
    assert dy_db == pytest.approx(2 * np.exp(0.7) + 1, rel=1e-15)


def test_non_leaf_grad_only_when_retained_and_grads_are_independent_arrays():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    c = a + b
    c.sum().backward()
    assert c.grad is None
    assert a.grad is not b.grad and a.grad.flags.writeable
    a.grad += 1  # in-place changes to one gradient do not leak into another
    np.testing.assert_array_equal(b.grad, np.ones(3))


def test_backward_with_seed_and_errors():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with pytest.raises(ValueError, match=r"shape \(2,\), not a scalar; pass gradient="):
        y.backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\) but the output has shape \(2,\)"):
        y.backward(np.ones(3))
    seed = np.array([1.0, 10.0])
    y.backward(seed)
    np.testing.assert_array_equal(x.grad, [2.0, 40.0])
    seed[:] = 0  # the seed was copied
    np.testing.assert_array_equal(x.grad, [2.0, 40.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(1.0).backward()


def test_backward_create_graph_gives_a_differentiable_grad():
    x = Tensor(0.3, requires_grad=True)
    y = ad.sin(x) ** 3
    y.backward(create_graph=True)
    dx = x.grad
    assert isinstance(dx, Tensor) and dx.requires_grad
    x.zero_grad()
    dx.backward()
    s, c = np.sin(0.3), np.cos(0.3)
    assert x.grad == pytest.approx(6 * s * c * c - 3 * s ** 3, rel=1e-14)  # d2/dx2 sin^3 x


# --- conventions at non-differentiable points --------------------------------------------------

@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_kink_conventions(mode):
    def d(f, x):
        if mode == "reverse":
            return ad.grad(lambda t: ad.sum(f(t)))(x)
        return ad.jvp(f, (x,), (np.ones_like(np.asarray(x, dtype=float)),))[1]

    assert d(ad.relu, 0.0) == 0.0 and d(ad.relu, 1e-300) == 1.0
    assert d(ad.abs, 0.0) == 0.0
    assert d(lambda t: ad.maximum(t, 1.0), 1.0) == 0.5            # ties split evenly
    assert d(lambda t: ad.minimum(t, 1.0), 1.0) == 0.5
    np.testing.assert_array_equal(d(lambda t: ad.clip(t, a_min=-1.0, a_max=1.0), np.array([-1.0, 1.0, 1.5])),
                                  [1.0, 1.0, 0.0])              # gradient passes on the closed interval
    if mode == "reverse":
        np.testing.assert_array_equal(ad.grad(lambda t: ad.max(t))(np.array([2.0, 5.0, 5.0, 1.0])),
                                      [0.0, 0.5, 0.5, 0.0])     # shared among tied maxima
    else:
        assert d(lambda t: ad.max(t), np.array([2.0, 5.0, 5.0, 1.0])) == 1.0


# --- broadcasting and shapes -------------------------------------------------------------------

def test_broadcasting_gradients_are_summed_back_to_input_shapes():
    a = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    c = Tensor(5.0, requires_grad=True)
    ((a * b + c) ** 2).sum().backward()
    av, bv = a.value, b.value
    r = 2 * (av * bv + 5.0)
    np.testing.assert_allclose(a.grad, r * bv)
    np.testing.assert_allclose(b.grad, (r * av).sum(axis=0))
    np.testing.assert_allclose(c.grad, r.sum())


def test_indexing_and_shape_ops():
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    y = x[0, 1] * 2 + x[:, ::2].sum() + x[[0, 0, 2]].sum() + x.T.reshape(12)[3] + x[x > 10].sum()
    y.backward()
    expected = np.zeros((3, 4))
    expected[0, 1] += 2
    expected[:, ::2] += 1
    expected[0] += 2  # index 0 picked twice: repeated indices add up
    expected[2] += 1
    expected[0, 1] += 1  # x.T.reshape(12)[3] is x[0, 1]
    expected[2, 3] += 1  # the only element above 10
    np.testing.assert_array_equal(x.grad, expected)
    parts = ad.concatenate([x[:1], x[1:]], axis=0)
    np.testing.assert_array_equal(parts.value, x.value)
    assert ad.stack([x, x], axis=1).shape == (3, 2, 4)


def test_shape_errors_name_the_op_and_both_shapes():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"add: cannot apply to shapes \(2, 3\) and \(4,\)"):
        a + np.ones(4)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) do not align"):
        a @ a
    with pytest.raises(TypeError, match=r"sum\(\) got an unexpected argument 'axes'"):
        ad.sum(a, axes=0)


def test_vjp_rule_returning_a_wrong_shape_is_named():
    @ad.primitive(vjp=[lambda g, out, x: g.sum()], jvp=[lambda t, out, x: t])
    def bad_copy(x):
        return np.array(x, copy=True)

    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"vjp rule of 'bad_copy' returned a cotangent of shape \(\) for input 0, but the input has shape \(3,\)"):
        bad_copy(x).sum().backward()
    del ad.REGISTRY["bad_copy"]


def test_jvp_rule_returning_a_wrong_shape_is_named():
    @ad.primitive(vjp=[lambda g, out, x: g], jvp=[lambda t, out, x: t.sum()])
    def bad_copy_fwd(x):
        return np.array(x, copy=True)

    with pytest.raises(RuntimeError, match=r"jvp rule of 'bad_copy_fwd' returned a tangent of shape \(\) for input 0, "
                                           r"but the output has shape \(3,\)"):
        ad.jvp(bad_copy_fwd, (np.ones(3),), (np.ones(3),))
    del ad.REGISTRY["bad_copy_fwd"]


def test_primitive_names_are_unique():
    with pytest.raises(ValueError, match="a primitive named 'sin' is already declared"):
        @ad.primitive(partials=[lambda out, x: 1.0])
        def sin(x):
            return x


# --- deep graphs -------------------------------------------------------------------------------

def test_chain_of_100000_ops_differentiates_in_both_modes_without_recursion():
    n = 100_000
    assert n > sys.getrecursionlimit()

    def chain(x):
        for _ in range(n):
            x = x * 0.99999 + 0.00001   # two ops per step
        return x

    slope = 0.99999 ** n
    assert ad.grad(chain)(0.5) == pytest.approx(slope, rel=1e-9)
    assert ad.jvp(chain, (0.5,), (1.0,))[1] == pytest.approx(slope, rel=1e-9)
    t = Tensor(0.5, requires_grad=True)
    chain(t).backward()
    assert t.grad == pytest.approx(slope, rel=1e-9)
