"""Submission files reach the grader without a link being followed, and one bad job costs only
itself (issue 11, classes D and F).

`course_tools.safefiles` on its own, then a hostile class of one assignment beside an honest
classmate, graded by `python -m course_tools.autograde` (a job past its deadline included) and by
`nbgrader autograde` (the serial path, SafeAutograde): every hostile submission is refused or
failed with its reason, the classmate keeps full marks, and the gradebook, the classmate's files
and the host's files are untouched.
"""

import csv
import hashlib
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from course_tools import autograde as ag
from course_tools import synthetic
from course_tools.safefiles import Limits, Refused, check_tree, read_tree, write_tree

HONEST = "def square(x):\n    return x * x"
SAFE = "from course_tools.instructor import use_safe_autograde\nuse_safe_autograde()\n"
SPARSE = 50 * 2**30


# --- safefiles -----------------------------------------------------------------------------------

def test_read_tree_refuses_links_special_files_and_oversize_from_lstat(tmp_path):
    root = tmp_path / "sub"
    (root / "d").mkdir(parents=True)
    (root / "ok.txt").write_text("fine")
    (root / "d" / "nested.txt").write_text("also fine")
    (root / "loop").symlink_to(".")
    (root / "secret").symlink_to("/etc/shadow")
    (tmp_path / "outside").write_text("x")
    os.link(tmp_path / "outside", root / "hard")
    os.mkfifo(root / "pipe")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "sock"))
        with open(root / "sparse", "wb") as f:
            f.truncate(SPARSE)
        t = time.monotonic()
        with pytest.raises(Refused) as e:
            read_tree(root, limits=Limits(file_size=2**20))
        assert time.monotonic() - t < 5  # nothing followed, nothing big read
    msg = str(e.value)
    for found in ("loop: a symbolic link", "secret: a symbolic link", "hard: a hard link",
                  "pipe: a fifo", "sock: a socket", f"sparse: {SPARSE} bytes"):
        assert found in msg, msg
    assert "ok.txt" not in msg and "nested" not in msg
    with pytest.raises(Refused):
        check_tree(root, Limits(file_size=2**20))


