"""The documentation site (``python docs/build.py``), served from localhost and opened in headless Chromium.

The site is built once per session (tests/_site.py, which executes every lesson). In the browser: the
home page; a lesson's graph picture (an SVG, loaded and visible) and its math typeset by MathJax; the
lesson's step-through player stepped three times with the arrow keys, its highlighted node and
adjoint held to the engine's reverse sweep (``ad.gradients``, not the player's own data); the API
page of ``autodiff.grad`` at its anchor with its docstring; the search page finding ``grad``. On
every page: no error in the console and no request leaving the machine (Chrome's performance log),
and the built HTML names no asset off-site. Chromium, chromedriver and selenium as in
tests/test_player.py: skipped, saying so, where missing (failed in CI).
"""
import functools
import http.server
import json
import re
import shutil
import threading
from html.parser import HTMLParser
from urllib.parse import urlparse

import pytest

import autodiff as ad
from autodiff.examples import eq_5_36

from _requires import require, requires_dot  # tests/_requires.py
from _site import docs_build, site  # noqa: F401  (site: the fixture; tests/_site.py)

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
LOCAL = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def html(site):  # noqa: F811
    if site.error is not None:
        pytest.fail(f"the site did not build: {site.error}", pytrace=False)
    return site.html


@pytest.fixture(scope="module")
def server(html):
    """The built site over HTTP on 127.0.0.1 (a free port), in a thread; its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    require("chromium", "chromedriver")                    # in CI: a missing browser fails, never skips
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The console (browser) and every request the page makes (performance: the DevTools events).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _off_site(url):
    """Whether a URL the page requested points off this machine (data: and blob: stay on it)."""
    parsed = urlparse(url)
    return parsed.scheme not in ("data", "blob") and parsed.hostname not in LOCAL


def _settled(driver):
    """Every request the pages made since the last call and every console error: (off-site URLs, errors)."""
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert requests, "the performance log saw no request at all (what the check relies on)"
    return [url for url in requests if _off_site(url)], errors


def _open(driver, url, ready="return document.readyState === 'complete'"):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(ready))


def _check_page(driver):
    off_site, errors = _settled(driver)
    assert off_site == [], f"requests leaving the machine: {off_site}"
    assert errors == [], f"console errors: {errors}"


def test_the_console_and_request_logs_are_read(browser, server):
    # The two checks every page gets can fail: an error logged is seen, and the page's own requests are
    # in the performance log (which _settled asserts), judged by _off_site.
    _open(browser, server + "/index.html")
    browser.execute_script("console.error('chainrule probe')")
    off_site, errors = _settled(browser)
    assert off_site == [] and len(errors) == 1 and "chainrule probe" in errors[0]
    assert [_off_site(u) for u in (server + "/a.js", "data:image/png;base64,AA", "https://cdn.jsdelivr.net/x.js",
                                   "http://fonts.googleapis.com/css", "http://localhost:1/x")] == [
        False, False, True, True, False]


def test_the_home_page_is_the_readme_with_the_lessons_reference_and_search(browser, server):
    from selenium.webdriver.common.by import By

    _open(browser, server + "/index.html")
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "article h2") if h.is_displayed()]
    assert "Quick start" in headings and "A tour of the engine" in headings, headings
    links = {a.get_attribute("href").split("/", 3)[3] for a in browser.find_elements(By.CSS_SELECTOR, "nav a[href]")
             if a.get_attribute("href").startswith(server)}
    assert {"lessons/diff/index.html", "lessons/cnn/index.html", "api/index.html", "exercises/index.html"} <= links
    assert browser.find_elements(By.CSS_SELECTOR, "form[action*='search']"), "no search box"
    _check_page(browser)


@requires_dot
def test_a_lesson_shows_its_graph_as_svg_and_its_math_typeset(browser, server):
    from selenium.webdriver.common.by import By

    _open(browser, server + "/lessons/diff/diff_01_graphs.html")
    pictures = [i for i in browser.find_elements(By.CSS_SELECTOR, "article img[src$='.svg']") if i.is_displayed()]
    assert len(pictures) == 2
    for picture in pictures:                          # loaded (not a broken image) and of a sensible size
        width = browser.execute_script("return arguments[0].naturalWidth", picture)
        assert width > 0 and 100 < picture.rect["width"] <= browser.execute_script("return innerWidth")
    # MathJax, served by the site, typeset the lessons' $...$: its elements are there, no raw TeX left.
    _open(browser, browser.current_url, "return !!document.querySelector('mjx-container')")
    assert "\\exp(\\sin(x)" not in browser.find_element(By.TAG_NAME, "article").text
    _check_page(browser)


def _engine_sweep():
    """Lesson 1's graph (eq. 5.36 at x = 0.5): its nodes in the reverse sweep's order and their adjoints."""
    x = ad.Tensor(0.5, requires_grad=True, name="x")
    y = eq_5_36(x)
    order, _ = ad.toposort([y])
    names = ["x"] + [line.split(" = ")[0] for line in ad.graph_code(y).splitlines()]   # eq. 5.38's a ... y
    adjoints = [float(g) for g in ad.gradients(y, order)]
    return list(zip(names, adjoints))[::-1]


@requires_dot
def test_the_lesson_s_player_steps_with_the_arrow_keys_as_the_engine_sweeps(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(browser, server + "/lessons/diff/diff_01_graphs.html")
    (player,) = browser.find_elements(By.CSS_SELECTOR, ".cr-player")
    browser.execute_script("arguments[0].scrollIntoView()", player)
    visit = _engine_sweep()
    for _ in range(3):
        player.send_keys(Keys.ARROW_RIGHT)
    step = int(player.get_attribute("data-step"))
    assert step == 4                                      # three steps on from the first
    name, adjoint = visit[step - 1]
    frames = [f for f in player.find_elements(By.CSS_SELECTOR, ".cr-frame") if f.is_displayed()]
    assert len(frames) == 1, "exactly one picture is visible"
    lit = [g for g in frames[0].find_elements(By.CSS_SELECTOR, "g.node") if g.find_elements(By.CSS_SELECTOR,
                                                                                            '[fill="#fde68a"]')]
    assert len(lit) == 1 and lit[0].find_elements(By.TAG_NAME, "text")[0].text.split(" = ")[0] == name
    assert player.find_element(By.CSS_SELECTOR, ".cr-node").text == name
    assert player.find_element(By.CSS_SELECTOR, ".cr-value").text == f"{adjoint:.4g}"    # the engine's adjoint
    panel = player.find_element(By.CSS_SELECTOR, ".cr-panel")    # the theme's CSS does not clip the panel
    assert browser.execute_script("return arguments[0].scrollHeight <= arguments[0].clientHeight", panel)
    assert browser.execute_script("return window.scrollY") > 0, "the page scrolled to the player"
    scrolled = browser.execute_script("return window.scrollY")
    player.send_keys(Keys.ARROW_RIGHT)                    # the arrows step the player, not the page
    assert int(player.get_attribute("data-step")) == 5 and browser.execute_script("return window.scrollY") == scrolled
    _check_page(browser)


def test_the_api_page_documents_autodiff_grad_at_its_anchor(browser, server):
    from selenium.webdriver.common.by import By

    _open(browser, server + "/api/autodiff.html#autodiff.grad")
    term = browser.find_element(By.ID, "autodiff.grad")
    assert term.is_displayed() and term.text.startswith("autodiff.grad(")
    assert 0 <= term.rect["y"] - browser.execute_script("return window.scrollY") < 300   # scrolled to it
    first_line = ad.grad.__doc__.strip().splitlines()[0].replace("``", "")
    body = term.find_element(By.XPATH, "following-sibling::dd[1]").text
    assert " ".join(first_line.split()) in " ".join(body.split())
    _check_page(browser)


def test_the_search_page_finds_grad(browser, server):
    from selenium.webdriver.common.by import By

    _open(browser, server + "/search.html?q=grad",
          "return document.querySelectorAll('#search-results li').length > 0")
    found = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#search-results li a")]
    assert any("api/autodiff.html" in url for url in found), found[:10]
    _check_page(browser)


class _Assets(HTMLParser):
    """The URLs a page loads: script src, link href (stylesheets, icons, preloads), img/source/iframe src."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        wanted = {"script": "src", "link": "href", "img": "src", "source": "src", "iframe": "src",
                  "video": "src", "audio": "src", "embed": "src", "object": "data"}.get(tag)
        if wanted and attrs.get(wanted):
            self.urls.append(attrs[wanted])


