"""The command line: graph and check on user expressions (demo: tests/test_readme.py; train:
tests/nn/test_training.py), and the parser's choices, read from the registries."""
import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autodiff.examples import eq_5_37
from chainrule.cli import build_parser, main

from _requires import requires_dot  # tests/_requires.py

ROOT = Path(__file__).resolve().parents[1]
EQ_5_36 = "exp(sin(x) + sin(x)**2) + sin(exp(x) + exp(x)**2)"


def _run(monkeypatch, *argv):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return main(list(argv)), out.getvalue(), err.getvalue()


@requires_dot
def test_graph_writes_the_picture_and_the_steps(tmp_path, monkeypatch):
    target = tmp_path / "graph.svg"
    code, out, err = _run(monkeypatch, "graph", EQ_5_36, "--at", "x=0.5", "-o", str(target), "--steps")
    assert code == 0, err
    assert out.splitlines()[:2] == ["a = sin(x)", "b = a ** 2"]
    table = [line for line in out.split("saved")[0].splitlines() if line.strip()]
    assert table[-1].split()[:3] == ["x", "0.5", f"{eq_5_37(0.5):.6g}"]   # the trace table's last row
    assert "<svg" in target.read_text()
    steps = sorted((tmp_path / "graph_steps").glob("step_*.svg"))
    assert len(steps) == 10   # x and the nine lines of eq. 5.38: one picture per node swept
    assert "saved 10 step pictures" in out


def test_graph_without_dot_explains_and_keeps_the_source(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, err = _run(monkeypatch, "graph", "sin(x) * x", "--at", "x=1", "-o", str(tmp_path / "g.svg"))
    assert code == 2 and "apt-get install graphviz" in err and err.count("\n") == 1
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def test_check_prints_the_comparison_table(monkeypatch):
    code, out, err = _run(monkeypatch, "check", EQ_5_36, "--at", "x=0.5")
    assert code == 0, err
    assert out.startswith("reference: SymPy")
    row = next(line for line in out.splitlines() if line.strip().startswith("reverse mode"))
    assert float(row.split()[2]) == pytest.approx(eq_5_37(0.5), rel=1e-14)


def test_at_given_more_than_once_keeps_every_variable(monkeypatch):
    """--at x=1 --at y=2 dropped x=1 (argparse kept the last) and then said x was unknown."""
    code, out, err = _run(monkeypatch, "check", "x*y", "--at", "x=1", "--at", "y=2")
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.strip().startswith("reverse mode"))
    assert [float(v) for v in row.split()[2:4]] == [2.0, 1.0]           # d/dx = y, d/dy = x
    code, out, err = _run(monkeypatch, "check", "x*y", "--at", "x=1", "--at", "x=2")
    assert code == 2 and err == "chainrule check: --at: 'x' is given twice\n"


def test_malicious_or_bad_input_is_rejected_without_evaluation(tmp_path, monkeypatch):
    code, out, err = _run(monkeypatch, "check", "__import__('os').system('touch pwned')", "--at", "x=1")
    assert code == 2 and err.startswith("chainrule check: unknown function '__import__'") and err.count("\n") == 1
    assert "(column 1: '__import__')" in err
    assert not os.path.exists("pwned")
    code, _, err = _run(monkeypatch, "graph", "sin(x)", "--at", "x=abc")
    assert code == 2 and "must be a number" in err


# --- hostile or careless input: one line on stderr and exit status 2, never a traceback -----------------------

