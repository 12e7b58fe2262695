"""Each wall of the grading sandbox, proved by a hostile submission run by `nbgrader autograde`.

Every hostile answer only earns points if its wall is breached (read-cheats exec stolen code), or
must be stopped by a limit and still be graded (memory, fork bomb, output flood, CPU). The same
cheats graded with the sandbox switched off do earn full points: the walls are what stops them.
"""

import os
import pwd
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from course_tools import synthetic
from course_tools.sandbox import Sandbox, SandboxUnavailable

HONEST = "def square(x):\n    return x * x"
CHEAT = "try:\n{}\nexcept Exception as e:\n    print('blocked:', type(e).__name__)"
LIMITS = """
c.Sandbox.memory_limit = 2 * 2**30
c.Sandbox.nproc_limit = 64
c.Sandbox.cpu_limit = 6
c.SandboxExecute.output_limit = 100_000
c.Execute.timeout = 60
"""


def indent(code):
    return "\n".join("    " + line for line in code.splitlines())


def cheats(base, port):
    """{student: answer} whose points depend on reading a hidden file or reaching the network."""
    steal = ("import json\nnb = json.load(open({!r}))\n"
             "code = [''.join(c['source']) for c in nb['cells'] if 'def square' in "
             "''.join(c['source'])][0]\nexec(code)")
    return {
        "cheat_solution": CHEAT.format(indent(steal.format(
            f"{base}/solutions/sq/sq.ipynb"))),
        "cheat_source": CHEAT.format(indent(steal.format(
            f"{base}/course/source/sq/sq.ipynb"))),
        "cheat_other_student": CHEAT.format(indent(steal.format(
            f"{base}/course/submitted/alice/sq/sq.ipynb"))),
        "cheat_gradebook": CHEAT.format(indent(
            f"import sqlite3\nopen({base + '/course/gradebook.db'!r}, 'rb').read(16)\n"
            f"db = sqlite3.connect('file:{base}/course/gradebook.db?mode=ro', uri=True)\n"
            "hidden = db.execute('select source from source_cell').fetchall()\n"
            "exec(" + repr(HONEST) + ")")),
        "cheat_exec": CHEAT.format(indent(
            "import subprocess, sys\n"
            f"exec(subprocess.run([sys.executable, '-c', {'print(' + repr(HONEST) + ')'!r}], "
            "capture_output=True, text=True).stdout)")),
        "cheat_network": CHEAT.format(indent(
            "import socket\n"
            f"exec(socket.create_connection(('127.0.0.1', {port}), timeout=5).recv(1000).decode())"
        )),
    }


HOGS = {
    "hog_memory": "import numpy as np\nblocks = []\ntry:\n    for _ in range(200):  # 50 GiB\n"
                  "        blocks.append(np.ones(2**25))  # 256 MiB, touched\nexcept MemoryError:\n"
                  "    print('MemoryError at GiB', len(blocks) / 4)\ndel blocks\n" + HONEST,
    "hog_forkbomb": "import os, time\nme = os.getpid()\ntry:\n    while True:\n        os.fork()\n"
                    "except OSError as e:\n    if os.getpid() != me:\n        while True:\n"
                    "            time.sleep(60)\n    print('fork stopped:', type(e).__name__)\n"
                    "print('uid', os.getuid())\n"
                    + HONEST,
    # endless (100 MB/s at most, so the kernel's own buffer does not hit its memory limit first)
    "hog_output": "import time\nwhile True:\n    print('x' * 10**5)\n    time.sleep(0.001)\n"
                  + HONEST,
    "hog_cpu": "while True:\n    pass\n" + HONEST,
}
# Links where nbgrader writes this student's autograded notebook, pointing at the gradebook and at
# a classmate's submission: they land in the kernel's throw-away tmpfs, never on the host.
LINKS = ("import os\nos.symlink({base!r} + '/course/gradebook.db', 'sq.ipynb')\n"
         "os.symlink({base!r} + '/course/submitted/alice/sq/sq.ipynb', 'alice.ipynb')\n" + HONEST)


