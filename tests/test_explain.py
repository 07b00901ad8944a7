"""autodiff.compile's source map and autodiff.explain, held to this file's own text (the line numbers a
comment must name are found by reading the file) and to the eager engine.

- each forward line of the generated code names the line of f that made it; a tangent line names the
  line it differentiates; an adjoint line names lines of the consumers of its value (whose rules made it);
- code written inside autodiff (autodiff.examples) has no location, and its lines no comment;
- the comments change neither the values (the eager engine) nor the sharing of identical loops;
- explain: the forward and adjoint (or tangent) programs, gradcheck's verdict, the unused inputs, the
  line that made a non-finite value, and one-line errors naming the argument.
"""
from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

import autodiff as ad
from autodiff import tensor
from autodiff.compiler.sourcemap import without_source_map
from autodiff.examples import eq_5_36

SOURCE = Path(__file__).read_text().splitlines()
NAME = Path(__file__).name


def line_of(marker):
    """The number of the line of this file that holds ``marker`` (once)."""
    found = [k + 1 for k, text in enumerate(SOURCE) if text.rstrip().endswith(f"# {marker}")]
    assert len(found) == 1, marker
    return found[0]


def lesson(x, w):
    a = ad.sin(x)                  # @sine
    b = a * w                      # @product
    return ad.exp(b) + a           # @output


def helper(v):
    return ad.tanh(v)              # @helper


def uses_helper(x):
    return helper(x * 2.0)         # @caller


def code_lines(source, suffix=None):
    """{name: (code, set of line numbers in the comment)} for the statements of ``source``."""
    out = {}
    for text in source.splitlines():
        m = re.match(r"\s+(\w+) = (.*?)(?:  # (.*))?$", text)
        if m and (suffix is None or m.group(1).endswith(suffix)):
            lines = set()
            for part in (m.group(3) or "").split(", "):
                if part:
                    file, numbers = part.split(":")
                    assert file == NAME, part
                    lines |= {int(n) for n in numbers.split(",")}
            out[m.group(1)] = (m.group(2), lines)
    return out


CONSUMERS = {"x": {"@sine"}, "w": {"@product"}, "a": {"@product", "@output"}, "b": {"@output"}, "c": {"@output"}}


def test_forward_lines_name_the_line_that_made_them(tmp_path):
    cf = ad.compile(lesson, 0.5, 0.7, mode="value", cache=tmp_path)
    lines = code_lines(cf.source)
    assert lines["a"] == ("sin(x)", {line_of("@sine")})
    assert lines["b"] == ("a * w", {line_of("@product")})
    assert lines["c"][1] == lines["y"][1] == {line_of("@output")}
    path = lesson.__code__.co_filename      # the full path, once, in the header; a temporary folder's left out
    in_temp = path.startswith(os.path.join(tempfile.gettempdir(), ""))   # (a checkout under /tmp, as CI's may be)
    assert (f"#   {NAME} = {path}" in cf.source) is not in_temp


def test_tangent_lines_name_the_line_they_differentiate(tmp_path):
    cf = ad.compile(lesson, 0.5, 0.7, mode="forward", argnums=(0, 1), cache=tmp_path)
    forward = {name: lines for name, (_, lines) in code_lines(cf.source).items() if not name.endswith("_dot")}
    tangents = code_lines(cf.source, "_dot")
    assert set(tangents) == {n + "_dot" for n in ("a", "b", "c", "y")}
    for name, (_, lines) in tangents.items():
        assert lines == forward[name[:-4]], name
    y, dy = cf(0.5, 0.7, 1.0, 0.0)
    assert (y, dy) == pytest.approx(ad.jvp(lambda x: lesson(x, 0.7), (0.5,), (1.0,)), rel=1e-14)


def test_adjoint_lines_name_the_lines_of_the_consumers(tmp_path):
    cf = ad.compile(lesson, 0.5, 0.7, argnums=(0, 1), cache=tmp_path)
    adjoints = code_lines(cf.source, "_bar")
    assert {"a_bar", "b_bar", "c_bar", "x_bar", "w_bar"} <= set(adjoints)
    for name, (_, lines) in adjoints.items():
        expected = {line_of(m) for m in CONSUMERS[name[:-4]]}
        assert lines and lines <= expected, (name, lines, expected)
    value, grads = cf(0.5, 0.7)
    ref_value, ref_grads = ad.value_and_grad(lesson, argnums=(0, 1))(0.5, 0.7)
    assert value == pytest.approx(ref_value, rel=1e-14) and grads == pytest.approx(ref_grads, rel=1e-14)


