"""NumPy functions users reach for on Tensors (issue 32): np.tile, np.repeat, np.diag, np.full_like, np.vander and
np.linalg.slogdet dispatch to autodiff's ops, each held to NumPy's value and to finite differences; what
cannot dispatch (scipy.special.logsumexp, writing a Tensor into a NumPy array) fails with a message that
names the autodiff spelling."""
import numpy as np
import pytest

import autodiff as ad

RNG = np.random.default_rng(32)


def _check(np_func, x, *args, **kwargs):
    """np_func on a Tensor: NumPy's value, a tracked Tensor, and gradcheck's finite differences."""
    out = np_func(ad.Tensor(x, requires_grad=True), *args, **kwargs)
    assert isinstance(out, ad.Tensor) and out.requires_grad
    np.testing.assert_allclose(out.value, np_func(x, *args, **kwargs), rtol=1e-12, atol=1e-14)
    weights = RNG.uniform(-1, 1, np.shape(out.value))   # every output element enters the checked scalar
    ad.gradcheck(lambda t: ad.sum(np_func(t, *args, **kwargs) * weights), x)


@pytest.mark.parametrize("shape, reps", [((3,), 2), ((3,), (2, 2)), ((2, 3), (2, 1)), ((2, 3), (3,)),
                                         ((2, 1, 3), (1, 2, 2)), ((2,), (2, 1, 3)), ((2, 2), (0, 2))])
def test_tile(shape, reps):
    _check(np.tile, RNG.uniform(-2, 2, shape), reps)


@pytest.mark.parametrize("shape, repeats, axis", [((4,), 2, None), ((2, 3), 2, None), ((2, 3), 3, 0),
                                                  ((2, 3), [1, 0, 2], 1), ((2, 3), np.array([2, 1]), -2),
                                                  ((2, 3), [1, 2, 0, 1, 1, 3], None), ((3, 2, 2), 2, 2)])
def test_repeat(shape, repeats, axis):
    _check(np.repeat, RNG.uniform(-2, 2, shape), repeats, axis=axis)


@pytest.mark.parametrize("shape, k", [((3,), 0), ((3,), 1), ((3,), -2), ((1,), 0),
                                      ((3, 3), 0), ((3, 4), 1), ((4, 3), -1), ((3, 3), 5)])
def test_diag(shape, k):
    _check(np.diag, RNG.uniform(-2, 2, shape), k=k)


def test_diag_refuses_3d():
    with pytest.raises(ValueError, match="1-d or 2-d"):
        ad.diag(ad.Tensor(np.ones((2, 2, 2))))


def test_the_composed_ops_are_the_autodiff_names():
    x = RNG.uniform(-1, 1, (2, 3))
    np.testing.assert_array_equal(ad.value_of(ad.tile(x, (2, 2))), np.tile(x, (2, 2)))
    np.testing.assert_array_equal(ad.value_of(ad.repeat(x, 2, axis=1)), np.repeat(x, 2, axis=1))
    np.testing.assert_array_equal(ad.value_of(ad.diag(x, -1)), np.diag(x, -1))
    for name in ("tile", "repeat", "diag", "full_like", "slogdet"):
        assert name in ad.__all__


def test_full_like_with_a_number_is_a_constant():
    x = ad.Tensor(RNG.uniform(-1, 1, (2, 3)), requires_grad=True)
    out = np.full_like(x, 2.5)
    assert not isinstance(out, ad.Tensor) or not out.requires_grad
    np.testing.assert_array_equal(np.asarray(ad.value_of(out)), np.full((2, 3), 2.5))
    np.testing.assert_array_equal(np.full_like(ad.Tensor(np.arange(3)), 1.7), np.full_like(np.arange(3), 1.7))
    np.testing.assert_array_equal(np.full_like(x, 1.0, shape=(4,)), np.ones(4))


def test_full_like_with_a_tensor_fill_has_the_sum_as_gradient():
    x = ad.Tensor(RNG.uniform(-1, 1, (2, 3)), requires_grad=True)
    c = ad.Tensor(1.5, requires_grad=True)
    w = RNG.uniform(-1, 1, (2, 3))
    y = ad.sum(np.full_like(x, c) * w + x)
    y.backward()
    np.testing.assert_allclose(c.grad, w.sum(), rtol=1e-14)
    np.testing.assert_allclose(x.grad, np.ones((2, 3)))     # the fill has derivative 0 w.r.t. x
    ad.gradcheck(lambda c: ad.sum(ad.full_like(np.ones((2, 3)), c) * w), np.array(0.7))
    ad.gradcheck(lambda c: ad.sum(ad.full_like(np.ones((2, 3)), c) * w), RNG.uniform(-1, 1, (3,)))


@pytest.mark.parametrize("a", [np.array([[1.0, 2.0], [3.0, 1.0]]),                       # det -5
                               np.array([[2.0, 0.5, 0.1], [0.3, -1.5, 0.2], [0.1, 0.4, 3.0]]),
                               RNG.uniform(-1, 1, (2, 3, 3)) + 3 * np.eye(3) * np.array([[[1]], [[-1]]])])
