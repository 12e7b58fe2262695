"""`python -m course_tools.autograde` gives the same gradebook, feedback and CSV as serial nbgrader.

One synthetic class of two assignments (right, wrong, corrupt notebook, kernel that exits, missing
answer) and a third one nobody submitted is cloned and graded several ways: `nbgrader autograde`
on each assignment (serial), both assignments in one invocation on 2 local workers, one
invocation per assignment, and `--all` on 2 Dask workers (`--worker`) of a `dask scheduler` on
127.0.0.1, all with the course's certificate (`--dask-tls`), as INSTRUCTORS.md sets them up.
Each copy then runs the usual `generate_feedback` and `export`. Without the certificate, no worker
joins that cluster and no client reaches it; a job carries no classmate's gradebook rows.
"""

import filecmp
import gc
import glob
import json
import os
import pwd
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from contextlib import contextmanager

import nbformat
import pytest

from course_tools import synthetic
from course_tools.autograde import (
    DASK_PEM,
    assignments_only,
    dask_pem,
    dask_security,
    submission_state,
)
from course_tools.privileged import as_user

DASK = os.path.join(os.path.dirname(sys.executable), "dask")

ANSWERS = {
    "ana": "def square(x):\n    return x * x",
    "ben": "def square(x):\n    return x + x",
    "cai": "def square(x):\n    return x ** 2 if x > 0 else 0",
    "dee": None,  # corrupt notebook: nbgrader fails this student
    "eve": "import os\nos._exit(3)",  # kernel dies mid-notebook
    "fay": "# YOUR CODE HERE\nraise NotImplementedError()",
}
SUBMITTED = {"sq": ANSWERS, "sq2": {  # {assignment: {student: answer}}
    "ana": ANSWERS["ana"], "ben": None, "fay": ANSWERS["ben"]}}


def parallel(base, *args):
    return subprocess.run([sys.executable, "-m", "course_tools.autograde", *args],
                          cwd=base, env=synthetic._env(), capture_output=True, text=True)


def finish(base):
    """The steps after autograde: feedback for every student, and the CSV."""
    for assignment in SUBMITTED:
        synthetic.nbgrader(base, "generate_feedback", assignment)
    synthetic.nbgrader(base, "export", "--to", os.path.join(base, "course", "grades.csv"))


def state(base):
    """{(assignment, student): gradebook rows} of every submission."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{base}/course/gradebook.db", "synthetic") as gb:
        return {(a, s): submission_state(gb, a, s) for a in SUBMITTED for s in SUBMITTED[a]}


def untimed(path):
    """A notebook without the execution timestamps nbclient records and the grading time
    SafeAutograde records (they differ run to run)."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("course_tools", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def same_tree(a, b):
    """Same files, byte for byte, except notebooks' execution timestamps."""
    cmp = filecmp.dircmp(a, b)
    assert cmp.left_only == cmp.right_only == [], (a, cmp.left_only, cmp.right_only)
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    assert errors == [], (a, errors)
    for name in mismatch:
        assert name.endswith(".ipynb"), (a, name)
        assert untimed(os.path.join(a, name)) == untimed(os.path.join(b, name)), (a, name)
    for sub in cmp.common_dirs:
        same_tree(os.path.join(a, sub), os.path.join(b, sub))


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("serial"))
    synthetic.make_course(base, {a: synthetic.square_assignment() for a in [*SUBMITTED, "none"]})
    for assignment, answers in SUBMITTED.items():
        for student, answer in answers.items():
            synthetic.submit(base, assignment, student, answer)
    ungraded = synthetic.clone(base, str(tmp_path_factory.mktemp("ungraded") / "class"))
    for assignment, corrupt in [("sq", "dee"), ("sq2", "ben")]:
        run = synthetic.nbgrader(base, "autograde", assignment, check=False)
        assert run.returncode == 1 and f"for student '{corrupt}'" in run.stderr  # only that one
    finish(base)
    return base, ungraded


def failed_jobs(run):
    """The set of "assignment/student" a run reported FAILED; its output in the message."""
    return set(re.findall(r"(\S+/\S+): FAILED", run.stdout))


