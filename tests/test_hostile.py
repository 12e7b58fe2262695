"""A hostile class (tests/hostile/, issue 11) graded through the documented instructor path.

Each file in tests/hostile/ is one attacker's submission, written from the student notebook
(`exercises/<a>/<a>.ipynb`) as a student could. Its header says:

    # class: A..H                      the attack class of issue 11
    # assignment: <assignment>
    # batch: <name>                    attackers of one batch cannot interfere with each other
    # attack: what it tries (continued on "#   " lines)
    # deserve <grade_id>: <points>     autograded points it deserves in that grade cell
    # deserve *: <points>              … in every grade cell not named ("full": the cell's points)
    # held: <grade_id> …               cells held at 0 for the instructor's review of the method
                                       (marked "needs manual grade"; none if the line is absent)
    # held?: <grade_id> …              … or 0 for their values (a tolerance's call)

Deserved points: the grade ids and their points are read from the student notebook's metadata
(code cells with `nbgrader.grade`); a header must cover every one of them (by name or `*`).
Usually 0 where the attack tries to earn or forge points, full marks where it answers honestly
(an attack on the grader's files, limits or collection that also solves the exercise keeps its
marks). A score missing from the gradebook counts as 0.

The body is split into sections by `# %% <kind> <args>` lines (the text before the first one is
the answer cell `implementation`; when it is empty, the attacker answers like the classmate):

    implementation | cell <grade_id>          code for that solution cell
    markdown <grade_id>                       its text (commented: each line "# " + text)
    before <grade_id> | append                a new code cell before that cell / at the end
    grade-cell <grade_id> <points>            a new code cell with forged grade metadata
    raw-notebook                              the submitted file's bytes instead (commented)
    file <name> | symlink <name> -> <target> | fifo <name> | sparse <name> <bytes>
                                              more entries in the student's submitted folder
    zip-extra <name>                          one more notebook in the student's LMS zip
                                              ({classmate} in the name: the classmate's id)

Each batch is a fresh course directory outside the repository (BPTT_COURSE_DIR) with the honest
classmate `CLASSMATE` (tests/hostile/honest/: plain correct answers) beside its attackers, run
with the commands of INSTRUCTORS.md: student import, generate_assignment, submissions copied into
submitted/ (or zips and zip_collect for batches with zip entries),
`python -m course_tools.autograde --all` (class D batches and the method batch: again, in
another fresh course, with `nbgrader autograde <a>` on each assignment, the serial path),
generate_feedback. Steps 1-2
(student import, generate_assignment) run once; each batch copies that course. `export` is left
out (it reads the gradebook the tests read). BACKGROUND batch runs (they mostly sleep) are graded
in threads while the others run.

Checked per batch: each attacker's points; the classmate's full marks; the batch ends within its
timeout; gradebook integrity and rows; the repository, submitted/, release/ and a root-only host
file beside the course unchanged (everything but autograded/, feedback/, references/, the
gradebook), disk use; autograded/ holding only the graded notebook and submitted plain files;
feedback holding HTML and the student's own submitted files unchanged, free of hidden-test
source, hidden reference values (of every run course/grading_runs.csv records, recomputed from
the secret and the run's nonce; JSON in the course directory but for the public self-checks'
seeds), files named *secret* there, the gradebook and the host file; that check fires on a
planted leak. Batch "replay": a regrade draws new hidden inputs, and a recorded nonce gives a
run's inputs again.
Class H: the formgrader's page of the submission, fetched over HTTP, has no live student markup.
E04-E08: no grader-side process (not a kernel) above 1 GiB.
"""

from __future__ import annotations

import bisect
import csv
import functools
import hashlib
import html
import json
import math
import os
import pwd
import re
import shlex
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_tools import synthetic

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CORPUS = ROOT / "tests" / "hostile"
CLASSMATE = "honest"
EXAMPLE = "ex33_4_manual_bptt"  # the assignment INSTRUCTORS.md's commands name
BATCH_TIMEOUT = {"hang": 100}   # seconds for the autograde command; default below
# batch runs (name, path) that mostly sleep: graded in threads while the others run
BACKGROUND = (("slow", "parallel"), ("spin", "parallel"))
DEFAULT_TIMEOUT = 420
GRADER_RSS_LIMIT = 1 << 30      # no grader-side process may need more (E: huge output)
LEGIT = ("autograded", "feedback", "gradebook.db", "grades.csv", "autograde_failures.csv",
         "grading_secret", "grading_runs.csv")

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------- the corpus

def grade_cells(assignment) -> dict[str, float]:
    """{grade id: points} of the autograded cells, from the student notebook's metadata."""
    nb = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"])
            for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("grade")}


