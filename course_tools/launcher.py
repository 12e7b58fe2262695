"""Runs inside the sandbox right before the kernel: forbid starting programs, then run it.

    python launcher.py -m MODULE [ARG ...]     (as `python -m MODULE ARG ...`)
    python launcher.py -c CODE

It installs a seccomp filter, inherited by every thread and child, that fails `execve` and
`execveat` with EPERM (so no other interpreter or program can start: `subprocess`, `os.system`,
`!cmd`), refuses x32 system calls and kills a process that uses any other architecture's. Then it
runs the kernel in this same process. Standard library only: it is bound read-only into the
sandbox as a single file.
"""

import ctypes
import errno
import os
import platform
import runpy
import struct
import sys

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
EXECVE, EXECVEAT = 59, 322  # x86_64 numbers
RET_KILL_PROCESS, RET_ERRNO, RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
LD_ABS_W, JEQ_K, JGE_K, RET_K = 0x20, 0x15, 0x35, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|..., BPF_RET


def _insn(code, k, jt=0, jf=0):
    return struct.pack("HBBI", code, jt, jf, k)


def program():
    """The filter as raw classic BPF over `struct seccomp_data` (nr at offset 0, arch at 4)."""
    eperm = RET_ERRNO | errno.EPERM
    return b"".join([
        _insn(LD_ABS_W, 4),
        _insn(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        _insn(RET_K, RET_KILL_PROCESS),
        _insn(LD_ABS_W, 0),
        _insn(JGE_K, X32_SYSCALL_BIT, 0, 1),
        _insn(RET_K, eperm),
        _insn(JEQ_K, EXECVE, 2, 0),
        _insn(JEQ_K, EXECVEAT, 1, 0),
        _insn(RET_K, RET_ALLOW),
        _insn(RET_K, eperm),
    ])


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def forbid_exec():
    """Install the filter in this (still single-threaded) process; raise OSError if it fails."""
    if platform.machine() != "x86_64":
        raise OSError(errno.ENOSYS, f"seccomp filter written for x86_64, not {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    code = program()
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    for args in [(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
                 (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0)]:
        if libc.prctl(*[ctypes.c_ulong(a) for a in args]) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"prctl{args[:2]}: {os.strerror(e)}")


def main(argv):
    if len(argv) < 2 or argv[0] not in ("-m", "-c"):
        sys.exit("usage: launcher.py -m MODULE [ARG ...] | -c CODE")
    forbid_exec()
    sys.path[0] = os.getcwd()  # as `python -m` and `-c` have it, not this file's directory
    if argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
