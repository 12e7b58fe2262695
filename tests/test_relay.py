"""The grader's bound on whole messages (course_tools.relay): `FrameLimit` on ZMTP byte streams,
and `KernelRelay` between real ZMQ sockets, as between a sandboxed kernel and the grader."""

import os
import random
import resource
import tempfile
import time
from functools import partial

import pytest
import zmq

from course_tools.relay import GREETING, MAX_FRAMES, NULL_MECHANISM, QUEUED, FrameLimit, KernelRelay

LIMIT = 1000


def greeting(major=3, mechanism=NULL_MECHANISM):
    return (b"\xff" + bytes(8) + b"\x7f" + bytes([major, 1]) + mechanism).ljust(GREETING, b"\0")


def frame(size, more=False, command=False):
    flags = more | command << 2
    if size > 255:
        return bytes([flags | 2]) + size.to_bytes(8, "big") + b"x" * size
    return bytes([flags, size]) + b"x" * size


def fed(stream, cut=None):
    """FrameLimit(LIMIT)'s verdict on `stream`, fed in random pieces (or at `cut`)."""
    limit, i = FrameLimit(LIMIT), 0
    cuts = [cut] if cut else sorted(random.Random(len(stream)).sample(range(1, len(stream)), 5))
    for j in [*cuts, len(stream)]:
        if not limit.feed(stream[i:j]):
            return False
        i = j
    return True


ready = frame(40, command=True)  # the READY command after the greeting


@pytest.mark.parametrize("stream, ok", [
    (greeting() + ready + frame(LIMIT), True),                                   # at the limit
    (greeting() + ready + frame(LIMIT + 1), False),
    (greeting() + ready + frame(400, True) + frame(300, True) + frame(300), True),
    (greeting() + ready + frame(400, True) + frame(300, True) + frame(301), False),  # the sum
    (greeting() + ready + frame(600) + frame(600) + frame(600), True),  # each message alone
    (greeting() + ready + frame(0, True) * (MAX_FRAMES - 1) + frame(0), True),
    (greeting() + ready + frame(0, True) * MAX_FRAMES + frame(0), False),  # empty frames count
    (greeting() + ready + (frame(0, True) + frame(0)) * MAX_FRAMES, True),  # per message
    (greeting() + ready + frame(10, True, True), False),          # a command is a single frame
    (greeting() + ready + bytes([8, 1, 0]), False),               # a reserved flag
    (greeting(major=2) + ready, False),                           # ZMTP 2 frames differently
    (greeting(mechanism=b"CURVE".ljust(20, b"\0")) + ready, False),  # encrypted frames
    (b"\x01\x00" + bytes(62) + ready, False),                     # ZMTP 1.0 signature
])
def test_frame_limit_counts_every_frame_of_a_message(stream, ok):
    assert fed(stream) is ok
    assert all(fed(stream, cut) is ok for cut in range(1, len(stream), 7))


def test_an_oversized_frame_is_refused_at_its_header():
    limit = FrameLimit(LIMIT)
    assert limit.feed(greeting() + ready)
    assert not limit.feed(bytes([2]) + (10**12).to_bytes(8, "big"))  # 1 TB announced, none sent


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


class Plain:
    def _context_default(self):
        return zmq.Context()  # (a synchronous one, for the tests)


@pytest.fixture
def relayed():
    """(a socket factory on the kernel's side, one on the grader's side: its context has the
    defaults a sandboxed kernel's client gives its own, the relay's url): closed at the end."""
    from course_tools.sandbox import BoundedSockets

    class Grader(BoundedSockets, Plain):
        pass

    kctx, gctx = zmq.Context(), Grader()._context_default()
    ip = os.path.join(tempfile.mkdtemp(), "k")
    relay = KernelRelay(ip, [1], 8 << 20)
    opened = []

    def socket(ctx, kind):
        opened.append(ctx.socket(kind))
        return opened[-1]

    yield partial(socket, kctx), partial(socket, gctx), f"ipc://{ip}-1", relay.url(1)
    relay.close()
    for s in opened:
        s.close(linger=0)
    kctx.destroy(linger=0)
    gctx.destroy(linger=0)