@dataclass
class Attack:
    name: str
    cls: str
    assignment: str
    batch: str
    what: str
    deserved: dict[str, float]
    sections: list[tuple[str, str, str]]  # (kind, args, body)
    held: tuple[str, ...] = ()
    may_hold: tuple[str, ...] = ()

    @property
    def student(self):
        return self.name.lower()

    def has(self, kind):
        return any(k == kind for k, _, _ in self.sections)

    @classmethod
    def read(cls, path: Path) -> Attack:
        text = path.read_text()
        header = "".join(re.match(r"(?:#.*\n)*", text).group(0))
        head = dict(re.findall(r"^# (class|assignment|batch): (.+)$", header, re.M))
        what = " ".join(re.findall(r"^# (?:attack:|   ) (.+)$", header, re.M))
        cells = grade_cells(head["assignment"])
        wanted = dict(re.findall(r"^# deserve ([\w*]+): (\S+)$", header, re.M))
        assert set(wanted) - {"*"} <= set(cells), (path, wanted)
        assert "*" in wanted or set(wanted) == set(cells), f"{path}: say what each cell deserves"
        deserved = {}
        for g, points in cells.items():
            value = wanted.get(g, wanted.get("*"))
            deserved[g] = points if value == "full" else float(value)
        parts = re.split(r"^# %% (.*)$", text, flags=re.M)
        sections = [("implementation", "", parts[0][len(header):])]
        for marker, body in zip(parts[1::2], parts[2::2], strict=True):
            kind, _, args = marker.strip().partition(" ")
            sections.append((kind, args.strip(), body))
        assert head["class"] in "ABCDEFGH" and what, path
        held, may_hold = (tuple(" ".join(re.findall(rf"^# {key}: (.+)$", header, re.M)).split())
                          for key in ("held", r"held\?"))
        assert set(held + may_hold) <= {g for g, pts in deserved.items() if pts == 0}, path
        return cls(path.stem, head["class"], head["assignment"], head["batch"], what, deserved,
                   sections, held, may_hold)


def uncomment(body: str) -> str:
    return "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                     for line in body.strip("\n").splitlines()) + "\n"


ATTACKS = [Attack.read(p) for p in sorted(CORPUS.glob("*.py"))]
BATCHES = sorted({a.batch for a in ATTACKS})
SERIAL = {"method", "mem"}  # batches graded by serial `nbgrader autograde` too, besides D's
SERIAL_TOO = sorted({a.batch for a in ATTACKS if a.cls == "D" or a.batch in SERIAL})
RUNS = [(b, "parallel") for b in BATCHES] + [(b, "serial") for b in SERIAL_TOO]


def honest_answer(assignment) -> str:
    return (CORPUS / "honest" / f"{assignment}.py").read_text()


# ---------------------------------------------------------------- the documented commands

