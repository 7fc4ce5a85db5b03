"""The one launch path of create, run and exec: the process's terminal, the
helper started on a plan, the conversation with it up to "ready", the pid
file, and in the foreground the wait for the process's exit. create and
exec differ only in their plan and in what they do on the helper's other
messages (the cgroup's hold, the hooks, the init's pid).

The helper (ocirt-init) is exec'd from a sealed memfd copy (CVE-2019-5736
class: the process that enters the container must not have a host file as
/proc/self/exe), and the plan travels in a second memfd."""
import _socket
import fcntl
import posix

from ocirt.errors import OcirtError
from ocirt.plan import encode

INIT = __file__.rpartition("/")[0] + "/_native/ocirt-init"
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def _sealed_helper():
    fd = posix.memfd_create("ocirt-init", posix.MFD_CLOEXEC | posix.MFD_ALLOW_SEALING)
    try:
        src = posix.open(INIT, posix.O_RDONLY | posix.O_CLOEXEC)
    except FileNotFoundError:
        raise OcirtError(f"{INIT} is missing: build ocirt (make build)") from None
    size = posix.fstat(src).st_size
    off = 0
    while off < size:
        off += posix.sendfile(fd, src, off, size - off)
    posix.close(src)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    return fd


def _plan_fd(steps):
    fd = posix.memfd_create("ocirt-plan", posix.MFD_CLOEXEC)
    data = encode(steps)
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view):]
    return fd


def _above(fd, low):
    """Move fd to a number >= low (the fds below are passed on as they are)."""
    if fd >= low:
        return fd
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    posix.close(fd)
    return new


def _check_preserved(n):
    """--preserve-fds passes on the caller's fds 3 .. 3+n-1. Those came
    through our execve, so they are inheritable; every fd ocirt opens is not
    (PEP 446), and one in a slot the caller left empty (the state directory
    we lock, a socket) must never reach the container."""
    for fd in range(3, 3 + n):
        try:
            theirs = posix.get_inheritable(fd)
        except OSError:
            theirs = False
        if not theirs:
            raise OcirtError(f"--preserve-fds {n}: fd {fd} was not passed to ocirt")


