"""benchmarks/roofline.py and the two OpenBLAS settings of benchmarks/kernels.py and train_step.py.

The roofline's model of each kernel (benchmarks/kernels.py's counts) is held to independent counts:
FLOPs from the definitions on tiny shapes and from Adam's formula's source, bytes from the nbytes of
the arrays the kernels really take and return. The two settings' child environments are read back from
a child process. The smoke runs use tiny sizes; no timing is asserted."""
import ast
import inspect
import itertools
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import kernels
from kernels.optim import formulas
from kernels.roofline import Roofline

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchmarks import kernels as bench  # noqa: E402
from train_step import OPENBLAS_VARIABLES, openblas_settings  # noqa: E402

NUMBER = r"\d+\.\d+"
BATCH = 2


def test_conv_flops_count_every_multiply_add_of_the_definition():
    x_shape, w_shape = (2, 3, 5, 6), (4, 3, 3, 2)
    (n, c, h, w), (f, _, kh, kw) = x_shape, w_shape
    terms = sum(1 for _ in itertools.product(range(n), range(f), range(h - kh + 1), range(w - kw + 1),
                                             range(c), range(kh), range(kw)))
    assert bench.conv_flops(x_shape, w_shape) == 2 * terms


def _arrays_of_each_case():
    """{case: (arrays in, arrays out)} from the kernels' real calls at the benchmark's shapes."""
    rng = np.random.default_rng(0)
    cases = {}
    for name in ("conv1", "conv2"):
        xs, ws = bench.shapes(BATCH)[name]
        x, w, b = (rng.standard_normal(s, dtype=np.float32) for s in (xs, ws, ws[0]))
        y = kernels.conv2d_forward(x, w, b)
        cases[f"{name} forward"] = (x, w, b), (y,)
        cases[f"{name} backward input"] = (y, w), (kernels.conv2d_backward_input(y, w, xs),)
        cases[f"{name} backward weight"] = (y, x), kernels.conv2d_backward_weight(y, x, ws)
    for name, wants_x in bench.FUSED.items():        # through the ReLU and the pooling, from the pooling's g
        xs, ws = bench.shapes(BATCH)[name]
        x, w = (rng.standard_normal(s, dtype=np.float32) for s in (xs, ws))
        out = kernels.conv2d.forward(x, w, None, kernels.ConvGeometry(), relu=True)
        pooled = kernels.pool2d.max_values(out, kernels.PoolGeometry(2))
        g = rng.standard_normal(pooled.shape, dtype=np.float32)
        grads = kernels.conv2d.backward_pooled(g, pooled, x, w, out, kernels.ConvGeometry(), kernels.PoolGeometry(2),
                                               input_grad=wants_x)
        cases[bench.fused_case(name)] = (g, pooled, out, x) + ((w,) if wants_x else ()), [a for a in grads
                                                                                          if a is not None]
    for name in ("pool1", "pool2"):
        x = rng.standard_normal(bench.shapes(BATCH)[name], dtype=np.float32)
        y = kernels.max_pool2d(x, 2)
        cases[f"{name} max forward"] = (x,), (y,)                              # y alone, as torch's max_pool2d
        cases[f"{name} max backward"] = (y, x), (kernels.pool2d.max_scatter(y, x, kernels.PoolGeometry(2)),)
    xs, ws = bench.shapes(BATCH)["dense"]
    x, w, b = (rng.standard_normal(s, dtype=np.float32) for s in (xs, ws, ws[1]))
    y = kernels.dense.forward(x, w, b)
    cases["dense forward"] = (x, w, b), (y,)
    cases["dense backward input"] = (y, w), (kernels.dense.backward_input(y, w),)
    cases["dense backward weight"] = (y, x), kernels.dense.backward_weight(y, x)
    p = np.zeros(bench.ADAM_PARAMS, np.float32)
    cases["adam update (34,826 params)"] = (p,) * 4, (p,) * 3              # p g m v read, p m v written
    return cases


def test_each_kernels_bytes_are_the_nbytes_of_the_arrays_it_reads_and_writes_once():
    cases = _arrays_of_each_case()
    counts = bench.counts(BATCH)
    assert set(cases) == set(counts) == set(bench.measure_ours(1, 1, "numpy"))      # every kernel measured
    for case, (inputs, outputs) in cases.items():
        assert counts[case][1] == sum(a.nbytes for a in inputs + tuple(outputs)), case


def test_each_kernels_flops_against_its_arrays_shapes():
    cases, counts = _arrays_of_each_case(), bench.counts(BATCH)
    (x, w, _), _ = cases["dense forward"]
    (g, _), _ = cases["dense backward input"]
    products = {"dense forward": x.shape[0] * x.shape[1] * w.shape[1],          # x @ w
                "dense backward input": g.shape[0] * g.shape[1] * w.shape[0],   # g @ w.T
                "dense backward weight": x.shape[1] * x.shape[0] * g.shape[1]}  # x.T @ g
    for case, (inputs, outputs) in cases.items():
        if case.startswith("conv"):       # each output of the forward pass sums C x kh x kw products
            (_, w, _), (y,) = cases[case.split()[0].split("+")[0] + " forward"]
            directions = 2 if "(x, w)" in case else 1                   # through the pooling: dx and dw
            assert counts[case][0] == directions * 2 * y.size * w[0].size, case
        elif case.startswith("dense"):
            assert counts[case][0] == 2 * products[case], case
        elif case.endswith("max forward"):  # a 2x2 window's maximum takes 3 comparisons
            assert counts[case][0] == 3 * outputs[0].size, case
        elif case.endswith("max backward"):  # the same comparisons again, for each window of g
            assert counts[case][0] == 3 * inputs[0].size, case


