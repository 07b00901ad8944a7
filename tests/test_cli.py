"""The command line: graph and check on user expressions (demo: tests/test_readme.py; train:
tests/nn/test_training.py), and the parser's choices, read from the registries."""
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autodiff.examples import eq_5_37
from chainrule.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
EQ_5_36 = "exp(sin(x) + sin(x)**2) + sin(exp(x) + exp(x)**2)"
requires_dot = pytest.mark.skipif(shutil.which("dot") is None and os.environ.get("CI") != "true",
                                  reason="Graphviz 'dot' is not installed (apt-get install graphviz)")


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
    assert code == 1 and "apt-get install graphviz" in err
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def test_check_prints_the_comparison_table(monkeypatch):
    code, out, err = _run(monkeypatch, "check", EQ_5_36, "--at", "x=0.5")
    assert code == 0, err
    assert out.startswith("reference: SymPy")
    row = next(line for line in out.splitlines() if line.strip().startswith("reverse mode"))
    assert float(row.split()[2]) == pytest.approx(eq_5_37(0.5), rel=1e-14)


def test_malicious_or_bad_input_is_rejected_without_evaluation(tmp_path, monkeypatch):
    code, out, err = _run(monkeypatch, "check", "__import__('os').system('touch pwned')", "--at", "x=1")
    assert code == 2 and "unknown function '__import__'" in err and "^^^^^^^^^^" in err
    assert not os.path.exists("pwned")
    code, _, err = _run(monkeypatch, "graph", "sin(x)", "--at", "x=abc")
    assert code == 1 and "must be a number" in err


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
    with pytest.raises(SystemExit) as exc:   # and a name not in it is refused by the parser
        main(["train", "--model", "no-such-model"])
    assert exc.value.code == 2 and "invalid choice: 'no-such-model'" in capsys.readouterr().err


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
    assert result.returncode == 0 and "{demo,graph,check,train}" in result.stdout


def test_the_package_names_its_version():
    import importlib.metadata

    import chainrule

    assert chainrule.__version__ == importlib.metadata.version("chainrule")
