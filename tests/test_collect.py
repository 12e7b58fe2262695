"""The instructor's path to grading, as INSTRUCTORS.md steps 0-4 run it.

`nbgrader zip_collect` (step 3; issue 11, class G): the student id is the LMS download's top-level
folder, never a file name the student chose, and no upload can create, replace or block a
classmate's submission; a download zipped once more is read from inside its folder, and one in
which nothing is to be collected fails, saying what was expected and found (issue 22). What root
puts in the course after step 0 is adopted by the grading commands, with no `chown` after each
step; `python -m course_tools.autograde --all` names each assignment it skips.
"""

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course_tools import synthetic

ROOT = Path(__file__).resolve().parents[1]
A = "ex33_5_norm_rescaling"
CAP = 100_000


def _link(z, name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z.writestr(info, target)


def zip_collect(course, *args):
    """`nbgrader zip_collect ARGS` for course directory `course`, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", "zip_collect", *args], cwd=ROOT,
        env={**os.environ, "BPTT_COURSE_DIR": str(course)}, capture_output=True, text=True,
        timeout=300)


def submitted(course):
    """{path under submitted/: bytes} of every file collected."""
    top = course / "submitted"
    return {p.relative_to(top).as_posix(): p.read_bytes() for p in top.rglob("*") if p.is_file()}


def test_identity_is_the_lms_folder_and_no_upload_touches_a_classmate(tmp_path):
    archive = tmp_path / "downloaded" / A / "archive"
    archive.mkdir(parents=True)
    own = {s: f'{{"student": "{s}"}}'.encode() for s in ("ana", "ben", "mal", "eve", "zed")}
    with zipfile.ZipFile(archive / "lms-download.zip", "w") as z:
        z.writestr(f"ana/{A}.ipynb", own["ana"])
        z.writestr("ben/My Notebook (1).ipynb", own["ben"])          # any name: still ben's
        z.writestr(f"mal/ana--{A}.ipynb", own["mal"])                # named like a classmate's
        z.writestr("mal/notes.txt", "not a notebook")
        z.writestr(f"eve/{A}.ipynb", own["eve"])                     # two notebooks: the one
        z.writestr(f"eve/sub/ana--{A}.ipynb", b"forged")             # named like the release
        z.writestr("zed/a.ipynb", own["zed"])                        # two, neither: zed's
        z.writestr("zed/b.ipynb", own["zed"])                        # problem only
        z.writestr(f"eve/../ana/{A}.ipynb", b"forged")               # out of eve's folder
        z.writestr(f"../ana/{A}.ipynb", b"forged")
        z.writestr(f"/abs/ana/{A}.ipynb", b"forged")
        _link(z, f"lee/{A}.ipynb", "/etc/shadow")                    # a link member
        z.writestr(f"ana--{A}.ipynb", b"forged")                     # in no student's folder
        z.writestr(f"kim/{A}.ipynb", b"x" * (CAP + 1))               # over the per-file cap
        z.writestr(f"..hidden/{A}.ipynb", b"forged")                 # not a student id
    synthetic.give_to_grader(tmp_path)
    run = zip_collect(tmp_path, A, f"--Intake.max_file_size={CAP}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert submitted(tmp_path) == {f"{s}/{A}/{A}.ipynb": own[s]
                                   for s in ("ana", "ben", "mal", "eve")}, run.stderr
    for said in ("Skipped student zed: 2 notebooks", "Student eve: several notebooks",
                 f"Skipped eve/../ana/{A}.ipynb",
                 f"Skipped ../ana/{A}.ipynb", "a link or special file",
                 f"Skipped /abs/ana/{A}.ipynb", f"Skipped kim/{A}.ipynb",
                 "over the 100000 bytes per file", "Skipped folder '..hidden'"):
        assert said in run.stderr, (said, run.stderr[-4000:])
    extracted = tmp_path / "downloaded" / A / "extracted"
    assert not any(p.is_symlink() for p in extracted.rglob("*"))
    assert all(p.stat().st_mode & 0o7777 == 0o644 for p in extracted.rglob("*") if p.is_file())
    assert not (tmp_path / "abs").exists() and not (tmp_path / "downloaded" / "ana").exists()


def test_extracted_files_never_follow_a_link_left_in_the_way(tmp_path):
    """A second download extracted over a stale link does not write through it."""
    from course_tools.collect import LmsExtractor

    victim = tmp_path / "victim"
    victim.write_text("keep")
    archive, extracted = tmp_path / "archive", tmp_path / "extracted"
    (extracted / "ana").mkdir(parents=True)
    archive.mkdir()
    (extracted / "ana" / f"{A}.ipynb").symlink_to(victim)
    with zipfile.ZipFile(archive / "d.zip", "w") as z:
        z.writestr(f"ana/{A}.ipynb", b"new")
    LmsExtractor().extract(str(archive), str(extracted))
    assert victim.read_text() == "keep"


def test_what_root_puts_in_the_course_later_is_adopted_and_a_wrapped_download_read(tmp_path):
    """Step 0 once; then root writes the students CSV (0600), and the LMS download zipped once
    more (`Assignment 5/<student>/…`, with macOS's `__MACOSX/`) in directories of its own. The
    commands adopt them, the wrapping folder is seen through, by the students imported; a hard
    link and a symbolic link root put there to a file elsewhere stay as they are."""
    course = tmp_path / "course"
    synthetic.give_to_grader(course)
    (course / "students.csv").write_text("id,first_name,last_name,email\n"
                                         "ana,Ana,A,ana@example.org\nben,Ben,B,ben@example.org\n")
    (course / "students.csv").chmod(0o600)
    archive = course / "downloaded" / A / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "Download.zip", "w") as z:
        z.writestr(f"Assignment 5/ana/{A}.ipynb", b"ana's")
        z.writestr("Assignment 5/ben/sub/mine.ipynb", b"ben's")
        z.writestr("__MACOSX/Assignment 5/ana/._x", b"resource fork")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("root's")
    elsewhere.chmod(0o600)
    os.link(elsewhere, course / "hard")
    (course / "soft").symlink_to(elsewhere)

    imported = subprocess.run(
        [sys.executable, "-m", "nbgrader", "db", "student", "import",
         str(course / "students.csv")], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "BPTT_COURSE_DIR": str(course)}, timeout=300)
    assert imported.returncode == 0, imported.stderr
    run = zip_collect(course, A)
    assert run.returncode == 0, run.stderr
    assert submitted(course) == {f"ana/{A}/{A}.ipynb": b"ana's", f"ben/{A}/{A}.ipynb": b"ben's"}
    assert "Reading Download.zip from inside its folder Assignment 5/" in run.stderr
    grader = synthetic.grading_user().pw_uid
    for path in (course / "students.csv", course / "downloaded", archive,
                 archive / "Download.zip"):
        assert path.stat().st_uid == grader, path
    assert elsewhere.stat().st_uid == 0 and elsewhere.stat().st_mode & 0o777 == 0o600
    assert os.lstat(course / "soft").st_uid == 0


def _students(course, ids, monkeypatch):
    """A gradebook in `course` holding students `ids`."""
    monkeypatch.setenv("PATH", synthetic._env()["PATH"])  # (nbgrader runs alembic to make one)
    course.mkdir(parents=True)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for s in ids:
            gb.add_student(s)


@pytest.mark.parametrize("members, students, found", [
    ({f"Download/ana/{A}.ipynb": b"x", f"Download/ben/{A}.ipynb": b"y"}, (),
     "Download.zip: 2 files; at the top: Download/, holding ana/, ben/"),
    # a student's own folder holding folders named like classmates: never their submissions
    ({f"mal/ana/{A}.ipynb": b"x", f"mal/ben/{A}.ipynb": b"y"}, ("ana", "ben", "mal"),
     "Download.zip: 2 files; at the top: mal/, holding ana/, ben/"),
    ({f"{A}.ipynb": b"x"}, (), "Download.zip: 1 files; at the top: " + f"{A}.ipynb"),
    ({}, (), "Download.zip: 0 files; at the top: -"),
    (None, (), "notes.ipynb: not a .zip file"),
], ids=["wrapped-unknown-students", "student-folder-of-classmates", "no-folder", "empty",
        "not-a-zip"])
def test_a_download_with_nothing_to_collect_fails_saying_what_it_found(tmp_path, monkeypatch,
                                                                      members, students, found):
    course = tmp_path / "course"
    _students(course, students, monkeypatch)
    archive = course / "downloaded" / A / "archive"
    archive.mkdir(parents=True)
    if members is None:
        (archive / "notes.ipynb").write_text("{}")
    else:
        with zipfile.ZipFile(archive / "Download.zip", "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
    synthetic.give_to_grader(course)
    run = zip_collect(course, A)
    assert run.returncode == 1, run.stderr
    for said in (f"Nothing collected for {A}: no student's notebook in {archive}",
                 "Expected in each .zip: one top-level folder per student", found,
                 f"nbgrader zip_collect --force {A}"):
        assert said in run.stderr, (said, run.stderr[-3000:])
    assert "Traceback" not in run.stderr and not (course / "submitted").exists()


def test_autograde_all_names_each_assignment_it_skips(tmp_path):
    base = str(tmp_path / "class")
    synthetic.make_course(base, {a: synthetic.square_assignment() for a in ("sq", "sq2", "sq3")})
    synthetic.submit(base, "sq", "ana", "def square(x):\n    return x * x")
    run = subprocess.run([sys.executable, "-m", "course_tools.autograde", "--all"], cwd=base,
                         env=synthetic._env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    course = os.path.join(base, "course")
    for a in ("sq2", "sq3"):
        assert f"{a}: no submissions (nothing in {course}/submitted/*/{a}), skipped" \
            in run.stdout, run.stdout
    assert "autograding sq: 1 submissions" in run.stdout


def test_adopt_gives_only_root_s_plain_files_and_directories(tmp_path):
    from course_tools.safefiles import adopt

    course, elsewhere, nobody = tmp_path / "course", tmp_path / "elsewhere", 65534
    (course / "a" / "b").mkdir(parents=True)
    (course / "a" / "b" / "f").write_text("root's")
    (course / "theirs").write_text("someone's")
    os.chown(course / "theirs", 1234, 1234)
    elsewhere.write_text("root's, elsewhere")
    os.link(elsewhere, course / "hard")
    (course / "soft").symlink_to(elsewhere)
    os.mkfifo(course / "fifo")
    assert sorted(adopt(str(course), nobody, nobody)) == [".", "a", "a/b", "a/b/f"]
    for path in (course, course / "a", course / "a" / "b", course / "a" / "b" / "f"):
        assert (path.stat().st_uid, path.stat().st_gid) == (nobody, nobody), path
    assert (course / "theirs").stat().st_uid == 1234 and elsewhere.stat().st_uid == 0
    assert os.lstat(course / "soft").st_uid == 0 and os.lstat(course / "fifo").st_uid == 0
