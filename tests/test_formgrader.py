"""Manual grading as an instructor does it: nbgrader's formgrader in a real browser.

A course with one submission of 33.2 (code solved, discussion written, with a `<script>` and an
`<img onerror>` in it) is autograded by our parallel command; `python -m course_tools.formgrader
--user nobody` (INSTRUCTORS.md step 5) then serves the formgrader on 127.0.0.1 with the course's
`nbgrader_config.py`. Chromium logs in with the token, clicks Manual Grading → the assignment →
the notebook → the submission, gives the discussion 2 of its 3 points with a comment, and the
score and comment reach the gradebook, the student's feedback and the exported CSV; the student's
HTML never ran. The server runs as nobody and has no kernel, terminal or contents API.
"""

from __future__ import annotations

import csv
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, local_only
from test_grading import BIN, ROOT, cell, nbgrader, ok, read_nb, solution_code

pytestmark = [pytest.mark.slow, pytest.mark.browser]

A = "ex33_2_linear_rnn"
TOKEN = "formgrader-test-token"
ESSAY = "Each eigen-direction is scaled by lambda_i^(t-k): vanishing if rho < 1."
XSS = ("<script>window.__xss = 'script';</script>"
       "<img src=x onerror=\"window.__xss = 'onerror'\">"
       "[more](javascript:window.__xss='link') <a href=\"javascript:window.__xss='a'\">a</a>")
USER = "nobody"


@pytest.fixture(scope="module")
def course():
    """A course with ada's autograded submission of 33.2, owned by USER (who serves the
    formgrader), in a directory USER can reach."""
    course = Path(tempfile.mkdtemp(prefix="formgrader-course-"))
    os.chmod(course, 0o755)
    yield from _course(course)
    shutil.rmtree(course)


def _course(course):
    release = course / "release"
    ok(nbgrader(course, "generate_assignment", A, "--force",
                f"--CourseDirectory.release_directory={release}"))
    ok(nbgrader(course, "db", "student", "add", "ada", "--first-name=Ada",
                "--last-name=Lovelace"))
    nb = read_nb(release / A / f"{A}.ipynb")
    cell(nb, "implementation").source = solution_code(A)
    cell(nb, "discussion").source = f"{ESSAY}\n\n{XSS}"
    dest = course / "submitted" / "ada" / A
    dest.mkdir(parents=True)
    nbformat.write(nb, dest / f"{A}.ipynb")
    (dest / "timestamp.txt").write_text("2026-01-15 12:00:00 UTC")
    ok(subprocess.run([str(BIN / "python"), "-m", "course_tools.autograde", A], cwd=ROOT,
                      env={**os.environ, "BPTT_COURSE_DIR": str(course)},
                      capture_output=True, text=True, timeout=900))
    pw = pwd.getpwnam(USER)
    for d, _, files in os.walk(course):
        for name in [d, *(os.path.join(d, f) for f in files)]:
            os.chown(name, pw.pw_uid, pw.pw_gid)
    yield course


