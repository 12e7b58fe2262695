"""A synthetic nbgrader class for tests and benchmarks: assignments, releases and submissions.

Layout (like the real course): `<base>/nbgrader_config.py`, `<base>/solutions/<a>/<a>.ipynb`, and
the instructor's course directory `<base>/course/` with `source/`, `release/`, `submitted/` and the
gradebook. A submission is the released notebook with its answer cell replaced.
"""

import json
import os
import pwd
import shutil
import subprocess
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

TIMESTAMP = "2026-01-15 12:00:00.000000 UTC"
GRADER = "bptt-grader"  # the unprivileged user grading runs as when started by root


def grading_user():
    """The pwd entry of GRADER, created as a system user if missing (needs root)."""
    if subprocess.run(["id", "-u", GRADER], capture_output=True).returncode:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", GRADER], check=True)
    return pwd.getpwnam(GRADER)


def give_to_grader(course):
    """As root: make `course` (created if missing) and everything in it the grading user's
    (`grading_user`), and let that user reach it (o+x on the directories above it), as
    INSTRUCTORS.md's one-time set-up asks. Otherwise nothing."""
    os.makedirs(course, exist_ok=True)
    if os.geteuid() != 0:
        return
    grading_user()
    subprocess.run(["chown", "-R", f"{GRADER}:", course], check=True)
    d = os.path.dirname(os.path.abspath(course))
    while d != "/":
        os.chmod(d, os.stat(d).st_mode | 0o001)
        d = os.path.dirname(d)


def _meta(grade_id, *, solution=False, points=None):
    grade = points is not None
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def square_assignment(setup="import numpy as np"):
    """Source notebook: `setup`, a `square(x)` answer cell, public + hidden test (1 pt each)."""
    cells = [
        new_code_cell(setup, metadata=_meta("setup")),
        new_code_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n"
                      "    ### END SOLUTION", metadata=_meta("answer", solution=True)),
        new_code_cell("assert square(3) == 9", metadata=_meta("test_public", points=1)),
        new_code_cell("### BEGIN HIDDEN TESTS\nassert np.allclose(square(np.arange(4.0)), "
                      "[0, 1, 4, 9])\n### END HIDDEN TESTS",
                      metadata=_meta("test_hidden", points=1)),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})


def _env():
    """os.environ with this Python's bin on PATH (nbgrader runs `alembic` from there)."""
    bin_dir = os.path.dirname(sys.executable)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def nbgrader(base, *args, check=True, env=None):
    """Run `nbgrader ARGS` in `base` (where nbgrader_config.py is); return the CompletedProcess."""
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=base, env=env or _env(),
                         capture_output=True, text=True)
    if check and run.returncode:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{run.stdout}\n{run.stderr}")
    return run


def make_course(base, assignments, config="", sandbox=True):
    """Create config, solutions and source for `assignments` {name: notebook}; release them.

    sandbox=False leaves out the `configure(c)` hook: stock nbgrader.
    """
    os.makedirs(base, exist_ok=True)
    hook = "from course_tools.sandbox import configure  # noqa: E402\n\nconfigure(c)\n"
    with open(os.path.join(base, "nbgrader_config.py"), "w") as f:
        f.write(f'c = get_config()  # noqa: F821\nc.CourseDirectory.root = "course"\n'
                f'c.CourseDirectory.course_id = "synthetic"\n{config}\n{hook if sandbox else ""}')
    give_to_grader(os.path.join(base, "course"))
    for name, nb in assignments.items():
        for top in ("solutions", "course/source"):
            os.makedirs(os.path.join(base, top, name), exist_ok=True)
            nbformat.write(nb, os.path.join(base, top, name, f"{name}.ipynb"))
        nbgrader(base, "generate_assignment", name, "--force")


def submit(base, assignment, student, answer):
    """Submit the release of `assignment` with the answer cell's source set to `answer`.

    `answer=None` submits a corrupt (non-JSON) notebook.
    """
    dest = os.path.join(base, "course", "submitted", student, assignment)
    os.makedirs(dest, exist_ok=True)
    path = os.path.join(dest, f"{assignment}.ipynb")
    if answer is None:
        with open(path, "w") as f:
            f.write("{ this is not a notebook")
    else:
        nb = nbformat.read(os.path.join(base, "course", "release", assignment,
                                        f"{assignment}.ipynb"), as_version=4)
        next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")).source = answer
        nbformat.write(nb, path)
    with open(os.path.join(dest, "timestamp.txt"), "w") as f:
        f.write(TIMESTAMP)


def scores(base, assignment):
    """{student: {grade_id: auto_score}} for `assignment`, from the gradebook."""
    from nbgrader.api import Gradebook

    db = f"sqlite:///{os.path.join(base, 'course', 'gradebook.db')}"
    with Gradebook(db) as gb:
        return {sub.student_id: {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}
                for sub in gb.find_assignment(assignment).submissions}


def outputs(base, assignment, student):
    """All text (stream, error) of the autograded notebook, as one string."""
    path = os.path.join(base, "course", "autograded", student, assignment, f"{assignment}.ipynb")
    nb = nbformat.read(path, as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def clone(base, dest):
    """Copy a whole synthetic class (to grade the same submissions two ways)."""
    shutil.copytree(base, dest)
    give_to_grader(os.path.join(dest, "course"))
    return dest
