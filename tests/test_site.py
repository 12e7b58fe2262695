"""The built site, read as files: every page there, no errors, images and downloads present,
the student edition free of solutions and the instructor edition showing them, and the build
settings that make a bad page fail the build."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import textwrap
import zlib
from pathlib import Path

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
EXERCISES_MD = ROOT / "book" / "exercises.md"
ASSIGNMENTS = ("ex33_1_wx_gradient", "ex33_2_linear_rnn", "ex33_3_hidden_size",
               "ex33_4_manual_bptt", "ex33_5_norm_rescaling")
# The seed chapter's figures and the computational graph (33.1), drawn at build time, each a
# labelled <figure>.
FIGURES = {"book/unrolling": 2, "book/vanishing_exploding": 1, "book/remember_first": 2,
           "book/clipping": 3, "book/truncated_bptt": 3}
# Figures that show a measured time: they differ from one build to the next by nature.
TIMED_FIGURES = ["fig-truncation-costs"]

pytestmark = pytest.mark.slow


def build_flags() -> list[str]:
    """The flags the Makefile builds the book with (BUILD_FLAGS)."""
    return re.search(r"^BUILD_FLAGS := (.*)$", (ROOT / "Makefile").read_text(), re.M)[1].split()


def toc_pages(toc: dict | None = None) -> list[str]:
    """Every document named in _toc.yml (root first), e.g. 'book/unrolling'."""
    toc = toc if toc is not None else yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]] if "root" in toc else []
    if "file" in toc:
        pages.append(toc["file"])
    for key in ("parts", "chapters", "sections"):
        for entry in toc.get(key, []):
            pages += toc_pages(entry)
    return [re.sub(r"\.(md|ipynb)$", "", p) for p in pages]


def page(root: Path, name: str) -> BeautifulSoup:
    return BeautifulSoup((root / f"{name}.html").read_text(), "html.parser")


def visible_text(soup: BeautifulSoup) -> str:
    return " ".join(soup.get_text(" ").split())


def solution_blocks(source: str) -> list[str]:
    """The bodies of the ````{solution} blocks of book/exercises.md."""
    return re.findall(r"^````\{solution\}.*?\n(.*?)^````\s*$", source, re.S | re.M)


def solution_markers(source: str) -> list[str]:
    """Per solution: the longest run of plain words (no math, no markup) in its prose.

    They are what a leak of that solution into the student edition would contain.
    """
    markers = []
    for body in solution_blocks(source):
        prose = re.sub(r"```.*?```", " ", body, flags=re.S)          # code
        prose = re.sub(r"\$\$.*?\$\$", " | ", prose, flags=re.S)     # display math
        runs = re.split(r"\$[^$]*\$|`[^`]*`|\{[^}]*\}|[*|:(\n\"']|^\S+:|\s-\s", prose)
        runs = [" ".join(r.split()) for r in runs]
        markers.append(max(runs, key=lambda r: len(r.split())))
    return markers


def text_files(root: Path):
    for f in root.rglob("*"):
        if f.is_file() and f.suffix not in {".png", ".woff", ".ico", ".svg", ".gif", ".jpg"}:
            data = f.read_bytes()
            if f.name == "objects.inv":                  # header lines, then zlib
                data = zlib.decompress(data.split(b"\n", 4)[4])
            yield f, " ".join(html.unescape(data.decode("utf-8", "replace")).split())


def test_every_toc_page_is_built(site):
    pages = toc_pages()
    assert "book/exercises" in pages and len(pages) >= 9
    for root in (site.student, site.instructor):
        missing = [p for p in pages if not (root / f"{p}.html").is_file()]
        assert not missing, f"pages in _toc.yml not built in {root}: {missing}"


def test_no_tracebacks_stderr_or_execution_reports(site):
    assert not list(site.student.rglob("*.err.log")), "execution error reports in reports/"
    for name in toc_pages():
        soup = page(site.student, name)
        bad = soup.select(".output.traceback, .output.stderr, .system-message, .problematic")
        assert not bad, f"{name}: error/stderr output or docutils problem: {bad[0]}"
        assert "Traceback (most recent call last)" not in visible_text(soup), name


def test_no_unresolved_glue_or_roles(site):
    for name in toc_pages():
        text = visible_text(page(site.student, name))
        leftovers = re.findall(r"\{glue[^}]*\}|\{(?:eq|ref|numref|prf:ref|cite:[pt])\}`", text)
        assert not leftovers, f"{name}: unrendered roles {leftovers[:3]}"
        assert not re.search(r"glue.{0,40}(not found|error)", text, re.I), name
        # a glued NumPy scalar shows its repr ("np.int64(7)"), not its value
        numpy_reprs = re.findall(r"np\.\w+\([^)]*\)", " ".join(
            s.get_text() for s in page(site.student, name).select("span.pasted-text")))
        assert not numpy_reprs, f"{name}: glued NumPy reprs {numpy_reprs[:3]}"


def test_two_builds_give_the_same_numbers_and_figures(site):
    """The two editions are two separate executions of every page (`make site`): every glued
    number and every figure (image files are named by content hash) must come out identical,
    except the figures of measured time (TIMED_FIGURES)."""
    glued = 0
    for name in toc_pages():
        numbers = [[s.get_text() for s in page(root, name).select("span.pasted-text")]
                   for root in (site.student, site.instructor)]
        assert numbers[0] == numbers[1], f"{name}: glued values differ between two builds"
        images = [sorted(img["src"] for img in page(root, name).find_all("img")
                         if not img.find_parent("figure", id=TIMED_FIGURES))
                  for root in (site.student, site.instructor)]
        assert images[0] == images[1], f"{name}: figures differ between two builds"
        glued += len(numbers[0])
    assert glued > 50, f"only {glued} glued values found: is glue still rendered as pasted-text?"


def test_every_image_exists(site):
    for name in toc_pages():
        for img in page(site.student, name).find_all("img"):
            src = img["src"]
            assert not re.match(r"[a-z]+://", src), f"{name}: external image {src}"
            if not src.startswith("data:"):
                assert (site.student / name).parent.joinpath(src).is_file(), f"{name}: {src}"
            assert img.get("alt"), f"{name}: image without alt text: {src}"


def test_chapter_figures_are_labelled_and_counted(site):
    counts = {}
    for name in toc_pages():
        figures = page(site.student, name).select("article figure")
        for fig in figures:
            assert fig.get("id"), f"{name}: figure without a label"
            assert fig.find("figcaption"), f"{name}: figure {fig['id']} without a caption"
            assert fig.find("img"), f"{name}: figure {fig['id']} without an image"
        if figures:
            counts[name] = len(figures)
    assert counts == FIGURES


def test_each_exercise_links_its_student_notebook(site):
    for root in (site.student, site.instructor):
        soup = page(root, "book/exercises")
        exercises = soup.select("div.exercise")
        assert [e["id"] for e in exercises] == ["ex-wx-gradient", "ex-linear-rnn",
                                                "ex-hidden-size", "ex-manual-bptt",
                                                "ex-norm-rescaling"]
        for number, (ex, name) in enumerate(zip(exercises, ASSIGNMENTS, strict=True), 1):
            assert f"Exercise 33.{number}" in visible_text(ex)
            links = [a["href"] for a in ex.select("a.download") if a["href"].endswith(
                f"/{name}.ipynb")]
            assert len(links) == 1, f"{name}: no download link in its exercise"
            served = (root / "book" / links[0]).resolve()
            released = ROOT / "exercises" / name / f"{name}.ipynb"
            assert served.read_bytes() == released.read_bytes(), f"{name}: stale download"
            nb = nbformat.reads(served.read_text(), as_version=4)
            source = "\n".join(cell.source for cell in nb.cells)
            for marker in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"):
                assert marker not in source, f"{name}: the download is not the student release"


def test_solution_markers_are_solution_only():
    source = EXERCISES_MD.read_text()
    markers = solution_markers(source)
    assert len(markers) == 5 and all(len(m.split()) >= 6 for m in markers), markers
    outside = re.sub(r"^````\{solution\}.*?^````\s*$", "", source, flags=re.S | re.M)
    for marker in markers:
        assert marker not in " ".join(outside.split()), marker


def test_student_edition_leaks_no_solution(site):
    markers = solution_markers(EXERCISES_MD.read_text())
    labels = re.findall(r"^:label: (sol-[\w-]+)", EXERCISES_MD.read_text(), re.M)
    assert len(labels) == 5
    assert not (site.student / "_sources").exists(), "page sources copied into the site"
    for f in site.student.rglob("*"):
        rel = f.relative_to(site.student)
        assert f.suffix != ".md", f"source file in the site: {rel}"
        if f.suffix == ".ipynb":
            assert rel.parts[0] == "_downloads" and f.stem in ASSIGNMENTS, rel
    for f, text in text_files(site.student):
        for needle in [*markers, *labels, 'class="solution']:
            assert needle not in text, f"solution text {needle!r} in {f.relative_to(site.student)}"
    for name in toc_pages():
        assert not page(site.student, name).select(".dropdown-download-buttons, "
                                                    "[class*=download-source-button]"), name


def search_terms(root: Path) -> set[str]:
    text = (root / "searchindex.js").read_text()
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    return set(index["terms"]) | set(index["titleterms"])


def test_search_index_has_no_solution_words(site):
    """Words that only the solutions use (stemmed as Sphinx's search does) are absent from the
    student edition's search index, and present in the instructor edition's."""
    from sphinx.search.en import SearchEnglish

    stem = SearchEnglish({}).stem
    pages = " ".join(visible_text(page(site.student, name)) for name in toc_pages())
    elsewhere = {stem(w) for w in re.findall(r"[a-z]+", pages.lower())}
    prose = re.sub(r"```.*?```|\$.*?\$", " ", "".join(solution_blocks(EXERCISES_MD.read_text())),
                   flags=re.S)
    stems = {stem(w) for w in re.findall(r"[a-z]{6,}", prose.lower())} - elsewhere
    assert len(stems) >= 20, stems
    assert not stems & search_terms(site.student), stems & search_terms(site.student)
    assert len(stems & search_terms(site.instructor)) >= 0.8 * len(stems)


def test_instructor_edition_shows_every_solution(site):
    soup = page(site.instructor, "book/exercises")
    markers = solution_markers(EXERCISES_MD.read_text())
    exercises = soup.select("div.exercise")
    assert len(exercises) == len(markers) == 5
    for exercise, marker in zip(exercises, markers, strict=True):
        solution = exercise.find_next_sibling("div")
        assert "solution" in solution["class"], f"no solution right after {exercise['id']}"
        assert marker in visible_text(solution), marker
    assert "def grad_W_x" in visible_text(soup)


@pytest.mark.parametrize("block", range(5))
def test_solution_code_runs_and_checks_itself(block):
    """Each worked solution's code (not executed by the build) runs, and its asserts pass."""
    codes = [re.findall(r"^```python\n(.*?)^```", body, re.S | re.M)
             for body in solution_blocks(EXERCISES_MD.read_text())]
    assert len(codes) == 5 and all(len(c) == 1 for c in codes)
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-W", "error", "-c",
                          codes[block][0]], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr


