"""Drawing the graph: pictures, step-by-step sweeps, trace tables, straight-line code."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import autodiff as ad
from autodiff.examples import eq_5_36, eq_5_37

from _requires import requires_dot  # tests/_requires.py

# Rendering needs Graphviz's `dot`. CI installs it (and sets CI=true), so there these tests always
# run; on a machine without `dot` they are skipped rather than failing the README's test command.

EQ_5_38 = ["a = sin(x)", "b = a ** 2", "c = a + b", "d = exp(c)", "e = exp(x)", "f = e ** 2", "g = e + f",
           "h = sin(g)", "y = d + h"]


def _nodes(dot):
    """{dot id: [label lines]} of a Digraph's nodes."""
    return {m.group(1): m.group(2).split("\n")
            for m in re.finditer(r'^\s*(\w+) \[label="(.*?)"', dot.source, flags=re.M | re.S)}


def _eq_5_36_graph(x=0.5):
    x = ad.Tensor(x, requires_grad=True, name="x")
    return x, eq_5_36(x)


def test_eq_5_36_drawing_has_the_nodes_of_eq_5_38_with_engine_values_and_adjoints():
    x, y = _eq_5_36_graph()
    dot = ad.draw(y, names="letters")
    nodes = _nodes(dot)
    assert sorted(lines[0] for lines in nodes.values()) == sorted(["x"] + EQ_5_38)
    assert dot.source.count("->") == 12  # eq. 5.38's twelve operand edges
    order, _ = ad.toposort([y])
    adjoints = dict(zip((id(n) for n in order), ad.gradients(y, order)))
    names = ad.draw.__globals__["node_names"](order, y, "letters")
    by_name = {lines[0].split(" = ")[0]: lines for lines in nodes.values()}
    for node in order:
        lines = by_name[names[id(node)]]
        assert f"value {node.item():.4g}" in lines
        assert f"adjoint {float(adjoints[id(node)]):.4g}" in lines
    assert f"adjoint {eq_5_37(0.5):.4g}" in by_name["x"]


def test_edges_carry_their_local_derivative_eq_5_40():
    x, y = _eq_5_36_graph()
    dot = ad.draw(y, names="letters", edge_labels=True)
    edges = dict(re.findall(r'(n\d+ -> n\d+) \[label="([^"]*)"', dot.source))
    assert len(edges) == 12                                  # every edge of eq. 5.38 is labelled
    a, e = np.sin(0.5), np.exp(0.5)
    c = a + a ** 2
    # The book's factors, computed here from NumPy, not from the engine's rules.
    expected = {"da/dx": ("cos(x)", np.cos(0.5)), "db/da": ("2*a", 2 * a), "dd/dc": ("exp(c)", np.exp(c)),
                "de/dx": ("exp(x)", e), "df/de": ("2*e", 2 * e), "dh/dg": ("cos(g)", np.cos(e + e ** 2))}
    for label in edges.values():
        name, _, rest = label.partition(" = ")
        if name in expected:
            text, value = expected.pop(name)
            assert rest == f"{text} = {value:.4g}", label
        else:                                                # the additions: dc/da = dc/db = dg/de = ... = 1
            assert rest == "1", label
    assert not expected
    assert "label=" not in ad.draw(y).source.split("->", 1)[1].split("\n", 1)[0]   # off by default


def test_tangents_after_a_forward_sweep():
    x, y = _eq_5_36_graph()
    nodes = _nodes(ad.draw(y, show=("value", "tangent"), wrt=x, names="letters"))
    by_name = {lines[0].split(" = ")[0]: lines for lines in nodes.values()}
    assert f"tangent {eq_5_37(0.5):.4g}" in by_name["y"] and "tangent 1" in by_name["x"]
    assert not any(line.startswith("adjoint") for lines in nodes.values() for line in lines)


def test_print_graph_and_trace_tables_follow_the_textbook(capsys):
    x, y = _eq_5_36_graph()
    ad.print_graph(y)
    assert capsys.readouterr().out.splitlines() == EQ_5_38
    reverse = ad.trace_table(y, mode="reverse")
    assert [r["node"] for r in reverse.rows] == list("yhgfedcbax")
    assert reverse.rows[-1]["adjoint"] == f"{eq_5_37(0.5):.6g}"
    assert reverse.rows[-1]["rule"] == "x\u0304 = cos(x)·a\u0304 + exp(x)·e\u0304"   # eq. 5.39, last line
    assert next(r for r in reverse.rows if r["node"] == "a")["rule"] == "a\u0304 = 2*a·b\u0304 + c\u0304"
    forward = ad.trace_table(y, mode="forward")
    assert forward.rows[-1]["tangent"] == f"{eq_5_37(0.5):.6g}"
    assert forward.rows[4]["rule"] == "dd = exp(c)·dc"   # dd/dc = exp(c), eq. 5.40
    text = str(forward)
    assert text.splitlines()[0].split() == ["node", "expression", "value", "tangent", "rule"]
    assert forward.to_markdown().startswith("| node | expression |") and "<table>" in reverse._repr_html_()


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_one_step_picture_per_node_swept(mode):
    x, y = _eq_5_36_graph()
    steps = ad.draw_steps(y, mode=mode)
    order, _ = ad.toposort([y])
    assert len(steps) == len(order) == 10
    highlighted = [re.findall(r'\w+ \[label="([^"\n]*)[^"]*"[^\]]*penwidth=2', g.source) for g in steps]
    assert all(len(h) == 1 for h in highlighted)
    expected = [line for line in ["x"] + EQ_5_38]
    assert [h[0] for h in highlighted] == (expected[::-1] if mode == "reverse" else expected)