@pytest.mark.parametrize("argv, message", [
    (["check", "sin(x)(1)", "--at", "x=1"], "only a function's name can be called (e.g. sin(x)), not 'sin(x)'"),
    (["check", "x + 9**9**9", "--at", "x=1"], "9**9**9 is not a finite real number (inf)"),
    (["check", "x + " + "9" * 400, "--at", "x=1"], "is too large for a float (at most about 1.8e308)"),
    (["check", "1e400 * x", "--at", "x=1"], "the number 1e400 is too large for a float"),
    (["check", "x + 1/0", "--at", "x=1"], "1/0 is not a finite real number (inf)"),
    (["check", "2 + 3", "--at", "x=1"], "the expression does not depend on its variables"),
    (["check", "x", "--at", "x=1e999"], "--at: the value of 'x' must be finite, got '1e999'"),
    (["check", "x"], "the following arguments are required: --at (see chainrule check --help)"),
    (["graph", "x", "--at", "x=1", "--seed", "x"], "--seed x picks forward mode's direction"),
    (["graph", "x", "--at", "x=1", "--mode", "forward", "--seed", "y"], "--seed: 'y' is not a variable of --at"),
    (["nonsense"], "invalid choice: 'nonsense'"),
    (["train", "--epochs", "0"], "argument --epochs: expected a positive int, got 0"),
    (["train", "--batch-size", "x"], "argument --batch-size: expected a positive int, got 'x'"),
    (["train", "--output", __file__], "--output must be a folder, but"),
    (["train", "--dataset", "mnist", "--data-dir", __file__], "--data-dir must be a folder holding the MNIST IDX "
                                                              "files, got"),
])
def test_bad_input_gets_one_line_and_status_2(monkeypatch, argv, message):
    code, out, err = _run(monkeypatch, *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("chainrule")


def test_a_hostile_model_file_is_one_line_too(tmp_path, monkeypatch):
    import nn

    monkeypatch.setattr(nn, "load", lambda path: (_ for _ in ()).throw(nn.io.ModelFileError(f"{path}: bad\nfile")))
    from chainrule import cli

    monkeypatch.setattr(cli.derivatives, "check", lambda *a, **k: nn.load("m.safetensors"))
    code, _, err = _run(monkeypatch, "check", "x", "--at", "x=1")
    assert code == 2 and err == "chainrule check: m.safetensors: bad file\n"


def _table(out):
    """The compare table's rows by method: {"reverse mode": ["reverse", "mode", value, ...], "SymPy": [...]}."""
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("reverse mode", "forward mode",
                                                                                 "SymPy"))]
    return {" ".join(r[:2]) if r[0] != "SymPy" else "SymPy": r for r in rows}


def test_check_reports_a_nan_value_instead_of_zero_error(monkeypatch):
    code, out, err = _run(monkeypatch, "check", "log(x)", "--at", "x=-1")
    assert code == 0 and err == ""
    assert "The value of f here is nan" in out
    assert _table(out)["reverse mode"][2:4] == ["-1", "-"]      # the derivative, and no error claimed for it


@pytest.mark.parametrize("expression, at, sympy_says", [("sqrt(x)", "x=0", "d/dx = zoo"), ("sqrt(x)", "x=-1", "d/dx = "),
                                                        ("1/x", "x=0", "d/dx = zoo")])
def test_check_says_where_sympy_has_no_finite_value(monkeypatch, expression, at, sympy_says):
    code, out, err = _run(monkeypatch, "check", expression, "--at", at)
    assert code == 0 and err == ""
    assert "no finite real value here" in out and sympy_says in out


def test_check_gives_a_kink_the_note_gradcheck_gives(monkeypatch):
    import autodiff as ad

    code, out, _ = _run(monkeypatch, "check", "relu(x)", "--at", "x=0")
    report = ad.gradcheck(ad.relu, 0.0)
    assert code == 0 and report.kinks
    note = report.kinks[0].replace("input 0[]", "x")
    assert note in out
    assert _table(out)["SymPy"][1:3] == ["0.5", "-"]    # SymPy's Heaviside(0) = 1/2, not counted as an error


