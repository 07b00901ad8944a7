"""Assignments a teacher can grade: student notebooks from an exercise set, graded by nbgrader.

- ``build(source, out, student)``: writes nbgrader's course layout in ``out``: the teacher's notebook
  ``source/<set>/<set>.ipynb`` (each answer between nbgrader's ``### BEGIN SOLUTION`` markers, each
  check a locked, graded cell) and, by ``nbgrader generate_assignment``, the student's notebook
  ``release/<set>/<set>.ipynb``, with the solutions replaced by ``raise NotImplementedError()``.
- ``grade(submission, student)``: in a fresh course folder, regenerates the student's variant,
  copies the submission in and runs ``nbgrader autograde`` (the notebook runs on its own kernel;
  nbgrader restores the locked cells, so the checks and the student id are the grader's); returns
  a ``Grades`` (per exercise: score, status, the checker's explanation) with ``to_json``/``to_junit``.

Nothing here runs a notebook's code: it is read with nbformat (JSON) and executed by nbgrader in a
kernel of its own. The checks are ``chainrule.exercises.grading.grade``.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .exercises.grading import RULES, exercise_set, variant_seed

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}")   # a folder name for nbgrader, and no path tricks
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def check_student(student) -> str:
    """The student id, or ValueError: empty, or not a plain name (nbgrader makes it a folder)."""
    if student is None or not str(student).strip():
        raise ValueError("--student: the student id is empty")
    if not STUDENT_ID.fullmatch(student):
        raise ValueError(f"--student: {student!r} is not a plain id (letters, digits, '_', '.', '@', '-'; "
                         f"at most 100 characters)")
    return student


def require_nbgrader():
    """ValueError saying how to install nbgrader, the grader, when it is missing."""
    if importlib.util.find_spec("nbgrader") is None:
        raise ValueError("nbgrader is not installed: pip install 'chainrule[grading]'")


# --- the teacher's notebook ------------------------------------------------------------------------------

def _cell(kind, source, grade_id=None, solution=False, points=0):
    import nbformat

    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    if grade_id is not None:
        cell.metadata["nbgrader"] = {"grade": bool(points), "grade_id": grade_id, "locked": not solution,
                                     "schema_version": 3, "solution": solution, "task": False}
        if points:
            cell.metadata["nbgrader"]["points"] = points
    return cell


def _answer_source(solution, stub) -> str:
    """The solution function with the stub's docstring, its body between nbgrader's solution markers."""
    lines = inspect.getsource(solution).splitlines()
    fn = ast.parse("\n".join(lines)).body[0]
    body = fn.body[1:] if isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant) else fn.body
    header = lines[: fn.body[0].lineno - 1]
    doc = textwrap.indent(f'"""{inspect.getdoc(stub)}"""', "    ") if stub.__doc__ else None
    return "\n".join(header + ([doc] if doc else []) + ["    ### BEGIN SOLUTION"] + lines[body[0].lineno - 1:]
                     + ["    ### END SOLUTION"])


def _inputs_text(inputs: dict) -> str:
    def show(v):
        v = np.asarray(v)
        if v.size > 24:
            return f"an array of shape {v.shape}"
        return np.array2string(v, precision=4, separator=", ", suppress_small=True)
    return "\n".join(f"{k} = {show(v)}" for k, v in inputs.items())


def notebook(source: str, student: str | None):
    """The teacher's notebook (nbgrader's source version) for exercise set ``source`` and ``student``'s variant."""
    import nbformat

    set_name, module = exercise_set(source)
    solutions = importlib.import_module(f"chainrule.exercises.solutions.{set_name}").SOLUTIONS
    cells = [_cell("markdown", f"# Assignment: {module.__doc__.splitlines()[0]}\n\n"
                               f"Replace each `raise NotImplementedError()` with your answer, then run the check "
                               f"cell under it. The checks use inputs drawn for your student id; the grader "
                               f"draws the same ones. Rules are also tested on shapes and values that "
                               f"hypothesis draws, and a wrong one is shown its smallest failing case."),
             _cell("code", f"import numpy as np\nfrom {module.__name__} import *  # the forward functions and "
                           f"constants\nfrom chainrule.exercises.grading import grade\n\n"
                           f"STUDENT_ID = {student!r}", grade_id="setup")]
    for k, (name, exercise) in enumerate(module.EXERCISES.items(), 1):
        stub = module.STUBS[name]
        seed = None if student is None else variant_seed(student, name)
        rule = " (a rule: also property-tested)" if name in RULES else ""
        cells.append(_cell("markdown", f"## {k}. `{stub.__name__}`{rule}\n\n{inspect.getdoc(stub)}\n\n"
                                       f"Your inputs:\n\n```\n{_inputs_text(exercise.inputs(seed))}\n```"))
        cells.append(_cell("code", _answer_source(solutions[name], stub), grade_id=f"answer_{name}", solution=True))
        cells.append(_cell("code", f"from chainrule.exercises.grading import grade  # the checker, imported afresh\n"
                                   f"grade({set_name!r}, {name!r}, {stub.__name__}, STUDENT_ID)",
                           grade_id=f"check_{name}", points=1))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["chainrule"] = {"assignment": set_name, "student": student}
    return set_name, nb


