"""The few os.path functions the hot path needs, on posix: `import os`
costs ~0.9 ms here (its _collections_abc), as much as all the work
`ocirt state` does, and state, start, kill, delete and exec do without it."""
import posix

# The kernel's file types (stat.h): the values are Linux's ABI; importing
# _stat for them costs an import (~30 us here)
_S_IFMT, _S_IFDIR, _S_IFREG = 0o170000, 0o040000, 0o100000


def is_dir_mode(mode):
    return mode & _S_IFMT == _S_IFDIR


def is_reg_mode(mode):
    return mode & _S_IFMT == _S_IFREG


def exists(path):
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def isdir(path):
    try:
        return is_dir_mode(posix.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def parent(path):
    """os.path.dirname of an absolute path."""
    return path.rstrip("/").rpartition("/")[0] or "/"


def join(base, path):
    """os.path.join of two."""
    if path.startswith("/") or not base:
        return path
    return base + path if base.endswith("/") else f"{base}/{path}"


def normpath(path):
    """os.path.normpath, but a leading "//" is "/" (as Go's filepath.Clean,
    which runc cleans cgroup paths with)."""
    absolute = path.startswith("/")
    parts = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif p != ".." or not absolute:
            parts.append(p)
    return ("/" if absolute else "") + "/".join(parts) or "."


def read_text(path):
    """open(path).read() of a small text file (/proc, /sys, cgroupfs) with
    no io objects: a third of its instructions."""
    return read_bytes(path).decode()


def read_bytes(path):
    """open(path, "rb").read() of a small file, as read_text."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        chunks = []
        while chunk := posix.read(fd, 65536):
            chunks.append(chunk)
    except OSError as e:  # EISDIR: named, as open() names it
        e.filename = path
        raise
    finally:
        posix.close(fd)
    return b"".join(chunks)


def abspath(path):
    """os.path.abspath, with normpath's leading "//"."""
    return normpath(join(posix.getcwd(), path))


def real_dir(path):
    """The directory path is, its symlinks resolved (os.path.realpath), as
    the kernel resolves them; None if it is not a directory."""
    try:
        fd = posix.open(path, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        return posix.readlink(f"/proc/self/fd/{fd}")
    finally:
        posix.close(fd)
