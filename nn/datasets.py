"""Data sets as NCHW float arrays: the embedded 8x8 digits, and MNIST read from its IDX files.

Nothing is downloaded. ``load_digits`` reads a small file shipped inside the package (UCI
hand-written digits, as distributed by scikit-learn; see ``nn/_data/README.md``); ``load_mnist``
reads the four standard MNIST files from a folder you provide.

The IDX format (LeCun's MNIST page): a big-endian header, then the values in row-major order.

    bytes 0-1   0x00 0x00
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    then d big-endian int32 sizes, then the data (big-endian values)

so MNIST's images start with the magic number 2051 = 0x00000803 (uint8, 3-D: N x 28 x 28) and
its labels with 2049 = 0x00000801 (uint8, 1-D: N).
"""
from __future__ import annotations

import functools
import gzip
import importlib.resources
import math
import os
import zlib

import numpy as np

__all__ = ["load_digits", "load_mnist", "read_idx", "folder_contents", "DATASETS", "MAX_IDX_BYTES"]

# IDX type codes -> big-endian dtypes
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _float_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy floating dtype, got {dtype!r}") from None
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating dtype (e.g. np.float32), got {dtype}")
    return dtype


# --- the embedded digits --------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _digits_table() -> np.ndarray:
    """The embedded CSV as an int64 table (1797, 65), read once; the last column is the label."""
    resource = importlib.resources.files("nn") / "_data" / "digits.csv.gz"
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape != (1797, 65):
        raise ValueError(f"nn/_data/digits.csv.gz should hold 1797 rows of 65 values, got {table.shape}: "
                         f"the installed package is damaged")
    table.flags.writeable = False
    return table


def load_digits(dtype=np.float32):
    """The 1797 8x8 hand-written digits (UCI ML hand-written digits test set, as in scikit-learn).

    Returns ``(x, y)``: ``x`` of shape (1797, 1, 8, 8) and ``dtype``, the pixel counts 0..16
    divided by 16 so that they lie in [0, 1]; ``y`` int64 labels 0..9 (about 180 of each). Small
    enough to train a CNN on a laptop CPU in seconds; works offline.

    >>> x, y = load_digits()
    >>> x.shape, x.dtype, y.shape, y.dtype
    ((1797, 1, 8, 8), dtype('float32'), (1797,), dtype('int64'))
    >>> float(x.min()), float(x.max()), y[:10].tolist()
    (0.0, 1.0, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> print((x[0, 0] * 16).astype(int))      # a zero
    [[ 0  0  5 13  9  1  0  0]
     [ 0  0 13 15 10 15  5  0]
     [ 0  3 15  2  0 11  8  0]
     [ 0  4 12  0  0  8  8  0]
     [ 0  5  8  0  0  9  8  0]
     [ 0  4 11  0  1 12  7  0]
     [ 0  2 14  5 10 12  0  0]
     [ 0  0  6 13 10  0  0  0]]
    """
    dtype = _float_dtype(dtype)
    table = _digits_table()
    x = (table[:, :64] / 16).astype(dtype).reshape(-1, 1, 8, 8)
    y = table[:, 64].copy()
    return x, y


# --- IDX files ------------------------------------------------------------------------------------

#: The most data (bytes, after decompression) one IDX file may declare: MNIST's training images are 47 MB.
MAX_IDX_BYTES = 1 << 30


