"""Assignments a teacher can grade (issue 28): ``chainrule assignment build`` / ``grade`` through nbgrader.

The round trip: the README's two commands build a student's notebook and grade a right submission;
a wrong one (a subtly wrong rule, a wrong layer, an untouched stub) is graded too, and the scores and
feedback are read back as nbgrader's autograde left them, as JSON and as JUnit XML. Variants: two
student ids get different inputs, one id the same inputs twice.
"""
import contextlib
import inspect
import io
import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.exercises import diff
from chainrule.exercises.diff import LEAKY_SLOPE
from chainrule.exercises.grading import _strategies, grade, smallest_failing_case, variant_inputs, variant_seed

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# A leaky ReLU whose rule is wrong only for |x| > 3.5: the student's own variant (|x| < 3) passes it,
# hypothesis finds the inputs that fail and shrinks them to one small array.
def leaky_relu_vjp(x, g):
    slope = np.where(x > 0, 1.0, LEAKY_SLOPE)
    return g * slope * np.where(np.abs(x) > 3.5, 0.5, 1.0)


SUBTLY_WRONG_LEAKY_RELU = inspect.getsource(leaky_relu_vjp)   # the same function, as the student's cell
WRONG_DENSE = '''def dense_vjp(x, W, b, g):
    return g @ W.T, x.T @ g, g.mean(axis=0)
'''


def _readme_commands():
    section = README.split("## Assignments a teacher can grade", 1)[1].split("\n## ", 1)[0]
    return [line for block in re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)
            for line in block.splitlines() if line.startswith("chainrule ")]


