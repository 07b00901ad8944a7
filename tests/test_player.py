"""The step-through player: one self-contained HTML page, driven in a real (headless) browser.

The page is held to the engine: at each step the node it highlights and the adjoint (or tangent)
it shows must be the ones the engine's sweep completes at that step, taken here from
``ad.gradients`` / ``ad.jvp``-style sweeps and the recorded order, not from the player's data.
The trace table beside the picture shows a number only from the step that computes it, exactly
as the page's step list (the pictures' own) says, and nothing on the page moves while stepping,
nor any node or edge in the pictures. The browser tests need Debian's ``chromium`` and
``chromium-driver`` (``.ci/run`` installs them) and selenium (the test extra); they skip, saying
so, where they are missing. They write screenshots of the player for the record
(``$PLAYER_SCREENSHOT``, a file, and ``$PLAYER_SCREENSHOTS``, a folder; else the test's temporary
folder).
"""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

import autodiff as ad
from autodiff.examples import eq_5_36
from autodiff.player import COMPUTED, inline_only, player_html
from chainrule import cli

from _requires import require, requires_dot  # tests/_requires.py

draw_module = sys.modules["autodiff.draw"]         # ad.draw is the function
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
EQ_5_36 = "exp(sin(x) + sin(x)**2) + sin(exp(x) + exp(x)**2)"


def _graph():
    """eq. 5.36 at 0.5, its nodes in evaluation order, their names and the engine's adjoints."""
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    y = eq_5_36(x)
    order, _ = ad.toposort([y])
    names = ["x"] + [line.split(" = ")[0] for line in ad.graph_code(y).splitlines()]   # eq. 5.38's a ... y
    adjoints = [float(g) for g in ad.gradients(y, order)]
    return x, y, order, names, adjoints


def _data(page):
    return json.loads(re.search(r'<script type="application/json" class="cr-data">(.*?)</script>', page,
                                flags=re.S).group(1).replace("<\\/", "</"))


