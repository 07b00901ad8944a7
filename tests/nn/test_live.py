"""nn.LiveView: what it records (gradient norms as the model's grads give them, histograms of the whole
sample), its progress bar on stderr, its refusals, and, on a fresh Jupyter kernel, one figure shown once and
updated in place (display_id), not one per epoch."""
import math
from pathlib import Path

import numpy as np
import pytest

import nn
from _requires import IN_CI  # tests/_requires.py
from kernels.backend import cuda_available

ROOT = Path(__file__).resolve().parents[2]


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1, 8, 8)).astype(np.float32)
    return x, (x[:, 0, :4].mean(axis=(1, 2)) > 0).astype(np.int64)


def _model():
    nn.set_seed(0)
    return nn.Sequential(nn.Input((1, 8, 8)), nn.Conv2D(4, 3, activation="relu"), nn.MaxPool2D(2), nn.Flatten(),
                         nn.Dense(8, activation="tanh"), nn.Dense(2, activation="softmax"))


def _fit(view, epochs=2, **options):
    x, y = _data()
    model = _model()
    history = nn.fit(model, (x, y), epochs=epochs, batch_size=32, callbacks=[view], seed=0, **options)
    return model, history


# --- what it records ----------------------------------------------------------------------------------

def test_the_gradient_norms_are_those_of_the_grads_the_last_step_left():
    x, _ = _data()
    view = nn.LiveView(mode="none", every=None, sample=x[:16])
    model, _ = _fit(view)
    expected = {layer.name: math.sqrt(sum(float(np.linalg.norm(np.asarray(p.grad, np.float64))) ** 2
                                          for name, p in layer.named_parameters() if name.endswith("weight")))
                for layer in model.layers if any(n.endswith("weight") for n, _ in layer.named_parameters())}
    assert list(view.gradient_norms[-1]) == ["conv2d", "dense", "dense_1"]
    for name, norm in expected.items():
        assert view.gradient_norms[-1][name] == pytest.approx(norm, rel=1e-9), name
    assert all(norm > 0 for norm in expected.values())


def test_each_histogram_counts_every_activation_of_the_sample():
    x, _ = _data()
    view = nn.LiveView(mode="none", every=None, sample=x[:16], bins=20)
    model, _ = _fit(view)
    stats = view.activations[-1]
    assert [s.name for s in stats] == [layer.name for layer in model.layers if not isinstance(layer, nn.Input)]
    for s in stats:
        assert s.shape[0] == 16 and int(s.counts.sum()) == math.prod(s.shape) and len(s.counts) == 20, s


def test_it_records_every_batch_and_epoch_and_refreshes_once_per_epoch_without_every():
    view = nn.LiveView(mode="none", every=None)
    _, history = _fit(view, epochs=3)
    assert view.refreshes == 3 and view.refresh_at == [1, 2, 3] and view.updates == 0 and view.png is None
    assert len(view.batches["loss"]) == 3 * 3 and view.batches["epoch"][:3] == pytest.approx([1 / 3, 2 / 3, 1])
    assert all(0 <= a <= 1 for a in view.batches["accuracy"])      # fit hands each batch's accuracy over
    assert view.history == history.history and view.activations == []


def test_a_refresh_inside_an_epoch_waits_every_seconds_and_keeps_within_budget():
    view = nn.LiveView(mode="none", every=2.0, budget=0.1)          # times given, not read from a clock
    view._start, view._last, view.seconds, view._cost = 0.0, 10.0, 1.0, 0.5
    assert not view._due(11.9)                                      # 1.9 s since the last refresh
    assert view._due(20.0)                                          # 1.5 s of the view's within 10% of 20 s
    assert not view._due(14.0)                                      # 1.5 s would be 11% of 14 s
    assert not nn.LiveView(mode="none", every=None)._due(1e9)      # epoch ends only


def test_a_due_refresh_happens_at_the_batch_and_histograms_only_at_epoch_ends(monkeypatch):
    x, _ = _data()
    monkeypatch.setattr(nn.live.LiveView, "_due", lambda self, now: True)
    view = nn.LiveView(mode="none", sample=x[:8])
    _fit(view, epochs=2)                                            # 3 batches an epoch
    assert view.refreshes == 2 * 3 + 2                              # each batch end, then each epoch end
    assert view.activations_at == [0, 1, 2]                         # histograms: at the start and epoch ends


