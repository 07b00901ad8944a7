"""nn.datasets: the embedded digits and MNIST's IDX files. The IDX files are written here, byte by
byte with ``struct`` (valid, truncated, wrong magic, corrupt gzip, mismatched counts), so the tests
need neither the network nor any real MNIST folder."""
import csv
import gzip
import hashlib
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import nn.datasets
from nn.datasets import load_digits, load_mnist, read_idx

SHIPPED_DIGITS = Path(nn.datasets.__file__).parent / "_data" / "digits.csv.gz"

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(array, magic=None):
    """The IDX encoding of ``array``, written out from the format's definition."""
    array = np.asarray(array)
    if magic is None:
        magic = (IDX_CODES[array.dtype] << 8) | array.ndim
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data: bytes, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def fake_mnist(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_mnist(folder, part="test", n=4, seed=0, compress=False, images=None, labels=None):
    stem = {"train": "train", "test": "t10k"}[part]
    img, lab = fake_mnist(n, seed)
    img = img if images is None else images
    lab = lab if labels is None else labels
    suffix = ".gz" if compress else ""
    write(folder / f"{stem}-images-idx3-ubyte{suffix}", idx_bytes(img), compress)
    write(folder / f"{stem}-labels-idx1-ubyte{suffix}", idx_bytes(lab), compress)
    return img, lab


# --- read_idx -------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("array", [np.arange(7, dtype=np.uint8),
                                   np.arange(-6, 6, dtype=np.int8).reshape(3, 4),
                                   np.arange(24, dtype=np.int16).reshape(2, 3, 4) * -300,
                                   np.array([[70000, -1]], dtype=np.int32),
                                   np.linspace(-1, 1, 10, dtype=np.float32).reshape(5, 2),
                                   np.array([np.pi, -np.e, 1e300])])
def test_read_idx_round_trip(tmp_path, array, compress):
    path = write(tmp_path / ("a.idx" + (".gz" if compress else "")), idx_bytes(array), compress)
    out = read_idx(path)
    assert out.shape == array.shape and out.dtype == array.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    out[...] = 0                                                  # a writable array of its own


def test_read_idx_recognises_gzip_by_content(tmp_path):
    path = write(tmp_path / "labels-idx1-ubyte", idx_bytes(np.array([3, 1], np.uint8)), compress=True)
    np.testing.assert_array_equal(read_idx(path), [3, 1])


