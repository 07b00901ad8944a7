"""Saving and loading models: weights in ``.npz`` (no pickle), architecture and metadata in ``.json``.

``save(model, "digits")`` writes ``digits.npz`` and ``digits.json``, each atomically (a temporary
file in the same folder, then a rename), so an interrupted save never leaves a half-written file
where a good one was. ``load("digits")`` rebuilds the model from the JSON (:func:`nn.module.from_spec`:
layer classes looked up in a whitelist, ``nn.LAYERS``; nothing is evaluated) and loads the weights
with ``allow_pickle=False`` (loading runs no code), after checking every name and shape.

>>> import tempfile, os, numpy as np, nn
>>> model = nn.models.digits_cnn()
>>> folder = tempfile.mkdtemp()
>>> paths = nn.save(model, os.path.join(folder, "digits"))
>>> sorted(os.path.basename(p) for p in paths)
['digits.json', 'digits.npz']
>>> again = nn.load(os.path.join(folder, "digits"))
>>> x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
>>> bool(np.array_equal(nn.predict(model, x), nn.predict(again, x)))
True
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .module import from_spec, layer_spec

__all__ = ["save", "load", "load_weights", "FORMAT"]

FORMAT = "chainrule-model"
VERSION = 1


def _base(path):
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".npz", ".json") else path


def _write_atomically(target: Path, data: bytes):
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with_suppressed = Path(tmp)
        if with_suppressed.exists():
            with_suppressed.unlink()
        raise


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save(model, path, metadata=None):
    """Write ``<path>.npz`` (every parameter and buffer) and ``<path>.json``; returns the two paths.

    Both files are prepared in memory first: a model that cannot be described in JSON (a layer
    configured with a function, say) raises before anything is written.
    """
    base = _base(path)
    state = model.state_dict()
    description = {
        "format": FORMAT, "version": VERSION,
        "architecture": layer_spec(model),
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "state": {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in state.items()},
        "metadata": _json_safe(metadata or {}),
    }
    try:
        text = json.dumps(description, indent=2) + "\n"
    except TypeError as exc:
        raise ValueError(f"save: the model's description is not JSON ({exc}); layers configured with a "
                         f"function (e.g. kernel_initializer=partial(...)) can be saved with "
                         f"model.state_dict() and np.savez, and rebuilt in code") from None
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    npz, js = base.with_suffix(".npz"), base.with_suffix(".json")
    _write_atomically(npz, buffer.getvalue())
    _write_atomically(js, text.encode())
    return [str(npz), str(js)]


def _read_weights(npz: Path):
    if not npz.exists():
        raise FileNotFoundError(f"no weights file {npz}")
    try:
        with np.load(npz, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{npz} is not a readable .npz weights file (corrupt or truncated?): {exc}") from None


def load_weights(model, path):
    """Load ``<path>.npz`` into ``model`` (names and shapes checked first; nothing changes on a mismatch)."""
    model.load_state_dict(_read_weights(_base(path).with_suffix(".npz")))
    return model


def load(path):
    """The model saved at ``path`` (architecture from the .json, weights from the .npz)."""
    base = _base(path)
    js = base.with_suffix(".json")
    try:
        description = json.loads(js.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no model description {js}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{js} is not valid JSON (corrupt or truncated?): {exc}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise ValueError(f"{js} is not a {FORMAT} description (format: "
                         f"{description.get('format') if isinstance(description, dict) else None!r})")
    if description.get("version") != VERSION:
        raise ValueError(f"{js} has version {description.get('version')!r}; this nn reads version {VERSION}")
    model = from_spec(description["architecture"])
    if not model.built:
        if description.get("input_shape") is None:
            raise ValueError(f"{js} has no input_shape, so the model cannot be built")
        model.build(description["input_shape"])
    return load_weights(model, base)
