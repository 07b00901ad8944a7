"""The ``assignment`` subcommand: ``build`` student notebooks, ``grade`` a submitted one (with nbgrader).

- ``chainrule assignment build SOURCE --out DIR [--student ID]``: the exercise set (or lesson)
  SOURCE as nbgrader's course layout in DIR: the teacher's notebook with the solutions and the
  student's, the solutions stripped, its inputs drawn for the student id.
- ``chainrule assignment grade SUBMISSION --student ID [--json F] [--junit F]``: nbgrader autograde
  on a fresh kernel; scores per exercise and the checkers' explanations, as a table, JSON, JUnit XML.

The work is in :mod:`chainrule.assignment`.
"""
from __future__ import annotations

from pathlib import Path

from .. import assignment


def _run_build(args) -> int:
    paths = assignment.build(args.source, args.out, args.student)
    print(f"wrote {paths['student']} (the student's notebook) and {paths['source']} (with the solutions: "
          f"nbgrader's source)")
    return 0


def _output_path(option, path, submission):
    if path is None:
        return None
    path = Path(path)
    if path.resolve() == Path(submission).resolve():
        raise ValueError(f"{option}: {path} is the submission itself, which is never overwritten")
    if not path.parent.is_dir():
        raise ValueError(f"{option}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"{option}: {path} is a folder")
    return path


def _run_grade(args) -> int:
    assignment.check_student(args.student)
    json_path = _output_path("--json", args.json, args.submission)
    junit_path = _output_path("--junit", args.junit, args.submission)
    if json_path is not None and junit_path is not None and json_path.resolve() == junit_path.resolve():
        raise ValueError("--junit: the same file as --json")
    grades = assignment.grade(args.submission, args.student)
    print(grades.table())
    for name, e in grades.exercises.items():
        if e["status"] == "failed":
            print(f"\n{e['feedback']}")
    if json_path is not None:
        json_path.write_text(grades.to_json() + "\n")
    if junit_path is not None:
        junit_path.write_text(grades.to_junit() + "\n")
    return 0


def add_to(sub):
    """Add ``assignment build`` and ``assignment grade`` to the command line's subparsers."""
    parser = sub.add_parser("assignment", help="student notebooks from an exercise set, graded with nbgrader",
                            description="Build student notebooks from an exercise set and grade submissions "
                                        "with nbgrader and the exercise checkers.")
    actions = parser.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="the teacher's and the student's notebook (nbgrader's layout)")
    build.add_argument("source", metavar="SOURCE", help="an exercise set (diff) or a lesson's name")
    build.add_argument("--out", required=True, metavar="DIR", help="the course folder to write")
    build.add_argument("--student", metavar="ID", help="draw the exercises' inputs for this student id")
    build.set_defaults(run=_run_build)
    grade = actions.add_parser("grade", help="grade one submitted notebook (nbgrader autograde)")
    grade.add_argument("submission", metavar="SUBMISSION", help="the student's .ipynb (read, never written)")
    grade.add_argument("--student", required=True, metavar="ID", help="whose variant to check")
    grade.add_argument("--json", metavar="FILE", help="write the scores and feedback as JSON")
    grade.add_argument("--junit", metavar="FILE", help="write the scores and feedback as JUnit XML")
    grade.set_defaults(run=_run_grade)
