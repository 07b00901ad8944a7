"""The schema of a saved model's description, checked before anything is built or allocated.

A model file (``nn.save``) describes its architecture as JSON: layer specs ``{"class", "name",
"config"}`` (:func:`nn.module.layer_spec`), containers holding theirs in ``config["layers"]``.
:func:`check_description` holds that JSON, which may come from anyone, to a schema first:

- the description has the format's keys; ``state`` declares every stored array's shape and dtype;
- a layer's class is one of the whitelist ``nn.LAYERS``, its name an identifier (or absent);
- containers nest at most ``MAX_DEPTH`` deep and hold at most ``MAX_LAYERS`` layers in all;
- a configuration holds only numbers, strings, booleans, None and short lists of them; every size
  (``units``, ``filters``, ``shape``, ``kernel_size``, ...) is at most ``MAX_SIZE``, an input at
  most ``MAX_INPUT_VALUES`` values per example; floats are finite.

Each refusal is a ``ModelFileError`` (a ``ValueError``) naming the place (``architecture.layers[2]``), the number and the
cap. The layers' own constructors then check their arguments (a float ``units`` is refused there),
and ``nn.load`` builds inside a :func:`nn.module.parameter_budget` of the values the file holds.

>>> check_architecture({"class": "Input", "config": {"shape": [1000000, 8, 8]}})
Traceback (most recent call last):
...
nn.schema.ModelFileError: architecture: Input config shape[0] = 1000000 is above the cap of 65,536
"""
from __future__ import annotations

import math

from .module import LAYERS

__all__ = ["ModelFileError", "FORMAT", "brief", "check_description", "check_architecture", "check_shape", "MAX_DEPTH",
           "MAX_LAYERS", "MAX_SIZE", "MAX_INPUT_VALUES", "DTYPES"]

FORMAT = "chainrule-model"   # the "format" of every description nn.save writes


class ModelFileError(ValueError):
    """A model file that cannot be loaded: corrupt, truncated, hostile, or not a model file at all."""


MAX_DEPTH = 16               # containers inside containers
MAX_LAYERS = 10_000          # layers in all
MAX_SIZE = 65_536            # any one size: units, filters, a kernel side, an input dimension
MAX_INPUT_VALUES = 1 << 24   # values in one example (C x H x W)
MAX_LIST = 8                 # items in a configuration's list (a shape, a pair)
MAX_TEXT = 64                # characters in a configuration's string
MAX_NDIM = 8                 # dimensions of a stored array
#: The dtypes a stored array may have (parameters and buffers are floating point).
DTYPES = ("float16", "float32", "float64")
SIZE_KEYS = frozenset({"units", "filters", "shape", "kernel_size", "pool_size", "stride", "padding", "dilation",
                       "groups", "pieces"})
CHILD_KEYS = frozenset({"layers", "shortcut"})   # a container's lists of layer specs
SPEC_KEYS = frozenset({"class", "name", "config"})
DESCRIPTION_KEYS = frozenset({"format", "version", "architecture", "input_shape", "state", "metadata"})


def _fail(where, message):
    raise ModelFileError(f"{where}: {message}")


def _type(value):
    return type(value).__name__


def check_shape(shape, where, cap=MAX_SIZE, minimum=1):
    """``shape`` (a list of ints, each in ``minimum``..``cap``) as a tuple, or a ValueError naming ``where``."""
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        _fail(where, f"expected a list of at most {MAX_NDIM} ints, got {brief(shape)}")
    for i, s in enumerate(shape):
        if isinstance(s, bool) or not isinstance(s, int):
            _fail(where, f"[{i}] must be an int, got {brief(s)}")
        if not minimum <= s <= cap:
            _fail(where, f"[{i}] = {s} is outside {minimum}..{cap:,}")
    return tuple(shape)


