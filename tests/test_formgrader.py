"""Manual grading as an instructor does it: nbgrader's formgrader in a real browser.

A course with one submission of 33.2 (code solved, discussion written, with a `<script>` and an
`<img onerror>` in it) is autograded by our parallel command; `python -m course_tools.formgrader
--user nobody` (INSTRUCTORS.md step 5) then serves the formgrader on 127.0.0.1 with the course's
`nbgrader_config.py`. Chromium logs in with the token, clicks Manual Grading → the assignment →
the notebook → the submission, gives the discussion 2 of its 3 points with a comment, and the
score and comment reach the gradebook, the student's feedback and the exported CSV; the student's
HTML never ran. The server runs as nobody and has no kernel, terminal or contents API.

eve's answer displays an image whose output metadata attacks nbconvert's unquoted
`width={{ width }}` (the attack of issue #23: a script raising her grades and zeroing others');
her page runs nothing, and nobody's grade moves. Every page carries a Content-Security-Policy
that runs only the formgrader's own scripts: markup injected into a served page (a template hole
to come) stays inert while the page still works. MathJax is served locally: with every request
off the machine blocked, the rubric's mathematics is typeset. Stopping the server's process
(bubblewrap, as INSTRUCTORS.md starts it) stops every process under it.
"""

from __future__ import annotations

import base64
import csv
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

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
# what an injected script would do: mark the page, and once formgrade.js has loaded the grades,
# save each with 99 points and 50 extra credit (as the instructor, whose session the page has)
ATTACK = ("window.__xss='%s';var t=setInterval(function(){if(window.formgrader&&formgrader.grades"
          "&&formgrader.grades.loaded){clearInterval(t);formgrader.grades.each(function(g){"
          "g.save({manual_score:99,extra_credit:50})})}},100)")
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8"
       "AAAAASUVORK5CYII=")


def _run(js):
    """An unquoted attribute value that runs `js`: no space, no quote."""
    return f"eval(atob(`{base64.b64encode(js.encode()).decode()}`))"


EVE = f"""
from IPython.display import display
display({{"image/png": {PNG!r}, "text/plain": "plot"}}, raw=True, metadata={{
    "image/png": {{"width": "1 onerror={_run(ATTACK % 'width')}",
                  "height": "1 onload={_run(ATTACK % 'height')}",
                  "alt": 'x" onerror="window.__xss=1', "unconfined": "1 onclick=alert(1)"}},
    "width": "2 onerror={_run(ATTACK % 'top')}", "filenames": {{"image/png": "/etc/passwd"}}}})
display({{"text/html": "<b>isolated</b>"}}, raw=True,
        metadata={{"text/html": {{"isolated": True}}}})
"""


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
    _submit(course, "ada", nb)
    ok(nbgrader(course, "db", "student", "add", "eve"))
    nb = read_nb(release / A / f"{A}.ipynb")
    cell(nb, "implementation").source = solution_code(A) + EVE
    _submit(course, "eve", nb)
    ok(subprocess.run([str(BIN / "python"), "-m", "course_tools.autograde", A], cwd=ROOT,
                      env={**os.environ, "BPTT_COURSE_DIR": str(course)},
                      capture_output=True, text=True, timeout=900))
    pw = pwd.getpwnam(USER)
    for d, _, files in os.walk(course):
        for name in [d, *(os.path.join(d, f) for f in files)]:
            os.chown(name, pw.pw_uid, pw.pw_gid)
    yield course


def _submit(course, student, nb):
    dest = course / "submitted" / student / A
    dest.mkdir(parents=True)
    nbformat.write(nb, dest / f"{A}.ipynb")
    (dest / "timestamp.txt").write_text("2026-01-15 12:00:00 UTC")


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
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
        # The server runs as USER under bubblewrap, in a PID namespace that ends with it: the
        # process started here (bubblewrap) killed without warning, nothing of it may be left
        # (setpriv's change of user clears --die-with-parent: without the namespace, the
        # server outlived it).
        under = _descendants(server.pid)
        assert len(under) >= 2, under  # bubblewrap's children: its namespace's init, the server
        server.kill()
        server.wait(timeout=30)
        log.close()
        left = _wait_gone(under, 30)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left running by the formgrader: {left}"


def test_manual_grade_and_comment_reach_gradebook_feedback_and_csv(course, formgrader):
    from nbgrader.api import Gradebook
    from playwright.sync_api import sync_playwright

    formgrader, _ = formgrader

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors, outside = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
        local_only(page, outside)
        _log_in(page, formgrader)
        page.click("text=Manual Grading")
        page.click(f"a[href$='/formgrader/gradebook/{A}']")       # the assignment
        page.click(f"a[href$='/formgrader/gradebook/{A}/{A}']")   # its one notebook
        page.wait_for_selector("text=Submission #2")
        page.click("text=Show All Names")  # nbgrader's onclick handler, allowed by its hash
        page.click("text=Lovelace, Ada")
        # the score and comment fields save once the page has bound them to the gradebook's data
        page.wait_for_url("**/formgrader/submissions/**")
        _wait_until(page, "window.formgrader && formgrader.grades && formgrader.grades.loaded"
                          " && formgrader.comments && formgrader.comments.loaded")
        assert ESSAY in page.inner_text("body")
        # the rubric's mathematics, typeset by the local MathJax: no TeX left in the text
        _wait_until(page, "document.querySelectorAll('mjx-container').length > 10"
                          " && MathJax.loaded")  # nbgrader's formgrade.js saw MathJax finish
        assert "W_h h_{t-1}" not in page.inner_text("body")
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
    assert outside == [] and errors == [], errors  # offline; no error, nothing the CSP refused

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


