"""The public API's fuzzing (issue 27), continued: nn's layers, losses, optimisers and fit, kernels' option
objects, save and load; the hostile values, the rule and the autodiff half: tests/test_public_api_fuzz.py
and tests/_hostile.py."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import autodiff as ad
import kernels
import nn
import nn.functional as F
from _hostile import (  # tests/_hostile.py
    EXPECTED, SETTINGS, X23, Silent, _raise, _tensorable, also, arrays, booleans, clean_int, clean_pair, clean_real,
    close, numbers, outcome, real_array, wrong_types)

pytestmark = pytest.mark.filterwarnings("ignore")

# --- nn -------------------------------------------------------------------------------------------

def _dense_model(units=2):
    return nn.Sequential([nn.Input((3,)), nn.Dense(units)])


@settings(SETTINGS)
@given(v=also(1, 2, 5))
def test_dense_units(v):
    def oracle(model):
        n = clean_int(v, 1)
        assert model.layers[-1].weight.shape == (3, n)
        close(nn.predict(model, X23.astype(np.float32)),
              X23 @ model.layers[-1].weight.value + model.layers[-1].bias.value, rtol=1e-5)
    outcome(f"nn.Dense({v!r})", lambda: nn.Sequential([nn.Input((3,)), nn.Dense(v)]), ["units", "weight"], oracle)


_IMAGE = np.random.default_rng(0).standard_normal((2, 2, 6, 6)).astype(np.float32)


def _conv(**kwargs):
    """A Conv2D layer over a (2, 6, 6) input, built, and its output on _IMAGE: (model, y)."""
    model = nn.Sequential([nn.Input((2, 6, 6)), nn.Conv2D(**kwargs)])
    return model, nn.predict(model, _IMAGE)


def _conv_oracle(result, filters, kernel, stride=(1, 1), padding=(0, 0)):
    """The layer's output shape and values against the NumPy reference convolution with its own weights."""
    model, y = result
    conv = model.layers[-1]
    w, b = conv.weight.value, conv.bias.value
    want = kernels.conv2d_forward(_IMAGE, w, b, stride=stride, padding=padding, backend="numpy")
    assert w.shape == (filters, 2, *kernel)
    close(y, want, rtol=1e-4, atol=1e-5)


@settings(SETTINGS)
@given(v=also(1, 3))
def test_conv2d_filters(v):
    outcome(f"nn.Conv2D({v!r}, 3)", lambda: _conv(filters=v, kernel_size=3),
            ["filters", "weight"], lambda layer: _conv_oracle(layer, clean_int(v, 1), (3, 3)))


@settings(SETTINGS)
@given(v=also(1, 3, (3, 2), (1, 1)))
def test_conv2d_kernel_size(v):
    def oracle(layer):
        kernel = clean_pair(v, 1)
        if max(kernel) > 6:
            raise Silent(f"kernel {kernel} larger than the 6x6 input")
        _conv_oracle(layer, 2, kernel)
    outcome(f"nn.Conv2D(2, {v!r})", lambda: _conv(filters=2, kernel_size=v), ["kernel", "weight"], oracle)


@settings(SETTINGS)
@given(v=also(1, 2, (2, 1)))
def test_conv2d_stride(v):
    outcome(f"nn.Conv2D(2, 3, stride={v!r})", lambda: _conv(filters=2, kernel_size=3, stride=v), ["stride"],
            lambda layer: _conv_oracle(layer, 2, (3, 3), stride=clean_pair(v, 1)))


@settings(SETTINGS)
@given(v=also(0, 1, (1, 0), "same", "valid"))
def test_conv2d_padding(v):
    def oracle(layer):
        pad = {"same": (1, 1), "valid": (0, 0)}[v] if isinstance(v, str) and v in ("same", "valid") else \
            clean_pair(v, 0)
        _conv_oracle(layer, 2, (3, 3), padding=pad)
    outcome(f"nn.Conv2D(2, 3, padding={v!r})", lambda: _conv(filters=2, kernel_size=3, padding=v),
            ["padding", "memory"], oracle)


