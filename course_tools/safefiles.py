"""Copy student files without following a link a student could have made (stdlib only).

`read_tree` walks by directory file descriptors and never follows a symbolic link: links, hard
links and special files (fifo, socket, device) are refused, and every file's size, the number of
files and their total are checked from lstat before a byte is read, so a sparse file, a link loop
(`a -> .`) or a `/dev/zero` costs nothing. `write_tree` creates every file new (O_EXCL |
O_NOFOLLOW) in directories it creates or finds to be real directories: nothing is written through
an existing path. `adopt` gives the grading user what root put in the course, by the same rules.
"""

import os
import stat
from dataclasses import dataclass

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC  # names a file without opening it
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a fifo", stat.S_IFSOCK: "a socket",
         stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


class Refused(Exception):
    """Files that cannot be copied safely; the message names each problem."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Limits:
    """Caps on one copied tree (None: no cap)."""

    file_size: int | None = None
    total_size: int | None = None
    files: int | None = None
    depth: int = 16


def _open_below(trusted, root):
    """A descriptor of directory `root`, opening each component below `trusted` without
    following links."""
    rel = os.path.relpath(root, trusted)
    fd = os.open(trusted, DIR_FLAGS & ~os.O_NOFOLLOW)
    for part in [] if rel == "." else rel.split(os.sep):
        try:
            sub = os.open(part, DIR_FLAGS, dir_fd=fd)
        except OSError as e:
            os.close(fd)
            raise Refused([f"{rel}: not a directory ({e.strerror})"]) from None
        os.close(fd)
        fd = sub
    return fd


def _walk(fd, rel, limits, problems, depth=0):
    """(relative path, directory fd, name, lstat) of each regular file below `fd`, sorted."""
    with os.scandir(fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        path = os.path.join(rel, entry.name)
        st = entry.stat(follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            if depth >= limits.depth:
                problems.append(f"{path}: nested deeper than {limits.depth} directories")
                continue
            sub = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
            try:
                yield from _walk(sub, path, limits, problems, depth + 1)
            finally:
                os.close(sub)
        elif kind != stat.S_IFREG:
            problems.append(f"{path}: {KINDS.get(kind, 'a special file')}, refused")
        elif st.st_nlink > 1:
            problems.append(f"{path}: a hard link, refused")
        elif limits.file_size is not None and st.st_size > limits.file_size:
            problems.append(f"{path}: {st.st_size} bytes, over the {limits.file_size} per file")
        else:
            yield path, fd, entry.name, st


def _read(fd, name, st, limit):
    """The bytes of regular file `name` in directory `fd`, if it is still the file `st` says."""
    f = os.open(name, READ_FLAGS, dir_fd=fd)
    with os.fdopen(f, "rb") as f:
        now = os.fstat(f.fileno())
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise Refused([f"{name}: replaced while being read"])
        data = f.read(limit + 1 if limit is not None else -1)
    if len(data) != now.st_size or now.st_nlink > 1:
        raise Refused([f"{name}: changed while being read"])
    return data


def read_tree(root, prefix="", limits=Limits(), trusted=None):
    """{prefix/path relative to root: (bytes, mode)} of every file under `root`; raises Refused,
    naming every problem, if anything there is not a plain regular file within `limits`.

    `trusted`: an ancestor of `root` whose path may contain links (default: `root` itself); the
    directories from there down are opened without following links.
    """
    fd = _open_below(trusted or root, root)
    out, problems, total = {}, [], 0
    try:
        for rel, dir_fd, name, st in _walk(fd, "", limits, problems):
            total += st.st_size
            if limits.files is not None and len(out) >= limits.files:
                problems.append(f"more than {limits.files} files")
                break
            if limits.total_size is not None and total > limits.total_size:
                problems.append(f"over {limits.total_size} bytes in all")
                break
            out[os.path.join(prefix, rel)] = (_read(dir_fd, name, st, limits.file_size),
                                              st.st_mode & 0o777)
    finally:
        os.close(fd)
    if problems:
        raise Refused(problems)
    return out


def check_tree(root, limits=Limits(), trusted=None):
    """Raise Refused as read_tree would, reading no file's contents."""
    fd = _open_below(trusted or root, root)
    problems, total, count = [], 0, 0
    try:
        for _, _, _, st in _walk(fd, "", limits, problems):
            total, count = total + st.st_size, count + 1
    finally:
        os.close(fd)
    if limits.files is not None and count > limits.files:
        problems.append(f"more than {limits.files} files")
    if limits.total_size is not None and total > limits.total_size:
        problems.append(f"over {limits.total_size} bytes in all")
    if problems:
        raise Refused(problems)


