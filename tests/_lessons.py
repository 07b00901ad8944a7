"""Running a tutorial lesson as a user would, shared by the two tutorial test files.

A lesson runs as ``python tutorials/<lesson>.py`` in a fresh process, headless, with its pictures
sent to a temporary ``$TUTORIAL_OUTPUT``. Its run time is not asserted here (speed belongs in
benchmarks; the measured times are listed in tutorials/README.md): ``timeout`` only stops a hung run.
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_lesson(lesson, tmp_path, *, needs_dot=False, timeout=120, unset=(), writes_svg=True):
    """Run ``lesson``; check it exits 0 and writes valid SVGs only into its own output folder.

    Without ``needs_dot`` the lesson runs with an empty PATH, which proves it needs no Graphviz (a
    graph lesson run so, with ``writes_svg=False``, proves it finishes without pictures).
    ``unset`` names environment variables removed first (the lesson's default run, whatever the
    caller's environment). Returns the CompletedProcess, for checks on its output.
    """
    out = tmp_path / "out"
    env = dict(os.environ, TUTORIAL_OUTPUT=str(out), MPLBACKEND="Agg")
    for name in unset:
        env.pop(name, None)
    if not needs_dot:
        (tmp_path / "empty").mkdir()
        env["PATH"] = str(tmp_path / "empty")          # no `dot` (nor anything else) to be found
    result = subprocess.run([sys.executable, str(lesson)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{lesson.name} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert [p.name for p in out.iterdir()] == [lesson.stem]  # everything went to $TUTORIAL_OUTPUT/<lesson>
    svgs = sorted((out / lesson.stem).rglob("*.svg"))
    assert svgs or not writes_svg, f"{lesson.name} wrote no SVG"
    for svg in svgs:
        assert "<svg" in svg.read_text()[:4000], svg
    return result