def test_no_page_or_stylesheet_names_an_asset_off_site(html):
    pages = sorted(html.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        parser = _Assets()
        parser.feed(page.read_text(errors="replace"))
        far = [u for u in parser.urls if urlparse(u).scheme not in ("", "data", "blob") or u.startswith("//")]
        assert far == [], f"{page.relative_to(html)} loads {far}"
    for sheet in html.rglob("*.css"):
        far = re.findall(r"""(?:url\(|@import\s+)["']?((?:https?:)?//[^"')\s]+)""", sheet.read_text(errors="replace"))
        assert far == [], f"{sheet.relative_to(html)} loads {far}"


def test_every_lesson_and_exercise_set_has_its_page(html):
    build = docs_build()
    for lesson in build.lessons():
        page = html / "lessons" / build.group_of(lesson) / f"{lesson.stem}.html"
        assert page.exists(), f"no page for {lesson.name}"
    for module in build.exercise_sets():
        text = (html / "exercises" / f"{module.__name__.rsplit('.', 1)[1]}.html").read_text()
        assert all(f'id="{module.__name__}.{check.__name__}"' in text for check in module.CHECKS.values())


def test_a_lesson_that_fails_fails_the_build_in_one_line_naming_it(tmp_path):
    pytest.importorskip("nbclient")
    lesson = tmp_path / "broken_01_lesson.py"
    lesson.write_text("# %%\nx = 1\n\n# %%\n1 / 0\n")
    build = docs_build()
    with pytest.raises(build.BuildError) as raised:
        build.execute_all(tmp_path / "source", [lesson], log=lambda line: None)
    assert str(raised.value) == "lesson broken_01_lesson failed: ZeroDivisionError: division by zero"
