"""``chainrule train --data-dir``: refused on one line, however many files the folder holds (the files
expected, a count and a few names of what is there), before anything changes (nn's generator included)."""
import io
import sys

import pytest

from chainrule.cli import main


def _run(monkeypatch, *argv):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return main(list(argv)), out.getvalue(), err.getvalue()


def _one_line(monkeypatch, *argv):
    code, out, err = _run(monkeypatch, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("chainrule train: "), err
    return err.strip()


def test_a_folder_of_100_unrelated_files_is_one_short_line(tmp_path, monkeypatch):
    for i in range(100):
        (tmp_path / f"note{i:03}.txt").write_text("not MNIST")
    err = _one_line(monkeypatch, "train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--output",
                    str(tmp_path / "run"))
    assert err == (f"chainrule train: --data-dir {tmp_path}: expected the MNIST IDX files t10k-images-idx3-ubyte "
                   f"and t10k-labels-idx1-ubyte (the test set; with train-images-idx3-ubyte and "
                   f"train-labels-idx1-ubyte, the training set too), each raw or .gz; found 100 other files, "
                   f"e.g. note000.txt, note001.txt, note002.txt")
    assert len(err) < 400 and "note003" not in err
    assert not (tmp_path / "run").exists()


def test_the_data_dir_is_checked_before_the_seed_is_set(tmp_path, monkeypatch):
    import nn

    nn.set_seed(123)
    before = nn.utils.rng().bit_generator.state
    _one_line(monkeypatch, "train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--seed", "7")
    assert nn.utils.rng().bit_generator.state == before


@pytest.mark.parametrize("files, says", [
    ([], "found nothing"),
    (["t10k-images-idx3-ubyte.gz", "README"], "found t10k-images-idx3-ubyte.gz and 1 other file: README"),
    (["train-images-idx3-ubyte", "train-labels-idx1-ubyte"], "found train-images-idx3-ubyte, train-labels-idx1-ubyte"),
])
def test_what_the_folder_holds_is_said(tmp_path, monkeypatch, files, says):
    for name in files:
        (tmp_path / name).write_bytes(b"")
    err = _one_line(monkeypatch, "train", "--dataset", "mnist", "--data-dir", str(tmp_path))
    assert err.endswith(says)


def test_half_the_training_files_is_refused_not_silently_dropped(tmp_path, monkeypatch):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte.gz"):
        (tmp_path / name).write_bytes(b"")
    err = _one_line(monkeypatch, "train", "--dataset", "mnist", "--data-dir", str(tmp_path))
    assert err == (f"chainrule train: --data-dir {tmp_path}: found train-images-idx3-ubyte but not "
                   f"train-labels-idx1-ubyte (raw or .gz): give both training files, or neither to learn from "
                   f"the test set alone")


@pytest.mark.parametrize("where, says", [("missing", "(no such folder)"), ("file", "(a file)")])
def test_a_data_dir_that_is_no_folder(tmp_path, monkeypatch, where, says):
    path = tmp_path / where
    if where == "file":
        path.write_text("x")
    err = _one_line(monkeypatch, "train", "--dataset", "mnist", "--data-dir", str(path))
    assert err == f"chainrule train: --data-dir must be a folder holding the MNIST IDX files, got {str(path)!r} {says}"


def test_a_data_dir_for_a_shipped_data_set_is_refused(tmp_path, monkeypatch):
    """--data-dir ~/mnist without --dataset mnist trained on the 8x8 digits, the folder ignored."""
    err = _one_line(monkeypatch, "train", "--data-dir", str(tmp_path))
    assert "--data-dir is for the data sets read from files (--dataset mnist); --dataset digits is shipped" in err


def test_load_mnist_says_a_count_and_a_few_names_too(tmp_path):
    import nn

    for i in range(50):
        (tmp_path / f"f{i:02}.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as info:
        nn.datasets.load_mnist(tmp_path, kind="test")
    message = str(info.value)
    assert message.endswith("which is missing; the folder holds: 50 other files, e.g. f00.bin, f01.bin, f02.bin")
    assert "f03.bin" not in message