class _Reader:
    """The file's bytes in order, decompressed if it is gzip (recognised by its name or its first
    bytes), read only as far as asked: nothing is decompressed beyond what the header promises."""

    def __init__(self, file):
        self.file = file
        self.raw = open(file, "rb")
        self.gzip = str(file).endswith(".gz") or self.raw.read(2) == b"\x1f\x8b"
        self.raw.seek(0)
        self.stream = gzip.GzipFile(fileobj=self.raw, mode="rb") if self.gzip else self.raw

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end), read in chunks of at most 1 MiB."""
        chunks, got = [], 0
        try:
            while got < n:
                chunk = self.stream.read(min(n - got, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{self.file}: not a valid gzip file ({exc})") from None
        return b"".join(chunks)

    def remaining(self) -> int | None:
        """The number of bytes left: from the file's size for a raw file; for gzip, read (at most
        1 MiB more: None when there is more than that), which also checks the CRC at the end."""
        if not self.gzip:
            return os.fstat(self.raw.fileno()).st_size - self.raw.tell()
        extra = len(self.read(1 << 20))
        return extra if extra < 1 << 20 else None

    def close(self):
        self.raw.close()


def _read_idx(file, magic: int | None = None, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file, checking the header against the file before the data is read: the data the
    header promises is at most ``max_bytes``, and (raw files) the file's size is what it promises."""
    reader = _Reader(file)
    try:
        head = reader.read(4)
        if len(head) < 4:
            raise ValueError(f"{file}: too short for an IDX header ({len(head)} bytes)")
        found = int.from_bytes(head, "big")
        if magic is not None and found != magic:
            raise ValueError(f"{file}: wrong magic number: expected {magic} (0x{magic:08X}), got "
                             f"{found} (0x{found:08X})")
        if head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES or head[3] == 0:
            raise ValueError(f"{file}: not an IDX file (magic number 0x{found:08X} should be "
                             f"0x0000TTDD: a known type code TT and at least one dimension DD)")
        dtype, ndim = _IDX_TYPES[head[2]], head[3]
        sizes = reader.read(4 * ndim)
        if len(sizes) < 4 * ndim:
            raise ValueError(f"{file}: truncated header: {ndim} dimensions need {4 + 4 * ndim} bytes, "
                             f"the file has {4 + len(sizes)}")
        shape = tuple(int.from_bytes(sizes[4 * i: 4 * i + 4], "big") for i in range(ndim))
        expected = math.prod(shape) * dtype.itemsize
        promise = f"the header promises {' x '.join(map(str, shape))} values of {dtype.itemsize} byte(s) = " \
                  f"{expected} bytes of data"
        if expected > max_bytes:
            raise ValueError(f"{file}: {promise}, more than max_bytes={max_bytes:,}")
        if not reader.gzip and reader.remaining() != expected:
            left = reader.remaining()
            raise ValueError(f"{file}: {'truncated' if left < expected else 'too long'}: {promise}, found {left}")
        data = reader.read(expected)
        if len(data) < expected:
            raise ValueError(f"{file}: truncated: {promise}, found {len(data)}")
        extra = reader.remaining()
        if extra != 0:
            found_text = f"{expected + extra}" if extra is not None else f"more than {expected + (1 << 20)}"
            raise ValueError(f"{file}: too long: {promise}, found {found_text}")
    finally:
        reader.close()
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(file) -> np.ndarray:
    """Read an IDX file (raw, or gzip-compressed) into a NumPy array of its shape and type.

    The header is checked before the data is read: the data it promises must be at most
    ``MAX_IDX_BYTES`` and (raw files) exactly what the file holds; a gzip file is decompressed only
    as far as the header promises (plus a little, to tell "too long"), so a small file that
    decompresses to gigabytes fails fast. Every problem is a ValueError naming the file.

    >>> import os, struct, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "tiny-labels-idx1-ubyte")
    ...     with open(path, "wb") as f:
    ...         _ = f.write(struct.pack(">ii", 2049, 3) + bytes([7, 0, 9]))
    ...     read_idx(path)
    array([7, 0, 9], dtype=uint8)
    """
    return _read_idx(file)


# --- MNIST ----------------------------------------------------------------------------------------

def folder_contents(folder, expected=(), shown: int = 3) -> str:
    """What ``folder`` holds, in a few words for a one-line error: the names among ``expected`` (each
    also as ``.gz``) in full, the rest as a count and at most ``shown`` examples, however many there are.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for name in ["t10k-images-idx3-ubyte.gz", *(f"notes{i:03}.txt" for i in range(100))]:
    ...         _ = (pathlib.Path(folder) / name).write_bytes(b"")
    ...     folder_contents(folder, MNIST_FILES["test"])
    't10k-images-idx3-ubyte.gz and 100 other files, e.g. notes000.txt, notes001.txt, notes002.txt'
    """
    names = sorted(os.listdir(folder))
    wanted = {n for name in expected for n in (name, name + ".gz")}
    found, others = [n for n in names if n in wanted], [n for n in names if n not in wanted]
    if not names:
        return "nothing"
    if not others:
        return ", ".join(found)
    other = "other " if expected else ""
    more = (f"{len(others)} {other}file{'s' if len(others) > 1 else ''}"
            + (f": {', '.join(others)}" if len(others) <= shown else f", e.g. {', '.join(others[:shown])}"))
    return f"{', '.join(found)} and {more}" if found else more


