"""The views scale (issue 27): past its documented limit each view refuses in one line naming the limit,
the graph's size and the way out, before the expensive work; below it, it works; the text views stay linear.

Nothing here asserts seconds: a refusal is checked to come before the work by making that work fail if
it is reached. Measured on two cores (the report of the change): a 10^5-node chain's graph_code takes
0.4 s and its trace table 4 s; draw (summarised) 0.5 s; the others refuse at once.
"""
import importlib
import io

import pytest

import autodiff as ad
from autodiff.draw import MAX_NODES, MAX_RENDER_NODES
from autodiff.player import MAX_STEPS, Step, player_html

draw_module, labels, symbolic, tables = (importlib.import_module(f"autodiff.{name}")   # ad.draw is the function
                                         for name in ("draw", "labels", "symbolic", "tables"))


def chain(n):
    """x, then n sin nodes: n + 1 nodes."""
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    y = x
    for _ in range(n):
        y = ad.sin(y)
    return y


@pytest.fixture(scope="module")
def long_chain():
    return chain(MAX_NODES)          # MAX_NODES + 1 nodes: past the pictures' limit, below the text views'


def _fail(*args, **kwargs):
    raise AssertionError("the refused view did its work first")


def _one_line(exc_info, *words):
    text = str(exc_info.value)
    assert "\n" not in text
    for word in words:
        assert word in text, (word, text)


# --- text views: linear, and their limit -------------------------------------------------------------

def test_text_views_of_a_long_chain_are_complete(long_chain):
    n = MAX_NODES + 1
    code = ad.graph_code(long_chain).splitlines()
    assert len(code) == n - 1 and code[0] == "a = sin(x)" and code[-1].startswith("y = sin(")
    out = io.StringIO()
    ad.print_graph(long_chain, file=out)
    assert out.getvalue().count("\n") == n - 1
    table = ad.trace_table(long_chain, mode="reverse")
    assert len(table.rows) == n and table.rows[-1]["node"] == "x"
    assert table.rows[1]["rule"].startswith("v") and "cos(" in table.rows[1]["rule"]   # each partial written out
    assert str(table).count("\n") == n + 1                                                # header, rule, rows


@pytest.mark.parametrize("view", ["graph_code", "print_graph", "trace_table"])
def test_text_views_refuse_past_max_text_nodes_naming_it(view, monkeypatch):
    for module in (labels, tables):
        monkeypatch.setattr(module, "MAX_TEXT_NODES", 50)
    monkeypatch.setattr(labels, "node_names", _fail)
    monkeypatch.setattr(tables, "node_names", _fail)
    with pytest.raises(ValueError, match=rf"^{view}: the graph has 61 nodes, more than this view's limit of 50 "
                                         r"\(autodiff\.labels\.MAX_TEXT_NODES\); ") as exc:
        getattr(ad, view)(chain(60))
    _one_line(exc, "an intermediate Tensor")


def test_the_text_limit_is_larger_than_the_pictures():
    assert labels.MAX_TEXT_NODES >= 10 * MAX_NODES > MAX_NODES > MAX_RENDER_NODES > MAX_STEPS


# --- pictures ------------------------------------------------------------------------------------------

def test_draw_of_a_long_chain_summarises(long_chain):
    picture = ad.draw(long_chain)                              # max_nodes=200: the earliest collapse
    assert f"... {MAX_NODES + 1 - 200:,} earlier nodes" in picture.source
    assert picture.node_count == 201 <= MAX_RENDER_NODES


def test_a_wide_graph_summarised_keeps_dot_fast_with_few_edges_from_the_summary():
    xs = [ad.Tensor(0.1, requires_grad=True, name=f"x{k}") for k in range(300)]
    y = ad.sin(xs[0])
    for term in [ad.sin(x) for x in xs[1:]]:
        y = y + term                     # the last 200 nodes are sums, each fed by a collapsed sin
    source = ad.draw(y).source
    assert source.count("hidden -> ") == draw_module._SUMMARY_EDGES          # 200 such edges took dot 10 s
    assert source.count("(inputs from the earlier nodes)") == 200 - draw_module._SUMMARY_EDGES


