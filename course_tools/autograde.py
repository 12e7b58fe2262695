"""Autograde every submission of one or more assignments in parallel; same results as `nbgrader
autograde` run on each of them.

    python -m course_tools.autograde ASSIGNMENT [ASSIGNMENT ...] [--workers N] [--force]
    python -m course_tools.autograde --all [--scheduler tls://HOST:PORT]
    python -m course_tools.autograde --worker tls://HOST:PORT    (a Dask worker for the above)
    python -m course_tools.autograde --dask-tls                  (the course's Dask certificate)

Run it where `nbgrader_config.py` is, like nbgrader. One pool of workers grades the whole batch,
one submission (student, assignment) per job, each with nbgrader's Autograde (as SafeAutograde,
so the course's config, the sandbox included, applies unchanged) in the worker's private copy of
the course: the config, the gradebook's assignments (no student's rows: a job carries only its own
submission's) and the assignments' source files, set up once per batch. Each job carries the key
of its own grading run (`course_tools.verdicts.run_key`: the course secret never leaves this
process, and the worker's copy has none), whose nonce this process records in the course's
`grading_runs.csv`. The worker sends back the autograded files and the submission's rows of its
gradebook; this process alone writes them into the real course as they arrive, so SQLite never
sees two writers.
Workers are local processes (`--workers`, default: the machine's cores), started before anything
else so their imports overlap this process's and, from 2 up to as many as there are CPUs, each
pinned to a CPU of its own with the kernels it starts; or, with `--scheduler`, the workers of a
running Dask distributed cluster, which need the same Python environment but no shared filesystem.
The cluster talks mutual TLS with the course's own key and certificate (`dask_security`): a
scheduler, worker or client without them cannot connect.
Started as root with the sandbox on, the command first becomes the grading user
(`course_tools.privileged`): this process, the workers and their children run unprivileged and
get their kernels from the kernel launcher, the only process left with root. So do Dask workers
started with `--worker` (as root, where the course's nbgrader_config.py is); a Dask worker that
runs as root refuses its jobs.

Submission files are read and written without following links (`course_tools.safefiles`): a
submission with a link, a special file or too many bytes is refused. Each job runs in a child of
its worker, killed at its deadline; a job that is refused, fails, overruns or cannot be recorded
costs only itself: it is logged, listed in the course's `autograde_failures.csv`, and the batch
goes on, each result written to the gradebook as it arrives.

nbgrader, the course config and the sandbox are imported inside the functions that use them: a
module-level import would delay the workers' start by seconds.
"""

import argparse
import csv
import glob
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from functools import partial
from multiprocessing import get_context
from multiprocessing.util import Finalize

from course_tools.jobs import DEADLINE, JOB_MEMORY, JobFailed, run_as_job
from course_tools.safefiles import Refused, read_tree, write_tree

# nbgrader under SQLAlchemy 2, for every submission it records: "SAWarning: Object of type
# <SubmittedAssignment> not in session, add operation along 'Student.submissions' will not
# proceed" (autoflush, before nbgrader adds the object itself). Stock nbgrader prints it too; here
# every job's child would, burying the progress lines and failures of a class under thousands.
warnings.filterwarnings("ignore", r"Object of type <\w+> not in session, add operation along "
                        r"'\w+\.submissions' will not proceed", module=r"nbgrader\.api\Z")
_one_at_a_time = threading.Lock()
_private_course = None  # this worker's PrivateCourse, for the batch it last graded
STEPS = ("source", "release", "submitted", "autograded", "feedback")
FAILURES = "autograde_failures.csv"  # in the course directory: the last batch's failed jobs
DASK_PEM = "dask.pem"  # in the course directory: its Dask cluster's key and certificate (0600)
COLUMNS = {  # gradebook state that autograde writes, per object
    "submission": ("timestamp", "extension"),
    "notebook": ("flagged", "late_submission_penalty"),
    "grade": ("auto_score", "manual_score", "extra_credit", "needs_manual_grade"),
    "comment": ("auto_comment", "manual_comment"),
}


