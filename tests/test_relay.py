"""The grader's bound on whole messages (course_tools.relay): `FrameLimit` on ZMTP byte streams,
and `KernelRelay` between real ZMQ sockets, as between a sandboxed kernel and the grader."""

import os
import random
import resource
import tempfile
import time

import pytest
import zmq

from course_tools.relay import GREETING, NULL_MECHANISM, FrameLimit, KernelRelay

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
        def deliver(parts, seconds=10):
            end = time.monotonic() + seconds
            while time.monotonic() < end:  # PUB drops what it sends before SUB has joined
                kernel.send_multipart(parts)
                if grader.poll(200):
                    return grader.recv_multipart()
            return None

        assert deliver([b"header", b"content"]) == [b"header", b"content"]
        before = maxrss_mib()
        kernel.send_multipart([b"x" * (7 << 20)] * 60, copy=False)  # one buffer, sent 60 times
        assert monitor.poll(10_000), "the relay did not close the connection"
        assert deliver([b"after"]) == [b"after"]  # reconnected: only new messages arrive
        assert maxrss_mib() - before < 100  # 420 MiB would have arrived whole
    finally:
        relay.close()
        for s in (monitor, grader, kernel):
            s.close(linger=0)
        ctx.term()
    assert not os.path.exists(relay.dir)