def test_draw_refuses_more_than_max_nodes_before_the_sweep(long_chain, monkeypatch):
    monkeypatch.setattr(draw_module, "adjoints_of", _fail)
    with pytest.raises(ValueError, match=rf"^draw: the graph has {MAX_NODES + 1:,} nodes, more than this view's "
                                         rf"limit of {MAX_NODES:,} \(autodiff\.draw\.MAX_NODES\)") as exc:
        ad.draw(long_chain, max_nodes=None)
    _one_line(exc, "max_nodes=", "print_graph")
    with pytest.raises(ValueError, match=rf"^draw: max_nodes={MAX_NODES + 1:,} is more than a picture's limit") as exc:
        ad.draw(chain(3), max_nodes=MAX_NODES + 1)
    _one_line(exc, f"max_nodes={MAX_NODES:,} or fewer")


def test_dot_is_not_asked_to_lay_out_more_than_max_render_nodes(tmp_path, monkeypatch):
    picture = ad.draw(chain(MAX_RENDER_NODES), max_nodes=None, show=("value",))
    assert picture.node_count == MAX_RENDER_NODES + 1
    monkeypatch.setattr(type(picture), "pipe", _fail)
    with pytest.raises(ValueError, match=rf"^cannot render big\.svg: the picture has {MAX_RENDER_NODES + 1:,} "
                                         r"nodes, .*MAX_RENDER_NODES") as exc:
        ad.save(picture, tmp_path / "big.svg")
    _one_line(exc, "max_nodes=", "saved to")
    assert (tmp_path / "big.dot").read_text() == picture.source         # the DOT source is kept
    bundle = picture._repr_mimebundle_()                                  # a notebook shows the reason
    assert list(bundle) == ["text/plain"] and "MAX_RENDER_NODES" in bundle["text/plain"]


# --- draw_steps and the player ---------------------------------------------------------------------

def test_draw_steps_and_the_player_work_below_max_steps():
    steps = ad.draw_steps(chain(9))
    assert len(steps) == len(steps.table.rows) == 10
    assert player_html(steps.steps, "reverse", steps.table.columns, steps.table.rows).count('<tr data-step=') == 10


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_draw_steps_refuses_a_bigger_graph_before_any_sweep(mode, monkeypatch):
    monkeypatch.setattr(draw_module, "adjoints_of", _fail)
    monkeypatch.setattr(draw_module, "tangents_of", _fail)
    with pytest.raises(ValueError, match=rf"^draw_steps: the sweep has {MAX_STEPS + 1:,} steps \(one per node\), "
                                         rf"more than a player's limit of {MAX_STEPS} "
                                         r"\(autodiff\.player\.MAX_STEPS") as exc:
        ad.draw_steps(chain(MAX_STEPS), mode=mode)
    _one_line(exc, "trace_table")


def test_the_player_refuses_more_than_max_steps_before_rendering(tmp_path, monkeypatch):
    steps = [Step(f"v{k}", "adjoint", "1", []) for k in range(MAX_STEPS + 1)]
    rows = [{"node": s.node} for s in steps]
    with pytest.raises(ValueError, match=rf"^player_html: the sweep has {MAX_STEPS + 1} steps") as exc:
        player_html(steps, "reverse", ["node"], rows)
    _one_line(exc, "MAX_STEPS")
    small = ad.draw_steps(chain(2))
    big = draw_module.Steps(list(small) * 40, "reverse", small.steps * 40,
                            tables.TraceTable("reverse", small.table.columns, small.table.rows * 40))
    monkeypatch.setattr(draw_module, "_pipe", _fail)
    with pytest.raises(ValueError, match=r"^player: the sweep has 120 steps"):
        big.save_html(tmp_path / "never_written.html")
    assert not (tmp_path / "never_written.html").exists()


# --- to_sympy ----------------------------------------------------------------------------------------