class Session:
    """A running helper: its pid and our end of the sync socket."""

    def __init__(self, steps, keep_fds=(), preserve_fds=0, env=None, log=None, stdio=None):
        """stdio: the fds the helper (so the process) gets as 0, 1 and 2, else ours."""
        _check_preserved(preserve_fds)
        low = 3 + preserve_fds
        parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        self.sock = parent
        helper = _above(_sealed_helper(), low)
        debug = []
        if log is not None and log.debug_on:  # the helper logs its stages too
            debug = [_above(log.open(), low)]
            steps = [("debug", "", debug[0], log.fmt == "json"), *steps]
        plan = _above(_plan_fd(steps), low)
        cfd = _above(child.detach(), low)
        passed = [plan, cfd, *keep_fds, *debug] + list(range(3, low))
        for fd in passed:
            posix.set_inheritable(fd, True)
        try:
            dup2 = [(posix.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(stdio or ())]
            self.pid = posix.posix_spawn(f"/proc/self/fd/{helper}", ["ocirt-init", str(plan), str(cfd)],
                                         env if env is not None else {}, file_actions=dup2 or None)
        finally:
            for fd in (helper, plan, cfd, *debug):
                posix.close(fd)
        self.init_pid = None

    def recv(self):
        """Next message: ("pid", n) / ("hooks",) / ("ready",) / ("exec",) / ("exit", n) /
        ("error", where, msg) / ("eof",)."""
        data = self.sock.recv(1 << 20)
        if not data:
            return ("eof",)
        text = data.decode("utf-8", "replace")
        if text[0] == "E":
            where, _, msg = text[1:].partition("\t")
            return ("error", where, msg)
        word, _, rest = text.partition(" ")
        return (word, int(rest)) if rest else (word,)

    def wait_exec(self):
        """After "ready": wait until the program runs; raise why it could not."""
        msg = self.recv()
        if msg[0] == "exec":
            return
        self.reap()
        if msg[0] == "error":
            raise OcirtError(msg[2], msg[1] or None)
        raise OcirtError("the process ended before its program ran")

    def send(self, text):
        self.sock.send(text.encode())

    def send_long(self, head, body):
        """"HEAD LEN", then body in messages of 64 KiB: one datagram is
        bounded by the socket's buffer (about 208 KiB)."""
        data = body.encode()
        self.send(f"{head} {len(data)}")
        for i in range(0, len(data), 1 << 16):
            self.sock.send(data[i:i + (1 << 16)])

    def reap(self):
        """Collect the helper's exit status."""
        try:
            posix.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def close(self):
        self.sock.close()


def check_terminal(terminal, detach, console_socket, where=None):
    """runc's rule for the command line: a terminal that the runtime will
    not proxy (it detaches) needs a console socket, and a console socket is
    for a detached terminal only. where: the terminal's field, if in config.json."""
    if detach and terminal and not console_socket:
        raise OcirtError("cannot allocate tty if ocirt will detach without setting console socket", where)
    if console_socket and not (detach and terminal):
        raise OcirtError("cannot use console socket if ocirt will not detach or allocate tty")


class Launch:
    """One helper run for a process (create's init, or exec's process).

    proc: the process's spec (its terminal); foreground: run/exec waiting for
    the exit (a terminal is then proxied to ours; signals are forwarded);
    stdio: the fds 0, 1, 2 the process gets, else ours."""

    def __init__(self, log, proc, console_socket=None, foreground=False, stdio=None):
        self.log, self.proc, self.console_socket = log, proc, console_socket
        self.foreground, self.stdio = foreground, stdio
        self.console_fd = None    # the terminal's fd for the helper, until it has it
        self.console_ours = None  # our end of a foreground terminal
        self.master = None
        self.session = None
        self.pid = None
        self.forwarder = None
        if foreground:  # from the start, as runc: a signal that comes meanwhile waits for the pid
            from ocirt.foreground import Forwarder
            self.forwarder = Forwarder()

    def console(self):
        """The fd the helper makes the terminal on (None without one);
        check_terminal has vetted the flags."""
        if not self.proc.get("terminal"):
            return None
        if self.console_socket:
            from ocirt.console import connect
            self.console_fd = connect(self.console_socket)
        else:
            from ocirt.console import pair
            self.console_ours, self.console_fd = pair(self.proc)
        return self.console_fd

    def spawn(self, steps, preserve_fds):
        keep = [self.console_fd] if self.console_fd is not None else []
        try:
            self.session = Session(steps, keep_fds=keep, preserve_fds=preserve_fds, log=self.log,
                                   stdio=self.stdio)
        finally:
            self._close_console()

    def _close_console(self):
        if self.console_fd is not None:
            posix.close(self.console_fd)
            self.console_fd = None

    def converse(self, died, on=None):
        """Follow the helper up to "ready": -> the process's pid. `on` maps
        the helper's other messages to handlers (a "pid" handler gets the
        pid); died() is the error for a helper that ends without a word."""
        on = on or {}
        while True:
            msg = self.session.recv()
            if msg[0] == "ready":
                return self.pid
            if msg[0] == "error":
                raise OcirtError(msg[2], msg[1] or None)
            if msg[0] == "pid":
                self.pid = msg[1]
                if "pid" in on:
                    on["pid"](msg[1])
            elif msg[0] in on:
                on[msg[0]]()
            else:
                raise died()

    def ready(self, pid_file):
        """The process is ready: take the terminal's master, write the pid
        file, and let a detached helper go."""
        if self.console_ours is not None:
            from ocirt.console import recv_master
            self.master = recv_master(self.console_ours)
        if pid_file:
            write_pid_file(pid_file, self.pid)
        if not self.foreground:
            self.session.reap()

    def wait(self):
        """In the foreground, once the program runs: its exit status."""
        from ocirt.foreground import wait_for
        return wait_for(self.session, self.pid, self.master, self.forwarder)

    def close(self):
        """Give the caller its signal handlers back (and the terminal's fd,
        if a failure came before the helper had it)."""
        self._close_console()
        if self.forwarder is not None:
            self.forwarder.restore()


def compiled_seccomp(root, linux):
    """linux.seccomp as BPF, cached under the state root (None if absent)."""
    sec = linux.get("seccomp")
    if not sec:
        return None
    from ocirt.seccomp import compile_seccomp
    return compile_seccomp(sec, cache_dir=f"{root}/.seccomp-cache")


def write_pid_file(path, pid):
    """Digits only, no newline (containerd's shim parses it strictly)."""
    tmp = f"{path}.{posix.getpid()}.tmp"
    fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o644)
    posix.write(fd, str(pid).encode())
    posix.close(fd)
    posix.replace(tmp, path)
