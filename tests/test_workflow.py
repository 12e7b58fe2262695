"""The instructor's workflow exactly as INSTRUCTORS.md writes it, in a fresh course, grading two
corpora of student answers written from the student notebooks (tests/submissions/):

- correct/<assignment>/<name>.py: right answers written differently from solutions/ (loops,
  einsum, forward accumulation, helpers of any name, floats, tensors, …): full marks, and no
  failure message anywhere;
- wrong/<assignment>/<name>.py: mistakes students make. A header says what each must cost:
  `# expect <grade cell>: <points> | <text> | …` (the cell's score and texts its output must hold;
  cells not named keep full marks) and `# hint <grade cell>: <HINTS key>` (the hints it must get).

Each file is the notebook's answer cell. The commands are the ```bash blocks of INSTRUCTORS.md,
run from the repository root with the venv on PATH and BPTT_COURSE_DIR set to the fresh course
(read for `course/`); the example assignment's name stands for each assignment in turn.
Afterwards the repository must be exactly as before (`git status`).
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import shlex
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from bptt_grading.judge import HINTS
from course_tools import synthetic
from course_tools.autograde import Progress

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CORPUS = ROOT / "tests" / "submissions"
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir())
EXAMPLE = "ex33_4_manual_bptt"                    # the assignment INSTRUCTORS.md's commands name
ZIPPED = {"ex33_2_linear_rnn", "ex33_5_norm_rescaling"}  # collected with zip_collect
PARALLEL = {"ex33_3_hidden_size", "ex33_5_norm_rescaling"}  # left to course_tools.autograde --all
UPSTREAM_NOISE = ("SAWarning", "not recognized by ClearHiddenTests", "Traceback")

pytestmark = pytest.mark.slow


def cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def full_marks(assignment) -> dict[str, float]:
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"] for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


@dataclass
class Submission:
    assignment: str
    kind: str                       # "correct" | "wrong"
    name: str
    source: str
    scores: dict[str, float]        # grade cell -> expected autograded score
    texts: dict[str, list[str]]     # grade cell -> texts its output must contain
    hints: dict[str, set[str]]      # grade cell -> HINTS keys it must show (and no others)

    @property
    def student(self):
        return f"{'ok' if self.kind == 'correct' else 'bad'}_{self.name}"

    @classmethod
    def read(cls, path: Path) -> Submission:
        assignment, kind = path.parent.name, path.parent.parent.name
        source = path.read_text()
        scores, texts, hints = full_marks(assignment), {}, {}
        for grade_id, rest in re.findall(r"^# expect (\w+): (.*)$", source, re.M):
            points, *wanted = (part.strip() for part in rest.split(" | "))
            assert grade_id in scores, (path, grade_id)
            scores[grade_id], texts[grade_id] = float(points), wanted
        for grade_id, key in re.findall(r"^# hint (\w+): (\w+)$", source, re.M):
            assert key in HINTS, (path, key)
            hints.setdefault(grade_id, set()).add(key)
        assert (kind == "wrong") == bool(texts), f"{path}: a wrong answer says what it costs"
        return cls(assignment, kind, path.stem, source, scores, texts, hints)


SUBMISSIONS = [Submission.read(p) for p in sorted(CORPUS.glob("*/*/*.py"))]


def documented_commands() -> list[str]:
    """Every command line of INSTRUCTORS.md's ```bash blocks, comments stripped."""
    text = (ROOT / "INSTRUCTORS.md").read_text()
    lines = [line.split(" #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
             for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def command(prefix: str) -> str:
    """The documented command `prefix` itself, or else the one documented command starting with
    `prefix` and a space."""
    lines = documented_commands()
    found = [c for c in lines if c == prefix] or [c for c in lines if c.startswith(prefix + " ")]
    assert len(found) == 1, (prefix, found)
    return found[0]


@dataclass
class Course:
    path: Path
    runs: list[subprocess.CompletedProcess]
    scores: dict[tuple[str, str], dict[str, float]]
    status_before: str
    status_after: str

    def outputs(self, sub: Submission, grade_id: str) -> str:
        path = self.path / "autograded" / sub.student / sub.assignment / \
            f"{sub.assignment}.ipynb"
        c = cell(nbformat.read(path, as_version=4), grade_id)
        return "\n".join(o.get("text", "") + o.get("evalue", "") for o in c.outputs)


def git_status() -> str:
    """Tracked changes, untracked and ignored files, one by one (ignored course/ included), but
    for the tools' own caches and the venv."""
    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tools = ("__pycache__", ".pytest_cache", ".ruff_cache", ".venv/")
    return "\n".join(line for line in out.splitlines() if not any(t in line for t in tools))


def run(course: Path, line: str, runs: list, expect: int = 0) -> subprocess.CompletedProcess:
    """One documented command, as an instructor types it at the repository root (as root, the
    test's files put in the course since step 0 are root's: the commands adopt them)."""
    env = {**os.environ, "BPTT_COURSE_DIR": str(course),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # `. .venv/bin/activate`
    words = [str(course) + w[len("course"):] if w.startswith("course/") else w
             for w in shlex.split(line)]
    proc = subprocess.run(words, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == expect, f"{line}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    runs.append(proc)
    return proc


def for_each(line: str, assignments) -> list[str]:
    return [line.replace(EXAMPLE, a) for a in assignments]


def submit(course: Path, sub: Submission) -> None:
    """The release with the answer cell replaced: by hand into submitted/, or for zip_collect
    into the assignment's LMS download, in the student's folder under a name of its own."""
    release = course / "release" / sub.assignment / f"{sub.assignment}.ipynb"
    nb = nbformat.read(release, as_version=4)
    cell(nb, "implementation").source = sub.source
    if sub.assignment in ZIPPED:
        archive = course / "downloaded" / sub.assignment / "archive"
        archive.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive / "lms-download.zip", "a") as z:
            z.writestr(f"{sub.student}/{sub.name}.ipynb", nbformat.writes(nb))
    else:
        dest = course / "submitted" / sub.student / sub.assignment
        dest.mkdir(parents=True)
        nbformat.write(nb, dest / f"{sub.assignment}.ipynb")


def grade_corpora(tmp_path_factory) -> Course:
    """The corpora through the workflow in a fresh course: conftest's `graded_corpora`, once
    per session (tests/test_report.py reads the same course)."""
    path, runs = tmp_path_factory.mktemp("term"), []
    synthetic.give_to_grader(path)  # step 0, once
    before = git_status()
    students = sorted({s.student for s in SUBMISSIONS})
    run(path, command("nbgrader db student add"), runs)
    (path / "students.csv").write_text("id,first_name,last_name,email\n" + "".join(
        f"{s},{s.title()},Student,{s}@example.org\n" for s in students))
    run(path, command("nbgrader db student import"), runs)
    for line in for_each(command("nbgrader generate_assignment"), ASSIGNMENTS):
        run(path, line, runs)
    for sub in SUBMISSIONS:
        submit(path, sub)
    for line in for_each(command("nbgrader zip_collect"), sorted(ZIPPED)):
        run(path, line, runs)
    for line in for_each(command("nbgrader autograde"), sorted(set(ASSIGNMENTS) - PARALLEL)):
        run(path, line, runs)
    run(path, command("python -m course_tools.autograde --all"), runs)
    for line in for_each(command("nbgrader generate_feedback"), ASSIGNMENTS):
        run(path, line, runs)
    run(path, command("nbgrader export"), runs)

    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{path / 'gradebook.db'}") as gb:
        scores = {(s.assignment, s.student): {
            g.name: g.auto_score for g in gb.find_submission_notebook(
                s.assignment, s.assignment, s.student).grades} for s in SUBMISSIONS}
    return Course(path, runs, scores, before, git_status())


@pytest.fixture(scope="module")
def course(graded_corpora) -> Course:
    return graded_corpora


def _id(sub):
    return f"{sub.assignment[:6]}-{sub.kind}-{sub.name}"


def test_the_corpora_are_big_enough():
    kinds = [s.kind for s in SUBMISSIONS]
    assert kinds.count("correct") >= 28 and kinds.count("wrong") >= 49
    assert {s.assignment for s in SUBMISSIONS if s.kind == "correct"} == set(ASSIGNMENTS)


@pytest.mark.parametrize("sub", SUBMISSIONS, ids=_id)
def test_each_answer_costs_exactly_its_mistakes(course, sub):
    """Correct answers: full marks. Wrong ones: 0 in the cells that test the mistake, full
    marks in every other cell."""
    got = course.scores[sub.assignment, sub.student]
    assert {k: got[k] for k in sub.scores} == sub.scores


@pytest.mark.parametrize("sub", [s for s in SUBMISSIONS if s.texts], ids=_id)
def test_feedback_says_what_is_wrong(course, sub):
    page = (course.path / "feedback" / sub.student / sub.assignment /
            f"{sub.assignment}.html").read_text()
    for grade_id, texts in sub.texts.items():
        for text in texts:
            assert text in course.outputs(sub, grade_id), (grade_id, text)
            assert html.escape(text, quote=False) in page


def _fingerprint(template: str) -> str:
    """The longest literal part of a hint's template: present whenever the hint is shown."""
    return max(re.split(r"\{[^{}]*\}", template.replace("{{", "{").replace("}}", "}")), key=len)


@pytest.mark.parametrize("sub", SUBMISSIONS, ids=_id)
def test_every_hint_is_a_claim(course, sub):
    """A hint appears exactly where its mistake is: in the cells the header names, nowhere else
    (so never in a correct answer's notebook)."""
    for grade_id in full_marks(sub.assignment):
        out = course.outputs(sub, grade_id)
        shown = {key for key, template in HINTS.items() if _fingerprint(template) in out}
        assert shown == sub.hints.get(grade_id, set()), (grade_id, out)


def test_every_hint_is_exercised():
    assert {key for s in SUBMISSIONS for keys in s.hints.values() for key in keys} == set(HINTS)


def test_correct_answers_show_no_failure(course):
    for sub in (s for s in SUBMISSIONS if s.kind == "correct"):
        for grade_id in full_marks(sub.assignment):
            assert "GradingFailure" not in course.outputs(sub, grade_id), (sub.name, grade_id)


def test_the_repository_is_untouched(course):
    assert course.status_after == course.status_before


def test_grades_land_in_the_course_directory(course):
    with open(course.path / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for sub in SUBMISSIONS:
        row = next(r for r in rows if r["student_id"] == sub.student
                   and r["assignment"] == sub.assignment)
        assert float(row["score"]) == pytest.approx(sum(sub.scores.values()))
    assert not (ROOT / "grades.csv").exists()


def test_commands_show_no_upstream_noise(course):
    for proc in course.runs:
        for noise in UPSTREAM_NOISE:
            assert noise not in proc.stderr, (proc.args, noise)


def test_parallel_autograde_shows_progress(course):
    out = next(p.stdout for p in course.runs if "course_tools.autograde" in p.args)
    n = sum(s.assignment in PARALLEL for s in SUBMISSIONS)
    assert re.search(rf"\[{n}/{n}, \d+:\d\d elapsed, ~0:00 left, 0 failed\]", out), out


def test_autograde_of_a_never_generated_assignment_says_what_to_run(tmp_path):
    """Step 2 skipped: one message naming the command to run, exit 2, for both commands."""
    runs = []
    synthetic.give_to_grader(tmp_path)
    run(tmp_path, command("nbgrader db student add"), runs)
    nb = nbformat.read(ROOT / "exercises" / EXAMPLE / f"{EXAMPLE}.ipynb", as_version=4)
    dest = tmp_path / "submitted" / "s1234567" / EXAMPLE
    dest.mkdir(parents=True)
    nbformat.write(nb, dest / f"{EXAMPLE}.ipynb")
    for line in (command("nbgrader autograde"),
                 f"python -m course_tools.autograde {EXAMPLE}"):
        proc = run(tmp_path, line, runs, expect=2)
        assert f"nbgrader generate_assignment {EXAMPLE} --force" in proc.stderr, proc.stderr
        assert proc.stderr.count("is not in the gradebook") == 1, proc.stderr
        assert "Traceback" not in proc.stderr


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal():
    """Redrawn in place on stderr: done/total, elapsed, remaining, failures; a failure is
    logged (with its log) as it happens."""
    ticks, logged, screen = iter([0.0, 10.0, 20.0, 20.0]), [], _Terminal()
    p = Progress(4, logged.append, screen, clock=lambda: next(ticks))
    p.update("a/s1", True)
    p.update("a/s2", False, "the log")
    assert screen.getvalue().endswith("\r\x1b[K[###############               ] "
                                      "2/4, 0:20 elapsed, ~0:20 left, 1 failed")
    assert logged == ["  a/s2: FAILED\nthe log"]
