"""Start ocirt-init on a plan and talk to it over the sync socket.

The helper is exec'd from a sealed memfd copy (CVE-2019-5736 class: the
process that enters the container must not have a host file as
/proc/self/exe), and the plan travels in a second memfd."""
import _socket
import fcntl
import os

from ocirt.errors import OcirtError
from ocirt.plan import encode

INIT = os.path.join(os.path.dirname(__file__), "_native", "ocirt-init")
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def _sealed_helper():
    fd = os.memfd_create("ocirt-init", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        src = os.open(INIT, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OcirtError(f"{INIT} is missing: build ocirt (make build)") from None
    size = os.fstat(src).st_size
    off = 0
    while off < size:
        off += os.sendfile(fd, src, off, size - off)
    os.close(src)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    return fd


def _plan_fd(steps):
    fd = os.memfd_create("ocirt-plan", os.MFD_CLOEXEC)
    data = encode(steps)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return fd


def _above(fd, low):
    """Move fd to a number >= low (the fds below are passed on as they are)."""
    if fd >= low:
        return fd
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return new


def _check_preserved(n):
    """--preserve-fds passes on the caller's fds 3 .. 3+n-1. Those came
    through our execve, so they are inheritable; every fd ocirt opens is not
    (PEP 446), and one in a slot the caller left empty (the state directory
    we lock, a socket) must never reach the container."""
    for fd in range(3, 3 + n):
        try:
            theirs = os.get_inheritable(fd)
        except OSError:
            theirs = False
        if not theirs:
            raise OcirtError(f"--preserve-fds {n}: fd {fd} was not passed to ocirt")


class Session:
    """A running helper: its pid and our end of the sync socket."""

    def __init__(self, steps, keep_fds=(), preserve_fds=0, env=None, log=None):
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
            os.set_inheritable(fd, True)
        try:
            self.pid = os.posix_spawn(f"/proc/self/fd/{helper}", ["ocirt-init", str(plan), str(cfd)],
                                      env if env is not None else {})
        finally:
            for fd in (helper, plan, cfd, *debug):
                os.close(fd)
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
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def close(self):
        self.sock.close()

