"""detect_anomaly: the first NaN or infinity, forward or reverse, named by op, node (eq. 5.38) and the
user's line, with the inputs and the safe rewrite; nn.fit(detect_anomaly=True). PyTorch, where it is
importable (an optional oracle), stops its backward at the same op."""
import inspect

import numpy as np
import pytest

import autodiff as ad
import nn
from autodiff import AnomalyError, Tensor, anomaly
from autodiff import tensor as _tensor

HERE = __file__.rsplit("/", 1)[-1]


def _line_of(text, func):
    """The line number in this file of the line of ``func``'s source that holds ``text``."""
    lines, first = inspect.getsourcelines(func)
    return first + next(k for k, line in enumerate(lines) if text in line)


def _raised(f):
    with pytest.raises(AnomalyError) as info:
        with ad.detect_anomaly():
            f()
    return info.value


def test_sqrt_at_zero_stops_the_reverse_sweep_naming_op_node_line_inputs_and_rewrite():
    def run():
        x = Tensor(np.array([0.0, 4.0]), requires_grad=True, name="x")
        y = ad.sqrt(x)                                  # the recording line
        (y * 3).sum().backward()

    with np.errstate(divide="ignore"):
        e = _raised(run)
    head, *rest = str(e).splitlines()
    assert (e.phase, e.op, e.node) == ("reverse", "sqrt", "a")
    assert head.startswith("reverse sweep: sqrt rule returned inf as the cotangent of input 0 (x) at node a = sqrt(x)")
    assert f"{HERE}:{_line_of('the recording line', run)} in run" in head and "y = ad.sqrt(x)" in head
    assert e.line.endswith("`y = ad.sqrt(x)                                  # the recording line`")
    assert "  x = [0., 4.]" in rest and "  adjoint in (a\u0304) = [3., 3.]" in rest
    assert any(r.startswith("  safe rewrite: ") and "ad.sqrt(x + eps)" in r for r in rest)


def test_log_at_zero_stops_the_forward_at_the_first_non_finite_op():
    reached = []

    def run():
        x = Tensor(np.array([1.0, 0.0]), requires_grad=True, name="x")
        a = x * 2
        b = ad.log(a)
        reached.append(b)                                # never: the forward stopped at log

    with np.errstate(divide="ignore"):
        e = _raised(run)
    assert (e.phase, e.op, e.node) == ("forward", "log", "b") and reached == []
    head = str(e).splitlines()[0]
    assert head.startswith("forward sweep: log returned -inf at node b = log(a) (recorded at ")
    assert f"{HERE}:{_line_of('b = ad.log(a)', run)} in run" in head
    assert "  a = [2., 0.]" in str(e) and "ad.log(x + eps)" in str(e)


def test_division_by_zero_has_its_rewrite():
    def run():
        x = Tensor(np.array([1.0, 2.0]), requires_grad=True, name="x")
        return 1.0 / (x - 1.0)

    with np.errstate(divide="ignore"):
        e = _raised(run)
    assert e.op == "div" and "division by 0" in str(e) and "ad.where(b != 0, b, 1.0)" in str(e)


def test_the_where_nan_trap_is_named_with_its_safe_rewrite():
    def f(x):
        return ad.where(x > 0, ad.sqrt(x), 0.0).sum()   # forward fine at 0, gradient 0 * inf = nan

    x = np.array([0.0, 1.0])
    with np.errstate(all="ignore"):
        assert np.isnan(ad.grad(f)(x)[0])                # the trap, silently, without anomaly mode
        e = _raised(lambda: ad.grad(f)(x))
    assert (e.phase, e.op) == ("reverse", "sqrt") and "returned nan" in str(e).splitlines()[0]
    assert "where NaN trap" in str(e) and "where(c, f(where(c, x, 1.0)), y)" in str(e)

    def safe(x):
        return ad.where(x > 0, ad.sqrt(ad.where(x > 0, x, 1.0)), 0.0).sum()

    with ad.detect_anomaly():
        np.testing.assert_allclose(ad.grad(safe)(x), [0.0, 0.5])


def test_a_second_derivative_is_checked_in_the_reverse_sweep_not_as_a_forward_op():
    with np.errstate(all="ignore"):
        e = _raised(lambda: ad.grad(ad.grad(ad.sqrt))(0.0))
    assert (e.phase, e.op) == ("reverse", "sqrt")


