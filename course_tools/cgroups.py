"""A cgroup per sandboxed kernel: memory with its children, process count, a fixed CPU set; and
a memory group per grading job (`delegate`, `job_group`).

cgroup v1 (a hierarchy per controller, each under the grader's own group in it) or v2 (the unified
hierarchy with memory, pids and cpuset controllers available: groups under `<mount>/course-sandbox`,
which is created with the controllers enabled). `detect` picks v1 if its three controllers are
mounted, else v2, else raises CgroupUnavailable. Creating groups and moving a process into them
needs root.

Grading jobs (course_tools.autograde) run as the unprivileged grading user, in a memory group of
their own each, so that whatever a kernel makes the grader hold ends that job only: as root, the
command makes a group in the v1 memory hierarchy and gives it to the grading user (`delegate`,
named by the environment variable JOBS_ENV), who makes each job's group in it (`job_group`).
Without a v1 memory hierarchy (v2 delegation would need the grading processes moved into it:
not done), jobs get no group of their own.
"""

import os
import signal
import time
import uuid

CONTROLLERS = ("memory", "pids", "cpuset")
V2_PARENT = "course-sandbox"
JOBS_ENV = "COURSE_JOB_CGROUP"  # the grading user's memory group, for one group per job
# The first process run in a sandbox: puts itself into the groups (its arguments up to "--", all
# cgroup.procs paths chosen by the grader), then becomes the rest of the command.
ENTER = ['/bin/sh', '-c',
         'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"',
         'enter-cgroup']


class CgroupUnavailable(RuntimeError):
    """No cgroup v1 or v2 hierarchy with the memory, pids and cpuset controllers is usable."""


def mounts(path="/proc/self/mounts"):
    """{controller: v1 mount point} and the v2 mount point (or None), from `path`."""
    v1, v2 = {}, None
    with open(path) as f:
        for line in f:
            _, where, kind, options = line.split()[:4]
            if kind == "cgroup2":
                v2 = v2 or where
            elif kind == "cgroup":
                for c in set(options.split(",")) & set(CONTROLLERS):
                    v1.setdefault(c, where)
    return v1, v2


def own_groups(path="/proc/self/cgroup"):
    """{controller or "" (v2): this process's group path}."""
    out = {}
    with open(path) as f:
        for line in f:
            _, names, group = line.rstrip("\n").split(":", 2)
            for name in names.split(",") if names else [""]:
                out[name] = group
    return out


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def _read(path):
    with open(path) as f:
        return f.read().strip()


class Hierarchy:
    """Where kernel groups are made: v1 (`dirs` = {controller: parent dir}) or v2 (one dir)."""

    def __init__(self, version, parents):
        self.version, self.parents = version, parents

    def create(self, memory, pids, cpus, mems=None):
        """A new KernelCgroup with these limits (bytes, tasks, CPU numbers, memory nodes)."""
        name = f"kernel-{uuid.uuid4().hex[:12]}"
        cpu_list = ",".join(map(str, sorted(cpus)))
        group = KernelCgroup([os.path.join(p, name) for p in self.parents])
        try:
            for d in group.dirs:
                os.mkdir(d, 0o755)
            if self.version == 1:
                mem, pid, cpu = group.dirs
                _write(f"{mem}/memory.limit_in_bytes", memory)
                if os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"):  # no swap beyond it
                    _write(f"{mem}/memory.memsw.limit_in_bytes", memory)
                _write(f"{pid}/pids.max", pids)
                _write(f"{cpu}/cpuset.cpus", cpu_list)
                _write(f"{cpu}/cpuset.mems", mems or _read(f"{self.parents[2]}/cpuset.mems"))
            else:
                (d,) = group.dirs
                _write(f"{d}/memory.max", memory)
                if os.path.exists(f"{d}/memory.swap.max"):
                    _write(f"{d}/memory.swap.max", 0)
                _write(f"{d}/pids.max", pids)
                _write(f"{d}/cpuset.cpus", cpu_list)
                parent_mems = f"{self.parents[0]}/cpuset.mems.effective"
                _write(f"{d}/cpuset.mems", mems or _read(parent_mems))
        except BaseException:
            group.remove(timeout=0)
            raise
        return group


