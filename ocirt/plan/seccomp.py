"""linux.seccomp, checked and parsed: OCI JSON -> plain rules, no
libseccomp. ocirt/seccomp.py compiles them into the raw BPF program that
the container side installs (the Compiled value of this module).

Behaviour follows runc where the spec leaves room: syscall names this
libseccomp does not know are skipped (profiles list syscalls of newer
kernels), a rule whose action equals the default one is skipped, args
naming one index twice become one rule per arg, errnoRet defaults to EPERM,
and an absent `flags` means SECCOMP_FILTER_FLAG_SPEC_ALLOW (runc and crun).
"""
import json

from ocirt.errors import OcirtError, jpath
from ocirt.record import Record
# Kernel ABI values (SECCOMP_RET_*); the low 16 bits of ERRNO/TRACE carry data.
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_EPERM = 1

# libseccomp's enum scmp_compare
_OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# SECCOMP_FILTER_FLAG_*
FLAG_TSYNC, FLAG_LOG, FLAG_SPEC_ALLOW = 1, 2, 4
FLAG_NEW_LISTENER, FLAG_TSYNC_ESRCH, FLAG_WAIT_KILLABLE_RECV = 8, 16, 32
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}

SECCOMP_ACTIONS = tuple(ACTIONS)
SECCOMP_OPERATORS = tuple(_OPERATORS)
SECCOMP_FLAGS = tuple(FLAGS)
# The architectures libseccomp 2.5 knows; its name is the lower-cased suffix.
SECCOMP_ARCHES = tuple("SCMP_ARCH_" + a for a in (
    "X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64", "MIPS64N32",
    "MIPSEL", "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390",
    "S390X", "PARISC", "PARISC64", "RISCV64"))

_MAX_ARGS = 6
# The helper hands the listener fd to the runtime with these after the filter
# is installed: notifying them would hang it, as nobody listens yet (runc
# refuses `write` for the same reason).
_NOTIFY_FORBIDDEN = ("write", "sendmsg")


class Compiled(Record):
    """A program ready to install (made by ocirt/seccomp.py); `flags` include
    NEW_LISTENER when a rule notifies, and the listener fields say where to
    send the fd then."""
    __slots__ = ("bpf", "flags", "listener_path", "listener_metadata")

    def __init__(self, bpf, flags, listener_path=None, listener_metadata=None):
        self.bpf = bpf
        self.flags = flags
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata

    def __repr__(self):
        return (f"Compiled(<{len(self.bpf) // 8} insns>, flags={self.flags:#x}, "
                f"listener_path={self.listener_path!r})")


class _Rules:
    __slots__ = ("default", "arches", "flags", "explicit_flags", "calls")

    def __init__(self):
        self.default = 0
        self.arches = []       # libseccomp names, e.g. "x86_64"
        self.flags = 0
        self.explicit_flags = False
        self.calls = []        # (where, name, action, [(index, op, value, valueTwo)])


def parse(sec, where):
    """The section as _Rules; OcirtError naming the field at fault."""
    r = _Rules()
    if "defaultAction" not in sec:
        raise OcirtError("is required", jpath(where, "defaultAction"))
    r.default = _action(sec, "defaultAction", "defaultErrnoRet", where)
    if sec["defaultAction"] == "SCMP_ACT_NOTIFY":
        raise OcirtError("SCMP_ACT_NOTIFY cannot be the default action", jpath(where, "defaultAction"))
    for i, arch in enumerate(_list(sec, "architectures", where)):
        if arch not in SECCOMP_ARCHES:
            raise OcirtError(f"unsupported architecture {quote(arch)}", jpath(jpath(where, "architectures"), i))
        r.arches.append(arch[len("SCMP_ARCH_"):].lower())
    notify = False
    for i, call in enumerate(_list(sec, "syscalls", where)):
        notify |= _parse_call(r, call, jpath(jpath(where, "syscalls"), i))
    _parse_flags(r, sec, notify, where)
    _parse_listener(sec, notify, where)
    return r


def _parse_call(r, call, where):
    """Append the rules of one syscalls[] entry; True if it notifies."""
    if not isinstance(call, dict):
        raise OcirtError("must be an object", where)
    if "action" not in call:
        raise OcirtError("is required", jpath(where, "action"))
    action = _action(call, "action", "errnoRet", where)
    names = _list(call, "names", where)
    if not names:
        raise OcirtError("must list at least one syscall", jpath(where, "names"))
    args = [_parse_arg(a, jpath(jpath(where, "args"), j)) for j, a in enumerate(_list(call, "args", where))]
    notify = call["action"] == "SCMP_ACT_NOTIFY"
    for j, name in enumerate(names):
        at = jpath(jpath(where, "names"), j)
        if not isinstance(name, str) or not name:
            raise OcirtError("must be a non-empty syscall name", at)
        if notify and name in _NOTIFY_FORBIDDEN:
            raise OcirtError(f"SCMP_ACT_NOTIFY cannot be used for {quote(name)}: the runtime needs it "
                             "to pass on the listener", at)
        if action != r.default:  # libseccomp refuses rules that repeat the default
            r.calls.append((at, name, action, args))
    return notify


