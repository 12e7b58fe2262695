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