def test_read_tree_reads_plain_files_and_caps_count_and_total(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.ipynb").write_bytes(b"1234")
    (tmp_path / "y").write_bytes(b"56")
    os.chmod(tmp_path / "y", 0o4755)
    assert read_tree(tmp_path, "p") == {"p/a/b/x.ipynb": (b"1234", 0o644), "p/y": (b"56", 0o755)}
    with pytest.raises(Refused, match="more than 1 files"):
        read_tree(tmp_path, limits=Limits(files=1))
    with pytest.raises(Refused, match="over 5 bytes in all"):
        read_tree(tmp_path, limits=Limits(total_size=5))


def test_read_tree_opens_the_path_below_trusted_without_following_links(tmp_path):
    (tmp_path / "ana" / "sq").mkdir(parents=True)
    (tmp_path / "ana" / "sq" / "sq.ipynb").write_text("{}")
    (tmp_path / "eve").symlink_to("ana")
    with pytest.raises(Refused, match="not a directory"):
        read_tree(tmp_path / "eve" / "sq", trusted=tmp_path)
    assert read_tree(tmp_path / "ana" / "sq", trusted=tmp_path) == {"sq.ipynb": (b"{}", 0o644)}


def test_write_tree_never_writes_through_an_existing_path(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    root = tmp_path / "out"
    root.mkdir()
    (root / "nb.ipynb").symlink_to(victim)
    (root / "d").symlink_to(tmp_path)
    with pytest.raises(FileExistsError):
        write_tree(root, {"nb.ipynb": (b"x", 0o644)})
    with pytest.raises(OSError):
        write_tree(root, {"d/victim": (b"x", 0o644)})
    for rel in ("../victim", "/abs", "a//b", "./x"):
        with pytest.raises(ValueError):
            write_tree(root, {rel: (b"x", 0o644)})
    assert victim.read_text() == "keep"
    write_tree(tmp_path / "new", {"a/b.txt": (b"y", 0o4640)})
    assert (tmp_path / "new" / "a" / "b.txt").read_bytes() == b"y"
    assert (tmp_path / "new" / "a" / "b.txt").stat().st_mode & 0o7777 == 0o640
    write_tree(tmp_path / "none", {})
    assert not (tmp_path / "none").exists()


def test_a_timestamp_that_is_no_time_is_ignored_and_a_real_one_is_read(tmp_path):
    import datetime
    import logging

    from nbgrader.coursedir import CourseDirectory

    from course_tools.instructor import submission_time

    coursedir = CourseDirectory(log=logging.getLogger("test"))
    assert submission_time(coursedir, tmp_path) is None                      # none
    for junk in ("the day after tomorrow, 25:61", "", "\xff\xfe", "9" * 40):
        (tmp_path / "timestamp.txt").write_text(junk)
        assert submission_time(coursedir, tmp_path) is None, junk
    (tmp_path / "timestamp.txt").write_text("2026-12-01 17:30:00.000000 UTC")
    assert submission_time(coursedir, tmp_path) == datetime.datetime(2026, 12, 1, 17, 30)


def test_the_autograded_notebook_replaces_a_link_instead_of_writing_through_it(tmp_path):
    from course_tools.instructor import FreshFilesWriter

    victim = tmp_path / "gradebook.db"
    victim.write_text("keep")
    out = tmp_path / "autograded"
    out.mkdir()
    (out / "sq.ipynb").symlink_to(victim)
    writer = FreshFilesWriter(build_directory=str(out))
    writer.write("{}", {"output_extension": ".ipynb"}, notebook_name="sq")
    assert victim.read_text() == "keep"
    assert not (out / "sq.ipynb").is_symlink() and (out / "sq.ipynb").read_text() == "{}"


# --- a hostile class ---------------------------------------------------------------------------

def _hostile_class(base, slow):
    """ana (honest) beside submissions that try to make the grader follow links or copy special
    or huge files; with `slow`, one that overruns its deadline."""
    synthetic.make_course(base, {"sq": synthetic.square_assignment()}, config=SAFE)
    sub = os.path.join(base, "course", "submitted")
    db = os.path.join(base, "course", "gradebook.db")
    hostile = {  # student: (what it adds beside an honest notebook, reason it fails)
        "gradebook": (lambda d: os.symlink(db, os.path.join(d, "sq.ipynb")), "symbolic link"),
        "classmate": (lambda d: os.symlink(os.path.join(sub, "ana", "sq", "sq.ipynb"),
                                           os.path.join(d, "notes.ipynb")), "symbolic link"),
        "hardlink": (lambda d: os.link(db, os.path.join(d, "data.db")), "hard link"),
        "loop": (lambda d: os.symlink(".", os.path.join(d, "a")), "symbolic link"),
        "fifo": (lambda d: os.mkfifo(os.path.join(d, "pipe")), "fifo"),
        "sparse": (lambda d: os.truncate(_touch(os.path.join(d, "big.bin")), SPARSE), "bytes"),
    }
    synthetic.submit(base, "sq", "ana", HONEST)
    for student, (attack, _) in hostile.items():
        synthetic.submit(base, "sq", student, HONEST)
        d = os.path.join(sub, student, "sq")
        if student == "gradebook":
            os.remove(os.path.join(d, "sq.ipynb"))
        attack(d)
    os.symlink(os.path.join(sub, "ana"), os.path.join(sub, "dirlink"))  # another's folder
    hostile["dirlink"] = (None, "not a directory")
    # links and a sparse file made by the kernel in its working directory (while that is the
    # autograded directory): refused, or not made at all
    synthetic.submit(base, "sq", "kernel", "import os\ntry:\n    os.symlink('/etc/passwd', "
                     "'leak.txt')\n    os.symlink('.', 'loop')\n    os.truncate(open('big.bin', "
                     f"'w').fileno(), {60 * 2**20})\nexcept OSError:\n    pass\n" + HONEST)
    if slow:  # sorts before ana: its result comes last, ana's must not wait for it
        synthetic.submit(base, "sq", "a_slow", "import time\ntime.sleep(28)\n" + HONEST)
        hostile["a_slow"] = (None, "deadline")
    return {s: reason for s, (_, reason) in hostile.items()}


def _touch(path):
    open(path, "w").close()
    return path


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _check_nothing_else_moved(base, before):
    course = os.path.join(base, "course")
    synthetic.nbgrader(base, "generate_feedback", "sq", check=False)
    assert os.path.isfile(os.path.join(course, "feedback", "ana", "sq", "sq.html"))
    assert _digest(os.path.join(course, "submitted", "ana", "sq", "sq.ipynb")) == before
    with sqlite3.connect(os.path.join(course, "gradebook.db")) as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    assert os.stat(os.path.join(course, "gradebook.db")).st_mode & 0o222  # not chmod'ed 0444
    assert synthetic.scores(base, "sq")["ana"] == {"test_public": 1.0, "test_hidden": 1.0}
    for step in ("autograded", "feedback"):
        for dirpath, _, files in os.walk(os.path.join(course, step)):
            for name in files:
                st = os.lstat(os.path.join(dirpath, name))
                assert stat.S_ISREG(st.st_mode) and st.st_size < 2**20, (dirpath, name)


def test_parallel_batch_refuses_each_attack_and_grades_the_classmate(tmp_path):
    base = str(tmp_path / "class")
    hostile = _hostile_class(base, slow=True)
    before = _digest(os.path.join(base, "course", "submitted", "ana", "sq", "sq.ipynb"))
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "course_tools.autograde", "sq", "--workers",
                             "2", "--deadline", "20"], cwd=base, env=synthetic._env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = f"sqlite:///{base}/course/gradebook.db"
    while proc.poll() is None and not _graded(db, "ana"):
        time.sleep(0.5)
    assert proc.poll() is None, "ana's result was written only when the batch ended"
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    assert time.monotonic() - start < 120
    with open(os.path.join(base, "course", ag.FAILURES), newline="") as f:
        rows = {r["student"]: r["reason"] for r in csv.DictReader(f)}
    assert set(hostile) <= set(rows) <= {*hostile, "kernel"}
    for student, reason in hostile.items():
        assert reason in rows[student], (student, rows[student])
        assert f"sq/{student}: FAILED" in out
        assert not os.path.exists(os.path.join(base, "course", "autograded", student, "sq"))
    assert "sq/ana: graded" in out
    _check_nothing_else_moved(base, before)


def _graded(db_url, student):
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            return gb.find_submission("sq", student) is not None
        except MissingEntry:
            return False


def test_serial_nbgrader_autograde_refuses_each_attack_and_grades_the_classmate(tmp_path):
    base = str(tmp_path / "class")
    hostile = _hostile_class(base, slow=False)
    before = _digest(os.path.join(base, "course", "submitted", "ana", "sq", "sq.ipynb"))
    start = time.monotonic()
    run = synthetic.nbgrader(base, "autograde", "sq", check=False)
    assert run.returncode == 1 and time.monotonic() - start < 120, run.stderr[-3000:]
    for student in hostile:
        assert f"Refused the submission of '{student}'" in run.stderr, student
        assert not os.path.exists(os.path.join(base, "course", "autograded", student, "sq"))
    _check_nothing_else_moved(base, before)


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's, harmless
def test_a_result_that_cannot_be_recorded_costs_only_itself(tmp_path, monkeypatch):
    base = str(tmp_path / "class")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()})
    for student in ("ana", "ben", "cai"):
        synthetic.submit(base, "sq", student, HONEST)
    record = ag.apply_state

    def flaky(gb, assignment, student, state):
        if student == "ben":
            raise RuntimeError("disk full")
        record(gb, assignment, student, state)

    monkeypatch.setattr(ag, "apply_state", flaky)
    logged = []
    done = ag.autograde(["sq"], workers=1, config_dir=base, log=logged.append)
    assert done == {("sq", "ana"): True, ("sq", "ben"): False, ("sq", "cai"): True}, logged
    scores = synthetic.scores(base, "sq")
    assert scores["ana"] == scores["cai"] == {"test_public": 1.0, "test_hidden": 1.0}
    assert "ben" not in scores
    with open(os.path.join(base, "course", ag.FAILURES), newline="") as f:
        assert [(r["student"], r["reason"]) for r in csv.DictReader(f)] == [
            ("ben", "its result could not be recorded: RuntimeError('disk full')")]
    assert any("sq/ben: FAILED" in line for line in logged)