def test_the_code_without_its_comments_is_the_engines_printout(tmp_path):
    cf = ad.compile(lesson, 0.5, 0.7, mode="value", cache=tmp_path)
    code = without_source_map(cf.source)
    body = code.split("def lesson(x, w):\n")[1].split("\n    return")[0]
    x, w = ad.Tensor(0.5, requires_grad=True, name="x"), ad.Tensor(0.7, requires_grad=True, name="w")
    assert [line.strip() for line in body.splitlines()] == ad.graph_code(lesson(x, w)).splitlines()
    assert "#" not in code and "#" in cf.source


def test_a_file_in_the_temporary_folder_keeps_its_short_name_alone(tmp_path):
    """A Jupyter cell's file lies in a folder named by the kernel's process: the source names it without that
    folder, so that the next session generates the same source (and Numba's cache holds)."""
    cell = tmp_path / "cell.py"
    cell.write_text("import autodiff as ad\n\n\ndef f(x):\n    return ad.sin(x) * x\n")
    spec = importlib.util.spec_from_file_location("explain_cell", cell)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = ad.compile(module.f, 0.5, cache=tmp_path).source
    assert "a = sin(x)  # cell.py:5" in source and str(tmp_path) not in source


def test_a_helper_function_is_located_at_its_own_line(tmp_path):
    lines = code_lines(ad.compile(uses_helper, 0.3, mode="value", cache=tmp_path).source)
    assert lines["a"][1] == {line_of("@caller")} and lines["y"] == ("tanh(a)", {line_of("@helper")})


def test_code_written_inside_autodiff_has_no_comment(tmp_path):
    source = ad.compile(eq_5_36, 0.5, cache=tmp_path).source
    assert "#" not in source and "source map" not in source


def test_identical_loops_are_still_written_once(tmp_path):
    def rnn(x, w):
        h = ad.tanh(x @ w + x)                  # @first step
        h = ad.tanh(h @ w + x)                  # @second step
        h = ad.tanh(h @ w + x)                  # @third step
        return ad.sum(h * h)

    x, w = np.linspace(-1.0, 1.0, 6).reshape(2, 3), np.linspace(0.5, -0.5, 9).reshape(3, 3)
    cf = ad.compile(rnn, x, w, mode="value", cache=tmp_path)
    driver = cf.source.split("def rnn(")[1]
    assert driver.count("rnn_loop1(") == 2 and cf.source.count("@njit") == 2   # steps 1 and 2: one loop written
    assert f"impl.matmul(c, w)  # {NAME}:{line_of('@second step')}" in driver
    assert cf(x, w) == pytest.approx(float(ad.value_of(rnn(x, w))), rel=1e-14)
    assert ad.compile(rnn, x, w, mode="value", cache=tmp_path).path == cf.path     # the same source: Numba's cache


def test_the_source_map_leaves_anomaly_mode_as_it_was(tmp_path):
    """The source map notes nodes through anomaly mode's hook in tensor.apply: it hands each value on to
    anomaly mode's checker when that is on, and is gone once compile is done."""
    ad.compile(lesson, 0.5, 0.7, cache=tmp_path)
    assert tensor._anomaly is None and not ad.is_anomaly_enabled()
    with ad.detect_anomaly(), np.errstate(divide="ignore"):
        checker = tensor._anomaly
        with pytest.raises(ad.AnomalyError, match=r"^forward sweep: log returned -inf") as info:
            ad.compile(lambda x: ad.log(x) * 2.0, 0.0, cache=tmp_path)      # @anomaly line
        assert tensor._anomaly is checker and f"{NAME}:{line_of('@anomaly line')}" in info.value.line
    assert tensor._anomaly is None


# --- explain ---------------------------------------------------------------------------------------

def field(report, text):
    return [line for line in str(report).splitlines() if line.startswith(text)][0]


def test_explain_prints_both_programs_with_their_lines():
    report = ad.explain(lesson, 0.5, 0.7)
    text = str(report)
    assert report.mode == "reverse" and "adjoint program" in text
    forward = [line.split("#")[0].strip() for line in report.forward]
    assert forward[:2] == ["a = sin(x)", "b = a * w"]
    assert all(line.rstrip().endswith(f"{NAME}:{line_of('@sine')}") for line in text.splitlines()
               if line.strip().startswith("a = sin(x)"))
    assert {line.split(" = ")[0] for line in report.derivative} >= {"x_bar", "w_bar", "a_bar"}
    value = float(report.value)
    assert value == pytest.approx(float(ad.value_of(lesson(0.5, 0.7))), rel=1e-5)
    assert field(report, "gradcheck").startswith("gradcheck at this point: passed")
    assert field(report, "inputs").endswith(": none") and field(report, "non-finite").endswith(": none")
    assert "<pre>" in report._repr_html_() and "&lt;" not in str(report)