def test_a_grader_socket_holds_few_unread_messages(relayed):
    """150 whole messages of 7.5 MiB (each under the 8 MiB limit) sent to a grader socket that
    does not read them, as on the stdin channel (kernel ROUTER, grader DEALER): the grader holds
    at most QUEUED of them, the rest wait on the kernel's side; read, they all still arrive."""
    kernel_socket, grader_socket, endpoint, url = relayed
    kernel, grader = kernel_socket(zmq.ROUTER), grader_socket(zmq.DEALER)
    assert grader.rcvhwm == QUEUED
    kernel.bind(endpoint)
    grader.identity = b"grader"
    grader.connect(url)
    grader.send(b"hello")  # the kernel learns its peer
    assert kernel.recv_multipart() == [b"grader", b"hello"]
    before = maxrss_mib()
    payload = zmq.Frame(b"x" * (15 << 19))
    for _ in range(150):
        kernel.send_multipart([b"grader", payload], copy=False)
    time.sleep(3)  # what can move has moved
    assert maxrss_mib() - before < 100, "1.1 GiB would have arrived unread"
    got = 0
    while got < 150 and grader.poll(5000):
        got += len(grader.recv()) == 15 << 19
    assert got == 150


def test_a_relay_closes_on_endless_empty_frames(relayed):
    """A kernel's iopub sends one message of 10⁶ empty parts (2 MB on the wire, ~100 MB as
    parts in the grader): the relay closes at part MAX_FRAMES + 1; later messages pass."""
    kernel_socket, grader_socket, endpoint, url = relayed
    kernel, grader = kernel_socket(zmq.PUB), grader_socket(zmq.SUB)
    kernel.bind(endpoint)
    grader.subscribe(b"")
    monitor = grader.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    grader.connect(url)
    try:
        assert deliver(kernel, grader, [b"before"]) == [b"before"]
        kernel.send_multipart([b""] * 10**6)
        assert monitor.poll(10_000), "the relay did not close the connection"
        assert deliver(kernel, grader, [b"after"]) == [b"after"]
    finally:
        monitor.close(linger=0)


