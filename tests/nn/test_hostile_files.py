"""Model files written by an attacker or a careless user: each is refused with a ModelFileError
(a ValueError) naming what is wrong, before anything is built or allocated; bombs fail fast under a
memory limit; random corruptions never raise anything else."""
import gzip
import json
import math
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nn
from nn.schema import ModelFileError

ROOT = Path(__file__).resolve().parents[2]


def _description(architecture, state, input_shape=None, metadata=None):
    return {"format": "chainrule-model", "version": 2, "architecture": architecture, "input_shape": input_shape,
            "state": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in state.items()},
            "metadata": metadata or {}}


def write_model(path, architecture, state=None, description=None, **meta):
    """A model file with any architecture and arrays (the description defaults to a consistent one)."""
    state = state or {}
    description = description if description is not None else _description(architecture, state)
    text = description if isinstance(description, str) else json.dumps(description)
    data = safetensors.numpy.save(state, metadata={"format": "chainrule-model", "version": "2", "model": text,
                                                   **meta})
    Path(path).write_bytes(data)
    return path


def _dense(units=2, inputs=3, name=None, **config):
    spec = {"class": "Dense", "config": {"units": units, **config}}
    if name is not None:
        spec["name"] = name
    return spec


def _seq(*layers, name=None):
    return {"class": "Sequential", "name": name, "config": {"layers": list(layers)}}


def _input(*shape):
    return {"class": "Input", "name": "input", "config": {"shape": list(shape)}}


def _good_state(units=2, inputs=3, name="dense"):
    return {f"{name}.weight": np.ones((inputs, units), np.float32), f"{name}.bias": np.zeros(units, np.float32)}


def _refused(path, match, **kwargs):
    """The one-line ModelFileError (that nothing heavy is done first is held by the memory-bound tests)."""
    with pytest.raises(ModelFileError, match=match):
        nn.load(path, **kwargs)


def test_a_consistent_hand_written_file_loads(tmp_path):
    path = write_model(tmp_path / "ok.safetensors", _seq(_input(3), _dense()), _good_state())
    model = nn.load(path)
    np.testing.assert_array_equal(nn.predict(model, np.ones((1, 3), np.float32)), [[3.0, 3.0]])


@pytest.mark.parametrize("name, why", [
    ("forward", "would shadow Sequential.forward"), ("eval", "would shadow Sequential.eval"),
    ("parameters", "would shadow Sequential.parameters"), ("layers", "would shadow Sequential.layers"),
    ("training", "would shadow Sequential.training"),
    ("__class__", "a layer name must be an identifier"), ("42", "a layer name must be an identifier"),
    ("a" * 65, "a layer name must be an identifier of at most 64"),
])
def test_layer_names_that_would_shadow_the_model_are_refused(tmp_path, name, why):
    path = write_model(tmp_path / "m.safetensors", _seq(_input(3), _dense(name=name)), _good_state(name=name))
    _refused(path, why)


