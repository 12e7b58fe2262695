"""The one process of grading that keeps root: the kernel launcher (not `launcher.py`, which
runs inside each sandbox).

A grading command started as root with the sandbox on (`nbgrader ...` through `configure(c)`,
`python -m course_tools.autograde`) calls `become_grader` before it reads any student data: it
forks the launcher, which keeps root, and becomes the grading user for good
(`drop_privileges`; `grading_user`: `c.Sandbox.grader_user`, or the owner of the course
directory; never root). From then on every
process of the command (nbgrader, the autograde workers and their per-job children) is
unprivileged and asks the launcher for kernels over a unix socket named by the environment
variable `COURSE_SANDBOX_LAUNCHER`, which only root and the grading user may connect to.

The launcher does only this, for requests (one JSON object each) that it validates strictly:

    {"op": "check"}                                  start a trivial sandbox (Sandbox.check)
    {"op": "start", "assignment": A, "cpus": [N]}    a kernel: its cgroups, its private and
                                                     socket directories and connection file,
                                                     bwrap; then it seals the socket directory
                                                     and gives the sockets to the grading
                                                     user's group; reply: id, connection info
    {"op": "poll", "id": I}                          the kernel's exit status, or None
    {"op": "kill", "id": I}                          kill it, remove its groups and directories

The kernel command is its own (this Python's ipykernel); the assignment (matching ASSIGNMENT)
only names the kernel's working directory inside the sandbox and selects its hidden modules; the
CPUs must be ones the launcher may use; an id must be one this connection started. A bad
request gets an error reply and nothing is done. No request carries a path. The launcher opens
no path the kernel or a student could write: it reads nothing the kernel made, and checks the
sockets with lstat once the kernel can no longer change their directory. A connection's kernels
die with it (a job killed at its deadline), and all of them with the command.

A root process that did not become the grader (the library called in-process, e.g. by tests)
starts and ends its kernels itself with the same `Kernels`.
"""

import ctypes
import json
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time

from course_tools import cgroups
from course_tools.safefiles import adopt
from course_tools.sandbox import CHANNELS, Sandbox, SandboxUnavailable, private_dir

ENV = "COURSE_SANDBOX_LAUNCHER"
ASSIGNMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
# what nbclient runs (no history thread, no history file), + the connection file
KERNEL = [sys.executable, "-m", "ipykernel_launcher", "--HistoryManager.hist_file=:memory:", "-f"]
MAX_REQUEST = 4096
REQUESTS = {"check": {}, "start": {"assignment": str, "cpus": list}, "poll": {"id": int},
            "kill": {"id": int}}


class LauncherError(RuntimeError):
    """A request the launcher refused, or a kernel it could not start."""


class Kernel:
    """One running kernel: its process (prlimit -> bwrap), cgroup and private directory."""

    def __init__(self, process, group, directory):
        self.process, self.group, self.directory = process, group, directory