FAILING = {"sq/dee", "sq2/ben"}  # the corrupt notebooks: the only jobs that fail


def check_same_as_serial(serial_base, base):
    ours = state(base)
    assert ours == state(serial_base)
    assert ours["sq", "ana"]["notebooks"]["sq"]["grades"]["test_hidden"]["auto_score"] == 1.0
    assert ours["sq", "eve"]["notebooks"]["sq"]["grades"]["test_public"]["auto_score"] == 0.0
    assert ours["sq2", "ana"]["notebooks"]["sq2"]["grades"]["test_hidden"]["auto_score"] == 1.0
    for step in ("autograded", "feedback"):
        same_tree(os.path.join(serial_base, "course", step), os.path.join(base, "course", step))
    with open(os.path.join(serial_base, "course", "grades.csv")) as a, \
            open(os.path.join(base, "course", "grades.csv")) as b:
        assert a.read() == b.read()


def test_local_workers_match_serial(serial, tmp_path):
    serial_base, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    run = parallel(base, "sq", "sq2", "--workers", "2")
    assert run.returncode == 1 and failed_jobs(run) == FAILING, run.stdout + run.stderr
    assert run.stdout.count(": graded") == len(ANSWERS) - 1 + len(SUBMITTED["sq2"]) - 1
    assert "Warning" not in run.stderr, run.stderr  # (nbgrader's SAWarnings: one per job)
    finish(base)
    check_same_as_serial(serial_base, base)
    again = parallel(base, "sq")  # graded students are skipped (as nbgrader does), failed ones not
    assert "sq: 1 submissions" in again.stdout and "sq/dee: FAILED" in again.stdout


def test_one_assignment_per_invocation_matches_serial(serial, tmp_path):
    serial_base, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    for assignment in SUBMITTED:
        run = parallel(base, assignment, "--workers", "1")
        assert run.returncode == 1, run.stdout + run.stderr
        assert failed_jobs(run) == {f for f in FAILING if f.startswith(f"{assignment}/")}, \
            run.stdout + run.stderr
    finish(base)
    check_same_as_serial(serial_base, base)


@pytest.mark.parametrize("args, error", [
    (["sq", "nope"], "unknown assignment 'nope'"),
    (["sq", "none"], "no submissions of 'none'"),
    ([], "name one or more assignments, or --all"),
    (["sq", "--all"], "name one or more assignments, or --all"),
    (["sq", "--workers", "0"], "--workers must be at least 1"),
])
def test_bad_request_is_refused_before_grading(serial, tmp_path, args, error):
    _, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    run = parallel(base, *args)
    assert run.returncode == 2 and error in run.stderr and "Traceback" not in run.stderr
    assert not os.path.exists(os.path.join(base, "course", "autograded"))