@pytest.mark.parametrize("architecture, match", [
    (_seq(_input(1000000, 8, 8), _dense()), r"Input config shape\[0\] = 1000000 is above the cap of 65,536"),
    (_seq(_input(4096, 4096, 4), _dense()), r"holds 67,108,864 values per example, more than the cap of 16,777,216"),
    (_seq(_input(3), _dense(units=4e6)), r"Dense config units = 4e\+06 is above the cap of 65,536"),
    (_seq(_input(3), _dense(units=4000000)), r"Dense config units = 4000000 is above the cap of 65,536"),
    (_seq(_input(3), _dense(units=2.5)), r"units must be a positive int, got 2.5"),
    (_seq(_input(60000), _dense(units=60000)), r"parameter 'weight' of shape \(60000, 60000\) needs 3,600,000,000 "
                                               r"values, more than the 8 left of the 8 values"),
    (_seq(_input(3), {"class": "os.system", "config": {}}), r"unknown layer class 'os.system'; known: \["),
    (_seq(_input(3), {"class": "Lambda", "config": {"f": "print"}}), r"unknown layer class 'Lambda'"),
    (_seq(_input(3), ["Dense", 2]), r"a layer spec must be an object, got list"),
    (_seq(_input(3), {"class": "Dense", "config": {"units": 2}, "code": "x"}), r"unexpected keys \['code'\]"),
    (_seq(_input(3), _dense(units={"a": 1})), r"Dense config units must be a number, a string, a boolean or null"),
    (_seq(_input(3), _dense(units=[2] * 9)), r"Dense config units is a list of 9 items, more than 8"),
    (_seq(_input(3), _dense(activation="x" * 100)), r"activation is a string of 100 characters"),
    (_seq(_input(3), _dense(activation="os.system")), r"activation"),
    (_seq(_input(3), _dense(bogus=1)), r"cannot be built: .*unexpected keyword argument 'bogus'"),
    (_seq(_input(3), {"class": "Dropout", "config": {"rate": float("nan")}}), r"rate must be a finite number"),
    (_seq(_input(3), {"class": "Sequential", "config": {"layers": "abc"}}), r"must be a list of layer specs"),
    (_seq(_input(-3), _dense()), r"Input config shape: \[0\] = -3 is outside 1..65,536"),
    (_seq(_input(3.5), _dense()), r"Input config shape: \[0\] must be an int"),
    ({"class": "Sequential", "config": {}}, r"cannot be built"),
])
def test_architectures_outside_the_schema_are_refused_with_the_number_and_the_cap(tmp_path, architecture, match):
    _refused(write_model(tmp_path / "m.safetensors", architecture, _good_state()), match)


def test_nesting_and_layer_counts_are_bounded(tmp_path):
    spec = _dense()
    for _ in range(20):
        spec = _seq(spec)
    _refused(write_model(tmp_path / "deep.safetensors", spec), r"containers nest more than 16 deep")
    wide = _seq(_input(3), *[{"class": "ReLU", "config": {}}] * 10_001)
    _refused(write_model(tmp_path / "wide.safetensors", wide), r"more than 10,000 layers")