def test_math_is_served_by_the_site(site):
    for root in (site.student, site.instructor):
        entry = root / "_static" / "mathjax" / "tex-chtml.js"
        fonts = entry.parent / "output" / "chtml" / "fonts" / "woff-v2"
        assert entry.is_file() and fonts.is_dir() and list(fonts.glob("*.woff"))
        for name in toc_pages():
            soup = page(root, name)
            sources = [t.get("src") or t.get("href") for t in soup.select("script[src], link[href]")
                       if t.name == "script" or "stylesheet" in t.get("rel", [])]
            external = [s for s in sources if re.match(r"([a-z]+:)?//", s)]
            assert not external, f"{name}: loads {external}"
            if soup.select(".math"):
                assert any(s.split("?")[0].endswith("_static/mathjax/tex-chtml.js")
                           for s in sources), f"{name}: math without the local MathJax"


PAGE = """\
    ---
    jupytext: {{text_representation: {{extension: .md, format_name: myst}}}}
    kernelspec: {{display_name: Python 3, language: python, name: python3}}
    ---
    # Throwaway

    {text}

    ```{{code-cell}} ipython3
    {code}
    ```
    """
BROKEN = {  # case: (markdown, code cell, what the build log must name)
    "cell error": ("Fine.", "raise ValueError('broken cell')", "broken cell"),
    "stderr output": ("Fine.", "import sys; print('oops', file=sys.stderr)", "stderr was found"),
    "unresolved reference": ("See {ref}`no-such-label`.", "print(1)", "no-such-label"),
}