def test_adams_operation_count_is_its_formulas():
    """Count the arithmetic in kernels.optim.formulas.adam's plain-Adam path (no weight decay, no
    AMSGrad): the binary operations and the square root of the lines that update m, v and p."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(formulas.adam)))
    body = tree.body[0].body
    ops = 0
    for stmt in body:
        if isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) in ("m", "v", "p"):
            ops += sum(isinstance(n, (ast.BinOp, ast.Call)) for n in ast.walk(stmt.value))
        if isinstance(stmt, ast.If) and ast.unparse(stmt.test) == "amsgrad":
            denom = stmt.orelse[0].value                     # sqrt(v) / bias_correction2_sqrt + eps
            ops += sum(isinstance(n, (ast.BinOp, ast.Call)) for n in ast.walk(denom))
    assert ops == bench.ADAM_OPS == bench.counts(1)["adam update (34,826 params)"][0] / bench.ADAM_PARAMS


def test_a_kernels_place_is_its_rate_over_the_bound_that_limits_it():
    roof = Roofline(peak=100e9, bandwidth=10e9)
    flops, nbytes = bench.counts(BATCH)["conv2 forward"]
    ai, fraction, limit = bench.place(roof, "conv2 forward", 2.0, BATCH)
    assert ai == flops / nbytes and ai > roof.ridge and limit == "compute"
    assert fraction == pytest.approx(flops / 2e-3 / 100e9)
    flops, nbytes = bench.counts(BATCH)["pool1 max backward"]
    ai, fraction, limit = bench.place(roof, "pool1 max backward", 0.5, BATCH)
    assert ai < roof.ridge and limit == "memory" and fraction == pytest.approx(nbytes / 0.5e-3 / 10e9)


def test_the_roof_is_the_better_of_the_fma_loop_and_the_best_sgemm():
    machine = {"fma": 100e9, "sgemm": [(1024, 2, 80e9), (1024, 1, 50e9)], "dram": 20e9}
    roof, which = bench.roof_of(machine)
    assert roof == Roofline(100e9, 20e9) and which == "FMA loop"
    roof, which = bench.roof_of(dict(machine, sgemm=[(2048, 2, 120e9), (1024, 1, 50e9)]))
    assert roof.peak == 120e9 and which == "sgemm 2048^3 on 2 thread(s)"


def test_the_last_level_cache_is_the_highest_data_cache_sysfs_lists(tmp_path):
    import roofline as bench_roofline
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K"),
                                                 (3, "Unified", "30M"), (4, "Instruction", "64M")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(f"{value}\n")
    assert bench_roofline.last_level_cache(tmp_path) == 30 << 20
    (tmp_path / "index5").mkdir()                                      # garbled entries are skipped
    for name, value in (("level", "x"), ("type", "Unified"), ("size", "")):
        (tmp_path / "index5" / name).write_text(value)
    assert bench_roofline.last_level_cache(tmp_path) == 30 << 20
    assert bench_roofline.last_level_cache(tmp_path / "absent") is None


def test_the_table_marks_memory_bound_kernels_whose_bytes_fit_in_the_last_level_cache():
    import roofline as bench_roofline
    roof = Roofline(peak=100e9, bandwidth=10e9)
    ours = {"pool1 max backward": 0.5, "conv2 forward": 2.0}
    nbytes = bench.counts(BATCH)["pool1 max backward"][1]
    for cache, mark in ((None, "-"), (nbytes - 1, "-"), (nbytes, "yes")):
        rows = {" ".join(row.split()[:2]): row for row in bench_roofline.table(roof, ours, BATCH, cache)[2:]}
        assert rows["pool1 max"].split()[-2] == mark
        assert rows["conv2 forward"].split()[-2] == "-"                  # compute-bound: never marked


CHILD = "import os; print([os.environ.get(k) for k in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE')])"


def _seen_by_child(env):
    return subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True).stdout.strip()


def test_the_second_setting_s_child_lacks_both_variables_and_the_parent_keeps_them(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    (title1, as_is), (title2, own) = openblas_settings()
    assert _seen_by_child(as_is) == "['Haswell', '1048576']"
    assert _seen_by_child(own) == "[None, None]"
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell" and os.environ["OPENBLAS_L2_SIZE"] == "1048576"
    assert "OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE=1048576" in title1 and "removed" in title2
    (title1, as_is), _ = openblas_settings("Nehalem")              # --coretype: in [1]'s children only
    assert _seen_by_child(as_is) == "['Nehalem', '1048576']" and "by --coretype" in title1
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"


def test_with_neither_variable_set_the_output_says_the_two_runs_are_one_setting(monkeypatch):
    for name in OPENBLAS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    (title1, as_is), (_, own) = openblas_settings()
    assert "neither is set here, so [1] and [2] are the same setting (--coretype NAME" in title1
    assert _seen_by_child(as_is) == _seen_by_child(own) == "[None, None]"


def _run(script, *args, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER", *OPENBLAS_VARIABLES)}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                            text=True, env=dict(environ, **env), cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _avx2():
    return "avx2" in (Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else "")


def test_the_roofline_benchmark_prints_the_machine_every_kernels_place_and_draws_the_plot(tmp_path):
    out = _run("roofline.py", "--quick", "--plot", str(tmp_path / "roof.png"))
    assert out.startswith("CPU: ") and "BLAS: openblas" in out, out
    assert re.search(rf"FMA loop \(Numba, \d+ threads\)\s+{NUMBER} GFLOP/s", out), out
    assert len(re.findall(rf"^sgemm 256\^3, \d threads?\s+{NUMBER} GFLOP/s", out, re.M)) == 2, out
    assert re.search(rf"^triad, 3 x 4 MiB\s+{NUMBER} GB/s", out, re.M), out
    assert re.search(rf"compute roof: {NUMBER} GFLOP/s \((FMA loop|sgemm .*)\); memory roof: {NUMBER} GB/s", out)
    for case in bench.counts(8):
        assert re.search(rf"^{re.escape(case)}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+.*\s{NUMBER}%$", out, re.M), case
    assert (tmp_path / "roof.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_kernel_benchmark_measures_both_settings_in_their_own_processes():
    out = _run("kernels.py", "--quick", "--no-torch", "--no-compile", "--coretype", "Nehalem")
    first = re.search(r"^\[1\] OpenBLAS as the environment has it \(OPENBLAS_CORETYPE=Nehalem by --coretype, "
                      r"OPENBLAS_L2_SIZE unset\); its processes see OPENBLAS_CORETYPE=Nehalem, OPENBLAS_L2_SIZE unset; "
                      r"OpenBLAS's kernels: (.*)$", out, re.M)
    second = re.search(r"^\[2\] OpenBLAS's own choice \(OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed\); its "
                       r"processes see OPENBLAS_CORETYPE unset, OPENBLAS_L2_SIZE unset; OpenBLAS's kernels: (.*)$",
                       out, re.M)
    assert first and second, out
    assert set(re.findall(r"(\w+) \(", first.group(1))) == {"Nehalem"}, first.group(0)
    if _avx2():                                # OpenBLAS's own choice on an AVX2 CPU is never Nehalem
        assert "Nehalem" not in second.group(1), second.group(0)
    for case in bench.counts(8):               # each table has every kernel with its place on the roofline
        rows = re.findall(rf"^{re.escape(case)}\s+{NUMBER}\s.*\s{NUMBER}\s+{NUMBER}%\s+(?:compute|memory)$", out, re.M)
        assert len(rows) == 2, (case, out)
    assert len(re.findall(rf"^  roof: \d+ GFLOP/s \(.*\), {NUMBER} GB/s \(triad", out, re.M)) == 2, out
    assert "compile time not measured: skipped (--no-compile)" in out


def test_the_train_step_benchmark_measures_both_settings():
    out = _run("train_step.py", "--quick", "--batch", "8", OPENBLAS_CORETYPE="Nehalem")
    first = re.search(r"^\[1\] OpenBLAS as the environment has it \(OPENBLAS_CORETYPE=Nehalem, OPENBLAS_L2_SIZE "
                      r"unset\): .* at batch 8, .*; OpenBLAS's kernels: (.*)$", out, re.M)
    second = re.search(r"^\[2\] OpenBLAS's own choice \(OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed\): .*; "
                       r"OpenBLAS's kernels: (.*)$", out, re.M)
    assert first and second, out
    assert first.group(1) == "Nehalem", first.group(0)
    if _avx2():
        assert "Nehalem" not in second.group(1), second.group(0)
    medians = re.findall(rf"ours, plain loop, NumPy imported first \(headline\): median {NUMBER} ms", out)
    assert len(medians) == 2, out


def test_the_library_never_sets_or_removes_the_openblas_variables(monkeypatch):
    """Issue 31: which kernels OpenBLAS picks is the user's choice. No source of the library names the
    variables, and the kernels' calls leave the environment as they found it."""
    named = [str(p.relative_to(ROOT)) for package in ("autodiff", "kernels", "nn", "chainrule")
             for p in (ROOT / package).rglob("*.py") if any(v in p.read_text() for v in OPENBLAS_VARIABLES)]
    assert not named, named
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    before = dict(os.environ)
    x = np.ones((2, 1, 6, 6), np.float32)
    y = kernels.conv2d_forward(x, np.ones((3, 1, 3, 3), np.float32), None)
    kernels.conv2d_backward_weight(y, x, (3, 1, 3, 3))
    assert dict(os.environ) == before