def documented_commands() -> list[str]:
    text = (ROOT / "INSTRUCTORS.md").read_text()
    lines = [line.split(" #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
             for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def command(prefix: str, assignment: str | None = None) -> str:
    lines = documented_commands()
    found = [c for c in lines if c == prefix] or [c for c in lines if c.startswith(prefix + " ")]
    assert len(found) == 1, (prefix, found)
    return found[0].replace(EXAMPLE, assignment) if assignment else found[0]


@dataclass
class Ran:
    line: str
    returncode: int | None   # None: killed at the timeout
    seconds: float
    stdout: str
    stderr: str
    grader_peak_rss: int = 0


def _children(pid) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def _grader_rss(root_pid) -> int:
    """The largest RSS among the command's processes that are not a student kernel (or what a
    kernel started): the grader's own memory."""
    kids, best, todo = _children(root_pid), 0, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"ipykernel" in cmd or b"bwrap" in cmd:  # (a kernel's sandbox)
            continue
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        best = max(best, int(rss.group(1)) * 1024 if rss else 0)
        todo.extend(kids.get(pid, []))
    return best


def run(course: Path, line: str, timeout: float = 600, watch: bool = False) -> Ran:
    """One documented command, typed at the repository root with the venv active, on a course
    that is the grading user's (what the test placed in it, too)."""
    synthetic.give_to_grader(course)
    env = {**os.environ, "BPTT_COURSE_DIR": str(course),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    words = [str(course) + w[len("course"):] if w.startswith("course/") else w
             for w in shlex.split(line)]
    start, peak = time.monotonic(), [0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(words, cwd=ROOT, env=env, stdout=out, stderr=err,
                                start_new_session=True)
        stop = threading.Event()

        def watcher():
            while not stop.wait(0.2):
                peak[0] = max(peak[0], _grader_rss(proc.pid))

        if watch:
            threading.Thread(target=watcher, daemon=True).start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started
            proc.wait()
        stop.set()
        out.seek(0)
        err.seek(0)
        return Ran(line, rc, time.monotonic() - start, out.read(), err.read(), peak[0])


# ---------------------------------------------------------------- submitting

def released(course: Path, assignment: str):
    return nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)


def index_of(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells)
                if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def build_notebook(course: Path, attack: Attack) -> str:
    nb = released(course, attack.assignment)
    appended = []
    for kind, args, body in attack.sections:
        if kind == "implementation" and not body.strip("\n#"):
            nb.cells[index_of(nb, "implementation")].source = honest_answer(attack.assignment)
        elif kind in ("implementation", "cell"):
            nb.cells[index_of(nb, args or "implementation")].source = body.strip("\n")
        elif kind == "markdown":
            nb.cells[index_of(nb, args)].source = uncomment(body)
        elif kind == "before":
            nb.cells.insert(index_of(nb, args), nbformat.v4.new_code_cell(body.strip("\n")))
        elif kind == "append":
            appended.append(nbformat.v4.new_code_cell(body.strip("\n")))
        elif kind == "grade-cell":
            grade_id, points = args.split()
            appended.append(nbformat.v4.new_code_cell(body.strip("\n"), metadata={"nbgrader": {
                "grade": True, "grade_id": grade_id, "locked": True, "points": float(points),
                "schema_version": 3, "solution": False, "task": False}}))
    nb.cells.extend(appended)
    if attack.has("raw-notebook"):
        return next(uncomment(b) for k, _, b in attack.sections if k == "raw-notebook")
    return nbformat.writes(nb)


def honest_notebook(course: Path, assignment: str) -> str:
    nb = released(course, assignment)
    nb.cells[index_of(nb, "implementation")].source = honest_answer(assignment)
    return nbformat.writes(nb)


def place_files(dest: Path, attack: Attack) -> None:
    """The other entries of the attacker's submitted folder (an LMS per-student folder)."""
    for kind, args, body in attack.sections:
        if kind == "file":
            (dest / args).write_text(uncomment(body))
        elif kind == "symlink":
            name, target = (s.strip() for s in args.split("->"))
            if (dest / name).exists() or (dest / name).is_symlink():
                (dest / name).unlink()
            os.symlink(target.replace("{repo}", str(ROOT)), dest / name)
        elif kind == "fifo":
            os.mkfifo(dest / args)
        elif kind == "sparse":
            name, size = args.split()
            with open(dest / name, "wb") as f:
                f.truncate(int(size))


# ---------------------------------------------------------------- the state of the host

# the tools' caches and what the tests themselves write (the site, screenshots: `make test` runs
# the site's tests beside these)
SKIP = ("__pycache__", ".pytest_cache", ".ruff_cache", ".venv", "_build", "test-artifacts", ".git")


def tree_hash(top: Path, skip=SKIP) -> dict[str, str]:
    """{relative path: mode + content (or link target)} of every entry under top."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                what = "link:" + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                what = "dir" if stat.S_ISDIR(st.st_mode) else f"special:{st.st_mode:o}"
            out[str(p.relative_to(top))] = f"{st.st_mode:o} {what}"
    return out


def course_state(course: Path) -> dict[str, str]:
    """The course directory but for what grading legitimately writes."""
    return {k: v for k, v in tree_hash(course.parent, skip=()).items()
            if not k.startswith(tuple(f"course/{p}" for p in LEGIT))}


def disk_usage(top: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(top):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


# ---------------------------------------------------------------- one batch

@dataclass
class Batch:
    name: str
    path: str                           # "parallel" | "serial"
    course: Path
    attacks: list[Attack]
    assignments: list[str]
    grading: list[Ran] = field(default_factory=list)
    steps: list[Ran] = field(default_factory=list)
    scores: dict = field(default_factory=dict)   # (student, assignment) -> {grade_id: score}
    db_error: str = ""
    host_before: dict = field(default_factory=dict)
    host_after: dict = field(default_factory=dict)
    course_before: dict = field(default_factory=dict)
    course_after: dict = field(default_factory=dict)
    usage: int = 0

    def log(self, student: str) -> str:
        """What the grading commands said about `student` (or their ends), for a failure."""
        text = "\n".join(r.stdout + r.stderr for r in self.grading + self.steps)
        lines = [line for line in text.splitlines() if student in line]
        return "\n".join(lines[-8:])[-2000:] or text[-2000:]


@functools.cache
def template() -> Path:
    """Steps 1-2 of INSTRUCTORS.md once for the whole corpus: every student imported, every
    attacked assignment generated. Each batch grades in its own copy (a fresh course)."""
    course = Path(tempfile.mkdtemp(prefix="hostile-template-")) / "course"
    course.mkdir()
    (course / "students.csv").write_text("id,first_name,last_name,email\n" + "".join(
        f"{s},{s.title()},Student,{s}@example.org\n"
        for s in [CLASSMATE, *(a.student for a in ATTACKS)]))
    ran = [run(course, command("nbgrader db student import"))]
    ran += [run(course, command("nbgrader generate_assignment", a))
            for a in sorted({a.assignment for a in ATTACKS})]
    for r in ran:
        assert r.returncode == 0, (r.line, r.stderr[-3000:])
    return course


def grade_batch(name: str, path: str) -> Batch:
    attacks = [a for a in ATTACKS if a.batch == name]
    assignments = sorted({a.assignment for a in attacks})
    top = Path(tempfile.mkdtemp(prefix=f"hostile-{name}-{path}-"))
    course = top / "course"
    shutil.copytree(template(), course, symlinks=True)
    b = Batch(name, path, course, attacks, assignments)
    canary = top / "canary.txt"  # a host file that only root may read
    canary.write_text("host secret: not for students\n")
    canary.chmod(0o600)
    b.host_before = tree_hash(ROOT)
    zipped = any(a.has("zip-extra") for a in attacks)
    submissions = [(CLASSMATE, a, honest_notebook(course, a), None) for a in assignments]
    submissions += [(a.student, a.assignment, build_notebook(course, a), a) for a in attacks]
    for student, assignment, notebook, attack in submissions:
        if zipped:
            archive = course / "downloaded" / assignment / "archive"
            archive.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(archive / f"{student}.zip", "w") as z:
                # the LMS download of INSTRUCTORS.md step 3: one folder per student
                z.writestr(f"{student}/{assignment}.ipynb", notebook)
                for kind, args, body in attack.sections if attack else ():
                    if kind == "zip-extra":
                        nb = released(course, assignment)
                        nb.cells[index_of(nb, "implementation")].source = body.strip("\n")
                        z.writestr(f"{student}/{args.format(classmate=CLASSMATE)}",
                                   nbformat.writes(nb))
        else:
            dest = course / "submitted" / student / assignment
            dest.mkdir(parents=True)
            (dest / f"{assignment}.ipynb").write_text(notebook)
            if attack:
                place_files(dest, attack)
    if zipped:
        for a in assignments:
            b.steps.append(run(course, command("nbgrader zip_collect", a), timeout=300))
    b.course_before = course_state(course)
    timeout = BATCH_TIMEOUT.get(name, DEFAULT_TIMEOUT)
    if path == "parallel":
        b.grading.append(run(course, command("python -m course_tools.autograde --all"),
                             timeout=timeout, watch=True))
    else:
        for a in assignments:
            b.grading.append(run(course, command("nbgrader autograde", a), timeout=timeout,
                                 watch=True))
    for a in assignments:
        b.steps.append(run(course, command("nbgrader generate_feedback", a), timeout=300))
    b.host_after, b.course_after = tree_hash(ROOT), course_state(course)
    b.usage = disk_usage(top)
    b.scores, b.db_error = read_scores(course / "gradebook.db")
    return b


def read_scores(db: Path) -> tuple[dict, str]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        check = con.execute("PRAGMA integrity_check").fetchone()[0]
        rows = con.execute(
            "select s.student_id, a.name, bc.name, g.auto_score from grade g "
            "join base_cell bc on g.cell_id = bc.id "
            "join grade_cells gc on gc.id = bc.id and gc.cell_type = 'code' "
            "join submitted_notebook n on g.notebook_id = n.id "
            "join submitted_assignment s on n.assignment_id = s.id "
            "join assignment a on s.assignment_id = a.id").fetchall()
        con.close()
    except sqlite3.Error as e:
        return {}, f"{type(e).__name__}: {e}"
    scores: dict = {}
    for student, assignment, grade_id, score in rows:
        scores.setdefault((student, assignment), {})[grade_id] = score
    return scores, "" if check == "ok" else f"integrity_check: {check}"


def read_waiting(db: Path) -> dict[tuple[str, str], set[str]]:
    """{(student, assignment): the code grade cells held for review: marked "needs manual grade"
    with a score (nbgrader marks a cell it could not score, auto_score NULL, on its own)}."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute(
        "select s.student_id, a.name, bc.name from grade g "
        "join base_cell bc on g.cell_id = bc.id "
        "join grade_cells gc on gc.id = bc.id and gc.cell_type = 'code' "
        "join submitted_notebook n on g.notebook_id = n.id "
        "join submitted_assignment s on n.assignment_id = s.id "
        "join assignment a on s.assignment_id = a.id "
        "where g.needs_manual_grade and g.auto_score is not null").fetchall()
    con.close()
    waiting: dict = {}
    for student, assignment, grade_id in rows:
        waiting.setdefault((student, assignment), set()).add(grade_id)
    return waiting


_GRADED: dict[tuple[str, str], Batch] = {}
_POOL = ThreadPoolExecutor(max_workers=len(BACKGROUND))
_STARTED: dict[tuple[str, str], Future] = {}


def graded(name: str, path: str) -> Batch:
    """The batch `name` graded on `path`, once per session (the BACKGROUND batches start, in a
    thread, as soon as the first batch is asked for: they sleep, the others compute)."""
    if (name, path) not in _GRADED:
        template()
        for key in (r for r in BACKGROUND if r in RUNS):
            if key not in _STARTED and key not in _GRADED:
                _STARTED[key] = _POOL.submit(grade_batch, *key)
        future = _STARTED.pop((name, path), None)
        _GRADED[name, path] = future.result() if future else grade_batch(name, path)
    return _GRADED[name, path]


def _run_id(r):
    return f"{r[0]}-{r[1]}"


@pytest.fixture(scope="module", autouse=True)
def _remove_courses():
    """Each batch's course (sparse files may have become real bytes) goes at the end;
    HOSTILE_KEEP=1 keeps them to look at."""
    yield
    for future in _STARTED.values():
        _GRADED.setdefault(("?", str(id(future))), future.result())
    if os.environ.get("HOSTILE_KEEP") != "1":
        for b in _GRADED.values():
            shutil.rmtree(b.course.parent, ignore_errors=True)
        if template.cache_info().currsize:
            shutil.rmtree(template().parent, ignore_errors=True)


# ---------------------------------------------------------------- what must hold

def test_the_corpus_covers_every_class():
    assert len(ATTACKS) >= 30
    assert {a.cls for a in ATTACKS} == set("ABCDEFGH")
    for a in ATTACKS:  # an honest classmate for every assignment attacked
        assert (CORPUS / "honest" / f"{a.assignment}.py").exists(), a.name


GRADED = [pytest.param(a, path, id=f"{a.name}-{path}")
          for a in ATTACKS for path in ("parallel", "serial")
          if path == "parallel" or a.batch in SERIAL_TOO]


@pytest.mark.parametrize("attack, path", GRADED)
def test_attacker_gets_exactly_its_deserved_points(attack, path):
    b = graded(attack.batch, path)
    got = b.scores.get((attack.student, attack.assignment), {})
    assert {g: got.get(g) or 0.0 for g in attack.deserved} == attack.deserved, (
        attack.what, b.log(attack.student))
    assert set(got) <= set(attack.deserved), f"grade rows nobody released: {set(got)}"


@pytest.mark.parametrize("run_", RUNS, ids=_run_id)
def test_the_batch_completes_and_the_classmate_does_not_move(run_):
    b = graded(*run_)
    for r in b.grading:
        assert r.returncode is not None, f"{r.line}: still running after {r.seconds:.0f} s"
    for a in b.assignments:
        assert b.scores.get((CLASSMATE, a)) == grade_cells(a), (a, b.log(CLASSMATE))


@pytest.mark.parametrize("run_", RUNS, ids=_run_id)
def test_only_a_method_in_doubt_waits_for_a_person(run_):
    """Issue 23: a right answer whose method the source leaves in doubt is held at 0 and marked
    "needs manual grade" for the formgrader, in the parallel and the serial path alike; no
    other cell, and nothing of the classmate's."""
    b = graded(*run_)
    waiting = read_waiting(b.course / "gradebook.db")
    for a in b.attacks:
        got = waiting.get((a.student, a.assignment), set())
        assert set(a.held) <= got <= set(a.held + a.may_hold), a.name
    assert not any(waiting.get((CLASSMATE, a)) for a in b.assignments)


@pytest.mark.parametrize("run_", RUNS, ids=_run_id)
def test_the_gradebook_stays_intact(run_):
    b = graded(*run_)
    assert not b.db_error
    con = sqlite3.connect(f"file:{b.course / 'gradebook.db'}?mode=ro", uri=True)
    students = {r[0] for r in con.execute("select id from student")}
    cells = {(r[0], r[1]) for r in con.execute(
        "select a.name, bc.name from grade_cells gc join base_cell bc on gc.id = bc.id "
        "join notebook n on bc.notebook_id = n.id join assignment a on n.assignment_id = a.id "
        "where gc.cell_type = 'code'")}
    con.close()
    expected = {CLASSMATE, *(a.student for a in ATTACKS)}  # the template imported them all
    assert expected <= students and len(students - expected) <= 1  # + the documented example
    assert cells == {(a, g) for a in {x.assignment for x in ATTACKS} for g in grade_cells(a)}


@pytest.mark.parametrize("run_", RUNS, ids=_run_id)
def test_no_host_file_changes(run_):
    b = graded(*run_)
    assert b.host_after == b.host_before, "the repository changed"
    changed = {k for k in b.course_before.keys() | b.course_after.keys()
               if b.course_before.get(k) != b.course_after.get(k)}
    assert not changed, sorted(changed)[:20]
    assert b.usage < 200 * 2**20, f"the course now takes {b.usage / 2**20:.0f} MiB on disk"


@pytest.mark.parametrize("run_", RUNS, ids=_run_id)
def test_nothing_comes_back_from_the_sandbox(run_):
    """autograded/<student>/<a>/ holds the graded notebook and what the student submitted as
    plain files: nothing the kernel left in its working directory (links, pipes, files)."""
    b = graded(*run_)
    top = b.course / "autograded"
    for student_dir in top.iterdir() if top.is_dir() else ():
        for graded_dir in student_dir.iterdir():
            submitted = b.course / "submitted" / student_dir.name / graded_dir.name
            plain = {p.name for p in (submitted.iterdir() if submitted.is_dir() else ())
                     if p.is_file() and not p.is_symlink()}
            allowed = {f"{graded_dir.name}.ipynb", "timestamp.txt"} | plain
            extra = sorted(p.name for p in graded_dir.iterdir()
                           if p.name not in allowed or p.is_symlink() or not p.is_file())
            assert not extra, f"{student_dir.name}: {extra[:10]}"


def hidden_references(course: Path, assignments) -> list[tuple[str, str, str, dict]]:
    """[(student, assignment, nonce, reference)] of every hidden input drawn in `course`: for
    each grading run its RUNS file records, recomputed from the course secret and the run's nonce
    (not for the exercises that train models: too slow to redo here)."""
    from course_tools.references import reference
    from course_tools.verdicts import RUNS, VerdictExecute, hidden_seed, public_calls, run_key

    key_file, runs = course / "grading_secret", course / RUNS
    if not (key_file.is_file() and runs.is_file()):
        return []
    secret, per_call, out = key_file.read_bytes(), VerdictExecute().hidden_per_call, []
    with runs.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        a, student, key = row["assignment"], row["student"], run_key(secret, row["nonce"])
        if a not in assignments or a.startswith(("ex33_3", "ex33_5")):
            continue
        nb = nbformat.read(ROOT / "solutions" / a / f"{a}.ipynb", as_version=4)
        for c in nb.cells:
            meta = c.metadata.get("nbgrader", {})
            if c.cell_type != "code" or not meta.get("grade"):
                continue
            for i, (exercise, _, public) in enumerate(public_calls(c.source)):
                for j in range(per_call.get(exercise, 2)):
                    seed = hidden_seed(key, student, row["notebook"], meta["grade_id"],
                                       i * 100 + j, public)
                    out.append((student, a, row["nonce"], reference(exercise, seed)))
    return out


def secrets(b: Batch) -> tuple[list[str], list[float]]:
    """(hidden-test source lines and the course secret, sorted hidden reference values
    (`telling`): the references of every student's hidden inputs in every recorded run, and any
    JSON in the course)."""
    lines, values_of = [], [ref for *_, ref in hidden_references(b.course, b.assignments)]
    if (b.course / "grading_secret").is_file():
        lines.append((b.course / "grading_secret").read_bytes().hex())
    for a in b.assignments:
        nb = nbformat.read(ROOT / "solutions" / a / f"{a}.ipynb", as_version=4)
        for c in nb.cells:
            for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS",
                                    c.source, re.S):
                lines += [s.strip() for s in block.splitlines() if len(s.strip()) >= 12]
    public = {(a, s) for a in b.assignments for s in re.findall(
        r"seed=(\d+)", (ROOT / "exercises" / a / f"{a}.ipynb").read_text())}
    values = [v for data in values_of for v in telling(_numbers(data))]
    for p in b.course.rglob("*"):
        rel = p.relative_to(b.course).parts
        if rel[0] in ("submitted", "autograded", "feedback", "release", "downloaded"):
            continue
        if p.is_file() and "secret" in p.name.lower():  # (binary: its hex is a needle too)
            lines += [p.read_bytes().hex(), *(s.strip() for s in p.read_text(
                errors="replace").splitlines() if len(s.strip()) >= 12)]
        if p.is_file() and p.suffix == ".json":
            m = re.match(r"(ex33_\d)-(\d+)$", p.stem)
            if m and any(a.startswith(m.group(1)) and s == m.group(2) for a, s in public):
                continue  # a public self-check's reference
            try:
                data = json.loads(p.read_text())
            except (ValueError, UnicodeDecodeError):
                continue
            values += telling(_numbers(data))
    return lines, sorted(values)


def telling(numbers) -> list[float]:
    """The `numbers` a leak check looks for: neither tiny nor round (at 9 digits)."""
    return [v for v in numbers
            if abs(v) > 1e-3 and not re.match(r"-?\d\.\d\d000000e", f"{v:.8e}")]


def hidden_in(text: str, values: list[float]) -> list[str]:
    """The numbers written in `text` with 9 significant digits or more (7 match by coincidence
    among thousands) that equal one of the sorted `values` to the precision written."""
    found = []
    for n in re.findall(r"-?(?:0\.0*[1-9]\d{8,}|[1-9]\d*\.\d{8,})(?:e[-+]?\d+)?", text):
        w, digits = float(n), len(re.sub(r"^-?0*\.?0*|[.]|e.*$", "", n))
        if w == 0:
            continue
        tol = 0.5 * 10 ** (math.floor(math.log10(abs(w))) - digits + 1)
        i = bisect.bisect_left(values, w - tol)
        if i < len(values) and values[i] <= w + tol:
            found.append(n)
    return found


def _numbers(x):
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, list):
        return [v for item in x for v in _numbers(item)]
    return [float(x)] if isinstance(x, int | float) and not isinstance(x, bool) else []