@pytest.mark.parametrize("case", ["control", *BROKEN])
def test_build_settings_fail_a_bad_page(case, tmp_path):
    """The book's _config.yml and the Makefile's flags fail the build on a cell error, on
    stderr output and on any warning; a clean page (control) builds."""
    for name in ("_config.yml", "book/_ext", "book/references.bib"):
        src, dst = ROOT / name, tmp_path / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    text, code, reason = BROKEN.get(case, ("Fine.", "print(1)", None))
    (tmp_path / "book" / "index.md").write_text(textwrap.dedent(PAGE).format(text=text, code=code))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/index\n")
    (tmp_path / ".pytest_cache").mkdir()       # what a test run leaves: must not be a page
    (tmp_path / ".pytest_cache" / "README.md").write_text("# pytest cache directory\n")
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "jupyter-book"), "build", ".",
                          *build_flags()], cwd=tmp_path, capture_output=True, text=True)
    log = run.stdout + run.stderr
    if case == "control":
        assert run.returncode == 0, log[-3000:]
    else:
        assert run.returncode != 0, f"the build passed despite a {case}"
        assert reason in log, log[-3000:]


def test_jupyterhub_setting_adds_the_exercises_launch_button(tmp_path):
    """`launch_buttons: jupyterhub_url` in _config.yml: the Exercises page (only) gets a launch
    button opening each exercise notebook on the hub; no page sources are copied for it."""
    hub = "https://hub.example.edu"
    config = (ROOT / "_config.yml").read_text()
    assert 'jupyterhub_url: ""' in config
    (tmp_path / "_config.yml").write_text(config.replace('jupyterhub_url: ""',
                                                         f'jupyterhub_url: "{hub}/"'))
    shutil.copytree(ROOT / "book" / "_ext", tmp_path / "book" / "_ext")
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book")
    (tmp_path / "book" / "index.md").write_text("# Chapter\n\nText.\n")
    (tmp_path / "book" / "exercises.md").write_text("# Exercises\n\nText.\n")
    for name in ASSIGNMENTS[:2]:
        (tmp_path / "exercises" / name).mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/index\n"
                                       "chapters:\n  - file: book/exercises\n")
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "jupyter-book"), "build", ".", "-W", "-n",
                          "--keep-going"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    html = tmp_path / "_build" / "html"
    links = [a["href"] for a in page(html, "book/exercises").select("a[href*='hub.example']")]
    assert links == [f"{hub}/hub/user-redirect/lab/tree/{n}/{n}.ipynb" for n in ASSIGNMENTS[:2]]
    assert not page(html, "book/index").select("a[href*='hub.example']")
    assert not (html / "_sources").exists()


