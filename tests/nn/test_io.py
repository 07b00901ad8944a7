"""nn.save / nn.load: one safetensors file, written atomically; the earlier .npz + .json pair still loads.

(Hostile files: tests/nn/test_hostile_files.py.)"""
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import nn

def _trained_model():
    nn.set_seed(3)
    model = nn.Sequential([nn.Input((1, 8, 8)), nn.Conv2D(4, 3, activation="relu"), nn.BatchNorm(), nn.Flatten(),
                           nn.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    nn.fit(model, (x, np.array([0, 1, 2, 0, 1])), epochs=2, verbose=0)     # moves the running statistics too
    return model, x


def save_legacy(model, base, metadata=None):
    """A model in the format nn.save wrote up to version 1 (the fixture of the legacy reader): the
    arrays in ``base.npz`` (np.savez), the description in ``base.json``, as that code wrote them."""
    state = model.state_dict()
    description = {"format": "chainrule-model", "version": 1, "architecture": nn.module.layer_spec(model),
                   "input_shape": None if model.input_shape is None else list(model.input_shape),
                   "state": {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in state.items()},
                   "metadata": metadata or {}}
    np.savez(f"{base}.npz", **state)
    Path(f"{base}.json").write_text(json.dumps(description, indent=2) + "\n")


def test_save_writes_one_file_that_loads_to_identical_predictions(tmp_path):
    model, x = _trained_model()
    path = nn.save(model, tmp_path / "m", metadata={"note": "test", "acc": np.float32(0.5)})
    assert path == str(tmp_path / "m.safetensors") and os.listdir(tmp_path) == ["m.safetensors"]
    for name in ("m", "m.safetensors"):
        np.testing.assert_array_equal(nn.predict(model, x), nn.predict(nn.load(tmp_path / name), x))
    assert nn.io.read_metadata(path) == {"note": "test", "acc": 0.5}
    stored = safetensors.numpy.load_file(path)     # an ordinary safetensors file, readable by anyone
    assert set(stored) == set(model.state_dict()) and "batch_norm.running_mean" in stored
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(stored[name], value)


def test_the_file_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = nn.save(nn.models.digits_cnn(), tmp_path / "m")
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_a_later_save_removes_the_temporary_files_a_killed_one_left(tmp_path):
    model = nn.models.digits_cnn()
    leftover = tmp_path / ".m.safetensors.0123456789abcdef.tmp"
    leftover.write_bytes(b"half a model")
    other = tmp_path / ".other.safetensors.0123456789abcdef.tmp"   # another model's: not ours to remove
    other.write_bytes(b"x")
    nn.save(model, tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == [other.name, "m.safetensors"]


def test_the_earlier_npz_and_json_pair_still_loads(tmp_path):
    model, x = _trained_model()
    save_legacy(model, tmp_path / "old", metadata={"epochs": 2})
    for name in ("old", "old.npz", "old.json"):
        np.testing.assert_array_equal(nn.predict(model, x), nn.predict(nn.load(tmp_path / name), x))
    assert nn.io.read_metadata(tmp_path / "old") == {"epochs": 2}
    again = nn.models.digits_cnn()
    save_legacy(again, tmp_path / "w")
    fresh = nn.models.digits_cnn()
    nn.io.load_weights(fresh, tmp_path / "w")
    for name, value in again.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[name], value)


def test_a_saved_file_is_preferred_to_a_legacy_pair_of_the_same_name(tmp_path):
    old, new = nn.models.digits_cnn(), nn.models.keras_mnist_mlp()
    save_legacy(old, tmp_path / "m")
    nn.save(new, tmp_path / "m")
    assert nn.load(tmp_path / "m").count_params() == new.count_params()
    assert nn.load(tmp_path / "m.npz").count_params() == old.count_params()


@pytest.mark.parametrize("name", sorted(nn.models.MODELS))
def test_every_ready_model_round_trips_through_save_and_load(name, tmp_path):
    model = nn.models.MODELS[name]()
    nn.save(model, tmp_path / name)
    again = nn.load(tmp_path / name)
    x = np.random.default_rng(0).random((2, *model.input_shape), dtype=np.float32)
    np.testing.assert_array_equal(nn.predict(model, x), nn.predict(again, x))
    assert [type(layer) for layer in again.layers] == [type(layer) for layer in model.layers]


def test_checkpoint_callback_writes_the_best_epoch(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 1, 4, 4)).astype(np.float32)
    y = (x[:, 0, 0, 0] > 0).astype(np.int64)
    model = nn.Sequential([nn.Input((1, 4, 4)), nn.Flatten(), nn.Dense(2)])
    nn.fit(model, (x, y), epochs=3, validation=(x, y), verbose=0,
           callbacks=[nn.ModelCheckpoint(tmp_path / "best", save_best_only=True)])
    meta = nn.io.read_metadata(tmp_path / "best")
    assert meta["epoch"] in (1, 2, 3) and "val_loss" in meta
    assert os.listdir(tmp_path) == ["best.safetensors"]


def test_a_model_that_is_not_json_is_refused_before_anything_is_written(tmp_path):
    model = nn.Sequential([nn.Input((3,)), nn.Dense(2, kernel_initializer=lambda shape: np.ones(shape, np.float32))])
    with pytest.raises(ValueError, match="the model's description is not JSON"):
        nn.save(model, tmp_path / "m")
    assert os.listdir(tmp_path) == []


class Doubled(nn.Dense):
    """A user's layer, not registered: nn.load could not rebuild it."""

    def forward(self, x, pre_activation=False):
        return 2.0 * super().forward(x, pre_activation=pre_activation)


def test_an_unregistered_layer_anywhere_in_the_model_is_refused_before_anything_is_written(tmp_path):
    kept = nn.save(nn.Sequential([nn.Input((3,)), nn.Dense(3)]), tmp_path / "m")
    before = Path(kept).read_bytes()
    nested = nn.Sequential([nn.Input((3,)), nn.Residual([nn.Dense(4), Doubled(3)]), nn.Dense(2)])
    Dense = type("Dense", (nn.Dense,), {})                    # the registered name, another class
    shadowed = nn.Sequential([nn.Input((3,)), nn.Dense(4), Dense(2)])
    for model, name in ((nested, "Doubled"), (shadowed, "Dense")):
        with pytest.raises(ValueError, match=rf"^save: {name} is not registered, so nn.load could not rebuild it; "
                                             r"decorate the class with @nn.module.register"):
            nn.save(model, tmp_path / "m")
        assert os.listdir(tmp_path) == ["m.safetensors"] and Path(kept).read_bytes() == before
    nn.module.register(Doubled)
    try:
        x = np.random.default_rng(0).random((2, 3), dtype=np.float32)
        again = nn.load(nn.save(nested, tmp_path / "m"))
        assert type(again.layers[1].body.layers[1]) is Doubled
        np.testing.assert_array_equal(nn.predict(again, x), nn.predict(nested, x))
    finally:
        del nn.LAYERS["Doubled"]


# --- a kill at any moment of a save leaves the previous model -------------------------------------------------

def _saving_forever(models, target):
    """The child's loop: save the models in turn, for ever (until killed)."""
    k = 0
    while True:
        nn.save(models[k % len(models)], target, metadata={"k": k % len(models)})
        k += 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_kill_during_a_save_leaves_the_previous_model_intact(tmp_path):
    """SIGKILL at 40 random moments of a process saving a 4 MB model over and over (a save takes
    ~20 ms): every time, the file on disk is one of the saved models, whole and equal to it; the
    next save leaves no temporary file behind."""
    models = []
    for seed in range(3):
        nn.set_seed(seed)
        models.append(nn.Sequential([nn.Input((1024,)), nn.Dense(1024), nn.Dense(10)]))
    target = tmp_path / "model"
    nn.save(models[0], target, metadata={"k": 0})
    states = [m.state_dict() for m in models]
    rng = np.random.default_rng(0)
    seen, leftovers = set(), 0
    for _ in range(40):
        pid = os.fork()
        if pid == 0:   # the child: save until killed; never return into pytest
            try:
                _saving_forever(models, target)
            finally:
                os._exit(1)
        time.sleep(float(rng.uniform(0.005, 0.08)))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL   # killed mid-loop, not failed
        leftovers += len(list(tmp_path.glob(".*.tmp")))
        k = nn.io.read_metadata(target)["k"]
        seen.add(k)
        loaded = nn.load(target).state_dict()
        for name, value in states[k].items():
            np.testing.assert_array_equal(loaded[name], value)
    nn.save(models[0], target)
    assert os.listdir(tmp_path) == ["model.safetensors"]
    assert len(seen) == 3 and leftovers > 0   # the kills reached every model, and into the middle of saves


def test_a_file_that_cannot_be_written_is_named_not_its_temporary_twin(tmp_path, monkeypatch):
    model = nn.Sequential([nn.Input((3,)), nn.Dense(2)])

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(PermissionError, match=rf"cannot write {tmp_path / 'model.safetensors'} \(Permission denied\)") \
            as info:
        nn.save(model, tmp_path / "model")
    assert ".tmp" not in str(info.value)