def test_slogdet(a):
    sign, logdet = np.linalg.slogdet(ad.Tensor(a, requires_grad=True))
    want_sign, want_logdet = np.linalg.slogdet(a)
    np.testing.assert_array_equal(ad.value_of(sign), want_sign)
    np.testing.assert_allclose(logdet.value, want_logdet, rtol=1e-13)
    assert logdet.requires_grad and not getattr(sign, "requires_grad", False)
    w = RNG.uniform(-1, 1, np.shape(want_logdet))
    ad.gradcheck(lambda t: ad.sum(np.linalg.slogdet(t)[1] * w), a)
    g = ad.grad(lambda t: ad.sum(ad.slogdet(t)[1]))(a)
    np.testing.assert_allclose(g, np.swapaxes(np.linalg.inv(a), -1, -2), rtol=1e-12)   # A^-T


def test_slogdet_negative_determinant_and_vmap():
    a = np.array([[[0.0, 1.0], [1.0, 0.0]], [[2.0, 1.0], [1.0, 3.0]]])
    assert np.linalg.slogdet(ad.Tensor(a))[0].tolist() == [-1.0, 1.0]
    out = ad.vmap(lambda m: ad.slogdet(m)[1])(a)
    np.testing.assert_allclose(ad.value_of(out), np.linalg.slogdet(a)[1], rtol=1e-14)
    signs = ad.vmap(lambda m: ad.slogdet(m)[0])(a)
    np.testing.assert_array_equal(ad.value_of(signs), [-1.0, 1.0])


def test_slogdet_returns_numpys_named_pair():
    a = np.array([[0.0, 2.0], [1.0, 0.0]])
    ours, theirs = np.linalg.slogdet(ad.Tensor(a, requires_grad=True)), np.linalg.slogdet(a)
    assert ours._fields == theirs._fields == ("sign", "logabsdet")
    assert ours.sign == theirs.sign == -1.0 and ours.logabsdet.value == theirs.logabsdet
    sign, logabsdet = ad.slogdet(a)
    assert (sign, logabsdet) == tuple(theirs)


def test_scipy_logsumexp_does_not_dispatch_and_the_error_names_ad_logsumexp():
    special = pytest.importorskip("scipy.special")
    t = ad.Tensor(RNG.uniform(-1, 1, (3,)), requires_grad=True)
    with pytest.raises(TypeError, match=r"autodiff\.logsumexp"):
        special.logsumexp(t)
    np.testing.assert_allclose(ad.logsumexp(t).value, special.logsumexp(t.value), rtol=1e-14)


def test_writing_a_tensor_into_a_numpy_array_names_the_at_form():
    t = ad.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    a = np.zeros((3, 3))
    with pytest.raises(TypeError) as info:
        a[[0, 1], [1, 2]] = t
    message = str(info.value)
    assert "a[...] = t" in message and "ad.Tensor(a).at[rows, cols].set(t)" in message and "\n" not in message
    b = ad.Tensor(a).at[[0, 1], [1, 2]].set(t)      # the spelling the message gives: the gradient reaches t
    ad.sum(b * np.arange(9.0).reshape(3, 3)).backward()
    np.testing.assert_array_equal(t.grad, [1.0, 5.0])


@pytest.mark.parametrize("n, N, increasing", [(4, None, False), (5, 3, False), (3, 5, True), (2, 1, True),
                                              (3, 0, False)])
def test_vander(n, N, increasing):
    x = RNG.uniform(-2, 2, n)
    out = np.vander(ad.Tensor(x, requires_grad=True), N, increasing)
    np.testing.assert_array_equal(out.value, np.vander(x, N, increasing))     # the same products, in order
    if out.value.size:
        _check(np.vander, x, N, increasing)


def test_vander_gradient_is_the_power_rule_and_float32_stays_float32():
    x, w = np.array([0.5, -1.5, 2.0]), np.array([1.0, -2.0, 3.0, 0.5])
    grad = ad.grad(lambda x: ad.sum(ad.vander(x, 4) @ w))(x)            # d/dx (x^3 - 2x^2 + 3x + 0.5)
    np.testing.assert_allclose(grad, 3 * x ** 2 - 4 * x + 3, rtol=1e-15)
    x32 = x.astype(np.float32)
    assert ad.vander(x32, 3).dtype == np.float32
    assert ad.grad(lambda x: ad.sum(ad.vander(x, 3)))(x32).dtype == np.float32
    assert ad.vander(np.arange(3), 2).dtype == np.vander(np.arange(3), 2).dtype


@pytest.mark.parametrize("args, match", [((np.ones((2, 2)),), r"vander: x must be a 1-d vector, got shape \(2, 2\)"),
                                         ((np.ones(3), -1),
                                          r"vander: N must be a whole number of columns >= 0, got -1"),
                                         ((np.ones(3), 2.5), r"vander: N must be a whole number .* got 2.5"),
                                         ((np.array(["a"]),), r"vander: x must hold numbers, got dtype <U1")])
def test_vander_refuses_careless_input_in_one_line(args, match):
    with pytest.raises((ValueError, TypeError), match=match) as err:
        ad.vander(*args)
    assert "\n" not in str(err.value)
