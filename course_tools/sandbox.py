"""Run every student notebook that `nbgrader autograde` executes inside a bubblewrap sandbox.

The kernel sees a fresh root holding only read-only system and Python directories and the packages
the exercises import (`Sandbox.packages`). Its only writable place is its working directory
`/home/student/<assignment>`: a size-limited tmpfs (`/tmp` links to it) that is thrown away with
the sandbox; no host directory of the course is there, and the grader reads nothing back from it.
Per assignment, modules can be hidden (`Sandbox.hidden_modules`: importing them raises
ImportError). It has no network (own namespace; the grader talks to it over ZMQ `ipc` sockets in a
directory of its own, sealed and checked before the grader connects), runs as an unprivileged uid
that cannot start any program (seccomp, `course_tools/launcher.py`), in a cgroup of its own
(`course_tools/cgroups.py`: memory with its children, process count, CPU set), with rlimits on
address space, CPU time, processes and file size. Grader side, `SandboxExecute` caps each cell's
output, each ZMQ message (before decoding) and each notebook's wall-clock time, and grades a
notebook whose kernel died.

Kernels are started and ended by the kernel launcher (`course_tools/privileged.py`), the only
process of grading that keeps root: `nbgrader` and `python -m course_tools.autograde` started as
root run as the grading user (`Sandbox.grader_user`, or the course directory's owner).

Hook it into a course with `configure(c)` as the last line of `nbgrader_config.py`. Opt out
(grade unsandboxed, e.g. on a machine without bubblewrap) only explicitly:
`c.Sandbox.enabled = False` or the environment variable `COURSE_SANDBOX=off`; then everything
runs as the user who started the command.
"""

import asyncio
import glob
import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid

import zmq
from jupyter_client.connect import channel_socket_types
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, DottedObjectName, Float, Integer, List, Type, Unicode, default
from traitlets.config import Configurable

from course_tools import cgroups
from course_tools.kernels import PromptKernelClient, PromptKernelManager
from course_tools.relay import QUEUED, KernelRelay

