"""Every lesson run as a notebook shows its pictures, tables and figures inline.

Each lesson is converted with Jupytext (what ``jupytext --to notebook`` does, the build that
tutorials/README.md documents) and executed by nbclient on a fresh kernel, from the ``tutorials``
folder as a teacher would open it: the documentation site's build does it (``docs/build.py``'s
``execute``, once per session, the ``site`` fixture of tests/_site.py), and these tests read the
notebooks it executed. The test counts the display outputs of each kind: graph
pictures (image/svg+xml), tables and step-through players (text/html), figures (image/png). A
lesson whose cell ends in a save, a print or an assert (or closes its figure first) shows none of
them, which is the failure this guards against. Without Graphviz's ``dot`` the graph lessons still
run to the end as notebooks, showing the graph as text with a line saying how to install Graphviz.
"""
from collections import Counter
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="the notebook tests need the test extra: pip install -e '.[test]'")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
from _requires import HAS_DOT  # tests/_requires.py
from _site import docs_build, site  # noqa: F401  (site: the fixture; tests/_site.py)

# What each lesson must show inline: {mime type: number of outputs}. The graph lessons' pictures
# are SVG (ad.draw), their tables and players HTML; figures are PNG (show_figure).
SHOWS = {
    "diff_01_graphs": {"image/svg+xml": 2, "text/html": 3},
    "diff_02_four_ways": {"image/png": 3, "text/html": 1},
    "diff_03_forward_reverse": {"image/svg+xml": 1, "text/html": 2, "image/png": 1},
    "diff_04_backprop_jacobians": {"image/png": 1},
    "diff_05_softmax_cross_entropy": {"image/svg+xml": 2, "image/png": 2},
    "diff_06_gradcheck_exercises": {"image/png": 1},
    "diff_07_source_transformation": {"image/png": 1},
    "diff_08_transformations": {"image/svg+xml": 2, "text/html": 1, "image/png": 2},
    "cnn_01_activations": {"image/png": 3},
    "cnn_02_initialisation": {"image/png": 3},
    "cnn_03_solvers": {"image/png": 8},
    "cnn_04_data": {"image/png": 2},
    "cnn_05_training": {"image/png": 5},
    "cnn_06_regularisation": {"image/png": 3},
    "cnn_07_depth": {"image/png": 4},       # 2 figures and 2 live views (nn.LiveView: one display each)
    "cnn_08_architectures": {"image/png": 1},
    "cnn_09_pretraining": {"image/png": 2},
    "kernels_01_prange": {"image/png": 2},
    "kernels_02_conv_three_ways": {"image/png": 5},
    "kernels_03_cuda_tiles": {"image/png": 2},   # the launch geometry, the convolution's tile + halo
}
LESSONS = sorted(TUTORIALS.glob("*_0*.py"))


def executed(site, lesson):
    """The notebook the site's build executed for ``lesson`` (nbformat), or the build's error."""
    import nbformat

    path = site.notebook(lesson)
    if not path.exists():
        lines = str(site.error).splitlines() if site.error else ["the build wrote no notebook"]
        pytest.fail(next((line for line in lines if lesson.stem in line), lines[0]), pytrace=False)
    return nbformat.read(path, as_version=4)


def displays(notebook):
    """How many display outputs of each rich kind the executed notebook holds."""
    kinds = Counter()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output["output_type"] in ("display_data", "execute_result"):
                kinds.update(k for k in output["data"] if k in ("image/svg+xml", "image/png", "text/html"))
    return kinds


def test_every_lesson_has_its_expected_displays():
    assert sorted(SHOWS) == [p.stem for p in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_as_a_notebook_and_shows_its_pictures_inline(lesson, site):
    if not HAS_DOT and "image/svg+xml" in SHOWS[lesson.stem]:
        pytest.skip("Graphviz 'dot' is not installed (apt-get install graphviz)")
    notebook = executed(site, lesson)
    assert displays(notebook) == Counter(SHOWS[lesson.stem])
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o["output_type"] == "error"]


def test_a_graph_lesson_runs_as_a_notebook_without_dot_and_says_how_to_install_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    notebook = docs_build().execute(TUTORIALS / "diff_01_graphs.py", tmp_path / "out", env={"PATH": str(empty)})
    kinds = displays(notebook)
    assert kinds["image/svg+xml"] == 0 and kinds["text/html"] == 5   # 2 pictures as text, 2 tables, 1 player
    shown = [o for c in notebook.cells for o in c.get("outputs", [])]
    html = [o["data"]["text/html"] for o in shown if "text/html" in o.get("data", {})]
    assert sum("apt-get install graphviz" in h for h in html) == 3       # each picture and the player say so
    assert any("a = sin(x)" in h and "adjoint" in h for h in html)       # the graph as code, and its table
    printed = "".join(o.get("text", "") for o in shown if o["output_type"] == "stream")
    assert printed.count("skipped ") == 3 and "dy/dx by our sweep" in printed   # it ran to the end