def test_read_idx_known_bytes(tmp_path):
    # magic 0x00000802 (uint8, 2-D), sizes 2 and 2, then the four values row by row
    data = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 255])
    np.testing.assert_array_equal(read_idx(write(tmp_path / "m", data)), [[1, 2], [3, 255]])


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", r"too short for an IDX header \(2 bytes\)"),
    (struct.pack(">i", 0x01000801) + struct.pack(">i", 1) + b"\x00", "not an IDX file"),
    (struct.pack(">i", 0x00000701) + struct.pack(">i", 1) + b"\x00", "not an IDX file"),     # type 0x07
    (struct.pack(">i", 0x00000803) + struct.pack(">i", 1), r"truncated header: 3 dimensions need 16 bytes"),
    (struct.pack(">ii", 2049, 5) + b"\x01\x02", r"truncated: .* 5 values of 1 byte\(s\) = 5 bytes of data, found 2"),
    (struct.pack(">ii", 2049, 1) + b"\x01\x02", r"too long: .* = 1 bytes of data, found 2"),
])
def test_read_idx_errors_name_the_file(tmp_path, data, message):
    path = write(tmp_path / "broken-idx", data)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_corrupt_and_truncated_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    garbage = write(tmp_path / "garbage.gz", b"this is not gzip at all")
    with pytest.raises(ValueError, match=r"garbage.gz: not a valid gzip file"):
        read_idx(garbage)
    cut = write(tmp_path / "cut.gz", good[:len(good) // 2])
    with pytest.raises(ValueError, match=r"cut.gz: not a valid gzip file"):
        read_idx(cut)
    flipped = bytearray(good)
    flipped[-6] ^= 0xFF                                     # a byte of the CRC-32 trailer
    with pytest.raises(ValueError, match=r"crc.gz: not a valid gzip file"):
        read_idx(write(tmp_path / "crc.gz", bytes(flipped)))


def test_read_idx_checks_the_header_before_reading_the_data(tmp_path):
    huge = struct.pack(">iiii", 2051, 2 ** 31 - 1, 28, 28)          # 1.7 TB promised by a 16-byte file
    with pytest.raises(ValueError, match=r"2147483647 x 28 x 28 values of 1 byte\(s\) = 1683627179248 bytes of "
                                         r"data, more than max_bytes=1,073,741,824"):
        read_idx(write(tmp_path / "huge-idx3-ubyte", huge))
    with pytest.raises(ValueError, match=r"more than max_bytes"):
        read_idx(write(tmp_path / "huge-idx3-ubyte.gz", huge, compress=True))
    # a 1 MB gzip file that decompresses to 1 GB behind a header promising 10 images: refused at once
    zeros = gzip.compress(b"\0" * (1 << 24), compresslevel=9)
    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(struct.pack(">iiii", 2051, 10, 28, 28)) + zeros * 64)
    inflated = []
    real_read = gzip.GzipFile.read

    def counting_read(self, size=-1):
        data = real_read(self, size)
        inflated.append(len(data))
        return data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gzip.GzipFile, "read", counting_read)
        with pytest.raises(ValueError, match=r"bomb-idx3-ubyte.gz: too long: .* = 7840 bytes of data, found more "
                                             r"than 1056416"):
            read_idx(bomb)
    assert 0 < sum(inflated) <= 16 + 7840 + (1 << 20)   # header, the data promised, one MiB more: not 1 GiB
    tail = write(tmp_path / "tail-idx1-ubyte.gz", struct.pack(">ii", 2049, 2) + b"\x01\x02\x03", compress=True)
    with pytest.raises(ValueError, match=r"too long: .* = 2 bytes of data, found 3"):
        read_idx(tail)


# --- load_mnist -----------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_reads_and_scales(tmp_path, compress):
    img, lab = write_mnist(tmp_path, "test", n=5, compress=compress)
    x, y = load_mnist(tmp_path, kind="test")
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (5,) and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], img / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, lab)
    assert 0 <= x.min() and x.max() <= 1


def test_load_mnist_train_test_all_and_mixed_compression(tmp_path):
    train_img, train_lab = write_mnist(tmp_path, "train", n=6, seed=1, compress=True)
    test_img, test_lab = write_mnist(tmp_path, "test", n=3, seed=2, compress=False)
    x, y = load_mnist(str(tmp_path), kind="train", dtype=np.float64)
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x[:, 0] * 255, train_img)
    np.testing.assert_array_equal(y, train_lab)
    x, y = load_mnist(tmp_path, kind="all")
    assert x.shape == (9, 1, 28, 28)
    np.testing.assert_array_equal(y, np.concatenate([train_lab, test_lab]))   # train first, then test
    np.testing.assert_allclose(x[6:, 0], test_img / 255.0, rtol=1e-6)


def test_load_mnist_with_only_the_test_files(tmp_path):
    write_mnist(tmp_path, "test", n=2, compress=True)
    assert load_mnist(tmp_path, kind="test")[0].shape == (2, 1, 28, 28)
    for kind in ("train", "all"):
        with pytest.raises(FileNotFoundError,
                           match=rf"load_mnist\(kind='{kind}'\) needs .*train-images-idx3-ubyte \(or "
                                 r"train-images-idx3-ubyte.gz\), which is missing; the folder holds: "
                                 r"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"):
            load_mnist(tmp_path, kind=kind)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_truncated_images(tmp_path, compress):
    write_mnist(tmp_path, "test", n=3, compress=compress)
    name = "t10k-images-idx3-ubyte" + (".gz" if compress else "")
    full = idx_bytes(fake_mnist(3)[0])
    write(tmp_path / name, full[:-100], compress)
    with pytest.raises(ValueError, match=rf"{name}: truncated: the header promises 3 x 28 x 28 values of "
                                         r"1 byte\(s\) = 2352 bytes of data, found 2252"):
        load_mnist(tmp_path, kind="test")