OPT_OUT_ENV = "COURSE_SANDBOX"
WORKDIR = "/home/student"
RUN_DIR = "/run/course-grading"  # root, 0711: a private directory per kernel and launcher
TOOLS = "/opt/course-sandbox"  # in the sandbox: launcher.py and the stubs of hidden modules
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")  # a kernel's ZMQ endpoints
BY_HAND = ["torch", "functorch", "torchgen", "sympy", "mpmath", "bptt_lib.backward"]
# What a by-hand kernel's site-packages holds: these distributions, what they require, and what
# the kernel itself needs (ipykernel); the project's own (its finder for bptt_lib and
# bptt_grading), without its requirements. No torch, mpmath, sympy, jax, autograd, scipy …
BY_HAND_DISTRIBUTIONS = ["numpy", "matplotlib"]


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create the sandbox, and nobody opted out."""


class Sandbox(Configurable):
    """Where and how student kernels are confined (configure as `c.Sandbox.<trait>`)."""

    enabled = Bool(True, help=f"Sandbox kernels. Opt out: False, or env {OPT_OUT_ENV}=off.").tag(
        config=True
    )
    bwrap = Unicode("bwrap", help="The bubblewrap executable.").tag(config=True)
    memory_limit = Integer(
        4 * 2**30, help="Memory of the whole sandbox, its children and tmpfs included (cgroup); "
        "bytes."
    ).tag(config=True)
    address_space_limit = Integer(
        0, help="RLIMIT_AS of each process of the sandbox (a big allocation raises MemoryError "
        "instead of meeting the cgroup's OOM killer); bytes, 0: memory_limit."
    ).tag(config=True)
    pids_limit = Integer(512, help="Tasks (processes + threads) of the sandbox (cgroup).").tag(
        config=True
    )
    cpus = List(
        Integer(), help="The sandbox's fixed CPU set (cgroup cpuset); empty: the CPUs the grading "
        "process may use when it starts the kernel (a pinned worker's own CPU)."
    ).tag(config=True)
    cpu_limit = Integer(600, help="RLIMIT_CPU of the kernel, seconds (whole notebook).").tag(
        config=True
    )
    nproc_limit = Integer(
        256, help="RLIMIT_NPROC: processes + threads of the sandbox uid (stops fork bombs)."
    ).tag(config=True)
    file_size_limit = Integer(64 * 2**20, help="RLIMIT_FSIZE: largest file it may write.").tag(
        config=True
    )
    tmp_size = Integer(
        256 * 2**20, help="Size of the kernel's tmpfs working directory, bytes."
    ).tag(config=True)
    uid_base = Integer(
        200000, help="Kernels run as uids uid_base + [0, 10**6) (unused on the host), one each."
    ).tag(config=True)
    packages = List(
        Unicode(), ["bptt_lib"], help="Importable packages whose source dirs are bound read-only."
    ).tag(config=True)
    hidden_modules = Dict(
        value_trait=List(Unicode()),
        default_value={"ex33_1_wx_gradient": BY_HAND, "ex33_4_manual_bptt": BY_HAND},
        help="{assignment: [modules]} that cannot be imported in that assignment's sandbox (the "
        "assignment is the basename of the directory nbgrader runs the kernel in; '*': in "
        "every sandbox).",
    ).tag(config=True)
    only_distributions = Dict(
        value_trait=List(Unicode()),
        default_value={"ex33_1_wx_gradient": BY_HAND_DISTRIBUTIONS,
                       "ex33_4_manual_bptt": BY_HAND_DISTRIBUTIONS},
        help="{assignment: [distributions]}: that assignment's sandbox sees only these "
        "distributions of the venv's site-packages, with what they require, ipykernel's "
        "requirements and the files of the packages in Sandbox.packages; everything else there "
        "is absent.",
    ).tag(config=True)
    hidden_message = Unicode(
        "not available while grading this exercise: the backward pass is written by hand",
        help="What importing a hidden module says, after its name.",
    ).tag(config=True)
    max_message_size = Integer(
        8 * 2**20, help="Largest ZMQ message (all its parts together) the grader accepts from a "
        "kernel, bytes: the connection is closed before a larger one is read (course_tools.relay), "
        "and its cell gets an error."
    ).tag(config=True)
    grader_user = Unicode(
        "", help="The unprivileged user everything but the kernel launcher runs as when grading "
        "is started as root (course_tools.privileged); empty: the course directory's owner."
    ).tag(config=True)
    readonly_paths = List(Unicode(), help="Further host paths bound read-only.").tag(config=True)
    readonly_env = List(
        Unicode(), [],
        help="Environment variables naming a host directory: bound read-only, passed in.",
    ).tag(config=True)
    env_keep = List(
        Unicode(),
        ["LANG", "LC_ALL", "TZ", "NBGRADER_EXECUTION", "PYTHONHASHSEED", "OMP_NUM_THREADS",
         "MKL_NUM_THREADS", "MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION",
         # the numeric kernels the grader's references use (and that some CPUs need set)
         "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "ATEN_CPU_CAPABILITY"],
        help="Environment variables passed into the sandbox (all others are cleared).",
    ).tag(config=True)

    @default("enabled")
    def _enabled_default(self):
        return os.environ.get(OPT_OUT_ENV, "on").lower() not in {"off", "0", "false", "no"}

    def uid_for(self, ipc_dir):
        """A uid of its own for the kernel using `ipc_dir` (its inode: unique while it exists)."""
        return self.uid_base + os.stat(ipc_dir).st_ino % 10**6

    def env_dirs(self, env):
        """{variable: directory} of the `readonly_env` variables of `env` naming a directory."""
        return {k: env[k] for k in self.readonly_env if os.path.isdir(env.get(k, ""))}

    def readonly_dirs(self, env):
        """Host directories the kernel may read: Python, the venv, `packages`, `readonly_paths`
        and the directories named by the `readonly_env` variables of `env`."""
        dirs = {sys.base_prefix, sys.prefix, sysconfig.get_paths()["purelib"]}
        for name in self.packages:
            spec = importlib.util.find_spec(name)
            if spec is None:
                raise SandboxUnavailable(f"Sandbox.packages: cannot import {name!r}")
            dirs.update(spec.submodule_search_locations or [os.path.dirname(spec.origin)])
        dirs.update(self.readonly_paths)
        dirs.update(self.env_dirs(env).values())
        return sorted(os.path.realpath(d) for d in dirs)

    @staticmethod
    def unused_site_dirs():
        """The base interpreter's site-packages when this (venv) Python does not use them: a
        kernel could put them on sys.path for packages the venv lacks or hides."""
        paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
        used = {os.path.realpath(p) for p in sys.path if p}
        return sorted({os.path.realpath(paths[k]) for k in ("purelib", "platlib")
                       if os.path.isdir(paths[k])} - used)

    def site_packages(self, assignment):
        """bwrap arguments leaving in the venv's site-packages only what
        `only_distributions[assignment]` allows (a tmpfs with those entries bound over it;
        the caller remounts it read-only after the stubs of `hiding`), or [] when it names none."""
        if assignment not in self.only_distributions:
            return []
        site = os.path.realpath(sysconfig.get_paths()["purelib"])
        args = ["--size", str(2**20), "--tmpfs", site]
        for entry in sorted(site_entries(site, ["ipykernel", *self.only_distributions[assignment]],
                                         self.packages)):
            args += ["--ro-bind", os.path.join(site, entry), os.path.join(site, entry)]
        return args

    def hiding(self, assignment, stub_dir):
        """bwrap arguments making `hidden_modules[assignment]` unimportable: a stub that raises
        ImportError bound over the module (and its bytecode), or a tmpfs holding only such a stub
        over the package; the stubs are written into `stub_dir`."""
        args = []
        for name in [*self.hidden_modules.get("*", []), *self.hidden_modules.get(assignment, [])]:
            spec = importlib.util.find_spec(name)
            if spec is None:
                continue
            stub = os.path.join(stub_dir, f"{name}.py")
            with open(stub, "w") as f:
                f.write(f"raise ImportError({f'{name} is {self.hidden_message}'!r}, "
                        f"name={name!r})\n")
            os.chmod(stub, 0o644)
            if spec.submodule_search_locations:
                for d in map(os.path.realpath, spec.submodule_search_locations):
                    args += ["--size", str(2**16), "--tmpfs", d,
                             "--ro-bind", stub, f"{d}/__init__.py", "--remount-ro", d]
            else:
                origin = os.path.realpath(spec.origin)
                stem = os.path.basename(origin).split(".")[0]
                pycs = glob.glob(os.path.join(os.path.dirname(origin), "__pycache__",
                                              f"{stem}.*.pyc"))
                for path in [origin, *sorted(pycs)]:
                    args += ["--ro-bind", stub, path]
        return args

    def command(self, cmd, assignment, ipc_dir, tools_dir, env, uid):
        """`cmd` (python -m/-c ...) as prlimit -> bwrap -> setpriv -> launcher, run in a fresh
        tmpfs `/home/student/<assignment>`; `tools_dir` (grader-only) holds the stubs."""
        args = ["--tmpfs", "/", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        args += ["--dev", "/dev", "--proc", "/proc"]
        made = {"/", "/usr", "/etc"}

        def parents(path):  # bwrap would create missing parents 0700: unreadable for the uid
            out = []
            for i in range(2, len(path.split("/"))):
                parent = "/".join(path.split("/")[:i])
                if parent not in made:
                    made.add(parent)
                    out += ["--perms", "0755", "--dir", parent]
            return out

        readonly = self.readonly_dirs(env)
        for d in readonly:
            if not any(d.startswith(top + "/") for top in ["/usr", *readonly]):
                args += parents(d) + ["--ro-bind", d, d]
        for d in self.unused_site_dirs():
            args += ["--size", str(2**16), "--tmpfs", d, "--remount-ro", d]
        allowed = self.site_packages(assignment)
        args += allowed + self.hiding(assignment, tools_dir)
        if allowed:
            args += ["--remount-ro", os.path.realpath(sysconfig.get_paths()["purelib"])]
        launcher = f"{TOOLS}/launcher.py"
        args += parents(launcher) + ["--ro-bind", LAUNCHER, launcher]
        args += parents(ipc_dir) + ["--bind", ipc_dir, ipc_dir]
        home = f"{WORKDIR}/{assignment}"
        args += parents(home) + ["--perms", "1777", "--size", str(self.tmp_size), "--tmpfs", home,
                                 "--chdir", home]
        if "/tmp" not in made:  # (it is, read-only, when a bound directory lies under /tmp)
            args += ["--symlink", home, "/tmp"]
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                 "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
        sandbox_env = {k: env[k] for k in self.env_keep if k in env}
        sandbox_env.update(self.env_dirs(env))
        sandbox_env.update(PATH=f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", HOME=home,
                           TMPDIR=home,
                           IPYTHONDIR=f"{home}/.ipython", MPLCONFIGDIR=f"{home}/.matplotlib")
        for k, v in sorted(sandbox_env.items()):
            args += ["--setenv", k, v]
        limits = [f"--as={self.address_space_limit or self.memory_limit}",
                  f"--cpu={self.cpu_limit}", f"--nproc={self.nproc_limit}",
                  f"--fsize={self.file_size_limit}", "--core=0"]
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--no-new-privs"]
        return ["prlimit", *limits, "--", self.bwrap, *args, "--", *drop, cmd[0], launcher,
                *cmd[1:]]

    def cgroup(self, cpus):
        """A new cgroup with this sandbox's limits on `cpus`, or on `Sandbox.cpus` when set
        (cgroups.CgroupUnavailable if none can be made)."""
        return cgroups.detect().create(self.memory_limit, self.pids_limit, self.cpus or cpus)

    def check(self):
        """Start a trivial sandbox; raise SandboxUnavailable with the reason if it cannot."""
        probe = "import os; print(os.getuid())"
        d, group = private_dir(), None
        try:
            uid = self.uid_for(d)
            group = self.cgroup(sorted(os.sched_getaffinity(0)))
            cmd = group.enter_command(self.command([sys.executable, "-c", probe], "check", d, d,
                                                   os.environ, uid))
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            ok = run.returncode == 0 and run.stdout.strip() == str(uid)
            reason = run.stderr.strip() or f"exit {run.returncode}: {run.stdout.strip()}"
        except (OSError, subprocess.TimeoutExpired, cgroups.CgroupUnavailable) as e:
            ok, reason = False, str(e)
        finally:
            if group is not None:
                group.remove()
            shutil.rmtree(d, ignore_errors=True)
        if not ok:
            raise SandboxUnavailable(
                f"Refusing to grade: the student-kernel sandbox cannot start ({reason}). "
                "Install bubblewrap (`make sysdeps`) and run as root on a machine with cgroup v1 "
                "or v2 (memory, pids, cpuset); or, accepting that student code then runs with "
                "your rights and can read solutions and the gradebook, opt out explicitly with "
                f"{OPT_OUT_ENV}=off or c.Sandbox.enabled = False."
            )


def site_entries(site, distributions, packages=()):
    """Top-level names in `site` (site-packages) holding `distributions`, every distribution they
    require (markers evaluated, no extras), and the distributions named like `packages` (their
    own files only, not what they require: the project's, whose editable finder imports
    bptt_lib)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    def entries(dist):
        return {str(f).split("/")[0] for f in dist.files or () if not str(f).startswith("..")}

    names = set()
    todo, seen = list(distributions), set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        names |= entries(dist)
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    for package in packages:
        try:
            names |= entries(distribution(package))
        except PackageNotFoundError:
            continue
    return {n for n in names if os.path.lexists(os.path.join(site, n))}


