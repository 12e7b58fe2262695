"""Autograde every submission of one or more assignments in parallel; same results as `nbgrader
autograde` run on each of them.

    python -m course_tools.autograde ASSIGNMENT [ASSIGNMENT ...] [--workers N] [--force]
    python -m course_tools.autograde --all [--scheduler tcp://HOST:PORT]

Run it where `nbgrader_config.py` is, like nbgrader. One pool of workers grades the whole batch,
one submission (student, assignment) per job, each with nbgrader's Autograde (so the course's
config, the sandbox included, applies unchanged) in the worker's private copy of the course: the
config, a snapshot of the gradebook and the assignments' source files, set up once per batch. The
worker sends back the autograded files and the submission's rows of its gradebook; this process
alone writes them into the real course, in nbgrader's order, so SQLite never sees two writers.
Workers are local processes (`--workers`, default: the machine's cores), started before anything
else so their imports overlap this process's and, from 2 up to as many as there are CPUs, each
pinned to a CPU of its own with the kernels it starts; or, with `--scheduler`, the workers of a
running Dask distributed cluster, which need the same Python environment but no shared filesystem.

nbgrader, the course config and the sandbox are imported inside the functions that use them: a
module-level import would delay the workers' start by seconds.
"""

import argparse
import glob
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from functools import partial
from multiprocessing import get_context
from multiprocessing.util import Finalize

_one_at_a_time = threading.Lock()
_private_course = None  # this worker's PrivateCourse, for the batch it last graded
STEPS = ("source", "release", "submitted", "autograded", "feedback")
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


