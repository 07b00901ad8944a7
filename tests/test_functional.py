"""The functional API: grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp, derivative, gradients."""
import itertools

import numpy as np
import pytest

import autodiff as ad
from autodiff import Tensor


def _central_jacobian(f, x, h=1e-6):
    x = np.asarray(x, dtype=float)
    cols = []
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    return np.moveaxis(np.stack(cols), 0, -1).reshape(np.shape(f(x)) + x.shape)


def f_vec(x):
    """R^3 -> R^2, mixing several primitives."""
    return ad.stack([ad.sin(x[0]) * x[1] ** 2, ad.exp(x[2]) / (1 + x[0] ** 2)])


def test_return_types_follow_the_arguments():
    g = ad.grad(lambda x: x * x)
    assert type(g(3.0)) is float and g(3.0) == 6.0
    assert type(g(3)) is float  # integers are promoted to float64
    assert isinstance(g(np.array(3.0)), np.float64)
    assert isinstance(g(np.array([3.0])), np.ndarray)
    t = g(Tensor(3.0))
    assert isinstance(t, Tensor) and t.item() == 6.0


def test_argnums_tuple_and_value_and_grad():
    def f(x, y, z):
        return x * y + ad.sin(z)

    value, (gx, gz) = ad.value_and_grad(f, argnums=(0, 2))(2.0, 3.0, 0.0)
    assert (value, gx, gz) == (6.0, 3.0, 1.0)
    assert ad.grad(f, argnums=-2)(2.0, 3.0, 0.0) == 2.0


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"argnums=2 names argument 2, but f was called with 1 positional"):
        ad.grad(ad.sin, argnums=2)(1.0)
    with pytest.raises(ValueError, match=r"must return a scalar .* returned shape \(3,\)"):
        ad.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(ValueError, match=r"jvp: tangents\[0\] has shape \(2,\), expected \(3,\)"):
        ad.jvp(ad.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(ValueError, match=r"jvp: 1 primal\(s\) but 2 tangent\(s\)"):
        ad.jvp(ad.sin, (1.0,), (1.0, 2.0))
    x = Tensor(1.0, requires_grad=True, name="x")
    z = Tensor(2.0, requires_grad=True, name="z")
    with pytest.raises(ValueError, match=r"wrt\[1\] \(named 'z'\) is not an input of the graph of y"):
        ad.gradients(ad.sin(x), [x, z])
    with pytest.raises(ValueError, match="mode must be 'reverse' or 'forward'"):
        ad.jacobian(ad.sin, mode="sideways")
    with pytest.raises(ValueError, match="order must be an integer from 0 to 100, got -1"):
        ad.derivative(ad.sin, order=-1)


def test_output_independent_of_input_has_zero_gradient():
    assert ad.grad(lambda x: 3.0)(1.0) == 0.0
    np.testing.assert_array_equal(ad.grad(lambda x, y: (y * 2).sum(), argnums=0)(np.ones(2), np.ones(2)), [0, 0])


def test_vjp_function_can_be_called_many_times():
    x = np.array([0.1, 0.2, 0.3])
    out, vjp_fn = ad.vjp(f_vec, x)
    jac = _central_jacobian(f_vec, x)
    for u in (np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([2.0, -3.0])):
        np.testing.assert_allclose(vjp_fn(u)[0], u @ jac, rtol=1e-7, atol=1e-9)
    with pytest.raises(ValueError, match=r"cotangent has shape \(3,\), expected \(2,\)"):
        vjp_fn(np.ones(3))


def test_jvp_with_several_primals():
    out, tangent = ad.jvp(lambda a, b: a * ad.sin(b), (2.0, 0.5), (1.0, 10.0))
    assert out == 2.0 * np.sin(0.5)
    assert tangent == pytest.approx(np.sin(0.5) + 2.0 * np.cos(0.5) * 10.0, rel=1e-15)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_jacobian_both_modes_match_central_differences(mode):
    x = np.array([0.3, -0.7, 1.1])
    jac = ad.jacobian(f_vec, mode=mode)(x)
    assert jac.shape == (2, 3)
    np.testing.assert_allclose(jac, _central_jacobian(f_vec, x), rtol=1e-7, atol=1e-9)
    matrix_in = np.arange(6.0).reshape(2, 3) / 10
    j2 = ad.jacobian(lambda m: ad.softmax(m, axis=1), mode=mode)(matrix_in)
    assert j2.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(j2, _central_jacobian(lambda m: ad.softmax(m, axis=1), matrix_in), atol=1e-9)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_jacobian_with_a_tuple_of_argnums_gives_a_tuple_matching_central_differences(mode):
    def f(a, b, c):            # R^2 x R^3 x R -> R^2 (c is left alone)
        return ad.stack([ad.sin(a[0]) * ad.sum(b ** 2), a[1] * b[2] + ad.exp(a[0] * b[0]) * c])

    a, b, c = np.array([0.3, -0.7]), np.array([1.1, 0.4, -0.2]), 0.5
    ja, jb = ad.jacobian(f, argnums=(0, 1), mode=mode)(a, b, c)
    assert ja.shape == (2, 2) and jb.shape == (2, 3)
    np.testing.assert_allclose(ja, _central_jacobian(lambda v: f(v, b, c), a), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(jb, _central_jacobian(lambda v: f(a, v, c), b), rtol=1e-7, atol=1e-9)
    (jc,) = ad.jacobian(f, argnums=(2,), mode=mode)(a, b, c)        # a 1-tuple stays a tuple (JAX)
    np.testing.assert_allclose(jc, [0.0, np.exp(a[0] * b[0])], rtol=1e-15)
    jb2, ja2 = ad.jacobian(f, argnums=(1, -3), mode=mode)(a, b, c)  # in the order asked
    np.testing.assert_array_equal(ja2, ja)
    np.testing.assert_array_equal(jb2, jb)


def test_grad_with_a_tuple_of_argnums_is_the_hand_derivative_and_bad_argnums_are_named():
    gx, gy = ad.grad(lambda x, y: x ** 2 * ad.sin(y), argnums=(0, 1))(1.5, 0.3)
    assert gx == pytest.approx(2 * 1.5 * np.sin(0.3), rel=1e-15)
    assert gy == pytest.approx(1.5 ** 2 * np.cos(0.3), rel=1e-15)
    (only,) = ad.grad(lambda x, y: x * y, argnums=(1,))(2.0, 5.0)
    assert only == 2.0
    for bad in ([0, 1], (), (0, "1"), 1.0):
        with pytest.raises(TypeError, match=r"jacobian: argnums must be an int or a non-empty tuple of ints, got"):
            ad.jacobian(ad.sin, argnums=bad)


def test_forward_and_reverse_jacobians_are_equal():
    x = np.array([0.3, -0.7, 1.1])
    np.testing.assert_allclose(ad.jacobian(f_vec, mode="forward")(x), ad.jacobian(f_vec)(x), rtol=1e-14)


# --- nesting -----------------------------------------------------------------------------------

def _outer(kind):
    """d/dx of a scalar function by each way the engine offers, at x."""
    return {
        "grad": lambda f, x: ad.grad(f)(x),
        "jvp": lambda f, x: ad.jvp(f, (x,), (1.0,))[1],
        "derivative": lambda f, x: ad.derivative(f)(x),
        "backward": _by_backward,
        "jacobian-forward": lambda f, x: float(ad.jacobian(lambda v: f(v[0]), mode="forward")(np.array([x]))[0]),
        "jacobian-reverse": lambda f, x: float(ad.jacobian(lambda v: f(v[0]))(np.array([x]))[0]),
    }[kind]


def _by_backward(f, x):
    t = Tensor(x, requires_grad=True)
    f(t).backward()
    return float(t.grad)


def _inner(kind):
    return {
        "grad": lambda f, y: ad.grad(f)(y),
        "jvp": lambda f, y: ad.jvp(f, (y,), (1.0,))[1],
        "derivative": lambda f, y: ad.derivative(f)(y),
    }[kind]


@pytest.mark.parametrize("outer, inner", list(itertools.product(
    ["grad", "jvp", "derivative", "backward", "jacobian-forward", "jacobian-reverse"],
    ["grad", "jvp", "derivative"])))
def test_no_perturbation_confusion_in_any_nesting(outer, inner):
    d_out, d_in = _outer(outer), _inner(inner)
    # d/dx [ x * d/dy (x + y) at y = 1 ] at x = 1 is 1 (confusing the two perturbations gives 2)
    assert d_out(lambda x: x * d_in(lambda y: x + y, 1.0), 1.0) == pytest.approx(1.0, abs=1e-15)
    # d/dx [ x * d/dy (x * y) at y = 2 ] = d/dx x^2 = 2x: the inner result depends on x
    assert d_out(lambda x: x * d_in(lambda y: x * y, 2.0), 1.5) == pytest.approx(3.0, rel=1e-15)
    # d/dx [ d/dy (x * y) at y = x ] = d/dx x = 1: the inner argument is the outer variable itself
    assert d_out(lambda x: d_in(lambda y: x * y, x), 1.5) == pytest.approx(1.0, abs=1e-15)


def test_nested_calls_return_tensors_and_top_level_calls_return_numbers():
    seen = []

    def f(x):
        inner = ad.grad(lambda y: x * y * y)(2.0)  # 4x, depends on the outer x
        seen.append(type(inner))
        return inner * x

    assert ad.grad(f)(1.5) == pytest.approx(8 * 1.5, rel=1e-15)
    assert seen == [Tensor]
    assert type(ad.grad(lambda y: y * y * 3.0)(2.0)) is float


def test_grad_of_grad_and_hessian_of_nested_functions():
    d3 = ad.grad(ad.grad(ad.grad(lambda x: x ** 4)))
    assert d3(2.0) == pytest.approx(48.0, rel=1e-15)
    x = np.array([0.5, -1.0])
    h = ad.hessian(lambda v: ad.grad(lambda w: (w ** 3).sum())(v).sum())(x)  # d2/dv2 sum(3 v^2)
    np.testing.assert_allclose(h, np.diag([6.0, 6.0]), rtol=1e-15)
    jac_of_grad = ad.jacobian(ad.grad(lambda v: (ad.sin(v) * v).sum()), mode="forward")(x)
    np.testing.assert_allclose(jac_of_grad, np.diag(2 * np.cos(x) - x * np.sin(x)), rtol=1e-14, atol=1e-15)


def test_hvp_inside_another_differentiation():
    # d/da of <v, H(a * x) v> for f = sum(x^4) is sum(24 a x^2 v^2 x ...) checked by differences
    x, v = np.array([0.5, 1.5]), np.array([1.0, -2.0])

    def g(a):
        return ad.sum(ad.hvp(lambda w: (w ** 4).sum(), a * x, v) * v)

    h = 1e-6
    central = (g(1.0 + h) - g(1.0 - h)) / (2 * h)
    assert ad.grad(g)(1.0) == pytest.approx(central, rel=1e-7)