def private_dir(gid=0):
    """A new directory under RUN_DIR (short: unix socket paths <= 107) that only root can
    change and only root and group `gid` (the grading user's) can enter."""
    os.makedirs(RUN_DIR, mode=0o711, exist_ok=True)
    os.chmod(RUN_DIR, 0o711)
    d = tempfile.mkdtemp(prefix="k-", dir=RUN_DIR)
    os.chown(d, 0, gid)
    os.chmod(d, 0o710)
    return d


_relays: dict[str, KernelRelay] = {}  # a sandboxed kernel's ipc prefix (its "ip") → its relay


class BoundedSockets:
    """Kernel-manager/client mixin: its ZMQ sockets reach a sandboxed kernel only through the
    kernel's `KernelRelay`, which closes a connection on which the kernel sends a message larger
    than `Sandbox.max_message_size` (all its parts together) before the message is read, and
    each socket holds at most `relay.QUEUED` whole messages unread (RCVHWM, the context's
    default: the heartbeat's socket too); a client (`watch`) also notices such disconnections
    (`dropped_messages`)."""

    watch = False

    def _context_default(self):
        context = super()._context_default()
        context.setsockopt(zmq.RCVHWM, QUEUED)
        return context

    def _make_url(self, channel):
        relay = _relays.get(self.ip) if self.transport == "ipc" else None
        if relay is None:
            return super()._make_url(channel)
        return relay.url(getattr(self, f"{channel}_port"))

    def _create_connected_socket(self, channel, identity=None):
        sock = self.context.socket(channel_socket_types[channel])
        sock.linger = 1000
        if identity:
            sock.identity = identity
        if self.watch:
            monitor = watch_disconnections(sock)  # (an asyncio socket)
            self.__dict__.setdefault("_monitors", []).append(
                (monitor, zmq.Socket.shadow(monitor.underlying)))
        sock.connect(self._make_url(channel))
        return sock


