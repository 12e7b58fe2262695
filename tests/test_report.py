"""`python -m course_tools.report`, the class report: every count checked on the corpora graded
through INSTRUCTORS.md's workflow (conftest's `graded_corpora`, tests/test_workflow.py) and on a
class whose notebooks die, time out, flood their output or are refused; the course's files read as
hostile; the page in Chromium, offline, naming no student."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import string
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from unittest import mock

import nbformat
import pytest
from test_browser import ARTIFACTS, MIN_TEXT_PX, QuietHandler, browser, local_only  # noqa: F401
from test_workflow import ASSIGNMENTS, SUBMISSIONS, command, full_marks, run

from bptt_grading.judge import HINTS
from course_tools import report, synthetic
from course_tools.autograde import load_course
from course_tools.instructor import Intake

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def read_course(course: Path, config_dir: Path = ROOT) -> report.Course:
    """`course` as the command reads it, with the nbgrader_config.py of `config_dir`."""
    with mock.patch.dict(os.environ, {"BPTT_COURSE_DIR": str(course)}):
        coursedir, config, _ = load_course(str(config_dir))
    return report.Course(os.path.realpath(course), coursedir,
                         Intake(config=config).max_file_size)


def test_a_hint_is_counted_by_its_key_whatever_its_wording():
    """Each HINTS text, its fields filled in, is found under its key and no other; reworded,
    it still is (the patterns are made from the table the grader uses)."""
    def shown(template):
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n]
        return f"x is off.\n{template.format(**dict.fromkeys(names, 0.123))}\nmore"

    reworded = {key: f"Put otherwise: {text}" for key, text in HINTS.items()}
    for table in (HINTS, reworded):
        patterns = report.hint_patterns(table)
        for key, template in table.items():
            assert {k for k, p in patterns.items() if p.search(shown(template))} == {key}


def test_limits_are_told_apart():
    error = lambda ename, evalue="": {"output_type": "error", "ename": ename,  # noqa: E731
                                      "evalue": evalue}
    nb = lambda *outs: {"cells": [{"cell_type": "code", "outputs": list(outs)}]}  # noqa: E731
    assert report._limits(nb(error("NotebookTimeout"), error("MessageTooLarge"),
                             error("KernelDied"))) == {"notebook time limit"}
    assert report._limits(nb(error("KernelDied"), error("MessageTooLarge"))) == {"kernel died"}
    assert report._limits(nb(error("MessageTooLarge"))) == {"message size limit"}
    assert report._limits(nb(error("DeadKernelError"), error("OutputLimitExceeded"))) == \
        {"kernel died", "output limit"}
    assert report._limits(nb(error("GradingFailure", "run(…) was interrupted "
                                   "(KeyboardInterrupt): it did not finish"))) == \
        {"cell time limit"}
    assert report._limits(nb(error("AssertionError"))) == set()


# ---------------------------------------------------------------- the corpora

@pytest.fixture(scope="module")
def corpus(graded_corpora):
    """The corpora's course, its report made by INSTRUCTORS.md's command (step 8), and the counts
    read in-process."""
    path = graded_corpora.path
    made = run(path, command("python -m course_tools.report"), [])
    return path, made, report.summarize(read_course(path))


def points(assignment):
    """All the points of `assignment`, autograded and manual."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return sum(c.metadata.nbgrader.get("points", 0) for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade"))


def test_every_count_of_the_corpora(corpus):
    path, made, summary = corpus
    assert f"wrote {path / 'report.html'}" in made.stdout and not made.stderr, made.stderr
    assert [a.name for a in summary] == ASSIGNMENTS
    for a in summary:
        subs, full = [s for s in SUBMISSIONS if s.assignment == a.name], full_marks(a.name)
        assert a.submitted == len(subs) and a.points == points(a.name)
        assert a.scores == sorted(sum(s.scores.values()) for s in subs)
        cells = {c.name: c for c in a.cells}
        for name, pts in full.items():
            assert (cells[name].autograded, cells[name].points, cells[name].graded,
                    cells[name].waiting) == (True, pts, len(subs), 0)
            assert cells[name].passed == sum(s.scores[name] == pts for s in subs), name
        for c in (c for c in a.cells if c.name not in full):  # the written answers: left as
            assert (c.autograded, c.graded, c.passed, c.waiting) == (  # released, nbgrader
                False, len(subs), 0, 0), c                              # scores them 0
        assert a.hints == Counter(k for s in subs for k in set().union(*s.hints.values()))
        assert a.hint_cells == Counter(k for s in subs for keys in s.hints.values()
                                       for k in keys)
        assert a.undiagnosed == sum(s.scores[c] < pts and not s.hints.get(c)
                                    for s in subs for c, pts in full.items())
        assert (a.not_graded, a.limits, a.unreadable, a.untimed) == ({}, {}, 0, 0)
        assert len(a.seconds) == len(subs) and all(0 < t < 600 for t in a.seconds)
    assert {k for a in summary for k in a.hints} == set(HINTS)  # the corpora show every one