@pytest.fixture(scope="module")
def formgrader(course):
    """`jupyter server` with nbgrader's extensions on a free port of 127.0.0.1: its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(course / "server.log", "w")
    server = subprocess.Popen(
        [str(BIN / "python"), "-m", "course_tools.formgrader", f"--user={USER}", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}"],
        cwd=ROOT, env={**os.environ, "BPTT_COURSE_DIR": str(course)}, stdin=subprocess.DEVNULL,
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, (course / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "jupyter server did not start in 60 s"
                time.sleep(0.3)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_manual_grade_and_comment_reach_gradebook_feedback_and_csv(course, formgrader):
    from nbgrader.api import Gradebook
    from playwright.sync_api import sync_playwright

    formgrader, _ = formgrader

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors, outside = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        local_only(page, outside)
        page.goto(f"{formgrader}/login?next=/formgrader")
        page.fill("input[name=password]", TOKEN)
        page.click("button[type=submit]")
        page.click("text=Manual Grading")
        page.click(f"a[href$='/formgrader/gradebook/{A}']")       # the assignment
        page.click(f"a[href$='/formgrader/gradebook/{A}/{A}']")   # its one notebook
        page.click("text=Submission #1")
        # the score and comment fields save once the page has bound them to the gradebook's data
        page.wait_for_url("**/formgrader/submissions/**")
        page.wait_for_function("window.formgrader && formgrader.grades && formgrader.grades.loaded"
                               " && formgrader.comments && formgrader.comments.loaded")
        assert ESSAY in page.inner_text("body")
        page.wait_for_load_state("load")  # the img has failed to load: onerror would have run
        page.click("text=more")           # a javascript: link would run now
        assert page.evaluate("window.__xss") is None
        assert page.locator("script:has-text('__xss'), [onerror]").count() == 0
        with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url
                                  and r.request.method == "PUT" and r.ok):
            page.fill("#discussion", "2")
            page.press("#discussion", "Tab")
        with page.expect_response(lambda r: "/formgrader/api/comment/" in r.url
                                  and r.request.method == "PUT" and r.ok):
            page.fill("#discussion-comment", "Good; the non-normal case is missing.")
            page.press("#discussion-comment", "Tab")
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "test-artifacts" / "formgrader.png"), full_page=True)
        browser.close()
    # nbgrader's formgrade page loads MathJax 2 from cdnjs (so no math offline); nothing else
    # leaves the machine, and that is the only error.
    assert {urlparse(u).hostname for u in outside} <= {"cdnjs.cloudflare.com"}
    assert set(errors) <= {"MathJax is not defined"}

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(A, A, "ada")
        grades = {g.name: g for g in nb.grades}
        assert grades["discussion"].manual_score == 2
        assert not grades["discussion"].needs_manual_grade
        assert [c.manual_comment for c in nb.comments if c.name == "discussion"] == [
            "Good; the non-normal case is missing."]
        assert nb.score == 6 + 2                     # all three code tests pass
    ok(nbgrader(course, "generate_feedback", A))
    feedback = (course / "feedback" / "ada" / A / f"{A}.html").read_text()
    assert "Good; the non-normal case is missing." in feedback
    assert "BEGIN HIDDEN TESTS" not in feedback and "seed=21" not in feedback
    ok(nbgrader(course, "export", "--to", str(course / "grades.csv")))
    with open(course / "grades.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["student_id"] == "ada")
    assert float(row["score"]) == 8.0 and float(row["max_score"]) == 9.0


def test_the_server_runs_unprivileged_without_kernel_terminal_or_contents_api(formgrader):
    url, pid = formgrader
    pythons = [p for p in _descendants(pid) if _status(p)["Name"].startswith("python")]
    assert pythons, "no server process"
    for p in pythons:  # the server, and anything it started, is USER with USER's group alone
        assert set(_status(p)["Uid"].split()) == {str(pwd.getpwnam(USER).pw_uid)}
        assert _status(p)["Groups"].split() in ([], [str(pwd.getpwnam(USER).pw_gid)])
    for path in ("api/kernels", "api/kernelspecs", "api/terminals", "api/contents",
                 "api/sessions", "files/nbgrader_config.py", "api/nbconvert", "terminals/1",
                 "tree", "lab"):
        request = urllib.request.Request(f"{url}/{path}",
                                         headers={"Authorization": f"token {TOKEN}"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request, timeout=10)
        e.value.close()
        assert e.value.code == 404, path
    request = urllib.request.Request(f"{url}/api/kernels", method="POST", data=b"{}",
                                     headers={"Authorization": f"token {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=10)
    e.value.close()
    assert e.value.code in (404, 405)


def _status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _descendants(pid):
    """The processes below `pid`."""
    children = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            children.setdefault(int(_status(p)["PPid"]), []).append(int(p))
        except (OSError, KeyError):
            pass
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found