class CannotGrade(Exception):
    """Nothing was graded: an unknown assignment, one never generated or without submissions, or
    no sandbox."""


class Progress:
    """How far a batch is: on a terminal, a bar redrawn in place on stderr (done/total, elapsed,
    remaining, failures) with each failure printed above it as it happens; otherwise the same
    figures on every submission's line."""

    def __init__(self, total, log=print, stream=sys.stderr, clock=time.monotonic):
        self.total, self.log, self.stream, self.clock = total, log, stream, clock
        self.tty = stream.isatty()
        self.start, self.done, self.failed = clock(), 0, 0

    def status(self):
        elapsed = self.clock() - self.start
        left = elapsed / self.done * (self.total - self.done) if self.done else None
        return (f"{self.done}/{self.total}, {_clock(elapsed)} elapsed, "
                f"{'~' + _clock(left) if left is not None else '?'} left, {self.failed} failed")

    def update(self, name, ok, log=""):
        self.done += 1
        self.failed += not ok
        if self.tty:
            if not ok:
                self.stream.write("\r\x1b[K")
                self.log(f"  {name}: FAILED\n{log}")
            width = 30
            bar = "#" * (width * self.done // self.total)
            self.stream.write(f"\r\x1b[K[{bar:<{width}}] {self.status()}")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()
        else:
            self.log(f"  [{self.status()}] {name}: {'graded' if ok else 'FAILED'}")
            if not ok:
                self.log(log)


def _clock(seconds):
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def submission_state(gb, assignment, student):
    """The gradebook rows autograde wrote for one submission, as plain data (None if none)."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        return None
    pick = lambda obj, kind: {k: getattr(obj, k) for k in COLUMNS[kind]}  # noqa: E731
    return {"submission": pick(sub, "submission"), "notebooks": {
        nb.name: {"notebook": pick(nb, "notebook"),
                  "grades": {g.name: pick(g, "grade") for g in nb.grades},
                  "comments": {c.name: pick(c, "comment") for c in nb.comments}}
        for nb in sub.notebooks}}


def apply_state(gb, assignment, student, state):
    """Write `state` (from submission_state) into gradebook `gb`, as autograde would have."""
    gb.update_or_create_student(student)
    sub = gb.update_or_create_submission(assignment, student, **state["submission"])
    for nb in sub.notebooks:
        saved = state["notebooks"][nb.name]
        rows = [(nb, saved["notebook"])]
        rows += [(g, saved["grades"][g.name]) for g in nb.grades]
        rows += [(c, saved["comments"][c.name]) for c in nb.comments]
        for obj, values in rows:
            for k, v in values.items():
                setattr(obj, k, v)
    gb.db.commit()


class PrivateCourse:
    """A worker's copy of the course for one batch (`common`): config, gradebook (assignments
    only) and source files, written and loaded once; submissions are graded in it one at a time."""

    def __init__(self, common):
        from traitlets.config.loader import PyFileConfigLoader

        from course_tools.privileged import launcher
        from course_tools.sandbox import Sandbox, SandboxKernelManager

        self.batch = common["batch"]
        tmp = tempfile.mkdtemp(prefix="autograde-")
        self.remove = Finalize(self, shutil.rmtree, args=(tmp, True), exitpriority=0)
        self.root = os.path.join(tmp, "course")
        write_tree(tmp, {"nbgrader_config.py": (common["config"], 0o644),
                         "course/gradebook.db": (common["assignments"], 0o644)})
        write_tree(self.root, common["files"])
        config = PyFileConfigLoader("nbgrader_config.py", path=tmp).load_config()
        # the copy's layout: nbgrader's defaults under root, whatever the course's directories
        config.CourseDirectory.root = self.root
        for step in STEPS:
            setattr(config.CourseDirectory, f"{step}_directory", step)
        config.CourseDirectory.db_url = f"sqlite:///{os.path.join(self.root, 'gradebook.db')}"
        config.CourseDirectory.course_id = common["course_id"]
        config.Autograde.pre_convert_hook = None  # the batch's assignments were checked already
        config.SafeAutograde.isolate = False  # each job is a child of its own already
        self.config = config
        sandbox = Sandbox(config=config)
        if sandbox.enabled:  # here once per batch, not in every job's child (~0.15 s each)
            launcher(sandbox).check()
            SandboxKernelManager._checked = True
        if self.judges_outside_the_kernel():  # torch, ~1 s: here once, not in every job's child
            import course_tools.references  # noqa: F401

    def judges_outside_the_kernel(self):
        """Whether the course's autograde steps include a VerdictExecute (which computes the
        references)."""
        from course_tools.verdicts import VerdictExecute

        steps = self.config.Autograde.get("autograde_preprocessors", [])
        return any(isinstance(s, type) and issubclass(s, VerdictExecute) for s in steps)

    def grade(self, assignment, student, files, rows, key=""):
        """Autograde one submission (`files` under submitted/, `rows` its gradebook rows from
        submission_state, or None), drawing its hidden inputs from the run key `key` (hex);
        return files, state and log."""
        from nbgrader.api import Gradebook
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.utils import capture_log

        from course_tools.instructor import Intake, SafeAutograde

        write_tree(self.root, files)
        self.config.VerdictExecute.run_key = key
        coursedir = CourseDirectory(config=self.config, assignment_id=assignment,
                                    student_id=student)
        if rows is not None:  # as the course's gradebook has them (a regrade)
            with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
                apply_state(gb, assignment, student, rows)
        app = SafeAutograde(coursedir=coursedir, config=self.config)
        app.force = True
        run = capture_log(app)
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            state = submission_state(gb, assignment, student)
        log = run.get("log", "") + run.get("error", "")
        result = {"assignment": assignment, "student": student, "ok": run["success"],
                  "log": log, "state": state, "files": {},
                  "reason": None if run["success"] else _reason(log)}
        graded = os.path.join(self.root, "autograded", student, assignment)
        if os.path.isdir(graded):
            try:
                result["files"] = read_tree(graded, limits=Intake(config=self.config).limits())
            except Refused as e:
                result.update(ok=False, reason=f"its autograded files were refused: {e}")
        return result

    def clear(self, assignment, student):
        """Remove one submission's files from the copy."""
        for step in ("submitted", "autograded"):
            shutil.rmtree(os.path.join(self.root, step, student, assignment), ignore_errors=True)


