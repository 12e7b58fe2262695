"""`nbgrader zip_collect` as INSTRUCTORS.md step 3 runs it (issue 11, class G): the student id is
the LMS download's top-level folder, never a file name the student chose, and no upload can
create, replace or block a classmate's submission.
"""

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from course_tools import synthetic

ROOT = Path(__file__).resolve().parents[1]
A = "ex33_5_norm_rescaling"
CAP = 100_000


def _link(z, name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z.writestr(info, target)


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
    run = subprocess.run(
        [sys.executable, "-m", "nbgrader", "zip_collect", A, f"--Intake.max_file_size={CAP}"],
        cwd=ROOT, env={**os.environ, "BPTT_COURSE_DIR": str(tmp_path)}, capture_output=True,
        text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    submitted = tmp_path / "submitted"
    got = {p.relative_to(submitted).as_posix(): p.read_bytes()
           for p in submitted.rglob("*") if p.is_file()}
    assert got == {f"{s}/{A}/{A}.ipynb": own[s] for s in ("ana", "ben", "mal", "eve")}, \
        run.stderr
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
