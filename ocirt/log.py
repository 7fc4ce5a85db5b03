"""--log / --log-format / --debug: messages as runc writes them.

JSON lines carry level, msg and an RFC 3339 time (containerd reads the last
"error" line; podman reads the whole file as one object, so an error run
writes exactly one line). Errors also go to stderr."""
import os
import sys
import time

from ocirt import jsonio


class Log:
    def __init__(self, path=None, fmt="text", debug=False):
        if fmt not in ("text", "json"):
            raise ValueError(f'unknown log format "{fmt}" (text or json)')
        self.path = path or None
        self.fmt = fmt
        self.debug_on = debug

    def _write(self, level, msg):
        if not self.path:
            return
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            line = jsonio.dumps({"level": level, "msg": msg, "time": t})
        else:
            line = f"time={jsonio.dumps(t)} level={level} msg={jsonio.dumps(msg)}"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.write(fd, (line + "\n").encode())
            os.close(fd)
        except OSError:
            pass  # logging must never turn a result into a failure

    def error(self, msg):
        self._write("error", msg)
        sys.stderr.write(f"ocirt: {one_line(msg)}\n")
        sys.stderr.flush()

    def warn(self, msg):
        # In JSON mode a warning line would break podman's one-object read
        # of an error run; warnings go to stderr only there.
        if self.fmt != "json":
            self._write("warning", msg)
        sys.stderr.write(f"ocirt: warning: {one_line(msg)}\n")
        sys.stderr.flush()

    def debug(self, msg):
        if self.debug_on:
            self._write("debug", msg)
            sys.stderr.write(f"ocirt: debug: {msg}\n")


def one_line(msg):
    """A message is one line on stderr, whatever values it quotes (callers
    read the last line; a newline in a config value must not split it)."""
    return msg.replace("\r", "\\r").replace("\n", "\\n")
