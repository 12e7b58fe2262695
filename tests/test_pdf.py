"""The PDF edition (`make pdf`; `make site` builds it first and serves it with the student
edition): every figure of the site is in it and drawn, its equations, theorems, listings and
citations are numbered and resolved (no "??"), and every page renders (poppler's pdftoppm;
pages with figures go to test-artifacts/ for a person to look at)."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_browser import ARTIFACTS
from test_site import toc_pages

from bptt_lib.style import PAPER

pytestmark = [pytest.mark.slow]

PDF_NAME = "chapter33.pdf"
DPI = 40  # enough to see a figure's background and a page's ink


class Collect(HTMLParser):
    """From a page of the site: its figures' ids, caption numbers ("Fig. 33.1", "Theorem 33.2"),
    citation labels ("BSF94") and links."""

    def __init__(self):
        super().__init__()
        self.figures, self.numbers, self.citations, self.links = [], [], [], []
        self._into, self._depth, self._text = None, 0, ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "figure" and attrs.get("id", "").startswith("fig-"):
            self.figures.append(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag != "span":
            return
        if self._into:
            self._depth += 1
        elif "caption-number" in classes:
            self._into, self._depth, self._text = self.numbers, 1, ""
        elif "label" in classes:
            self._into, self._depth, self._text = self.citations, 1, ""

    def handle_data(self, data):
        if self._into is not None:
            self._text += data

    def handle_endtag(self, tag):
        if self._into is not None and tag == "span":
            self._depth -= 1
            if not self._depth:
                self._into.append(self._text.strip().strip("[]"))
                self._into = None


@pytest.fixture(scope="module")
def pages(site):
    """{page: Collect} over the student edition's pages."""
    collected = {}
    for name in toc_pages():
        collect = Collect()
        collect.feed((site.student / f"{name}.html").read_text())
        collected[name] = collect
    return collected


@pytest.fixture(scope="module")
def latex(site) -> Path:
    """The LaTeX build the PDF came from (_build/latex beside the student edition)."""
    return site.student.parent / "latex"


@pytest.fixture(scope="module")
def pdf(site, latex) -> Path:
    served = site.student / "downloads" / PDF_NAME
    assert served.is_file(), f"the site serves no PDF at {served}"
    assert served.read_bytes() == (latex / PDF_NAME).read_bytes(), "the site's PDF is stale"
    return served


@pytest.fixture(scope="module")
def text(pdf) -> list[str]:
    """The PDF's text, page by page."""
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                         text=True, check=True).stdout
    return out.split("\f")[:-1]


@pytest.fixture(scope="module")
def rendered(pdf, tmp_path_factory) -> list[np.ndarray]:
    """Every page rendered by pdftoppm, as RGB arrays."""
    out = tmp_path_factory.mktemp("pdf-pages")
    subprocess.run(["pdftoppm", "-r", str(DPI), "-png", str(pdf), str(out / "page")], check=True)
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(out.glob("page-*.png"))]


def test_every_page_links_to_the_pdf(pages, pdf):
    for name, page in pages.items():
        up = "../" * name.count("/")
        assert f"{up}downloads/{PDF_NAME}" in page.links, f"{name}: no link to the PDF"


def test_every_figure_is_in_the_pdf_and_drawn(pages, latex, text, rendered):
    """Each figure of the site is a figure of the LaTeX source with its vector PDF, its
    caption is numbered in the PDF, and its page shows it (the figures' paper-coloured
    background covers part of the page)."""
    source = (latex / "chapter33.tex").read_text()
    floats = re.findall(r"\\begin\{figure\}.*?\\end\{figure\}", source, re.S)
    in_pdf = {}
    for block in floats:
        label = re.search(r"\\label\{\\detokenize\{(.+?):(fig-[^}]+)\}\}", block)
        graphic = re.search(r"\\sphinxincludegraphics(?:\[[^]]*\])?\{\{?([^}]+?)\}", block)
        assert label and graphic, block[:300]
        in_pdf[label.groups()] = graphic.group(1)
    on_site = {(name, fig) for name, page in pages.items() for fig in page.figures}
    assert on_site, "the site has no figures?"
    assert set(in_pdf) == on_site
    for key, graphic in in_pdf.items():
        assert (latex / f"{graphic}.pdf").is_file() or (latex / graphic).is_file(), (key, graphic)
        assert graphic.endswith(".pdf") or (latex / f"{graphic}.pdf").is_file(), \
            f"{key}: not a vector figure ({graphic})"

    paper = np.array([int(PAPER[i:i + 2], 16) for i in (1, 3, 5)])
    for k in range(1, len(floats) + 1):
        where = [i for i, page in enumerate(text) if re.search(rf"Fig\. 33\.{k}\b:", page)]
        assert len(where) == 1, f"caption of Fig. 33.{k} on pages {where}"
        page = rendered[where[0]]
        share = (np.abs(page.astype(int) - paper).max(axis=-1) <= 2).mean()
        assert share > 0.1, f"Fig. 33.{k}: its page is {share:.0%} figure background"
        ARTIFACTS.mkdir(exist_ok=True)
        Image.fromarray(page).save(ARTIFACTS / f"pdf-fig-33.{k}.png")
    assert not any(re.search(rf"Fig\. 33\.{len(floats) + 1}\b:", page) for page in text)


def test_no_unresolved_reference(latex, text):
    everything = "\n".join(text)
    assert "??" not in everything, [line for line in everything.splitlines() if "??" in line]
    log = (latex / "chapter33.log").read_text(errors="replace")
    for problem in ("undefined", "Missing character", "multiply defined"):
        assert problem not in log, [line for line in log.splitlines() if problem in line][:5]


def test_numbers_match_the_site(pages, text):
    """Theorems, algorithms, exercises, listings and tables carry the site's numbers, and every
    equation number the site cites in the prose ((33.7)) is in the PDF."""
    everything = re.sub(r"\s+", " ", "\n".join(text))
    numbers = [n for page in pages.values() for n in page.numbers if not n.startswith("Fig.")]
    assert any(n.startswith("Theorem") for n in numbers) and \
        any(n.startswith("Listing") for n in numbers), numbers
    missing = [n for n in numbers if n not in everything]
    assert not missing, f"numbered on the site, not in the PDF: {missing}"
    equations = sorted({int(n) for n in re.findall(r"\(33\.(\d+)\)", everything)})
    assert equations == list(range(1, len(equations) + 1)) and len(equations) > 5, equations


def test_bibliography(pages, text):
    cited = {c for page in pages.values() for c in page.citations}
    assert cited, "the site cites nothing?"
    start = next(i for i, page in enumerate(text) if re.search(r"^\s*Bibliography\s*$", page, re.M))
    bibliography = "\n".join(text[start:])
    missing = [c for c in cited if f"[{c}]" not in bibliography]
    assert not missing, f"cited on the site, not in the PDF's bibliography: {missing}"


def test_every_page_renders(pdf, text, rendered):
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout).group(1))
    assert len(rendered) == len(text) == pages > 20
    for i, page in enumerate(rendered, 1):
        ink = (page.min(axis=-1) < 128).mean()
        assert ink > 0.001, f"page {i} is blank"
        assert page.shape[0] > page.shape[1], f"page {i} is not a portrait page"
