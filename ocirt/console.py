"""Terminals: the --console-socket protocol (the pty master travels with
SCM_RIGHTS) and, for `run`/`exec` in the foreground, a proxy between the
caller's terminal (set raw, resized on SIGWINCH) and the pty."""
import _socket
import array
import os
import select

from ocirt.errors import OcirtError


def connect(path):
    """Connect to a --console-socket; returns the connected fd."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise OcirtError(f"--console-socket {path}: {e.strerror.lower()}") from None
    return s.detach()


def send_master(sock_fd, master):
    """Hand a pty master to a --console-socket peer, its slave's name as
    the data, as the helper does at create (restore: the pty CRIU made)."""
    import fcntl
    TIOCGPTN = 0x80045430
    n = int.from_bytes(fcntl.ioctl(master, TIOCGPTN, bytes(4)), "little")
    s = _socket.socket(fileno=sock_fd)
    try:
        s.sendmsg([b"/dev/pts/%d" % n], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", [master]))])
    except OSError as e:
        raise OcirtError(f"--console-socket: sending the terminal: {e.strerror.lower()}") from None
    finally:
        s.detach()


def pair(proc):
    """A connected pair for a foreground terminal: (ours, the container's).
    The pty is made with the caller's terminal size (unless the process
    sets consoleSize), so the program never sees it at 0x0."""
    if not proc.get("consoleSize") and os.isatty(0):
        import termios
        rows, cols = termios.tcgetwinsize(0)
        proc["consoleSize"] = {"height": rows, "width": cols}
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    return a, b.detach()


def recv_master(sock):
    fds = array.array("i")
    _, anc, _, _ = sock.recvmsg(1024, _socket.CMSG_LEN(fds.itemsize))
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
    if not fds:
        raise OcirtError("no terminal received from the container")
    return fds[0]


class Proxy:
    """Copy stdin -> master and master -> stdout until the process ends."""

    def __init__(self, master):
        self.master = master
        self.saved = None
        if os.isatty(0):
            import termios
            import tty
            self.saved = termios.tcgetattr(0)
            tty.setraw(0, termios.TCSANOW)   # not TCSAFLUSH: keep what was typed ahead
            self.resize()

    def resize(self, *_):
        if os.isatty(0):
            import termios
            termios.tcsetwinsize(self.master, termios.tcgetwinsize(0))

    def run(self, done_fd, on_done):
        """Pump until done_fd is readable and on_done() returns an exit code."""
        p = select.poll()
        p.register(self.master, select.POLLIN)
        p.register(0, select.POLLIN)
        p.register(done_fd, select.POLLIN)
        code = None
        stdin_open = True
        while True:
            try:
                events = p.poll(100 if code is not None else -1)
            except InterruptedError:
                continue
            if not events and code is not None:
                return code
            for fd, ev in events:
                if fd == self.master:
                    if not self._copy(self.master, 1):
                        p.unregister(self.master)
                        if code is not None:
                            return code
                elif fd == 0 and stdin_open:
                    if not self._copy(0, self.master):
                        p.unregister(0)
                        stdin_open = False
                elif fd == done_fd:
                    p.unregister(done_fd)
                    code = on_done()

    @staticmethod
    def _copy(src, dst):
        try:
            data = os.read(src, 65536)
        except OSError:
            return False
        if not data:
            return False
        while data:
            data = data[os.write(dst, data):]
        return True

    def restore(self):
        if self.saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
