"""Tensor.register_hook (PyTorch's), enable_grad / set_grad_enabled, requires_grad_, stop_gradient (JAX's).

The hooks run in the one reverse sweep, so every caller sees them: backward(), the functional API,
gradcheck, the trace tables, the drawings and the player. Expected numbers are derived by hand; where
PyTorch is importable (an optional oracle, never a dependency) the same graphs are run in it too.
"""
import math

import numpy as np
import pytest

import autodiff as ad
from autodiff import Tensor


# --- register_hook: numbers derived by hand -----------------------------------------------------

def test_doubling_an_intermediate_doubles_the_leaf_gradients_upstream_only_through_it():
    # a = x w, y = a^2 + sin(x): dy/dw = 2a x, dy/dx = 2a w + cos(x); the hook doubles ā, so only the
    # path through a doubles: dy/dw = 4a x = 18, dy/dx = 4a w + cos(x) = 24 + cos(1.5)
    x, w = Tensor(1.5, requires_grad=True), Tensor(2.0, requires_grad=True)
    a = x * w
    a.register_hook(lambda g: g * 2)
    (a * a + ad.sin(x)).backward()
    assert w.grad == pytest.approx(18.0)
    assert x.grad == pytest.approx(24.0 + math.cos(1.5))


def test_a_leafs_hook_runs_before_accumulation_into_grad():
    x = Tensor(1.0, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(float(g)) or g * 2)
    (3 * x).backward()
    (3 * x).backward()
    assert seen == [3.0, 3.0]           # the new gradient, never the accumulated one
    assert x.grad == pytest.approx(12.0)


def test_a_non_leafs_hook_gets_its_complete_adjoint_and_what_it_returns_flows_back():
    x = Tensor(2.0, requires_grad=True)
    a = x * 10                            # a = 20, used twice: ā = 2a + 1 = 41, summed before the hook
    seen = []
    a.register_hook(lambda g: seen.append(float(g)) or np.clip(g, -1.0, 1.0))   # clipping
    (a * a + a).backward()
    assert seen == [41.0]
    assert x.grad == pytest.approx(10.0)  # the clipped 1, times da/dx = 10


def test_hooks_chain_in_order_none_keeps_and_remove_takes_one_off():
    x = Tensor(1.0, requires_grad=True)
    calls = []
    h1 = x.register_hook(lambda g: calls.append(("plus", float(g))) or g + 1)
    x.register_hook(lambda g: calls.append(("keep", float(g))))          # returns None: keeps
    x.register_hook(lambda g: calls.append(("times", float(g))) or g * 10)
    (2 * x).backward()
    assert calls == [("plus", 2.0), ("keep", 3.0), ("times", 3.0)]
    assert x.grad == pytest.approx(30.0)
    h1.remove()
    h1.remove()                                                            # twice: harmless
    x.zero_grad()
    (2 * x).backward()
    assert x.grad == pytest.approx(20.0)


def test_the_outputs_hook_gets_the_seed_and_retain_grad_shows_the_hooked_adjoint():
    x = Tensor(1.0, requires_grad=True)
    b = x * 2
    b.retain_grad()
    b.register_hook(lambda g: g * 10)
    y = b * b                                  # ȳ = 1 -> 5 by y's hook; b̄ = 2b·5 = 20 -> 200
    y.register_hook(lambda g: g * 5)
    y.backward()
    assert b.grad == pytest.approx(200.0)
    assert x.grad == pytest.approx(400.0)


def test_register_hook_refuses_a_tensor_without_grad_a_non_function_and_a_wrong_shape():
    with pytest.raises(RuntimeError, match="doesn't require grad") as info:
        Tensor(1.0).register_hook(lambda g: g)
    assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match="must be a function"):
        Tensor(1.0, requires_grad=True).register_hook(3)
    x = Tensor(np.ones(2), requires_grad=True)
    x.register_hook(lambda g: g[:1])
    with pytest.raises(RuntimeError, match=r"shape \(1,\).*shape \(2,\)"):
        (x * 2).sum().backward()


def test_grad_honours_hooks_of_tensors_recorded_inside_f_as_torch_autograd_grad():
    def f(x):
        a = x * x
        a.register_hook(lambda g: g * 3)
        return a + x                          # d/dx = 3 * 2x + 1

    assert ad.grad(f)(2.0) == pytest.approx(13.0)
    # forward mode has no hooks (as in PyTorch): jvp is the plain derivative 2x + 1
    assert float(ad.jvp(f, (2.0,), (1.0,))[1]) == pytest.approx(5.0)