def _nbgrader(command: str, set_name: str, root: Path, *extra: str):
    """Run ``nbgrader COMMAND`` on the course folder ``root`` (its own process; the notebooks run in kernels)."""
    argv = [sys.executable, "-m", "nbgrader", command, set_name, "--force", *extra,
            f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url=sqlite:///{root / 'gradebook.db'}"]
    # nbgrader calls `alembic` (its gradebook's migrations) by name: this Python's scripts come first on PATH
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    result = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600, env=env)
    if result.returncode != 0:
        lines = result.stderr.splitlines()   # the exception's own line says more than nbgrader's closing ERROR
        errors = [ln for ln in lines if re.match(r"\s*[A-Za-z_.]*(Error|Exception)\b.*:", ln)]
        errors = errors or [ln for ln in lines if "ERROR" in ln] or lines or ["no message"]
        raise OSError(f"nbgrader {command} failed: {errors[-1].strip()}")


def build(source: str, out, student: str | None = None) -> dict:
    """Write the teacher's and the student's notebook of ``source`` under ``out``; return their paths."""
    import nbformat

    if student is not None:
        check_student(student)
    exercise_set(source)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} is not a folder")
    require_nbgrader()
    set_name, nb = notebook(source, student)
    teacher = out / "source" / set_name / f"{set_name}.ipynb"
    teacher.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, teacher)
    _nbgrader("generate_assignment", set_name, out.resolve())
    return {"source": teacher, "student": out / "release" / set_name / f"{set_name}.ipynb"}


# --- grading -----------------------------------------------------------------------------------------------

def read_submission(path) -> object:
    """The submitted notebook, read as JSON (never run); ValueError naming what is wrong."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"SUBMISSION: {path} is not a file")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:   # nbformat's errors: not JSON, not a notebook, an invalid notebook
        raise ValueError(f"SUBMISSION: {path} is not a notebook ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(nb.metadata.get("chainrule"), dict) or "assignment" not in nb.metadata["chainrule"]:
        raise ValueError(f"SUBMISSION: {path} is not a chainrule assignment (no 'chainrule' metadata: "
                         f"build it with chainrule assignment build)")
    return nb


@dataclass
class Grades:
    """One graded submission: per exercise, its score, status and the checker's explanation."""

    assignment: str
    student: str
    exercises: dict = field(default_factory=dict)   # name -> {"score", "max_score", "status", "feedback"}

    @property
    def score(self):
        return sum(e["score"] for e in self.exercises.values())

    @property
    def max_score(self):
        return sum(e["max_score"] for e in self.exercises.values())

    def to_json(self) -> str:
        return json.dumps({"assignment": self.assignment, "student": self.student, "score": self.score,
                           "max_score": self.max_score, "exercises": self.exercises}, indent=2)

    def to_junit(self) -> str:
        """JUnit XML: one test case per exercise, a failure carrying the feedback (xml.etree)."""
        failed = [e for e in self.exercises.values() if e["status"] != "passed"]
        suites = ET.Element("testsuites")
        suite = ET.SubElement(suites, "testsuite", name=f"{self.assignment}-{self.student}",
                              tests=str(len(self.exercises)), failures=str(len(failed)), errors="0")
        for name, e in self.exercises.items():
            case = ET.SubElement(suite, "testcase", name=name, classname=f"assignment.{self.assignment}")
            ET.SubElement(case, "properties")
            for key in ("score", "max_score"):
                ET.SubElement(case.find("properties"), "property", name=key, value=str(e[key]))
            if e["status"] != "passed":
                failure = ET.SubElement(case, "failure", message=f"{name}: {e['status']}", type=e["status"])
                failure.text = e["feedback"]
            else:
                ET.SubElement(case, "system-out").text = e["feedback"]
        return ET.tostring(suites, encoding="unicode", xml_declaration=True)

    def table(self) -> str:
        lines = [f"{self.assignment}, student {self.student}: {self.score:g} of {self.max_score:g}"]
        lines += [f"  {name:<24}{e['score']:g}/{e['max_score']:g}  {e['status']}" for name, e in self.exercises.items()]
        return "\n".join(lines)


def _feedback(name, cell) -> tuple:
    """(status, text) of the autograded check cell of exercise ``name``, from its outputs."""
    texts, status = [], "passed"
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            not_attempted = output.get("ename") == "NotImplementedError"
            status = "not attempted" if not_attempted else "failed"
            texts.append(f"{name}: not attempted (the answer still raises NotImplementedError)" if not_attempted
                         else f"{output.get('ename')}: {output.get('evalue')}")
    return status, _ANSI.sub("", "".join(texts)).strip()


def grade(submission, student: str) -> Grades:
    """Grade one submitted notebook with nbgrader autograde on ``student``'s variant."""
    import nbformat
    from nbgrader.api import Gradebook

    check_student(student)
    nb = read_submission(submission)
    set_name, _ = exercise_set(str(nb.metadata["chainrule"]["assignment"]))
    require_nbgrader()
    with tempfile.TemporaryDirectory(prefix="chainrule-grade-") as folder:
        root = Path(folder)
        build(set_name, root, student)
        target = root / "submitted" / student / set_name / f"{set_name}.ipynb"
        target.parent.mkdir(parents=True)
        shutil.copyfile(submission, target)   # the copy is graded; the submission is never written
        _nbgrader("autograde", set_name, root, "--student", student)
        graded = nbformat.read(root / "autograded" / student / set_name / f"{set_name}.ipynb", as_version=4)
        cells = {c.metadata["nbgrader"]["grade_id"]: c for c in graded.cells if "nbgrader" in c.metadata}
        result = Grades(set_name, student)
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
            scored = gradebook.find_submission_notebook(set_name, set_name, student)
            for g in sorted(scored.grades, key=lambda g: list(cells).index(g.name)):
                name = g.name.removeprefix("check_")
                status, text = _feedback(name, cells[g.name])
                result.exercises[name] = {
                    "score": float(g.score), "max_score": float(g.max_score), "status": status, "feedback": text}
    return result