def watch_disconnections(sock):
    """A monitor socket for `sock`'s disconnections, at an inproc address of its own: pyzmq's
    default address names the socket's fd, which a socket closed with linger can still hold
    bound when a new socket gets that fd ("Address already in use")."""
    return sock.get_monitor_socket(zmq.EVENT_DISCONNECTED,
                                   addr=f"inproc://monitor-{uuid.uuid4().hex}")


class SandboxKernelClient(BoundedSockets, PromptKernelClient):
    """PromptKernelClient over bounded sockets (`BoundedSockets`)."""

    watch = True

    def dropped_messages(self):
        """How many disconnections (oversized messages) happened since the last call."""
        n = 0
        for _, mon in self.__dict__.get("_monitors", []):
            while mon.poll(0):
                mon.recv_multipart()
                n += 1
        return n

    def stop_channels(self):
        super().stop_channels()
        self._close_monitors()

    def _close_monitors(self):
        for mon, _ in self.__dict__.pop("_monitors", []):
            mon.close(linger=0)

    def reconnect(self):
        """New channels, after a connection closed on an oversized message."""
        for name in ("shell", "iopub", "stdin", "hb", "control"):
            channel = getattr(self, f"_{name}_channel")
            if channel is not None and channel.is_alive():
                channel.stop()
            setattr(self, f"_{name}_channel", None)
        self._close_monitors()
        self.start_channels()