@pytest.mark.parametrize("description, match", [
    ("not json {", r"the model description is not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, r"not valid JSON|must be a JSON object"),
    ("[1, 2]", r"the description must be a JSON object, got list"),
    ('{"format": "chainrule-model"}', r"missing \['architecture', 'input_shape', 'metadata', 'state', 'version'\]"),
])
def test_descriptions_that_are_not_the_schema_are_refused(tmp_path, description, match):
    _refused(write_model(tmp_path / "m.safetensors", None, _good_state(), description=description), match)


def test_declared_shapes_and_dtypes_must_be_the_stored_ones(tmp_path):
    arch = _seq(_input(3), _dense())
    state = _good_state()
    description = _description(arch, state)
    description["state"]["dense.weight"]["shape"] = [3, 5]
    _refused(write_model(tmp_path / "a.safetensors", arch, state, description), r"declares 'dense.weight' as "
                                                                                 r"\(\(3, 5\), 'float32'\) but the file stores \(\(3, 2\), 'float32'\)")
    description = _description(arch, state)
    description["state"]["dense.weight"]["dtype"] = "int64"
    _refused(write_model(tmp_path / "b.safetensors", arch, state, description), r"dtype must be one of")
    state16 = {"dense.weight": np.ones((3, 2), np.float32), "dense.bias": np.zeros(2, np.float16)}
    description = _description(arch, _good_state())
    _refused(write_model(tmp_path / "c.safetensors", arch, state16, description), r"declares 'dense.bias'")
    extra = {**_good_state(), "dense.extra": np.zeros(1, np.float32)}
    _refused(write_model(tmp_path / "d.safetensors", arch, extra), r"the file \['dense.extra'\] that the model lacks")
    wrong = _good_state(inputs=4)
    _refused(write_model(tmp_path / "e.safetensors", arch, wrong), r"dense.weight: expected shape \(3, 2\), got \(4, 2\)")
    ints = {"dense.weight": np.ones((3, 2), np.int64), "dense.bias": np.zeros(2, np.int64)}
    _refused(write_model(tmp_path / "f.safetensors", arch, ints), r"tensor 'dense.(weight|bias)' has \(dtype, shape\) \('I64', \[")


def test_non_finite_and_overflowing_weights_are_refused_unless_asked_for(tmp_path):
    arch = _seq(_input(3), _dense())
    state = _good_state()
    state["dense.weight"][1, 1] = np.nan
    state["dense.bias"][0] = np.inf
    path = write_model(tmp_path / "nan.safetensors", arch, state)
    _refused(path, r"dense.(weight|bias) holds 1 non-finite value\(s\) \(NaN or inf\); pass allow_nonfinite=True")
    model = nn.load(path, allow_nonfinite=True)
    assert np.isnan(model.layers[1].weight.value[1, 1]) and np.isinf(model.layers[1].bias.value[0])
    big = {"dense.weight": np.full((3, 2), 1e300), "dense.bias": np.zeros(2)}   # float64: float32 has no 1e300
    _refused(write_model(tmp_path / "big.safetensors", arch, big), r"the value 1e\+300 \(dtype float64\) does not "
                                                                   r"fit float32 exactly")


def test_an_int64_cast_that_would_change_the_value_is_refused_and_nothing_changes():
    model = nn.Sequential([nn.Input((3,)), nn.Dense(2)])
    before = model.state_dict()
    state = {"dense.weight": np.full((3, 2), 2 ** 62, np.int64), "dense.bias": np.zeros(2, np.int64)}
    with pytest.raises(ValueError, match=r"dense.weight: the value 4611686018427387904 \(dtype int64\) does not fit "
                                         r"float32 exactly"):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    model.load_state_dict({"dense.weight": np.full((3, 2), 7, np.int64), "dense.bias": np.zeros(2, np.int64)})
    assert model.layers[1].weight.value.dtype == np.float32 and model.layers[1].weight.value[0, 0] == 7


def _header_bomb(path, shape, length=None):
    """A safetensors header declaring a tensor of ``shape`` with 8 bytes of data behind it."""
    meta = {"format": "chainrule-model", "version": "2",
            "model": json.dumps(_description(_seq(_input(3), _dense()), {}))}
    header = json.dumps({"__metadata__": meta, "dense.weight": {"dtype": "F32", "shape": list(shape),
                                                                 "data_offsets": [0, 4 * math.prod(shape)]}}).encode()
    path.write_bytes(struct.pack("<Q", length or len(header)) + header + b"\0" * 8)
    return path


def test_a_header_declaring_a_huge_tensor_fails_before_reading(tmp_path):
    _refused(_header_bomb(tmp_path / "a.safetensors", (10 ** 12,)), r"would take 4,000,000,000,000 bytes, more than "
                                                                     r"max_bytes=2,147,483,648")
    _refused(_header_bomb(tmp_path / "b.safetensors", (1000,)), r"promises 4,000 bytes of arrays, the file holds 8")
    _refused(_header_bomb(tmp_path / "c.safetensors", (2,), length=2 ** 40), r"the header claims 1,099,511,627,776 "
                                                                              r"bytes; expected at most")
    _refused(write_model(tmp_path / "d.safetensors", _seq(_input(3), _dense()), _good_state()), r"max_bytes=10",
             max_bytes=10)
    (tmp_path / "e.safetensors").write_bytes(b"\x01")
    _refused(tmp_path / "e.safetensors", r"too short for a safetensors file \(1 bytes\)")


def test_a_file_of_another_kind_or_version_is_refused(tmp_path):
    data = safetensors.numpy.save({"w": np.zeros(2, np.float32)})
    (tmp_path / "plain.safetensors").write_bytes(data)
    _refused(tmp_path / "plain.safetensors", r"not a chainrule-model file \(no metadata")
    path = write_model(tmp_path / "v.safetensors", _seq(_input(3), _dense()), _good_state(), version="9")
    _refused(path, r"version '9'; this nn reads version 2")
    with pytest.raises(FileNotFoundError, match=r"no model at .*nothing"):
        nn.load(tmp_path / "nothing")


# --- the legacy pair: the same checks ------------------------------------------------------------------------

def _npy_bomb_npz(path, shape):
    """An .npz whose one member's .npy header declares ``shape`` but holds 8 bytes."""
    header = {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)}
    text = repr(header).encode()
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + b"\0" * 8
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("dense.weight.npy", npy)
    return path


