"""Saving and loading models: one safetensors file, written atomically, read without trusting it.

``save(model, "digits")`` writes ``digits.safetensors``: every parameter and buffer as a tensor,
and the architecture, the declared state and your metadata as JSON in the file's metadata. A name
in another library's format (``mnist.keras``, ``.h5``, ``.pt``, ``.pth``, ``.npz``, ``.pkl``...) is
refused before anything is written: the file would not be one.
`safetensors <https://huggingface.co/docs/safetensors>`_ is a format made so that loading never
runs code (a JSON header, then raw little-endian arrays; read here through ``safetensors.numpy``,
no torch). The file is written all or nothing, as a database writes: a temporary file in the same
folder, flushed and fsynced, renamed over the target (``os.replace`` is atomic), then the folder
fsynced, so a kill at any moment leaves the old model or the new one, never a mixture. A later save
removes temporary files a killed save left behind; the file's permissions follow the umask.

``load(path)`` checks everything before it builds or allocates anything: the header's size, the
total size the file implies (at most ``max_bytes``), the description against the schema of
:mod:`nn.schema` (whitelisted layer classes, identifier names that shadow nothing, bounded sizes and
nesting), the declared shapes and dtypes against the stored ones; then it builds the architecture
inside a :func:`nn.module.parameter_budget` of the values the file holds, refuses non-finite weights
(unless ``allow_nonfinite=True``) and casts that change a value, and only then fills the model.
Every refusal is a ``ModelFileError`` (a ``ValueError``) naming the file, the expected and the
actual value. Models saved by earlier versions (``model.npz`` + ``model.json``) still load, with
the same checks (:mod:`nn.legacy_io`).

>>> import tempfile, os, numpy as np, nn
>>> model = nn.models.digits_cnn()
>>> folder = tempfile.mkdtemp()
>>> path = nn.save(model, os.path.join(folder, "digits"), metadata={"epochs": 0})
>>> os.path.basename(path), os.listdir(folder)
('digits.safetensors', ['digits.safetensors'])
>>> again = nn.load(path)
>>> x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
>>> bool(np.array_equal(nn.predict(model, x), nn.predict(again, x))), nn.io.read_metadata(path)
(True, {'epochs': 0})
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from . import device
from .legacy_io import legacy_paths, read_legacy
from .module import LAYERS, from_spec, layer_spec, parameter_budget
from .schema import CHILD_KEYS, FORMAT, ModelFileError, brief, check_description

__all__ = ["save", "load", "load_weights", "read_metadata", "ModelFileError", "FORMAT", "VERSION", "SUFFIX",
           "FOREIGN_SUFFIXES", "MAX_BYTES"]

VERSION = 2
SUFFIX = ".safetensors"
MAX_BYTES = 1 << 31          # the stored arrays a file may imply in all (2 GiB), unless load(max_bytes=...)
MAX_HEADER = 16 << 20        # a safetensors header (JSON) of at most 16 MiB
_DTYPES = {"F16": "float16", "F32": "float32", "F64": "float64"}
# other libraries' model files (Keras, HDF5, PyTorch, NumPy, pickle, ONNX, TensorFlow...): nn.save refuses them
FOREIGN_SUFFIXES = frozenset({".keras", ".h5", ".hdf5", ".pt", ".pth", ".ckpt", ".bin", ".npz", ".npy", ".json",
                              ".pkl", ".pickle", ".joblib", ".onnx", ".pb", ".tflite"})


# --- writing ---------------------------------------------------------------------------------------

def _target(path) -> Path:
    path = Path(path)
    return path if path.suffix == SUFFIX else path.with_suffix(SUFFIX) if path.suffix in (".npz", ".json") \
        else path.with_name(path.name + SUFFIX)


def _checked_path(path):
    """path itself, if it is a str or an os.PathLike (pathlib's own error does not say which argument)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or an os.PathLike (e.g. 'runs/model'), got {path!r}")
    if "\x00" in os.fspath(path):
        raise ValueError(f"path must not hold a NUL character, got {path!r}")
    return path


def _save_target(path) -> Path:
    """Where ``save`` writes: ``_target(path)``, unless the name ends in another library's suffix."""
    path = Path(_checked_path(path))
    if path.suffix.lower() in FOREIGN_SUFFIXES:
        raise ValueError(f"save: path {str(path)!r} ends in {path.suffix!r}, but nn.save writes {SUFFIX} files: "
                         f"give {str(path.with_suffix(SUFFIX))!r} or a name without a suffix"
                         + (" (nn.export_onnx writes ONNX)" if path.suffix.lower() == ".onnx" else ""))
    return _target(path)


def _fsync_folder(folder: Path):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:   # a platform that cannot open folders: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary_name(target: Path) -> str:
    return f".{target.name}.{secrets.token_hex(8)}.tmp"


def _remove_leftovers(target: Path):
    """Delete temporary files that a killed save of ``target`` left behind."""
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass


def write_atomically(target: Path, data: bytes):
    """Write ``data`` to ``target`` all or nothing: a temporary file in the same folder (created with
    mode 0o666 less the umask), flushed and fsynced, renamed over ``target``, the folder fsynced."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    tmp = target.parent / _temporary_name(target)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:           # its words named the temporary file, which the caller never asked for
        raise type(exc)(exc.errno, f"cannot write {target} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _class_names(spec):
    """The class names a layer spec holds, its containers' layers included."""
    yield spec["class"]
    for key in CHILD_KEYS:
        for child in spec["config"].get(key) or ():
            yield from _class_names(child)


def _check_registered(model, architecture):
    """Every class the architecture names must be in ``LAYERS`` as itself, or ``nn.load`` could not
    rebuild the file (a subclass's own sub-layers are rebuilt by its constructor: not named there)."""
    names = set(_class_names(architecture))
    for _, module in model.named_modules():
        cls = type(module)
        if cls.__name__ in names and LAYERS.get(cls.__name__) is not cls:
            raise ValueError(f"save: {cls.__name__} is not registered, so nn.load could not rebuild it; decorate "
                             f"the class with @nn.module.register (its get_config() gives its constructor's "
                             f"arguments)")


def save(model, path, metadata=None) -> str:
    """Write the model to ``<path>.safetensors`` (``path`` may end in .safetensors) atomically; return its path.

    Everything is prepared in memory first: a model that cannot be described in JSON (a layer
    configured with a function, say) or names a class ``nn.load`` does not know (one not registered
    with ``@nn.module.register``) raises before anything is written, as does a ``path`` in another
    library's format (``FOREIGN_SUFFIXES``: "mnist.keras", "model.pt"...).
    """
    target = _save_target(path)
    architecture = layer_spec(model)
    _check_registered(model, architecture)
    on_host = model if device.device_of(model) == "cpu" else device.host_copy(model)   # the same file either way
    state = {name: np.ascontiguousarray(a) for name, a in on_host.state_dict().items()}
    description = {
        "format": FORMAT, "version": VERSION,
        "architecture": architecture,
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "state": {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in state.items()},
        "metadata": _json_safe(metadata or {}),
    }
    try:
        text = json.dumps(description, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"save: the model's description is not JSON ({exc}); layers configured with a "
                         f"function (e.g. kernel_initializer=partial(...)) can be saved with "
                         f"model.state_dict() and np.savez, and rebuilt in code") from None
    data = safetensors.numpy.save(state, metadata={"format": FORMAT, "version": str(VERSION), "model": text,
                                                   "sha256": _digest(state)})
    write_atomically(target, data)
    return str(target)


def _digest(arrays) -> str:
    """SHA-256 of the arrays (each one's name, dtype, shape and bytes, by name): what load verifies, so that a
    flipped byte in the data is refused rather than loaded as other weights."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(json.dumps([name, str(a.dtype), list(a.shape)]).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


# --- reading ---------------------------------------------------------------------------------------

def _header(file: Path, max_bytes: int):
    """The safetensors header of ``file`` as {name: (shape, dtype)} and its metadata, checked against
    the file's size and ``max_bytes`` before any array is read."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelFileError(f"{file}: too short for a safetensors file ({size} bytes)")
        length = int.from_bytes(head, "little")
        if length > min(MAX_HEADER, size - 8):
            raise ModelFileError(f"{file}: the header claims {length:,} bytes; expected at most "
                                 f"{min(MAX_HEADER, size - 8):,} (the cap, or what the file holds)")
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{file}: the header is not valid JSON (corrupt or truncated?): {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        raise ModelFileError(f"{file}: not a {FORMAT} file (no metadata in its safetensors header)")
    meta = header.pop("__metadata__")
    stored, total = {}, 0
    for name, entry in header.items():
        dtype = _DTYPES.get(entry.get("dtype")) if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if dtype is None or not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            found = (entry.get("dtype"), shape) if isinstance(entry, dict) else entry
            raise ModelFileError(f"{file}: tensor {name!r} has (dtype, shape) {brief(found)}; expected a dtype of "
                                 f"{sorted(_DTYPES)} and a shape of non-negative ints")
        total += int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
        stored[name] = (tuple(shape), dtype)
    if total > max_bytes:
        raise ModelFileError(f"{file}: the stored arrays would take {total:,} bytes, more than max_bytes="
                             f"{max_bytes:,}")
    if total != size - 8 - length:
        raise ModelFileError(f"{file}: the header promises {total:,} bytes of arrays, the file holds "
                             f"{size - 8 - length:,} (corrupt or truncated?)")
    return stored, meta


def _read(file: Path, max_bytes: int):
    """(description, stored {name: (shape, dtype)}, a function reading the arrays)."""
    stored, meta = _header(file, max_bytes)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{file}: not a {FORMAT} file (format: {brief(meta.get('format'))})")
    if meta.get("version") != str(VERSION):
        raise ModelFileError(f"{file}: version {brief(meta.get('version'))}; this nn reads version {VERSION}")
    try:
        description = json.loads(meta.get("model", ""))
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{file}: the model description is not valid JSON: {exc}") from None

    def arrays():
        try:
            with safetensors.safe_open(str(file), framework="numpy") as f:
                found = {name: f.get_tensor(name) for name in f.keys()}
        except (safetensors.SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(f"{file}: unreadable tensors (corrupt?): {exc}") from None
        if "sha256" in meta and _digest(found) != meta["sha256"]:    # files saved before the checksum have none
            raise ModelFileError(f"{file}: the stored arrays do not match the checksum saved with them (corrupt or "
                                 f"altered?); nothing was loaded")
        return found

    return description, stored, arrays


def _open(path, max_bytes):
    """Find the model at ``path`` (this format or the legacy pair) and read its header."""
    path = Path(_checked_path(path))
    target = _target(path)
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative int, got {max_bytes!r}")
    if path.suffix not in (".npz", ".json") and target.is_file():
        return target, _read(target, max_bytes)
    npz, js = legacy_paths(path)
    if js.is_file() or npz.is_file():
        return js, read_legacy(npz, js, max_bytes)
    raise FileNotFoundError(f"no model at {path}: neither {target} nor {js} and {npz.name} exist")


def read_metadata(path, max_bytes=MAX_BYTES) -> dict:
    """The ``metadata`` saved with the model at ``path`` (nothing else is read)."""
    where, (description, _, _) = _open(path, max_bytes)
    check_description(description, str(where))
    return description["metadata"]


def _checked_state(where, declared, stored, arrays, model, allow_nonfinite):
    """The stored arrays, read once the declared state is the stored one and fits ``model``'s names."""
    if declared != stored:
        diff = sorted(set(declared) ^ set(stored)) or [n for n in declared if declared[n] != stored[n]]
        name = diff[0]
        raise ModelFileError(f"{where}: the description declares {name!r} as {declared.get(name)} but the file "
                             f"stores {stored.get(name)} (shape, dtype)")
    expected = {name for name, _ in model.named_parameters()} | {name for name, _ in model.named_buffers()}
    if expected != set(stored):
        raise ModelFileError(f"{where}: the model has the arrays {sorted(set(expected) - set(stored))} that the "
                             f"file lacks and the file {sorted(set(stored) - set(expected))} that the model lacks")
    state = arrays()
    if not allow_nonfinite:
        for name, a in state.items():
            if not np.all(np.isfinite(a)):
                bad = int(np.sum(~np.isfinite(a)))
                raise ModelFileError(f"{where}: {name} holds {bad:,} non-finite value(s) (NaN or inf); pass "
                                     f"allow_nonfinite=True to load them anyway")
    return state


def _fill(model, where, state):
    try:
        model.load_state_dict(state)
    except ValueError as exc:
        raise ModelFileError(f"{where}: {exc}") from None
    return model


def load_weights(model, path, max_bytes=MAX_BYTES, allow_nonfinite=False):
    """Load the arrays saved at ``path`` into ``model`` (everything checked first; nothing changes on a mismatch)."""
    where, (description, stored, arrays) = _open(path, max_bytes)
    declared = check_description(description, str(where))
    return _fill(model, where, _checked_state(where, declared, stored, arrays, model, allow_nonfinite))


def load(path, max_bytes=MAX_BYTES, allow_nonfinite=False, backend=None):
    """The model saved at ``path`` (``x``, ``x.safetensors``, or an earlier version's ``x.npz``/``x.json``).

    ``max_bytes`` caps the arrays the file may imply; ``allow_nonfinite=True`` lets NaN/inf weights in.
    ``backend="cuda"``: the model's parameters put on the device (``nn.device.to_device``).
    """
    if backend not in (None, "numpy", "cpu", "cuda"):
        raise ValueError(f"load: backend must be None, 'numpy', 'cpu' or 'cuda', got {backend!r}")
    where, (description, stored, arrays) = _open(path, max_bytes)
    declared = check_description(description, str(where))
    budget = sum(int(np.prod(shape, dtype=object)) for shape, _ in stored.values())
    try:
        with parameter_budget(budget, of=f"the {budget:,} values {where} holds"):
            model = from_description(description)
    except KeyError as exc:
        raise ModelFileError(f"{where}: the architecture cannot be built: a layer's config lacks {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{where}: the architecture cannot be built: {' '.join(str(exc).split())}") from None
    model = _fill(model, where, _checked_state(where, declared, stored, arrays, model, allow_nonfinite))
    return device.to_device(model, "cuda") if backend == "cuda" else model


def from_description(description):
    """Build the (schema-checked) architecture of a description."""
    model = from_spec(description["architecture"])
    if not model.built:
        if description["input_shape"] is None:
            raise ValueError("the description has no input_shape, so the model cannot be built")
        model.build(description["input_shape"])
    return model