def _parse_arg(arg, where):
    if not isinstance(arg, dict):
        raise OcirtError("must be an object", where)
    for key in ("index", "value", "op"):
        if key not in arg:
            raise OcirtError("is required", jpath(where, key))
    index = arg["index"]
    if not _is_uint(index, 2**32) or index >= _MAX_ARGS:
        raise OcirtError(f"must be an argument index from 0 to {_MAX_ARGS - 1}", jpath(where, "index"))
    op = _OPERATORS.get(arg["op"]) if isinstance(arg["op"], str) else None
    if op is None:
        raise OcirtError(f"unknown operator {quote(arg['op'])}", jpath(where, "op"))
    for key in ("value", "valueTwo"):
        if not _is_uint(arg.get(key, 0), 2**64):
            raise OcirtError("must be an unsigned 64-bit integer", jpath(where, key))
    # libseccomp's MASKED_EQ tests (arg & datum_a) == datum_b; runc passes
    # value as datum_a and valueTwo as datum_b, so value is the mask.
    return (index, op, arg["value"], arg.get("valueTwo", 0))


def _action(obj, key, errno_key, where):
    name = obj[key]
    if not isinstance(name, str) or name not in ACTIONS:
        raise OcirtError(f"unknown action {quote(name)}", jpath(where, key))
    if errno_key not in obj:
        return ACTIONS[name] | (_EPERM if name in _WITH_ERRNO else 0)
    ret = obj[errno_key]
    if name not in _WITH_ERRNO:
        raise OcirtError(f"{name} does not take an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)",
                         jpath(where, errno_key))
    if not _is_uint(ret, 0x10000):
        raise OcirtError("must be an errno number from 0 to 65535", jpath(where, errno_key))
    return ACTIONS[name] | ret


def _parse_flags(r, sec, notify, where):
    r.explicit_flags = "flags" in sec
    names = _list(sec, "flags", where) if r.explicit_flags else ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in FLAGS:
            raise OcirtError(f"unknown flag {quote(name)}", jpath(jpath(where, "flags"), i))
        if FLAGS[name] == FLAG_WAIT_KILLABLE_RECV and not notify:
            raise OcirtError(f"{name} needs a rule with SCMP_ACT_NOTIFY", jpath(jpath(where, "flags"), i))
        r.flags |= FLAGS[name]
    if notify:
        r.flags |= FLAG_NEW_LISTENER
        if r.flags & FLAG_TSYNC:  # the kernel takes TSYNC with a listener only so
            r.flags |= FLAG_TSYNC_ESRCH


def _parse_listener(sec, notify, where):
    for key in ("listenerPath", "listenerMetadata"):
        if not isinstance(sec.get(key, ""), str):
            raise OcirtError("must be a string", jpath(where, key))
    if sec.get("listenerMetadata") and not sec.get("listenerPath"):
        raise OcirtError("must not be set without listenerPath", jpath(where, "listenerMetadata"))
    if notify and not sec.get("listenerPath"):
        raise OcirtError("is required when a rule uses SCMP_ACT_NOTIFY", jpath(where, "listenerPath"))


def _list(obj, key, where):
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OcirtError("must be an array", jpath(where, key))
    return value


def _is_uint(v, limit):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit


def quote(v):
    return json.dumps(v)


# --- SCMP_ACT_NOTIFY: the message for listenerPath ---------------------------

def notify_state(container_state, compiled):
    """The payload sent to `compiled.listener_path` with the listener fd.

    Wire format (runtime-spec "container process state", as runc sends it):
    connect an AF_UNIX SOCK_STREAM socket to listenerPath, then ONE sendmsg
    whose data is these bytes (compact UTF-8 JSON, no trailing newline) and
    whose control message is SOL_SOCKET/SCM_RIGHTS carrying exactly one fd,
    the seccomp listener (fds[0] == "seccompFd" names it). Should sendmsg
    send only part of the data, the rest goes in further sends WITHOUT
    fds. Then close the connection: one state per connection. A failure at
    any step fails the container's creation.

    {"ociVersion": ..., "fds": ["seccompFd"], "pid": <container process pid,
     as seen by the runtime>, "metadata": listenerMetadata (omitted when
     unset), "state": <the container state, status "creating">}
    """
    msg = {"ociVersion": container_state["ociVersion"], "fds": ["seccompFd"],
           "pid": container_state["pid"]}
    if compiled.listener_metadata:
        msg["metadata"] = compiled.listener_metadata
    msg["state"] = container_state
    return json.dumps(msg, separators=(",", ":")).encode()