def test_default_build_links_no_hub_and_indexes_no_proofs(site):
    for root in (site.student, site.instructor):
        assert not list(root.glob("prf-*.html")), "the Proof Index page is built"
        for name in toc_pages():
            text = (root / f"{name}.html").read_text()
            assert "user-redirect" not in text and "prf-prf" not in text, name


def test_everything_is_numbered_as_chapter_33(site):
    """Figures, equations, theorems, algorithms and exercises carry the chapter's number, and
    references to them say so too."""
    kinds = {"figure": r"Fig\. 33\.\d+", "equation": r"\(33\.\d+\)",
             "theorem": r"Theorem 33\.\d+", "algorithm": r"Algorithm 33\.\d+",
             "exercise": r"Exercise 33\.\d+"}
    text = " ".join(visible_text(page(site.student, name)) for name in toc_pages())
    for kind, pattern in kinds.items():
        assert re.search(pattern, text), f"no {kind} numbered {pattern}"
    unprefixed = re.findall(r"(?:Fig\.|Theorem|Algorithm|Exercise|Listing|Table) (?!33\.)\d+",
                            text)
    assert not unprefixed, unprefixed[:5]
    numbers = [s.get_text() for name in toc_pages()
               for s in page(site.student, name).select("span.eqno")]
    assert numbers and all(re.fullmatch(r"\(33\.\d+\)#?", n.strip()) for n in numbers), numbers[:5]
    # "(33.3)" is an equation's number: prose names a section otherwise ("§33.3")
    for name in toc_pages():
        soup = page(site.student, name)
        for number in soup.select("span.eqno, a.reference"):
            number.decompose()
        bare = re.findall(r"\(33\.\d+\)", visible_text(soup))
        assert not bare, f"{name}: {bare} read as equation numbers but are not"


# Pages whose code a reader sees must show the mathematics, not the book's own checks.
THEORY_PAGES = ("book/index", "book/unrolling", "book/bptt_derivation",
                "book/vanishing_exploding", "book/exercises")


def test_readers_see_no_asserts_or_table_building(site):
    for name in THEORY_PAGES:
        for cell in page(site.student, name).select("div.cell"):
            if "tag_hide-input" in cell.get("class", []):
                continue
            for code in cell.select("div.cell_input pre"):
                source = code.get_text()
                assert not re.search(r"^\s*assert\b", source, re.M), f"{name}: {source[:80]}"
                assert "Markdown(" not in source and "glue(" not in source, name