def test_fan_out_node_lists_its_contributions():
    x, y = _eq_5_36_graph()
    steps = ad.draw_steps(y, mode="reverse")
    step_a = next(g for g in steps if "dy/da = " in g.source)
    lines = next(lines for lines in _nodes(step_a).values() if lines[0] == "a = sin(x)")
    assert "dy/da = dy/dc·dc/da + dy/db·db/da" in lines           # eq. 5.39
    numbers = [float(v) for v in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", lines[-1])]
    assert numbers[0] + numbers[1] == pytest.approx(numbers[2], rel=1e-3)
    d = ad.gradients(y, [y.inputs[0].inputs[0].inputs[0]])[0]    # dy/da by the engine
    assert numbers[2] == pytest.approx(float(d), rel=1e-3)


def test_large_graphs_collapse_and_never_recurse():
    x = ad.Tensor(0.1, requires_grad=True)
    y = x
    for _ in range(5_000):
        y = ad.sin(y) * 0.5   # 10,000 op nodes
    dot = ad.draw(y, max_nodes=50)
    nodes = _nodes(dot)
    assert len(nodes) == 51 and "... 9,951 earlier nodes" in nodes["hidden"][0]
    assert len(_nodes(ad.draw(y, max_nodes=None, show=("value",)))) == 10_001
    assert len(ad.graph_code(y).splitlines()) == 10_000
    assert len(ad.trace_table(y, mode="reverse").rows) == 10_001


def test_a_cnn_forward_graph_stays_under_max_nodes():
    rng = np.random.default_rng(0)
    images = ad.Tensor(rng.normal(size=(8, 1, 6, 6)))
    kernels = ad.Tensor(rng.normal(size=(4, 9)), requires_grad=True, name="K")
    w = ad.Tensor(rng.normal(size=(4 * 16, 10)) * 0.1, requires_grad=True, name="W")
    patches = ad.stack([images[:, 0, i:i + 3, j:j + 3].reshape(8, 9) for i in range(4) for j in range(4)], axis=1)
    feature = ad.relu(patches @ kernels.T)                      # (8, 16, 4): a 3x3 convolution as a matmul
    logits = feature.reshape(8, 64) @ w
    loss = -ad.log_softmax(logits, axis=1)[np.arange(8), rng.integers(0, 10, 8)].mean()
    order, _ = ad.toposort([loss])
    dot = ad.draw(loss, max_nodes=60)
    assert len(order) <= 60 and "hidden" not in _nodes(dot)     # tensor-level nodes: one per layer op
    assert any("(8, 16, 4) float64" in lines for lines in _nodes(dot).values())


def test_the_graph_of_a_derivative_draws_like_any_graph():
    x = ad.Tensor(0.3, requires_grad=True, name="x")
    (ad.sin(x) ** 3).backward(create_graph=True)
    dot = ad.draw(x.grad, show=("value",))
    labels = [lines[0] for lines in _nodes(dot).values()]
    assert "x" in labels and len(labels) > 3
    assert f"value {x.grad.item():.4g}" in dot.source


def test_bad_arguments_are_named():
    x, y = _eq_5_36_graph()
    with pytest.raises(ValueError, match="show may hold"):
        ad.draw(y, show=("colour",))
    with pytest.raises(ValueError, match="rankdir must be one of"):
        ad.draw(y, rankdir="UP")
    v = ad.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"adjoints need a scalar output or seed= \(y has shape \(3,\)\)"):
        ad.draw(v * 2)
    w = ad.Tensor(1.0, requires_grad=True)
    with pytest.raises(ValueError, match="tangents need wrt="):
        ad.trace_table(w * x, mode="forward")