@settings(SETTINGS)
@given(v=also(1, 2, 3, (2, 3)))
def test_max_pool2d_pool_size(v):
    def oracle(y):
        k = clean_pair(v, 1)
        if max(k) > 6:
            raise Silent(f"pool {k} larger than the input")
        want, _ = kernels.max_pool2d_forward(_IMAGE, k, backend="numpy")
        close(y, want)
    outcome(f"nn.MaxPool2D({v!r})", lambda: nn.predict(nn.Sequential([nn.Input((2, 6, 6)), nn.MaxPool2D(v)]), _IMAGE),
            ["pool_size", "kernel_size", "kh", "kw"], oracle)


def _batchnorm_oracle(momentum, eps):
    def oracle(layer):
        m, e = clean_real(momentum, 0.0, 1.0), clean_real(eps)
        if not e > 0:
            raise Silent(f"eps={eps!r}")
        model = nn.Sequential([nn.Input((3,)), layer])
        model.train()
        y = model(ad.Tensor(X23))
        x = X23
        close(y, (x - x.mean(0)) / np.sqrt(x.var(0) + e), rtol=1e-4, atol=1e-5)
        close(model.layers[-1].running_mean, m * x.mean(0), rtol=1e-4, atol=1e-6)
    return oracle


@settings(SETTINGS)
@given(v=also(1e-5, 1e-3, 0.5))
def test_batchnorm_eps(v):
    outcome(f"nn.BatchNorm(eps={v!r})", lambda: nn.BatchNorm(eps=v), ["eps"], _batchnorm_oracle(0.1, v))


@settings(SETTINGS)
@given(v=also(0.1, 0.0, 1.0, 0.9))
def test_batchnorm_momentum(v):
    outcome(f"nn.BatchNorm(momentum={v!r})", lambda: nn.BatchNorm(momentum=v), ["momentum"],
            _batchnorm_oracle(v, 1e-5))


@settings(SETTINGS)
@given(v=also(0.0, 0.5, 1.0))
def test_dropout_rate(v):
    def oracle(layer):
        rate = clean_real(v, 0.0, 1.0)
        model = nn.Sequential([nn.Input((3,)), layer])
        close(nn.predict(model, X23.astype(np.float32)), X23, rtol=1e-6)     # the identity in evaluation
        model.train()
        y = model(ad.Tensor(np.ones((200, 3)))).value
        kept = y != 0
        if rate < 1:
            close(y[kept], 1 / (1 - rate))                                      # inverted dropout's scale
        assert rate == 1 and not kept.any() or rate == 0 and kept.all() or 0 < rate < 1
    outcome(f"nn.Dropout({v!r})", lambda: nn.Dropout(v), ["rate"], oracle)


def _close32(w, want):
    """w (float32) against the float64 formula: equal to float32 round-off, and infinite where it overflows."""
    want32 = want.astype(np.float32)
    finite = np.isfinite(want32)
    assert np.array_equal(np.isfinite(w), finite), (w, want)
    close(w[finite], want[finite], rtol=1e-5, atol=1e-6)


def _one_step(optimizer_type, **hyper):
    w = nn.Parameter(np.array([1.0, -2.0], np.float32))
    opt = optimizer_type([w], **hyper)
    w.grad = np.array([0.5, 0.25], np.float32)
    opt.step()
    return w.value.copy()


@pytest.mark.parametrize("option", ["lr", "momentum", "weight_decay"])
@settings(SETTINGS)
@given(v=also(0.1, 0.0, 0.9))
def test_sgd_hyper(option, v):
    def oracle(w):
        value = clean_real(v, 0.0)
        hyper = {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, option: value}
        g = np.array([0.5, 0.25]) + hyper["weight_decay"] * np.array([1.0, -2.0])
        _close32(w, np.array([1.0, -2.0]) - hyper["lr"] * g)     # the first step: momentum's buffer is g
    kwargs = {"lr": 0.1, option: v}
    outcome(f"nn.optim.SGD(params, {option}={v!r}).step()", lambda: _one_step(nn.optim.SGD, **kwargs), [option],
            oracle)


