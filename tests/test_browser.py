"""The built site in a real browser, offline: Debian's Chromium driven by Playwright loads every
page from a local server, with every request that leaves 127.0.0.1 blocked. Each page must render
without console errors, with all images decoded and all math typeset by the site's own MathJax.
Full-page screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from test_site import toc_pages

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Wait for MathJax (if the page loads it) and the images, then report what a reader would see.
INSPECT = r"""async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const imgs = [...document.querySelectorAll('img')];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const math = [...document.querySelectorAll('article .math')];
  const prose = document.querySelector('article').cloneNode(true);
  prose.querySelectorAll('pre, code, script, mjx-container').forEach(e => e.remove());
  return {
    mathjax: window.MathJax && MathJax.version || null,
    math: math.length,
    typeset: document.querySelectorAll('article mjx-container').length,
    untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent),
    merrors: document.querySelectorAll('mjx-merror, merror, [data-mjx-error]').length,
    rawTex: (prose.textContent.match(/\\\(|\\\[|\$\$/g) || []).length,
    brokenImages: imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  };
}"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def servers(site):
    """Each edition served over HTTP on a free port of 127.0.0.1."""
    running = {}
    for edition, root in (("student", site.student), ("instructor", site.instructor)):
        handler = functools.partial(QuietHandler, directory=str(root))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        running[edition] = httpd
    yield {ed: f"http://127.0.0.1:{httpd.server_address[1]}" for ed, httpd in running.items()}
    for httpd in running.values():
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"playwright is missing ({e}): `make .venv/.installed` installs it")
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make sysdeps` installs Debian's chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def local_only(target, blocked):
    """Let `target` (a Playwright context or page) reach 127.0.0.1 only; the URLs of all other
    requests are aborted and appended to `blocked`."""
    def route(r):
        if urlparse(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    target.route("**/*", route)


PAGES = [("student", name) for name in toc_pages()] + [("instructor", "book/exercises")]


@pytest.mark.parametrize(("edition", "name"), PAGES, ids=[f"{e}:{n}" for e, n in PAGES])
def test_page_renders_offline(browser, servers, edition, name):
    base = servers[edition]
    problems, blocked = [], []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    local_only(context, blocked)
    tab = context.new_page()
    tab.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    tab.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    try:
        response = tab.goto(f"{base}/{name}.html", wait_until="load")
        assert response is not None and response.ok, f"{name}: {response and response.status}"
        seen = tab.evaluate(INSPECT)
        tab.wait_for_load_state("networkidle")
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=ARTIFACTS / f"{edition}-{name.replace('/', '-')}.png", full_page=True)
    finally:
        context.close()

    assert not blocked, f"{name} needed the network: {blocked}"
    assert not problems, f"{name}: {problems}"
    assert not seen["brokenImages"], f"{name}: images not decoded: {seen['brokenImages']}"
    if seen["math"]:
        assert seen["mathjax"], f"{name}: {seen['math']} math elements but MathJax did not load"
        assert seen["mathjax"].startswith("3."), seen["mathjax"]
        assert not seen["untypeset"], f"{name}: math left as TeX: {seen['untypeset'][:3]}"
        assert seen["typeset"] >= seen["math"]
    assert not seen["merrors"], f"{name}: {seen['merrors']} MathJax errors"
    assert not seen["rawTex"], f"{name}: raw TeX delimiters left in the text"


# --- reading: figure text size, opaque figures, listings and equations in the column, the widget

# The smallest legible text, in CSS pixels as shown: on a desktop and on a phone (390 px wide).
MIN_TEXT_PX = {1280: 9, 390: 8}
READING = r"""() => {
  const images = [...document.querySelectorAll('article img')].map(i => ({
    figure: (i.closest('figure') || {}).id || null, src: i.getAttribute('src'),
    scale: i.getBoundingClientRect().width / i.naturalWidth}));
  const listings = [...document.querySelectorAll('article pre')].map(p => {
    const caption = p.closest('.literal-block-wrapper')?.querySelector('.caption-text');
    return {name: caption ? caption.textContent : p.textContent.split('\n')[0],
            overflow: p.scrollWidth - p.clientWidth};
  });
  const math = [...document.querySelectorAll('article mjx-container[display="true"]')].map(m => ({
    number: m.querySelector('mjx-labels')?.textContent || m.textContent.slice(0, 40),
    overflow: m.scrollWidth - m.clientWidth}));
  const svgText = [...document.querySelectorAll('article svg text, article svg tspan')].map(t => {
    const svg = t.closest('svg');
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * scale};
  });
  return {images, listings, math, svgText};
}"""


def read_pages(browser, servers, width):
    """What READING measures on every student page at a viewport `width` px wide, by page."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    local_only(context, blocked := [])
    tab = context.new_page()
    seen = {}
    for name in toc_pages():
        tab.goto(f"{servers['student']}/{name}.html", wait_until="load")
        tab.evaluate(INSPECT)
        seen[name] = tab.evaluate(READING)
    context.close()
    assert not blocked, blocked
    return seen


@pytest.fixture(scope="module")
def reading(browser, servers):
    return read_pages(browser, servers, 1280)


@pytest.fixture(scope="module")
def reading_phone(browser, servers):
    return read_pages(browser, servers, 390)


@pytest.mark.parametrize("width", MIN_TEXT_PX)
@pytest.mark.parametrize("name", toc_pages())
def test_figure_text_is_legible_and_figures_are_opaque(request, site, name, width):
    """Every figure's smallest text (recorded in its PNG by bptt_lib.style; the widget's SVG
    text as laid out) is at least MIN_TEXT_PX as shown, on a desktop and on a phone, and
    figures are opaque (legible on the dark theme too)."""
    from PIL import Image

    from bptt_lib.style import MIN_FONT_KEY

    seen = request.getfixturevalue("reading" if width == 1280 else "reading_phone")[name]
    too_small = {}
    for image in seen["images"]:
        png = Image.open((site.student / name).parent / image["src"])
        assert png.getextrema()[-1][0] == 255, f"{name}: {image['src']} is not opaque"
        assert MIN_FONT_KEY in png.text, f"{name}: {image['src']} not drawn with use_style"
        shown = float(png.text[MIN_FONT_KEY]) * image["scale"]
        if shown < MIN_TEXT_PX[width]:
            too_small[image["figure"] or image["src"]] = round(shown, 1)
    for text in seen["svgText"]:
        assert text["px"] >= MIN_TEXT_PX[width], \
            f"{name} at {width} px: SVG text {text['text']!r} at {text['px']:.1f} px"
    assert not too_small, f"{name} at {width} px: smallest text in CSS px {too_small}"


@pytest.mark.parametrize("name", toc_pages())
def test_listings_fit_the_column(reading, name):
    wide = {listing["name"]: listing["overflow"] for listing in reading[name]["listings"]
            if listing["overflow"] > 0}
    assert not wide, f"{name}: listings wider than the column (px) {wide}"


@pytest.mark.parametrize("name", toc_pages())
def test_display_math_fits_the_column(reading, name):
    """No displayed equation is wider than the column (cut off under its number, or scrolled)."""
    wide = {m["number"]: m["overflow"] for m in reading[name]["math"] if m["overflow"] > 0}
    assert not wide, f"{name}: equations wider than the column (px) {wide}"


WIDGET = "#sigma-sweep"
WIDGET_STATE = r"""(root) => {
  const pts = sel => root.querySelector(sel).getAttribute('points').trim().split(' ')
    .map(p => p.split(',').map(Number));
  return {sigma: +root.querySelector('output[name=sigma]').value,
          T: +root.querySelector('output[name=T]').value,
          measured: pts('.measured'), bound: pts('.bound'),
          readout: root.querySelector('.readout').textContent};
}"""


def test_interactive_figure_redraws_offline(browser, servers):
    """33.3's widget: the sliders redraw the plot, without network; at every σ_max shown the
    measured norms lie under the bound (larger SVG y is lower), and for σ_max < 1 both fall."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    local_only(context, blocked := [])
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(f"{servers['student']}/book/vanishing_exploding.html", wait_until="load")
    widget = tab.locator(WIDGET)
    states = [widget.evaluate(WIDGET_STATE)]
    sigma = widget.locator("input[name=sigma]")
    for key in ["ArrowRight"] * 5 + ["End", "Home"]:
        sigma.press(key)
        states.append(widget.evaluate(WIDGET_STATE))
    widget.locator("input[name=T]").fill("20")
    states.append(widget.evaluate(WIDGET_STATE))
    ARTIFACTS.mkdir(exist_ok=True)
    widget.screenshot(path=ARTIFACTS / "widget-sigma-sweep.png")
    tab.evaluate("document.documentElement.dataset.theme = 'dark'")
    widget.screenshot(path=ARTIFACTS / "widget-sigma-sweep-dark.png")
    context.close()

    assert not blocked and not errors, (blocked, errors)
    sigmas = [s["sigma"] for s in states]
    assert sigmas[:7] == pytest.approx([0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 4.0]), sigmas
    assert sigmas[7] == sigmas[8] == 0.5 and states[8]["T"] == 20
    for before, after in zip(states, states[1:], strict=False):
        assert after["measured"] != before["measured"] and after["readout"] != before["readout"]
    for state in states:
        assert len(state["measured"]) == len(state["bound"]) == state["T"]
        for (x1, y_measured), (x2, y_bound) in zip(state["measured"], state["bound"], strict=True):
            assert x1 == x2 and y_measured >= y_bound - 0.1, state["sigma"]
        if state["sigma"] < 1:
            ys = [y for _, y in state["measured"]]
            assert ys[-1] > ys[0], "the norm must fall for σ_max < 1"