def test_png_mode_draws_the_figure_off_screen_and_save_writes_it_in_any_mode(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    x, _ = _data()
    view = nn.LiveView(mode="png", every=None, sample=x[:16], histograms=3)
    _fit(view, epochs=2, validation=_data(32, seed=1))
    assert view.png.startswith(b"\x89PNG") and view.updates == 0
    board = view._board
    assert [ax.get_title() for ax in board.top.axes[:2]] == ["loss", "accuracy"] and len(board.bottom.axes) == 3
    assert [len(board.lines[key].get_xdata()) for key in ("loss", "epoch loss", "val_loss")] == [6, 2, 2]
    picture = matplotlib.image.imread(view.save(tmp_path / "view.png"))
    assert picture.shape[:2] == (259 + 201, 792)             # the curves (11 x 3.6 in) above the histograms (2.8)
    quiet = nn.LiveView(mode="none", every=None)
    _fit(quiet, epochs=1)
    assert quiet.png is None and matplotlib.image.imread(quiet.save(tmp_path / "quiet.png")).shape[:2] == (259, 792)


def test_a_callback_gets_fits_parameters_and_each_batchs_accuracy():
    seen = []

    class Spy(nn.Callback):
        def on_train_batch_end(self, batch, logs, model):
            seen.append((dict(self.params), sorted(logs)))

    _fit(Spy(), epochs=1, verbose=0)
    assert seen[0] == ({"epochs": 1, "steps": 3, "verbose": 0}, ["accuracy", "loss"])


# --- the terminal -------------------------------------------------------------------------------------

def test_in_a_terminal_it_is_a_progress_bar_on_stderr_in_place_of_fits_lines(capsys):
    _fit(nn.LiveView(mode="bar"), epochs=2, verbose=1)
    out, err = capsys.readouterr()
    assert out == ""                                                 # fit's own progress replaced
    assert "\rEpoch 1/2 3/3 [==============================] - loss: " in err
    assert "\rEpoch 2/2 - 3/3 - " in err and " - accuracy: " in err and err.endswith("\n")


def test_outside_a_notebook_auto_is_the_bar_and_none_leaves_fits_own_output(capsys):
    assert nn.LiveView().mode == "bar" and nn.LiveView().shows_progress
    _fit(nn.LiveView(mode="none"), epochs=1, verbose=2)
    out, err = capsys.readouterr()
    assert out.startswith("Epoch 1/1 - 3/3") and err == ""


# --- refusals: one line naming the argument, before anything changes ---------------------------------------

@pytest.mark.parametrize("options, message", [
    ({"mode": "live"}, "LiveView: mode must be one of"),
    ({"mode": "notebook"}, "LiveView: mode='notebook' needs a Jupyter kernel"),
    ({"every": 0}, "LiveView: every (seconds, or None for epoch ends only) must be a finite number > 0, got 0"),
    ({"every": "1"}, "LiveView: every"),
    ({"every": math.nan}, "LiveView: every"),
    ({"budget": 0}, "LiveView: budget must be a finite number in (0, 1], got 0"),
    ({"budget": 1.5}, "LiveView: budget"),
    ({"bins": 0}, "LiveView: bins must be an int >= 1, got 0"),
    ({"histograms": True}, "LiveView: histograms must be an int >= 1"),
    ({"hist_range": (1, 0)}, "LiveView: hist_range must be (low, high)"),
    ({"hist_range": 5}, "LiveView: hist_range must be (low, high)"),
    ({"hist_range": ("a", 1)}, "LiveView: hist_range must be (low, high)"),
    ({"sample": [[1.0], [2.0, 3.0]]}, "LiveView: sample must be a float array"),
    ({"sample": np.zeros((4, 2), np.int64)}, "LiveView: sample must be a float array"),
    ({"sample": np.zeros(3, np.float32)}, "LiveView: sample must be a float array"),
])
def test_bad_arguments_are_refused_in_one_line(options, message):
    with pytest.raises((ValueError, TypeError)) as error:
        nn.LiveView(**options)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_sample_for_a_model_without_layers_is_refused_before_the_first_step():
    class Net(nn.Model):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(2, input_shape=(4,))

        def forward(self, x):
            return self.dense(x)

    nn.set_seed(0)
    model = Net()
    x = np.ones((8, 4), np.float32)
    model.build((4,))
    before = [p.value.copy() for p in model.parameters()]
    with pytest.raises(TypeError, match="^LiveView: sample's histograms need an nn.Sequential"):
        nn.fit(model, (x, np.zeros(8, np.int64)), callbacks=[nn.LiveView(mode="none", sample=x)], verbose=0)
    assert all(np.array_equal(p.value, b) for p, b in zip(model.parameters(), before))
    view = nn.LiveView(mode="none", every=None)                       # without a sample: the norms per module
    nn.fit(model, (x, np.zeros(8, np.int64)), callbacks=[view], verbose=0)
    assert list(view.gradient_norms[-1]) == ["dense"]


@pytest.mark.skipif(not cuda_available() and not IN_CI, reason="numba.cuda is not available (no GPU, simulator off)")
def test_on_the_device_the_norms_are_summed_there_and_a_sample_is_refused():
    x, y = _data(32)
    model = _model().to("cuda")
    with pytest.raises(ValueError, match="^LiveView: sample's histograms run on the host"):
        nn.fit(model, (x, y), callbacks=[nn.LiveView(mode="none", sample=x)], verbose=0)
    view = nn.LiveView(mode="none", every=None)
    nn.fit(model, (x, y), epochs=1, batch_size=16, callbacks=[view], verbose=0)
    weights = {name.rsplit(".", 1)[0]: p.grad.copy_to_host() for name, p in model.named_parameters()
               if name.endswith("weight")}
    assert view.gradient_norms[-1] == pytest.approx({k: float(np.linalg.norm(g)) for k, g in weights.items()})
    assert all(math.isnan(a) for a in view.batches["accuracy"])    # the device's count is read once an epoch


# --- in a notebook: one display, updated in place ------------------------------------------------------------

CELL = """
import sys
sys.path.insert(0, {root!r})
import numpy as np, nn
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 1, 8, 8)).astype(np.float32); y = rng.integers(0, 2, 96)
nn.set_seed(0)
model = nn.Sequential(nn.Input((1, 8, 8)), nn.Conv2D(4, 3, activation="relu"), nn.Flatten(),
                      nn.Dense(2, activation="softmax"))
view = nn.LiveView(every=None, sample=x[:16])
history = nn.fit(model, (x, y), epochs=3, batch_size=32, callbacks=[view])
print(f"mode={{view.mode}} refreshes={{view.refreshes}} updates={{view.updates}}")
"""


def test_in_a_notebook_one_figure_is_shown_and_updated_in_place(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the test extra")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    messages = []

    class Recording(nbclient.NotebookClient):
        """Keeps every display message the kernel sends (nbclient folds updates into the first output)."""

        def process_message(self, msg, cell, cell_index):
            if msg["msg_type"] in ("display_data", "update_display_data"):
                content = msg["content"]
                messages.append((msg["msg_type"], (content.get("transient") or {}).get("display_id"), content["data"]))
            return super().process_message(msg, cell, cell_index)

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL.format(root=str(ROOT)))])
    Recording(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "mode=notebook refreshes=3 updates=3" in printed and "Epoch" not in printed   # fit's lines replaced
    figure = [(kind, display_id, data["image/png"]) for kind, display_id, data in messages if "image/png" in data]
    assert [kind for kind, _, _ in figure] == ["display_data"] + ["update_display_data"] * 3   # the start, 3 epochs
    assert figure[0][1] is not None and {display_id for _, display_id, _ in figure} == {figure[0][1]}
    shown = [o for o in outputs if o.output_type in ("display_data", "execute_result")]
    images = [o for o in shown if "image/png" in o.data]
    assert len(images) == 1 and len(shown) == 2                  # one figure, not one per epoch; the bar's line
    assert images[0].data["image/png"] == figure[-1][2] != figure[0][2]       # holding the last update
    bar = [data["text/plain"] for kind, _, data in messages if "image/png" not in data]
    assert len(bar) > 3 and bar[-1].startswith("Epoch 3/3 - 3/3 - ") and " - accuracy: " in bar[-1]
    assert [o.data["text/plain"] for o in shown if "image/png" not in o.data] == [bar[-1]]   # one line, replaced