def read_tree(root, prefix=""):
    """{prefix/path relative to root: (bytes, mode)} of every file under root."""
    out = {}
    for path in glob.glob(os.path.join(root, "**"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[os.path.join(prefix, os.path.relpath(path, root))] = (
                    f.read(), os.stat(path).st_mode & 0o7777)
    return out


def write_tree(root, files):
    for rel, (data, mode) in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)


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
    """A worker's copy of the course for one batch (`common`): config, gradebook snapshot and
    source files, written and loaded once; submissions are graded in it one at a time."""

    def __init__(self, common):
        from traitlets.config.loader import PyFileConfigLoader

        self.batch = common["batch"]
        tmp = tempfile.mkdtemp(prefix="autograde-")
        self.remove = Finalize(self, shutil.rmtree, args=(tmp, True), exitpriority=0)
        self.root = os.path.join(tmp, "course")
        write_tree(tmp, {"nbgrader_config.py": (common["config"], 0o644),
                         "course/gradebook.db": (common["gradebook"], 0o644)})
        write_tree(self.root, common["files"])
        config = PyFileConfigLoader("nbgrader_config.py", path=tmp).load_config()
        # the copy's layout: nbgrader's defaults under root, whatever the course's directories
        config.CourseDirectory.root = self.root
        for step in STEPS:
            setattr(config.CourseDirectory, f"{step}_directory", step)
        config.CourseDirectory.db_url = f"sqlite:///{os.path.join(self.root, 'gradebook.db')}"
        config.CourseDirectory.course_id = common["course_id"]
        config.Autograde.pre_convert_hook = None  # the batch's assignments were checked already
        self.config = config

    def grade(self, assignment, student, files):
        """Autograde one submission (`files` under submitted/); return files, state and log."""
        from nbgrader.api import Gradebook
        from nbgrader.converters import Autograde
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.utils import capture_log

        write_tree(self.root, files)
        coursedir = CourseDirectory(config=self.config, assignment_id=assignment,
                                    student_id=student)
        app = Autograde(coursedir=coursedir, config=self.config)
        app.force = True
        run = capture_log(app)
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            state = submission_state(gb, assignment, student)
        graded = os.path.join(self.root, "autograded", student, assignment)
        result = {"assignment": assignment, "student": student, "ok": run["success"],
                  "log": run.get("log", "") + run.get("error", ""), "state": state,
                  "files": read_tree(graded)}
        for step in ("submitted", "autograded"):
            shutil.rmtree(os.path.join(self.root, step, student, assignment), ignore_errors=True)
        return result


def grade_submission(common, assignment, student, files):
    """Worker: autograde one submission in this worker's private copy of the course.

    Runs nbgrader's Autograde in this process (a fresh `nbgrader` process per submission would pay
    seconds of imports each time); Autograde chdirs, so one submission at a time per process.
    """
    global _private_course
    with _one_at_a_time:
        if _private_course is None or _private_course.batch != common["batch"]:
            if _private_course is not None:
                _private_course.remove()
            _private_course = PrivateCourse(common)
        return _private_course.grade(assignment, student, files)


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


def snapshot(db_path):
    """A consistent copy of a SQLite database, as bytes."""
    with tempfile.NamedTemporaryFile(suffix=".db") as tmp:
        src, dst = sqlite3.connect(db_path), sqlite3.connect(tmp.name)
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
        with open(tmp.name, "rb") as f:
            return f.read()


def load_course(config_dir):
    """The course's CourseDirectory and config, and the config file's bytes."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=config_dir).load_config()
    cwd = os.getcwd()
    os.chdir(config_dir)  # relative roots in the config are relative to it
    try:
        coursedir = CourseDirectory(config=config)
        coursedir.root = os.path.abspath(coursedir.root)
    finally:
        os.chdir(cwd)
    with open(os.path.join(config_dir, "nbgrader_config.py"), "rb") as f:
        return coursedir, config, f.read()


def find_batch(coursedir, assignments, force):
    """{assignment: [students to grade]} for `assignments` (None: every assignment in the source
    directory that has submissions); raises CannotGrade for one unknown, never generated or
    without submissions."""
    from course_tools.instructor import NotGenerated, require_generated

    path = partial(step_path, coursedir)
    submitters = lambda a: sorted(  # noqa: E731
        os.path.basename(os.path.dirname(p)) for p in glob.glob(path("submitted", "*", a)))
    if assignments is None:
        assignments = [a for a in sorted(map(os.path.basename,
                                             glob.glob(path("source", ".", "*")))) if submitters(a)]
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
              log=print):
    """Grade all submissions of `assignments` (names, or None: all with submissions).

    Returns {(assignment, student): True if graded, False if failed}.
    """
    with _workers(workers, scheduler) as run:
        from nbgrader.api import Gradebook

        from course_tools.sandbox import Sandbox, SandboxUnavailable

        coursedir, config, config_text = load_course(os.path.abspath(config_dir))
        if Sandbox(config=config).enabled:
            try:
                Sandbox(config=config).check()  # refuse before grading anyone
            except SandboxUnavailable as e:
                raise CannotGrade(str(e)) from e
        batch = find_batch(coursedir, assignments, force)
        path = partial(step_path, coursedir)
        source = {}
        for a in batch:
            source.update(read_tree(path("source", ".", a), os.path.join("source", a)))
        common = {
            "batch": uuid.uuid4().hex, "course_id": coursedir.course_id, "config": config_text,
            "gradebook": snapshot(coursedir.db_url.removeprefix("sqlite:///")),
            "files": {k: v for k, v in source.items() if not k.endswith(".ipynb")},
        }
        jobs = [(a, s, read_tree(path("submitted", s, a), os.path.join("submitted", s, a)))
                for a, students in batch.items() for s in students]
        for a, students in batch.items():
            log(f"autograding {a}: {len(students)} submissions")
        log(f"on Dask scheduler {scheduler}" if scheduler
            else f"on {workers or os.cpu_count()} workers")
        done, progress = {}, Progress(len(jobs), log)
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            for result in _in_order(_reported(run(common, jobs), progress),
                                    [(a, s) for a, s, _ in jobs]):
                a, s = result["assignment"], result["student"]
                dest = path("autograded", s, a)
                if os.path.isdir(dest):
                    shutil.rmtree(dest)
                os.makedirs(os.path.dirname(dest), exist_ok=True)  # nbgrader leaves it, even failed
                write_tree(dest, result["files"])
                if result["state"] is not None:
                    apply_state(gb, a, s, result["state"])
                done[a, s] = result["ok"]
    return done


def _reported(results, progress):
    """The results, each counted in `progress` as soon as it arrives."""
    for result in results:
        progress.update(f"{result['assignment']}/{result['student']}", result["ok"],
                        result["log"])
        yield result


def _in_order(results, order):
    """Results re-ordered by (assignment, student), as nbgrader writes them (gradebook rows)."""
    waiting, order = {}, iter(order)
    following = next(order, None)
    for result in results:
        waiting[result["assignment"], result["student"]] = result
        while following in waiting:
            yield waiting.pop(following)
            following = next(order, None)


@contextmanager
def _workers(workers, scheduler):
    """Start the workers now; yield run(common, jobs), which yields grade_submission results as
    they finish, from local processes or a Dask cluster."""
    from course_tools.autograde import grade_submission, warm_up  # by reference, also as __main__

    if scheduler:
        from distributed import Client
        from distributed import as_completed as dask_completed

        with Client(scheduler) as client:
            def run(common, jobs):
                shared = client.scatter(common, broadcast=True)
                for future in dask_completed([client.submit(grade_submission, shared, *job,
                                                            pure=False) for job in jobs]):
                    yield future.result()
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
                for future in as_completed([pool.submit(grade_submission, common, *job)
                                            for job in jobs]):
                    yield future.result()
            yield run


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_tools.autograde", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="assignments to grade")
    p.add_argument("--all", action="store_true",
                   help="every assignment in the source directory that has submissions")
    p.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    p.add_argument("--scheduler", help="Dask distributed scheduler address, tcp://host:port")
    p.add_argument("--force", action="store_true", help="regrade already autograded students")
    p.add_argument("--config-dir", default=".", help="directory of nbgrader_config.py")
    args = p.parse_args(argv)
    if bool(args.assignments) == args.all:
        p.error("name one or more assignments, or --all")
    if args.workers is not None and args.workers < 1:
        p.error("--workers must be at least 1")
    skip_iri_grammar()
    try:
        done = autograde(args.assignments or None, workers=args.workers,
                         scheduler=args.scheduler, force=args.force, config_dir=args.config_dir)
    except CannotGrade as e:
        print(e, file=sys.stderr)
        return 2
    return 0 if all(done.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