def _run(monkeypatch, argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _submission(teacher, student_nb, answers, path):
    """The student's notebook with answers filled in: the teacher's solution, or the source given."""
    import nbformat

    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(teacher, as_version=4).cells
                 if "nbgrader" in c.metadata}
    nb = nbformat.read(student_nb, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id.startswith("answer_"):
            answer = answers.get(grade_id.removeprefix("answer_"), "solution")
            if answer == "solution":
                cell.source = solutions[grade_id]
            elif answer is not None:
                cell.source = answer
    nbformat.write(nb, path)
    return path


# --- variants --------------------------------------------------------------------------------------------

def test_variants_differ_between_students_and_are_stable_for_one():
    from chainrule.assignment import notebook

    assert variant_seed("alice", "sigmoid") == variant_seed("alice", "sigmoid") != variant_seed("bob", "sigmoid")
    assert variant_seed("alice", "sigmoid") != variant_seed("alice", "tanh")
    for name in diff.EXERCISES:
        a, a2, b = (variant_inputs("diff", name, s) for s in ("alice", "alice", "bob"))
        assert all(np.array_equal(a[k], a2[k]) for k in a)
        assert any(not np.array_equal(a[k], b[k]) for k in a)
    texts = {s: [c.source for c in notebook("diff", s)[1].cells if c.cell_type == "markdown"] for s in ("alice", "bob")}
    assert texts["alice"] == [c.source for c in notebook("diff", "alice")[1].cells if c.cell_type == "markdown"]
    assert sum(a != b for a, b in zip(texts["alice"], texts["bob"])) >= 8   # the inputs shown differ
    set_name, common = notebook("diff_06_gradcheck_exercises", None)       # the lesson's name; no --student:
    assert set_name == "diff" and "STUDENT_ID = None" in common.cells[1].source   # the lesson's own inputs
    assert "passed" in grade("diff", "sigmoid", lambda x, g: g * diff.sigmoid(x) * (1 - diff.sigmoid(x)), None)


# --- a rule, property-tested: the smallest failing case ---------------------------------------------------

def test_a_subtly_wrong_rule_passes_its_variant_but_fails_with_a_shrunk_counterexample():
    wrong = leaky_relu_vjp
    diff.LEAKY_RELU.check(wrong, seed=variant_seed("alice", "leaky_relu"))   # the variant alone misses it
    case = smallest_failing_case(diff.LEAKY_RELU, wrong, _strategies()["leaky_relu"])
    assert case["x"].size == 1 and abs(case["x"][0]) > 3.5            # shrunk to one element
    with pytest.raises(AssertionError, match=r"smallest failing case hypothesis found \(shrunk\)") as err:
        grade("diff", "leaky_relu", wrong, "alice")
    assert "dx: expected" in str(err.value)


# --- the round trip through nbgrader ------------------------------------------------------------------------

def test_readme_commands_build_grade_and_a_wrong_submission_gets_its_feedback(tmp_path, monkeypatch):
    pytest.importorskip("nbgrader", reason="the grader: pip install 'chainrule[grading]' (the test extra has it)")
    build, grade_right = _readme_commands()
    assert build.split()[:3] == ["chainrule", "assignment", "build"] and "grade" in grade_right
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(monkeypatch, shlex.split(build)[1:])
    assert code == 0, err
    teacher, student_nb = tmp_path / "course/source/diff/diff.ipynb", tmp_path / "course/release/diff/diff.ipynb"
    text = student_nb.read_text()
    assert "raise NotImplementedError()" in text and "### BEGIN SOLUTION" not in text

    _submission(teacher, student_nb, {}, tmp_path / "alice.ipynb")
    before = (tmp_path / "alice.ipynb").read_bytes()
    code, out, err = _run(monkeypatch, shlex.split(grade_right)[1:])
    assert code == 0, err
    assert "11 of 11" in out
    assert (tmp_path / "alice.ipynb").read_bytes() == before          # the submission is never written
    scores = json.loads((tmp_path / "alice.json").read_text())
    assert scores["score"] == scores["max_score"] == 11
    assert all(e["status"] == "passed" and "passed" in e["feedback"] for e in scores["exercises"].values())

    _submission(teacher, student_nb, {"leaky_relu": SUBTLY_WRONG_LEAKY_RELU, "dense": WRONG_DENSE, "tanh": None},
                tmp_path / "wrong.ipynb")
    code, out, err = _run(monkeypatch, ["assignment", "grade", "wrong.ipynb", "--student", "alice",
                                        "--json", "wrong.json", "--junit", "wrong.xml"])
    assert code == 0, err
    scores = json.loads((tmp_path / "wrong.json").read_text())
    assert scores["score"] == 8 and scores["max_score"] == 11
    exercises = scores["exercises"]
    assert {n for n, e in exercises.items() if e["status"] != "passed"} == {"leaky_relu", "dense", "tanh"}
    assert exercises["tanh"]["status"] == "not attempted"
    assert "db" in exercises["dense"]["feedback"] and "dense: FAILED" in exercises["dense"]["feedback"]
    leaky = exercises["leaky_relu"]["feedback"]
    assert "smallest failing case hypothesis found (shrunk)" in leaky
    x_line = next(line for line in leaky.splitlines() if line.strip().startswith("x = "))
    assert x_line.count(",") == 0                                     # one element: a small counterexample
    assert "smallest failing case" in out

    suite = ET.parse(tmp_path / "wrong.xml").getroot().find("testsuite")   # JUnit agrees with the JSON
    assert (suite.get("tests"), suite.get("failures")) == ("11", "3")
    for case in suite.iter("testcase"):
        failure = case.find("failure")
        assert (failure is None) == (exercises[case.get("name")]["status"] == "passed")
        if failure is not None:
            assert failure.text == exercises[case.get("name")]["feedback"]


# --- careless input: one line naming the argument, before anything is written ----------------------------------

@pytest.mark.parametrize("argv, message", [
    (["build", "nonsense", "--out", "out"], "SOURCE: unknown exercise set or lesson 'nonsense'"),
    (["build", "diff", "--out", "out", "--student", ""], "--student: the student id is empty"),
    (["build", "diff", "--out", "out", "--student", "../x"], "--student: '../x' is not a plain id"),
    (["grade", "missing.ipynb", "--student", "alice"], "SUBMISSION: missing.ipynb is not a file"),
    (["grade", "junk.ipynb", "--student", "alice"], "SUBMISSION: junk.ipynb is not a notebook"),
    (["grade", "plain.ipynb", "--student", "alice"], "SUBMISSION: plain.ipynb is not a chainrule assignment"),
    (["grade", "plain.ipynb", "--student", " "], "--student: the student id is empty"),
    (["grade", "plain.ipynb", "--student", "a", "--json", "plain.ipynb"], "--json: plain.ipynb is the submission"),
    (["grade", "plain.ipynb", "--student", "a", "--junit", "no/such.xml"], "--junit: the folder no does not exist"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, argv, message):
    import nbformat

    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.ipynb").write_text("print('not a notebook')")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "plain.ipynb")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = _run(monkeypatch, ["assignment", *argv])
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