def _reason(log):
    """The last exception line of nbgrader's log, as a failure's reason."""
    lines = [line.strip() for line in log.splitlines()]
    found = [line for line in lines if re.match(r"[\w.]*(Error|Exception)\b", line)]
    return f"nbgrader failed: {found[-1]}" if found else "nbgrader failed (see its log)"


def failed(assignment, student, reason, log=""):
    """The result of a job that produced nothing."""
    return {"assignment": assignment, "student": student, "ok": False, "reason": reason,
            "log": log, "state": None, "files": {}}


def grade_submission(common, assignment, student, files, rows=None, key=""):
    """Worker: autograde one submission (its files and gradebook rows) in this worker's private
    copy of the course, on the hidden inputs of run key `key`.

    Runs nbgrader's Autograde in a forked child of this process, which has its imports already (a
    fresh `nbgrader` process per submission would pay seconds of imports each time), killed with
    the kernels it started if it is not done by `common["deadline"]` seconds, or by the kernel if
    it needs more than JOB_MEMORY (`_in_child`); Autograde chdirs, so one submission at a time per
    process.
    """
    global _private_course
    if os.geteuid() == 0 and _in_dask():
        return failed(assignment, student, "this Dask worker runs as root: start workers with "
                      "`python -m course_tools.autograde --worker SCHEDULER`, which grades as the "
                      "course's user")
    with _one_at_a_time:
        if _private_course is None or _private_course.batch != common["batch"]:
            if _private_course is not None:
                _private_course.remove()
            _private_course = PrivateCourse(common)
        try:
            return _in_child(partial(_private_course.grade, assignment, student, files, rows,
                                     key),
                             common["deadline"], assignment, student)
        finally:
            _private_course.clear(assignment, student)