def test_explain_finds_a_wrong_rule_an_unused_input_and_the_line_of_a_nan():
    @ad.custom_jvp
    def wrong_sin(x):
        return ad.sin(x)

    wrong_sin.defjvp(lambda primals, tangents: (wrong_sin(primals[0]), tangents[0] * 2.0))

    def f(x, w, unused):
        a = ad.log(x)                           # @log line
        return ad.sum(wrong_sin(a * w))

    report = ad.explain(f, np.array([1.0, 0.0, 2.0]), np.array([0.5, 0.5, 0.5]), 3.0)
    assert field(report, "gradcheck").startswith("gradcheck at this point: FAILED")
    assert field(report, "inputs") == "inputs the output does not depend on: unused"
    nonfinite = field(report, "non-finite")
    assert "a = log(x)" in nonfinite and f"{NAME}:{line_of('@log line')}" in nonfinite and "-inf" in nonfinite
    good = ad.explain(lambda x, w: ad.sum(ad.sin(ad.log(x) * w)), np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    assert field(good, "gradcheck").startswith("gradcheck at this point: passed")


def test_explain_of_a_vector_output_shows_the_tangent_program():
    report = ad.explain(lambda x: ad.sin(x) * 2.0, np.array([0.1, 0.2]))
    assert report.mode == "forward" and "reverse mode needs f to return one scalar" in str(report)
    tangents = [line.split("#")[0].strip() for line in report.derivative]
    assert tangents == ["a_dot = x_dot * cos(x)", "y_dot = a_dot * 2.0"]


def test_explain_cuts_a_long_program_in_the_middle():
    def long(x):
        for _ in range(100):
            x = ad.sin(x)
        return x

    text = str(ad.explain(long, 0.3)).splitlines()
    assert any("lines left out" in line for line in text) and len(text) < 3 * ad.compiler.explain.SHOWN


@pytest.mark.parametrize("call, match", [
    (lambda: ad.explain(3.0, 0.5), r"^autodiff\.explain: f must be a function, got float$"),
    (lambda: ad.explain(ad.sin), r"^autodiff\.explain\(f, \*args\): give the arguments"),
    (lambda: ad.explain(ad.sin, "a"), r"^autodiff\.explain: argument 0 must be a number or an array, got str$"),
    (lambda: ad.explain(ad.add, 1.0, {"w": 1.0}), r"^autodiff\.explain: argument 1 must be a number or an array"),
    (lambda: ad.explain(ad.sin, np.array(["a"])), r"^autodiff\.explain: argument 0"),
])
def test_explain_refuses_bad_input_in_one_line_naming_the_argument(call, match):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert re.search(match, str(info.value)) and "\n" not in str(info.value)


def test_anomaly_mode_reads_as_off_inside_a_compiled_f_and_on_under_detect_anomaly(tmp_path):
    seen = []

    def f(x):
        seen.append(ad.is_anomaly_enabled())
        return ad.sin(x)

    ad.compile(f, 0.5, mode="value", cache=tmp_path)
    with ad.detect_anomaly():
        ad.compile(f, 0.5, mode="value", cache=tmp_path)
    assert seen == [False, True] and not ad.is_anomaly_enabled()


def test_explain_names_each_if_and_the_way_taken_and_shows_a_loops_body():
    def branchy(x):
        if x > 0:
            return ad.sin(x)
        return x * x

    line = branchy.__code__.co_firstlineno + 1
    for at, way in ((0.5, "true"), (-0.5, "false")):
        report = ad.explain(branchy, at)
        assert report.decisions == [f"test_explain.py:{line} (`if x > 0:`): {way}"]
        assert ("sin(x)" in "\n".join(report.forward)) is (way == "true")
    looped = ad.explain(lambda x: ad.fori_loop(0, 10, lambda i, y: y * 0.5 + ad.sin(x), x), 0.5)
    (head, body), = looped.loops
    assert head.startswith("a scan loop (10 steps)") and any("sin(" in b for b in body)
    assert "a scan loop (10 steps)" in str(looped) and not looped.decisions