@pytest.mark.parametrize("option", ["lr", "betas", "eps"])
@settings(SETTINGS)
@given(v=also(1e-3, (0.9, 0.999), 1e-8, (0.5, 0.5)))
def test_adam_hyper(option, v):
    def oracle(w):
        hyper = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}
        if option == "betas":
            if not isinstance(v, (tuple, list)) or len(v) != 2:
                raise Silent(f"betas={v!r}")
            hyper["betas"] = tuple(clean_real(b, 0.0, 1.0) for b in v)
            if max(hyper["betas"]) >= 1:
                raise Silent(f"betas={v!r}")
        else:
            hyper[option] = clean_real(v, 0.0)
        g = np.array([0.5, 0.25])
        (b1, b2), lr, eps = hyper["betas"], hyper["lr"], hyper["eps"]
        m, s = (1 - b1) * g / (1 - b1), (1 - b2) * g * g / (1 - b2)      # bias-corrected first moments
        _close32(w, np.array([1.0, -2.0]) - lr * m / (np.sqrt(s) + eps))
    outcome(f"nn.optim.Adam(params, {option}={v!r}).step()", lambda: _one_step(nn.optim.Adam, **{option: v}),
            [option], oracle)


_XS = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
_YS = np.array([0, 1, 0, 1, 1, 0])


@pytest.mark.parametrize("option", ["epochs", "batch_size"])
@settings(SETTINGS)
@given(v=also(1, 2, 4))
def test_fit_counts(option, v):
    def oracle(history):
        if option == "batch_size" and v is None:      # Keras's 32
            return
        n = clean_int(v, 0 if option == "epochs" else 1)     # epochs=0 trains nothing, as Keras
        assert len(history.history.get("loss", [])) == (n if option == "epochs" else 1)
        assert all(np.isfinite(history.history.get("loss", [])))
    kwargs = {"epochs": 1, "batch_size": 4, option: v}
    assume(not _too_long(option, v))
    outcome(f"nn.fit(model, data, {option}={v!r})", lambda: nn.fit(_dense_model(), (_XS, _YS), verbose=0, **kwargs),
            [option], oracle)


def _too_long(option, v):
    """A valid but large epoch count runs as long as asked: not a careless-input case."""
    return option == "epochs" and isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 8


@settings(SETTINGS)
@given(v=also(_XS, _XS.astype(np.float64)))
def test_fit_x(v):

    def oracle(history):
        x = real_array(v)
        if x.shape != (6, 3) or not np.all(np.isfinite(x)):
            raise Silent(f"x of shape {x.shape}")
        assert np.isfinite(history.history["loss"]).all()
    outcome(f"nn.fit(model, ({v!r}, y))", lambda: nn.fit(_dense_model(), (v, _YS), verbose=0, epochs=1),
            ["x", "data"], oracle)


_LOGITS = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])


def _sce(labels, logits=_LOGITS):
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(2), labels].mean()


@settings(SETTINGS)
@given(v=also(np.array([0, 2]), [1, 1], np.array([[0], [2]])))
def test_softmax_cross_entropy_labels(v):

    def oracle(loss):
        labels = np.asarray(v)
        if labels.shape == (2, 3) and labels.dtype.kind in "biuf":      # targets per class (one-hot or soft)
            z = _LOGITS - _LOGITS.max(1, keepdims=True)
            close(loss, -(labels * (z - np.log(np.exp(z).sum(1, keepdims=True)))).sum(1).mean())
            return
        if labels.dtype.kind not in "iu" or labels.size != 2 or labels.min() < 0 or labels.max() > 2:
            raise Silent(f"labels {v!r}")
        close(loss, _sce(labels.ravel()))
    outcome(f"F.softmax_cross_entropy(logits, {v!r})",
            lambda: F.softmax_cross_entropy(ad.Tensor(_LOGITS), v), ["labels"], oracle)


@settings(SETTINGS)
@given(v=also(_LOGITS, _LOGITS.astype(np.float32)))
def test_softmax_cross_entropy_logits(v):
    def oracle(loss):
        logits = real_array(v)
        if logits.shape != (2, 3):
            raise Silent(f"logits {v!r}")
        close(loss, _sce(np.array([0, 2]), logits))
    outcome(f"F.softmax_cross_entropy({v!r}, labels)",
            lambda: F.softmax_cross_entropy(ad.Tensor(v) if _tensorable(v) else v, np.array([0, 2])),
            ["logits", "Tensor value", "of the input", "labels"], oracle)