class Listener:
    """A TCP server on 127.0.0.1 that hands out the answer and counts connections."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port, self.connections = self.sock.getsockname()[1], 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(HONEST.encode())


def processes_of(uid):
    """Pids running as `uid`."""
    pids = []
    for status in os.listdir("/proc"):
        if status.isdigit():
            try:
                with open(f"/proc/{status}/status") as f:
                    found = int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))
            except (OSError, AttributeError):
                continue
            if found == uid:
                pids.append(int(status))
    return pids


@pytest.fixture(scope="module")
def listener():
    server = Listener()
    yield server
    server.sock.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, listener):
    """A class with honest, wrong, cheating and resource-hogging submissions, graded once."""
    Sandbox().check()  # the hogs below are only safe inside the sandbox
    base = str(tmp_path_factory.mktemp("hostile"))
    synthetic.make_course(base, {"sq": synthetic.square_assignment()}, config=LIMITS)
    answers = {"alice": HONEST, "bob": "def square(x):\n    return x + x",
               **cheats(base, listener.port), **HOGS, "links": LINKS.format(base=base)}
    for student, answer in answers.items():
        synthetic.submit(base, "sq", student, answer)
    run = synthetic.nbgrader(base, "autograde", "sq", check=False)
    return base, run, synthetic.scores(base, "sq")


def test_honest_work_is_graded_normally(hostile):
    _, _, scores = hostile
    assert scores["alice"] == {"test_public": 1.0, "test_hidden": 1.0}
    assert scores["bob"] == {"test_public": 0.0, "test_hidden": 0.0}


@pytest.mark.parametrize("student", ["cheat_solution", "cheat_source", "cheat_other_student",
                                     "cheat_gradebook"])
def test_hidden_files_cannot_be_read(hostile, student):
    base, _, scores = hostile
    assert scores[student] == {"test_public": 0.0, "test_hidden": 0.0}
    assert "blocked: FileNotFoundError" in synthetic.outputs(base, "sq", student)


def test_no_other_program_can_be_started(hostile):
    base, _, scores = hostile
    assert scores["cheat_exec"] == {"test_public": 0.0, "test_hidden": 0.0}
    assert "blocked: PermissionError" in synthetic.outputs(base, "sq", "cheat_exec")


def test_links_made_by_the_kernel_never_reach_the_host(hostile):
    base, _, scores = hostile
    assert scores["links"] == {"test_public": 1.0, "test_hidden": 1.0}
    assert not os.path.islink(os.path.join(base, "course", "autograded", "links", "sq", "sq.ipynb"))
    assert scores["alice"] == {"test_public": 1.0, "test_hidden": 1.0}


def test_no_network_even_to_loopback(hostile, listener):
    base, _, scores = hostile
    assert scores["cheat_network"] == {"test_public": 0.0, "test_hidden": 0.0}
    out = synthetic.outputs(base, "sq", "cheat_network")
    assert re.search(r"blocked: (ConnectionRefused|NetworkUnreachable)Error", out)
    assert listener.connections == 0


def test_memory_limit_stops_a_50_GiB_allocation_early(hostile):
    base, _, scores = hostile
    assert scores["hog_memory"] == {"test_public": 1.0, "test_hidden": 1.0}
    got = re.search(r"MemoryError at GiB ([\d.]+)", synthetic.outputs(base, "sq", "hog_memory"))
    assert got and float(got.group(1)) <= 2.0


def test_fork_bomb_is_stopped_and_cleaned_up(hostile):
    base, _, scores = hostile
    assert scores["hog_forkbomb"] == {"test_public": 1.0, "test_hidden": 1.0}
    out = synthetic.outputs(base, "sq", "hog_forkbomb")
    assert "fork stopped: BlockingIOError" in out
    uid = int(re.search(r"uid (\d+)", out).group(1))
    assert uid >= Sandbox().uid_base and processes_of(uid) == []


# a cell that passed a limit once and is done by then: 3 MB printed (over the 1 MiB output
# limit), or one 30 MB message (over the 8 MiB message limit: its connection is closed unread)
ONCE = {"printed": ("print('x' * 3_000_000)", "OutputLimitExceeded"),
        "dropped": ("import sys\nsys.stdout.write('x' * 30_000_000)", "MessageTooLarge")}


@pytest.mark.parametrize("limit", ONCE)
def test_a_cell_past_a_limit_once_leaves_the_rest_graded(tmp_path, limit):
    """A cell past its output or message limit that is done a second later is not interrupted:
    a SIGINT that reached ipykernel after the cell's reply (seen after a classmate's kernel had
    died in the same worker, and under load) left the kernel deaf until the notebook's time
    limit, and the answered notebook scored 0, about one grading in two. Four such notebooks,
    each after a kernel that exits, graded one after another by one worker: each gets full
    marks, within seconds."""
    flood, error = ONCE[limit]
    base = str(tmp_path / "class")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()},
                          config="c.SandboxExecute.notebook_timeout = 30")
    once = [f"s{i}b_once" for i in range(4)]
    for i, student in enumerate(once):
        synthetic.submit(base, "sq", f"s{i}a_died", "import os\nos._exit(3)")
        synthetic.submit(base, "sq", student, HONEST + "\n" + flood)
    run = subprocess.run([sys.executable, "-m", "course_tools.autograde", "sq", "--workers", "1"],
                         cwd=base, env=synthetic._env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    scores = synthetic.scores(base, "sq")
    assert {s: scores[s] for s in once} == dict.fromkeys(
        once, {"test_public": 1.0, "test_hidden": 1.0}), run.stdout
    for student in once:
        out = synthetic.outputs(base, "sq", student)
        assert error in out and "NotebookTimeout" not in out


def test_output_flood_is_cut_and_interrupted(hostile):
    base, _, scores = hostile
    assert scores["hog_output"] == {"test_public": 0.0, "test_hidden": 0.0}
    out = synthetic.outputs(base, "sq", "hog_output")  # (ipykernel batches: may pass 8 MiB)
    assert "OutputLimitExceeded" in out or "MessageTooLarge" in out
    assert "KernelDied" not in out  # interrupted, not left to its CPU limit
    path = os.path.join(base, "course", "autograded", "hog_output", "sq", "sq.ipynb")
    assert os.path.getsize(path) < 200_000


def test_cpu_limit_kills_the_kernel_and_the_notebook_is_still_graded(hostile):
    base, _, scores = hostile
    assert scores["hog_cpu"] == {"test_public": 0.0, "test_hidden": 0.0}
    assert "KernelDied" in synthetic.outputs(base, "sq", "hog_cpu")


def test_batch_and_gradebook_survive(hostile):
    base, run, scores = hostile
    assert run.returncode == 0, run.stderr[-3000:]
    assert all(None not in s.values() for s in scores.values())
    for student in scores:  # only the grader's own files, none from the kernel
        d = os.path.join(base, "course", "autograded", student, "sq")
        assert not any(os.path.islink(os.path.join(d, f)) for f in os.listdir(d))
        assert {os.lstat(os.path.join(d, f)).st_uid for f in os.listdir(d) + ["."]} == {
            pwd.getpwnam(synthetic.GRADER).pw_uid}  # the grading user's, not root's


def test_a_notebook_has_a_wall_clock_deadline(tmp_path):
    """A 28 s sleep against a 6 s notebook limit: killed at 6 s, the rest scores 0, still graded."""
    base = str(tmp_path / "slow")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()},
                          config="c.SandboxExecute.notebook_timeout = 6\nc.Execute.timeout = 30")
    synthetic.submit(base, "sq", "sleeper", "import time\ntime.sleep(28)\n" + HONEST)
    start = time.monotonic()
    run = synthetic.nbgrader(base, "autograde", "sq", check=False)
    took = time.monotonic() - start
    assert run.returncode == 0, run.stderr[-3000:]
    assert took < 25, took
    assert synthetic.scores(base, "sq")["sleeper"] == {"test_public": 0.0, "test_hidden": 0.0}
    out = synthetic.outputs(base, "sq", "sleeper")
    assert "NotebookTimeout" in out and "the notebook's time limit (6 s) was reached" in out


def test_the_same_cheats_work_without_the_sandbox(tmp_path, listener):
    """Control: the walls, not the cheats' code, are what scores them 0."""
    base = str(tmp_path / "open")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()})
    synthetic.submit(base, "sq", "alice", HONEST)
    for student, answer in cheats(base, listener.port).items():
        synthetic.submit(base, "sq", student, answer)
    before = listener.connections
    synthetic.nbgrader(base, "autograde", "sq", env={**synthetic._env(), "COURSE_SANDBOX": "off"})
    assert all(s == {"test_public": 1.0, "test_hidden": 1.0}
               for s in synthetic.scores(base, "sq").values())
    assert listener.connections == before + 1


