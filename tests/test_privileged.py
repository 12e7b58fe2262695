"""Grading started as root runs unprivileged; only the kernel launcher keeps root.

During a sandboxed batch (serial `nbgrader autograde`, and `python -m course_tools.autograde
--workers 2`), every process of the command that is not the launcher or what it started (the
processes reading submissions, decoding the kernels' messages, writing the gradebook) runs with no
uid 0 and no capability; the files they write belong to the grading user. A root-owned course is
refused, saying what to do. The launcher refuses malformed requests and connections from other
users, and its kernels' sockets are reachable by the grading user.
"""

import ast
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from course_tools import privileged, synthetic
from course_tools.sandbox import RUN_DIR, Sandbox

ROOT = Path(__file__).resolve().parents[1]

HONEST = "def square(x):\n    return x * x"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


def _status(pid):
    """({field: value} of /proc/<pid>/status, parent pid), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return None
    return fields, int(fields["PPid"])


def _tree(top):
    """{pid: status fields} of `top` and every process below it."""
    found, parents = {}, {}
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        got = _status(pid)
        if got:
            found[pid], parents[pid] = got
    below, todo = {}, [top]
    while todo:
        pid = todo.pop()
        if pid in found:
            below[pid] = found[pid]
            todo += [p for p, parent in parents.items() if parent == pid]
    return below, parents


def _watch(proc):
    """Sample the command's processes until it ends: (grading processes seen, kernels seen,
    offenders), once the command has dropped its privileges (it forks the launcher first). The
    launcher is the command's one root Python child; it and everything below it (cgroup shell,
    prlimit, bwrap, the kernels) are its side."""
    graders, kernels, offenders = set(), set(), []
    while proc.poll() is None:
        time.sleep(0.1)
        procs, parents = _tree(proc.pid)
        if procs.get(proc.pid, {}).get("Uid", "0").split()[0] == "0":  # not yet dropped
            continue
        launchers = {p for p, s in procs.items() if parents[p] == proc.pid and
                     s["Uid"].split()[0] == "0" and s["Name"].startswith("python")}
        side = set(launchers)
        while more := {p for p in procs if parents[p] in side} - side:
            side |= more
        for pid, s in procs.items():
            if pid in side:
                if int(s["Uid"].split()[0]) >= Sandbox().uid_base:
                    kernels.add(pid)
                continue
            if set(s["Uid"].split()) & {"0"} or int(s["CapEff"], 16) or \
                    s["NoNewPrivs"].strip() != "1":
                offenders.append((pid, s["Name"], s["Uid"], s["CapEff"]))
            else:
                graders.add(pid)
    return graders, kernels, offenders


def _class(base, students=4):
    synthetic.make_course(base, {"sq": synthetic.square_assignment()})
    for i in range(students):
        synthetic.submit(base, "sq", f"s{i}", "import time\ntime.sleep(1)\n" + HONEST)


def _owned_by_grader(base):
    uid = synthetic.grading_user().pw_uid
    course = os.path.join(base, "course")
    paths = [os.path.join(course, "gradebook.db")]
    for step in ("autograded", "feedback"):
        for dirpath, _, files in os.walk(os.path.join(course, step)):
            paths += [dirpath, *(os.path.join(dirpath, n) for n in files)]
    assert len(paths) > 10
    assert {p: os.lstat(p).st_uid for p in paths} == dict.fromkeys(paths, uid)


@pytest.mark.parametrize("command", [
    ["-m", "nbgrader", "autograde", "sq"],
    ["-m", "course_tools.autograde", "sq", "--workers", "2"],
])
def test_everything_but_the_launcher_grades_unprivileged(tmp_path, command):
    base = str(tmp_path / "class")
    _class(base)
    proc = subprocess.Popen([sys.executable, *command], cwd=base, env=synthetic._env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    graders, kernels, offenders = _watch(proc)
    out = proc.communicate()[0]
    assert proc.returncode == 0, out[-3000:]
    assert offenders == [], offenders
    assert len(graders) >= (3 if "--workers" in command else 1) and kernels, (graders, kernels)
    assert all(s == {"test_public": 1.0, "test_hidden": 1.0}
               for s in synthetic.scores(base, "sq").values())
    synthetic.nbgrader(base, "generate_feedback", "sq")
    _owned_by_grader(base)


def test_a_course_owned_by_root_is_refused_saying_what_to_do(tmp_path):
    base = str(tmp_path / "class")
    _class(base, students=1)
    os.chown(os.path.join(base, "course"), 0, 0)
    serial = synthetic.nbgrader(base, "autograde", "sq", check=False)
    parallel = subprocess.run([sys.executable, "-m", "course_tools.autograde", "sq"], cwd=base,
                              env=synthetic._env(), capture_output=True, text=True)
    for run in (serial, parallel):
        assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
        assert re.search(r"Refusing to grade as root: the course directory \S+ belongs to root",
                         run.stderr)
        assert "useradd --system grader; chown -R grader" in run.stderr
    assert parallel.returncode == 2
    assert not os.path.exists(os.path.join(base, "course", "autograded"))


def test_a_grading_user_that_cannot_be_had_refuses_to_grade(tmp_path):
    """nbgrader only logs an exception in a config file, and would then grade as root without
    the course's config: every failure to become the grading user must end the command."""
    base = str(tmp_path / "class")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()})
    synthetic.submit(base, "sq", "s0", HONEST)
    with open(os.path.join(base, "nbgrader_config.py")) as f:
        config = f.read()
    with open(os.path.join(base, "nbgrader_config.py"), "w") as f:
        f.write(config.replace("configure(c)", 'c.Sandbox.grader_user = "no-such-user"\n'
                                               "configure(c)"))
    serial = synthetic.nbgrader(base, "autograde", "sq", check=False)
    parallel = subprocess.run([sys.executable, "-m", "course_tools.autograde", "sq"], cwd=base,
                              env=synthetic._env(), capture_output=True, text=True)
    for run in (serial, parallel):
        assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
        assert "Refusing to grade: no grading user" in run.stderr, run.stderr[-2000:]
        assert "no-such-user" in run.stderr
    assert not os.path.exists(os.path.join(base, "course", "autograded"))


