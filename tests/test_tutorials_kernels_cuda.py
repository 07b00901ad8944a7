"""The CUDA kernels lesson (tutorials/kernels_03_cuda_tiles.py) runs headless in Numba's CUDA simulator.

The lesson asserts its own numbers (the load counts against their formulas, every kernel against NumPy),
so running it is the test of its content; here it runs as a user would, in a fresh process, with
NUMBA_ENABLE_CUDASIM=0 in its environment (as on a machine with a GPU): the lesson's first cell must
switch the simulator on itself. tests/test_tutorials_notebooks.py runs it as a notebook with the
variable already set (conftest.py), the other case. Its checker's own tests: test_exercises_cuda_tiles.py.
"""
from pathlib import Path

import pytest

pytest.importorskip("numba_cuda", reason="the CUDA lesson needs the cuda extra: pip install 'chainrule[cuda]'")

from _lessons import run_lesson  # noqa: E402  (tests/_lessons.py)

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "tutorials" / "kernels_03_cuda_tiles.py"


def test_the_lesson_runs_as_a_script_switching_the_simulator_on_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "0")       # run_lesson passes the environment on
    result = run_lesson(LESSON, tmp_path)
    out = result.stdout
    assert out.startswith("running in Numba's CUDA simulator")
    assert "a grid of 4 x 3 blocks of 4 x 4 threads" in out
    assert "one thread per output: 3072 global loads (2 M N K) for 1536 multiply-adds" in out
    assert "tiled (4 x 4): 768 global loads = 3072 / 4" in out
    assert "10x7 @ 7x9, tiled: 399 loads (naive: 1260)" in out
    lines = out.splitlines()
    head = next(k for k, line in enumerate(lines) if line.split() == ["kernel", "loads", "of", "x", "loads", "of", "w"])
    table = [line.split() for line in lines[head + 1:head + 4]]
    assert table == [["naive", "4608", "4608"], ["tiled", "1152", "288"], ["implicit", "GEMM", "1152", "1152"]]
    assert "tiled_matmul: not attempted" in out and "tiled_matmul: passed (151 elements" in out
    assert out.count("tiled_matmul: FAILED") == 2 and "a missing bounds check?" in out
    assert "the kernel made 1804 global loads of a and b where a tiled one makes 518" in out
    assert out.rstrip().endswith("done: tiled matmul 3072 -> 768 global loads; conv x loads 4608 -> 1152")
    pictures = sorted(p.name for p in (tmp_path / "out" / LESSON.stem).glob("*.svg"))
    assert pictures == ["conv_halo.svg", "launch_geometry.svg"]


def test_the_lesson_is_a_percent_script_that_ends_with_checked_exercises_and_is_listed():
    text = LESSON.read_text()
    assert "format_name: percent" in text and "# %% [markdown]" in text
    assert 'matplotlib.use("Agg")' in text and "TUTORIAL_OUTPUT" in text
    first_code = text.split("# %%\n")[1]
    assert first_code.index('os.environ["NUMBA_ENABLE_CUDASIM"] = "1"') < first_code.index("from numba")
    last_markdown = text.rsplit("# %% [markdown]", 1)[1]
    assert "exercises" in last_markdown.splitlines()[1].lower() and "check_tiled_matmul" in last_markdown
    assert "eval(" not in text and "exec(" not in text
    assert f"`{LESSON.name}`" in (ROOT / "tutorials" / "README.md").read_text()
