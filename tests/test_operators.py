"""Tensor's operators and methods are where static tools see them: an IDE's completion and
go-to-definition (jedi, the engine of IPython's and Jupyter's completion) find them through Tensor's
``TYPE_CHECKING`` base, and what ``autodiff.operators.bind`` gives the class at run time is exactly
that class's members."""
from __future__ import annotations

from pathlib import Path

import jedi

import autodiff
from autodiff.operators import _NOT_SYNTAX, TensorSyntax
from autodiff.tensor import Tensor

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted(name for name in vars(TensorSyntax) if name not in _NOT_SYNTAX)


def test_what_is_bound_at_run_time_is_the_syntax_class_members():
    assert len(MEMBERS) > 50
    for name in MEMBERS:
        assert Tensor.__dict__[name] is TensorSyntax.__dict__[name], name
    assert TensorSyntax not in Tensor.__mro__          # the base is for static tools only: nothing is inherited twice


def _script(line):
    return jedi.Script(f"import autodiff as ad\nx = ad.Tensor(1.0, requires_grad=True)\n{line}",
                       path=str(ROOT / "example.py"))


def test_an_ide_completes_every_method_and_operator_result():
    public = [name for name in MEMBERS if not name.startswith("_")]
    found = {c.name for c in _script("x.").complete(3, 2)}
    assert set(public) <= found, sorted(set(public) - found)
    assert "backward" in {c.name for c in _script("(x * x + 1).sum().backw").complete(3, 22)}


def test_go_to_definition_lands_where_the_operator_is_written():
    [definition] = _script("x.backward").goto(3, 4)
    assert definition.module_path == Path(autodiff.operators.__file__)
    assert definition.line == TensorSyntax.backward.__code__.co_firstlineno
