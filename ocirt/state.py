"""The state root (--root): one directory per container holding state.json
(written atomically), intent.json (what `create` makes before the init is
known) and exec.fifo, whose opening releases a created container's init;
an flock on the directory serialises commands on one container. On the
hot path of every command: posix, not os (see pathops)."""
import posix
import time

from ocirt import jsonio
from ocirt.errors import Exists, NotFound, OcirtError
from ocirt.pathops import exists, isdir, join, read_bytes, read_text

INTENT = "intent.json"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    """runc's rule: [\\w+-.]+, and not "." or ".."."""
    if not cid:
        raise OcirtError("container id cannot be empty")
    if cid in (".", "..") or not set(cid) <= _ID_CHARS or len(cid) > 1024:
        raise OcirtError(f'invalid container id "{cid}": use letters, digits, "_", "+", "-" and "."')


def now_rfc3339():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%09dZ" % (ns % 10**9)


def proc_start_time(pid):
    """Start time of pid (clock ticks since boot) and whether it is a zombie;
    (None, None) if gone. Guards against pid reuse."""
    try:
        data = read_bytes(f"/proc/{pid}/stat")
    except OSError:
        return None, None
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[19]), fields[0] == b"Z"


class Container:
    """One directory under the root: ROOT/ID/{state.json,exec.fifo}."""

    def __init__(self, root, cid):
        self.root = root
        self.id = cid
        self.dir = join(root, cid)
        self.fifo = f"{self.dir}/exec.fifo"
        self.state = None
        self._lock_fd = None

    def create_dir(self):
        if not isdir(self.root):
            import os
            os.makedirs(self.root, mode=0o711, exist_ok=True)
        for _ in range(3):
            try:
                posix.mkdir(self.dir, 0o711)
            except FileExistsError:
                raise Exists(f'container with id "{self.id}" already exists') from None
            try:
                self._lock_fd = self._locked()
                return
            except FileNotFoundError:
                continue  # a `delete -f` took the empty dir before we locked it: the id is free again
        raise OcirtError(f'container "{self.id}": its directory was removed while it was being created')

    def lock(self):
        try:
            self._lock_fd = self._locked()
        except FileNotFoundError:
            raise NotFound(f'container "{self.id}" does not exist') from None

    def _locked(self):
        """An flock on the directory, once it is the live one: a lock won
        after a `delete` removed it is on a dead inode, and the name may by
        then be another container's."""
        import fcntl  # here: `state` takes no lock
        while True:
            fd = posix.open(self.dir, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if posix.fstat(fd).st_nlink:
                return fd
            posix.close(fd)

    def unlock(self):
        if self._lock_fd is not None:
            posix.close(self._lock_fd)
            self._lock_fd = None

    def load(self, lock=True):
        if lock:
            self.lock()
        try:
            self.state = jsonio.load_file(f"{self.dir}/state.json")
        except FileNotFoundError:
            raise NotFound(f'container "{self.id}" does not exist') from None
        except ValueError as e:
            raise OcirtError(f'container "{self.id}": corrupt state.json: {e}') from None
        return self

    def save(self):
        tmp = f"{self.dir}/.state.json.tmp"
        fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o600)
        with open(fd, "w") as f:
            f.write(jsonio.dumps(self.state))
        posix.replace(tmp, f"{self.dir}/state.json")

    def record_intent(self, record):
        """What create is about to make, written before it makes any of it:
        delete -f undoes it if create dies before state.json exists. One
        write and no rename: a record a kill cut short means nothing was made."""
        flags = posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC
        fd = posix.open(f"{self.dir}/{INTENT}", flags, 0o600)
        try:
            posix.write(fd, jsonio.dumps(record).encode())
        finally:
            posix.close(fd)

    def load_intent(self):
        """The intent record, or None (none, or cut short: nothing made)."""
        try:
            return jsonio.load_file(f"{self.dir}/{INTENT}")
        except (FileNotFoundError, ValueError):
            return None

    def remove(self):
        # state.json first: a delete killed midway is found again and redone
        for name in ("state.json", ".state.json.tmp", INTENT, "exec.fifo"):
            try:
                posix.unlink(f"{self.dir}/{name}")
            except FileNotFoundError:
                pass
        try:
            posix.rmdir(self.dir)
        except FileNotFoundError:
            pass

    def init_alive(self):
        st = self.state
        start, zombie = proc_start_time(st["pid"])
        return start is not None and start == st.get("pidStart") and not zombie

    def release(self):
        """Open exec.fifo for reading: the blocked init writes "0", and the
        fifo ends when its program runs (execve closes it) or after the
        error that stopped it."""
        fd = posix.open(self.fifo, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
        try:
            data = self._read_fifo(fd)
        finally:
            posix.close(fd)
            posix.unlink(self.fifo)
        if data[:1] != b"0":
            raise OcirtError("container init died before it could be started")
        if data[1:2] == b"E":  # a startContainer hook or the execve failed: init says why, and exits
            where, _, msg = data[2:].decode(errors="replace").partition("\t")
            raise OcirtError(msg, where or None, "config.json")
        why = _died_before_exec(self.state)
        if why:
            raise OcirtError(why, "process", "config.json")

    def _read_fifo(self, fd):
        """All the init writes, up to the end of the fifo (or its death
        before it opened the fifo)."""
        import select  # here: only `start` waits on the fifo
        p = select.poll()
        p.register(fd, select.POLLIN)
        data = b""
        while True:
            if p.poll(100):
                chunk = posix.read(fd, 4096)
                if not chunk and (data or not self.init_alive()):
                    return data
                data += chunk
            elif not data and not self.init_alive():
                return data

    def status(self):
        """created / running / paused / stopped, as runc reports them."""
        if not self.state.get("pid") or not self.init_alive():
            return "stopped"
        if exists(self.fifo):
            return "created"
        cg = self.state.get("cgroup")
        if cg and not cg.get("skipped"):
            if frozen_in(cg["version"], cg["dirs"]):
                return "paused"
        return "running"

    def oci_state(self, status=None):
        """The runtime-spec state, plus runc's extra fields; status: the one
        the caller knows it has (create, hooks), else looked up."""
        st = self.state
        status = status or self.status()
        out = {
            "ociVersion": st["ociVersion"], "id": self.id,
            "pid": st["pid"] if status != "stopped" else 0,
            "status": status, "bundle": st["bundle"], "rootfs": st["rootfs"],
            "created": st["created"], "owner": st.get("owner", ""),
        }
        annotations = st["config"].get("annotations")  # stored once, in the config
        if annotations:
            out["annotations"] = annotations
        return out


def frozen_in(version, dirs):
    """Whether the cgroup in dirs (a driver's, or its to_state()'s) is
    frozen, read from its file without loading a driver: state and kill ask
    it of a running container, and a driver costs them ~0.3 ms (the cgroup
    drivers use it too)."""
    if version == 2:
        path, line = dirs.get("", "") + "/cgroup.events", "frozen 1"
    elif "freezer" in dirs:
        path, line = dirs["freezer"] + "/freezer.state", "FROZEN"
    else:
        return False
    try:
        return line in read_text(path).splitlines()
    except OSError:
        return False


def _died_before_exec(st):
    """Why the init died before its execve without a word (say, seccomp
    killed it at execve), while it is a zombie still named ocirt-init
    (execve renames a process)."""
    try:
        data = read_bytes(f"/proc/{st['pid']}/stat")
    except OSError:
        return None
    comm = data[data.index(b"(") + 1:data.rindex(b")")]
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] != b"Z" or comm != b"ocirt-init" or int(fields[19]) != st.get("pidStart"):
        return None
    code = int(fields[49])  # exit_code, as waitpid reports it
    if code & 0x7F:
        import signal
        return f"killed by signal {code & 0x7F} ({signal.Signals(code & 0x7F).name}) before its program ran"
    return f"exited with status {code >> 8} before its program ran"


def list_ids(root):
    try:
        names = sorted(posix.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if exists(f"{root}/{n}/state.json")]
