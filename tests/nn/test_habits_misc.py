"""Issue 29, Keras and PyTorch habits: dropout with rate 1, a channels-last input shape, saving under
another library's suffix, and an install without the CUDA packages; each written as such a user would."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import autodiff as ad
import kernels
import nn
import nn.functional as F
from _requires import IN_CI  # tests/_requires.py
from kernels.backend import cuda_available

X = np.random.default_rng(0).uniform(1.0, 2.0, (4, 5)).astype(np.float32)      # no zeros of its own


# --- 1. dropout(x, 1.0), as torch.nn.functional.dropout(x, p=1.0) -------------------------------------------

def test_dropout_rate_one_gives_zeros_in_training_and_the_input_in_evaluation():
    y = F.dropout(X, 1.0)                                            # training=True, torch's default
    assert ad.value_of(y).shape == X.shape and ad.value_of(y).dtype == np.float32
    assert not np.any(ad.value_of(y))
    assert F.dropout(X, 1.0, training=False) is X
    assert not np.any(ad.grad(lambda x: F.dropout(x, 1.0).sum())(X))  # nothing passes, nor does its gradient


def test_a_dropout_layer_of_rate_one_zeros_in_train_mode_and_passes_through_in_eval_mode():
    model = nn.Sequential([nn.Input((5,)), nn.Dropout(1.0)])
    model.train()
    assert not np.any(ad.value_of(model(X)))
    model.eval()
    np.testing.assert_array_equal(ad.value_of(model(X)), X)
    assert nn.Dropout(1.0).get_config() == {"rate": 1.0}


@pytest.mark.parametrize("rate", [-0.1, 1.01, float("nan")])
def test_rates_outside_zero_one_are_still_refused(rate):
    with pytest.raises(ValueError, match=r"^rate must be in \[0, 1\], got"):
        nn.Dropout(rate)
    with pytest.raises(ValueError, match=r"^rate must be in \[0, 1\], got"):
        F.dropout(X, rate, training=False)
    with pytest.raises(ValueError, match=r"^rate must be in \[0, 1\], got"):
        kernels.dropout.dropout_mask((2, 3), rate, seed=1, backend="numpy")


def test_the_dropout_mask_of_rate_one_is_zeros_on_the_host_and_on_the_device():
    host = kernels.dropout.dropout_mask((3, 4), 1.0, seed=5, backend="numpy")
    assert host.shape == (3, 4) and not np.any(host)
    if not cuda_available() and not IN_CI:          # in CI (the test extra holds numba-cuda) it must run
        pytest.skip("numba.cuda is not available (no GPU, simulator off)")
    on_device = kernels.dropout.dropout_mask((3, 4), 1.0, seed=5, device=True)
    np.testing.assert_array_equal(on_device.copy_to_host(), host)
    model = nn.Sequential([nn.Input((5,)), nn.Dense(3), nn.Dropout(1.0)]).to("cuda")
    model.train()
    assert not np.any(ad.value_of(model(X)).copy_to_host())


# --- 2. Keras's channels-last input shape ----------------------------------------------------------------------

def test_a_channels_last_input_shape_is_named_and_the_channels_first_one_suggested():
    with pytest.raises(ValueError, match=r"the output would be empty.*\(28, 28, 1\) looks channels-last.*"
                                         r"use \(1, 28, 28\)$"):
        nn.models.keras_mnist_cnn(input_shape=(28, 28, 1))
    with pytest.raises(ValueError, match=r"channels-first \(channels, height, width\).*use \(3, 32, 32\)$"):
        nn.Sequential([nn.Input((32, 32, 3)), nn.Conv2D(8, 5)])
    with pytest.raises(ValueError, match=r"^pooling over the width.*use \(1, 28, 28\)$"):
        nn.Sequential([nn.Input((28, 28, 1)), nn.MaxPool2D(2)])
    assert nn.models.keras_mnist_cnn(input_shape=(1, 28, 28)).count_params() == 34826


def test_an_input_too_small_but_not_channels_last_gets_no_layout_hint():
    with pytest.raises(ValueError, match=r"the output would be empty") as info:
        nn.Sequential([nn.Input((1, 2, 2)), nn.Conv2D(4, 3)])
    assert "channels" not in str(info.value)
    with pytest.raises(ValueError, match=r"the output would be empty") as info:       # a sequence: (C, 1, L) inside
        F.conv1d(np.ones((2, 16, 3), np.float32), np.ones((4, 16, 5), np.float32))
    assert "channels" not in str(info.value)


def test_a_kernel_call_on_channels_last_images_gets_the_hint_too():
    with pytest.raises(ValueError, match=r"\(8, 8, 3\) looks channels-last.*use \(3, 8, 8\)$"):
        kernels.conv2d_forward(np.ones((2, 8, 8, 3), np.float32), np.ones((4, 8, 5, 5), np.float32),
                               backend="numpy")


# --- 3. model.save("mnist.keras") ---------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".keras", ".h5", ".pt", ".pth", ".npz", ".pkl", ".PT"])
def test_saving_under_another_librarys_suffix_is_refused_before_anything_is_written(suffix, tmp_path):
    model = nn.Sequential([nn.Input((3,)), nn.Dense(2)])
    path = tmp_path / f"mnist{suffix}"
    expected = rf"^save: path '{path}' ends in '{suffix}', but nn.save writes .safetensors files: give " \
               rf"'{tmp_path / 'mnist.safetensors'}' or a name without a suffix$"
    with pytest.raises(ValueError, match=expected):
        model.save(path)
    with pytest.raises(ValueError, match=expected):
        nn.save(model, str(path))
    assert os.listdir(tmp_path) == []


def test_a_name_without_a_foreign_suffix_is_saved_as_before(tmp_path):
    model = nn.Sequential([nn.Input((3,)), nn.Dense(2)])
    assert model.save(tmp_path / "mnist") == str(tmp_path / "mnist.safetensors")
    assert model.save(tmp_path / "mnist.safetensors") == str(tmp_path / "mnist.safetensors")
    assert model.save(tmp_path / "mnist.v2") == str(tmp_path / "mnist.v2.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["mnist.safetensors", "mnist.v2.safetensors"]


# --- 4. an install without numba-cuda (the `cuda` extra) -------------------------------------------------------

NO_CUDA = textwrap.dedent("""
    import json, sys
    for name in sys.argv[1:]:                   # as if numba-cuda were not installed
        sys.modules[name] = None
    import numpy as np
    import autodiff, kernels, nn
    import nn.functional as F
    out = {}
    nn.set_seed(0)
    model = nn.models.digits_cnn()
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    x = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
    y = np.arange(8) % 10
    before = [np.array(p.value) for p in model.parameters()]
    loss = F.softmax_cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    out["loss"] = float(autodiff.value_of(loss))
    out["moved"] = all(not np.array_equal(b, p.value) for b, p in zip(before, model.parameters()))
    out["cuda loaded"] = sys.modules.get("numba.cuda") is not None   # the CPU path never loads it
    for name, call in [("to", lambda: model.to("cuda")), ("backend", lambda: kernels.set_backend("cuda")),
                       ("device", lambda: kernels.device.to_device(x))]:
        try:
            call()
            out[name] = "no error"
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
""")


# numba_cuda alone: what a core install has (numba.cuda is then Numba's own deprecated built-in, which runs the
# simulator that the tests' NUMBA_ENABLE_CUDASIM=1 turns on, but is not the one the kernels are written for);
# numba.cuda too: nothing CUDA imports at all.
@pytest.mark.parametrize("blocked, why", [(["numba_cuda"], "numba-cuda is not installed"),
                                          (["numba_cuda", "numba.cuda"], "numba-cuda is not installed"),
                                          (["numba.cuda"], "numba.cuda does not import: import of numba.cuda halted")])
def test_without_numba_cuda_training_runs_on_the_cpu_and_the_device_says_how_to_install_it(blocked, why):
    done = subprocess.run([sys.executable, "-c", NO_CUDA, *blocked], capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert np.isfinite(out["loss"]) and out["moved"] and not out["cuda loaded"]
    needs = f"backend 'cuda' needs the cuda extra ({why}"
    install = "): pip install 'chainrule[cuda]'"
    for name in ("to", "backend"):
        assert out[name].startswith(f"BackendUnavailable: {needs}") and install in out[name], out[name]
        assert "\n" not in out[name]
    assert out["device"].startswith(f"ImportError: kernels.device needs the cuda extra ({why}"), out["device"]
    assert out["device"].endswith(install), out["device"]