@settings(SETTINGS)
@given(v=also(np.zeros((2, 3)), np.ones((2, 3), np.float32)))
def test_mse_target(v):
    pred = np.arange(6.0).reshape(2, 3) / 5

    def oracle(loss):
        target = real_array(v)
        if target.shape not in ((2, 3), (), (1,), (3,), (1, 3), (2, 1)):
            raise Silent(f"target of shape {target.shape}")     # () ... broadcast against (2, 3)
        close(loss, np.mean((pred - target) ** 2), rtol=1e-6)
    outcome(f"F.mse(prediction, {v!r})", lambda: F.mse(ad.Tensor(pred), v), ["target"], oracle)


# --- kernels' options -----------------------------------------------------------------------------

@pytest.mark.parametrize("option,low", [("stride", 1), ("padding", 0), ("dilation", 1)])
@settings(SETTINGS)
@given(v=also(1, 2, (2, 1), (0, 3)))
def test_conv_geometry_pair(option, low, v):
    def oracle(geometry):
        assert getattr(geometry, option) == clean_pair(v, low)
    outcome(f"kernels.ConvGeometry({option}={v!r})", lambda: kernels.ConvGeometry(**{option: v}), [option], oracle)


@settings(SETTINGS)
@given(v=also(1, 2, 4))
def test_conv_geometry_groups(v):
    outcome(f"kernels.ConvGeometry(groups={v!r})", lambda: kernels.ConvGeometry(groups=v), ["groups"],
            lambda geometry: geometry.groups == clean_int(v, 1) or _raise("groups differ"))


@pytest.mark.parametrize("option,low", [("kernel_size", 1), ("stride", 1), ("padding", 0)])
@settings(SETTINGS)
@given(v=also(1, 2, (2, 1)))
def test_pool_geometry(option, low, v):
    def oracle(geometry):
        want = (3, 3) if option == "stride" and v is None else clean_pair(v, low)
        if option == "padding" and max(want) > 1:
            raise Silent(f"padding {want} over kernel_size // 2 = 1")
        assert getattr(geometry, option) == want
    kwargs = {"kernel_size": 3, option: v}
    outcome(f"kernels.PoolGeometry({kwargs})", lambda: kernels.PoolGeometry(**kwargs), [option], oracle)


@pytest.mark.parametrize("option", ["lr", "momentum"])
@settings(SETTINGS)
@given(v=also(0.1, 0.0, 0.5))
def test_sgd_hyper_object(option, v):
    def oracle(hyper):
        assert getattr(hyper, option) == clean_real(v, 0.0)
    kwargs = {"lr": 0.1, option: v}
    outcome(f"kernels.SGDHyper({kwargs})", lambda: kernels.SGDHyper(**kwargs), [option], oracle)


# --- save and load --------------------------------------------------------------------------------

_PATH_VALUES = st.one_of(wrong_types.filter(lambda v: not isinstance(v, str)), numbers, booleans, arrays,
                         st.sampled_from(["m", "sub/m", "no/such/folder/m", "m.keras", "m.pt", "", ".", "m\x00",
                                          "dir-is-here", "m.safetensors", "garbage", "empty", "x" * 300]))


def _place(tmp_path, v):
    """A string from the strategy is made a path inside tmp_path (never the working directory); other
    values go through as they are. "dir-is-here" names a folder, "garbage" and "empty" files that are no model."""
    if not isinstance(v, str):
        return v
    (tmp_path / "dir-is-here").mkdir(exist_ok=True)
    (tmp_path / "garbage").write_bytes(b"\x00\x01not a model" * 10)
    (tmp_path / "empty").write_bytes(b"")
    return str(tmp_path / v) if v else str(tmp_path) + "/"


@settings(SETTINGS)
@given(v=_PATH_VALUES)
def test_save_path(tmp_path_factory, v):
    tmp = tmp_path_factory.mktemp("save")
    path = _place(tmp, v)
    model = _dense_model()

    def oracle(written):
        if not isinstance(path, str):
            raise Silent(f"path={path!r}")
        back = nn.load(written)
        for (name, p), (_, q) in zip(model.named_parameters(), back.named_parameters()):
            close(q.value, p.value)
    outcome(f"nn.save(model, {path!r})", lambda: nn.save(model, path),
            ["path", str(path)[:40], "suffix"], oracle, expected=EXPECTED + (OSError,))