def deliver(kernel, grader, parts, seconds=10):
    """`parts` sent by a PUB `kernel` until the SUB `grader` gets a message: what it got."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # PUB drops what it sends before SUB has joined
        kernel.send_multipart(parts)
        if grader.poll(200):
            return grader.recv_multipart()
    return None


def test_a_relay_passes_messages_and_closes_on_a_flood():
    """A PUB socket as the kernel's iopub, a SUB socket as the grader's, through the relay: small
    messages pass unchanged; 60 parts of 7 MiB (each under an 8 MiB limit) never reach the
    grader, whose socket sees a disconnection; the next small message passes again."""
    ctx = zmq.Context()
    ip = os.path.join(tempfile.mkdtemp(), "k")
    kernel = ctx.socket(zmq.PUB)
    kernel.bind(f"ipc://{ip}-1")
    relay = KernelRelay(ip, [1], 8 << 20)
    grader = ctx.socket(zmq.SUB)
    grader.subscribe(b"")
    monitor = grader.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    grader.connect(relay.url(1))
    try:
        assert deliver(kernel, grader, [b"header", b"content"]) == [b"header", b"content"]
        before = maxrss_mib()
        kernel.send_multipart([b"x" * (7 << 20)] * 60, copy=False)  # one buffer, sent 60 times
        assert monitor.poll(10_000), "the relay did not close the connection"
        # reconnected: only new messages arrive
        assert deliver(kernel, grader, [b"after"]) == [b"after"]
        assert maxrss_mib() - before < 100  # 420 MiB would have arrived whole
    finally:
        relay.close()
        for s in (monitor, grader, kernel):
            s.close(linger=0)
        ctx.term()
    assert not os.path.exists(relay.dir)


# ---- what gets past the relay ends one job only (course_tools.cgroups.job_group)

def as_grading_user(fn):
    """fn()'s truthiness, computed in a child of this (root) process that became `nobody` in
    the memory group that a grading command delegates to its grading user."""
    import pwd

    from course_tools import cgroups

    user = pwd.getpwnam("nobody")
    jobs = cgroups.delegate(user.pw_uid)
    if jobs is None:
        pytest.skip("no cgroup v1 memory hierarchy here")
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ[cgroups.JOBS_ENV] = jobs
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
                code = 0 if fn() else 1
            finally:
                os._exit(code)
        return os.waitpid(pid, 0)[1] == 0
    finally:
        cgroups.remove_delegated(jobs)
        assert not os.path.exists(jobs)


def test_a_job_that_needs_too_much_memory_ends_alone():
    """A grading job's child (course_tools.autograde._in_child) that allocates 600 MiB in a
    group of 256 MiB is ended by the kernel and its job fails, saying so; the next job of the
    same worker runs; no job group is left behind."""
    from course_tools import cgroups
    from course_tools.autograde import _in_child

    def jobs():
        swell = _in_child(lambda: len(bytearray(600 << 20).replace(b"\0", b"\1")), 60, "a", "s",
                          memory=256 << 20)
        fine = _in_child(lambda: {"ok": True}, 60, "a", "t", memory=256 << 20)
        left = os.listdir(os.environ[cgroups.JOBS_ENV])
        return (not swell["ok"] and "needed more than its 0.25 GiB" in swell["reason"]
                and fine == {"ok": True} and not [d for d in left if d.startswith("job-")])

    assert as_grading_user(jobs)


SWELL = '''
from nbgrader.converters import Autograde  # noqa: E402
from nbgrader.preprocessors import NbGraderPreprocessor  # noqa: E402

from course_tools.instructor import use_safe_autograde  # noqa: E402

use_safe_autograde()  # as the course's nbgrader_config.py does


class Swell(NbGraderPreprocessor):
    """Whatever a submission could make the grader hold past the relay's caps: 800 MiB in the
    grading process, for a notebook that says SWELL."""

    def preprocess(self, nb, resources):
        if any("SWELL" in cell.source for cell in nb.cells):
            resources["held"] = bytearray(800 << 20).replace(b"\\0", b"\\1")
        return nb, resources


c.Autograde.autograde_preprocessors = [
    Swell, *Autograde.class_traits()["autograde_preprocessors"].default()]
c.SafeAutograde.job_memory = 384 << 20
'''


def test_serial_nbgrader_autograde_ends_a_notebook_that_needs_too_much_memory_alone(tmp_path):
    """Serial `nbgrader autograde` (as root: it grades as the grading user) grades each notebook
    in a memory group of its own (`SafeAutograde.job_memory`, here 384 MiB): the notebook whose
    grading swells to 800 MiB fails, saying so; its classmates, graded before and after it in the
    same batch, get full marks."""
    from course_tools import synthetic

    base = str(tmp_path / "class")
    synthetic.make_course(base, {"sq": synthetic.square_assignment()}, config=SWELL)
    honest = "def square(x):\n    return x * x"
    for student, answer in (("s0", honest), ("s1", honest + "  # SWELL"), ("s2", honest)):
        synthetic.submit(base, "sq", student, answer)
    run = synthetic.nbgrader(base, "autograde", "sq", check=False)
    log = run.stdout + run.stderr
    assert run.returncode != 0 and "needed more than its 0.375 GiB" in log, log[-3000:]
    scores = synthetic.scores(base, "sq")
    assert scores["s0"] == scores["s2"] == {"test_public": 1.0, "test_hidden": 1.0}, log[-3000:]
    assert not any(scores.get("s1", {}).values()), scores
    assert not os.path.exists(os.path.join(base, "course", "autograded", "s1", "sq"))
