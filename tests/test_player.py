"""The step-through player: one self-contained HTML page, driven in a real (headless) browser.

The page is held to the engine: at each step the node it highlights and the adjoint (or tangent)
it shows must be the ones the engine's sweep completes at that step, taken here from
``ad.gradients`` / ``ad.jvp``-style sweeps and the recorded order, not from the player's data.
The browser test needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them)
and selenium (the test extra); it skips, saying so, where they are missing. It writes a
screenshot of the player for the record (``$PLAYER_SCREENSHOT``, else the test's temporary folder).
"""
import json
import os
import re
import shutil
from pathlib import Path

import pytest

import autodiff as ad
from autodiff.examples import eq_5_36
from autodiff.player import inline_only
from chainrule import cli

from _requires import require, requires_dot  # tests/_requires.py

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