def leaks(b: Batch, feedback: Path) -> list[str]:
    """What the feedback files under `feedback` (batch `b`'s) hold that they must not."""
    lines, values = secrets(b)
    assert lines, "found neither hidden test source nor a course secret to look for"
    found = []
    for p in sorted(feedback.rglob("*")):
        where = str(p.relative_to(feedback))
        if p.is_symlink() or not p.is_file():
            if p.is_symlink() or not p.is_dir():
                found.append(f"{where}: not a plain file")
            continue
        if p.suffix != ".html":
            # nbgrader returns the student's own files (their timestamp.txt) with the feedback
            own = b.course / "submitted" / where
            if not (own.is_file() and not own.is_symlink()
                    and own.read_bytes() == p.read_bytes()):
                found.append(f"{where}: a file the grader collected")
            continue
        text = html.unescape(p.read_text(errors="replace"))
        found += [f"{where}: hidden test source {line!r}" for line in lines if line in text][:1]
        if leaked := hidden_in(text, values):
            found.append(f"{where}: hidden values {leaked[:3]}")
        found += [f"{where}: {what}" for what in ("SQLite format 3", "host secret")
                  if what in text]
    return found


@pytest.mark.parametrize("run_", RUNS, ids=_run_id)
def test_no_feedback_leaks_hidden_tests_references_or_files(run_):
    b = graded(*run_)
    found = leaks(b, b.course / "feedback")
    assert not found, "\n".join(found[:40])


