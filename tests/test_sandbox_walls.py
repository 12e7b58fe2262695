"""The sandbox's walls one by one, each proved in a kernel started by `SandboxKernelManager`: the
tmpfs working directory, the sealed ipc directory, hidden modules, no exec, the cgroup (memory of
all its processes, CPU set, process count) and the grader's message-size limit. Graded through
nbgrader: tests/test_sandbox.py."""

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from traitlets.config import Config

from course_tools import cgroups
from course_tools.privileged import Kernels
from course_tools.sandbox import Sandbox, SandboxKernelManager


@pytest.fixture(scope="module", autouse=True)
def sandbox_works():
    Sandbox().check()  # the hogs below are only safe inside the sandbox


def run(code, cwd, config=None, timeout=120):
    """Run `code` in a sandboxed kernel started in `cwd`; return (stdout text, error names, km)."""
    async def go():
        km = SandboxKernelManager(config=config or Config(), kernel_name="python3")
        await km.start_kernel(cwd=str(cwd))
        km.cgroup_dirs = list(km.launcher.running[km.provisioner.kernel].group.dirs)
        kc = km.client()
        kc.start_channels()
        out, errors = [], []

        def hook(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")
        try:
            await kc.wait_for_ready(timeout=60)
            await kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)
        return "".join(out), errors, km

    return asyncio.run(go())


def assignment_dir(tmp_path, name):
    d = tmp_path / "autograded" / "someone" / name
    d.mkdir(parents=True)
    return d


def test_the_only_writable_place_is_a_size_limited_tmpfs_cwd(tmp_path):
    host = assignment_dir(tmp_path, "sq")
    code = textwrap.dedent("""
        import os
        print("cwd", os.getcwd())
        open("answer.txt", "w").write("mine")
        os.symlink("/etc/passwd", "link")
        writable = []
        for root, dirs, files in os.walk("/"):
            if root.startswith(("/proc", "/sys")) or os.statvfs(root).f_flag & os.ST_RDONLY:
                dirs[:] = []
                continue
            if os.access(root, os.W_OK):
                writable.append(root)
                dirs[:] = []
        print("writable", sorted(writable))
        try:
            with open("big", "wb") as f:
                for _ in range(20):
                    f.write(b"x" * 2**20)
        except OSError as e:
            print("full:", e.strerror)
    """)
    config = Config()
    config.Sandbox.tmp_size = 8 * 2**20
    out, errors, _ = run(code, host, config)
    assert errors == []
    assert "cwd /home/student/sq" in out
    assert "writable ['/home/student/sq']" in out  # /tmp links to it
    assert "full: No space left on device" in out
    assert os.listdir(host) == []  # nothing the kernel wrote reaches the host


HIDDEN = ["torch", "functorch", "torchgen", "sympy", "mpmath", "bptt_lib.backward"]


@pytest.mark.parametrize(("assignment", "by_hand"), [("ex33_4_manual_bptt", True),
                                                     ("ex33_1_wx_gradient", True),
                                                     ("ex33_2_linear_rnn", False)])
def test_a_by_hand_kernel_imports_only_numpy_and_the_forward_helpers(tmp_path, assignment,
                                                                      by_hand):
    """Issue 23: in 33.1 and 33.4 the venv's site-packages holds only what the kernel, NumPy,
    matplotlib and the project need: mpmath, dask, … are not there at all (not only stubbed);
    33.2's kernel, the control, sees them."""
    import sysconfig

    from course_tools.sandbox import site_entries

    site = sysconfig.get_paths()["purelib"]
    code = textwrap.dedent(f"""
        import importlib, os
        for name in ["mpmath", "dask", "sympy", "numpy", "matplotlib.pyplot", "bptt_lib.rnn",
                     "bptt_grading.method"]:
            try:
                importlib.import_module(name)
                print("imported", name)
            except ImportError as e:
                print("absent", name)
        print("entries", sorted(os.listdir({site!r})))
    """)
    config = Config()
    config.Sandbox.packages = ["bptt_lib", "bptt_grading"]  # as nbgrader_config.py has them
    out, errors, _ = run(code, assignment_dir(tmp_path, assignment), config, timeout=300)
    assert errors == []
    for name in ("numpy", "matplotlib.pyplot", "bptt_lib.rnn", "bptt_grading.method"):
        assert f"imported {name}" in out
    for name in ("mpmath", "dask", "sympy"):
        assert (f"absent {name}" if by_hand else f"imported {name}") in out
    entries = eval(out.split("entries ", 1)[1])
    allowed = site_entries(site, ["ipykernel", "numpy", "matplotlib"], ["bptt_lib"])
    assert (set(entries) <= allowed | {"torch", "functorch", "torchgen", "sympy", "mpmath"}
            if by_hand else "dask" in entries)