def _in_child(job, deadline, assignment, student, memory=JOB_MEMORY):
    """job() run as a job of its own (`jobs.run_as_job`: a forked child, in a memory cgroup of
    `memory` bytes when there is one, killed at `deadline` seconds), or a failed result."""
    try:
        return run_as_job(job, deadline, memory)
    except JobFailed as e:
        return failed(assignment, student, e.reason, e.log)


def skip_iri_grammar():
    """Spare this process the ~1 s in which jsonschema, imported by nbformat, compiles an IRI
    grammar (rfc3987_syntax) for the "iri" string format, which no notebook schema uses."""
    sys.modules.setdefault("rfc3987_syntax", None)  # None: importing it raises ImportError


def warm_up(counter=None, cpus=()):
    """Worker initializer: given a shared `counter`, pin this worker (and the kernels it starts)
    to CPU cpus[counter] and count on; import what grading needs while the main process reads
    the course."""
    if counter is not None:
        with counter.get_lock():
            cpu, counter.value = cpus[counter.value], counter.value + 1
        os.sched_setaffinity(0, {cpu})
    skip_iri_grammar()
    import nbgrader.converters  # noqa: F401

    import course_tools.sandbox  # noqa: F401


STUDENT_TABLES = ("comment", "grade", "submitted_notebook", "submitted_assignment", "student")


def assignments_only(db_path):
    """A consistent copy of the gradebook without any student's rows, as bytes: the course's
    assignments, notebooks and cells, all a worker needs besides the job's own student's rows
    (emptied and vacuumed, so no deleted row is left in the file)."""
    with tempfile.NamedTemporaryFile(suffix=".db") as tmp:
        src, dst = sqlite3.connect(db_path), sqlite3.connect(tmp.name)
        with dst:
            src.backup(dst)
            for table in STUDENT_TABLES:
                dst.execute(f"DELETE FROM {table}")  # noqa: S608 (our constant names)
        dst.execute("VACUUM")
        src.close()
        dst.close()
        with open(tmp.name, "rb") as f:
            return f.read()