def _legacy_json(path, arch=None):
    arch = arch or _seq(_input(3), _dense())
    description = {**_description(arch, _good_state()), "version": 1}
    path.write_text(json.dumps(description))


def test_legacy_files_get_the_same_checks(tmp_path):
    _legacy_json(tmp_path / "bomb.json")
    _npy_bomb_npz(tmp_path / "bomb.npz", (10 ** 12,))
    _refused(tmp_path / "bomb", r"bomb.npz: dense.weight.npy declares shape \(1000000000000,\) "
                                r"\(4,000,000,000,000 bytes\) but its entry holds 8 bytes")
    _legacy_json(tmp_path / "ints.json")
    np.savez(tmp_path / "ints.npz", **{"dense.weight": np.full((3, 2), 2 ** 62, np.int64),
                                       "dense.bias": np.zeros(2, np.int64)})
    _refused(tmp_path / "ints", r"dense.weight.npy is an array of dtype int64")
    _legacy_json(tmp_path / "names.json", _seq(_input(3), _dense(name="forward")))
    np.savez(tmp_path / "names.npz", **_good_state(name="forward"))
    _refused(tmp_path / "names", r"would shadow Sequential.forward")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    np.savez(tmp_path / "deep.npz", **_good_state())
    _refused(tmp_path / "deep", r"deep.json is not valid JSON|not a chainrule-model description")
    _legacy_json(tmp_path / "cut.json")
    np.savez(tmp_path / "cut.npz", **_good_state())
    data = (tmp_path / "cut.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "cut", r"cut.npz is not a readable .npz weights file")
    (tmp_path / "obj.json").write_text('{"format": "chainrule-model", "version": 1, "architecture": {"class": '
                                       '"os.system"}}')
    np.savez(tmp_path / "obj.npz", **_good_state())
    _refused(tmp_path / "obj", r"missing \['input_shape', 'metadata', 'state'\]")


# --- random corruption: a clear error or the model, never anything else ------------------------------------

@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "m.safetensors"
    nn.set_seed(0)
    nn.save(nn.Sequential([nn.Input((1, 6, 6)), nn.Conv2D(2, 3), nn.BatchNorm(), nn.Flatten(), nn.Dense(3)]), path)
    return path.read_bytes()


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_corruptions_give_a_model_file_error_or_a_model(good_file, tmp_path, data):
    blob = bytearray(good_file)
    for _ in range(data.draw(st.integers(1, 6), label="edits")):
        where = data.draw(st.integers(0, len(blob) - 1), label="where")
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]), label="kind")
        if kind == "flip":
            blob[where] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del blob[where: where + data.draw(st.integers(1, 64))]
        else:
            blob[where:where] = data.draw(st.binary(min_size=1, max_size=16))
        if not blob:
            blob = bytearray(b"\0")
    path = tmp_path / "fuzzed.safetensors"
    path.write_bytes(bytes(blob))
    try:
        nn.load(path)
    except ModelFileError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


# --- a memory limit: the bombs fail fast with our error, not MemoryError -------------------------------------

_UNDER_A_LIMIT = textwrap.dedent("""
    import resource, sys, time
    import nn
    from nn.schema import ModelFileError
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
    limit = vm + (400 << 20)    # 400 MiB above what the interpreter already maps
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for path in sys.argv[1:]:
        started = time.perf_counter()
        try:
            if path.endswith("ubyte.gz"):
                nn.datasets.read_idx(path)
            else:
                nn.load(path)
            print("LOADED", path)
        except MemoryError:
            print("MEMORYERROR", path)
        except ValueError as exc:
            print("REFUSED", round(time.perf_counter() - started, 3), type(exc).__name__, str(exc)[:200])
""")