def test_load_mnist_wrong_magic(tmp_path):
    img, lab = write_mnist(tmp_path, "test", n=2)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(lab))          # a labels file in its place
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: wrong magic number: expected 2051 "
                                         r"\(0x00000803\), got 2049 \(0x00000801\)"):
        load_mnist(tmp_path, kind="test")
    write_mnist(tmp_path, "test", n=2)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(lab.astype(np.int32)))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: wrong magic number: expected 2049"):
        load_mnist(tmp_path, kind="test")


def test_load_mnist_corrupt_gzip(tmp_path):
    write_mnist(tmp_path, "test", n=2, compress=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00 definitely broken")
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: not a valid gzip file"):
        load_mnist(tmp_path, kind="test")


def test_load_mnist_mismatched_counts(tmp_path):
    img, lab = fake_mnist(5)
    write_mnist(tmp_path, "test", images=img, labels=lab[:4])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte holds 4 labels but .*t10k-images-idx3-ubyte "
                                         r"holds 5 images"):
        load_mnist(tmp_path, kind="test")


def test_load_mnist_labels_and_image_size_are_checked(tmp_path):
    img, lab = fake_mnist(4)
    lab[2] = 10
    write_mnist(tmp_path, "test", images=img, labels=lab)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: labels must be 0..9, got 10 at index 2"):
        load_mnist(tmp_path, kind="test")
    write_mnist(tmp_path, "test", images=np.zeros((4, 27, 28), np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: expected 28 x 28 images, got 27 x 28"):
        load_mnist(tmp_path, kind="test")


def test_load_mnist_argument_errors(tmp_path):
    write_mnist(tmp_path, "test", n=1)
    with pytest.raises(ValueError, match=r"kind must be 'train', 'test' or 'all', got 'val'"):
        load_mnist(tmp_path, kind="val")
    with pytest.raises(TypeError, match="dtype must be a floating dtype .* got uint8"):
        load_mnist(tmp_path, kind="test", dtype=np.uint8)
    with pytest.raises(FileNotFoundError, match=r"path must be a folder .*\(it does not exist\)"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"path must be a folder .*\(a file\)"):
        load_mnist(tmp_path / "t10k-labels-idx1-ubyte")


# --- load_digits ----------------------------------------------------------------------------------

def test_load_digits_shapes_range_and_labels():
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 1
    counts = x * 16
    np.testing.assert_array_equal(counts, np.round(counts))          # pixel counts 0..16, over 16
    np.testing.assert_array_equal(np.bincount(y), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    assert load_digits(np.float64)[0].dtype == np.float64


def test_load_digits_returns_fresh_arrays():
    x, y = load_digits()
    x[:] = -1
    y[:] = -1
    x2, y2 = load_digits()
    assert x2.min() == 0 and y2.min() == 0


def test_load_digits_matches_the_csv_read_by_the_csv_module():
    with gzip.open(SHIPPED_DIGITS, "rt", newline="") as f:
        rows = [[int(v) for v in row] for row in csv.reader(f)]
    x, y = load_digits(np.float64)
    np.testing.assert_array_equal(x.reshape(-1, 64) * 16, [row[:64] for row in rows])
    np.testing.assert_array_equal(y, [row[64] for row in rows])


def test_the_shipped_file_is_the_one_its_readme_records():
    """The SHA-256 in nn/_data/README.md is that of scikit-learn 1.9.1's digits.csv.gz (checked against
    an installed scikit-learn when the file was copied); here the shipped copy is held to it, with no
    scikit-learn needed, so the check runs in CI too."""
    recorded = re.search(r"SHA-256\s+`([0-9a-f]{64})`", (SHIPPED_DIGITS.parent / "README.md").read_text()).group(1)
    assert hashlib.sha256(SHIPPED_DIGITS.read_bytes()).hexdigest() == recorded


def test_load_digits_dtype_error():
    with pytest.raises(TypeError, match="dtype must be a floating dtype .* got int64"):
        load_digits(np.int64)