def load_course(config_dir):
    """The course's CourseDirectory and config, and the config file's bytes."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=config_dir).load_config()
    except Exception as e:
        lines = [f.lineno for f in traceback.extract_tb(e.__traceback__)
                 if os.path.basename(f.filename) == "nbgrader_config.py"]
        where = f", line {lines[-1]}" if lines else ""
        raise CannotGrade(f"Refusing to grade: nbgrader_config.py{where}: "
                          f"{type(e).__name__}: {e}") from None
    cwd = os.getcwd()
    os.chdir(config_dir)  # relative roots in the config are relative to it
    try:
        coursedir = CourseDirectory(config=config)
        coursedir.root = os.path.abspath(coursedir.root)
    finally:
        os.chdir(cwd)
    with open(os.path.join(config_dir, "nbgrader_config.py"), "rb") as f:
        return coursedir, config, f.read()


def find_batch(coursedir, assignments, force, log=print):
    """{assignment: [students to grade]} for `assignments` (None: every assignment in the source
    directory that has submissions, naming each without); raises CannotGrade for one unknown,
    never generated or without submissions."""
    from course_tools.instructor import NotGenerated, require_generated

    path = partial(step_path, coursedir)
    submitters = lambda a: sorted(  # noqa: E731
        os.path.basename(os.path.dirname(p)) for p in glob.glob(path("submitted", "*", a)))
    if assignments is None:
        assignments = sorted(map(os.path.basename, glob.glob(path("source", ".", "*"))))
        for a in [a for a in assignments if not submitters(a)]:
            log(f"{a}: no submissions (nothing in {path('submitted', '*', a)}), skipped")
            assignments.remove(a)
        if not assignments:
            raise CannotGrade(f"no submissions of any assignment: {path('submitted', '*', '*')}")
    batch = {}
    for a in assignments:
        if not os.path.isdir(path("source", ".", a)):
            raise CannotGrade(f"unknown assignment {a!r}: no {path('source', '.', a)}")
        everyone = submitters(a)
        if not everyone:
            raise CannotGrade(f"no submissions of {a!r}: nothing in {path('submitted', '*', a)}")
        try:
            require_generated(coursedir.db_url, a)
        except NotGenerated as e:
            raise CannotGrade(str(e)) from None
        batch[a] = [s for s in everyone if force or not os.path.isdir(path("autograded", s, a))]
    return batch


def step_path(coursedir, step, student, assignment):
    """The directory of `assignment` of `student` in nbgrader step `step` ("." for source)."""
    return coursedir.format_path(getattr(coursedir, f"{step}_directory"), student, assignment)


def autograde(assignments, *, workers=None, scheduler=None, force=False, config_dir=".",
              deadline=DEADLINE, log=print):
    """Grade all submissions of `assignments` (names, or None: all with submissions), each job
    within `deadline` seconds.

    Returns {(assignment, student): True if graded, False if failed}; the failures, with their
    reasons, are also in the course's FAILURES file.
    """
    with _workers(workers, scheduler, config_dir) as run:
        from nbgrader.api import Gradebook

        from course_tools.instructor import Intake
        from course_tools.privileged import launcher
        from course_tools.sandbox import Sandbox, SandboxUnavailable
        from course_tools.verdicts import new_run, record_runs

        coursedir, config, config_text = load_course(os.path.abspath(config_dir))
        if Sandbox(config=config).enabled:
            try:
                launcher(Sandbox(config=config)).check()  # refuse before grading anyone
            except SandboxUnavailable as e:
                raise CannotGrade(str(e)) from e
        batch = find_batch(coursedir, assignments, force, log)
        path = partial(step_path, coursedir)
        source = {}
        for a in batch:
            source.update(read_tree(path("source", ".", a), os.path.join("source", a)))
        common = {
            "batch": uuid.uuid4().hex, "course_id": coursedir.course_id, "config": config_text,
            "assignments": assignments_only(coursedir.db_url.removeprefix("sqlite:///")),
            "files": {k: v for k, v in source.items() if not k.endswith(".ipynb")},
            "deadline": deadline,
        }
        for a, students in batch.items():
            log(f"autograding {a}: {len(students)} submissions")
        log(f"on Dask scheduler {scheduler}" if scheduler
            else f"on {workers or os.cpu_count()} workers")
        course = os.path.dirname(coursedir.db_url.removeprefix("sqlite:///"))
        failures = FailureLog(course, log)
        done, jobs, nonces, limits = {}, [], {}, Intake(config=config).limits()
        secret_file = config.VerdictExecute.get("secret_file")
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            for a, students in batch.items():
                for s in students:
                    try:
                        files = read_tree(path("submitted", s, a),
                                          os.path.join("submitted", s, a), limits,
                                          trusted=path("submitted", ".", "."))
                        nonces[a, s], key = new_run(secret_file) if secret_file else ("", "")
                        jobs.append((a, s, files, submission_state(gb, a, s), key))
                    except Refused as e:
                        done[a, s] = False
                        failures.add(a, s, f"submission refused: {e}")
        progress = Progress(len(jobs), log)
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            for _, s, *_ in jobs:  # student rows in nbgrader's order, whatever finishes first
                gb.update_or_create_student(s)
            for result in run(common, jobs):
                a, s = result["assignment"], result["student"]
                try:
                    record(gb, path("autograded", s, a), result)
                    if nonces.get((a, s)) and result["state"] is not None:
                        record_runs(course, [(a, s, os.path.basename(f)[:-6], nonces[a, s])
                                             for f in result["files"] if f.endswith(".ipynb")])
                except Exception as e:
                    gb.db.rollback()
                    result = failed(a, s, f"its result could not be recorded: {e!r}",
                                    result["log"])
                done[a, s] = result["ok"]
                progress.update(f"{a}/{s}", result["ok"], result["log"])
                if not result["ok"]:
                    failures.add(a, s, result["reason"])
    return done


def record(gb, dest, result):
    """Write one result: its autograded files (new, in a new `dest`) and its gradebook rows."""
    if os.path.islink(dest):
        os.unlink(dest)
    elif os.path.isdir(dest):
        shutil.rmtree(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)  # nbgrader leaves it, even failed
    write_tree(dest, result["files"])
    if result["state"] is not None:
        apply_state(gb, result["assignment"], result["student"], result["state"])


class FailureLog:
    """The batch's failed jobs, one CSV row each (assignment, student, reason) in the course
    directory's FAILURES, written as they happen; the file is new for every batch."""

    def __init__(self, course, log):
        self.path, self.log = os.path.join(course, FAILURES), log
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerow(["assignment", "student", "reason"])

    def add(self, assignment, student, reason):
        self.log(f"  {assignment}/{student}: FAILED: {reason}")
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([assignment, student, reason])


