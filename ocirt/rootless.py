"""runc's --rootless (true, false, auto) and its default state root. On
the hot path of every command: posix, not os (see pathops)."""
import posix
import sys

from ocirt.errors import OcirtError
from ocirt.pathops import join, read_text

ROOT = "/run/ocirt"
_TRUE, _FALSE = ("1", "t", "true"), ("0", "f", "false")


def parse(value):
    """True, False, or None for auto (runc's parseBoolOrAuto)."""
    v = (value or "").lower()
    if v in ("", "auto"):
        return None
    if v in _TRUE or v in _FALSE:
        return v in _TRUE
    raise OcirtError(f'invalid --rootless value "{value}": use true, false or auto')


def in_user_namespace(uid_map="/proc/self/uid_map"):
    """In a user namespace that does not map the whole id range (the
    initial one maps 0 0 4294967295): root there is not the host's root.
    Read once a process (--rootless and the host facts both ask)."""
    if uid_map not in _USERNS:
        try:
            _USERNS[uid_map] = read_text(uid_map).split() != ["0", "0", "4294967295"]
        except OSError:
            _USERNS[uid_map] = False
    return _USERNS[uid_map]


_USERNS = {}   # uid_map file -> in_user_namespace(it): a process does not change its namespace


def is_rootless(value):
    """runc's rule: forced by true or false; on auto, rootless when the
    caller is not root or is root of a user namespace only."""
    forced = parse(value)
    if forced is not None:
        return forced
    return posix.geteuid() != 0 or in_user_namespace()


def default_root():
    """The state root without --root, as runc chooses it: $XDG_RUNTIME_DIR/ocirt
    for a caller that is not root, or is root of a user namespace and not
    USER=root; else /run/ocirt (root of the host keeps it even with
    XDG_RUNTIME_DIR=/run/user/0). -> (path, made in XDG_RUNTIME_DIR)."""
    xdg = getenv("XDG_RUNTIME_DIR")
    if not xdg:
        return ROOT, False
    if posix.geteuid() == 0 and (not in_user_namespace() or getenv("USER") == "root"):
        return ROOT, False
    return join(xdg, "ocirt"), True


def getenv(name):
    """os.environ.get(name) without importing os; os.environ itself once it
    is loaded (an API caller may have changed it)."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ.get(name)
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(errors="surrogateescape")


def make_xdg_root(root):
    """Owner-only, and sticky so that the XDG_RUNTIME_DIR cleanup (every 6
    hours, of what is not) leaves it (runc does the same)."""
    import os
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        os.chmod(root, 0o1700)
    except OSError as e:
        raise OcirtError(f"{root}: {(e.strerror or str(e)).lower()}: the state root in $XDG_RUNTIME_DIR "
                         "must be writable by the user (or give --root)") from None
