"""The kernel lessons run headless as scripts and print what they teach.

Each lesson asserts its own claims (bitwise equalities, error bounds, counts: never a timing), so
running it is the test of its content; here each one runs as a user would (``python
tutorials/kernels_0N_*.py``) in a fresh process with an empty PATH, and the lines it prints are
checked where they are certain. Their exercise checkers are tested in tests/test_exercises_kernels.py.
"""
import re
from pathlib import Path

import numba
import pytest

from _lessons import run_lesson  # tests/_lessons.py

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "tutorials").glob("kernels_0*.py"))
TWO_THREADS = numba.config.NUMBA_NUM_THREADS >= 2
_RUNS = {}


def _run(name, tmp_path_factory):
    """(stdout, output folder) of ``tutorials/<name>.py`` run as a script, once per session."""
    if name not in _RUNS:
        tmp = tmp_path_factory.mktemp(name)
        _RUNS[name] = run_lesson(ROOT / "tutorials" / f"{name}.py", tmp, needs_dot=False).stdout, tmp / "out" / name
    return _RUNS[name]


def test_the_lessons_are_listed_in_the_readme_s_kernels_section():
    assert {"kernels_01_prange", "kernels_02_conv_three_ways"} <= {p.stem for p in LESSONS}
    readme = (ROOT / "tutorials" / "README.md").read_text()
    section = readme[readme.index("## Kernels"):]
    for lesson in LESSONS:
        assert f"`{lesson.name}`" in section, lesson.name


def test_lessons_are_jupytext_percent_scripts_that_end_with_exercises():
    for lesson in LESSONS:
        text = lesson.read_text()
        assert "format_name: percent" in text and "# %% [markdown]" in text, lesson.name
        assert 'matplotlib.use("Agg")' in text and "TUTORIAL_OUTPUT" in text, lesson.name
        assert "exercises" in text.rsplit("# %% [markdown]", 1)[1].splitlines()[1].lower(), lesson.name
        assert "cache=True" not in text, lesson.name     # a notebook's functions cannot be cached


# kernels_03_cuda_tiles runs as a script in tests/test_tutorials_kernels_cuda.py (with the simulator off in
# the environment, to show the lesson switches it on itself): not run twice.
@pytest.mark.parametrize("lesson", [p for p in LESSONS if p.stem != "kernels_03_cuda_tiles"], ids=lambda p: p.stem)
def test_lesson_runs_as_a_script_and_writes_its_pictures(lesson, tmp_path_factory):
    _run(lesson.stem, tmp_path_factory)        # run_lesson checks the exit status and the SVGs


def test_lesson_1_prints_the_race_the_repair_and_the_checker(tmp_path_factory):
    out, pictures = _run("kernels_01_prange", tmp_path_factory)
    truth = next(line for line in out.splitlines() if line.startswith("truth: "))
    counts = truth.split("[")[1].split("]")[0].split()
    assert f"per-chunk partials: [{' '.join(counts)}]" in " ".join(out.split())
    assert "Numba's reduction, 1 thread(s): 16,777,216   (exact: 16,787,216)" in out
    assert "1 thread(s): one chunk per thread 16,777,216, 16 fixed chunks 16,786,592" in out
    if TWO_THREADS:
        assert "2 thread(s): one chunk per thread 16,782,216, 16 fixed chunks 16,786,592" in out
    assert "had 2 loop(s) fused" in out and "Parallel loop listing" in out
    assert "WEIGHT_CHUNKS = 16" in out
    assert "sum_of_squares: not attempted" in out and "sum_of_squares: passed" in out
    for name in ("race", "sum_errors"):
        assert (pictures / f"{name}.svg").exists()


def test_lesson_2_prints_the_multiplications_the_exact_f23_and_the_checkers(tmp_path_factory):
    out, pictures = _run("kernels_02_conv_three_ways", tmp_path_factory)
    assert "10,616,832 FLOPs by the formula" in out
    assert "F(2, 3): ['-2', '29']  direct: ['-2', '29']" in out          # exact fractions, both ways
    assert "multiplications: direct 5,308,416, Winograd 2,359,296: 2.25x fewer" in out
    assert "arithmetic intensity 39.9 FLOP/byte" in out
    assert "im2col: not attempted" in out and "winograd_input_transform: passed" in out
    assert "im2col: FAILED" in out and "192 of 288 elements are wrong" in out
    assert "matmul_blocked: not attempted" in out and "matmul_blocked: passed" in out
    assert "matmul_blocked: FAILED" in out and "11 of 35 elements are wrong" in out
    assert "micro-kernel == the FMAs in order, bit for bit" in out
    assert re.search(r"^micro-kernel\s+[\d.]+ GFLOP/s \(one thread\)$", out, re.M), out
    assert re.search(r"^two kernels\s+23\.7 MB moved at least", out, re.M), out    # dy written and read back
    assert re.search(r"^fused\s+8\.5 MB moved at least", out, re.M), out
    for name in ("im2col", "errors", "roofline", "microkernel", "fusion"):
        assert (pictures / f"{name}.svg").exists()
