"""The benchmarks the README names run (their --quick smoke forms, without PyTorch) and print what
they promise: a benchmark that no longer starts is found here, not on the day someone times a change.
No number is asserted (speed is measured by hand, as ratios within one run), only that each is there."""
import os
import re
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"\d+\.\d+"


def _run(script, *args):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                            text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"benchmarks/{script}" in (ROOT / "README.md").read_text()
    return result.stdout


def test_train_step_measures_the_plain_loop_the_arranged_cases_and_their_phases():
    out = _run("train_step.py", "--quick")
    assert out.startswith("CPU: ")
    for label in ("plain loop, NumPy imported first (headline)", "plain loop, nn imported first", "nn.fit, per step"):
        assert re.search(rf"ours, {re.escape(label)}: median {NUMBER} ms, best {NUMBER} ms.*peak RSS \d+ MB", out), out
    assert re.search(rf"phases \(ms\): forward {NUMBER}, backward {NUMBER}, update {NUMBER}", out), out


ENGINE_PROBLEMS = ("gmm", "logsumexp", "ode", "det", "ba", "vander", "tiny-numpy", "tiny-autodiff")


def _problem_rows(out, name):
    """The three timed rows of one problem in engine.py's section 4, ours timed in each (no refusal)."""
    block = re.search(rf"^  {re.escape(name)}: .*\n((?:    .*\n)+)", out, re.M)
    assert block, out
    for label in ("primal, no grad", "primal, recording", "value and gradient"):
        assert re.search(rf"^    {label}\s+ours\s+{NUMBER} (?:us|ms|s)", block.group(1), re.M), block.group(0)
    return block.group(1)


def test_the_engine_benchmark_runs_and_times_the_problems():
    out = _run("engine.py", "--quick")
    assert re.search(r"Total wall time: [\d.]+ s", out)
    assert "1. Cheap-gradient principle" in out and "\n4. Problems (issue 32)" in out, out
    rows = {name: _problem_rows(out, name) for name in ENGINE_PROBLEMS}
    oracle = re.search(r"max \|our grad - det\(A\) inv\(A\)\.T\| (\S+)", rows["det"])
    assert oracle and float(oracle.group(1)) < 1e-10, rows["det"]
    dispatch = rf"^  NumPy's dispatch \(tiny-numpy - tiny-autodiff\): [+-]{NUMBER} us per primal call"
    assert re.search(dispatch, out, re.M), out
    summary = out.split("summary: ratio ours / torch")[1]
    assert [line.split()[0] for line in summary.splitlines()[2:2 + len(ENGINE_PROBLEMS)]] == list(ENGINE_PROBLEMS)


def test_the_engine_benchmark_runs_only_the_problems_named_and_profiles_them():
    out = _run("engine.py", "--quick", "--no-torch", "--only", "tiny", "--profile")
    assert "1. Cheap-gradient principle" not in out and "  gmm: " not in out, out
    _problem_rows(out, "tiny-numpy"), _problem_rows(out, "tiny-autodiff")
    assert len(re.findall(r"cProfile of our gradient, \d+ calls, top 5 by tottime", out)) == 2, out
    assert "autodiff/sweep.py" in out and "(reverse_sweep)" in out, out
    assert "PyTorch not measured (--no-torch" in out, out


def test_the_compile_benchmark_times_its_loops_cold_and_warm_and_names_the_absent_oracles():
    out = _run("compile.py", "--quick", "--no-oracles")
    assert out.startswith("CPU: ") and "autodiff at " in out.splitlines()[0]
    assert len(re.findall(rf"compiled / eager {NUMBER}", out)) == 4, out
    assert re.search(rf"compiled value_and_grad \(goal <= 1 us\)\s+{NUMBER} us", out), out
    assert "-step scalar recurrence y <- y + 0.01 sin(y x)" in out and "with ad.scan" in out, out
    compiles = re.findall(rf"compile \(goal < 5 s\)\s+{NUMBER} s\s+\(cold, a fresh cache folder; warm {NUMBER} s; "
                          r"(?:MET|NOT MET)\)", out)
    assert len(compiles) == 2, out        # the recurrence (fori_loop) and the long LSTM (scan)
    absent = re.findall(r"\b(?:PyTorch|JAX)\s+not measured \(--no-oracles\)", out)
    assert len(absent) == 2 * 7, out      # each oracle's header line and its row in each of the 6 comparisons


def test_the_kernel_benchmark_puts_the_products_alone_beside_each_convolution():
    out = _run("kernels.py", "--quick", "--no-torch")
    assert "gemm ms  blas ms" in out.splitlines()[3]
    for layer in ("conv1", "conv2"):
        for direction in ("forward", "backward input", "backward weight"):
            # ours ms, GFLOP/s, gemm ms, blas ms, numpy ms
            assert re.search(rf"^{layer} {direction}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", out,
                             re.M), out
    assert re.search(rf"cold \(empty cache\) {NUMBER} s, cached {NUMBER} s", out), out


def test_the_live_view_benchmark_times_fit_with_and_without_the_view():
    out = _run("live_view.py", "--quick")
    assert out.startswith("CPU: ") and "nn.fit with Adam at batch 128: one epoch of 24 steps" in out, out
    assert re.search(rf"without LiveView: median {NUMBER} ms per step, best {NUMBER} ms", out), out
    assert re.search(rf"with LiveView \(png, off-screen; sample of 64 images\): median {NUMBER} ms per step", out), out
    assert re.search(rf"the view per run: {NUMBER} s: its start \d+ ms .* one at its end \(\d+ ms, with histograms\)",
                     out), out
    assert re.search(rf"ratio with / without: median {NUMBER}, best {NUMBER}", out), out
    assert re.search(rf"the view's own time: {NUMBER}% of the run \(goal < 5%: --quick: too short to judge\)", out), out


def test_the_transforms_benchmark_measures_checkpoint_memory_and_time():
    out = _run("transforms.py", "--quick")
    assert out.startswith("CPU: ")
    assert "checkpoint: gradients bit-identical: True" in out
    assert re.search(rf"checkpoint: peak memory {NUMBER} MB -> {NUMBER} MB \({NUMBER} x\), "
                     rf"time {NUMBER} ms -> {NUMBER} ms \({NUMBER} x\)", out), out


def test_the_transforms_benchmark_measures_per_example_gradients_by_vmap_against_the_loop():
    out = _run("transforms.py", "--quick", "--only", "vmap", "--no-oracles")
    assert re.search(r"vmap: MLP 4-5-3, float64, 8 examples; largest difference between vmap\(grad\) and the loop "
                     r"of grad: \d\.\de[+-]\d+", out), out
    assert re.search(rf"vmap: loop of grad {NUMBER} ms, vmap\(grad\) {NUMBER} ms \({NUMBER} x faster\)", out), out
    assert re.search(rf"vmap: ad.compile\(vmap\(grad\)\) {NUMBER} ms \(largest difference from the loop "
                     r"\d\.\de[+-]\d+\)", out), out


def test_the_transforms_benchmark_times_the_batched_jacobian_against_one_vjp_per_row():
    out = _run("transforms.py", "--quick", "--only", "jacobian")
    assert re.search(rf"jacobian: R\^5 x R\^5 -> R\^4, argnums=\(0, 1\): one vjp per row {NUMBER} ms, ad.jacobian "
                     rf"\(one batched sweep\) {NUMBER} ms \({NUMBER} x faster\); largest difference", out), out