@requires_dot
def test_the_page_is_self_contained_with_one_picture_and_one_table_row_per_step(tmp_path):
    _, y, order, names, adjoints = _graph()
    page = ad.draw_steps(y).save_html(tmp_path / "sweep.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and inline_only(page)        # nothing to fetch: opens offline
    assert page.count('<div class="cr-frame"') == page.count('<tr data-step=') == len(order) == 10
    assert "<?xml" not in page and page.count("<svg") == 10                 # SVGs inline, prologs stripped
    steps = _data(page)["steps"]
    # Reverse mode visits y first and x last; each step shows that node's adjoint (the engine's).
    assert [s["node"] for s in steps] == names[::-1]
    assert [s["value"] for s in steps] == [f"{a:.4g}" for a in adjoints[::-1]]
    fan_out = {s["node"]: s["terms"] for s in steps if " + " in s["terms"][0]}
    assert sorted(fan_out) == ["a", "e", "x"]                                 # eq. 5.39's two-term sums
    assert fan_out["a"][0] == "dy/da = dy/dc·dc/da + dy/db·db/da"


@requires_dot
def test_the_forward_player_shows_tangents(tmp_path):
    x, y, _, names, _ = _graph()
    steps = _data(ad.draw_steps(y, mode="forward", wrt=x).player())["steps"]
    assert [s["node"] for s in steps] == names
    assert steps[-1]["quantity"] == "tangent" and steps[-1]["value"] == f"{ad.grad(eq_5_36)(0.5):.4g}"


def _cells(page):
    """The table's rows as the page opens: for each cell, (its text, the step it shows from, its class)."""
    rows = re.findall(r'<tr data-step="\d+"[^>]*>(.*?)</tr>', page)
    return [re.findall(r'<td(?: data-from="(\d+)" class="([\w-]+)")?>(.*?)</td>', row) for row in rows]


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_a_computed_cell_shows_from_the_step_that_completes_its_node(mode):
    x, y, _, _, _ = _graph()
    steps = ad.draw_steps(y, mode=mode, wrt=x if mode == "forward" else None)     # Digraphs only: no `dot`
    table = steps.table
    page = player_html(steps.steps, mode, table.columns, table.rows)
    when = {s.node: k for k, s in enumerate(steps.steps)}                     # the step list the pictures use
    for row, cells in zip(table.rows, _cells(page)):
        k = when[row["node"]]
        for column, (start, state, text) in zip(table.columns, cells):
            if column in COMPUTED[mode]:      # an adjoint; forward: a value and its tangent
                assert (int(start), state) == (k, "cr-new" if k == 0 else "cr-hidden"), (row["node"], column)
            else:
                assert start == state == "", (row["node"], column)
            assert text == str(row[column])
    with pytest.raises(ValueError, match="rows must be in step order; row 0 is"):
        player_html(steps.steps, mode, table.columns, table.rows[::-1])
    # The pictures (and their text without `dot`) show the same numbers from the same steps: forward,
    # a node's value and tangent; reverse, its adjoint (its value is known before the sweep).
    quantity = steps.steps[0].quantity
    for k, picture in enumerate(steps):
        reached = {s.node for s in steps.steps[:k + 1]}
        labels = re.findall(r'^\s*n\d+ \[label="(.*?)"', picture.source, flags=re.M | re.S)
        boxes = [label.split("\n") for label in labels]
        showing = {what: {b[0].split(" = ")[0] for b in boxes if any(line.startswith(what + " ") for line in b)}
                   for what in ("value", quantity)}
        assert showing == {"value": reached if mode == "forward" else set(when), quantity: reached}, k
        head, _, *lines = picture.fallback_of().split("\n\n")[1].splitlines()
        starts = [head.index(c) for c in table.columns]          # the text table's columns, by the header
        for line, row in zip(lines, table.rows):
            cells = dict(zip(table.columns, (line[i:j].strip() for i, j in zip(starts, starts[1:] + [None]))))
            for column in table.columns:
                hidden = column in COMPUTED[mode] and row["node"] not in reached
                assert cells[column] == ("" if hidden else str(row[column])), (k, row["node"], column)


def _layout(svg):
    """One picture's layout: {node: the numbers of its outline (ellipse, polygon or path)}, and its edges."""
    nodes = re.findall(r'<g id="node\d+" class="node">\s*<title>(.*?)</title>(.*?)</g>', svg, flags=re.S)
    outline = {title: re.findall(r'\s(?:points|d|cx|cy|rx|ry)="([^"]*)"', body) for title, body in nodes}
    return outline, re.findall(r'<g id="edge\d+" class="edge">.*?</g>', svg, flags=re.S)


@requires_dot
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_every_picture_of_a_sweep_has_the_same_layout(mode, monkeypatch):
    x, y, order, _, _ = _graph()

    def layouts():
        page = ad.draw_steps(y, mode=mode, wrt=x if mode == "forward" else None, edge_labels=True).player()
        return [_layout(f) for f in re.findall(r'<div class="cr-frame".*?</svg>', page, flags=re.S)]

    pinned = layouts()
    nodes, edges = pinned[0]
    assert len(pinned) == len(nodes) == len(order) and all(nodes.values()) and edges
    # Each node's outline and every edge (its route and local derivative) at the same place in every picture.
    assert all(layout == pinned[0] for layout in pinned)
    monkeypatch.setattr(draw_module, "one_size", lambda frames, measure: None)   # each picture laid out alone:
    alone = layouts()
    assert any(layout[0] != alone[0][0] for layout in alone), "the nodes move (what the test is for)"


def test_without_dot_the_page_is_not_written_and_the_notebook_view_still_steps(tmp_path, monkeypatch):
    _, y, order, _, _ = _graph()
    steps = ad.draw_steps(y)
    monkeypatch.setenv("PATH", str(tmp_path))   # no `dot`
    with pytest.raises(ad.GraphvizNotFound, match="apt-get install graphviz"):
        steps.save_html(tmp_path / "sweep.html")
    assert not (tmp_path / "sweep.html").exists()
    view = steps._repr_html_()
    assert "<svg" not in view and "apt-get install graphviz" in view and view.count("<tr data-step=") == len(order)
    with pytest.raises(ValueError, match="must end in .html"):
        steps.save_html(tmp_path / "sweep.svg")


@requires_dot
def test_chainrule_graph_steps_writes_the_player(tmp_path, capsys):
    target = tmp_path / "sweep.html"
    assert cli.main(["graph", EQ_5_36, "--at", "x=0.5", "--steps", "-o", str(target)]) == 0
    assert "step by step" in capsys.readouterr().out
    page = target.read_text()
    assert inline_only(page) and page.count('<div class="cr-frame"') == 10


# --- in a real browser ---------------------------------------------------------------------------

@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    require("chromium", "chromedriver")                    # in CI: a missing browser fails, never skips
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})     # the page's console, for get_log
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _shown(driver):
    """What the page shows now: step, the highlighted node, the panel, the highlighted table row."""
    from selenium.webdriver.common.by import By

    root = driver.find_element(By.CSS_SELECTOR, ".cr-player")
    frames = [f for f in driver.find_elements(By.CSS_SELECTOR, ".cr-frame") if f.is_displayed()]
    assert len(frames) == 1, "exactly one picture is visible"
    # The node drawn highlighted (dot fills it #fde68a): the first line of its box is its name.
    lit = [g for g in frames[0].find_elements(By.CSS_SELECTOR, "g.node")
           if g.find_elements(By.CSS_SELECTOR, '[fill="#fde68a"]')]
    assert len(lit) == 1, "exactly one node is highlighted"
    rows = driver.find_elements(By.CSS_SELECTOR, ".cr-table tr.cr-row-current")
    assert len(rows) == 1, "exactly one table row is highlighted"
    return {"step": int(root.get_attribute("data-step")),
            "node": lit[0].find_elements(By.TAG_NAME, "text")[0].text.split(" = ")[0],
            "panel node": driver.find_element(By.CSS_SELECTOR, ".cr-node").text,
            "value": driver.find_element(By.CSS_SELECTOR, ".cr-value").text,
            "terms": driver.find_element(By.CSS_SELECTOR, ".cr-terms").text,
            "row": [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")]}


@requires_dot
def test_in_chromium_three_steps_forward_show_the_engine_s_node_and_adjoint(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _, y, order, names, adjoints = _graph()
    visit = list(zip(names, adjoints))[::-1]          # the reverse sweep's order: y, h, g, ..., x
    page = ad.draw_steps(y).save_html(tmp_path / "sweep.html")
    browser.get(page.as_uri())

    def expect(step):
        name, adjoint = visit[step - 1]
        shown = _shown(browser)
        assert (shown["step"], shown["node"], shown["panel node"]) == (step, name, name)
        assert shown["value"] == f"{adjoint:.4g}"                       # the engine's adjoint of that node
        assert shown["row"][0] == name and shown["row"][2] == f"{adjoint:.6g}"   # its trace-table row
        return shown

    expect(1)
    for _ in range(3):
        browser.find_element(By.CSS_SELECTOR, 'button[data-act="next"]').click()
    expect(4)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)                                    # the keyboard: to e, a fan-out node
    shown = expect(5)
    terms = [float(t) for t in shown["terms"].splitlines()[1].lstrip("= ").split(" = ")[0].split(" + ")]
    assert len(terms) == 2 and abs(sum(terms) - visit[4][1]) <= 1e-3 * abs(visit[4][1])   # eq. 5.39's sum
    screenshot = Path(os.environ.get("PLAYER_SCREENSHOT", tmp_path / "player.png"))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    body.send_keys(Keys.ARROW_LEFT)
    expect(4)
    body.send_keys(Keys.END)
    expect(len(visit))
    slider = browser.find_element(By.CSS_SELECTOR, ".cr-slider")
    browser.execute_script("arguments[0].value = 2; arguments[0].dispatchEvent(new Event('input'))", slider)
    expect(2)


_VISIBLE = """function visible(e) {    // laid out (not display: none) and not visibility: hidden
  return e.getClientRects().length > 0 && getComputedStyle(e).visibility === 'visible'; }"""


def _table(driver):
    """Each table row now: per cell, its text, whether it is visible (computed style) and highlighted."""
    return driver.execute_script(_VISIBLE + """
        return Array.from(document.querySelectorAll('.cr-table tr[data-step]')).map(function (r) {
          return Array.from(r.cells).map(function (c) {
            return [c.textContent, visible(c), c.classList.contains('cr-new')];
          });
        });""")


def _picture(driver, quantity):
    """The nodes whose box in the visible picture shows their adjoint (or tangent)."""
    return set(driver.execute_script(_VISIBLE + """
        var quantity = arguments[0];
        var frames = Array.from(document.querySelectorAll('.cr-frame')).filter(visible);
        if (frames.length !== 1) return ['frames visible: ' + frames.length];
        return Array.from(frames[0].querySelectorAll('g.node')).map(function (g) {
          return Array.from(g.querySelectorAll('text')).map(function (t) { return t.textContent; });
        }).filter(function (lines) { return lines.some(function (l) { return l.indexOf(quantity + ' ') === 0; }); })
          .map(function (lines) { return lines[0].split(' = ')[0]; });""", quantity))


def _boxes(driver):
    from selenium.webdriver.common.by import By

    return {part: driver.find_element(By.CSS_SELECTOR, part).rect
            for part in (".cr-controls", ".cr-panel", ".cr-graph", ".cr-table")}


@requires_dot
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_in_chromium_the_table_shows_what_the_sweep_reached_and_nothing_moves(browser, tmp_path, mode):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    x, y, order, names, adjoints = _graph()
    forward = mode == "forward"
    page = ad.draw_steps(y, mode=mode, wrt=x if forward else None).save_html(tmp_path / f"{mode}.html")
    steps = _data(page.read_text())["steps"]                        # the step list the pictures come from
    table = ad.trace_table(y, mode=mode, wrt=x if forward else None)
    # The engine's numbers: the adjoints of ad.gradients; forward, each node's value and dnode/dx.
    if forward:
        tangents = [1.0] + [float(ad.gradients(t, [x])[0]) for t in order[1:]]
        engine = {n: {"value": f"{float(t.value):.6g}", "tangent": f"{d:.6g}"}
                  for n, t, d in zip(names, order, tangents)}
    else:
        engine = {n: {"adjoint": f"{a:.6g}"} for n, a in zip(names, adjoints)}
    computed = [table.columns.index(c) for c in COMPUTED[mode]]
    browser.get(page.as_uri())
    browser.execute_script("console.error('chainrule probe')")     # the log is read: this one must show
    body = browser.find_element(By.TAG_NAME, "body")
    boxes = _boxes(browser)
    # The pictures lie on top of one another: the picture's box is the largest of them, not their sum.
    heights = browser.execute_script("return Array.from(document.querySelectorAll('.cr-frame'))"
                                     ".map(function (f) { return f.getBoundingClientRect().height; })")
    assert len(heights) == len(order) and abs(boxes[".cr-graph"]["height"] - max(heights)) < 1
    shots = Path(os.environ.get("PLAYER_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    def expect(k):
        reached = {s["node"] for s in steps[:k]}
        assert browser.find_element(By.CSS_SELECTOR, ".cr-player").get_attribute("data-step") == str(k)
        for cells, row in zip(_table(browser), table.rows):
            name = cells[0][0]
            for j, (column, (text, visible, new)) in enumerate(zip(table.columns, cells)):
                assert text == str(row[column])
                if j not in computed:
                    assert visible and not new, f"step {k}: {name}'s {column} is always shown"
                    continue
                assert visible == (name in reached), f"step {k}: {name}'s {column} (reached: {sorted(reached)})"
                assert new == (name == steps[k - 1]["node"]), f"step {k}: only the new {column} is highlighted"
                assert text == engine[name][column]
        assert _picture(browser, steps[0]["quantity"]) == reached     # the picture shows the same numbers
        assert _picture(browser, "value") == (reached if forward else set(names)), f"step {k}: the values"
        assert _boxes(browser) == boxes, f"step {k}: the page moved"

    n = len(steps)
    for k in range(1, n + 1):
        expect(k)
        if k in (1, n // 2, n):
            assert browser.save_screenshot(str(shots / f"{mode}-step{k:02d}.png"))
        if k < n:
            body.send_keys(Keys.ARROW_RIGHT)
    grad = f"{ad.grad(eq_5_36)(0.5):.6g}"
    assert _table(browser)[-1][computed[-1]][0] == grad               # the last row: y's tangent; x's adjoint
    for k in range(n - 1, 0, -1):                                   # back: each number hides again
        body.send_keys(Keys.ARROW_LEFT)
        expect(k)
    logged = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert len(logged) == 1 and "chainrule probe" in logged[0], logged