def test_large_inputs_are_abbreviated_and_counted():
    def run():
        x = Tensor(np.linspace(1.0, 2.0, 1000), requires_grad=True)
        return ad.log(x - 1.0)

    with np.errstate(divide="ignore"):
        e = _raised(run)
    assert "(1 of 1000 not finite)" in str(e) and "..." in str(e) and len(str(e)) < 1000


def test_exp_overflow_and_every_rewrite_is_keyed_by_a_declared_primitive():
    def run():
        return ad.exp(Tensor(np.array([1.0, 800.0]), requires_grad=True))

    with np.errstate(over="ignore"):
        e = _raised(run)
    assert e.op == "exp" and "logsumexp" in str(e)
    assert set(anomaly.REWRITES) <= set(ad.REGISTRY)


def test_outside_anomaly_mode_nothing_is_checked_or_captured():
    assert _tensor._anomaly is None and not ad.is_anomaly_enabled()
    before = len(anomaly._recorded)
    x = Tensor(np.array([0.0]), requires_grad=True)
    with np.errstate(all="ignore"):
        ad.sqrt(x).sum().backward()
        ad.log(x)
    assert np.isinf(x.grad[0]) and len(anomaly._recorded) == before


def test_a_decorator_nesting_and_an_exception_restore_the_mode():
    @ad.detect_anomaly()
    def inside():
        return ad.is_anomaly_enabled()

    assert inside() and not ad.is_anomaly_enabled()
    with ad.detect_anomaly():
        with ad.detect_anomaly(check_nan=False):
            x = Tensor(0.0, requires_grad=True)
            with np.errstate(all="ignore"):
                ad.sqrt(x).backward()                    # check_nan=False: only where nodes were recorded
        assert ad.is_anomaly_enabled()
    assert not ad.is_anomaly_enabled()
    with pytest.raises(AnomalyError):
        with ad.detect_anomaly(), np.errstate(all="ignore"):
            ad.log(Tensor(0.0, requires_grad=True))
    assert _tensor._anomaly is None
    with pytest.raises(TypeError, match="check_nan must be True or False"):
        ad.detect_anomaly(check_nan="yes")


def test_an_unrecorded_result_is_checked_too_and_said_to_be_unrecorded():
    with np.errstate(divide="ignore"):
        e = _raised(lambda: ad.log(Tensor(np.array([0.0, 1.0]))))
    assert e.node is None and "an unrecorded result" in str(e).splitlines()[0] and HERE in str(e).splitlines()[0]


def test_vmaps_batched_path_is_checked():
    with np.errstate(divide="ignore"):
        e = _raised(lambda: ad.vmap(lambda v: ad.log(v * 2.0))(np.array([1.0, 0.0, 3.0])))
    assert e.op == "log" and e.phase == "forward"


# --- nn.fit --------------------------------------------------------------------------------------

def _model():
    nn.set_seed(0)
    model = nn.Sequential(nn.Dense(8, activation="relu", input_shape=(4,)), nn.Dense(2, activation="softmax"))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_fit_with_detect_anomaly_raises_at_the_first_anomaly_instead_of_skipping_the_batch():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype(np.float32), rng.integers(0, 2, 16)
    x[9] = np.nan
    with pytest.raises(AnomalyError, match="^forward sweep: ") as info, np.errstate(all="ignore"):
        nn.fit(_model(), (x, y), loss="sparse_categorical_crossentropy", batch_size=4, shuffle=False, verbose=0,
               detect_anomaly=True)
    assert info.value.op == "dense" and "(4 of 16 not finite)" in str(info.value)     # the batch with x[9]
    assert "nn/functional.py" in info.value.line and not ad.is_anomaly_enabled()    # the first frame outside autodiff
    x[9] = 0.0
    h = nn.fit(_model(), (x, y), loss="sparse_categorical_crossentropy", batch_size=4, verbose=0, detect_anomaly=True)
    assert np.isfinite(h.history["loss"][0])
    with pytest.raises(TypeError, match="fit: detect_anomaly must be True or False, got 'yes'"):
        nn.fit(_model(), (x, y), detect_anomaly="yes", verbose=0)


# --- against PyTorch -----------------------------------------------------------------------------

def test_pytorch_stops_its_backward_at_the_same_op(recwarn):
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="SqrtBackward0' returned nan values"):
        with torch.autograd.detect_anomaly():
            torch.where(x > 0, torch.sqrt(x), 0.0).sum().backward()
    with np.errstate(all="ignore"):
        e = _raised(lambda: ad.grad(lambda v: ad.where(v > 0, ad.sqrt(v), 0.0).sum())(np.array([0.0, 1.0])))
    assert e.op == "sqrt" and "returned nan" in str(e)
