"""Shared fixtures.

`site`: the built book, both editions, rebuilt once per test session (`make site`) when it is
missing or older than any source it is made from. `BPTT_SITE_OUT=<dir>` builds and tests under
<dir>/_build instead of the working tree's _build.

`no_process_left` (every session): no process the session started outlives it.
"""

from __future__ import annotations

import hashlib
import multiprocessing.resource_tracker
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BPTT_SITE_OUT", ROOT)).resolve() / "_build"
# the training runs the site build kept (bptt_lib.experiments.run_all), reused where valid
os.environ.setdefault("BPTT_EXPERIMENT_CACHE", str(BUILD / "experiments"))
SESSION = "BPTT_TEST_SESSION"  # environment: marks every process a test session starts
SITE_SOURCES = ("_config.yml", "_toc.yml", "book", "bptt_lib", "exercises", "Makefile",
                "pyproject.toml")


def pytest_configure(config):
    """Mark the session's processes (see `no_process_left`).

    As root, the tests' temporary directories lie in a base of this checkout's own, not in
    /tmp/pytest-of-root: pytest closes that (0700) at the start of every session, of any
    checkout, and the grading user must reach the courses the tests make
    (`course_tools.synthetic.give_to_grader`). A session run beside another in the same checkout
    (`make test`'s lanes) names a base of its own: BPTT_TEST_LANE=<name>."""
    if os.geteuid() == 0 and not config.option.basetemp:
        tag = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
        lane = os.environ.get("BPTT_TEST_LANE", "")
        config.option.basetemp = f"/tmp/bptt-pytest-{tag}" + (f"-{lane}" if lane else "")
    os.environ[SESSION] = f"{os.getpid()}-{secrets.token_hex(8)}"


def session_processes() -> dict[int, str]:
    """{pid: command line} of the live processes that carry this session's mark in their
    environment: started by the session, directly or not, and orphaned or not (as root, those of
    every user; environments a process cleared for its children are not seen)."""
    mark = f"{SESSION}={os.environ[SESSION]}".encode()
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def no_process_left():
    """After every test and fixture of the session: no process it started is still running.
    Those found are killed, and the session fails naming them. (multiprocessing's resource
    tracker, which lives as long as pytest, is stopped first.)"""
    yield
    multiprocessing.resource_tracker._resource_tracker._stop()
    left = session_processes()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, "processes of the test session still running (now killed):\n" + "\n".join(
        f"  {pid}: {cmd}" for pid, cmd in left.items())


@dataclass(frozen=True)
class Site:
    student: Path       # the student edition's HTML root (what `make book` makes)
    instructor: Path    # the instructor edition's HTML root (`make book-instructor`)


def _newest_source_mtime() -> float:
    paths = [ROOT / name for name in SITE_SOURCES]
    files = [p for p in paths if p.is_file()]
    files += [f for p in paths if p.is_dir() for f in p.rglob("*")
              if f.is_file() and "__pycache__" not in f.parts]
    return max(f.stat().st_mtime for f in files)


@pytest.fixture(scope="session")
def site() -> Site:
    out = BUILD
    built = Site(out / "html", out / "instructor" / "_build" / "html")
    stamp = out / ".site-built"   # written only after both editions built without a warning
    outputs = [stamp, built.student / ".buildinfo", built.instructor / ".buildinfo"]
    fresh = all(p.exists() for p in outputs) and stamp.stat().st_mtime >= max(
        _newest_source_mtime(), *(p.stat().st_mtime for p in outputs[1:]))
    if not fresh:
        stamp.unlink(missing_ok=True)
        log = out / "site-build.log"
        out.mkdir(parents=True, exist_ok=True)
        with log.open("w") as f:
            run = subprocess.run(["make", "site", f"SITE_OUT={out.parent}"], cwd=ROOT,
                                 stdout=f, stderr=subprocess.STDOUT)
        if run.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            pytest.fail(f"`make site` failed (exit {run.returncode}); full log: {log}\n{tail}")
        stamp.touch()
    return built


@pytest.fixture(scope="session")
def graded_corpora(tmp_path_factory):
    """tests/submissions/ graded through INSTRUCTORS.md's workflow in a fresh course
    (tests/test_workflow.py, which checks it), once for every test that reads it."""
    from test_workflow import grade_corpora

    return grade_corpora(tmp_path_factory)