def test_by_hand_assignments_cannot_import_autograd_in_any_process(tmp_path):
    code = textwrap.dedent(f"""
        import importlib, os, sys
        def tries():
            for name in {HIDDEN!r}:
                try:
                    importlib.import_module(name)
                    print("imported", name)
                except ImportError as e:
                    print("hidden", name, "|", e)
        tries()
        sys.stdout.flush()
        if os.fork() == 0:
            for name in list(sys.modules):
                if name.startswith(("torch", "sympy", "bptt_lib.backward")):
                    del sys.modules[name]
            print("child:")
            tries()
            sys.stdout.flush()
            os._exit(0)
        os.wait()
        from bptt_lib.rnn import rnn_forward
        from bptt_lib.jacobians import jacobian_product
        print("usable", rnn_forward.__name__, jacobian_product.__name__)
        copies = []
        for root, dirs, files in os.walk("/"):
            if root.startswith(("/proc", "/sys", "/dev")):
                dirs[:] = []
                continue
            for f in files:
                if f.startswith(("torch", "sympy")) and f.endswith((".whl", ".so", ".tar.gz")):
                    copies.append(os.path.join(root, f))
            for d in dirs:
                path = os.path.join(root, d)
                if d in ("torch", "sympy", "functorch") and len(os.listdir(path)) > 1:
                    copies.append(path)
        print("copies", copies)
    """)
    out, errors, _ = run(code, assignment_dir(tmp_path, "ex33_4_manual_bptt"), timeout=300)
    assert errors == []
    assert "imported" not in out
    for name in HIDDEN:
        assert out.count(f"hidden {name} | {name} is not available while grading this exercise: "
                         "the backward pass is written by hand") == 2, out
    assert "usable rnn_forward jacobian_product" in out
    assert "copies []" in out


def test_no_program_can_be_started_but_the_kernel_works(tmp_path):
    code = textwrap.dedent("""
        import os, subprocess, sys
        try:
            subprocess.run([sys.executable, "-c", "1"])
        except PermissionError as e:
            print("subprocess blocked:", e.strerror)
        print("os.system:", os.system("true"))
        import numpy as np, torch, matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
        plt.plot(np.arange(3))
        plt.savefig("fig.png")
        print("works", x.grad.tolist(), os.path.getsize("fig.png") > 0)
    """)
    out, errors, _ = run(code, assignment_dir(tmp_path, "ex33_3_bptt_torch"), timeout=300)
    assert errors == []
    assert "subprocess blocked: Operation not permitted" in out
    assert "os.system: 32512" in out  # the shell could not start: exit status 127
    assert "works [2.0, 4.0] True" in out


def test_a_planted_ipc_endpoint_is_refused(tmp_path):
    """A 'kernel' that plants symlinks where its sockets belong: the grader will not connect."""
    plant = ("import json, os, sys; c = json.load(open(sys.argv[1])); "
             "[os.symlink('/run/other-kernel-socket', f\"{c['ip']}-{c[k + '_port']}\") "
             "for k in ('shell', 'iopub', 'stdin', 'control', 'hb')]; import time; time.sleep(60)")
    kernels = Kernels(Sandbox(), os.getgid(), kernel=[sys.executable, "-c", plant])
    with pytest.raises(RuntimeError, match="are not sockets of uid"):
        kernels.start("sq", sorted(os.sched_getaffinity(0)))
    assert kernels.running == {}


def test_the_kernel_cannot_change_its_ipc_directory_once_connected(tmp_path):
    code = textwrap.dedent("""
        import os
        from ipykernel.connect import get_connection_file
        d = os.path.dirname(get_connection_file())
        for what, act in [("rename", lambda: os.rename(d + "/k-1", d + "/moved")),
                          ("plant", lambda: os.symlink("/elsewhere", d + "/k-99"))]:
            try:
                act()
                print(what, "done")
            except OSError as e:
                print(what, "blocked:", e.strerror)
    """)
    out, errors, _ = run(code, assignment_dir(tmp_path, "sq"))
    assert "rename blocked: Permission denied" in out and "plant blocked: Permission denied" in out


def _config(**sandbox):
    config = Config()
    for k, v in sandbox.items():
        setattr(config.Sandbox, k, v)
    return config


def test_memory_limit_covers_all_the_sandboxs_processes(tmp_path):
    """Five children of 200 MiB each cannot together hold more than the sandbox's 512 MiB."""
    code = textwrap.dedent("""
        import os, time
        kids = []
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                block = bytearray(200 * 2**20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(20)
                os._exit(0)
            kids.append(pid)
        time.sleep(6)
        rss = 0
        for pid in kids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    rss += int(f.read().split("VmRSS:")[1].split()[0]) * 1024
            except (OSError, IndexError):
                pass
        print("children MiB", rss // 2**20)
    """)
    out, errors, km = run(code, assignment_dir(tmp_path, "sq"),
                          _config(memory_limit=512 * 2**20, address_space_limit=2**32))
    mib = int(out.split("children MiB")[1].split()[0])
    assert mib <= 512, out
    assert len(km.cgroup_dirs) == {1: 3, 2: 1}[cgroups.detect().version]
    assert not any(os.path.exists(d) for d in km.cgroup_dirs)  # removed with the kernel


