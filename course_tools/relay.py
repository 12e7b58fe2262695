"""The grader's bound on what a sandboxed kernel sends: whole messages, not message parts.

ZMQ's MAXMSGSIZE limits one frame, and ZMQ hands a multipart message over whole: a kernel that
sends many frames just under the limit makes the grader buffer all of them before any code can
look. So the grader never connects to a kernel's ipc endpoints itself. Each endpoint gets a relay
in the grader's own process (`KernelRelay`), a unix socket in a directory of the grader's, which
passes bytes through and follows the kernel's side of the stream with `FrameLimit` (ZMTP 3:
a 64-byte greeting, then frames of flags, a 1- or 8-byte length and a body). The moment a
frame's header takes its message past the limit (its bytes, or `MAX_FRAMES` frames: an empty
frame costs the grader a message part of ~100 bytes for 2 on the wire), before its body is read,
the relay closes both connections: the grader's ZMQ socket sees a disconnection, holding at most
`limit` bytes of an incomplete message, which it discards.

Whole messages are bounded where they wait: every grader socket on a sandboxed kernel holds at
most `QUEUED` of them (its RCVHWM; `course_tools.sandbox.BoundedSockets`). When they are not
read (stdin, which grading never reads; iopub between cells), ZMQ stops reading the stream, the
relay blocks in `sendall` and stops reading from the kernel, and the kernel's own socket queues
or drops them, in the kernel's memory.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading

GREETING = 64                       # ZMTP 3 greeting: signature, version, mechanism, filler
MORE, LONG, COMMAND = 1, 2, 4       # frame flags
NULL_MECHANISM = b"NULL".ljust(20, b"\0")
CHUNK = 1 << 16
MAX_FRAMES = 64                     # frames of one message: a jupyter message has 7 + buffers
QUEUED = 4                          # whole messages a grader socket holds unread (RCVHWM)


class FrameLimit:
    """One direction of a ZMTP stream, followed byte by byte: `feed(data)` is False from the
    first chunk in which a message (its frames together) or a command exceeds `limit` bytes or
    `max_frames` frames, or the stream is not ZMTP ≥ 3 with the NULL mechanism (which jupyter
    uses; older revisions frame differently, other mechanisms encrypt the frames)."""

    def __init__(self, limit: int, max_frames: int = MAX_FRAMES):
        self.limit, self.max_frames = limit, max_frames
        self.greeting = b""
        self.header = b""   # the current frame's flags and length, while incomplete
        self.body = 0       # bytes of the current frame's body still to come
        self.total = 0      # bytes of the current message so far
        self.frames = 0     # frames of the current message so far
        self.ok = True

    def feed(self, data: bytes) -> bool:
        i = 0
        if self.ok and len(self.greeting) < GREETING:
            i = GREETING - len(self.greeting)
            self.greeting += data[:i]
            self.ok = self._greeting_ok()
        while self.ok and i < len(data):
            if self.body:
                step = min(self.body, len(data) - i)
                self.body -= step
                i += step
                continue
            self.header += data[i:i + 1]
            i += 1
            flags = self.header[0]
            if flags & ~(MORE | LONG | COMMAND) or flags & COMMAND and flags & MORE:
                self.ok = False
            elif len(self.header) == (9 if flags & LONG else 2):
                self.body = int.from_bytes(self.header[1:], "big")
                self.total += self.body
                self.frames += 1
                self.ok = self.total <= self.limit and self.frames <= self.max_frames
                if not flags & MORE:
                    self.total = self.frames = 0
                self.header = b""
        return self.ok

    def _greeting_ok(self) -> bool:
        g = self.greeting
        return ((len(g) < 1 or g[0] == 0xFF) and (len(g) < 10 or g[9] == 0x7F)
                and (len(g) < 11 or g[10] >= 3)
                and (len(g) < 32 or g[12:32] == NULL_MECHANISM))


class KernelRelay:
    """Relays for a kernel's ipc endpoints `{ip}-{port}`: `url(port)` is where the grader
    connects instead. Each accepted connection gets its own connection to the kernel and two
    threads, one per direction; the kernel's direction is bounded by `FrameLimit(limit)`."""

    def __init__(self, ip: str, ports, limit: int):
        self.ip, self.limit = ip, limit
        self.dir = tempfile.mkdtemp(prefix="relay-")   # this user's own, 0700
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closed = False
        for port in ports:
            listener = self._track(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            listener.bind(self._path(port))
            listener.listen()
            threading.Thread(target=self._accept, args=(listener, f"{ip}-{port}"),
                             daemon=True).start()

    def url(self, port) -> str:
        return f"ipc://{self._path(port)}"

    def _path(self, port) -> str:
        return os.path.join(self.dir, str(port))

    def close(self):
        """Stop relaying: every listener and connection closed, the directory removed."""
        with self.lock:
            self.closed = True
            for s in self.sockets:
                _shut(s)
            self.sockets.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _track(self, s: socket.socket) -> socket.socket:
        with self.lock:
            if self.closed:
                s.close()
                raise OSError("relay closed")
            self.sockets.add(s)
        return s

    def _accept(self, listener: socket.socket, endpoint: str):
        while True:
            try:
                grader = self._track(listener.accept()[0])
            except OSError:
                return
            try:
                kernel = self._track(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
                kernel.connect(endpoint)
            except OSError:
                _shut(grader)
                continue
            pair = (grader, kernel)
            threading.Thread(target=self._pump, args=(kernel, grader, FrameLimit(self.limit),
                                                      pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(grader, kernel, None, pair),
                             daemon=True).start()

    def _pump(self, src, dst, limit: FrameLimit | None, pair):
        """Copy src to dst until either ends or `limit` refuses; then end both."""
        try:
            while (data := src.recv(CHUNK)) and (limit is None or limit.feed(data)):
                dst.sendall(data)
        except OSError:
            pass
        with self.lock:
            for s in pair:
                _shut(s)
                self.sockets.discard(s)


def _shut(s: socket.socket):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
