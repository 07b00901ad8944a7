"""Build the documentation site, offline: ``python docs/build.py`` writes ``docs/_build/html``.

The site is the README's tour, every lesson executed (its pictures, tables, players and figures
inline), the exercise sets and an API reference from the docstrings, with Sphinx's search. The
build

1. executes each lesson ``tutorials/*_0*.py`` as a notebook: converted with Jupytext, run by nbclient
   on a fresh kernel from ``tutorials/`` (as a teacher opens it), its pictures written to a
   temporary ``$TUTORIAL_OUTPUT``, matplotlib on the kernel's inline backend. A lesson that fails
   fails the build, one line naming the lesson and the error;
2. writes the site's sources into ``<out>/source``: the hand-written pages of ``docs/pages``, the
   README (the home page includes it), the executed notebooks grouped by the prefix of their name
   (``diff_``, ``cnn_``, ...) and one page per exercise set of ``chainrule.exercises`` (each
   exercise's statement from its stub's docstring, the set found through its ``EXERCISES``);
3. renders them with Sphinx (``docs/conf.py``: myst-nb with execution off, the book theme, MathJax
   served from the site), warnings as errors.

``tests/test_tutorials_notebooks.py`` reads the notebooks this build executed (``execute`` is the
one place a lesson runs as a notebook) and ``tests/test_site.py`` opens the site in Chromium.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
TUTORIALS = ROOT / "tutorials"

#: Each group of lessons, by the prefix of their file names: its title on the site. A prefix not
#: named here is titled by itself; the lessons themselves are found by glob, never listed.
GROUPS = {"diff": "Differentiation", "cnn": "Training CNNs", "kernels": "Kernels"}


class BuildError(RuntimeError):
    """The site could not be built: a lesson failed (one line each) or Sphinx reported a problem."""


def lessons(folder: Path = TUTORIALS) -> list[Path]:
    """The lessons, ``<prefix>_0N_<name>.py``, in order."""
    return sorted(folder.glob("*_0*.py"))


def group_of(lesson: Path) -> str:
    """A lesson's group: its name up to the first underscore (``diff_01_graphs`` -> ``diff``)."""
    return lesson.stem.split("_", 1)[0]


def execute(lesson: Path, output: Path, *, env: dict | None = None, timeout: int = 600):
    """Run ``lesson`` as a notebook on a fresh kernel and return the executed notebook (nbformat).

    The kernel starts in ``tutorials/`` with ``$TUTORIAL_OUTPUT`` set to ``output`` and without
    ``$MPLBACKEND`` (so matplotlib uses the kernel's inline backend); ``env`` adds or replaces
    variables (an empty ``PATH``: a machine without Graphviz). Raises ``BuildError`` with one line,
    the lesson's name and the error, when a cell fails.
    """
    import jupytext
    import nbclient

    kernel_env = dict(os.environ, TUTORIAL_OUTPUT=str(output), **(env or {}))
    kernel_env.pop("MPLBACKEND", None)
    notebook = jupytext.read(lesson)
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(lesson.parent)}})
    try:
        client.execute(env=kernel_env)
    except nbclient.exceptions.CellExecutionError as error:
        raise BuildError(f"lesson {lesson.stem} failed: {error.ename}: {error.evalue}") from None
    except Exception as error:        # a timeout, a dead kernel: still one line naming the lesson
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise BuildError(f"lesson {lesson.stem} failed: {type(error).__name__}: {first}") from None
    return notebook


def execute_all(source: Path, found: list[Path], log=print) -> dict[str, float]:
    """Execute every lesson into ``source/lessons/<group>/<lesson>.ipynb``; the seconds each took.
    Raises ``BuildError`` after the last lesson, one line per lesson that failed."""
    import nbformat

    seconds, failures = {}, []
    with tempfile.TemporaryDirectory(prefix="chainrule-site-") as scratch:
        for lesson in found:
            start = time.perf_counter()
            try:
                notebook = execute(lesson, Path(scratch) / "out")
            except BuildError as error:
                failures.append(str(error))
                log(str(error))
                continue
            seconds[lesson.stem] = time.perf_counter() - start
            log(f"executed {lesson.stem} ({seconds[lesson.stem]:.0f} s)")
            target = source / "lessons" / group_of(lesson) / f"{lesson.stem}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, target)
    if failures:
        raise BuildError("\n".join(failures))
    return seconds


def _order(prefix: str):
    """Groups in GROUPS's order, then any other prefix alphabetically."""
    return (list(GROUPS).index(prefix), "") if prefix in GROUPS else (len(GROUPS), prefix)