def test_under_create_graph_the_hook_gets_a_tensor_and_its_ops_are_differentiated():
    x = Tensor(2.0, requires_grad=True)
    kinds = []
    handle = x.register_hook(lambda g: kinds.append(type(g)) or g * x)   # x̄ -> x̄ x: 3x^2 · x = 3x^3
    (x ** 3).backward(create_graph=True)
    assert kinds == [Tensor]
    g = x.grad
    assert float(g.value) == pytest.approx(24.0)
    handle.remove()
    x.zero_grad()
    g.backward()                                                 # d(3x^3)/dx = 9x^2 = 36
    assert x.grad == pytest.approx(36.0)


def test_gradcheck_sees_the_hook():
    def f(x):
        a = ad.sin(x)
        if isinstance(a, Tensor) and a.requires_grad:      # gradcheck's differences call f on plain arrays
            a.register_hook(lambda g: g * 2)
        return a

    with pytest.raises(ad.GradcheckError):
        ad.gradcheck(f, np.array([0.3, 0.7]))


def test_the_trace_table_and_the_player_show_the_hooked_adjoint():
    x = Tensor(0.5, requires_grad=True, name="x")
    a = ad.sin(x)
    a.register_hook(lambda g: g * 2)
    y = a * x                               # ā = x ȳ = 0.5 -> 1 by the hook; x̄ = cos(x) ā + a ȳ
    rows = {r["node"]: r for r in ad.trace_table(y, mode="reverse").rows}
    assert rows["a"]["adjoint"] == "1" and rows["a"]["rule"] == "a\u0304 = hook(x·y\u0304)"
    assert float(rows["x"]["adjoint"]) == pytest.approx(math.cos(0.5) + math.sin(0.5), rel=1e-5)
    steps = {s.node: s for s in ad.draw_steps(y).steps}
    assert steps["a"].value == "1" and "after the hook: 1" in steps["a"].terms


def test_a_hook_inside_a_compiled_function_is_compiled_with_it():
    def f(x):
        a = ad.sin(x)
        a.register_hook(lambda g: g * 2)
        return (a * x).sum()

    x = np.array([0.5, 1.0])
    expected = 2 * np.cos(x) * x + np.sin(x)
    np.testing.assert_allclose(ad.grad(f)(x), expected)
    compiled = ad.compile(f, x)
    _, gradient = compiled(x)
    np.testing.assert_allclose(gradient, expected)
    assert "2" in compiled.source          # the hook's g * 2, recorded and written out


# --- register_hook against PyTorch ---------------------------------------------------------------

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _pair(torch, value):
    return Tensor(np.array(value), requires_grad=True), torch.tensor(value, dtype=torch.float64, requires_grad=True)


SCENARIOS = {
    # name: builder(lib, x, w, hooked) -> output; `hooked(t, fn)` registers fn on t in either library
    "double an intermediate": lambda m, x, w, h: (h(x * w, lambda g: g * 2) ** 2 + m.sin(x)).sum(),
    "clip a fan-out node": lambda m, x, w, h: (lambda a: (a * a + a * w).sum())(h(x * 3, lambda g: g.clip(-1, 1))),
    "scale a leaf": lambda m, x, w, h: (m.sin(h(x, lambda g: g * -0.5)) * w).sum(),
    "hook the output": lambda m, x, w, h: h((x * w).sum(), lambda g: g * 7),
    "two hooks chained": lambda m, x, w, h: (h(h(x * w, lambda g: g + 1), lambda g: g * 3) * x).sum(),
}


def _hooked(t, fn):
    t.register_hook(fn)
    return t


class _Lib:
    def __init__(self, sin):
        self.sin = sin


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_register_hook_matches_pytorch(torch, name):
    build = SCENARIOS[name]
    xv, wv = [0.3, -1.2, 2.0], [1.5, 0.5, -0.7]
    x, tx = _pair(torch, xv)
    w, tw = _pair(torch, wv)
    build(_Lib(ad.sin), x, w, _hooked).backward()
    build(_Lib(torch.sin), tx, tw, _hooked).backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_retain_grad_leaf_accumulation_and_autograd_grad_match_pytorch(torch):
    results = []
    for lib, T in ((ad, lambda v: Tensor(v, requires_grad=True)),
                   (torch, lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True))):
        a = T(1.0)
        a.register_hook(lambda g: g * 3)      # a leaf: before accumulation
        b = a * 2
        b.retain_grad()
        b.register_hook(lambda g: g * 10)
        (b * b).backward()
        (a * 5).backward()                    # accumulates: 3*5 on top
        results.append((float(a.grad), float(b.grad)))
    assert results[0] == pytest.approx(results[1])

    def f_ad(x):
        a = x * x
        a.register_hook(lambda g: g * 3)
        return a + x

    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    a = x * x
    a.register_hook(lambda g: g * 3)
    (expected,) = torch.autograd.grad(a + x, x)
    assert ad.grad(f_ad)(2.0) == pytest.approx(float(expected))