class LauncherProvisioner(KernelProvisionerBase):
    """A kernel started, watched and ended by the launcher (`course_tools.privileged`), not by
    this process: it runs the kernel command the launcher builds, in a sandbox of its own."""

    kernel = None  # the launcher's id of the kernel

    @property
    def has_process(self):
        return self.kernel is not None

    async def pre_launch(self, **kw):
        return {**await super().pre_launch(**kw), "cmd": []}

    async def launch_kernel(self, cmd, **kw):
        km = self.parent
        assignment = os.path.basename(os.path.normpath(kw.get("cwd") or os.getcwd()))
        reply = km.launcher.start(assignment, sorted(os.sched_getaffinity(0)))
        self.kernel = reply["id"]
        return reply["connection"]

    async def poll(self):
        return None if self.kernel is None else self.parent.launcher.poll(self.kernel)["status"]

    async def wait(self):
        while (status := await self.poll()) is None and self.kernel is not None:
            await asyncio.sleep(0.01)
        return status

    async def send_signal(self, signum):
        """Only ending signals (an interrupt goes by message): they kill the kernel."""
        if signum in (signal.SIGKILL, signal.SIGTERM):
            await self.kill()

    async def kill(self, restart=False):
        if self.kernel is not None:
            self.parent.launcher.kill(self.kernel)
            self.kernel = None

    terminate = kill
    cleanup = kill


