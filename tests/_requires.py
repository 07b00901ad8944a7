"""Programs some tests need from the system (Graphviz's ``dot``, Debian's chromium): on a developer's
machine a missing one skips those tests with its install line; in CI (``CI=true``), where ``.ci/run``
installs them, they are taken as present, so a missing one fails the test instead of skipping it:
these tests always run where it matters.

Whether ``dot`` is there is the library's own test, ``autodiff.draw.has_dot`` (the one its notebook
text fallback and ``save`` use), so a test skips exactly where the library falls back."""
import importlib.metadata
import os
import shutil

import pytest

from autodiff.draw import has_dot

IN_CI = os.environ.get("CI") == "true"
INSTALL = {"dot": "Graphviz 'dot' is not installed (apt-get install graphviz)",
           "chromium": "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"}
INSTALL["chromedriver"] = INSTALL["chromium"]


def have(program: str) -> bool:
    """Whether ``program`` is on PATH (always True in CI: there, its absence must fail the test)."""
    if IN_CI:
        return True
    return has_dot() if program == "dot" else shutil.which(program) is not None


def require(*programs: str) -> None:
    """Skip the calling test, naming how to install them, unless every program is there (or in CI)."""
    for program in programs:
        if not have(program):
            pytest.skip(INSTALL[program])


HAS_DOT = have("dot")
requires_dot = pytest.mark.skipif(not HAS_DOT, reason=INSTALL["dot"])


def installed(distribution: str) -> bool:
    """Whether a Python distribution is installed in this environment."""
    try:
        importlib.metadata.version(distribution)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


#: The Numba threading layer the kernels pick: TBB where pip installed it (x86-64 Linux and Windows,
#: the dependency's marker; loaded from pip's lib folder, see kernels/runtime.py), workqueue elsewhere.
DEFAULT_LAYER = "tbb" if installed("tbb") else "workqueue"