def gzip_bomb(path, gigabytes=1):
    """A ~1 MB gzip file of an IDX header promising 10 images, then ``gigabytes`` GB of zeros (gzip
    members concatenated: one 16 MiB member of zeros compressed once, repeated)."""
    zeros = gzip.compress(b"\0" * (1 << 24), compresslevel=9)
    path.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 10, 28, 28)) + zeros * (64 * gigabytes))
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_bombs_fail_fast_under_a_memory_limit(tmp_path):
    bombs = [
        write_model(tmp_path / "input.safetensors", _seq(_input(1000000, 8, 8), _dense()), _good_state()),
        write_model(tmp_path / "units.safetensors", _seq(_input(65536), _dense(units=65536)), _good_state()),
        write_model(tmp_path / "conv.safetensors", _seq(_input(60000, 8, 8), {"class": "Conv2D", "config": {
            "filters": 4096, "kernel_size": 3}}), _good_state()),
        _header_bomb(tmp_path / "header.safetensors", (10 ** 12,)),
    ]
    _legacy_json(tmp_path / "npy.json")
    bombs.append(_npy_bomb_npz(tmp_path / "npy.npz", (10 ** 12,)))
    bombs.append(gzip_bomb(tmp_path / "bomb-images-idx3-ubyte.gz"))
    result = subprocess.run([sys.executable, "-c", _UNDER_A_LIMIT, *map(str, bombs)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert len(lines) == len(bombs), result.stdout + result.stderr[-2000:]
    for line in lines:
        assert line.startswith("REFUSED"), line
        assert float(line.split()[1]) < 2.0, line


# --- random architectures: a ModelFileError or a model, never another exception -----------------------------

_CONFIG_KEYS = sorted({"units", "filters", "kernel_size", "stride", "padding", "dilation", "groups", "activation",
                       "use_bias", "kernel_initializer", "bias_initializer", "pool_size", "rate", "momentum", "eps",
                       "alpha", "beta", "pieces", "shape", "layers", "shortcut", "bogus"})
_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 70_000), st.floats(allow_nan=True, allow_infinity=True),
              st.sampled_from(["relu", "softmax", "same", "valid", "zeros", "he_normal", "x", ""])),
    lambda children: st.lists(children, max_size=4), max_leaves=6)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cls=st.sampled_from(sorted(nn.LAYERS)), config=st.dictionaries(st.sampled_from(_CONFIG_KEYS), _json_values,
                                                                         max_size=4),
       shape=st.lists(st.integers(1, 9), min_size=1, max_size=3))
def test_random_configurations_give_a_model_file_error_or_a_model(tmp_path, cls, config, shape):
    architecture = _seq(_input(*shape), {"class": cls, "name": "layer", "config": config})
    room = {"room": np.zeros(100_000, np.float32)}   # a budget that lets the layers be built
    path = write_model(tmp_path / "random.safetensors", architecture, room)
    try:
        nn.load(path)
    except ModelFileError as exc:
        assert "\n" not in str(exc)


def test_a_flipped_byte_in_the_arrays_is_refused_by_the_checksum(tmp_path):
    """The file carries a SHA-256 of its arrays: one flipped byte loaded as changed weights before."""
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((3,)), nn.Dense(2)])
    path = Path(nn.save(model, tmp_path / "model"))
    assert np.array_equal(nn.load(path).layers[-1].weight.value, model.layers[-1].weight.value)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01                                               # inside the last array's bytes
    path.write_bytes(bytes(data))
    for read in (nn.load, lambda p: nn.load_weights(nn.Sequential([nn.Input((3,)), nn.Dense(2)]), p)):
        with pytest.raises(ModelFileError, match="the stored arrays do not match the checksum saved with them"):
            read(path)
    # a file saved before the checksum (none in its metadata) still loads
    with safetensors.safe_open(str(tmp_path / "model.safetensors"), "np") as f:
        meta = {k: v for k, v in f.metadata().items() if k != "sha256"}
    older = tmp_path / "older.safetensors"
    older.write_bytes(safetensors.numpy.save(model.state_dict(), metadata=meta))
    assert np.array_equal(nn.load(older).layers[-1].bias.value, model.layers[-1].bias.value)