def test_a_config_that_fails_before_configure_runs_nothing(tmp_path):
    """nbgrader only logs an exception raised in its config file and goes on with its defaults:
    a course kept where its config is (nbgrader's own layout) with a typo above configure(c) is
    graded as root, unsandboxed (the control). After fail_closed(), no nbgrader command runs."""
    for guarded in (False, True):
        base = str(tmp_path / f"class-{guarded}")
        synthetic.make_course(base, {"sq": synthetic.square_assignment()})
        synthetic.submit(base, "sq", "s0", HONEST)
        course = os.path.join(base, "course")
        with open(os.path.join(base, "nbgrader_config.py")) as f:
            config = f.read().replace('root = "course"', 'root = "."')
        with open(os.path.join(course, "nbgrader_config.py"), "w") as f:
            f.write(("from course_tools.sandbox import fail_closed\nfail_closed()\n" if guarded
                     else "") + config.replace("configure(c)",
                                               "c.Execute.timeout = thirty\nconfigure(c)"))
        graded = os.path.join(course, "autograded", "s0", "sq")
        for command in (["autograde", "sq"], ["generate_feedback", "sq"],
                        ["db", "student", "list"]):
            run = synthetic.nbgrader(course, *command, check=False)
            assert "NameError: name 'thirty' is not defined" in run.stderr, run.stderr[-2000:]
            if not guarded:
                assert os.path.isdir(graded) and os.stat(graded).st_uid == 0  # as root
                break
            assert run.returncode != 0, run.stdout + run.stderr
            assert "Refusing to run: nbgrader_config.py stopped before configure(c)" in \
                run.stderr, run.stderr[-2000:]
        if guarded:
            run = subprocess.run([sys.executable, "-m", "course_tools.autograde", "sq"],
                                 cwd=course, env=synthetic._env(), capture_output=True, text=True)
            assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
            assert "Refusing to grade: nbgrader_config.py, line 9: NameError: name 'thirty'" in \
                run.stderr, run.stderr[-2000:]
            assert not os.path.exists(os.path.join(course, "autograded"))


def test_the_course_config_fails_closed_first_and_configures_last():
    tree = ast.parse((ROOT / "nbgrader_config.py").read_text())
    calls = [ast.unparse(n.value) for n in tree.body if isinstance(n, ast.Expr)]
    assert ast.unparse(tree.body[0]).startswith("from course_tools.sandbox import")
    assert ast.unparse(tree.body[1]) == "fail_closed()" and calls[-1] == "configure(c)"
    assert ast.unparse(tree.body[-1]) == "configure(c)"


def test_any_failure_to_become_the_grader_ends_an_nbgrader_command(monkeypatch):
    from nbgrader.apps.baseapp import NbGrader
    from traitlets.config import Config

    from course_tools.sandbox import configure

    def fail(config, course):
        raise OSError(22, "mount: Invalid argument")

    monkeypatch.setattr(NbGrader, "initialized", classmethod(lambda cls: True))
    monkeypatch.setattr(privileged, "become_grader", fail)
    with pytest.raises(SystemExit, match="cannot become the grading user: .*Invalid argument"):
        configure(Config())


@pytest.fixture
def launcher():
    """A launcher for the grading user; yields its socket path; ended (and checked gone)."""
    user = synthetic.grading_user()
    home = tempfile.mkdtemp()
    address, end = privileged.start_launcher(privileged.Kernels(Sandbox(), user.pw_gid),
                                             user.pw_uid, home)
    yield address, user
    os.close(end)
    deadline = time.monotonic() + 30
    while os.path.exists(address) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(address) and not os.path.exists(home)


