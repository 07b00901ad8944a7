"""Reading the models earlier versions saved: ``x.npz`` (the arrays, no pickle) beside ``x.json``.

The pair is read with the checks ``nn.load`` applies to its own format, before anything is
allocated: the JSON is at most ``MAX_JSON`` bytes; every array's ``.npy`` header inside the zip is
read first (shape, dtype: numeric, not object; at most ``MAX_NDIM`` dimensions) and the total it
implies is held to ``max_bytes`` and to the zip entry's size, so a header declaring (10**12,)
fails at once instead of allocating. The arrays themselves are read only after that
(``allow_pickle=False``: loading runs no code). New models are saved as one safetensors file.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .schema import DTYPES, FORMAT, MAX_NDIM, ModelFileError

__all__ = ["legacy_paths", "read_legacy", "LEGACY_VERSION", "MAX_JSON"]

LEGACY_VERSION = 1
MAX_JSON = 16 << 20   # a description of at most 16 MiB


def legacy_paths(path):
    """(``x.npz``, ``x.json``) for ``x``, ``x.npz`` or ``x.json``."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (".npz", ".json", ".safetensors") else path
    return base.with_suffix(".npz"), base.with_suffix(".json")


def _description(js: Path):
    if not js.is_file():
        raise FileNotFoundError(f"no model description {js}")
    size = js.stat().st_size
    if size > MAX_JSON:
        raise ModelFileError(f"{js}: a description of {size:,} bytes, more than the cap of {MAX_JSON:,}")
    try:
        description = json.loads(js.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{js} is not valid JSON (corrupt or truncated?): {exc}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        found = description.get("format") if isinstance(description, dict) else None
        raise ModelFileError(f"{js} is not a {FORMAT} description (format: {found!r})")
    if description.get("version") != LEGACY_VERSION:
        raise ModelFileError(f"{js} has version {description.get('version')!r}; expected {LEGACY_VERSION}")
    return description


def _npy_header(archive, info, npz):
    """(shape, dtype name, bytes) of one ``.npy`` member, from its header alone."""
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f, max_header_size=10_000)
        except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
            raise ModelFileError(f"{npz}: {info.filename} has no valid .npy header: {exc}") from None
        offset = f.tell()
    if dtype.name not in DTYPES or len(shape) > MAX_NDIM:
        raise ModelFileError(f"{npz}: {info.filename} is an array of dtype {dtype} and {len(shape)} dimensions; "
                             f"expected one of {list(DTYPES)} with at most {MAX_NDIM}")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise ModelFileError(f"{npz}: {info.filename} declares shape {shape} ({nbytes:,} bytes) but its entry holds "
                             f"{info.file_size - offset:,} bytes of data (corrupt or hostile)")
    return tuple(shape), dtype.name, nbytes


def read_legacy(npz: Path, js: Path, max_bytes: int):
    """(description, stored {name: (shape, dtype)}, a function reading the arrays) of the legacy pair."""
    description = _description(js)
    if not npz.is_file():
        raise FileNotFoundError(f"no weights file {npz}")
    stored, total = {}, 0
    try:
        with zipfile.ZipFile(npz) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise ModelFileError(f"{npz}: unexpected member {info.filename!r} (an .npz holds .npy files)")
                shape, dtype, nbytes = _npy_header(archive, info, npz)
                total += nbytes
                if total > max_bytes:
                    raise ModelFileError(f"{npz}: the stored arrays would take more than max_bytes={max_bytes:,} "
                                         f"bytes ({info.filename} alone declares shape {shape})")
                stored[info.filename[:-4]] = (shape, dtype)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ModelFileError(f"{npz} is not a readable .npz weights file (corrupt or truncated?): {exc}") from None

    def arrays():
        try:
            with np.load(npz, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ModelFileError(f"{npz} is not a readable .npz weights file (corrupt or truncated?): {exc}") \
                from None

    return description, stored, arrays
