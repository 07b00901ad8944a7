"""The README stays true: its commands are what CI runs, and its main job works.

(The README's Python examples are doctests, run by pytest's --doctest-glob=README.md.)
"""
import io
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np

import pytest

from autodiff.examples import eq_5_37
from chainrule.cli import main

from _requires import require  # tests/_requires.py

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _quick_start_commands():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quick_start_has_two_commands_and_ci_runs_exactly_them():
    commands = _quick_start_commands()
    assert len(commands) == 2, commands
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci_lines, f"README command not run by .ci/run: {command}"
    assert "chainrule train" in commands[0] and "pytest" in commands[1]


def test_packaging_installs_every_package_and_subpackage_and_the_console_script():
    from setuptools import find_packages

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "chainrule"
    include = meta["tool"]["setuptools"]["packages"]["find"]["include"]
    installed = set(find_packages(str(ROOT), include=include))
    on_disk = {str(init.parent.relative_to(ROOT)).replace(os.sep, ".")
               for top in ("autodiff", "kernels", "nn", "chainrule") for init in (ROOT / top).rglob("__init__.py")}
    assert {"autodiff", "kernels", "kernels.conv2d", "kernels.pool2d", "kernels.optim", "nn", "chainrule"} <= on_disk
    assert installed == on_disk
    assert meta["project"]["scripts"]["chainrule"] == "chainrule.cli:main"
    assert meta["project"]["requires-python"] == ">=3.11"


def _demo_rows(text):
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and re.fullmatch(r"-?\d+\.\d{3}", parts[0]):
            rows[float(parts[0])] = [float(p) for p in parts[1:4]]
    return rows


def test_demo_prints_eq_5_37_three_ways(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["demo", "--at", "-1", "0.5", "2"]) == 0
    text = out.getvalue()
    assert "dy/dx = " in text and "9 primitives" in text
    rows = _demo_rows(text)
    assert sorted(rows) == [-1.0, 0.5, 2.0]
    for x, values in rows.items():
        np.testing.assert_allclose(values, eq_5_37(x), rtol=1e-12)


def test_demo_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "chainrule", "demo", "--at", "0.25"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (values,) = _demo_rows(result.stdout).values()
    np.testing.assert_allclose(values, eq_5_37(0.25), rtol=1e-12)


def _command_line_examples():
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    return [line for block in re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)
            for line in block.splitlines() if line.startswith("chainrule ")]


def _fake_mnist_test_set(folder, n=300):
    """MNIST's two test files (IDX, gzip) holding n random images, for the README's train example."""
    import gzip

    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    images = rng.integers(0, 50, (n, 28, 28)).astype(np.uint8)
    images[np.arange(n), labels * 2 + 4, 4:24] = 255           # a learnable mark: a bright row per class
    header = lambda magic, *dims: np.array([magic, *dims], dtype=">i4").tobytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header(2051, n, 28, 28) + images.tobytes()))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header(2049, n) + labels.astype(np.uint8).tobytes()))


def test_the_command_line_examples_are_train_graph_check():
    assert [c.split()[1] for c in _command_line_examples()] == ["train", "graph", "check"]


@pytest.mark.parametrize("command", _command_line_examples(), ids=lambda c: c.split()[1])
def test_every_command_line_example_runs(command, tmp_path, monkeypatch):
    if command.split()[1] == "graph":
        require("dot")   # it writes SVG pictures: skipped without `dot`, except in CI (tests/_requires.py)
    (tmp_path / "mnist").mkdir()
    _fake_mnist_test_set(tmp_path / "mnist")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(shlex.split(command.replace("PATH", str(tmp_path / "mnist")))[1:]) == 0, command
    if command.split()[1] == "train":
        assert "Total params: 34,826" in out.getvalue() and "Epoch 12/12" in out.getvalue()
        assert "(60 held-out images)" in out.getvalue()
        assert (tmp_path / "runs" / "keras-mnist-cnn" / "history.svg").exists()
    if command.split()[1] == "graph":
        assert (tmp_path / "graph.svg").exists() and len(list((tmp_path / "graph_steps").glob("*.svg"))) == 10