def _find(folder, name: str, kind: str) -> str:
    """``folder/name`` or ``folder/name.gz``, whichever exists (the raw file first)."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    expected = [n for part in MNIST_FILES.values() for n in part]
    raise FileNotFoundError(f"load_mnist(kind={kind!r}) needs {os.path.join(folder, name)} (or {name}.gz), "
                            f"which is missing; the folder holds: {folder_contents(folder, expected)}")


def _load_mnist_part(folder, part: str, kind: str):
    images_name, labels_name = MNIST_FILES[part]
    images_file, labels_file = _find(folder, images_name, kind), _find(folder, labels_name, kind)
    images = _read_idx(images_file, IMAGES_MAGIC)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{images_file}: expected 28 x 28 images, got {images.shape[1]} x {images.shape[2]}")
    labels = _read_idx(labels_file, LABELS_MAGIC)
    if len(labels) != len(images):
        raise ValueError(f"{labels_file} holds {len(labels)} labels but {images_file} holds "
                         f"{len(images)} images: the counts must match")
    if len(labels) and labels.max() > 9:
        index = int(np.argmax(labels > 9))
        raise ValueError(f"{labels_file}: labels must be 0..9, got {labels[index]} at index {index}")
    return images, labels


def load_mnist(path, kind="train", dtype=np.float32):
    """MNIST from the four standard IDX files in the folder ``path``; nothing is downloaded.

    ``kind`` is "train" (60,000 images: train-images-idx3-ubyte, train-labels-idx1-ubyte),
    "test" (10,000: t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) or "all" (train then test).
    Each file may be raw or gzip-compressed (the same name plus ``.gz``). Returns ``(x, y)``:
    ``x`` of shape (N, 1, 28, 28) and ``dtype``, the pixel values 0..255 divided by 255 so that
    they lie in [0, 1]; ``y`` int64 labels 0..9.

    The files are checked: magic numbers (2051 images, 2049 labels), 28 x 28 images, data
    length against the header, as many labels as images, labels in 0..9; a problem raises an
    error naming the file.

    >>> x, y = load_mnist("/path/to/mnist", kind="test")     # doctest: +SKIP
    >>> x.shape, x.dtype, y.shape, y.dtype                   # doctest: +SKIP
    ((10000, 1, 28, 28), dtype('float32'), (10000,), dtype('int64'))
    """
    if kind not in ("train", "test", "all"):
        raise ValueError(f"kind must be 'train', 'test' or 'all', got {kind!r}")
    dtype = _float_dtype(dtype)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder name (str or os.PathLike), got {type(path).__name__}")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"path must be a folder holding the MNIST files, got {os.fspath(path)!r} "
                                f"({'a file' if os.path.exists(path) else 'it does not exist'})")
    parts = ["train", "test"] if kind == "all" else [kind]
    for part in parts:   # every file must be there before any is read
        for name in MNIST_FILES[part]:
            _find(path, name, kind)
    loaded = [_load_mnist_part(path, part, kind) for part in parts]
    images = np.concatenate([images for images, _ in loaded])
    labels = np.concatenate([labels for _, labels in loaded])
    x = (images.reshape(-1, 1, 28, 28) / dtype.type(255)).astype(dtype, copy=False)
    return x, labels.astype(np.int64)


# The data sets by name (the command line's ``--dataset`` choices). ``load_digits()`` needs nothing;
# a loader that reads files takes the folder and the part, as ``load_mnist(path, kind)``.
DATASETS = {"digits": load_digits, "mnist": load_mnist}