class SandboxKernelManager(BoundedSockets, PromptKernelManager):
    """A kernel manager whose kernel runs in `Sandbox`, connected over ZMQ ipc sockets.

    The kernel is started and ended by the launcher (`course_tools.privileged`): the command's
    own when grading was started as root, else this (root) process. Its sockets lie in a
    directory of their own that the kernel made them in; the launcher then takes the directory
    (root, 0755: the kernel can no longer add, remove or replace an entry), checks with lstat
    that each endpoint is a socket owned by the kernel's uid, and gives them to the grading
    user's group; only then does this process connect.
    """

    _checked = False
    client_class = DottedObjectName("course_tools.sandbox.SandboxKernelClient")
    client_factory = Type(klass=SandboxKernelClient)

    async def _async_pre_start_kernel(self, **kw):
        from course_tools.privileged import launcher

        self.launcher = launcher(Sandbox(parent=self))
        if not SandboxKernelManager._checked:
            self.launcher.check()
            SandboxKernelManager._checked = True
        self.kernel_id = self.kernel_id or str(uuid.uuid4())
        self.provisioner = LauncherProvisioner(kernel_id=self.kernel_id,
                                               kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        self.load_connection_info(await self.provisioner.launch_kernel(kernel_cmd, **kw))
        if (old := _relays.pop(self.ip, None)) is not None:  # a restarted kernel's
            old.close()
        ports = [getattr(self, f"{channel}_port") for channel in CHANNELS]
        _relays[self.ip] = KernelRelay(self.ip, ports, Sandbox(parent=self).max_message_size)

    async def _async_interrupt_kernel(self):
        """Interrupt by message: a signal would hit bubblewrap, not the kernel."""
        if self.has_kernel:
            self._connect_control_socket()
            self.session.send(self._control_socket, self.session.msg("interrupt_request", {}))

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart=False):
        if (relay := _relays.pop(getattr(self, "ip", None), None)) is not None:
            relay.close()
        await super()._async_cleanup_resources(restart=restart)

    cleanup_resources = _async_cleanup_resources  # nbclient calls it directly for dead kernels


class NotebookTimeout(Exception):
    """The notebook's wall-clock time limit passed: its kernel was killed."""


OUTPUT_GRACE = 1.0  # seconds a cell past a limit has to finish before it is interrupted