def test_to_sympy_of_a_20000_node_chain_refuses_in_one_line_at_max_sympy_depth():
    with pytest.raises(ValueError, match=rf"^to_sympy: at node #{symbolic.MAX_SYMPY_DEPTH + 1} \(sin\) the "
                                         r"expression nests .* \(autodiff\.symbolic\.MAX_SYMPY_DEPTH") as exc:
        ad.to_sympy(chain(20_000))                       # was a RecursionError from inside SymPy
    _one_line(exc, "graph_code")


def test_to_sympy_refuses_more_than_max_sympy_nodes_before_sympy(monkeypatch):
    monkeypatch.setattr(symbolic, "MAX_SYMPY_NODES", 50)
    monkeypatch.setattr(symbolic, "_depth", _fail)
    with pytest.raises(ValueError, match=r"^to_sympy: the graph has 61 nodes, more than this view's limit of 50 "
                                         r"\(autodiff\.symbolic\.MAX_SYMPY_NODES\)") as exc:
        ad.to_sympy(chain(60))
    _one_line(exc, "graph_code")


def test_to_sympy_refuses_a_graph_too_wide_for_sympy_at_max_sympy_args(monkeypatch):
    monkeypatch.setattr(symbolic, "MAX_SYMPY_ARGS", 500)        # the real budget is some seconds of SymPy's time
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    y = ad.sin(x)
    for k in range(60):                                           # a sum grown term by term: 60 * 61 / 2 arguments
        y = y + ad.sin(x * float(k + 2))
    refusal = r"^to_sympy: at node #\d+ \(\w+\) the expressions hold 5\d\d arguments in all, more than the limit "
    refusal += r"of 500 "
    with pytest.raises(ValueError, match=refusal + r"\(autodiff\.symbolic\.MAX_SYMPY_ARGS") as exc:
        ad.to_sympy(y)
    _one_line(exc, "graph_code")


def test_to_sympy_refuses_past_max_sympy_depth_and_answers_below():
    import sympy

    with pytest.raises(ValueError, match=rf"^to_sympy: at node #{symbolic.MAX_SYMPY_DEPTH + 1} \(sin\) the "
                                         rf"expression nests {symbolic.MAX_SYMPY_DEPTH + 1} deep, more than the "
                                         rf"limit of {symbolic.MAX_SYMPY_DEPTH}") as exc:
        ad.to_sympy(chain(symbolic.MAX_SYMPY_DEPTH + 50))
    _one_line(exc, "MAX_SYMPY_DEPTH")
    expr = ad.to_sympy(chain(symbolic.MAX_SYMPY_DEPTH))      # the deepest allowed: SymPy prints it
    assert str(expr).count("sin(") == symbolic.MAX_SYMPY_DEPTH    # (and diff takes it: 1 s, so not tested here)
    assert expr.free_symbols == {sympy.Symbol("x")}


def test_a_long_sum_is_shallow_for_sympy_and_converts():
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    y = ad.sin(x)
    for k in range(2, symbolic.MAX_SYMPY_DEPTH + 20):      # recorded depth past the limit, SymPy's tree flat
        y = y + x * float(k)
    expr = ad.to_sympy(y)
    assert expr == ad.to_sympy(lambda v: ad.sin(v) + v * float(sum(range(2, symbolic.MAX_SYMPY_DEPTH + 20))), "x")


def test_the_readme_states_each_view_limit_as_the_code_has_it():
    """The README gives each limit's value beside its name; they must not drift apart."""
    import re
    from pathlib import Path

    import importlib

    text = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    pairs = re.findall(r"`(?:autodiff\.\w+\.)?(MAX_\w+)`\s+\(([\d,]+)\)", text)
    stated = {name: int(value.replace(",", "")) for name, value in pairs}
    modules = [importlib.import_module(f"autodiff.{m}") for m in ("draw", "labels", "player", "symbolic")]
    assert len(stated) >= 7, stated
    for name, value in stated.items():
        actual = next(getattr(m, name) for m in modules if hasattr(m, name))
        assert actual == value, f"README says {name} is {value}, the code {actual}"
