"""`run` and `exec` in the foreground: forward signals to the process, proxy
its terminal, and return its exit status (reported by the helper, which is
its parent and reaps it)."""
import _signal
import posix

from ocirt import CyclicGC
from ocirt.errors import OcirtError

# Signals not forwarded: the ones about us (children, terminal size) and
# those that cannot be caught.
_KEEP = {_signal.SIGCHLD, _signal.SIGWINCH, _signal.SIGKILL, _signal.SIGSTOP, _signal.SIGURG}


class Forwarder:
    """Signals to the runtime go to the process. Installed before the process
    exists (as runc catches them from its start): one that comes meanwhile is
    kept and sent once the process runs, instead of killing the runtime."""

    def __init__(self):
        self.pid, self.pending, self.saved = None, [], {}
        for sig in range(1, _signal.NSIG):
            if sig in _KEEP or sig in (32, 33):  # 32, 33: glibc's own real-time signals
                continue
            try:  # ValueError: not the main thread (an embedder's), where none can be caught
                self.saved[sig] = _signal.signal(sig, self._on)
            except (OSError, ValueError):
                pass

    def restore(self):
        """The handlers as they were (for ocirt.api's callers)."""
        for sig, handler in self.saved.items():
            _signal.signal(sig, handler if handler is not None else _signal.SIG_DFL)
        self.saved = {}

    def _on(self, sig, _frame):
        if self.pid is None:
            self.pending.append(sig)
            return
        try:
            posix.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def start(self, pid):
        self.pid = pid
        for sig in self.pending:
            self._on(sig, None)
        self.pending = []


def wait_for(session, pid, master=None, forwarder=None):
    try:
        return _wait(pid, master, forwarder, session.sock.fileno(), lambda: _exit_code(session))
    finally:
        session.reap()


def wait_child(pid, master=None, forwarder=None):
    """As wait_for, for a process that is our own child (a restored init):
    its status from waitpid, 128 + N if signal N killed it."""
    def status():
        st = posix.waitpid(pid, 0)[1]
        return 128 + (st & 0x7F) if st & 0x7F else st >> 8
    pidfd = posix.pidfd_open(pid)
    try:
        return _wait(pid, master, forwarder, pidfd, status)
    finally:
        posix.close(pidfd)


def _wait(pid, master, forwarder, done_fd, on_done):
    """Forward signals to pid and proxy the terminal (if any) until done_fd
    is readable: -> on_done()."""
    (forwarder or Forwarder()).start(pid)
    with CyclicGC():
        if master is None:
            return on_done()
        from ocirt.console import Proxy
        proxy = Proxy(master)
        _signal.signal(_signal.SIGWINCH, proxy.resize)
        try:
            return proxy.run(done_fd, on_done)
        finally:
            proxy.restore()


def _exit_code(session):
    while True:
        msg = session.recv()
        if msg[0] == "exit":
            return msg[1]
        if msg[0] == "error":
            raise OcirtError(msg[2], msg[1] or None)
        if msg[0] == "eof":
            raise OcirtError("lost track of the container process")