class SandboxExecute(Execute):
    """nbgrader's Execute with sandboxed kernels, limits on output, message size and notebook
    time, and dead-kernel grading.

    Kernels are `course_tools.kernels.PromptKernelManager`s (sandboxed or not), killed after the
    last cell (`shutdown_kernel = "immediate"`): nothing is left for them to do. A cell whose
    outputs pass `output_limit` bytes gets one error output (so a grade cell scores 0) and is
    interrupted if it still runs OUTPUT_GRACE seconds later; so is a cell during which the
    kernel sent a message over `max_message_size` (dropped unread), after one such output. After
    `notebook_timeout` seconds the kernel is killed. A kernel that dies
    (time limit, CPU limit, os._exit, ...) leaves an error in the cell it died in and every later
    code cell, and the notebook is still graded.
    """

    output_limit = Integer(2**20, help="Most output bytes kept per cell.").tag(config=True)
    notebook_timeout = Float(60, help="Wall-clock seconds per notebook, kernel start "
                             "included; then the kernel is killed and the rest scores 0 (the "
                             "notebooks grade in 1-3 s).").tag(
        config=True
    )

    def __init__(self, **kw):
        enabled = Sandbox(**{k: v for k, v in kw.items() if k in ("config", "parent")}).enabled
        kw.setdefault("kernel_manager_class",
                      SandboxKernelManager if enabled else PromptKernelManager)
        super().__init__(**kw)
        self.record_timing = True  # a cell's execute reply is known by its time (and a
        # submission's own metadata.execution is cleared before the cell runs)

    @default("shutdown_kernel")
    def _shutdown_kernel_default(self):
        return "immediate"

    def reset_execution_trackers(self):
        super().reset_execution_trackers()
        self.output_bytes, self.kernel_dead, self.pending, self.dropped = {}, None, set(), 0
        self.running = None  # the cell being executed
        self.deadline = time.monotonic() + self.notebook_timeout

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        left = max(1, math.ceil(self.deadline - time.monotonic()))
        return left if timeout is None else min(timeout, left)

    async def _async_handle_timeout(self, timeout, cell=None):
        if time.monotonic() >= self.deadline:
            await self.km.shutdown_kernel(now=True)
            raise NotebookTimeout()
        return await super()._async_handle_timeout(timeout, cell)

    def preprocess_cell(self, cell, resources, index):
        if self.kernel_dead and cell.cell_type == "code" and cell.source.strip():
            cell.outputs = [_error("KernelDied", f"not run: {self.kernel_dead}")]
            return cell, resources
        if time.monotonic() >= self.deadline and cell.cell_type == "code" and cell.source.strip():
            self.kernel_dead = self._time_limit()
            run_sync(self.km.shutdown_kernel)(now=True)
            cell.outputs = [_error("NotebookTimeout", f"not run: {self.kernel_dead}")]
            return cell, resources
        self.dropped = 0
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except CellTimeoutError:  # its status message can be what was dropped
            if not (self.dropped or self._dropped_messages()):
                raise
            self.dropped = 1
        except NotebookTimeout:
            self.kernel_dead = self._time_limit()
            self.log.warning("Notebook time limit reached in cell %d; later cells score 0", index)
            cell.outputs.append(_error("NotebookTimeout", f"the kernel was killed: "
                                       f"{self.kernel_dead}"))
            cell.execution_count = None
        except DeadKernelError:
            self.kernel_dead = "the kernel died in an earlier cell"
            self.log.warning("Kernel died in cell %d; later cells score 0", index)
            cell.outputs.append(_error("KernelDied", "the kernel died (resource limit or exit)"))
            cell.execution_count = None  # whether the kernel got to count it is a race
        if (self.dropped or self._dropped_messages()) and not self.kernel_dead and \
                not run_sync(self.km.is_alive)():  # a disconnection by death, not by size
            self.kernel_dead = "the kernel died in an earlier cell"
            if not any(o.output_type == "error" for o in cell.outputs):  # (already recorded?)
                cell.outputs.append(_error("KernelDied",
                                           "the kernel died (resource limit or exit)"))
        elif self.dropped or self._dropped_messages():
            cell.outputs.append(_error("MessageTooLarge", "the kernel sent a message over "
                                       "Sandbox.max_message_size bytes; it was dropped"))
            if not self.kernel_dead:
                self._reconnect()
        return cell, resources

    def _reconnect(self):
        """New channels; a kernel that does not answer on them within 60 s (it floods them
        still) is ended, and the later cells score 0 as after its death."""
        self.kc.reconnect()
        try:
            run_sync(self.kc.wait_for_ready)(timeout=60)
        except RuntimeError:
            self.kernel_dead = "the kernel kept sending oversized messages"
            run_sync(self.km.shutdown_kernel)(now=True)

    async def async_execute_cell(self, cell, cell_index, **kw):
        self.running = cell
        watcher = asyncio.ensure_future(self._watch_dropped(cell))
        try:
            return await super().async_execute_cell(cell, cell_index, **kw)
        finally:
            self.running = None
            watcher.cancel()
            for task in list(self.pending):  # the cell is done: nothing left to interrupt
                task.cancel()

    execute_cell = run_sync(async_execute_cell)

    async def _watch_dropped(self, cell):
        """Once a message of the cell was dropped (its channel is dead), interrupt it if it
        still runs (`_interrupt_if_running`)."""
        while not self.dropped:
            await asyncio.sleep(0.05)
            self.dropped = self._dropped_messages()
        await self._interrupt_if_running(cell)

    def _dropped_messages(self):
        return self.kc.dropped_messages() if isinstance(self.kc, SandboxKernelClient) else 0

    def _time_limit(self):
        return f"the notebook's time limit ({self.notebook_timeout:g} s) was reached"

    def output(self, outs, msg, display_id, cell_index):
        used = self.output_bytes.get(cell_index, 0)
        if used > self.output_limit:
            return None
        used += len(str(msg["content"]))
        self.output_bytes[cell_index] = used
        if used <= self.output_limit:
            return super().output(outs, msg, display_id, cell_index)
        self.output_bytes[cell_index] = self.output_limit + 1
        outs.append(_error("OutputLimitExceeded",
                           f"more than {self.output_limit} bytes of output; cell interrupted"))
        task = asyncio.ensure_future(self._interrupt_if_running(self.nb.cells[cell_index]))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return None

    async def _interrupt_if_running(self, cell):
        """Interrupt the cell if, OUTPUT_GRACE seconds after passing a limit, it still runs: its
        execute reply has not come (a runaway printer). A cell that printed too much once is
        usually done by the time its output is read, and a SIGINT that reaches ipykernel after
        the cell's reply can leave the kernel deaf until the notebook's time limit: its later
        cells, answered, scored 0. (The reply can come seconds before the cell ends, when its
        idle status was on a dropped connection: nbclient then waits `iopub_timeout`.)"""
        await asyncio.sleep(OUTPUT_GRACE)
        replied = "shell.execute_reply" in cell.metadata.get("execution", {})
        if self.running is cell and not replied:
            await self.km.interrupt_kernel()