def _lesson_pages(source: Path, found: list[Path]) -> list[str]:
    """One index page per group of lessons; their paths for the home page's table of contents."""
    groups = {}
    for lesson in found:
        groups.setdefault(group_of(lesson), []).append(lesson.stem)
    pages = []
    for prefix, stems in sorted(groups.items(), key=lambda item: _order(item[0])):
        title = GROUPS.get(prefix, prefix.capitalize())
        entries = "\n".join(stems)
        text = (f"# {title}\n\nThe `{prefix}_*` lessons of `tutorials/`, executed when the site was built.\n\n"
                f"```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```\n")
        (source / "lessons" / prefix).mkdir(parents=True, exist_ok=True)
        (source / "lessons" / prefix / "index.md").write_text(text)
        pages.append(f"lessons/{prefix}/index")
    return pages


def exercise_sets() -> list:
    """The modules of ``chainrule.exercises`` that hold an exercise set (an ``EXERCISES`` registry)."""
    import chainrule.exercises as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if isinstance(getattr(module, "EXERCISES", None), dict):
            found.append(module)
    return sorted(found, key=lambda module: _order(module.__name__.rsplit(".", 1)[1]))


def exercise_page(module, stems=()) -> str:
    """A set's page: the module's docstring, then per exercise its lesson (a link when ``stems``, the
    lessons on the site, hold it), what to differentiate (for a backward pass), the stub whose
    docstring states the exercise, and its checker."""
    lessons_of = {name: lesson for lesson, names in getattr(module, "LESSONS", {}).items() for name in names}
    short = module.__name__.rsplit(".", 1)[1]
    lines = [f"# Exercises: `{short}`", "", "```{eval-rst}", f".. automodule:: {module.__name__}", "```", ""]
    for name, exercise in module.EXERCISES.items():
        lines += [f"## {name}", ""]
        lesson = lessons_of.get(name)
        if lesson in stems:
            lines += [f"Asked in lesson {{doc}}`{lesson} </lessons/{lesson.split('_')[0]}/{lesson}>`.", ""]
        elif lesson:
            lines += [f"Asked in lesson `{lesson}`.", ""]
        forward = getattr(exercise, "forward", None)
        stub, check = getattr(module, "STUBS", {}).get(name), getattr(module, "CHECKS", {}).get(name)
        for function in (forward, stub, check):
            if function is not None and getattr(function, "__module__", None) == module.__name__:
                lines += ["```{eval-rst}", f".. autofunction:: {module.__name__}.{function.__name__}", "```", ""]
    return "\n".join(lines)


def write_sources(source: Path, found: list[Path]) -> None:
    """The site's sources, beside the executed notebooks: pages, README, lesson and exercise pages."""
    shutil.copytree(DOCS / "pages", source, dirs_exist_ok=True)
    shutil.copyfile(ROOT / "README.md", source / "_readme.md")
    groups = _lesson_pages(source, found)
    sets, stems = exercise_sets(), {lesson.stem for lesson in found}
    (source / "exercises").mkdir(exist_ok=True)
    for module in sets:
        (source / "exercises" / f"{module.__name__.rsplit('.', 1)[1]}.md").write_text(exercise_page(module, stems))
    index = (source / "index.md").read_text()
    (source / "index.md").write_text(index.replace("LESSON_GROUPS", "\n".join(groups)))
    exercises = (source / "exercises" / "index.md").read_text()
    entries = "\n".join(m.__name__.rsplit(".", 1)[1] for m in sets)
    (source / "exercises" / "index.md").write_text(exercises.replace("EXERCISE_SETS", entries))


def render(source: Path, html: Path) -> None:
    """Sphinx over ``source`` into ``html``, warnings as errors; ``BuildError`` with its complaints."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(DOCS), "-W", "--keep-going", "-q",
               "-j", "1", str(source), str(html)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError("sphinx failed:\n" + (result.stderr or result.stdout).strip())


def build(out: Path = DOCS / "_build", found: list[Path] | None = None, log=print) -> Path:
    """Build the site into ``out/html`` (its sources into ``out/source``); returns ``out/html``."""
    out = Path(out)
    found = lessons() if found is None else found
    source, html = out / "source", out / "html"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    start = time.perf_counter()
    execute_all(source, found, log)
    executed = time.perf_counter() - start
    write_sources(source, found)
    render(source, html)
    log(f"built {html / 'index.html'}: lessons executed in {executed:.0f} s, "
        f"rendered in {time.perf_counter() - start - executed:.0f} s")
    return html


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS / "_build", help="where to build (default docs/_build)")
    args = parser.parse_args(argv)
    try:
        build(args.out)
    except BuildError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