class KernelCgroup:
    """One kernel's group (a dir per v1 controller, or one v2 dir)."""

    def __init__(self, dirs):
        self.dirs = dirs

    def enter_command(self, cmd):
        """`cmd` preceded by a shell that first moves itself into this group."""
        return [*ENTER, *[os.path.join(d, "cgroup.procs") for d in self.dirs], "--", *cmd]

    def pids(self):
        found = set()
        for d in self.dirs:
            try:
                found.update(int(p) for p in _read(os.path.join(d, "cgroup.procs")).split())
            except FileNotFoundError:
                pass
        return found

    def remove(self, timeout=5.0):
        """Kill what is left in the group, then remove it (retrying up to `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for d in [d for d in self.dirs if os.path.isdir(d)]:
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            left = [d for d in self.dirs if os.path.isdir(d)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.02)


def detect(mounts_file="/proc/self/mounts", cgroup_file="/proc/self/cgroup"):
    """The Hierarchy to use here; raise CgroupUnavailable saying why there is none."""
    v1, v2 = mounts(mounts_file)
    own = own_groups(cgroup_file)
    if all(c in v1 for c in CONTROLLERS):
        parents = []
        for c in CONTROLLERS:
            mine = os.path.join(v1[c], own.get(c, "/").lstrip("/"))
            parents.append(mine if os.path.isdir(mine) else v1[c])
        if all(os.access(p, os.W_OK) for p in parents):
            return Hierarchy(1, parents)
        raise CgroupUnavailable(f"cgroup v1 groups {parents} are not writable (run as root)")
    if v2 is None:
        raise CgroupUnavailable("no cgroup v1 memory+pids+cpuset hierarchies, no cgroup v2 mount")
    available = set(_read(os.path.join(v2, "cgroup.controllers")).split())
    if not set(CONTROLLERS) <= available:
        raise CgroupUnavailable(f"cgroup v2 at {v2} lacks controllers "
                                f"{sorted(set(CONTROLLERS) - available)} (and v1 lacks some too)")
    parent = os.path.join(v2, V2_PARENT)
    enable = " ".join(f"+{c}" for c in CONTROLLERS)
    try:
        _write(os.path.join(v2, "cgroup.subtree_control"), enable)
        os.makedirs(parent, exist_ok=True)
        _write(os.path.join(parent, "cgroup.subtree_control"), enable)
    except OSError as e:
        raise CgroupUnavailable(f"cannot set up cgroup v2 group {parent}: {e}") from e
    return Hierarchy(2, [parent])


def delegate(uid, mounts_file="/proc/self/mounts", cgroup_file="/proc/self/cgroup"):
    """As root: a new v1 memory group under this process's, in which user `uid` may make groups
    (its directory, cgroup.procs and tasks are the user's); None without a writable v1 memory
    hierarchy."""
    v1, _ = mounts(mounts_file)
    if "memory" not in v1:
        return None
    mine = os.path.join(v1["memory"], own_groups(cgroup_file).get("memory", "/").lstrip("/"))
    parent = mine if os.path.isdir(mine) else v1["memory"]
    if not os.access(parent, os.W_OK):
        return None
    group = os.path.join(parent, f"grader-{uuid.uuid4().hex[:12]}")
    os.mkdir(group, 0o755)
    for name in ("", "cgroup.procs", "tasks"):
        os.chown(os.path.join(group, name), uid, -1)
    return group


def job_group(memory):
    """A new memory group of `memory` bytes (swap included) for one grading job, in the
    command's delegated group (JOBS_ENV), or None if there is none; `enter_self` moves a
    process in (its children follow), `remove` kills what is left and removes it."""
    parent = os.environ.get(JOBS_ENV)
    if not parent:
        return None
    group = JobCgroup([os.path.join(parent, f"job-{uuid.uuid4().hex[:12]}")])
    try:
        os.mkdir(group.dirs[0], 0o755)
        _write(f"{group.dirs[0]}/memory.limit_in_bytes", memory)
        if os.path.exists(f"{group.dirs[0]}/memory.memsw.limit_in_bytes"):
            _write(f"{group.dirs[0]}/memory.memsw.limit_in_bytes", memory)
    except BaseException:
        group.remove(timeout=0)
        raise
    return group


class JobCgroup(KernelCgroup):
    """One grading job's memory group."""

    def enter_self(self):
        _write(os.path.join(self.dirs[0], "cgroup.procs"), os.getpid())

    def oom_kills(self) -> int:
        """How many of its processes the kernel's OOM killer ended."""
        try:
            events = dict(line.split() for line in
                          _read(os.path.join(self.dirs[0], "memory.oom_control")).splitlines())
        except (OSError, ValueError):
            return 0
        return int(events.get("oom_kill", 0))


def remove_delegated(group, timeout=5.0):
    """As root, at the end of the command: remove `group` (`delegate`) and what jobs left in it."""
    for name in os.listdir(group):
        path = os.path.join(group, name)
        if os.path.isdir(path):
            KernelCgroup([path]).remove(timeout)
    KernelCgroup([group]).remove(timeout)