def brief(value):
    """``repr(value)``, cut to 60 characters (for messages about values that may be huge)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_scalar(value, where, size):
    """One configuration value; ``where`` reads "architecture.layers[1]: Dense config units"."""
    def fail(message):
        raise ModelFileError(f"{where} {message}")

    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            fail(f"must be a finite number, got {value!r}")
        if size and abs(value) > MAX_SIZE:
            fail(f"= {value:g} is above the cap of {MAX_SIZE:,}" if isinstance(value, float)
                 else f"= {value} is above the cap of {MAX_SIZE:,}")
        return
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            fail(f"is a string of {len(value):,} characters, more than {MAX_TEXT}")
        return
    fail(f"must be a number, a string, a boolean or null, got {_type(value)}")


def _check_config(config, where, kind, depth, count):
    if not isinstance(config, dict):
        _fail(where, f"config must be an object, got {_type(config)}")
    for key, value in config.items():
        place = f"{kind} config {key}"
        if not key.isidentifier():
            _fail(where, f"config key {brief(key)} is not an identifier")
        if key in CHILD_KEYS:
            if value is None and key == "shortcut":
                continue
            if not isinstance(value, list):
                _fail(where, f"{place} must be a list of layer specs, got {_type(value)}")
            for i, child in enumerate(value):
                _check_spec(child, f"{where}.{key}[{i}]", depth + 1, count)
        elif isinstance(value, list):
            if len(value) > MAX_LIST:
                _fail(where, f"{place} is a list of {len(value):,} items, more than {MAX_LIST}")
            for i, item in enumerate(value):
                _check_scalar(item, f"{where}: {place}[{i}]", key in SIZE_KEYS)
        else:
            _check_scalar(value, f"{where}: {place}", key in SIZE_KEYS)


def _check_spec(spec, where, depth, count):
    if depth > MAX_DEPTH:
        _fail(where, f"containers nest more than {MAX_DEPTH} deep")
    count[0] += 1
    if count[0] > MAX_LAYERS:
        _fail(where, f"the architecture has more than {MAX_LAYERS:,} layers")
    if not isinstance(spec, dict):
        _fail(where, f"a layer spec must be an object, got {_type(spec)}")
    extra = sorted(set(spec) - SPEC_KEYS)
    if extra:
        _fail(where, f"unexpected keys {extra} in a layer spec (expected {sorted(SPEC_KEYS)})")
    cls = spec.get("class")
    if not isinstance(cls, str) or cls not in LAYERS:
        _fail(where, f"unknown layer class {brief(cls)}; known: {sorted(LAYERS)}")
    name = spec.get("name")
    if name is not None and (not isinstance(name, str) or not name.isidentifier() or name.startswith("_")
                             or len(name) > MAX_TEXT):
        _fail(where, f"a layer name must be an identifier of at most {MAX_TEXT} characters not starting with '_', "
                     f"got {brief(name)}")
    config = spec.get("config", {})
    _check_config(config, where, cls, depth, count)
    if cls == "Input":
        shape = check_shape(config.get("shape"), f"{where}: Input config shape")
        if math.prod(shape) > MAX_INPUT_VALUES:
            _fail(where, f"Input shape {list(shape)} holds {math.prod(shape):,} values per example, more than "
                         f"the cap of {MAX_INPUT_VALUES:,}")


def check_architecture(spec, where="architecture"):
    """Check a layer spec tree against the schema (see the module docstring); returns it."""
    _check_spec(spec, where, 0, [0])
    return spec


def check_description(description, where):
    """Check a model description (``where``: the file, for the messages); returns its state
    declarations as {name: (shape, dtype)}."""
    if not isinstance(description, dict):
        _fail(where, f"the description must be a JSON object, got {_type(description)}")
    missing = sorted(DESCRIPTION_KEYS - set(description))
    extra = sorted(set(description) - DESCRIPTION_KEYS)
    if missing or extra:
        _fail(where, f"the description should have the keys {sorted(DESCRIPTION_KEYS)}; "
                     f"missing {missing}, unexpected {extra}")
    check_architecture(description["architecture"], f"{where}: architecture")
    if description["input_shape"] is not None:
        shape = check_shape(description["input_shape"], f"{where}: input_shape")
        if math.prod(shape) > MAX_INPUT_VALUES:
            _fail(where, f"input_shape {list(shape)} holds {math.prod(shape):,} values per example, more than "
                         f"the cap of {MAX_INPUT_VALUES:,}")
    if not isinstance(description["metadata"], dict):
        _fail(where, f"metadata must be an object, got {_type(description['metadata'])}")
    state = description["state"]
    if not isinstance(state, dict) or len(state) > MAX_LAYERS * 4:
        _fail(where, f"state must be an object of at most {MAX_LAYERS * 4:,} entries, got {brief(state)}")
    declared = {}
    for name, entry in state.items():
        place = f"{where}: state[{name!r}]"
        if not isinstance(entry, dict) or set(entry) != {"shape", "dtype"}:
            _fail(place, f"expected {{'shape': [...], 'dtype': ...}}, got {brief(entry)}")
        shape = check_shape(entry["shape"], f"{place} shape", cap=2 ** 62, minimum=0)
        if entry["dtype"] not in DTYPES:
            _fail(place, f"dtype must be one of {list(DTYPES)}, got {brief(entry['dtype'])}")
        declared[name] = (shape, entry["dtype"])
    return declared