@contextmanager
def _running(commands, cwd):
    """`commands` started in `cwd`, each in a session of its own; at the end, each session's
    processes are stopped (a worker's kernel launcher with it)."""
    procs = [subprocess.Popen(c, cwd=cwd, env=synthetic._env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
             for c in commands]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=60)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_workers_match_serial(serial, tmp_path):
    """The cluster of INSTRUCTORS.md: the course's certificate (`--dask-tls`, 0600, the course's
    owner's), `dask scheduler` as that prints it, two workers (`--worker`, as root where the
    course is). Each worker runs as the grading user, and the batch grades as serial nbgrader
    does; a worker's copy of the gradebook holds only the students whose jobs it graded."""
    from distributed import Client

    serial_base, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    synthetic.nbgrader(base, "db", "student", "add", "zed")  # on the roster, nothing submitted
    made = parallel(base, "--dask-tls")
    assert made.returncode == 0, made.stderr
    course = os.path.join(base, "course")
    pem = os.stat(os.path.join(course, DASK_PEM))
    assert stat.S_IMODE(pem.st_mode) == 0o600 and pem.st_uid == synthetic.grading_user().pw_uid
    port = _free_port()
    address = f"tls://127.0.0.1:{port}"
    scheduler = [DASK, *shlex.split(made.stdout)[1:], "--host", "127.0.0.1", "--port", str(port)]
    worker = [sys.executable, "-m", "course_tools.autograde", "--worker", address]

    def students_in_copy():  # run on a worker: who is in its copy of the gradebook
        import sqlite3

        from course_tools import autograde

        db = sqlite3.connect(os.path.join(autograde._private_course.root, "gradebook.db"))
        return {row[0] for row in db.execute("SELECT id FROM student")}

    with _running([scheduler, worker, worker], base), \
            Client(address, security=dask_security(course), timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
        uids = client.run(os.geteuid)
        # (the scheduler's log of added workers, which the certificate test reads, shows them)
        assert len([e for _, e in client.get_events("all")
                    if e.get("action") == "add-worker"]) == 2
        run = parallel(base, "--all", "--scheduler", address)
        copies = client.run(students_in_copy)
    assert set(uids.values()) == {synthetic.grading_user().pw_uid}, uids
    assert run.returncode == 1 and failed_jobs(run) == FAILING, run.stdout + run.stderr
    assert "autograding none" not in run.stdout  # --all: only assignments with submissions
    assert all(students <= set(ANSWERS) for students in copies.values()), copies
    synthetic.nbgrader(base, "db", "student", "remove", "zed")  # as serial's roster is
    finish(base)
    check_same_as_serial(serial_base, base)


def test_without_the_course_certificate_no_worker_joins_and_no_client_connects(serial,
                                                                                tmp_path):
    """Issue #23's attack: plain `dask worker`s run by nobody, and a plain Client to run code on
    the workers. Without the course's certificate (none, or another course's) none gets in: the
    workers give up, the scheduler never lists them, the clients cannot connect."""
    from distributed import Client

    _, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    made = parallel(base, "--dask-tls")
    course = os.path.join(base, "course")
    port = _free_port()
    address = f"tls://127.0.0.1:{port}"
    scheduler = [DASK, *shlex.split(made.stdout)[1:], "--host", "127.0.0.1", "--port", str(port)]
    other_course = tmp_path / "other"  # another course's key and certificate, for nobody
    other_course.mkdir()
    other = dask_pem(str(other_course), make=True)
    other_security = dask_security(str(other_course))
    os.chmod(tmp_path, 0o755)
    os.chmod(other_course, 0o755)
    os.chmod(other, 0o644)
    plain = [DASK, "worker", "--no-nanny", "--death-timeout", "20"]
    attackers = [as_user(pwd.getpwnam("nobody"), command) for command in (
        [*plain, f"tcp://127.0.0.1:{port}"], [*plain, address],
        [*plain, address, "--tls-ca-file", other, "--tls-cert", other, "--tls-key", other])]
    with _running([scheduler], base), \
            Client(address, security=dask_security(course), timeout=60) as client:
        with _running(attackers, base) as procs:
            deadline = time.monotonic() + 120
            while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
                assert client.scheduler_info()["workers"] == {}
                time.sleep(1)
            assert [p.poll() for p in procs].count(None) == 0, "a plain worker is still trying"
        assert client.scheduler_info()["workers"] == {}
        # not even for a moment between two looks: the scheduler logs every worker it adds
        # (a worker's exit code says nothing here: it was seen to end 0 or 1 under load)
        added = [e for _, e in client.get_events("all") if e.get("action") == "add-worker"]
        assert added == [], added
        # none: no TLS, or plain TCP refused; another course's: "TLS certificate does not match"
        # (distributed may also fail its own `assert loop is not None` when the refused client's
        # loop thread ends first)
        for security in (None, other_security):
            for where in (address, f"tcp://127.0.0.1:{port}"):
                with pytest.raises((TypeError, OSError, RuntimeError, AssertionError)):
                    Client(where, security=security, timeout=10).run(os.geteuid)
                # the refused Client is finalized now: left to a garbage collection that runs
                # inside the next Client's start, its close waits for the lock that start holds
                # (distributed's LoopRunner), forever (seen once, under load)
                gc.collect()


def test_the_course_certificate_must_be_there_and_private(serial, tmp_path):
    _, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    pem = os.path.join(base, "course", DASK_PEM)
    for args in (["--worker", "tls://127.0.0.1:9"], ["sq", "--scheduler", "tls://127.0.0.1:9"]):
        run = parallel(base, *args)
        assert run.returncode == 2 and f"No {pem}: make it with" in run.stderr, run.stderr
    assert parallel(base, "--dask-tls").returncode == 0
    os.chmod(pem, 0o640)
    run = parallel(base, "--worker", "tls://127.0.0.1:9")
    assert run.returncode == 2 and "others may read it" in run.stderr, run.stderr
    assert not os.path.exists(os.path.join(base, "course", "autograded"))


def test_a_job_carries_no_classmate_gradebook_rows(serial):
    """What every worker receives once per batch: the gradebook's assignments, no student's row
    (none left in the file's free pages either); each job adds only its own student's rows."""
    import sqlite3

    serial_base, _ = serial
    db = os.path.join(serial_base, "course", "gradebook.db")
    full = sqlite3.connect(db)
    assert full.execute("SELECT COUNT(*) FROM grade").fetchone()[0] > 0
    copy = os.path.join(os.path.dirname(db), "assignments-only.db")
    with open(copy, "wb") as f:
        f.write(assignments_only(db))
    sent = sqlite3.connect(copy)
    for table in ("student", "submitted_assignment", "submitted_notebook", "grade", "comment"):
        assert sent.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table  # noqa: S608
    for table in ("assignment", "notebook", "grade_cells", "source_cell"):
        assert sent.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == \
            full.execute(f"SELECT COUNT(*) FROM {table}").fetchone(), table  # noqa: S608
    assert sent.execute("PRAGMA freelist_count").fetchone()[0] == 0
    sent.close()
    os.remove(copy)


def test_a_dask_worker_running_as_root_refuses_its_jobs(serial, tmp_path):
    from distributed import LocalCluster

    _, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    dask_pem(os.path.join(base, "course"), make=True)
    security = dask_security(os.path.join(base, "course"))
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", protocol="tls",
                      security=security, dashboard_address=None,
                      processes=True) as cluster:  # root, as this test
        run = parallel(base, "sq", "--scheduler", cluster.scheduler_address)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout.count("this Dask worker runs as root") == len(ANSWERS), run.stdout
    assert not glob.glob(os.path.join(base, "course", "autograded", "*", "sq", "*"))