@settings(SETTINGS)
@given(v=_PATH_VALUES)
def test_load_path(tmp_path_factory, v):
    tmp = tmp_path_factory.mktemp("load")
    saved = nn.save(_dense_model(), str(tmp / "m"))
    path = _place(tmp, v)

    def oracle(model):
        if path not in (saved, str(tmp / "m")):
            raise Silent(f"a model loaded from {path!r}")
    outcome(f"nn.load({path!r})", lambda: nn.load(path), ["path", str(path).rstrip("/")[:40]], oracle,
            expected=EXPECTED + (OSError,))     # the OS refusing a path (too long...), naming it


@settings(SETTINGS)
@given(v=also(2 ** 31, 0, 100))
def test_load_max_bytes(tmp_path_factory, v):
    tmp = tmp_path_factory.mktemp("load")
    saved = nn.save(_dense_model(), str(tmp / "m"))

    def oracle(model):
        n = clean_int(v, 0)
        if n < 100 or isinstance(v, (bool, np.bool_)):
            raise Silent(f"max_bytes={v!r} let a model of 8 values in")
    outcome(f"nn.load(path, max_bytes={v!r})", lambda: nn.load(saved, max_bytes=v), ["max_bytes"], oracle)


# --- defects the fuzzing found, fixed: each its reproducer ---------------------------------------------

FIXED = {   # found by the fuzzing and fixed: each now one line naming the argument
    "softmax_cross_entropy of logits with no class": (
        lambda: F.softmax_cross_entropy(ad.Tensor(np.zeros((2, 0))), np.array([0, 1])), "logits"),
    "flip of axis=object()": (lambda: ad.flip(ad.Tensor(X23), axis=object()), "axis"),
    "flip of axis={'a': 1}": (lambda: ad.flip(ad.Tensor(X23), axis={"a": 1}), "axis"),
    "flip of axis=(-1, 1), one axis twice": (lambda: ad.flip(ad.Tensor(X23), axis=(-1, 1)), "axis"),
    "flip of axis=''": (lambda: ad.flip(ad.Tensor(X23), axis=""), "axis"),
    "derivative of order 2**31 (it never ended)": (lambda: ad.derivative(ad.sin, order=2 ** 31), "order"),
    "einsum of a ragged list operand": (
        lambda: ad.einsum("ij,jk->ik", ad.Tensor(np.ones((2, 3))), [[1, 2], [3]]), "operand"),
    "fit with a ragged list x": (lambda: nn.fit(_dense_model(), ([[1, 2], [3]], np.array([0, 1])), verbose=0), "x"),
    "softmax_cross_entropy of ragged labels": (
        lambda: F.softmax_cross_entropy(ad.Tensor(_LOGITS), [[1, 2], [3]]), "labels"),
    "gradcheck of a ragged input": (lambda: ad.gradcheck(lambda a: ad.sum(a * a), [[1, 2], [3]]), "input"),
    "compile with an example argument (None, 0)": (lambda: ad.compile(lambda a: ad.sum(a * a), (None, 0)), "example"),
}


@pytest.mark.parametrize("name", list(FIXED))
def test_fixed_defects_raise_one_line_naming_the_argument(name):
    call, argument = FIXED[name]
    with pytest.raises((TypeError, ValueError)) as err:
        call()
    first = str(err.value).splitlines()[0]
    assert argument in first, first


def test_flip_of_no_axes_and_an_empty_list_index_are_numpy_s():
    close(ad.flip(ad.Tensor(X23), axis=[]), np.flip(X23, axis=[]))
    close(ad.Tensor(X23)[[]], X23[[]])


def test_the_table_covers_at_least_thirty_entry_points():
    import test_public_api_fuzz as autodiff_half
    tests = [name for name in [*globals(), *vars(autodiff_half)] if name.startswith("test_") and "known" not in name]
    assert len(tests) >= 30, tests
