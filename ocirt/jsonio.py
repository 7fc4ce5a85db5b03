"""JSON for the hot path, on CPython's C accelerator (_json) directly.

`import json` costs ~7 ms here because json.decoder compiles regular
expressions (importing `re`, `enum`, ...); a runtime is started 3-4 times
per container, so that matters more than anything it computes. The output
format matches the json module's (and runc's for `state`). posix, not os
(see pathops)."""
import _json
import posix

from ocirt.errors import OcirtError
from ocirt.pathops import is_reg_mode


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = {}

    @staticmethod
    def parse_constant(name):
        raise ValueError(f"invalid JSON constant {name}")


_scan = _json.make_scanner(_Ctx)
_WS = " \t\n\r"


def loads(text):
    """Parse a JSON document; ValueError (with the offset) when it is not."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    s = text.strip(_WS)
    try:
        obj, end = _scan(s, 0)
    except StopIteration as e:
        raise ValueError(f"invalid JSON at offset {e.value}") from None
    except RecursionError:
        raise ValueError("arrays or objects nested too deeply") from None
    except SystemError:
        # _json reports most syntax errors through json.decoder.JSONDecodeError,
        # found only if json.decoder is already imported; without it: SystemError
        raise ValueError("invalid JSON") from None
    if end != len(s):
        raise ValueError(f"invalid JSON: extra data at offset {end}")
    return obj


# Far above any real document (Kubernetes bounds annotations to 256 KiB),
# and a bound on what a symlink to /dev/zero or a huge file can make us hold
MAX_FILE = 64 << 20


def load_file(path):
    return loads(read_file(path))


def read_file(path):
    """A JSON file's bytes. Only a regular file, opened without blocking (a
    fifo would block; a device might never end), of at most MAX_FILE bytes.
    Read at its size with posix: io's read(MAX_FILE + 1) maps a 64 MiB buffer.
    At least 64 KiB a read: /proc and /sys files are regular, of size 0."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
    try:
        st = posix.fstat(fd)
        if not is_reg_mode(st.st_mode):
            raise OcirtError(f"{path}: not a regular file")
        step = min(max(st.st_size, 1 << 16), MAX_FILE) + 1   # + 1: to see its end (or growth)
        chunks, size = [], 0
        while chunk := posix.read(fd, step):
            size += len(chunk)
            if size > MAX_FILE:
                raise _too_large(path)
            chunks.append(chunk)
    finally:
        posix.close(fd)
    return b"".join(chunks)


def read_bounded(f, name):
    """All of binary stream f, refused past MAX_FILE bytes (name: what f is)."""
    data = f.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise _too_large(name)
    return data


def _too_large(name):
    return OcirtError(f"{name}: larger than {MAX_FILE >> 20} MiB")


_compact = _json.make_encoder(None, None, _json.encode_basestring, None, ":", ",",
                              False, False, False)


def dumps(obj):
    """Compact JSON, UTF-8 kept as is (as Go's encoder writes it)."""
    return "".join(_compact(obj, 0))


def dumps_indent(obj, indent="  ", level=0):
    """Indented JSON like Go's json.MarshalIndent(v, "", "  ")."""
    pad = indent * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{dumps(str(k))}: {dumps_indent(v, indent, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent * level + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        items = [pad + dumps_indent(v, indent, level + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + indent * level + "]"
    return dumps(obj)