def dask_pem(course, make=False):
    """The path of the course's Dask key and self-signed certificate (DASK_PEM in `course`);
    with `make`, made if missing by openssl (EC P-256, valid for a year), 0600, owned by the
    course directory's owner. Refused if missing (without `make`) or if others may read it."""
    path = os.path.join(course, DASK_PEM)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600) \
            if make else None
    except FileExistsError:
        fd = None
    if fd is not None:
        made = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "365",
                               "-subj", "/CN=course-dask", "-keyout", "/dev/stdout"],
                              capture_output=True, check=True)
        with os.fdopen(fd, "wb") as f:  # the key, then the certificate
            f.write(made.stdout)
        if os.geteuid() == 0:
            owner = os.stat(course)
            os.chown(path, owner.st_uid, owner.st_gid)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise CannotGrade(f"No {path}: make it with `python -m course_tools.autograde --dask-tls` "
                          "where the course is, and copy it here (0600).") from None
    if mode & 0o077 or not stat.S_ISREG(mode):
        raise CannotGrade(f"Refusing to use {path}: others may read it (chmod 600 it).")
    return path


def dask_security(course):
    """Mutual TLS for the course's Dask cluster: every scheduler, worker and client presents the
    course's certificate (dask_pem) and accepts no peer without it."""
    from distributed.security import Security

    with open(dask_pem(course)) as f:
        pem = f.read()
    key, cert = (re.search(f"-----BEGIN {kind}-----.*?-----END {kind}-----\n", pem, re.S)[0]
                 for kind in ("PRIVATE KEY", "CERTIFICATE"))
    roles = {f"tls_{role}_{part}": value for role in ("client", "worker", "scheduler")
             for part, value in (("cert", cert), ("key", key))}
    return Security(require_encryption=True, tls_ca_file=cert, **roles)


def course_root(config_dir):
    """The course directory of the nbgrader_config.py in `config_dir`."""
    return load_course(os.path.abspath(config_dir))[0].root