def test_the_page_names_no_student_and_is_the_grader_s(corpus):
    path, _, _ = corpus
    page = (path / "report.html").read_text()
    students = {s.student for s in SUBMISSIONS} | {"s1234567"}  # (INSTRUCTORS.md step 1's)
    for word in students | {s.title() for s in students} | {"Lovelace", "example.org"}:
        assert word not in page, word
    assert (path / "report.html").stat().st_uid == synthetic.grading_user().pw_uid


INSPECT = r"""() => {
  const texts = [...document.querySelectorAll('svg text')].map(t => {
    const svg = t.closest('svg');
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * scale};
  });
  return {
    sections: [...document.querySelectorAll('h2')].map(h => h.textContent),
    figures: [...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect())
      .map(r => [r.width, r.height]),
    tables: [...document.querySelectorAll('table')].map(t => [...t.querySelectorAll('tbody tr')]
      .map(r => [...r.cells].map(c => c.textContent))),
    texts,
  };
}"""


def test_the_page_in_chromium(browser, corpus, tmp_path):  # noqa: F811 (browser: a fixture)
    """Offline, no error; its sections, figures and tables as summarized; figure text legible."""
    path, _, summary = corpus
    shutil.copy(path / "report.html", tmp_path / "report.html")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    problems, blocked = [], []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    local_only(context, blocked)
    tab = context.new_page()
    tab.on("console", lambda m: m.type == "error" and problems.append(m.text))
    tab.on("pageerror", lambda e: problems.append(str(e)))
    try:
        tab.goto(f"http://127.0.0.1:{httpd.server_address[1]}/report.html", wait_until="load")
        seen = tab.evaluate(INSPECT)
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=ARTIFACTS / "class-report.png", full_page=True)
    finally:
        context.close()
        httpd.shutdown()
        httpd.server_close()
    assert not blocked and not problems, (blocked, problems)
    assert seen["sections"] == ["Scores", "Pass rate per grade cell", "Most frequent mistakes",
                                "Notebooks that did not run to the end", "Grading time"]
    assert len(seen["figures"]) == 4 and all(w > 200 and h > 100 for w, h in seen["figures"])
    scores, cells, mistakes, times = seen["tables"]
    assert [r[:4] for r in scores] == [[a.name, str(a.submitted), str(len(a.scores)),
                                        f"{a.points:g}"] for a in summary]
    assert [[r[0], r[1].removesuffix(" (manual)"), r[3], r[4], r[6]] for r in cells] == [
        [a.name, c.name, str(c.passed), str(c.graded), str(c.waiting)]
        for a in summary for c in a.cells]
    assert [r[:3] for r in mistakes] == [[k, str(n), str(c)]
                                         for k, n, c, _ in report.hint_totals(summary)]
    assert [int(r[1]) for r in times] == [len(a.seconds) for a in summary]
    labels = {t["text"] for t in seen["texts"]}
    assert {k for k, *_ in report.hint_totals(summary)} <= labels
    small = [t for t in seen["texts"] if t["px"] < MIN_TEXT_PX[1280]]
    assert not small, small


# ---------------------------------------------------------------- notebooks that did not run