def test_register_hook_refusals_match_pytorchs(torch):
    with pytest.raises(RuntimeError, match="register a hook on a tensor that doesn't require grad"):
        torch.tensor(1.0).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="(?i)register a hook on a tensor that doesn't require grad"):
        Tensor(1.0).register_hook(lambda g: g)


# --- enable_grad, set_grad_enabled, requires_grad_ ------------------------------------------------

def test_enable_grad_records_inside_no_grad_as_a_block_and_as_a_decorator():
    x = Tensor(2.0, requires_grad=True)

    @ad.enable_grad()
    def square(v):
        return v * v

    with ad.no_grad():
        with ad.enable_grad():
            assert ad.is_grad_enabled()
            y = x * x
        assert not ad.is_grad_enabled()
        z = square(x)
        assert not ad.is_grad_enabled()
    assert y.requires_grad and z.requires_grad
    y.backward()
    assert x.grad == pytest.approx(4.0)


def test_set_grad_enabled_switches_at_once_as_a_block_and_as_a_decorator():
    x = Tensor(1.0, requires_grad=True)
    try:
        ad.set_grad_enabled(False)
        assert not (x * 2).requires_grad
    finally:
        ad.set_grad_enabled(True)
    with ad.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ad.is_grad_enabled()

    @ad.set_grad_enabled(False)
    def f(v):
        return v * 2

    assert ad.is_grad_enabled()        # decorating switched nothing
    assert not f(x).requires_grad
    assert ad.is_grad_enabled()
    with pytest.raises(TypeError, match="mode must be True or False"):
        ad.set_grad_enabled("no")


def test_grad_mode_is_restored_when_the_block_raises():
    with pytest.raises(ValueError):
        with ad.no_grad():
            with ad.enable_grad():
                raise ValueError
    assert ad.is_grad_enabled()


def test_requires_grad_in_place_returns_self_and_refuses_as_pytorch():
    w = Tensor([1.0, 2.0])
    assert w.requires_grad_() is w and w.requires_grad
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad, [2.0, 4.0])
    assert w.requires_grad_(False) is w and not w.requires_grad
    with pytest.raises(RuntimeError, match="requires_grad=True needs a floating-point dtype, got int64") as info:
        Tensor(np.array([1, 2])).requires_grad_()
    assert "\n" not in str(info.value)
    y = Tensor(1.0, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="requires_grad=False is refused on a recorded result"):
        y.requires_grad_(False)
    assert y.requires_grad_(True) is y
    with pytest.raises(TypeError, match="requires_grad must be True or False"):
        w.requires_grad_("yes")


# --- stop_gradient ----------------------------------------------------------------------------

def test_stop_gradient_keeps_the_value_and_has_zero_derivative_in_every_mode():
    x = np.array([0.5, -1.0, 2.0])

    def f(v):
        return (v * ad.stop_gradient(v)).sum()     # d/dv (v c) = c = v's value

    np.testing.assert_array_equal(ad.stop_gradient(x), x)
    np.testing.assert_allclose(ad.grad(f)(x), x)
    np.testing.assert_allclose(ad.jvp(f, (x,), (np.ones(3),))[1], x.sum())
    np.testing.assert_allclose(ad.hessian(f)(x), np.zeros((3, 3)))   # the gradient is stop_gradient(v): flat
    t = Tensor(x, requires_grad=True)
    s = ad.stop_gradient(t)
    assert s.requires_grad and s.op.name == "stop_gradient"     # recorded, unlike detach()
    s.sum().backward()
    np.testing.assert_array_equal(t.grad, np.zeros(3))
    assert "stop_gradient(x)" in ad.graph_code(ad.stop_gradient(Tensor(1.0, requires_grad=True, name="x")) * 2)


def test_stop_gradient_compiles_and_is_fused():
    def f(v):
        return (ad.sin(v) * ad.stop_gradient(v * v)).sum()

    x = np.array([0.3, 1.1])
    compiled = ad.compile(f, x)
    np.testing.assert_allclose(compiled(x)[1], np.cos(x) * x * x)


def test_stop_gradient_matches_jax_semantics_against_pytorchs_detach(torch):
    xv = np.array([0.5, -1.0, 2.0])
    tx = torch.tensor(xv, requires_grad=True)
    (torch.sin(tx) * tx.detach() ** 2).sum().backward()
    np.testing.assert_allclose(ad.grad(lambda v: (ad.sin(v) * ad.stop_gradient(v) ** 2).sum())(xv),
                               tx.grad.numpy(), rtol=1e-12)


def test_stop_gradient_under_vmap_runs_once_for_the_whole_batch(recwarn):
    xs = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(ad.vmap(ad.grad(lambda v: (v * ad.stop_gradient(v)).sum()))(xs), xs)
    assert not [w for w in recwarn if "batching rule" in str(w.message)]