def test_the_leak_check_fires_on_a_planted_leak(tmp_path):
    """The check above finds one hidden value of a student's run planted into a copy of the
    feedback, written as NumPy and Python write a float (the check once compared numbers written
    at 9 digits with numbers written at 7, and never fired)."""
    b = graded("replay", "parallel")
    student, a, _, ref = hidden_references(b.course, b.assignments)[0]
    # a value whose 9th significant digit is not 0: "{:.9g}" drops a trailing 0, and the check
    # reads numbers of 9 digits or more only
    value = next(v for row in ref["xs"] for v in row if abs(v) >= 0.1 and f"{abs(v):.8e}"[9] != "0")
    assert not leaks(b, b.course / "feedback")
    for i, written in enumerate((repr(value), str(np.float64(value)), f"{value:.9g}",
                                 f"{value:.10f}", f"{value:.12e}")):
        planted = tmp_path / str(i)
        shutil.copytree(b.course / "feedback", planted)
        page = planted / student / a / f"{a}.html"
        page.write_text(page.read_text().replace("</body>", f"<pre>{written}</pre></body>"))
        assert any("hidden values" in f for f in leaks(b, planted)), written


def recorded_inputs(course: Path, attack: Attack) -> set[str]:
    """The xs B10's forward and backward were called with, as its last cell printed them."""
    a = attack.assignment
    nb = nbformat.read(course / "autograded" / attack.student / a / f"{a}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return {json.dumps(r["xs"]) for r in json.loads(text.split("RECORDED ", 1)[1])}


def test_a_regrade_draws_new_inputs_and_each_run_is_reproducible(tmp_path):
    """B10 printed every input its functions saw (in the autograded notebook, the instructor's;
    its feedback shows none: test_no_feedback_leaks_…). Regraded with the documented command, it
    sees other hidden inputs; in each run, the hidden inputs it saw are those that the run's
    recorded nonce and the course secret give; and graded with a recorded nonce
    (INSTRUCTORS.md), it sees that run's inputs again."""
    b = graded("replay", "parallel")
    attack = next(a for a in b.attacks if a.name.startswith("B10"))
    course = tmp_path / "course"
    shutil.copytree(b.course, course, symlinks=True)
    ran = run(course, command("python -m course_tools.autograde --all --force"))
    assert ran.returncode == 0, ran.stderr[-3000:]
    drawn: dict[str, set[str]] = {}  # nonce -> xs, in the order of the runs
    for student, _, nonce, ref in hidden_references(course, [attack.assignment]):
        if student == attack.student:
            drawn.setdefault(nonce, set()).add(json.dumps(ref["xs"]))
    assert len(drawn) == 2, drawn.keys()
    (nonce, first), (_, second) = drawn.items()
    seen = [recorded_inputs(b.course, attack), recorded_inputs(course, attack)]
    assert first <= seen[0] and second <= seen[1]
    assert not first & seen[1] and not second & seen[0]
    again = run(course, f"nbgrader autograde {attack.assignment} --student {attack.student} "
                        f"--force --VerdictExecute.run_nonce={nonce}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert recorded_inputs(course, attack) == seen[0]


@pytest.mark.parametrize("path", ["parallel", "serial"])
def test_no_grader_process_swells_on_a_huge_output(path):
    """E04-E08 (batch "mem"): a huge message, a message of many parts, 150 whole messages left
    unread on stdin, endless empty parts on stdin and on iopub; graded in parallel and by serial
    `nbgrader autograde` (each notebook in a child of its own)."""
    b = graded(next(a.batch for a in ATTACKS if a.name.startswith("E04")), path)
    peak = max(r.grader_peak_rss for r in b.grading)
    assert peak < GRADER_RSS_LIMIT, f"a grader process reached {peak / 2**30:.2f} GiB"


# ---------------------------------------------------------------- class H: the formgrader

@pytest.fixture(scope="module")
def formgrader_pages():
    """The formgrader's page of every class H submission, as the instructor's browser gets it."""
    import socket

    b = graded(next(a.batch for a in ATTACKS if a.cls == "H"), "parallel")
    token = "hostile-test-token"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pw = pwd.getpwnam("nobody")   # INSTRUCTORS.md step 5: the server runs unprivileged
    os.chown(b.course.parent, pw.pw_uid, pw.pw_gid)  # (its canary stays root's, 0600)
    for d, _, files in os.walk(b.course):
        for name in [d, *(os.path.join(d, f) for f in files)]:
            os.chown(name, pw.pw_uid, pw.pw_gid)
    server = subprocess.Popen(
        [str(BIN / "python"), "-m", "course_tools.formgrader", "--user=nobody", f"--port={port}",
         f"--IdentityProvider.token={token}"],
        cwd=ROOT, env={**os.environ, "BPTT_COURSE_DIR": str(b.course)},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    import urllib.request

    url = f"http://127.0.0.1:{port}"
    pages = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "jupyter server did not start in 60 s"
                time.sleep(0.5)
        con = sqlite3.connect(f"file:{b.course / 'gradebook.db'}?mode=ro", uri=True)
        for a in (a for a in b.attacks if a.cls == "H"):
            (sid,) = con.execute(
                "select n.id from submitted_notebook n join submitted_assignment s on "
                "n.assignment_id = s.id where s.student_id = ?", (a.student,)).fetchone()
            with urllib.request.urlopen(f"{url}/formgrader/submissions/{sid}/?token={token}",
                                        timeout=60) as r:
                pages[a.name] = r.read().decode()
        con.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return pages


@pytest.mark.parametrize("attack", [a for a in ATTACKS if a.cls == "H"], ids=lambda a: a.name)
def test_formgrader_shows_student_html_inert(formgrader_pages, attack):
    page = formgrader_pages[attack.name]
    marker = "hostile" + attack.name[:3]
    assert marker in page, "the submission's page does not show the answer"
    live = re.findall(r"<script[^>]*>[^<]*" + marker + r"|<[a-z]+[^>]*\son\w+\s*=[^>]*" + marker,
                      page, re.I)
    assert not live, live[:3]