def test_refuses_before_grading_when_the_sandbox_cannot_start(serial, tmp_path):
    _, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    with open(os.path.join(base, "nbgrader_config.py"), "a") as f:
        f.write('c.Sandbox.bwrap = "/nonexistent/bwrap"\n')
    run = parallel(base, "sq")
    assert run.returncode == 2 and "Refusing to grade" in run.stderr
    assert not os.path.exists(os.path.join(base, "course", "autograded"))


def test_several_workers_are_pinned_one_per_cpu_and_a_single_one_is_not(tmp_path):
    """With 2..cores workers each worker, and the kernels it starts, keeps to a CPU of its own;
    one worker (or more than cores) is left to the scheduler (README "Benchmarks")."""
    cpus = sorted(os.sched_getaffinity(0))
    assert len(cpus) >= 2, "the pinning policy needs a machine with at least 2 CPUs to be tested"
    base = str(tmp_path / "class")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()})
    for i in range(4 * len(cpus)):
        synthetic.submit(base, "sq", f"s{i}", "import os\nprint('cpus', sorted("
                         "os.sched_getaffinity(0)))\ndef square(x):\n    return x * x")

    def kernels_cpus(workers):
        run = parallel(base, "sq", "--workers", str(workers), "--force")
        assert run.returncode == 0, run.stdout + run.stderr
        found = [re.search(r"cpus (\[[\d, ]*\])", synthetic.outputs(base, "sq", s))
                 for s in synthetic.scores(base, "sq")]
        return [json.loads(m.group(1)) for m in found]

    assert all(seen == cpus for seen in kernels_cpus(1))
    pinned = kernels_cpus(len(cpus))
    assert all(len(seen) == 1 for seen in pinned) and sorted({*sum(pinned, [])}) == cpus
    assert all(seen == cpus for seen in kernels_cpus(len(cpus) + 1))