def test_grading_refuses_without_bubblewrap_unless_opted_out(tmp_path):
    base = str(tmp_path / "nobwrap")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()},
                          config='c.Sandbox.bwrap = "/nonexistent/bwrap"')
    synthetic.submit(base, "sq", "alice", HONEST)
    with pytest.raises(SandboxUnavailable, match="Refusing to grade"):
        Sandbox(bwrap="/nonexistent/bwrap").check()
    run = synthetic.nbgrader(base, "autograde", "sq", check=False)
    assert run.returncode != 0 and "Refusing to grade" in run.stdout + run.stderr
    assert synthetic.scores(base, "sq")["alice"] == {"test_public": None, "test_hidden": None}
    synthetic.nbgrader(base, "autograde", "sq", env={**synthetic._env(), "COURSE_SANDBOX": "off"})
    assert synthetic.scores(base, "sq")["alice"] == {"test_public": 1.0, "test_hidden": 1.0}


def test_the_kernel_computes_with_the_graders_numeric_kernels(tmp_path):
    """OpenBLAS and torch pick their kernels by CPU, and some machines set OPENBLAS_CORETYPE;
    the sandbox passes those variables on, so the student's NumPy rounds as the grader's does
    (np.linalg.eig of a ρ = 1 matrix lands on one side of 1 or the other by kernel)."""
    probe = ("import os\nfrom bptt_lib.jacobians import matrix_with_spectral_radius\n"
             "W = matrix_with_spectral_radius(5, 1.0, seed=2)\n"
             "print('coretype', os.environ.get('OPENBLAS_CORETYPE'),\n"
             "      repr(float(np.abs(np.linalg.eigvals(W)).max())))\n")
    env = {**synthetic._env(), "OPENBLAS_CORETYPE": "Prescott"}
    graders = subprocess.run(
        [sys.executable, "-c", "import numpy as np\n" + probe],
        env=env, capture_output=True, text=True, check=True).stdout.strip()
    base = str(tmp_path / "blas")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()})
    synthetic.submit(base, "sq", "alice", probe + HONEST)
    synthetic.nbgrader(base, "autograde", "sq", env=env)
    assert graders.startswith("coretype Prescott ")
    assert graders in synthetic.outputs(base, "sq", "alice")
    assert synthetic.scores(base, "sq")["alice"] == {"test_public": 1.0, "test_hidden": 1.0}


def test_a_watched_socket_gets_its_monitor_when_its_fd_was_used_before():
    """The grader's kernel sockets are watched for disconnections (`dropped_messages`) through a
    monitor at an inproc address. pyzmq's default address names the socket's fd, which a socket
    closed with linger can still hold bound when a new socket gets that fd: "Address already in
    use", and that notebook's grading fails. Here that stale endpoint is bound on purpose; the
    control is pyzmq's default address, refused."""
    import zmq

    from course_tools.sandbox import watch_disconnections

    context = zmq.Context()
    sock, stale = context.socket(zmq.DEALER), context.socket(zmq.PAIR)
    stale.bind(f"inproc://monitor.s-{sock.FD}")  # as a closed socket on this fd left it
    watch_disconnections(sock).close(linger=0)
    with pytest.raises(zmq.ZMQError, match="Address already in use"):
        sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    context.destroy(linger=0)