def read_file(trusted, path, limit=None):
    """The bytes of `path`, a regular file below directory `trusted` reached without following a
    link; Refused if it is anything else or over `limit` bytes (checked from lstat first)."""
    fd = _open_below(trusted, os.path.dirname(path))
    name = os.path.basename(path)
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind != stat.S_IFREG:
            raise Refused([f"{path}: {KINDS.get(kind, 'a directory or special file')}"])
        if st.st_nlink > 1:
            raise Refused([f"{path}: a hard link"])
        if limit is not None and st.st_size > limit:
            raise Refused([f"{path}: {st.st_size} bytes, over {limit}"])
        return _read(fd, name, st, limit)
    finally:
        os.close(fd)


def list_dir(trusted, path):
    """{name: lstat} of the entries of directory `path` below `trusted`, reached without
    following a link."""
    fd = _open_below(trusted, path)
    try:
        with os.scandir(fd) as it:
            return {e.name: e.stat(follow_symlinks=False) for e in it}
    finally:
        os.close(fd)


def write_tree(root, files):
    """Write `files` ({relative path: (bytes, mode)}) under `root` (made if there are any), each
    as a new file."""
    if not files:
        return
    os.makedirs(root, exist_ok=True)
    top = os.open(root, DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        for rel, (data, mode) in files.items():
            *dirs, name = rel.split("/")
            if os.path.isabs(rel) or any(p in ("", ".", "..") for p in [*dirs, name]):
                raise ValueError(f"not a plain relative path: {rel!r}")
            fd = os.dup(top)
            try:
                for d in dirs:
                    try:
                        os.mkdir(d, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                    sub = os.open(d, DIR_FLAGS, dir_fd=fd)  # a link there: ELOOP, not followed
                    os.close(fd)
                    fd = sub
                with os.fdopen(os.open(name, WRITE_FLAGS, 0o600, dir_fd=fd), "wb") as f:
                    f.write(data)
                    os.fchmod(f.fileno(), mode & 0o777)
            finally:
                os.close(fd)
    finally:
        os.close(top)


def adopt(root, uid, gid, depth=32):
    """Give `uid`:`gid` what root (uid 0) put in directory `root` (and `root` itself, if
    root's): each such directory and regular file with a single link, walked by descriptor
    without following links, each checked and changed through its own descriptor. A link, a
    special file, a hard link (maybe of a file elsewhere) and anything deeper than `depth` stay
    as they are. Returns the paths adopted, relative to `root`."""
    def walk(fd, rel, level):
        adopted = []
        if os.fstat(fd).st_uid == 0:
            os.fchown(fd, uid, gid)
            adopted.append(rel or ".")
        with os.scandir(fd) as it:
            entries = [(e.name, e.stat(follow_symlinks=False)) for e in it]
        for name, st in entries:
            path = os.path.join(rel, name)
            directory = stat.S_ISDIR(st.st_mode) and level < depth
            if not (directory or stat.S_ISREG(st.st_mode) and st.st_uid == 0):
                continue
            try:  # (an entry replaced since is left as it is)
                f = os.open(name, DIR_FLAGS if directory else PATH_FLAGS, dir_fd=fd)
            except OSError:
                continue
            try:
                now = os.fstat(f)
                if directory:
                    adopted += walk(f, path, level + 1)
                elif stat.S_ISREG(now.st_mode) and now.st_uid == 0 and now.st_nlink == 1:
                    os.chown(f"/proc/self/fd/{f}", uid, gid)  # this very file (f is O_PATH)
                    adopted.append(path)
            finally:
                os.close(f)
        return adopted

    top = os.open(root, DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        return walk(top, "", 0)
    finally:
        os.close(top)