def test_check_prints_the_partials_by_name(monkeypatch):
    import math

    code, out, _ = _run(monkeypatch, "check", "x * sin(y)", "--at", "x=2", "y=0.5")
    assert code == 0
    assert out.splitlines()[1].split()[:3] == ["method", "d/dx", "d/dy"]
    reverse = _table(out)["reverse mode"]
    assert float(reverse[2]) == pytest.approx(math.sin(0.5), rel=1e-15)
    assert float(reverse[3]) == pytest.approx(2 * math.cos(0.5), rel=1e-15)


def test_graph_forward_mode_seeds_the_chosen_variable(tmp_path, monkeypatch):
    import math

    monkeypatch.setenv("PATH", str(tmp_path))   # no `dot`: writing the .dot source needs none
    rows = {}
    for seed in (None, "x", "y"):
        argv = ["graph", "x * sin(y)", "--at", "x=2", "y=0.5", "--mode", "forward", "-o", str(tmp_path / "g.dot")]
        code, out, err = _run(monkeypatch, *argv, *(["--seed", seed] if seed else []))
        assert code == 0, err
        rows[seed] = out
        last = [line for line in out.splitlines() if line.startswith("b ") and "=" not in line.split()[1]][0].split()
        expected = math.sin(0.5) if seed in (None, "x") else 2 * math.cos(0.5)
        assert last[:4] == ["b", "x", "*", "a"] and float(last[5]) == pytest.approx(expected, rel=1e-5)
    assert "Forward mode along x: dx = 1, dy = 0 (the first variable; --seed NAME picks another)" in rows[None]
    assert "Forward mode along y: dy = 1, dx = 0\n" in rows["y"]


# --- the parser: its choices are the registries' names ------------------------------------------------

def _choices(command, option):
    """The choices that ``chainrule COMMAND --help`` shows for OPTION, e.g. ``--model {a,b,c}``."""
    out = io.StringIO()
    with pytest.raises(SystemExit), contextlib.redirect_stdout(out):
        main([command, "--help"])
    (names,) = set(re.findall(rf"{option} {{([^}}]*)}}", out.getvalue()))
    return names.split(",")


def test_train_choices_are_exactly_the_registries_names():
    import kernels
    import nn

    for name in nn.models.MODELS:   # and the parser accepts each of them
        assert build_parser().parse_args(["train", "--model", name]).model == name
    assert sorted(_choices("train", "--model")) == sorted(nn.models.MODELS)
    assert sorted(_choices("train", "--dataset")) == sorted(nn.datasets.DATASETS)
    assert sorted(_choices("train", "--optimizer")) == sorted(nn.optim.OPTIMIZERS)
    assert sorted(_choices("train", "--backend")) == sorted(kernels.BACKENDS)


def test_every_dataset_of_the_registry_has_a_split_in_the_command_line():
    import nn
    from chainrule.commands import train

    assert set(train.SPLITS) == set(nn.datasets.DATASETS)


def test_a_model_added_to_the_registry_is_a_choice_of_train(monkeypatch, capsys):
    import nn

    monkeypatch.setitem(nn.models.MODELS, "tiny-test-model", nn.models.digits_cnn)
    assert "tiny-test-model" in _choices("train", "--model")
    assert main(["train", "--model", "no-such-model"]) == 2   # and a name not in it is refused, on one line
    err = capsys.readouterr().err
    assert "invalid choice: 'no-such-model'" in err and err.count("\n") == 1 and "usage:" not in err


def test_help_lists_the_choices_and_python_m_chainrule_works():
    import nn

    result = subprocess.run([sys.executable, "-m", "chainrule", "train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: chainrule train")
    assert "{" + ",".join(sorted(nn.models.MODELS)) + "}" in result.stdout
    assert "{" + ",".join(nn.optim.OPTIMIZERS) + "}" in result.stdout
    result = subprocess.run([sys.executable, "-m", "chainrule", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "{demo,graph,check,train,assignment}" in result.stdout


def test_the_package_names_its_version():
    import importlib.metadata

    import chainrule

    assert chainrule.__version__ == importlib.metadata.version("chainrule")