def _ask(sock, request):
    sock.send(request if isinstance(request, bytes) else json.dumps(request).encode())
    return json.loads(sock.recv(1 << 16))


@pytest.mark.alone  # RUN_DIR holds the kernels of every grader on the machine
def test_the_launcher_refuses_malformed_requests(launcher):
    address, _ = launcher
    before = set(os.listdir(RUN_DIR))
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.connect(address)
        for request, error in [
            (b"not json", "not a JSON request"),
            ({"op": "exec", "cmd": ["/bin/sh"]}, "unknown request"),
            ({"op": "start", "assignment": "../../etc", "cpus": [0]}, "bad assignment"),
            ({"op": "start", "assignment": "/root", "cpus": [0]}, "bad assignment"),
            ({"op": "start", "assignment": ".hidden", "cpus": [0]}, "bad assignment"),
            ({"op": "start", "assignment": "sq", "cpus": [10**6]}, "bad cpus"),
            ({"op": "start", "assignment": "sq", "cpus": []}, "bad cpus"),
            ({"op": "start", "assignment": "sq", "cpus": [0], "cwd": "/"}, "takes exactly"),
            ({"op": "start", "assignment": ["sq"], "cpus": [0]}, "takes exactly"),
            ({"op": "poll", "id": 1}, "unknown kernel id 1"),
            ({"op": "kill", "id": True}, "takes exactly"),
            (b"{" + b" " * privileged.MAX_REQUEST + b"}", "request over"),
        ]:
            assert error in _ask(sock, request).get("error", ""), request
    assert set(os.listdir(RUN_DIR)) == before  # nothing was made


def test_the_grading_user_gets_kernels_and_others_get_nothing(launcher):
    """As the grading user: start a kernel, connect to its shell socket, kill it; one
    connection cannot poll another's kernel; a kernel left running dies with its connection. As
    another user: no connection at all."""
    address, user = launcher
    read, write = os.pipe()
    if os.fork() == 0:  # the grading user
        os.close(read)
        report = {}
        try:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            client = privileged.Client(address)
            started = client.start("sq", sorted(os.sched_getaffinity(0)))
            info = started["connection"]
            with socket.socket(socket.AF_UNIX) as shell:
                shell.connect(f"{info['ip']}-{info['shell_port']}")
                report["connected"] = True
            report["alive"] = client.poll(started["id"])["status"] is None
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as other:
                other.connect(address)
                report["other"] = _ask(other, {"op": "poll", "id": started["id"]})
            client.kill(started["id"])
            report["gone"] = not os.path.exists(info["ip"] + "-1")
            report["left"] = client.start("sq", sorted(os.sched_getaffinity(0)))["connection"]
        except Exception as e:
            report["error"] = repr(e)
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        report = json.loads(f.read())
    os.wait()
    left = report.pop("left", None)
    assert report == {"connected": True, "alive": True, "gone": True,
                      "other": {"error": f"LauncherError: unknown kernel id {1}"}}, report
    left = left["ip"]
    deadline = time.monotonic() + 30  # the kernel left running dies with its connection
    while os.path.exists(os.path.dirname(left)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(os.path.dirname(left))
    if os.fork() == 0:  # another unprivileged user: hung up on
        code = 1
        try:
            nobody = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
                sock.connect(address)
        except PermissionError:
            code = 0  # the socket is root's and the grading group's only
        os._exit(code)
    assert os.waitstatus_to_exitcode(os.wait()[1]) == 0


SPIN = """
import json, os, socket, sys, time
info = json.load(open(sys.argv[1]))
socks = []
for n in range(1, 6):
    socks.append(socket.socket(socket.AF_UNIX))
    socks[-1].bind(f"{info['ip']}-{n}")
denied, end = 0, time.monotonic() + 1
while time.monotonic() < end:
    try:
        os.stat(sys.argv[1])
    except PermissionError:
        denied += 1
print("denied", denied, flush=True)
time.sleep(60)
"""


def _read(path):
    with open(path) as f:
        return f.read()


def test_a_kernel_keeps_reaching_its_connection_file_while_the_launcher_seals_it():
    """ipykernel stats its connection file right after binding its sockets, while the launcher
    takes the socket directory from it: the directory must stay searchable all along (a window
    with the root-owned directory at 0700 killed about one kernel in 300 at start-up)."""
    kernels = privileged.Kernels(Sandbox(), os.getgid(), kernel=[sys.executable, "-c", SPIN])
    for _ in range(5):
        kernel_id = kernels.start("sq", sorted(os.sched_getaffinity(0)))["id"]
        log = os.path.join(kernels.running[kernel_id].directory, "kernel.log")
        try:
            deadline = time.monotonic() + 30
            while "denied" not in (text := _read(log)) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            kernels.kill(kernel_id)
        assert text.strip() == "denied 0", text
