"""Signal names as runc accepts them (KILL, SIGKILL, 9, RTMIN+3), and
killing a process for good."""
import posix

from ocirt.errors import OcirtError

SIGKILL = 9

NAMES = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "POLL": 29, "PWR": 30, "SYS": 31, "RTMIN": 34, "RTMAX": 64,
}


def parse_signal(text):
    s = text.upper()
    if s.isdigit():
        n = int(s)
        if 0 <= n <= 64:  # 0 probes, as `kill -0`; runc accepts it
            return n
    else:
        if s.startswith("SIG"):
            s = s[3:]
        base, sign, off = s.replace("-", "+-").partition("+")
        if base in ("RTMIN", "RTMAX") and sign and off.lstrip("-").isdigit():
            n = NAMES[base] + int(off)
            if 34 <= n <= 64:
                return n
        elif s in NAMES:
            return NAMES[s]
    raise OcirtError(f"unknown signal {text!r}")


def kill_and_wait(pid, timeout=10.0):
    """SIGKILL pid and wait (up to timeout) until it is gone."""
    try:
        fd = posix.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        posix.kill(pid, SIGKILL)
        import select
        p = select.poll()
        p.register(fd, select.POLLIN)
        p.poll(int(timeout * 1000))
    except ProcessLookupError:
        pass
    finally:
        posix.close(fd)
    try:  # ours to reap only when we are its parent (run, or a subreaper)
        posix.waitpid(pid, posix.WNOHANG)
    except ChildProcessError:
        pass
