"""cgroupfs file access shared by both drivers. Every failure the user can
cause becomes an OcirtError naming the config.json field. posix, not os:
delete and kill load the drivers (see pathops)."""
import posix
import time

from ..errors import OcirtError
from ..pathops import isdir, parent, read_text

# The errno values met here (Linux's, fixed by its ABI; tests/unit checks them
# against errno): the errno module costs exec and create ~0.3 M instructions.
EPERM, ENOENT, EACCES, EBUSY, ENOTDIR, EINVAL, EROFS, ENOTEMPTY = 1, 2, 13, 16, 20, 22, 30, 39


class Write:
    """One value for one cgroup file. `ctrl` picks the directory (a v1
    controller, "" for the cgroup2 directory); `check` asks to read the value
    back, for files where the kernel silently clamps or ignores what it is given.
    (A plain class: typing.NamedTuple would cost ~7 ms of start-up.)"""
    __slots__ = ("ctrl", "file", "value", "where", "check")

    def __init__(self, ctrl, file, value, where, check=False):
        self.ctrl, self.file, self.value, self.where, self.check = ctrl, file, value, where, check

    def __eq__(self, other):
        return isinstance(other, Write) and self._key() == other._key()

    def __repr__(self):
        return "Write(%r, %r, %r, %r, %r)" % self._key()

    def _key(self):
        return (self.ctrl, self.file, self.value, self.where, self.check)


def no_writes(resources):
    """linux.resources that make no file writes: none, or device rules only
    (applied apart): the drivers then skip their plan modules (v1plan and
    spec, ~0.6 M instructions to load; v2plan and convert besides on v2)."""
    return isinstance(resources, dict) and all(v is None for k, v in resources.items() if k != "devices")


DENIED = (EACCES, EPERM, EROFS)  # the caller may not


class FsError(OcirtError):
    """cgroupfs refused an operation; errno says why (EACCES, EPERM, EROFS:
    the caller may not, which a rootless create gets past)."""

    def __init__(self, msg, where, errno_):
        super().__init__(msg, where)
        self.errno = errno_


class WriteError(FsError):
    """A cgroup file refused a value (EINVAL: not valid with the values of
    the files it depends on)."""


# Files whose valid values depend on each other's current ones: the kernel
# checks a cfs period or quota against the parent's quota/period ratio, burst
# <= quota, rt runtime <= rt period (and its parent's share).
_TOGETHER = ({"cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us"},
             {"cpu.rt_period_us", "cpu.rt_runtime_us"}, {"cpu.max", "cpu.max.burst"})


def write_all(writes, write):
    """write(w) for each of writes in their order, except that a write
    refused with EINVAL is tried once more after the later writes of its
    group in _TOGETHER (as runc retries cfs_period_us after cfs_quota_us):
    the order either way fails for some pairs of old and new values."""
    todo, deferred = list(writes), []
    while todo:
        w = todo.pop(0)
        try:
            write(w)
        except WriteError as e:
            group = next((g for g in _TOGETHER if w.file in g), ())
            later = [i for i, o in enumerate(todo) if o.ctrl == w.ctrl and o.file in group]
            if e.errno != EINVAL or not later or w in deferred:
                raise
            deferred.append(w)
            todo.insert(later[-1] + 1, w)


def read(path):
    return read_text(path).strip()


def read_int(path, default=0):
    """An integer file; "max" reads as 2**64-1 (runc reports it so)."""
    try:
        s = read(path)
    except OSError:
        return default
    return (1 << 64) - 1 if s == "max" else int(s)


def read_keyed(path):
    """A flat-keyed file ("key value" lines) -> {key: int}."""
    out = {}
    try:
        text = read(path)
    except OSError:
        return out
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = (1 << 64) - 1 if v == "max" else int(v)
        except ValueError:
            continue
    return out


def write(path, value, where):
    try:
        fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
    except FileNotFoundError:
        raise OcirtError(f"not supported by this host: there is no {path}", where) from None
    except OSError as e:
        raise FsError(f"cannot open {path}: {e.strerror}", where, e.errno) from None
    try:
        posix.write(fd, value.encode())
    except OSError as e:
        raise WriteError(f"writing {value!r} to {path}: {e.strerror}", where, e.errno) from None
    finally:
        posix.close(fd)


def tree(path):
    """path and the directories below it, parents first (os.walk's order;
    unreadable ones are skipped as it skips them)."""
    out, todo = [], [path]
    while todo:
        d = todo.pop()
        out.append(d)
        try:
            with posix.scandir(d) as it:
                todo.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
    return out


def missing(path):
    """The directories mkdir -p path would make, outermost first."""
    todo = []
    while not isdir(path):
        todo.append(path)
        path = parent(path)
    return todo[::-1]


def make_dirs(path, tries=3):
    """mkdir -p; returns the directories it created, outermost first. A
    parent another container's delete removes meanwhile is made again."""
    try:
        return [path] if _mkdir(path) else []   # the usual: its parent is there (no walk up)
    except FileNotFoundError:
        pass
    made = []
    try:
        for d in missing(path):
            try:
                if _mkdir(d):
                    made.append(d)
            except FileNotFoundError:
                if tries == 1:
                    raise OcirtError(f"cannot make cgroup {d}: its parent keeps being removed",
                                     "linux.cgroupsPath") from None
                return made + make_dirs(path, tries - 1)
    except BaseException:
        for d in reversed(made):  # the caller never learns of these: undo them here
            remove_empty(d)
        raise
    return made


def _mkdir(d):
    """True if it made d, False if d was there; FileNotFoundError without
    its parent; any other failure an FsError naming d."""
    try:
        posix.mkdir(d, 0o755)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        raise
    except OSError as e:
        raise FsError(f"cannot make cgroup {d}: {e.strerror}", "linux.cgroupsPath", e.errno) from None


def remove_empty(path):
    """rmdir a cgroup unless something (a child, a task) is in it."""
    try:
        posix.rmdir(path)
    except OSError as e:
        if e.errno not in (ENOENT, ENOTEMPTY, EBUSY):
            raise OcirtError(f"cannot remove cgroup {path}: {e.strerror}") from None


def remove_tree(path, tries=100, on_busy=None):
    """rmdir a cgroup and its children, deepest first. A cgroup whose last
    task is still exiting answers EBUSY for a moment: retry briefly, after
    on_busy(dir) if given (it may end a task that joined meanwhile)."""
    try:
        posix.rmdir(path)   # the usual cgroup: no child cgroups, no task left
        return
    except OSError as e:
        if e.errno in (ENOENT, ENOTDIR):
            return
        if e.errno not in (EBUSY, ENOTEMPTY):   # children (or a task): deepest first
            raise OcirtError(f"cannot remove cgroup {path}: {e.strerror}") from None
    dirs = tree(path)[::-1]
    for d in dirs:
        for i in range(tries):
            try:
                posix.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != EBUSY or i == tries - 1:
                    raise OcirtError(f"cannot remove cgroup {d}: {e.strerror}") from None
                if on_busy:
                    on_busy(d)
                time.sleep(0.01)


def procs(path):
    """Every pid in the cgroup at path and its descendants."""
    pids = []
    for root in tree(path):
        try:
            pids.extend(int(p) for p in read(root + "/cgroup.procs").split())
        except FileNotFoundError:
            continue
    return pids


def wait_for(predicate, timeout, step=0.005):
    """Poll until predicate() is true; False on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
        step = min(step * 2, 0.05)
    return True