class Kernels:
    """Sandboxed kernels started and ended by this (root) process: what the launcher does.
    Sockets are handed to group `gid` (the grading user's)."""

    def __init__(self, sandbox, gid, kernel=KERNEL):
        self.sandbox, self.gid, self.kernel = sandbox, gid, kernel
        self.cpus = os.sched_getaffinity(0)
        self.running, self.lock, self.ids = {}, threading.Lock(), iter(range(1, 2**62))

    def check(self):
        self.sandbox.check()
        return {}

    def start(self, assignment, cpus):
        """Start a kernel in a sandbox for `assignment` on `cpus`: {"id", "connection"}."""
        directory = private_dir(self.gid)
        ipc = os.path.join(directory, "k")  # (0755 from the start: the kernel keeps reaching
        os.mkdir(ipc, 0o755)                # its connection file while `_seal` takes it over)
        os.chmod(ipc, 0o755)
        uid = self.sandbox.uid_for(ipc)
        info = {"transport": "ipc", "ip": os.path.join(ipc, "k"), "key": secrets.token_hex(32),
                "signature_scheme": "hmac-sha256", "kernel_name": "",
                **{f"{c}_port": n for n, c in enumerate(CHANNELS, 1)}}
        connection_file = os.path.join(ipc, "kernel.json")
        fd = os.open(connection_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        os.chown(ipc, uid, uid)  # the kernel's own until its sockets exist
        env = {**os.environ, "NBGRADER_EXECUTION": "autograde"}
        with self.lock:
            kernel_id = next(self.ids)
        group = None
        try:
            group = self.sandbox.cgroup(cpus)
            cmd = group.enter_command(self.sandbox.command(
                [*self.kernel, connection_file], assignment, ipc, directory, env, uid))
            with open(os.path.join(directory, "kernel.log"), "wb") as log:
                process = subprocess.Popen(cmd, cwd=directory, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        except BaseException:
            if group is not None:
                group.remove()
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self.running[kernel_id] = Kernel(process, group, directory)
        try:
            self._seal(ipc, uid, [f"{info['ip']}-{n}" for n in range(1, len(CHANNELS) + 1)],
                       process)
        except BaseException:
            self.kill(kernel_id)
            raise
        return {"id": kernel_id, "connection": info}

    def _seal(self, ipc, uid, paths, process, timeout=60):
        """Wait for the kernel's sockets, take `ipc` from it (root, 0755: no entry can be added,
        removed or replaced), check with lstat that each entry is a socket of `uid`, then give
        the sockets to group `gid` (0660) so that the grading user can connect."""
        deadline = time.monotonic() + timeout
        while not all(map(os.path.lexists, paths)) and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.01)
        os.chown(ipc, 0, 0)
        os.chmod(ipc, 0o755)  # (again: a kernel may have changed it before the chown)
        bad = [p for p in os.listdir(ipc) if p != "kernel.json"
               and not _socket_of(os.path.join(ipc, p), uid)]
        missing = [p for p in paths if not os.path.lexists(p)]
        if bad or (missing and process.poll() is None):
            raise LauncherError(f"kernel endpoints {bad or missing} in {ipc} are not sockets of "
                                f"uid {uid}: refusing to connect")
        for p in set(paths) - set(missing):  # sockets in a directory only root can change
            os.chown(p, 0, self.gid, follow_symlinks=False)
            os.chmod(p, 0o660)

    def poll(self, id):
        return {"status": self.running[id].process.poll()}

    def kill(self, id):
        """Kill the kernel and everything left in its groups; remove them and its directory."""
        kernel = self.running.pop(id, None)
        if kernel is None:  # (ended by its connection and by the command's end at once)
            return {}
        kernel.process.kill()
        kernel.process.wait()
        kernel.group.remove()
        shutil.rmtree(kernel.directory, ignore_errors=True)
        return {}

    def kill_all(self):
        for id in list(self.running):
            self.kill(id)


def _socket_of(path, uid):
    """Whether `path` itself (not what a link points at) is a socket owned by `uid`."""
    st = os.lstat(path)
    return stat.S_ISSOCK(st.st_mode) and st.st_uid == uid


def parse(data, mine, cpus):
    """(op, arguments) of request `data` (bytes); LauncherError if it is not one of REQUESTS
    exactly, names a kernel not in `mine` or CPUs not in `cpus`, or a bad assignment."""
    try:
        request = json.loads(data)
    except ValueError:
        raise LauncherError("not a JSON request") from None
    if not isinstance(request, dict) or request.get("op") not in REQUESTS:
        raise LauncherError(f"unknown request; known: {sorted(REQUESTS)}")
    op = request.pop("op")
    expected = REQUESTS[op]
    if set(request) != set(expected) or any(type(request[k]) is not t
                                            for k, t in expected.items()):
        raise LauncherError(f"{op} takes exactly {expected or 'nothing'}")
    if "id" in request and request["id"] not in mine:
        raise LauncherError(f"unknown kernel id {request['id']}")
    if op == "start":
        if not ASSIGNMENT.match(request["assignment"]):
            raise LauncherError(f"bad assignment name {request['assignment']!r}")
        got = request["cpus"]
        if not got or any(type(c) is not int or c not in cpus for c in got) or \
                len(set(got)) != len(got):
            raise LauncherError(f"bad cpus {got!r}: distinct CPUs of {sorted(cpus)}")
    return op, request


def serve(listener, parent, kernels, uid):
    """The launcher's loop: a thread per connection from `uid` or root, until `parent` (a pipe
    the grading processes hold open) reaches its end; then every kernel is killed."""
    def handle(conn):
        mine = set()
        try:
            while data := conn.recv(MAX_REQUEST + 1):
                try:
                    if len(data) > MAX_REQUEST:
                        raise LauncherError(f"request over {MAX_REQUEST} bytes")
                    op, args = parse(data, mine, kernels.cpus)
                    reply = getattr(kernels, op)(**args)
                    if op == "start":
                        mine.add(reply["id"])
                    elif op == "kill":
                        mine.discard(args["id"])
                except Exception as e:  # a refused request or a kernel that could not start
                    reply = {"error": f"{type(e).__name__}: {e}"}
                conn.send(json.dumps(reply).encode())
        except OSError:
            pass
        finally:
            for id in mine:
                kernels.kill(id)
            conn.close()

    while True:
        ready = select.select([listener, parent], [], [])[0]
        if parent in ready:
            kernels.kill_all()
            return
        conn, _ = listener.accept()
        peer_uid = struct.unpack("3i", conn.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]
        if peer_uid not in (0, uid):
            conn.close()
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def start_launcher(kernels, uid, home, jobs=None):
    """Fork the launcher (it keeps this process's root) for grading user `uid`; return its
    socket's path and this process's end of a pipe (inherited across exec): the launcher ends
    when every process holding that end has closed it, removing directory `home` (the grading
    user's) and the jobs' memory group `jobs` (`cgroups.delegate`)."""
    directory = private_dir(kernels.gid)
    address = os.path.join(directory, "launcher")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    os.chown(address, 0, kernels.gid)
    os.chmod(address, 0o660)
    listener.listen(64)
    parent, child_end = os.pipe()
    if os.fork() == 0:
        os.close(child_end)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C ends the grading processes, then this
        try:
            serve(listener, parent, kernels, uid)
        finally:
            for d in (directory, home):
                shutil.rmtree(d, ignore_errors=True)
            if jobs:
                cgroups.remove_delegated(jobs)
            os._exit(0)
    os.close(parent)
    listener.close()
    os.set_inheritable(child_end, True)
    return address, child_end


class Client:
    """The launcher as seen from a grading process: the methods of `Kernels`, as requests over
    one connection per process (a forked child opens its own: its kernels die with it)."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(address)
        self.lock = threading.Lock()

    def request(self, op, **args):
        with self.lock:
            self.sock.send(json.dumps({"op": op, **args}).encode())
            reply = json.loads(self.sock.recv(1 << 16))
        if "error" in reply:
            raise (SandboxUnavailable if op == "check" else LauncherError)(reply["error"])
        return reply

    def check(self):
        return self.request("check")

    def start(self, assignment, cpus):
        return self.request("start", assignment=assignment, cpus=cpus)

    def poll(self, id):
        return self.request("poll", id=id)

    def kill(self, id):
        return self.request("kill", id=id)


_clients = {}  # pid: this process's Client


def launcher(sandbox):
    """Where this process gets kernels: the command's launcher (a Client) if it has one, else
    this process itself (a Kernels; it must be root)."""
    if ENV not in os.environ:
        return Kernels(sandbox, os.getgid())
    if os.getpid() not in _clients:
        _clients.clear()
        _clients[os.getpid()] = Client(os.environ[ENV])
    return _clients[os.getpid()]


def course_directory(coursedir):
    """The course's directory: the gradebook's (a sqlite URL), else the course root."""
    url = coursedir.db_url
    return os.path.dirname(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") \
        else coursedir.root


def grading_user(sandbox, course):
    """The user to grade as: `sandbox.grader_user`, or the owner of directory `course`;
    SandboxUnavailable if that is root."""
    try:
        user = (pwd.getpwnam(sandbox.grader_user) if sandbox.grader_user
                else pwd.getpwuid(os.stat(course).st_uid))
    except (KeyError, OSError) as e:
        raise SandboxUnavailable(f"Refusing to grade: no grading user ({e}; name one with "
                                 "c.Sandbox.grader_user)") from None
    if user.pw_uid == 0:
        raise SandboxUnavailable(
            f"Refusing to grade as root: the course directory {course} belongs to root, and "
            "everything that reads student data runs as the course's owner. Give the course to "
            f"an unprivileged user once: `useradd --system grader; chown -R grader {course}` "
            "(or name one with c.Sandbox.grader_user).")
    return user


def become_grader(config, course):
    """As root with the sandbox on: give the grading user what root put in `course`
    (`safefiles.adopt`), start the launcher, then become the grading user in this process, for
    good (`drop_privileges`), before anything of a submission is read. Otherwise do nothing."""
    sandbox = Sandbox(config=config)
    if os.geteuid() != 0 or not sandbox.enabled:
        return
    user = grading_user(sandbox, course)
    adopt(course, user.pw_uid, user.pw_gid)  # what root put in the course since: the grader's
    home = tempfile.mkdtemp(prefix="grader-")  # (IPython, matplotlib, jupyter write there)
    os.chown(home, user.pw_uid, user.pw_gid)
    jobs = cgroups.delegate(user.pw_uid)  # a memory group per grading job (course_tools.autograde)
    address, _ = start_launcher(Kernels(sandbox, user.pw_gid), user.pw_uid, home, jobs)
    os.environ.update({ENV: address, "HOME": home, "USER": user.pw_name,
                       "LOGNAME": user.pw_name, **({cgroups.JOBS_ENV: jobs} if jobs else {})})
    drop_privileges(user)


def python_covers():
    """[(closed, path)]: each directory of the Python installation (prefix, base prefix, stdlib,
    the executable's) that lies behind a directory others cannot enter (mode without o+x),
    with `closed`, the topmost such directory on its way: to be covered by an empty directory
    that holds only the installation, so that an unprivileged user can run this Python."""
    covers = []
    for path in sorted({sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"],
                        os.path.dirname(os.path.realpath(sys.executable))}):
        if any(path.startswith(p + "/") for _, p in covers):
            continue
        parts = path.split("/")
        closed = next(("/".join(parts[:i]) for i in range(2, len(parts))
                       if not os.stat("/".join(parts[:i])).st_mode & 0o001), None)
        if closed is not None:
            covers.append((closed, path))
    return covers


def _below(closed, path):
    """The directories from the one below `closed` down to `path`, `path` included."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(len(closed.split("/")) + 1, len(parts) + 1)]


CLONE_NEWNS, PR_SET_NO_NEW_PRIVS = 0x20000, 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 32, 4096, 16384, 1 << 18)


def drop_privileges(user):
    """Become `user` (a pwd entry) in this single-threaded root process, with no way back: in a
    mount namespace of its own, each directory of `python_covers` is covered by a tmpfs (0755)
    holding only the installation (bound read-only); then every uid and gid is the user's, no
    supplementary group, no capability, and no_new_privs. Checked; raises OSError if any step
    fails. (In-process: a re-exec would pay the command's start-up, about 1.5 s, twice.)"""
    libc = ctypes.CDLL(None, use_errno=True)

    def call(result, what):
        if result != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"dropping privileges: {what}: {os.strerror(e)}")

    def mount(source, target, fstype, flags, data=None):
        call(libc.mount(source and os.fsencode(source), os.fsencode(target),
                        fstype and fstype.encode(), ctypes.c_ulong(flags),
                        data and data.encode()), f"mount {source} on {target}")

    if len(os.listdir("/proc/self/task")) != 1:
        raise OSError("dropping privileges: this process must be single-threaded")
    covers, sources = python_covers(), {}
    call(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # (nothing of this reaches the host)
    try:
        for _, path in covers:  # (opened in the new namespace, before the tmpfs hides them)
            sources[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
        for closed in dict.fromkeys(c for c, _ in covers):
            mount("tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
        for closed, path in covers:
            for directory in _below(closed, path):
                if not os.path.isdir(directory):
                    os.mkdir(directory)
                    os.chmod(directory, 0o755)  # (whatever the umask)
            mount(f"/proc/self/fd/{sources[path]}", path, None, MS_BIND | MS_REC)
            mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    finally:
        for fd in sources.values():
            os.close(fd)
    os.setgroups([])
    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    call(libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0),
                    ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl(PR_SET_NO_NEW_PRIVS)")
    with open("/proc/self/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    caps = [int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")]
    if os.getresuid() != (user.pw_uid,) * 3 or os.getresgid() != (user.pw_gid,) * 3 or \
            os.getgroups() or any(caps) or status["NoNewPrivs"].strip() != "1":
        raise OSError(f"dropping privileges: still privileged ({os.getresuid()}, {caps})")


def as_user(user, command):
    """`command` run as `user` (a pwd entry), as `drop_privileges` leaves a process: bubblewrap
    shows the host's file system as it is, except for the `python_covers`; then setpriv drops to
    `user` and its primary group, with no way back to privileges. It runs in a PID namespace of
    its own, which ends with bubblewrap: setpriv's change of user clears the parent-death signal
    of `--die-with-parent`, and the command would outlive a killed parent."""
    args, made = ["--dev-bind", "/", "/"], set()
    for closed, path in python_covers():
        if closed not in made:
            made.add(closed)
            args += ["--perms", "0755", "--tmpfs", closed]
        for parent in _below(closed, path)[:-1]:
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind", path, path]
    return [shutil.which("bwrap") or "bwrap", *args, "--unshare-pid", "--die-with-parent", "--",
            "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            "--no-new-privs", *command]
