"""Autograde every submission of an assignment in parallel; same results as `nbgrader autograde`.

    python -m course_tools.autograde ASSIGNMENT [--workers N] [--scheduler tcp://HOST:PORT]

Run it where `nbgrader_config.py` is, like nbgrader. Each student is graded by a worker that runs
plain `nbgrader autograde ASSIGNMENT --student S` (so the course's config, the sandbox included,
applies unchanged) in a private copy: the config, a snapshot of the gradebook, the assignment's
source files and that student's submission. The worker sends back the autograded files and the
student's rows of its gradebook; this process alone writes them into the real course, one student
at a time, so SQLite never sees two writers. Workers are local processes (`--workers`, default:
the machine's cores) or, with `--scheduler`, the workers of a running Dask distributed cluster,
which need the same Python environment but no shared filesystem.
"""

import argparse
import glob
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import capture_log
from traitlets.config.loader import PyFileConfigLoader

from course_tools.sandbox import Sandbox, SandboxUnavailable

_one_at_a_time = threading.Lock()
STEPS = ("source", "release", "submitted", "autograded", "feedback")
COLUMNS = {  # gradebook state that autograde writes, per object
    "submission": ("timestamp", "extension"),
    "notebook": ("flagged", "late_submission_penalty"),
    "grade": ("auto_score", "manual_score", "extra_credit", "needs_manual_grade"),
    "comment": ("auto_comment", "manual_comment"),
}


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


def grade_student(common, student, files):
    """Worker: autograde one student in a private course copy; return files, state and log.

    Runs nbgrader's Autograde in this process (a fresh `nbgrader` process per student would pay
    seconds of imports each time); Autograde chdirs, so one student at a time per process.
    """
    assignment = common["assignment"]
    with _one_at_a_time, tempfile.TemporaryDirectory(prefix="autograde-") as tmp:
        course = os.path.join(tmp, "course")
        os.makedirs(course)
        with open(os.path.join(tmp, "nbgrader_config.py"), "w") as f:
            f.write(common["config"])
        with open(os.path.join(course, "gradebook.db"), "wb") as f:
            f.write(common["gradebook"])
        write_tree(course, {**common["files"], **files})
        config = PyFileConfigLoader("nbgrader_config.py", path=tmp).load_config()
        config.CourseDirectory.root = course
        for step in STEPS:  # the course's own (maybe absolute) directories are not used here
            setattr(config.CourseDirectory, f"{step}_directory", step)
        config.CourseDirectory.db_url = f"sqlite:///{os.path.join(course, 'gradebook.db')}"
        config.CourseDirectory.course_id = common["course_id"]
        coursedir = CourseDirectory(config=config, assignment_id=assignment, student_id=student)
        app = Autograde(coursedir=coursedir, config=config)
        app.force = True
        run = capture_log(app)
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            state = submission_state(gb, assignment, student)
        return {"student": student, "ok": run["success"],
                "log": run.get("log", "") + run.get("error", ""), "state": state,
                "files": read_tree(os.path.join(course, "autograded", student, assignment))}


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
    """The course's CourseDirectory and config text, from config_dir/nbgrader_config.py."""
    path = os.path.join(config_dir, "nbgrader_config.py")
    config = PyFileConfigLoader("nbgrader_config.py", path=config_dir).load_config()
    cwd = os.getcwd()
    os.chdir(config_dir)  # relative roots in the config are relative to it
    try:
        coursedir = CourseDirectory(config=config)
        coursedir.root = os.path.abspath(coursedir.root)
    finally:
        os.chdir(cwd)
    with open(path) as f:
        return coursedir, config, f.read()


def autograde(assignment, *, workers=None, scheduler=None, force=False, config_dir=".", log=print):
    """Grade all submissions of `assignment`; return {student: True if graded, False if failed}."""
    coursedir, config, config_text = load_course(os.path.abspath(config_dir))
    if Sandbox(config=config).enabled:
        Sandbox(config=config).check()  # refuse before grading anyone
    path = lambda step, student: coursedir.format_path(  # noqa: E731
        getattr(coursedir, f"{step}_directory"), student, assignment)
    students = sorted(
        os.path.basename(os.path.dirname(p)) for p in glob.glob(path("submitted", "*"))
        if force or not os.path.isdir(path("autograded", os.path.basename(os.path.dirname(p)))))
    source = read_tree(path("source", "."), os.path.join("source", assignment))
    common = {
        "assignment": assignment, "course_id": coursedir.course_id, "config": config_text,
        "gradebook": snapshot(coursedir.db_url.removeprefix("sqlite:///")),
        "files": {k: v for k, v in source.items() if not k.endswith(".ipynb")},
    }
    jobs = {s: read_tree(path("submitted", s), os.path.join("submitted", s, assignment))
            for s in students}
    log(f"autograding {assignment}: {len(students)} submissions, "
        + (f"Dask scheduler {scheduler}" if scheduler else f"{workers or os.cpu_count()} workers"))
    done = {}
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        for result in _in_order(_run(common, jobs, workers, scheduler), students):
            s = result["student"]
            dest = path("autograded", s)
            if os.path.isdir(dest):
                shutil.rmtree(dest)
            os.makedirs(os.path.dirname(dest), exist_ok=True)  # nbgrader leaves it, even on failure
            write_tree(dest, result["files"])
            if result["state"] is not None:
                apply_state(gb, assignment, s, result["state"])
            done[s] = result["ok"]
            log(f"  {s}: {'graded' if result['ok'] else 'FAILED'}")
            if not result["ok"]:
                log(result["log"])
    return done


def _in_order(results, students):
    """Results re-ordered by student, as serial nbgrader writes them (gradebook row order)."""
    waiting, order = {}, iter(students)
    following = next(order, None)
    for result in results:
        waiting[result["student"]] = result
        while following in waiting:
            yield waiting.pop(following)
            following = next(order, None)


def _run(common, jobs, workers, scheduler):
    """Yield grade_student results as they finish, from local processes or a Dask cluster."""
    from course_tools.autograde import grade_student  # by reference, also when run as __main__

    if scheduler:
        from distributed import Client
        from distributed import as_completed as dask_completed

        with Client(scheduler) as client:
            shared = client.scatter(common, broadcast=True)
            futures = [client.submit(grade_student, shared, s, files, pure=False)
                       for s, files in jobs.items()]
            for future in dask_completed(futures):
                yield future.result()
    else:
        spawn = get_context("spawn")
        with ProcessPoolExecutor(workers or os.cpu_count(), mp_context=spawn) as pool:
            futures = [pool.submit(grade_student, common, s, files) for s, files in jobs.items()]
            for future in as_completed(futures):
                yield future.result()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_tools.autograde", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignment")
    p.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    p.add_argument("--scheduler", help="Dask distributed scheduler address, tcp://host:port")
    p.add_argument("--force", action="store_true", help="regrade already autograded students")
    p.add_argument("--config-dir", default=".", help="directory of nbgrader_config.py")
    args = p.parse_args(argv)
    try:
        done = autograde(args.assignment, workers=args.workers, scheduler=args.scheduler,
                         force=args.force, config_dir=args.config_dir)
    except SandboxUnavailable as e:
        print(e, file=sys.stderr)
        return 2
    return 0 if all(done.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