def _wait_until(page, js, seconds=30):
    """Poll `js` in the page until it is true (Playwright's wait_for_function evaluates a string
    in the page, which the Content-Security-Policy forbids); return it."""
    deadline = time.monotonic() + seconds
    while not (value := page.evaluate(js)):
        assert time.monotonic() < deadline, f"not true in {seconds} s: {js}"
        time.sleep(0.2)
    return value


def _log_in(page, url):
    page.goto(f"{url}/login?next=/formgrader")
    page.fill("input[name=password]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url("**/formgrader**")


def _grades(course):
    """Every submission's gradebook rows."""
    from nbgrader.api import Gradebook

    from course_tools.autograde import submission_state

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s: submission_state(gb, A, s) for s in ("ada", "eve")}


def _open_submission(course, formgrader, student, route=None):
    """Open `student`'s submission in Chromium, offline (`route`: a Playwright route handler for
    the page itself); return what ran: window.__xss, the script errors, the CSP violations, the
    blocked requests, the response's CSP, and whether nbgrader's own code loaded the grades."""
    from nbgrader.api import Gradebook
    from playwright.sync_api import sync_playwright

    url, _ = formgrader
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook(A, A, student).id
    page_url = f"{url}/formgrader/submissions/{submission}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors, refused, outside = [], [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: "Content Security Policy" in m.text and refused.append(m.text))
        local_only(page, outside)
        _log_in(page, url)
        if route:
            page.route(page_url, route)
        response = page.goto(page_url)
        page.wait_for_load_state("load")
        loaded = _wait_until(page, "window.formgrader && formgrader.grades"
                                   " && formgrader.grades.loaded")
        page.wait_for_timeout(2000)  # anything an injected handler saves would be saved by now
        seen = {"xss": page.evaluate("window.__xss === undefined ? null : window.__xss"),
                "errors": errors, "refused": refused, "outside": outside, "loaded": bool(loaded),
                "csp": response.headers.get("content-security-policy", ""),
                "handlers": page.locator("[onerror], [onload], [onclick]:not(.glyphicon)").count()}
        browser.close()
    return seen


def test_output_metadata_runs_nothing_and_moves_no_grade(course, formgrader):
    graded = read_nb(course / "autograded" / "eve" / A / f"{A}.ipynb")
    images = [o for c in graded.cells for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert "onerror" in images[0].metadata["image/png"]["width"]  # the attack reached the grader
    before = _grades(course)
    seen = _open_submission(course, formgrader, "eve")
    assert _grades(course) == before
    assert seen["xss"] is None and seen["handlers"] == 0, seen
    assert seen["errors"] == [] and seen["outside"] == [] and seen["loaded"], seen
    assert before["eve"]["notebooks"][A]["grades"]["discussion"]["manual_score"] is None


@pytest.mark.parametrize("hole", [
    "<img src=x width=1 onerror=window.__xss='onerror'>",
    "<script>window.__xss = 'script'</script>",
    "<svg><animate onbegin=\"window.__xss='svg'\" attributeName=x dur=1s></svg>",
])
def test_markup_injected_into_a_page_stays_inert_and_the_page_still_works(course, formgrader,
                                                                           hole):
    """A template hole to come, played by inserting markup into the page as served (with its
    headers): the Content-Security-Policy blocks it, nbgrader's own scripts still run."""
    def route(r):
        response = r.fetch()
        r.fulfill(response=response, body=response.text().replace("</body>", hole + "</body>"))

    before = _grades(course)
    seen = _open_submission(course, formgrader, "ada", route)
    assert seen["xss"] is None and seen["loaded"] and seen["errors"] == [], seen
    assert seen["refused"], seen  # the browser refused it, by the policy
    script_src = next(d for d in seen["csp"].split(";") if d.strip().startswith("script-src"))
    assert "'nonce-" in script_src and "'unsafe-inline'" not in script_src, seen["csp"]
    assert "'unsafe-eval'" not in script_src
    assert _grades(course) == before


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


def _wait_gone(pids, seconds):
    """Those of `pids` still running after up to `seconds`."""
    deadline = time.monotonic() + seconds
    while (left := [p for p in pids if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _running(pid):
    try:
        return not _status(pid)["State"].startswith("Z")
    except FileNotFoundError:
        return False


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