def test_spinners_stay_on_the_sandboxs_cpus(tmp_path):
    """64 setsid spinners asking for the other CPU keep to the sandbox's cpuset."""
    code = textwrap.dedent("""
        import os, time
        r, w = os.pipe()
        for _ in range(64):
            if os.fork() == 0:
                os.setsid()
                try:
                    os.sched_setaffinity(0, {1})
                except OSError:
                    pass
                cpus = sorted(os.sched_getaffinity(0))
                os.write(w, (str(cpus) + "\\n").encode())
                end = time.monotonic() + 0.3
                while time.monotonic() < end:
                    pass
                os._exit(0)
        os.close(w)
        seen = set(os.fdopen(r).read().split("\\n")) - {""}
        print("affinities", sorted(seen))
    """)
    out, errors, _ = run(code, assignment_dir(tmp_path, "sq"), _config(cpus=[0]))
    assert errors == []
    assert "affinities ['[0]']" in out


def test_a_fork_bomb_stops_at_pids_max(tmp_path):
    code = textwrap.dedent("""
        import os, time
        me = os.getpid()
        try:
            while True:
                os.fork()
        except OSError as e:
            if os.getpid() != me:
                time.sleep(30)
                os._exit(0)
            time.sleep(1)
            print("stopped", type(e).__name__, len([p for p in os.listdir("/proc") if p.isdigit()]))
    """)
    out, errors, km = run(code, assignment_dir(tmp_path, "sq"),
                          _config(pids_limit=40, nproc_limit=2000))
    assert "stopped BlockingIOError" in out
    assert int(out.split("stopped BlockingIOError")[1].split()[0]) <= 40  # RLIMIT_NPROC: 2000


def test_cgroup_v2_groups_get_the_same_limits(tmp_path):
    """A fake unified hierarchy: the same traits become memory.max, pids.max, cpuset.*."""
    root = tmp_path / "cg2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup2 {root} cgroup2 rw,relatime 0 0\n")
    own = tmp_path / "cgroup"
    own.write_text("0::/\n")
    hierarchy = cgroups.detect(str(mounts), str(own))
    assert hierarchy.version == 2
    assert (root / "cgroup.subtree_control").read_text() == "+memory +pids +cpuset"
    (root / "course-sandbox" / "cpuset.mems.effective").write_text("0\n")
    group = hierarchy.create(3 * 2**30, 99, [1])
    (d,) = group.dirs
    got = {f.name: f.read_text() for f in sorted(Path(d).iterdir())}
    assert got == {"cpuset.cpus": "1", "cpuset.mems": "0", "memory.max": str(3 * 2**30),
                   "pids.max": "99"}
    assert group.enter_command(["x"])[-3:] == [os.path.join(d, "cgroup.procs"), "--", "x"]


def test_without_usable_cgroups_it_refuses(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n")
    own = tmp_path / "cgroup"
    own.write_text("0::/\n")
    with pytest.raises(cgroups.CgroupUnavailable, match="no cgroup v1 memory"):
        cgroups.detect(str(mounts), str(own))


GRADER = """
import resource, sys, nbformat
from nbformat.v4 import new_code_cell, new_notebook
from traitlets.config import Config
from course_tools.sandbox import SandboxExecute
c = Config()
c.Sandbox.max_message_size = int(sys.argv[1])
nb = new_notebook(cells=[new_code_cell(sys.argv[2]), new_code_cell("print('next')")])
nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
SandboxExecute(config=c, output_limit=10**9, timeout=120).preprocess(nb, {})
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print("grew MiB", grew // 1024)
print("outputs", [[o.get("ename") or o.get("text") for o in cell.outputs] for cell in nb.cells])
"""


# one part of 300 MB; 60 parts of 7 MiB each, every one under the limit (ZMQ's own MAXMSGSIZE
# limits parts only, and ZMQ delivers a multipart message whole: 420 MiB in the grader)
FLOODS = {"one part": "print('x' * 300_000_000)",
          "many parts": "k = get_ipython().kernel\n"
                        "k.iopub_socket.send_multipart([b'x' * (7 << 20)] * 60)"}


@pytest.mark.parametrize("flood", FLOODS)
def test_a_huge_message_is_dropped_before_it_is_read(tmp_path, flood):
    run = subprocess.run([sys.executable, "-c", GRADER, str(8 * 2**20), FLOODS[flood]],
                         capture_output=True, text=True, timeout=300,
                         cwd=assignment_dir(tmp_path, "sq"))
    assert run.returncode == 0, run.stderr[-3000:]
    grew = int(run.stdout.split("grew MiB")[1].split()[0])
    assert grew < 100, run.stdout  # the flood would cost the grader 300+ MiB
    assert "outputs [['MessageTooLarge'], ['next\\n']]" in run.stdout