def _error(ename, evalue):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


_configured = []  # configure(c) completed since the config file last called fail_closed()


def fail_closed():
    """Call first in `nbgrader_config.py`: an nbgrader command then refuses to start unless the
    file goes on to complete `configure(c)`. (nbgrader only logs an exception raised in a config
    file, and goes on with what was set before it: as root and unsandboxed, had it come before
    `configure(c)`.)"""
    from nbgrader.apps.baseapp import NbGrader

    _configured.clear()
    if not getattr(NbGrader.start, "fails_closed", False):
        start = NbGrader.start

        def guarded_start(self):
            if not _configured:
                raise SystemExit("Refusing to run: nbgrader_config.py stopped before "
                                 "configure(c) (see the error logged above)")
            return start(self)

        guarded_start.fails_closed = True
        NbGrader.start = guarded_start


def configure(c):
    """Turn the sandbox on for a course: call it last in `nbgrader_config.py` (and
    `fail_closed()` first).

    Every Execute (sub)class among the autograde preprocessors gets sandboxed kernels. In the
    `nbgrader` command, started as root, it starts the kernel launcher (with the config as it is
    here) and makes the command the grading user's for good
    (`course_tools.privileged.become_grader`); it ends the command, saying why, when that
    cannot be done (e.g. the course belongs to root).
    """
    from nbgrader.apps.baseapp import NbGrader
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    from course_tools.privileged import become_grader, course_directory

    steps = (c.Autograde.autograde_preprocessors if "autograde_preprocessors" in c.Autograde
             else Autograde.class_traits()["autograde_preprocessors"].default())
    c.Autograde.autograde_preprocessors = [_sandboxed(s) for s in steps]
    if NbGrader.initialized():  # an nbgrader command itself, not a program using the library
        try:
            become_grader(c, course_directory(CourseDirectory(config=c)))
        except SandboxUnavailable as e:
            raise SystemExit(str(e)) from None
        except Exception as e:  # (nbgrader would log it, and grade as root without the config)
            raise SystemExit(f"Refusing to grade: cannot become the grading user: {e}") from e
    _configured.append(True)


def _sandboxed(step):
    """`step`, or for an Execute (sub)class, the same class with SandboxExecute mixed in."""
    executes = isinstance(step, type) and issubclass(step, Execute)
    if not executes or issubclass(step, SandboxExecute):
        return step
    if step is Execute:
        return SandboxExecute
    return type(f"Sandboxed{step.__name__}", (SandboxExecute, step), {})