RIGHT = "def square(x):\n    return x * x"
LIMITED = {  # student: answer
    "st_ok": RIGHT,
    "st_wrong": "def square(x):\n    return x + x",
    "st_died": "import os\nos._exit(3)",
    "st_slow": "import time\ntime.sleep(600)",       # past the notebook's time limit
    "st_loud": RIGHT + "\nprint('x' * 3_000_000)",  # past the output limit, answered
    "st_linked": RIGHT,                             # a link in the submission
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A synthetic class of LIMITED graded by `python -m course_tools.autograde` (2 workers)."""
    base = str(tmp_path_factory.mktemp("limits") / "class")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()},
                          config="c.SandboxExecute.notebook_timeout = 30")  # st_slow: 600 s
    for student, answer in LIMITED.items():
        synthetic.submit(base, "sq", student, answer)
    linked = Path(base, "course", "submitted", "st_linked", "sq")
    (linked / "sq.ipynb").rename(linked / "mine.ipynb")
    (linked / "sq.ipynb").symlink_to("mine.ipynb")
    graded = subprocess.run([sys.executable, "-m", "course_tools.autograde", "sq", "--workers",
                             "2"], cwd=base, env=synthetic._env(), capture_output=True,
                            text=True, timeout=900)
    assert graded.returncode == 1, graded.stdout + graded.stderr
    assert "sq/st_linked: FAILED: submission refused" in graded.stdout
    return Path(base)


def test_every_count_of_a_class_whose_notebooks_did_not_all_run(limited):
    (a,) = report.summarize(read_course(limited / "course", limited))
    assert (a.name, a.points, a.submitted) == ("sq", 2, len(LIMITED))
    assert a.scores == [0, 0, 0, 2, 2]  # wrong, died, slow; ok, loud
    assert [(c.name, c.passed, c.graded) for c in a.cells] == [("test_public", 2, 5),
                                                              ("test_hidden", 2, 5)]
    assert a.not_graded == {report.REASONS[0][1]: 1}
    assert a.limits == {"kernel died": 1, "notebook time limit": 1, "output limit": 1}
    assert (a.undiagnosed, a.hints, a.unreadable, a.untimed) == (6, {}, 0, 0)
    assert len(a.seconds) == 5 and 8 <= max(a.seconds) < 300
    page = report.render([a], HINTS, "")
    for said in ("kernel died", "notebook time limit", "output limit", report.REASONS[0][1]):
        assert f"<td>{said}</td>" in page
    assert not any(student in page for student in LIMITED)  # (each st_…)


def test_the_course_files_are_read_as_hostile(limited, tmp_path):
    """Links planted for an autograded notebook or folder, a sparse notebook of 10 GiB, verdicts
    forged outside the grade cells, a link where the page goes or for the gradebook: nothing
    outside the course is read or written, nothing refused is counted."""
    base = Path(synthetic.clone(str(limited), str(tmp_path / "class")))
    course, outside = base / "course", tmp_path / "outside"
    graded = course / "autograded"
    outside.mkdir()
    sign = nbformat.v4.new_output("error", ename="GradingFailure", evalue=HINTS["sign"],
                                  traceback=[])
    forged = nbformat.v4.new_notebook(metadata={"course_tools": {"grading_seconds": 12345}})
    forged.cells = [nbformat.v4.new_code_cell(metadata={"nbgrader": {"grade_id": "test_public"}},
                                              outputs=[sign])]
    nbformat.write(forged, outside / "sq.ipynb")
    (graded / "st_ok" / "sq" / "sq.ipynb").unlink()
    (graded / "st_ok" / "sq" / "sq.ipynb").symlink_to(outside / "sq.ipynb")
    shutil.rmtree(graded / "st_died" / "sq")
    (graded / "st_died" / "sq").symlink_to(outside)
    with open(graded / "st_wrong" / "sq" / "sq.ipynb", "r+b") as f:
        f.truncate(10 * 2**30)
    loud = graded / "st_loud" / "sq" / "sq.ipynb"
    nb = nbformat.read(loud, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(outputs=[sign]), nbformat.v4.new_code_cell(
        metadata={"nbgrader": {"grade_id": "test_hidden"}}, outputs=[sign])]  # (a second one)
    loud.chmod(0o644)
    nbformat.write(nb, loud)
    victim = outside / "victim.html"
    victim.write_text("keep")
    (course / "report.html").symlink_to(victim)

    (a,) = report.summarize(read_course(course, base))
    assert (a.unreadable, a.hints, a.hint_cells) == (3, {}, {})
    assert len(a.scores) == 5 and len(a.seconds) == 2 and 12345 not in a.seconds
    report.write_report(str(course), report.render([a], HINTS, ""))
    assert victim.read_text() == "keep" and not (course / "report.html").is_symlink()
    assert "<h1>Class report</h1>" in (course / "report.html").read_text()

    (course / "gradebook.db").rename(outside / "gradebook.db")
    (course / "gradebook.db").symlink_to(outside / "gradebook.db")
    with pytest.raises(report.CannotReport, match="cannot read the gradebook"):
        report.summarize(read_course(course, base))
    made = subprocess.run([sys.executable, "-m", "course_tools.report"], cwd=base,
                          env=synthetic._env(), capture_output=True, text=True, timeout=300)
    assert made.returncode == 2 and "cannot read the gradebook" in made.stderr, made.stderr
    assert "Traceback" not in made.stderr
