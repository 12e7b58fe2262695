"""The PDF edition (`make pdf`; `make site` builds it first and serves it with the student
edition): every figure of the site is in it and drawn, its equations, theorems, listings and
citations are numbered and resolved (no "??"), and every page renders (poppler's pdftoppm;
pages with figures go to test-artifacts/ for a person to look at)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_browser import ARTIFACTS
from test_site import EXERCISES_MD, FIGURES, page, solution_markers, toc_pages

from bptt_lib.style import PAPER

pytestmark = [pytest.mark.slow]

PDF_NAME = "chapter33.pdf"
DPI = 40  # enough to see a figure's background and a page's ink


@pytest.fixture(scope="module")
def pages(site):
    """{name: parsed page} of the student edition."""
    return {name: page(site.student, name) for name in toc_pages()}


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
    for name, soup in pages.items():
        href = "../" * name.count("/") + f"downloads/{PDF_NAME}"
        assert soup.select(f'a[href="{href}"]'), f"{name}: no link to the PDF"


def test_every_figure_is_in_the_pdf_and_drawn(pages, latex, text, rendered):
    """Each figure of the site is a figure of the LaTeX source with its vector PDF, its
    caption is numbered in the PDF, and its page shows it (the figures' paper-coloured
    background covers part of the page)."""
    source = (latex / "chapter33.tex").read_text()
    floats = re.findall(r"\\begin\{figure\}.*?\\end\{figure\}", source, re.S)
    in_pdf = {}
    for block in floats:
        label = re.search(r"\\label\{\\detokenize\{(.+?):(fig-[^}]+)\}\}", block)
        graphic = re.search(r"\\sphinxincludegraphics(?:\[[^]]*\])?\{\{([^}]+)\}(\.\w+)\}", block)
        assert label and graphic, block[:300]
        in_pdf[label.groups()] = "".join(graphic.groups())
    on_site = {(name, fig["id"]) for name, soup in pages.items()
               for fig in soup.select("article figure")}
    assert len(on_site) == sum(FIGURES.values())
    assert set(in_pdf) == on_site
    for key, graphic in in_pdf.items():
        assert graphic.endswith(".pdf"), f"{key}: not a vector figure ({graphic})"
        assert (latex / graphic).is_file(), (key, graphic)

    # the site's "Fig. 33.k" and the first words of its caption (before any math)
    captions = {" ".join(fig.select_one(".caption-number").get_text().split()):
                " ".join(fig.select_one(".caption-text").get_text().split("\\(")[0].split()[:3])
                for soup in pages.values() for fig in soup.select("article figure")}
    paper = np.array([int(PAPER[i:i + 2], 16) for i in (1, 3, 5)])
    for k in range(1, len(floats) + 1):
        caption = rf"^ *Fig\. 33\.{k}: {re.escape(captions[f'Fig. 33.{k}'])}"
        where = [i for i, page in enumerate(text) if re.search(caption, page, re.M)]
        assert len(where) == 1, f"caption of Fig. 33.{k} on pages {where}"
        pixels = rendered[where[0]]
        share = (np.abs(pixels.astype(int) - paper).max(axis=-1) <= 2).mean()
        assert share > 0.1, f"Fig. 33.{k}: its page is {share:.0%} figure background"
        ARTIFACTS.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(ARTIFACTS / f"pdf-fig-33.{k}.png")
    assert not any(re.search(rf"^ *Fig\. 33\.{len(floats) + 1}: ", page, re.M) for page in text)


def test_no_unresolved_reference(latex, text):
    everything = "\n".join(text)
    assert "??" not in everything, [line for line in everything.splitlines() if "??" in line]
    log = (latex / "chapter33.log").read_text(errors="replace")
    for problem in ("undefined", "Missing character", "multiply defined"):
        assert problem not in log, [line for line in log.splitlines() if problem in line][:5]


def test_numbers_match_the_site(pages, text):
    """Figures, theorems, algorithms, exercises, listings, tables and equations carry the site's
    numbers (33.1, 33.2, …) in the PDF."""
    everything = re.sub(r"\s+", " ", "\n".join(text))
    numbers = {" ".join(s.get_text().split()) for soup in pages.values()
               for s in soup.select("span.caption-number, span.eqno")}
    numbers = {n.rstrip("#").strip() for n in numbers}
    for kind in ("Fig.", "Theorem", "Algorithm", "Exercise", "Listing", "(33."):
        assert any(n.startswith(kind) for n in numbers), f"the site numbers no {kind}"
    missing = sorted(n for n in numbers if n not in everything)
    assert not missing, f"numbered on the site, not in the PDF: {missing}"


def test_bibliography(pages, text):
    cited = {s.get_text().strip("[]") for soup in pages.values()
             for s in soup.select(".citation .label")}
    assert cited, "the site cites nothing?"
    start = next(i for i, page in enumerate(text) if re.search(r"^\s*Bibliography\s*$", page, re.M))
    bibliography = "\n".join(text[start:])
    missing = [c for c in cited if f"[{c}]" not in bibliography]
    assert not missing, f"cited on the site, not in the PDF's bibliography: {missing}"


def test_every_page_renders(pdf, text, rendered):
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout).group(1))
    assert len(rendered) == len(text) == pages > 20
    for i, pixels in enumerate(rendered, 1):
        ink = (pixels.min(axis=-1) < 128).mean()
        assert ink > 0.001, f"page {i} is blank"
        assert pixels.shape[0] > pixels.shape[1], f"page {i} is not a portrait page"


def test_student_pdf_leaks_no_solution(text):
    everything = " ".join(" ".join(text).split())
    for marker in solution_markers(EXERCISES_MD.read_text()):
        assert marker not in everything, f"solution text {marker!r} in the PDF"
