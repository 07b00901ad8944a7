"""The documentation site, built once per test session by ``docs/build.py``, for the tests that read it.

The build executes every lesson as a notebook (``tests/test_tutorials_notebooks.py`` counts what the
executed notebooks show) and renders the site (``tests/test_site.py`` opens it in Chromium), so the
lessons run as notebooks once, not once per test file. A build that fails is kept as its error: the
tests that need what failed report it, one line per failed lesson.
"""
import importlib
import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from _requires import IN_CI  # tests/_requires.py

ROOT = Path(__file__).resolve().parents[1]
_BUILT = {}


def docs_build():
    """``docs/build.py`` as a module (loaded once; ``docs`` is not a package)."""
    name = "chainrule_docs_build"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "build.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass
class Site:
    """Where the build wrote: ``html`` (the site), ``source`` (the executed notebooks: ``notebook``),
    and the build's error (None when it succeeded)."""

    out: Path
    error: str | None

    @property
    def html(self) -> Path:
        return self.out / "html"

    def notebook(self, lesson: Path) -> Path:
        build = docs_build()
        return self.out / "source" / "lessons" / build.group_of(lesson) / f"{lesson.stem}.ipynb"


def readme_command():
    """The README's build command, split into its install and its build (the part the tests run)."""
    section = (ROOT / "README.md").read_text().split("## The documentation site", 1)[1].split("\n## ", 1)[0]
    install, build = re.findall(r"```bash\n(.+?)\n```", section)[0].split(" && ")
    return install, build


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The site built once per session (whichever test file asks first), by the README's command in a
    process of its own, into a temporary folder (``--out``)."""
    for module in ("sphinx", "myst_nb", "sphinx_book_theme", "jupytext", "nbclient", "ipykernel"):
        if IN_CI:                                   # CI installs the test extra: a missing one fails, never skips
            importlib.import_module(module)
        else:
            pytest.importorskip(module, reason="the site needs the docs extra (the test extra holds it)")
    if "site" not in _BUILT:
        out = tmp_path_factory.mktemp("site")
        _, command = readme_command()
        python, script = command.split()                 # .venv/bin/python docs/build.py
        assert python.endswith("python") and script == "docs/build.py", command
        result = subprocess.run([sys.executable, script, "--out", str(out)], cwd=ROOT, capture_output=True,
                                text=True)
        _BUILT["site"] = Site(out, None if result.returncode == 0 else result.stderr.strip()[-4000:])
    return _BUILT["site"]