@requires_dot
def test_svg_and_png_render_with_dot(tmp_path):
    x, y = _eq_5_36_graph()
    svg = ad.save(ad.draw(y, names="letters"), tmp_path / "eq536.svg")
    text = svg.read_text()
    assert "<svg" in text and "a = sin(x)" in text and (tmp_path / "eq536.dot").exists()
    png = ad.save(ad.draw(y), tmp_path / "eq536.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    paths = ad.draw_steps(y).save(tmp_path / "steps")
    assert [p.name for p in paths] == [f"step_{k:03d}.svg" for k in range(1, 11)]
    assert all("<svg" in p.read_text() for p in paths)


def test_without_dot_the_error_says_how_to_install_and_the_source_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    x, y = _eq_5_36_graph()
    dot = ad.draw(y)
    with pytest.raises(ad.GraphvizNotFound, match=r"apt-get install graphviz.*DOT source was saved"):
        ad.save(dot, tmp_path / "g.svg")
    assert (tmp_path / "g.dot").read_text() == dot.source
    assert not (tmp_path / "g.svg").exists()
    shown = dot._repr_mimebundle_()                     # a notebook shows the graph as text, never raises
    assert "image/svg+xml" not in shown and "apt-get install graphviz" in shown["text/html"]
    assert "a = sin(x)" not in shown["text/plain"] and "v1 = sin(x)" in shown["text/plain"]   # names=None: v1, v2
    assert "x̄ = " in shown["text/plain"]                  # and the reverse trace table, with the adjoints
    steps = ad.draw_steps(y)._repr_html_()
    assert "<svg" not in steps and "apt-get install graphviz" in steps and "dy/da = dy/dc·dc/da" in steps


def test_a_cell_ending_in_draw_shows_without_dot(tmp_path, monkeypatch):
    # What IPython does with a cell's last expression: the display formatter, which must not raise.
    formatters = pytest.importorskip("IPython.core.formatters")

    monkeypatch.setenv("PATH", str(tmp_path))
    x, y = _eq_5_36_graph()
    data, _ = formatters.DisplayFormatter().format(ad.draw(y, names="letters"))
    assert "a = sin(x)" in data["text/html"] and "apt-get install graphviz" in data["text/html"]
    v = ad.Tensor(np.arange(3.0), requires_grad=True, name="v")
    data, _ = formatters.DisplayFormatter().format(ad.draw(ad.sin(v) * 2, show=("value",)))  # no seed: no table
    assert "v1 = sin(v)" in data["text/html"] and "adjoint" not in data["text/html"]


def test_negative_zero_is_printed_as_zero():
    from autodiff.labels import number_text as _number

    assert _number(-0.0, 4) == "0" and _number(np.array([-0.0, -1.5]), 4) == "[0, -1.5]"


def test_has_dot_looks_on_path_as_graphviz_does(tmp_path, monkeypatch):
    from autodiff.draw import has_dot

    monkeypatch.setenv("PATH", str(tmp_path))
    assert not has_dot()
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert has_dot()


WITHOUT_GRAPHVIZ = """
import sys
sys.modules["graphviz"] = None            # as if the package were not installed: importing it fails
import autodiff as ad
print(ad.grad(lambda t: ad.sin(t) * t)(0.5))
x = ad.Tensor(0.5, requires_grad=True, name="x")
for ask in (lambda: ad.draw(ad.sin(x)), lambda: ad.draw_steps(ad.sin(x))):
    try:
        ask()
    except ImportError as exc:
        print(type(exc).__name__, isinstance(exc, ad.GraphvizNotFound), exc)
"""


def test_gradients_need_no_graphviz_package_and_drawing_says_how_to_install_it():
    root = Path(__file__).resolve().parents[1]
    plain = subprocess.run([sys.executable, "-c", "import sys, autodiff; print('graphviz' in sys.modules)"],
                           cwd=root, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and plain.stdout.split() == ["False"], plain.stderr   # imported at the first picture
    result = subprocess.run([sys.executable, "-c", WITHOUT_GRAPHVIZ], cwd=root, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert float(lines[0]) == pytest.approx(np.sin(0.5) + 0.5 * np.cos(0.5), rel=1e-15)
    assert len(lines) == 3 and all(line.startswith("GraphvizPackageMissing True drawing a graph needs the graphviz "
                                                   "Python package") and "pip install graphviz" in line
                                   for line in lines[1:]), lines


def test_a_node_used_twice_shows_each_edges_own_partial_in_the_trace_tables():
    from autodiff.labels import bar

    x = ad.Tensor(1.5, requires_grad=True, name="x")
    h = ad.sin(x)
    y = h * h                      # dy/dh = 2h: one h from each edge, not 2h from each
    forward = str(ad.trace_table(y))
    reverse = str(ad.trace_table(y, mode="reverse"))
    assert "dy = a·da + a·da" in forward, forward
    a_bar, y_bar = bar("a"), bar("y")
    assert f"{a_bar} = a·{y_bar} + a·{y_bar}" in reverse, reverse
