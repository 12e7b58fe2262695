"""Run every student notebook that `nbgrader autograde` executes inside a bubblewrap sandbox.

The kernel sees a fresh root holding only read-only system and Python directories, the packages
the exercises import (`Sandbox.packages`), its own autograded directory (writable, mounted at
`/home/student/<assignment>`) and a private `/tmp`. The course directory (gradebook, `source/`,
other students), `solutions/` and the git history are simply not there. It has no network (own
namespace; the grader talks to it over ZMQ `ipc` sockets in a directory bound into the sandbox),
runs as an unprivileged uid, and has rlimits on address space, CPU time, processes and file size.
Grader side, `SandboxExecute` caps each cell's output and grades a notebook whose kernel died.

Hook it into a course with `configure(c)` at the end of `nbgrader_config.py`. Opt out (grade
unsandboxed, e.g. on a machine without bubblewrap) only explicitly: `c.Sandbox.enabled = False`
or the environment variable `COURSE_SANDBOX=off`.
"""

import asyncio
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer, List, Unicode, default
from traitlets.config import Configurable

from course_tools.kernels import PromptKernelManager

OPT_OUT_ENV = "COURSE_SANDBOX"
WORKDIR = "/home/student"


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create the sandbox, and nobody opted out."""


class Sandbox(Configurable):
    """Where and how student kernels are confined (configure as `c.Sandbox.<trait>`)."""

    enabled = Bool(True, help=f"Sandbox kernels. Opt out: False, or env {OPT_OUT_ENV}=off.").tag(
        config=True
    )
    bwrap = Unicode("bwrap", help="The bubblewrap executable.").tag(config=True)
    memory_limit = Integer(4 * 2**30, help="RLIMIT_AS of the kernel, bytes.").tag(config=True)
    cpu_limit = Integer(600, help="RLIMIT_CPU of the kernel, seconds (whole notebook).").tag(
        config=True
    )
    nproc_limit = Integer(
        256, help="RLIMIT_NPROC: processes + threads of the sandbox uid (stops fork bombs)."
    ).tag(config=True)
    file_size_limit = Integer(64 * 2**20, help="RLIMIT_FSIZE: largest file it may write.").tag(
        config=True
    )
    tmp_size = Integer(256 * 2**20, help="Size of the sandbox's private /tmp, bytes.").tag(
        config=True
    )
    uid_base = Integer(
        200000, help="Kernels run as uids uid_base + [0, 10**6) (unused on the host), one each."
    ).tag(config=True)
    packages = List(
        Unicode(), ["bptt_lib"], help="Importable packages whose source dirs are bound read-only."
    ).tag(config=True)
    readonly_paths = List(Unicode(), help="Further host paths bound read-only.").tag(config=True)
    readonly_env = List(
        Unicode(), ["BPTT_REFERENCES"],
        help="Environment variables naming a host directory: bound read-only, passed in.",
    ).tag(config=True)
    env_keep = List(
        Unicode(),
        ["LANG", "LC_ALL", "TZ", "NBGRADER_EXECUTION", "PYTHONHASHSEED", "OMP_NUM_THREADS",
         "MKL_NUM_THREADS", "MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION"],
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

    def command(self, cmd, workdir, ipc_dir, env, uid):
        """`cmd` wrapped as prlimit -> bwrap -> setpriv, run in `workdir` (bound writable)."""
        args = ["--tmpfs", "/", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        args += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--size",
                 str(self.tmp_size), "--tmpfs", "/tmp"]
        made = {"/", "/usr", "/etc", "/tmp"}

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
        home = f"{WORKDIR}/{os.path.basename(os.path.normpath(workdir))}"
        args += parents(ipc_dir) + ["--bind", ipc_dir, ipc_dir]
        args += parents(home) + ["--bind", workdir, home, "--chdir", home]
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                 "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
        sandbox_env = {k: env[k] for k in self.env_keep if k in env}
        sandbox_env.update(self.env_dirs(env))
        sandbox_env.update(PATH=f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", HOME="/tmp",
                           IPYTHONDIR="/tmp/.ipython", MPLCONFIGDIR="/tmp/.matplotlib")
        for k, v in sorted(sandbox_env.items()):
            args += ["--setenv", k, v]
        limits = [f"--as={self.memory_limit}", f"--cpu={self.cpu_limit}",
                  f"--nproc={self.nproc_limit}", f"--fsize={self.file_size_limit}", "--core=0"]
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--no-new-privs"]
        return ["prlimit", *limits, "--", self.bwrap, *args, "--", *drop, *cmd]

    def check(self):
        """Start a trivial sandbox; raise SandboxUnavailable with the reason if it cannot."""
        with tempfile.TemporaryDirectory(prefix="sbx-") as d:
            uid = self.uid_for(d)
            cmd = self.command([sys.executable, "-c", "import os; print(os.getuid())"],
                               d, d, os.environ, uid)
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                ok = run.returncode == 0 and run.stdout.strip() == str(uid)
                reason = run.stderr.strip() or f"exit {run.returncode}: {run.stdout.strip()}"
            except (OSError, subprocess.TimeoutExpired) as e:
                ok, reason = False, str(e)
        if not ok:
            raise SandboxUnavailable(
                f"Refusing to grade: the student-kernel sandbox cannot start ({reason}). "
                "Install bubblewrap (`make sysdeps`) and run as root; or, accepting that student "
                "code then runs with your rights and can read solutions and the gradebook, opt "
                f"out explicitly with {OPT_OUT_ENV}=off or c.Sandbox.enabled = False."
            )


class SandboxKernelManager(PromptKernelManager):
    """A kernel manager whose kernel runs in `Sandbox`, connected over ZMQ ipc sockets."""

    _checked = False

    async def _async_pre_start_kernel(self, **kw):
        self.sandbox = Sandbox(parent=self)
        if not SandboxKernelManager._checked:
            self.sandbox.check()
            SandboxKernelManager._checked = True
        self.ipc_dir = tempfile.mkdtemp(prefix="sbx-")  # short: unix socket paths <= 107 chars
        self.sandbox_uid = self.sandbox.uid_for(self.ipc_dir)
        os.chown(self.ipc_dir, self.sandbox_uid, self.sandbox_uid)
        self.transport = "ipc"
        self.connection_file = os.path.join(self.ipc_dir, "kernel.json")
        self.ip = os.path.join(self.ipc_dir, "k")
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        os.chmod(self.connection_file, 0o644)
        self.workdir = os.path.realpath(kw.get("cwd") or os.getcwd())
        st = os.stat(self.workdir)
        self.workdir_owner = st.st_uid, st.st_gid
        os.chown(self.workdir, self.sandbox_uid, self.sandbox_uid)
        cmd = self.sandbox.command(kernel_cmd, self.workdir, self.ipc_dir, kw.get("env", {}),
                                   self.sandbox_uid)
        with open(os.path.join(self.ipc_dir, "kernel.log"), "wb") as log:
            await super()._async_launch_kernel(cmd, **kw, stdout=log, stderr=subprocess.STDOUT)

    async def _async_interrupt_kernel(self):
        """Interrupt by message: a signal would hit bubblewrap, not the kernel."""
        if self.has_kernel:
            self._connect_control_socket()
            self.session.send(self._control_socket, self.session.msg("interrupt_request", {}))

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if hasattr(self, "workdir"):  # hand the files the kernel wrote back to the grader
            for root, dirs, files in os.walk(self.workdir):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), *self.workdir_owner)
            os.chown(self.workdir, *self.workdir_owner)
        if hasattr(self, "ipc_dir") and not restart:
            shutil.rmtree(self.ipc_dir, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources  # nbclient calls it directly for dead kernels


class SandboxExecute(Execute):
    """nbgrader's Execute with sandboxed kernels, a per-cell output cap, and dead-kernel grading.

    Kernels are `course_tools.kernels.PromptKernelManager`s (sandboxed or not), killed after the
    last cell (`shutdown_kernel = "immediate"`): nothing is left for them to do. A cell whose
    outputs pass `output_limit` bytes is interrupted and gets one error output (so a grade cell
    scores 0); a kernel that dies (CPU limit, os._exit, ...) leaves an error in the
    cell it died in and every later code cell, and the notebook is still graded.
    """

    output_limit = Integer(2**20, help="Most output bytes kept per cell.").tag(config=True)

    def __init__(self, **kw):
        enabled = Sandbox(**{k: v for k, v in kw.items() if k in ("config", "parent")}).enabled
        kw.setdefault("kernel_manager_class",
                      SandboxKernelManager if enabled else PromptKernelManager)
        super().__init__(**kw)

    @default("shutdown_kernel")
    def _shutdown_kernel_default(self):
        return "immediate"

    def reset_execution_trackers(self):
        super().reset_execution_trackers()
        self.output_bytes, self.kernel_dead, self.pending = {}, False, set()

    def preprocess_cell(self, cell, resources, index):
        if self.kernel_dead and cell.cell_type == "code" and cell.source.strip():
            cell.outputs = [_error("KernelDied", "not executed: the kernel died earlier")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.kernel_dead = True
            self.log.warning("Kernel died in cell %d; later cells score 0", index)
            cell.outputs.append(_error("KernelDied", "the kernel died (resource limit or exit)"))
            cell.execution_count = None  # whether the kernel got to count it is a race
            return cell, resources

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
        task = asyncio.ensure_future(self.km.interrupt_kernel())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return None


def _error(ename, evalue):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def configure(c):
    """Turn the sandbox on for a course: call at the end of `nbgrader_config.py`.

    Every Execute (sub)class among the autograde preprocessors gets sandboxed kernels.
    """
    from nbgrader.converters import Autograde

    steps = (c.Autograde.autograde_preprocessors if "autograde_preprocessors" in c.Autograde
             else Autograde.class_traits()["autograde_preprocessors"].default())
    c.Autograde.autograde_preprocessors = [_sandboxed(s) for s in steps]


def _sandboxed(step):
    """`step`, or for an Execute (sub)class, the same class with SandboxExecute mixed in."""
    executes = isinstance(step, type) and issubclass(step, Execute)
    if not executes or issubclass(step, SandboxExecute):
        return step
    if step is Execute:
        return SandboxExecute
    return type(f"Sandboxed{step.__name__}", (SandboxExecute, step), {})
