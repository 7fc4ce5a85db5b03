"""--log / --log-format / --debug: messages as runc writes them.

JSON lines carry level, msg and an RFC 3339 time (containerd reads the last
"error" line; podman reads the whole file as one object, so an error run
writes exactly one line: warnings stay out of a JSON log unless --debug
asked for every line). Errors also go to stderr; debug lines go to the log,
else to stderr. The helper writes its own debug lines the same way."""
import posix
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

    def _line(self, level, msg):
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            return jsonio.dumps({"level": level, "msg": msg, "time": t})
        return f"time={jsonio.dumps(t)} level={level} msg={jsonio.dumps(msg)}"

    def _write(self, level, msg):
        if not self.path:
            return
        try:
            fd = self.open()
            posix.write(fd, (self._line(level, msg) + "\n").encode())
            posix.close(fd)
        except OSError:
            pass  # logging must never turn a result into a failure

    def open(self):
        """A new fd on the log (on our stderr without --log), for appending."""
        if not self.path:
            return posix.dup(2)
        return posix.open(self.path, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC, 0o644)

    def error(self, msg):
        self._write("error", msg)
        sys.stderr.write(f"ocirt: {one_line(msg)}\n")
        sys.stderr.flush()

    def warn(self, msg):
        # In JSON mode a warning line would break podman's one-object read
        # of an error run; warnings go to stderr only there.
        if self.fmt != "json" or self.debug_on:
            self._write("warning", msg)
        sys.stderr.write(f"ocirt: warning: {one_line(msg)}\n")
        sys.stderr.flush()

    def debug(self, msg):
        """What a stage does (--debug): to the log, else to stderr, as runc."""
        if not self.debug_on:
            return
        if self.path:
            self._write("debug", msg)
        else:
            sys.stderr.write(self._line("debug", msg) + "\n")
            sys.stderr.flush()


def one_line(msg):
    """A message is one line on stderr, whatever values it quotes (callers
    read the last line; a newline in a config value must not split it)."""
    return msg.replace("\r", "\\r").replace("\n", "\\n")