@contextmanager
def _workers(workers, scheduler, config_dir="."):
    """Start the workers now; yield run(common, jobs), which yields grade_submission results as
    they finish (a failed result for a job that raised), from local processes or a Dask
    cluster (with the course's certificate, from `config_dir`)."""
    from course_tools.autograde import grade_submission, warm_up  # by reference, also as __main__

    def results(futures, completed):
        for future in completed(futures):
            a, s = futures[future]
            try:
                yield future.result()
            except Exception as e:
                yield failed(a, s, f"the job failed: {e!r}", traceback.format_exc())

    if scheduler:
        from distributed import Client
        from distributed import as_completed as dask_completed

        with Client(scheduler, security=dask_security(course_root(config_dir))) as client:
            def run(common, jobs):
                shared = client.scatter(common, broadcast=True)
                yield from results({client.submit(grade_submission, shared, *job, pure=False):
                                    job[:2] for job in jobs}, dask_completed)
            yield run
    else:
        n = workers or os.cpu_count()
        context, cpus = get_context("spawn"), sorted(os.sched_getaffinity(0))
        # Several workers run faster each kept on a CPU of its own (cache); a single one runs
        # faster unpinned, its kernel and itself overlapping on two CPUs (README "Benchmarks").
        pin = (context.Value("i", 0), cpus) if 1 < n <= len(cpus) else ()
        with ProcessPoolExecutor(n, mp_context=context, initializer=warm_up,
                                 initargs=pin) as pool:
            for _ in range(n):  # a process is spawned per task while none is idle: all n now
                pool.submit(int)

            def run(common, jobs):
                yield from results({pool.submit(grade_submission, common, *job): job[:2]
                                    for job in jobs}, as_completed)
            yield run


def _in_dask():
    """Whether this runs as a task of a Dask worker."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def serve_dask(scheduler, security):
    """Be a Dask worker of `scheduler` (one thread, no nanny, `security`) until the scheduler
    ends."""
    import asyncio

    from distributed import Worker

    async def serve():
        async with Worker(scheduler, nthreads=1, dashboard=False, security=security) as worker:
            await worker.finished()

    skip_iri_grammar()
    asyncio.run(serve())


def become_grader(config_dir):
    """Started as root with the sandbox on: start the kernel launcher and become the grading
    user for good (`course_tools.privileged`), before anything of a submission is read."""
    from course_tools import privileged
    from course_tools.sandbox import SandboxUnavailable

    coursedir, config, _ = load_course(os.path.abspath(config_dir))
    try:
        privileged.become_grader(config, privileged.course_directory(coursedir))
    except SandboxUnavailable as e:
        raise CannotGrade(str(e)) from None


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_tools.autograde", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="assignments to grade")
    p.add_argument("--all", action="store_true",
                   help="every assignment in the source directory that has submissions")
    p.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    p.add_argument("--scheduler", help="Dask distributed scheduler address, tls://host:port")
    p.add_argument("--worker", metavar="SCHEDULER",
                   help="instead: serve as a Dask worker of SCHEDULER (tls://host:port)")
    p.add_argument("--dask-tls", action="store_true",
                   help=f"instead: make the course's {DASK_PEM} if missing, print how to start "
                        "a scheduler with it")
    p.add_argument("--force", action="store_true", help="regrade already autograded students")
    p.add_argument("--config-dir", default=".", help="directory of nbgrader_config.py")
    p.add_argument("--deadline", type=float, default=DEADLINE,
                   help=f"seconds one submission may take, all included (default {DEADLINE})")
    args = p.parse_args(argv)
    if args.dask_tls or args.worker:
        try:
            course = course_root(args.config_dir)
            pem = dask_pem(course, make=args.dask_tls)
            security = dask_security(course)  # read before becoming the grading user
            if args.worker and os.geteuid() == 0:
                become_grader(args.config_dir)
        except CannotGrade as e:
            print(e, file=sys.stderr)
            return 2
        if args.worker:
            serve_dask(args.worker, security)
        else:
            print(f"dask scheduler --protocol tls --tls-ca-file {pem} --tls-cert {pem} "
                  f"--tls-key {pem} --no-dashboard")
        return 0
    if bool(args.assignments) == args.all:
        p.error("name one or more assignments, or --all")
    if args.workers is not None and args.workers < 1:
        p.error("--workers must be at least 1")
    if args.deadline <= 0:
        p.error("--deadline must be positive")
    skip_iri_grammar()
    try:
        if os.geteuid() == 0:
            become_grader(args.config_dir)
        done = autograde(args.assignments or None, workers=args.workers,
                         scheduler=args.scheduler, force=args.force, config_dir=args.config_dir,
                         deadline=args.deadline)
    except CannotGrade as e:
        print(e, file=sys.stderr)
        return 2
    return 0 if all(done.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
