"""The command line: graph and check on user expressions (demo: tests/test_readme.py)."""
import io
import os
import shutil
import sys

import pytest

from autodiff.examples import eq_5_37
from nn.cli import main

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
