"""One grading job in a process of its own: a forked child, in a memory cgroup of its own when
the command has one to make it in (`cgroups.job_group`: started as root, on cgroup v1), killed
at a deadline. Whatever a submission makes the grader hold (past the relay's caps,
`course_tools.relay`) ends its own job only. Both grading commands use it: `nbgrader autograde`
per notebook (`instructor.SafeAutograde`), `python -m course_tools.autograde` per submission.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
import traceback

DEADLINE = 600        # seconds per job, by default
JOB_MEMORY = 1 << 30  # bytes a job's process may use (its memory cgroup, when there is one)


class JobFailed(Exception):
    """The job raised (`log`: its traceback), died or overran its deadline (`reason`)."""

    def __init__(self, reason: str, log: str = ""):
        super().__init__(reason)
        self.reason, self.log = reason, log


def run_as_job(job, deadline=DEADLINE, memory=JOB_MEMORY):
    """job()'s (picklable) result, computed in a forked child of this process, which keeps this
    process's imports; JobFailed if the child raised, died or was not done within `deadline`
    seconds (then it is killed, and the sandboxes it started die with it)."""
    from course_tools import cgroups

    group = cgroups.job_group(memory)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        try:
            if group is not None:
                group.enter_self()
            data = pickle.dumps((True, job()))
        except BaseException:
            data = pickle.dumps((False, traceback.format_exc()))
        with os.fdopen(write_end, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(write_end)
    chunks, end = [], time.monotonic() + deadline
    with os.fdopen(read_end, "rb", buffering=0) as f:
        while (left := end - time.monotonic()) > 0 and select.select([f], [], [], left)[0]:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    oom = group is not None and group.oom_kills()
    if group is not None:
        group.remove()
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL and time.monotonic() >= end:
        raise JobFailed(f"not done by its deadline of {deadline:g} s")
    try:
        ok, value = pickle.loads(b"".join(chunks))
    except Exception:
        why = f": it needed more than its {memory / 2**30:g} GiB" if oom else ""
        raise JobFailed(f"the grading process died (status {status}){why}") from None
    if not ok:
        raise JobFailed("the grader raised an exception", value)
    return value
