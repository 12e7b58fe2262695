"""`python -m course_tools.autograde` gives the same gradebook, feedback and CSV as serial nbgrader.

One synthetic class of two assignments (right, wrong, corrupt notebook, kernel that exits, missing
answer) and a third one nobody submitted is cloned and graded several ways: `nbgrader autograde`
on each assignment (serial), both assignments in one invocation on 2 local workers, one
invocation per assignment, and `--all` on 2 Dask workers (`--worker`) on 127.0.0.1. Each copy
then runs the usual `generate_feedback` and `export`.
"""

import filecmp
import glob
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

from course_tools import synthetic
from course_tools.autograde import submission_state

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


def test_dask_workers_match_serial(serial, tmp_path):
    """Two workers started as INSTRUCTORS.md says (`--worker`, as root where the course is):
    each runs as the grading user, and the batch grades as serial nbgrader does."""
    from distributed import Client, LocalCluster

    serial_base, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster.scheduler_address) as client:
        workers = [subprocess.Popen([sys.executable, "-m", "course_tools.autograde", "--worker",
                                     cluster.scheduler_address], cwd=base, env=synthetic._env(),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(2)]
        try:
            client.wait_for_workers(2, timeout=120)
            uids = client.run(os.geteuid)
            run = parallel(base, "--all", "--scheduler", cluster.scheduler_address)
        finally:
            for w in workers:
                w.terminate()
                w.wait(timeout=60)
    assert set(uids.values()) == {synthetic.grading_user().pw_uid}, uids
    assert run.returncode == 1 and failed_jobs(run) == FAILING, run.stdout + run.stderr
    assert "autograding none" not in run.stdout  # --all: only assignments with submissions
    finish(base)
    check_same_as_serial(serial_base, base)


def test_a_dask_worker_running_as_root_refuses_its_jobs(serial, tmp_path):
    from distributed import LocalCluster

    _, ungraded = serial
    base = synthetic.clone(ungraded, str(tmp_path / "class"))
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, processes=True) as cluster:  # root, as this test
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
